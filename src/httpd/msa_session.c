/*
 * Session and ID tokens of an app: verified (signature, audience of this
 * virtual host, tenant rule, revocation and epoch), issued (with the
 * Microsoft session it came from recorded for single sign-out), and an ID
 * token spent once.
 */
#include <apr_lib.h>
#include <apr_strings.h>
#include <http_core.h>
#include <http_protocol.h>
#include <http_request.h>

#include "msa_api.h"
#include "msa_apps.h"
#include "msa_cache.h"
#include "msa_metrics.h"
#include "msa_request.h"
#include "msa_session.h"
#include "msa_url.h"

#define MAX_COOKIE 4000 /* bytes of name=value: browsers keep at least 4096 */

/* The session token presented with the request: Bearer when accepted, else the cookie. */
static const char *presented_token(request_rec *r, int accept_bearer, const msa_app_t *app)
{
    const char *t = accept_bearer ? msa_bearer_token(r) : NULL;
    return t ? t : msa_cookie_get(r, app->cookie_name);
}

/* Groups kept in the cache because they did not fit in the cookie. */
static apr_status_t load_groups(request_rec *r, const msa_srv_t *srv, msa_token_t *t)
{
    char *v = NULL;
    apr_status_t rv = msa_cache_get(
        r, srv, MSA_REC_GROUPS, msa_cache_owner(r->pool, t->appid, t->sub), t->jti, 64 * 1024, &v);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    t->groups = apr_array_make(r->pool, 32, sizeof(const char *));
    t->plain &= ~MSA_PLAIN_GROUPS; /* these were not looked at */
    char *last, *g;
    for (g = apr_strtok(v, ",", &last); g; g = apr_strtok(NULL, ",", &last)) {
        APR_ARRAY_PUSH(t->groups, const char *) = g;
    }
    return APR_SUCCESS;
}

/*
 * The virtual host is its ServerName and port: browsers send a host's cookies
 * to each of its ports, and two ports may be two virtual hosts.
 */
const char *msa_vhost_name(apr_pool_t *p, const server_rec *s)
{
    const char *host = s->server_hostname ? s->server_hostname : "";
    /* ServerName's port, else the <VirtualHost> address's. */
    apr_port_t port = s->port ? s->port : s->addrs ? s->addrs->host_port : 0;
    return port != 0 ? apr_pstrcat(p, host, ":", apr_itoa(p, port), NULL) : host;
}

const char *msa_request_audience(request_rec *r, const msa_app_t *app)
{
    const char *name = msa_srv_get(r->server)->vhost_name;
    return msa_app_audience(r->pool, app, name ? name : msa_vhost_name(r->pool, r->server));
}

apr_status_t msa_app_token_verify(request_rec *r, const msa_srv_t *srv, const msa_app_t *app,
                                  const char *jwt, const char *use, apr_int64_t now, msa_token_t *t,
                                  msa_token_memo_t *memo, const char **err)
{
    /* Bound to the app that issued it: this virtual host, this appid, this client id. */
    const char *vhost = msa_srv_get(r->server)->vhost_name;
    if (vhost == NULL) {
        vhost = msa_vhost_name(r->pool, r->server);
    }
    const char *aud[6];
    msa_app_audience_parts(app, vhost, aud);
    apr_status_t rv = msa_token_verify_memo_parts(r->pool, jwt, (const msa_key_t *)app->keys->elts,
                                                  app->keys->nelts, use, msa_app_token_id(app), aud,
                                                  now, srv->clock_skew, t, memo, err);
    /*
     * A session lives at most the app's timeout as it is now: a timeout shortened
     * since the token was issued shortens it too (and a user's revocation record,
     * kept for that long, outlives every session it speaks for).
     */
    if (rv == APR_SUCCESS && strcmp(use, MSA_USE_SESSION) == 0 &&
        t->iat + app->session_timeout + srv->clock_skew <= now) {
        *err = "token older than the app's session timeout";
        rv = MSA_EEXPIRED;
    }
    if (rv == APR_SUCCESS && !msa_app_tenant_allowed(app, t->tid)) {
        *err = t->tid ? "the token's tenant is not allowed by the app"
                      : "the token has no tenant and the app restricts tenants";
        rv = APR_EINVAL;
    }
    return rv;
}

