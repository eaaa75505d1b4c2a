/*
 * <callback>/health (MSAuthHealth On): whether this server can serve logins,
 * for a load balancer or a dashboard. It goes through Apache's access checks
 * like any content (guard it with Require). 200 when the shared store answers
 * and the settings file (if any) has been read; 503 otherwise.
 */
#include <apr_strings.h>
#include <http_core.h>
#include <http_protocol.h>
#include <json-c/json.h>

#include "msa_apps.h"
#include "msa_cache.h"
#include "msa_health.h"
#include "msa_idtoken.h"
#include "msa_login.h"
#include "msa_request.h"

/* From configure.ac's AC_INIT (httpd's own headers define an empty PACKAGE_VERSION). */
#ifndef MSA_VERSION
#define MSA_VERSION "0"
#endif

/* The keys of one app's tenant as the shared store holds them. */
static json_object *jwks_state(request_rec *r, const msa_srv_t *srv, const msa_app_t *app,
                               apr_int64_t now)
{
    msa_ms_client_t c;
    msa_login_client(r, srv, app, &c);
    const char *url = msa_ms_jwks_url(r->pool, &c);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "tenant", json_object_new_string(app->tenant));
    char *v = NULL;
    msa_jwks_entry_t e;
    apr_status_t rv = msa_cache_get(r, srv, MSA_REC_JWKS, url, url, 64 * 1024, &v);
    if (rv == APR_SUCCESS && msa_jwks_entry_parse(v, &e)) {
        json_object_object_add(o, "fetched", json_object_new_boolean(1));
        json_object_object_add(o, "age", json_object_new_int64(now - e.fetched));
        if (e.refreshed != 0) {
            json_object_object_add(o, "refetched_age", json_object_new_int64(now - e.refreshed));
        }
    } else {
        /* Fetched at the tenant's first login after a start. */
        json_object_object_add(o, "fetched", json_object_new_boolean(0));
    }
    return o;
}

int msa_health_handler(request_rec *r)
{
    const msa_srv_t *srv = msa_srv_get(r->server);
    if (!srv->health || !msa_srv_has_apps(srv) || r->uri == NULL ||
        strcmp(r->uri, apr_pstrcat(r->pool, srv->callback_path, "/health", NULL)) != 0) {
        return DECLINED;
    }
    if (r->method_number != M_GET) {
        apr_table_setn(r->err_headers_out, "Allow", "GET, HEAD");
        return msa_answer_error(r, HTTP_METHOD_NOT_ALLOWED, "method not allowed");
    }
    apr_int64_t now = apr_time_sec(apr_time_now());
    json_object *o = json_object_new_object();
    int ok = 1;

    json_object *cache = json_object_new_object();
    const char *epoch = NULL;
    int reachable = msa_cache_epoch(r, srv, "msauth:health", &epoch) == APR_SUCCESS;
    ok &= reachable;
    json_object_object_add(cache, "store", json_object_new_string(srv->cache));
    json_object_object_add(cache, "reachable", json_object_new_boolean(reachable));
    if (reachable && epoch != NULL) {
        json_object_object_add(cache, "epoch", json_object_new_string(epoch));
    }
    json_object_object_add(o, "cache", cache);

    json_object *keys = json_object_new_array();
    apr_hash_t *seen = apr_hash_make(r->pool);
    for (apr_hash_index_t *hi = apr_hash_first(r->pool, srv->resolved); hi && reachable;
         hi = apr_hash_next(hi)) {
        const msa_app_t *a;
        apr_hash_this(hi, NULL, NULL, (void **)&a);
        if (a->client_id == NULL || apr_hash_get(seen, a->tenant, APR_HASH_KEY_STRING)) {
            continue;
        }
        apr_hash_set(seen, a->tenant, APR_HASH_KEY_STRING, "");
        json_object_array_add(keys, jwks_state(r, srv, a, now));
    }
    json_object_object_add(o, "jwks", keys);

    const char *settings = msa_apps_settings_state(r, srv);
    if (settings != NULL) {
        ok &= strcmp(settings, "unreadable") != 0;
        json_object_object_add(o, "settings", json_object_new_string(settings));
    }
    json_object_object_add(o, "version", json_object_new_string(MSA_VERSION));
    json_object_object_add(o, "status", json_object_new_string(ok ? "ok" : "unavailable"));
    int rc = msa_answer_json(r, ok ? HTTP_OK : HTTP_SERVICE_UNAVAILABLE,
                             json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    return rc;
}
