/*
 * The settings store in the server: apps added at run time through
 * <callback>/_settings (INTERFACE.md section 7), seen by every process
 * within a second of a change, without a restart.
 */
#include <apr_strings.h>
#include <apr_thread_mutex.h>
#include <http_core.h>
#include <http_protocol.h>
#include <unixd.h>

#include "msa_api.h"
#include "msa_apps.h"
#include "msa_request.h"
#include "msa_settings_api.h"
#include "msa_settings.h"
#include "msa_state.h"

/* The API ------------------------------------------------------------------------- */

static int authorised(request_rec *r, const msa_srv_t *srv)
{
    const char *auth = apr_table_get(r->headers_in, "Authorization");
    if (auth != NULL && strncasecmp(auth, "Bearer ", 7) == 0 &&
        msa_ct_streq(auth + 7, srv->admin_key)) {
        return 1;
    }
    /* Never the presented value: it may be a mistyped real key. */
    MSA_RLOG(r, APLOG_WARNING, "settings_forbidden", "%s %s refused: %s admin key", r->method,
             r->uri, auth ? "wrong" : "no");
    return 0;
}

int msa_settings_api(request_rec *r, const msa_srv_t *srv, const char *rest)
{
    if (srv->settings_file == NULL || srv->admin_key == NULL) {
        return DECLINED;
    }
    if (!authorised(r, srv)) {
        return msa_answer_error(r, HTTP_FORBIDDEN, "forbidden");
    }
    /* rest: "", "<appid>" or "<appid>/<key>" */
    const char *slash = strchr(rest, '/');
    const char *appid = slash ? apr_pstrmemdup(r->pool, rest, (apr_size_t)(slash - rest)) : rest;
    const char *key = slash ? slash + 1 : NULL;
    if (*appid && (!msa_appid_valid(appid) || strcmp(appid, "default") == 0)) {
        return msa_answer_error(r, HTTP_BAD_REQUEST, "not an appid");
    }
    if (key != NULL && (*key == '\0' || strchr(key, '/') != NULL)) {
        return msa_answer_error(r, HTTP_NOT_FOUND, "not found");
    }
    if (r->method_number == M_GET) {
        msa_store_t *st = msa_apps_store(r, srv);
        if (st == NULL) {
            return msa_answer_error(r, HTTP_SERVICE_UNAVAILABLE,
                                    "the settings store cannot be read");
        }
        /* A read right after a write in another process must see it. */
        if (msa_settings_changed(r->pool, srv->settings_file, st)) {
            const char *err;
            msa_store_t *fresh;
            if (msa_settings_load(r->pool, srv->settings_file, &fresh, &err) == APR_SUCCESS) {
                st = fresh;
            }
        }
        const char *doc = !*appid ? msa_settings_list_json(r->pool, st)
                          : key   ? msa_settings_key_json(r->pool, st, appid, key)
                                  : msa_settings_app_json(r->pool, st, appid, 1);
        return doc ? msa_answer_json(r, HTTP_OK, doc)
                   : msa_answer_error(r, HTTP_NOT_FOUND, "not found");
    }
    if (!*appid) {
        apr_table_setn(r->err_headers_out, "Allow", "GET");
        return msa_answer_error(r, HTTP_METHOD_NOT_ALLOWED, "method not allowed");
    }
    msa_settings_op_t op;
    if (r->method_number == M_PUT) {
        op = key ? MSA_SETTINGS_PUT_KEY : MSA_SETTINGS_PUT_APP;
    } else if (r->method_number == M_DELETE) {
        op = key ? MSA_SETTINGS_DELETE_KEY : MSA_SETTINGS_DELETE_APP;
    } else {
        apr_table_setn(r->err_headers_out, "Allow", "GET, PUT, DELETE");
        return msa_answer_error(r, HTTP_METHOD_NOT_ALLOWED, "method not allowed");
    }
    char *body = "";
    apr_size_t len = 0;
    if (op == MSA_SETTINGS_PUT_APP || op == MSA_SETTINGS_PUT_KEY) {
        int rc = msa_read_body(r, &body, &len);
        if (rc == HTTP_REQUEST_ENTITY_TOO_LARGE) {
            return msa_answer_error(r, rc, "the body is over 64 KiB");
        }
        if (rc != OK) {
            return msa_answer_error(r, HTTP_BAD_REQUEST, "the body could not be read");
        }
    }
    msa_store_t *st = NULL;
    const char *err = NULL;
    apr_status_t rv = msa_settings_update(r->pool, srv->settings_file, op, appid, key, body, len,
                                          srv->root, &st, &err);
    if (rv == APR_ENOENT) {
        return msa_answer_error(r, HTTP_NOT_FOUND, err);
    }
    if (rv == APR_EINVAL) {
        return msa_answer_error(r, HTTP_BAD_REQUEST, err);
    }
    if (rv != APR_SUCCESS) {
        MSA_RLOG(r, APLOG_ERR, "settings_write", "MSAuthSettingsFile %s: %s", srv->settings_file,
                 err);
        return msa_answer_error(r, HTTP_SERVICE_UNAVAILABLE, err);
    }
    MSA_RLOG(r, APLOG_NOTICE, "settings_changed", "%s %s", r->method, r->uri);
    if (op == MSA_SETTINGS_DELETE_APP) {
        return msa_answer_json(
            r, HTTP_OK,
            msa_api_error_json(r->pool, 200, apr_psprintf(r->pool, "app %s deleted", appid)));
    }
    return msa_answer_json(r, HTTP_OK, msa_settings_app_json(r->pool, st, appid, 1));
}
