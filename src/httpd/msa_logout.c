/*
 * <callback>/logout (the session revoked everywhere the cache is shared, then
 * back to the page or through Microsoft's logout) and <callback>/me.
 */
#include <apr_lib.h>
#include <apr_strings.h>
#include <http_core.h>
#include <http_protocol.h>
#include <http_request.h>

#include "msa_apps.h"
#include "msa_cache.h"
#include "msa_claims.h"
#include "msa_login.h"
#include "msa_logout.h"
#include "msa_request.h"
#include "msa_session.h"
#include "msa_url.h"

int msa_logout_handler(request_rec *r, const msa_srv_t *srv)
{
    apr_table_t *q;
    const char *appid = NULL, *return_to = NULL, *sso = NULL;
    if (msa_query_parse(r->pool, r->args, &q) != APR_SUCCESS ||
        msa_query_get1(q, "appid", &appid) == APR_EINVAL ||
        msa_query_get1(q, "return_to", &return_to) == APR_EINVAL ||
        msa_query_get1(q, "sso", &sso) == APR_EINVAL) {
        return HTTP_BAD_REQUEST;
    }
    const msa_app_t *app = msa_app_lookup(r, srv, appid ? appid : "");
    if (app == NULL) {
        MSA_RLOG(r, APLOG_INFO, "logout", "no app '%s'", msa_loggable(r, appid));
        return HTTP_NOT_FOUND;
    }
    msa_token_t *t = NULL;
    const char *presented;
    int rc = msa_session_check(r, srv, app, 1, 0, &t, &presented);
    if (rc == HTTP_SERVICE_UNAVAILABLE) {
        return rc;
    }
    if (t != NULL) {
        /* The token dies everywhere the cache is shared, not just in this browser. */
        if (msa_cache_put(r, srv, MSA_REC_REVOKED, msa_cache_owner(r->pool, t->appid, t->sub),
                          t->jti, "1",
                          apr_time_from_sec(t->exp + srv->clock_skew)) != APR_SUCCESS) {
            MSA_RLOG(r, APLOG_ERR, "cache_error", "MSAuthCache %s cannot record a logout",
                     srv->cache);
            return HTTP_SERVICE_UNAVAILABLE;
        }
        MSA_RLOG(r, APLOG_INFO, "logout", "appid=%s user=%s", msa_app_token_id(app),
                 msa_loggable(r, t->sub));
    }
    msa_cookie_set(r, srv, app, app->cookie_name, "", app->cookie_path, 0, app->cookie_samesite);
    const char *target = msa_return_target(r, srv, app, return_to);
    if (target == NULL) {
        target = "/";
    }
    if (sso != NULL && strcmp(sso, "1") == 0) {
        msa_ms_client_t c;
        msa_login_client(r, srv, app, &c);
        const char *back =
            *target == '/' ? apr_pstrcat(r->pool, msa_self_origin(r, srv), target, NULL) : target;
        return msa_redirect(r, msa_ms_logout_url(r->pool, &c, back));
    }
    return msa_redirect(r, target);
}

int msa_me_handler(request_rec *r, const msa_srv_t *srv)
{
    apr_table_t *q;
    const char *appid = NULL;
    if (msa_query_parse(r->pool, r->args, &q) != APR_SUCCESS ||
        msa_query_get1(q, "appid", &appid) == APR_EINVAL) {
        return msa_answer_error(r, HTTP_BAD_REQUEST, "malformed query");
    }
    const msa_app_t *app = msa_app_lookup(r, srv, appid ? appid : "");
    if (app == NULL) {
        return msa_answer_error(r, HTTP_NOT_FOUND, "unknown app");
    }
    msa_token_t *t = NULL;
    const char *presented;
    int rc = msa_session_check(r, srv, app, 1, 0, &t, &presented);
    if (rc == HTTP_SERVICE_UNAVAILABLE) {
        return msa_answer_error(r, rc, "session store unavailable");
    }
    if (t == NULL) {
        apr_table_setn(r->err_headers_out, "WWW-Authenticate",
                       apr_psprintf(r->pool, "Bearer realm=\"%s\"%s", msa_app_token_id(app),
                                    presented ? ", error=\"invalid_token\"" : ""));
        return msa_answer_error(r, HTTP_UNAUTHORIZED, "not signed in");
    }
    return msa_answer_json(r, HTTP_OK, msa_claims_me_json(r->pool, t));
}
