/*
 * <callback>/logout (the session revoked everywhere the cache is shared, then
 * back to the page or through Microsoft's logout), <callback>/logout/frontchannel
 * (Microsoft signed a session out: every token of its sid dies) and <callback>/me.
 */
#include <apr_lib.h>
#include <apr_strings.h>
#include <apr_uri.h>
#include <http_core.h>
#include <http_protocol.h>
#include <http_request.h>

#include "msa_apps.h"
#include "msa_cache.h"
#include "msa_claims.h"
#include "msa_idtoken.h"
#include "msa_login.h"
#include "msa_logout.h"
#include "msa_mstokens.h"
#include "msa_request.h"
#include "msa_session.h"
#include "msa_url.h"

apr_status_t msa_logout_session(request_rec *r, const msa_srv_t *srv, const msa_token_t *t)
{
    apr_status_t rv =
        msa_cache_put(r, srv, MSA_REC_REVOKED, msa_cache_owner(r->pool, t->appid, t->sub), t->jti,
                      "1", apr_time_from_sec(t->exp + srv->clock_skew));
    if (rv == APR_SUCCESS) {
        msa_mstokens_drop(r, srv, t);
    }
    return rv;
}

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
        if (msa_logout_session(r, srv, t) != APR_SUCCESS) {
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

/* scheme://host[:port] of MSAuthLoginHost: the only page that may frame the answer. */
static const char *login_origin(request_rec *r, const msa_srv_t *srv)
{
    apr_uri_t u;
    if (apr_uri_parse(r->pool, srv->login_host, &u) != APR_SUCCESS || u.scheme == NULL ||
        u.hostinfo == NULL) {
        return "'none'";
    }
    return apr_pstrcat(r->pool, apr_pstrdup(r->pool, u.scheme), "://", u.hostinfo, NULL);
}

/* 200 and nothing: the page Microsoft frames learns nothing, whatever was asked. */
static int frontchannel_answer(request_rec *r, const msa_srv_t *srv)
{
    r->status = HTTP_OK;
    ap_set_content_type(r, "text/html; charset=utf-8");
    ap_set_content_length(r, 0);
    apr_table_setn(r->err_headers_out, "Cache-Control", "no-cache, no-store");
    apr_table_setn(r->err_headers_out, "Pragma", "no-cache");
    apr_table_setn(
        r->err_headers_out, "Content-Security-Policy",
        apr_pstrcat(r->pool, "default-src 'none'; frame-ancestors ", login_origin(r, srv), NULL));
    apr_table_setn(r->err_headers_out, "X-Content-Type-Options", "nosniff");
    apr_table_setn(r->err_headers_out, "Referrer-Policy", "no-referrer");
    return OK;
}

int msa_frontchannel_handler(request_rec *r, const msa_srv_t *srv)
{
    apr_table_t *q;
    const char *sid = NULL, *iss = NULL;
    if (msa_query_parse(r->pool, r->args, &q) != APR_SUCCESS ||
        msa_query_get1(q, "sid", &sid) == APR_EINVAL ||
        msa_query_get1(q, "iss", &iss) == APR_EINVAL) {
        MSA_RLOG(r, APLOG_INFO, "logout", "front-channel logout: malformed query string");
        return HTTP_BAD_REQUEST;
    }
    if (sid == NULL || *sid == '\0') {
        MSA_RLOG(r, APLOG_INFO, "logout",
                 "front-channel logout without a sid: nothing to sign out (does the app "
                 "registration ask for the optional claim sid?)");
        return frontchannel_answer(r, srv);
    }
    if (!msa_sid_ok(sid)) {
        MSA_RLOG(r, APLOG_INFO, "logout",
                 "front-channel logout: the sid is not one Microsoft issues (over %d characters "
                 "or not visible ASCII): ignored",
                 MSA_SID_MAX);
        return frontchannel_answer(r, srv);
    }
    /* Entra sends no iss; one that is there must be Microsoft's own issuer form, of this cloud. */
    if (iss != NULL) {
        size_t n = strlen(srv->login_host);
        const char *tid = iss + n + 1;
        if (strncmp(iss, srv->login_host, n) != 0 || iss[n] != '/' ||
            strlen(tid) != 36 + strlen("/v2.0") || strcmp(tid + 36, "/v2.0") != 0 ||
            msa_parse_guid(apr_pstrndup(r->pool, tid, 36)) != NULL) {
            MSA_RLOG(r, APLOG_INFO, "logout",
                     "front-channel logout: iss '%s' is not an issuer of MSAuthLoginHost %s: "
                     "ignored",
                     msa_loggable(r, iss), srv->login_host);
            return frontchannel_answer(r, srv);
        }
    }
    int ended = 0;
    if (msa_cache_sid_revoke(r, srv, sid, &ended) != APR_SUCCESS) {
        /* Fail closed: an error page Microsoft or the browser may try again. */
        MSA_RLOG(r, APLOG_ERR, "cache_error",
                 "MSAuthCache %s cannot answer a front-channel logout: sessions not ended",
                 srv->cache);
        return HTTP_SERVICE_UNAVAILABLE;
    }
    /* The sessions are dead; their Microsoft tokens (a refresh token each) go too. */
    if (ended > 0) {
        msa_mstokens_drop_sid(r, srv, sid);
    }
    MSA_RLOG(r, APLOG_INFO, "logout", "front-channel logout: %s",
             ended ? apr_psprintf(r->pool,
                                  "the sessions of a Microsoft sign-in ended (%d users' "
                                  "records)",
                                  ended)
                   : "no session of this server has that sid");
    return frontchannel_answer(r, srv);
}

int msa_me_handler(request_rec *r, const msa_srv_t *srv)
{
    const msa_app_t *app;
    msa_token_t *t;
    int rc;
    if (!msa_endpoint_session(r, srv, &app, &t, &rc)) {
        return rc;
    }
    return msa_answer_json(r, HTTP_OK, msa_claims_me_json(r->pool, t));
}
