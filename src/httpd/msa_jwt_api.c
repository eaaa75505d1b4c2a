/*
 * The Para-compatible JWT API at MSAuthJWTPath (INTERFACE.md section 7):
 * POST trades a Microsoft access token or a jwt=id ID token for a session
 * token, GET refreshes a session token, DELETE revokes all of a user's tokens.
 */
#include <apr_strings.h>
#include <http_core.h>
#include <http_protocol.h>
#include <http_request.h>

#include "msa_api.h"
#include "msa_apps.h"
#include "msa_cache.h"
#include "msa_jwt_api.h"
#include "msa_login.h"
#include "msa_metrics.h"
#include "msa_mstokens.h"
#include "msa_request.h"
#include "msa_session.h"
#include "msa_ms.h"

static int error(request_rec *r, int status, const char *message)
{
    if (status == HTTP_UNAUTHORIZED) {
        apr_table_setn(r->err_headers_out, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
    }
    return msa_answer_error(r, status, message);
}

/* CORS for the listed origins only; the origin is echoed, never "*". */
static int cors(request_rec *r, const msa_srv_t *srv)
{
    const char *origin = apr_table_get(r->headers_in, "Origin");
    apr_table_mergen(r->err_headers_out, "Vary", "Origin");
    if (origin == NULL || srv->cors_origins == NULL) {
        return 0;
    }
    for (int i = 0; i < srv->cors_origins->nelts; i++) {
        if (strcmp(APR_ARRAY_IDX(srv->cors_origins, i, const char *), origin) == 0) {
            apr_table_setn(r->err_headers_out, "Access-Control-Allow-Origin",
                           APR_ARRAY_IDX(srv->cors_origins, i, const char *));
            apr_table_setn(r->err_headers_out, "Access-Control-Allow-Credentials", "true");
            return 1;
        }
    }
    return 0;
}

/* A session token for ident; from: the session it replaces, whose Microsoft tokens go with it. */
static int issue(request_rec *r, const msa_srv_t *srv, const msa_app_t *app,
                 const msa_identity_t *ident, const msa_token_t *from)
{
    msa_token_t st;
    char *jwt;
    int rc = msa_issue_session(r, srv, app, ident, &st, &jwt);
    if (rc == HTTP_SERVICE_UNAVAILABLE) {
        return error(r, rc, "the session store is unavailable");
    }
    if (rc != OK) {
        return error(r, HTTP_BAD_REQUEST, "no user id to issue a token for");
    }
    if (from != NULL) {
        msa_mstokens_carry(r, srv, app, from, &st);
    }
    msa_metric_token_issued();
    MSA_RLOG(r, APLOG_INFO, "token_issued", "appid=%s user=%s", msa_app_token_id(app), st.sub);
    return msa_answer_json(r, HTTP_OK, msa_api_token_json(r->pool, jwt, &st));
}

static int post(request_rec *r, const msa_srv_t *srv)
{
    const char *ct = apr_table_get(r->headers_in, "Content-Type");
    if (ct == NULL || strncasecmp(ct, "application/json", 16) != 0 ||
        (ct[16] != '\0' && ct[16] != ';' && ct[16] != ' ')) {
        return error(r, HTTP_UNSUPPORTED_MEDIA_TYPE, "the body must be application/json");
    }
    char *body;
    apr_size_t len;
    int rc = msa_read_body(r, &body, &len);
    if (rc == HTTP_REQUEST_ENTITY_TOO_LARGE) {
        return error(r, rc, "the body is over 64 KiB");
    }
    if (rc != OK) {
        return error(r, HTTP_BAD_REQUEST, "the body could not be read");
    }
    msa_api_request_t req;
    const char *err;
    if (msa_api_parse_request(r->pool, body, len, &req, &err) != APR_SUCCESS) {
        return error(r, HTTP_BAD_REQUEST, err);
    }
    if (req.appid != NULL && msa_app_lookup(r, srv, req.appid) == NULL) {
        return error(r, HTTP_BAD_REQUEST, "unknown appid");
    }
    msa_identity_t ident;
    const msa_app_t *app;
    if (strcmp(req.provider, "passwordless") == 0) {
        rc = msa_spend_id_token(r, srv, req.appid, req.token, &app, &ident);
        if (rc == HTTP_SERVICE_UNAVAILABLE) {
            return error(r, rc, "the token store is unavailable");
        }
        if (rc != OK) {
            return error(r, HTTP_UNAUTHORIZED, "invalid, expired or spent ID token");
        }
        return issue(r, srv, app, &ident, NULL);
    }
    app = msa_app_lookup(r, srv, req.appid ? req.appid : "");
    if (app == NULL) {
        return error(r, HTTP_BAD_REQUEST, "no appid and no root app");
    }
    /* A Microsoft access token is checked by the only party that can: Graph. */
    msa_ms_profile_t prof;
    apr_status_t rv = msa_ms_graph_me(srv->http, r->pool, srv->graph_host, req.token, &prof, &err);
    if (rv == MSA_EUNREACHABLE) {
        MSA_RLOG(r, APLOG_WARNING, "graph_unreachable", "%s", err);
        return error(r, HTTP_BAD_GATEWAY, "Microsoft Graph is unreachable");
    }
    if (rv != APR_SUCCESS) {
        MSA_RLOG(r, APLOG_INFO, "token_refused", "appid=%s: Graph: %s", msa_app_token_id(app), err);
        return error(r, HTTP_UNAUTHORIZED, "the Microsoft access token was refused");
    }
    memset(&ident, 0, sizeof(ident));
    ident.id = prof.id;
    ident.name = prof.name;
    ident.email = prof.email;
    ident.upn = prof.upn;
    /* Graph accepting the token proves the user, not the tenant: ask Graph for that too. */
    const char *detail = NULL;
    const char *cause = msa_graph_tenant(r, srv, app, req.token, &prof, 0, &ident, &detail);
    if (cause != NULL && strcmp(cause, "idp_unreachable") == 0) {
        MSA_RLOG(r, APLOG_WARNING, "graph_unreachable", "%s", detail);
        return error(r, HTTP_BAD_GATEWAY, "Microsoft Graph is unreachable");
    }
    if (cause != NULL && strcmp(cause, "tenant_not_allowed") == 0) {
        MSA_RLOG(r, APLOG_INFO, "tenant_not_allowed", "appid=%s: %s", msa_app_token_id(app),
                 detail);
        return error(r, HTTP_UNAUTHORIZED,
                     "the user's tenant may not sign in to this app, or cannot be known");
    }
    if (cause != NULL) {
        MSA_RLOG(r, APLOG_INFO, "token_refused", "appid=%s: %s", msa_app_token_id(app), detail);
        return error(r, HTTP_UNAUTHORIZED, "the Microsoft access token was refused");
    }
    return issue(r, srv, app, &ident, NULL);
}

/* The app of a Bearer session token: the one its appid claim names. */
static int bearer_session(request_rec *r, const msa_srv_t *srv, const msa_app_t **app,
                          msa_token_t **t)
{
    const char *auth = apr_table_get(r->headers_in, "Authorization");
    if (auth == NULL || strncasecmp(auth, "Bearer ", 7) != 0) {
        return error(r, HTTP_UNAUTHORIZED, "an Authorization: Bearer session token is required");
    }
    *app = msa_app_lookup(r, srv, msa_api_peek_appid(r->pool, auth + 7));
    if (*app == NULL) {
        return error(r, HTTP_UNAUTHORIZED, "invalid token");
    }
    const char *presented;
    int rc = msa_session_check(r, srv, *app, 1, 0, t, &presented);
    if (rc == HTTP_SERVICE_UNAVAILABLE) {
        return error(r, rc, "the token store is unavailable");
    }
    if (rc != OK) {
        return error(r, HTTP_UNAUTHORIZED, "invalid, expired or revoked token");
    }
    return DECLINED;
}

static int refresh(request_rec *r, const msa_srv_t *srv)
{
    const msa_app_t *app;
    msa_token_t *t;
    int rc = bearer_session(r, srv, &app, &t);
    if (rc != DECLINED) {
        return rc;
    }
    msa_identity_t ident;
    msa_identity_of_token(t, &ident);
    return issue(r, srv, app, &ident, t);
}

static int revoke_all(request_rec *r, const msa_srv_t *srv)
{
    const msa_app_t *app;
    msa_token_t *t;
    int rc = bearer_session(r, srv, &app, &t);
    if (rc != DECLINED) {
        return rc;
    }
    apr_int64_t now = apr_time_sec(apr_time_now());
    /* Every token of this user for this app issued up to now dies; kept as long as one may live. */
    const char *owner = msa_cache_owner(r->pool, t->appid, t->sub);
    if (msa_cache_put(
            r, srv, MSA_REC_USER_NBF, owner, owner, apr_psprintf(r->pool, "%" APR_INT64_T_FMT, now),
            apr_time_from_sec(now + app->session_timeout + srv->clock_skew)) != APR_SUCCESS) {
        MSA_RLOG(r, APLOG_ERR, "cache_error", "MSAuthCache %s cannot record a revocation",
                 srv->cache);
        return error(r, HTTP_SERVICE_UNAVAILABLE, "the token store is unavailable");
    }
    msa_mstokens_drop(r, srv, t);
    msa_mstokens_drop_user(r, srv, t->appid, t->sub);
    MSA_RLOG(r, APLOG_INFO, "tokens_revoked", "appid=%s user=%s", t->appid, t->sub);
    return msa_answer_json(
        r, HTTP_OK,
        msa_api_error_json(r->pool, 200,
                           apr_psprintf(r->pool, "All tokens revoked for user %s!", t->sub)));
}

int msa_jwt_api(request_rec *r, const msa_srv_t *srv)
{
    int allowed = cors(r, srv);
    if (r->method_number == M_OPTIONS) {
        if (!allowed) {
            return error(r, HTTP_FORBIDDEN, "origin not allowed");
        }
        apr_table_setn(r->err_headers_out, "Access-Control-Allow-Methods",
                       "GET, POST, DELETE, OPTIONS");
        apr_table_setn(r->err_headers_out, "Access-Control-Allow-Headers",
                       "Authorization, Content-Type");
        apr_table_setn(r->err_headers_out, "Access-Control-Max-Age", "600");
        r->status = HTTP_NO_CONTENT;
        return OK;
    }
    switch (r->method_number) {
    case M_POST:
        return post(r, srv);
    case M_GET:
        return refresh(r, srv);
    case M_DELETE:
        return revoke_all(r, srv);
    default:
        apr_table_setn(r->err_headers_out, "Allow", "GET, POST, DELETE, OPTIONS");
        return error(r, HTTP_METHOD_NOT_ALLOWED, "method not allowed");
    }
}
