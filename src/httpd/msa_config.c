/* Server and directory config: create, merge, and the checks once all is read. */
#include <apr_strings.h>
#include <http_core.h>

#include "msa_apps.h"
#include "msa_cache.h"
#include "msa_config.h"
#include "msa_metrics.h"
#include "msa_session.h"
#include "msa_ms.h"

apr_array_header_t *msa_app_refs;

void *msa_create_srv_config(apr_pool_t *p, server_rec *s)
{
    return msa_srv_create(p);
}

void *msa_merge_srv_config(apr_pool_t *p, void *base, void *add)
{
    return msa_srv_merge(p, base, add);
}

void *msa_create_dir_config(apr_pool_t *p, char *dir)
{
    return msa_dir_create(p);
}

void *msa_merge_dir_config(apr_pool_t *p, void *base, void *add)
{
    return msa_dir_merge(p, base, add);
}

int msa_pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp)
{
    msa_app_refs = apr_array_make(pconf, 8, sizeof(msa_app_ref_t));
    return msa_cache_pre_config(pconf);
}

/* An app block that sets two credentials: which one was meant cannot be known. */
static int check_clash(apr_pool_t *p, server_rec *s, const msa_app_t *a)
{
    const char *clash = msa_app_credential_clash(p, a);
    if (clash != NULL) {
        MSA_SLOG(s, APLOG_CRIT, 0, "config",
                 "%s are both set for app '%s'%s%s: an app has one credential, remove the others",
                 clash, msa_app_token_id(a), a->where ? " configured at " : "",
                 a->where ? a->where : "");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    return OK;
}

/* Checks that every configured app can sign users in. */
static int check_apps(apr_pool_t *p, server_rec *s, msa_srv_t *srv)
{
    if (check_clash(p, s, srv->root) != OK) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    for (apr_hash_index_t *hi = apr_hash_first(p, srv->apps); hi; hi = apr_hash_next(hi)) {
        const msa_app_t *a;
        apr_hash_this(hi, NULL, NULL, (void **)&a);
        if (check_clash(p, s, a) != OK) {
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    for (apr_hash_index_t *hi = apr_hash_first(p, srv->resolved); hi; hi = apr_hash_next(hi)) {
        const msa_app_t *a;
        apr_hash_this(hi, NULL, NULL, (void **)&a);
        const char *missing = msa_app_incomplete(a);
        if (missing != NULL) {
            MSA_SLOG(s, APLOG_CRIT, 0, "config", "%s is required for app '%s'%s%s%s", missing,
                     msa_app_token_id(a), a->where ? " configured at " : "",
                     a->where ? a->where : "",
                     strcmp(missing, "MSAuthClientSecret") == 0
                         ? " (or MSAuthClientCertificate or MSAuthClientAssertionFile)"
                         : "");
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    /* A root app that was given settings but no client id is a mistake, not an absence. */
    if (!srv->root->client_id_set &&
        (srv->root->client_secret_set || srv->root->client_cert_set ||
         srv->root->assertion_file_set || srv->root->keys_set) &&
        apr_hash_count(srv->apps) == 0) {
        MSA_SLOG(s, APLOG_CRIT, 0, "config", "MSAuthClientID is required for the root app%s%s",
                 srv->root->where ? " configured at " : "",
                 srv->root->where ? srv->root->where : "");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    return OK;
}

/* Where a virtual host was defined, for messages. */
static const char *vhost_where(apr_pool_t *p, const server_rec *s)
{
    return s->is_virtual
               ? apr_psprintf(p, "%s:%u", s->defn_name ? s->defn_name : "?", s->defn_line_number)
               : "the main server";
}

/*
 * Two virtual hosts whose apps would issue tokens of one audience (the same
 * ServerName and port, client id and appid: e.g. virtual hosts told apart by
 * ServerAlias alone) would each accept the other's sessions.
 */
static int check_audiences(apr_pool_t *p, server_rec *s)
{
    apr_hash_t *seen = apr_hash_make(p);
    for (server_rec *vs = s; vs; vs = vs->next) {
        msa_srv_t *srv = msa_srv_get(vs);
        if (!msa_srv_has_apps(srv)) {
            continue;
        }
        const char *name = msa_vhost_name(p, vs);
        for (apr_hash_index_t *hi = apr_hash_first(p, srv->resolved); hi; hi = apr_hash_next(hi)) {
            const msa_app_t *a;
            apr_hash_this(hi, NULL, NULL, (void **)&a);
            if (a->client_id == NULL) {
                continue;
            }
            const char *aud = msa_app_audience(p, a, name);
            server_rec *other = apr_hash_get(seen, aud, APR_HASH_KEY_STRING);
            if (other != NULL && other != vs) {
                MSA_SLOG(vs, APLOG_CRIT, 0, "config",
                         "the virtual hosts at %s and %s give app %s the same identity (name %s, "
                         "client id %s): a session of one would open the other. Give each its "
                         "own ServerName (or another port or MSAuthClientID)",
                         vhost_where(p, other), vhost_where(p, vs), msa_app_token_id(a), name,
                         a->client_id);
                return HTTP_INTERNAL_SERVER_ERROR;
            }
            apr_hash_set(seen, aud, APR_HASH_KEY_STRING, vs);
        }
    }
    return OK;
}

/* Runs before `httpd -t` reports "Syntax OK", so configtest catches what it finds. */
int msa_check_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s)
{
    for (server_rec *vs = s; vs; vs = vs->next) {
        msa_srv_t *srv = msa_srv_get(vs);
        msa_srv_resolve(pconf, srv);
        int rc = check_apps(ptemp, vs, srv);
        if (rc != OK) {
            return rc;
        }
        const char *msg = msa_srv_has_apps(srv) ? msa_cache_check(ptemp, srv) : NULL;
        if (msg != NULL) {
            MSA_SLOG(vs, APLOG_CRIT, 0, "config", "%s", msg);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    if (check_audiences(ptemp, s) != OK) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    for (int i = 0; i < msa_app_refs->nelts; i++) {
        const msa_app_ref_t *ref = &APR_ARRAY_IDX(msa_app_refs, i, msa_app_ref_t);
        msa_srv_t *srv = msa_srv_get(ref->s);
        if (msa_srv_app(srv, ref->appid) == NULL && srv->settings_file == NULL) {
            MSA_SLOG(ref->s, APLOG_CRIT, 0, "config",
                     "MSAuthApp %s at %s names an app defined nowhere (no <MSAuthApp %s> block"
                     "%s)",
                     *ref->appid ? ref->appid : "(root)", ref->where, ref->appid,
                     *ref->appid ? "" : " and no MSAuthClientID at server level");
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    return OK;
}

int msa_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s)
{
    if (msa_http_global_init() != APR_SUCCESS) {
        MSA_SLOG(s, APLOG_CRIT, 0, "init", "libcurl could not be initialised");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (msa_cache_post_config(pconf, ptemp, s) != APR_SUCCESS) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    msa_apps_post_config(pconf, ptemp, s);
    for (server_rec *vs = s; vs; vs = vs->next) {
        msa_srv_get(vs)->vhost_name = msa_vhost_name(pconf, vs);
    }
    if (msa_metrics_post_config(pconf, s) != OK) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    return OK;
}

/* Tokens a child remembers verified (8 KiB each, 4 MiB): the sessions it serves at once. */
#define MSA_TOKEN_MEMORY_SLOTS 512

void msa_child_init(apr_pool_t *p, server_rec *s)
{
    msa_cache_child_init(p, s);
    if (msa_token_memory_init(p, MSA_TOKEN_MEMORY_SLOTS) != APR_SUCCESS) {
        MSA_SLOG(s, APLOG_NOTICE, 0, "config",
                 "no memory of verified tokens in this process: every request verifies its token");
    }
    msa_apps_child_init(p, s);
    /* One client per server with apps, as timeouts, CA file and proxy are per server. */
    for (server_rec *vs = s; vs; vs = vs->next) {
        msa_srv_t *srv = msa_srv_get(vs);
        if (!msa_srv_has_apps(srv)) {
            continue;
        }
        msa_http_opts_t opts = {
            .timeout = srv->http_timeout,
            .connect_timeout = srv->http_connect_timeout,
            .ca_file = srv->ca_file,
            .proxy = srv->http_proxy,
            .max_response = MSA_MAX_RESPONSE,
        };
        if (msa_http_create(&srv->http, p, &opts) != APR_SUCCESS) {
            MSA_SLOG(vs, APLOG_CRIT, 0, "init", "the HTTP client could not be created");
            continue;
        }
        msa_http_set_observer(srv->http, msa_metric_call, NULL);
    }
}