int msa_session_check(request_rec *r, const msa_srv_t *srv, const msa_app_t *app, int accept_bearer,
                      int remembered, msa_token_t **out, const char **presented)
{
    const char *err = NULL;
    const char *jwt = presented_token(r, accept_bearer, app);
    *out = NULL;
    *presented = jwt;
    if (jwt == NULL) {
        return HTTP_UNAUTHORIZED;
    }
    msa_token_t *t = apr_palloc(r->pool, sizeof(*t));
    msa_token_memo_t memo;
    apr_status_t rv = msa_app_token_verify(r, srv, app, jwt, MSA_USE_SESSION,
                                           apr_time_sec(r->request_time), t, &memo, &err);
    if (rv != APR_SUCCESS) {
        msa_metric_token_refused(rv == MSA_EEXPIRED ? "expired" : "invalid");
        MSA_RLOG(r, APLOG_INFO, "token_refused", "appid=%s: %s", msa_app_token_id(app), err);
        return HTTP_UNAUTHORIZED;
    }
    switch (msa_cache_token_verdict(r, srv, t, remembered ? &memo : NULL)) {
    case MSA_TOKEN_LIVE:
        break;
    case MSA_TOKEN_UNKNOWN:
        MSA_RLOG(r, APLOG_ERR, "cache_error",
                 "MSAuthCache %s cannot answer a revocation check: request refused", srv->cache);
        return HTTP_SERVICE_UNAVAILABLE;
    case MSA_TOKEN_STALE:
        msa_metric_token_refused("stale");
        MSA_RLOG(r, APLOG_INFO, "token_refused",
                 "appid=%s: token issued before MSAuthCache's current epoch (the store lost "
                 "its state since): sign in again",
                 msa_app_token_id(app));
        return HTTP_UNAUTHORIZED;
    case MSA_TOKEN_REVOKED:
        msa_metric_token_refused("revoked");
        MSA_RLOG(r, APLOG_INFO, "token_refused", "appid=%s: token revoked", msa_app_token_id(app));
        return HTTP_UNAUTHORIZED;
    }
    if (t->groups_cached) {
        rv = load_groups(r, srv, t);
        if (rv != APR_SUCCESS) {
            MSA_RLOG(r, rv == APR_NOTFOUND ? APLOG_INFO : APLOG_ERR, "cache_error",
                     "appid=%s: the session's groups are not in MSAuthCache %s",
                     msa_app_token_id(app), srv->cache);
            return rv == APR_NOTFOUND ? HTTP_UNAUTHORIZED : HTTP_SERVICE_UNAVAILABLE;
        }
    }
    *out = t;
    return OK;
}

int msa_issue_session(request_rec *r, const msa_srv_t *srv, const msa_app_t *app,
                      const msa_identity_t *ident, msa_token_t *st, char **jwt)
{
    const char *err = NULL;
    const msa_key_t *key = &APR_ARRAY_IDX(app->keys, 0, msa_key_t);
    apr_int64_t now = apr_time_sec(apr_time_now());

    if (msa_token_session(r->pool, ident, msa_app_token_id(app), now, app->session_timeout,
                          app->refresh_interval, st) != APR_SUCCESS) {
        MSA_RLOG(r, APLOG_WARNING, "token_issue", "appid=%s: no user id to issue a token for",
                 msa_app_token_id(app));
        return HTTP_BAD_REQUEST;
    }
    st->aud = msa_request_audience(r, app);
    /* The token is good only while the store remembers what it may learn about it. */
    if (msa_cache_epoch(r, srv, msa_cache_owner(r->pool, st->appid, st->sub), &st->epoch) !=
        APR_SUCCESS) {
        MSA_RLOG(r, APLOG_ERR, "cache_error", "MSAuthCache %s cannot answer: no session issued",
                 srv->cache);
        return HTTP_SERVICE_UNAVAILABLE;
    }
    /* Where Microsoft's front-channel logout, which names only the sid, will find it. */
    if (st->sid != NULL &&
        msa_cache_sid_record(r, srv, st->sid, msa_cache_owner(r->pool, st->appid, st->sub),
                             st->exp + srv->clock_skew, &st->sid_epoch) != APR_SUCCESS) {
        MSA_RLOG(r, APLOG_ERR, "cache_error",
                 "MSAuthCache %s cannot record the session's Microsoft sign-in: no session issued",
                 srv->cache);
        return HTTP_SERVICE_UNAVAILABLE;
    }
    if (msa_token_sign(r->pool, st, key, jwt, &err) != APR_SUCCESS) {
        MSA_RLOG(r, APLOG_WARNING, "token_issue", "appid=%s: %s", msa_app_token_id(app),
                 err ? err : "the token could not be signed");
        return HTTP_BAD_REQUEST;
    }
    if (strlen(app->cookie_name) + 1 + strlen(*jwt) > MAX_COOKIE && st->groups != NULL) {
        /* One cookie whatever the claims: groups that do not fit wait in the cache. */
        const char *joined = apr_array_pstrcat(r->pool, st->groups, ',');
        if (msa_cache_put(r, srv, MSA_REC_GROUPS, msa_cache_owner(r->pool, st->appid, st->sub),
                          st->jti, joined,
                          apr_time_from_sec(st->exp + srv->clock_skew)) != APR_SUCCESS) {
            MSA_RLOG(r, APLOG_ERR, "cache_error", "MSAuthCache %s cannot keep a group list",
                     srv->cache);
            return HTTP_SERVICE_UNAVAILABLE;
        }
        apr_array_header_t *groups = st->groups;
        st->groups = NULL;
        st->groups_cached = 1;
        if (msa_token_sign(r->pool, st, key, jwt, &err) != APR_SUCCESS) {
            return HTTP_SERVICE_UNAVAILABLE;
        }
        st->groups = groups;
    }
    return OK;
}

void msa_identity_of_token(const msa_token_t *t, msa_identity_t *ident)
{
    memset(ident, 0, sizeof(*ident));
    ident->id = t->sub;
    ident->name = t->name;
    ident->email = t->email;
    ident->upn = t->upn;
    ident->tid = t->tid;
    ident->oid = t->oid;
    ident->picture = t->picture;
    ident->verified = t->verified;
    ident->sid = t->sid;
    ident->groups = t->groups;
}

int msa_spend_id_token(request_rec *r, const msa_srv_t *srv, const char *appid, const char *token,
                       const msa_app_t **app_out, msa_identity_t *ident)
{
    const char *err = NULL;
    if (appid == NULL) {
        appid = msa_api_peek_appid(r->pool, token);
    }
    const msa_app_t *app = msa_app_lookup(r, srv, appid ? appid : "");
    *app_out = app;
    if (app == NULL) {
        MSA_RLOG(r, APLOG_INFO, "token_refused", "ID token for an unknown app");
        return HTTP_UNAUTHORIZED;
    }
    msa_token_t t;
    if (msa_app_token_verify(r, srv, app, token, MSA_USE_ID, apr_time_sec(apr_time_now()), &t, NULL,
                             &err) != APR_SUCCESS) {
        MSA_RLOG(r, APLOG_INFO, "token_refused", "appid=%s: ID token: %s", msa_app_token_id(app),
                 err);
        return HTTP_UNAUTHORIZED;
    }
    /* An ID token is good once, on every server sharing the cache. */
    const char *owner = msa_cache_owner(r->pool, t.appid, t.sub);
    apr_status_t rv = msa_cache_claim(r, srv, MSA_REC_SPENT_ID, owner, t.jti,
                                      apr_time_from_sec(t.exp + srv->clock_skew));
    if (rv == APR_EEXIST) {
        msa_metric_token_refused("spent");
        MSA_RLOG(r, APLOG_INFO, "token_refused", "appid=%s: ID token used already",
                 msa_app_token_id(app));
        return HTTP_UNAUTHORIZED;
    }
    /*
     * Then what a session token must pass too, read after the claim: the store's epoch (a
     * store that lost its spent ids shows a new one by now) and the user's revocations.
     */
    msa_verdict_t v =
        rv == APR_SUCCESS ? msa_cache_token_verdict(r, srv, &t, NULL) : MSA_TOKEN_UNKNOWN;
    if (v == MSA_TOKEN_UNKNOWN) {
        MSA_RLOG(r, APLOG_ERR, "cache_error",
                 "MSAuthCache %s cannot record a spent ID token: request refused", srv->cache);
        return HTTP_SERVICE_UNAVAILABLE;
    }
    if (v != MSA_TOKEN_LIVE) {
        msa_metric_token_refused(v == MSA_TOKEN_STALE ? "stale" : "revoked");
        MSA_RLOG(r, APLOG_INFO, "token_refused", "appid=%s: ID token %s", msa_app_token_id(app),
                 v == MSA_TOKEN_STALE ? "issued before MSAuthCache's current epoch"
                                      : "revoked with its user's tokens");
        return HTTP_UNAUTHORIZED;
    }
    msa_identity_of_token(&t, ident);
    return OK;
}

int msa_endpoint_session(request_rec *r, const msa_srv_t *srv, const msa_app_t **app,
                         msa_token_t **t, int *rc)
{
    apr_table_t *q;
    const char *appid = NULL, *presented = NULL;
    *t = NULL;
    if (msa_query_parse(r->pool, r->args, &q) != APR_SUCCESS ||
        msa_query_get1(q, "appid", &appid) == APR_EINVAL) {
        *rc = msa_answer_error(r, HTTP_BAD_REQUEST, "malformed query");
        return 0;
    }
    *app = msa_app_lookup(r, srv, appid ? appid : "");
    if (*app == NULL) {
        *rc = msa_answer_error(r, HTTP_NOT_FOUND, "unknown app");
        return 0;
    }
    if (msa_session_check(r, srv, *app, 1, 0, t, &presented) == HTTP_SERVICE_UNAVAILABLE) {
        *rc = msa_answer_error(r, HTTP_SERVICE_UNAVAILABLE, "session store unavailable");
        return 0;
    }
    if (*t == NULL) {
        apr_table_setn(r->err_headers_out, "WWW-Authenticate",
                       apr_psprintf(r->pool, "Bearer realm=\"%s\"%s", msa_app_token_id(*app),
                                    presented ? ", error=\"invalid_token\"" : ""));
        *rc = msa_answer_error(r, HTTP_UNAUTHORIZED, "not signed in");
        return 0;
    }
    return 1;
}
