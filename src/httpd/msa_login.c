/*
 * A login's start and end (INTERFACE.md 4.1, 4.3, 4.4): the state cookie and
 * the redirect to Microsoft; the session cookie and the redirect to the page
 * or the success URL; a failure's redirect with its cause; the user's tenant
 * from Graph.
 */
#include <apr_lib.h>
#include <apr_strings.h>
#include <http_core.h>
#include <http_protocol.h>
#include <http_request.h>

#include "msa_apps.h"
#include "msa_cache.h"
#include "msa_cae.h"
#include "msa_cookie.h"
#include "msa_idtoken.h"
#include "msa_login.h"
#include "msa_metrics.h"
#include "msa_request.h"
#include "msa_session.h"
#include "msa_state.h"
#include "msa_url.h"

#define JWKS_MIN_REFRESH 60 /* seconds between fetches on an unknown kid */

/*
 * The JWKS of c's tenant: the cached document unless refresh is set. An
 * unknown kid refreshes it at most once a minute (the first fetch is free):
 * MSA_ENOKEY when a refresh is not allowed yet.
 */
static apr_status_t jwks_get(request_rec *r, const msa_srv_t *srv, const msa_ms_client_t *c,
                             int refresh, const char **json, const char **err)
{
    const char *url = msa_ms_jwks_url(r->pool, c);
    apr_int64_t now = apr_time_sec(apr_time_now());
    msa_jwks_entry_t e = {0, 0, NULL};
    char *v = NULL;
    int cached = msa_cache_get(r, srv, MSA_REC_JWKS, url, url, 64 * 1024, &v) == APR_SUCCESS &&
                 msa_jwks_entry_parse(v, &e);
    if (cached && !refresh) {
        *json = e.json;
        return APR_SUCCESS;
    }
    if (cached && now - e.refreshed < JWKS_MIN_REFRESH) {
        *err = "kid not in JWKS (refreshed less than a minute ago)";
        return MSA_ENOKEY;
    }
    char *doc = NULL;
    apr_status_t rv = msa_ms_fetch_jwks(srv->http, r->pool, c, &doc, err);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    msa_metric_jwks_fetch();
    MSA_RLOG(r, APLOG_INFO, "jwks_fetched", "keys of tenant %s fetched%s",
             msa_loggable(r, c->tenant), refresh ? " again for an unknown key id" : "");
    msa_jwks_entry_t fresh = {now, refresh ? now : 0, doc};
    const char *entry = msa_jwks_entry_format(r->pool, &fresh);
    /* Keys are kept a day; a cache that cannot keep them only costs a fetch per login. */
    if (msa_cache_put(r, srv, MSA_REC_JWKS, url, url, entry, apr_time_from_sec(now + 86400)) !=
        APR_SUCCESS) {
        MSA_RLOG(r, APLOG_WARNING, "cache_error", "MSAuthCache %s cannot keep the JWKS",
                 srv->cache);
    }
    *json = doc;
    return APR_SUCCESS;
}

typedef struct jwks_ctx {
    request_rec *r;
    const msa_srv_t *srv;
    const msa_ms_client_t *c;
} jwks_ctx_t;

static apr_status_t jwks_of(void *ctx, int refresh, const char **json, const char **err)
{
    jwks_ctx_t *jc = ctx;
    return jwks_get(jc->r, jc->srv, jc->c, refresh, json, err);
}

const char *msa_login_verify_id_token(request_rec *r, const msa_srv_t *srv, const msa_app_t *app,
                                      const msa_ms_client_t *c, const char *id_token,
                                      const char *nonce, msa_identity_t *ident, int *overage,
                                      const char **detail)
{
    jwks_ctx_t jc = {r, srv, c};
    msa_idtoken_check_t chk = {
        .client_id = app->client_id,
        .login_host = srv->login_host,
        .nonce = nonce,
        .app = app,
        .now = apr_time_sec(apr_time_now()),
        .skew = srv->clock_skew,
        .jwks = jwks_of,
        .ctx = &jc,
    };
    return msa_idtoken_verify(r->pool, id_token, &chk, ident, overage, detail);
}

/* 302 to the app's failure URL with its cause; the root app's when the app is unknown. */
int msa_login_fail(request_rec *r, const msa_srv_t *srv, const msa_app_t *app, const char *cause,
                   int level, const char *detail)
{
    if (app == NULL) {
        app = srv->root;
    }
    msa_metric_login_failed(cause);
    ap_log_rerror(APLOG_MARK, level, 0, r, "msauth: login_failed: cause=%s appid=%s: %s", cause,
                  msa_app_token_id(app), detail);
    return msa_redirect(r, msa_url_fill(r->pool, app->signin_failure, "cause", "?", cause));
}

void msa_login_client(request_rec *r, const msa_srv_t *srv, const msa_app_t *app,
                      msa_ms_client_t *c)
{
    c->login_host = srv->login_host;
    c->graph_host = srv->graph_host;
    c->tenant = app->tenant;
    c->client_id = app->client_id;
    c->client_secret = app->client_secret;
    c->credential = msa_app_credential(app);
    /* MSAuthPassTokens: Microsoft issues a refresh token only for offline_access. */
    c->scope = srv->tokens_wanted && !msa_word_in(app->scope, "offline_access")
                   ? apr_pstrcat(r->pool, app->scope, " offline_access", NULL)
                   : app->scope;
    c->claims = app->cae ? MSA_CAE_CP1_CLAIMS : NULL;
    c->redirect_uri = app->redirect_uri
                          ? app->redirect_uri
                          : apr_pstrcat(r->pool, msa_self_origin(r, srv), srv->callback_path, NULL);
}

const char *msa_graph_tenant(request_rec *r, const msa_srv_t *srv, const msa_app_t *app,
                             const char *access_token, const msa_ms_profile_t *prof,
                             int via_segment, msa_identity_t *ident, const char **detail)
{
    msa_ms_org_t org;
    const char *err = NULL;
    apr_status_t rv = msa_ms_graph_tenant(srv->http, r->pool, srv->graph_host, access_token,
                                          prof->id, &org, &err);
    if (ident->oid == NULL && prof->id != NULL && msa_parse_guid(prof->id) == NULL) {
        ident->oid = prof->id; /* a work/school account's Graph id is its oid */
    }
    const char *tid = ident->tid;
    if (tid == NULL) {
        if (rv == MSA_EUNREACHABLE) {
            *detail = err;
            return "idp_unreachable";
        }
        if (rv == MSA_EDENIED) {
            *detail = err;
            return "profile_failed";
        }
        if (rv != APR_SUCCESS) {
            if (msa_app_restricts_tenants(app)) {
                *detail = apr_psprintf(r->pool,
                                       "the user's tenant cannot be known (%s) and the app "
                                       "admits only some tenants",
                                       err ? err : "no organization");
                return "tenant_not_allowed";
            }
            MSA_RLOG(r, APLOG_INFO, "tenant_unknown", "appid=%s: %s: the session has no tenant",
                     msa_app_token_id(app), err ? err : "no organization");
            return NULL;
        }
        /*
         * A domain-named MSAuthTenant is the tenant that verified it: a token redeemed at
         * its own endpoint is that tenant's, any other must list the domain (Graph).
         */
        int domain_ok = via_segment || strchr(app->tenant, '.') == NULL ||
                        msa_ms_domain_in(app->tenant, org.domains);
        if (!domain_ok || !msa_app_tenant_allowed(app, org.tid)) {
            *detail = apr_psprintf(r->pool, "tenant %s is not allowed", org.tid);
            return "tenant_not_allowed";
        }
        ident->tid = tid = org.tid;
    } else if (rv != APR_SUCCESS || strcasecmp(org.tid, tid) != 0) {
        /* The verified id_token named the tenant; Graph would only have added its domains. */
        return NULL;
    }
    ident->verified = msa_vouched(
        msa_word_in(ident->verified, "email") || msa_ms_address_in(ident->email, org.domains),
        msa_word_in(ident->verified, "upn") || msa_ms_address_in(ident->upn, org.domains));
    return NULL;
}

typedef struct state_cookie {
    const char *name;
    apr_int64_t created;
} state_cookie_t;

typedef struct prune_ctx {
    request_rec *r;
    const msa_app_t *app;
    apr_array_header_t *found; /* state_cookie_t */
} prune_ctx_t;

static int collect_state(void *ctx, const char *name, const char *value)
{
    prune_ctx_t *pc = ctx;
    if (strncmp(name, MSA_STATE_COOKIE_PREFIX, sizeof(MSA_STATE_COOKIE_PREFIX) - 1) == 0) {
        msa_login_state_t ls;
        const char *err;
        const msa_key_t *k = &APR_ARRAY_IDX(pc->app->keys, 0, msa_key_t);
        state_cookie_t *sc = apr_array_push(pc->found);
        sc->name = name;
        sc->created =
            msa_login_state_open(pc->r->pool, value, k->data, k->len, &ls, &err) == APR_SUCCESS
                ? ls.created
                : 0;
    }
    return 0;
}

/* Expires all but the newest few state cookies, so parallel tabs work and the header stays small.
 */
static void prune_state_cookies(request_rec *r, const msa_srv_t *srv, const msa_app_t *app)
{
    prune_ctx_t pc = {r, app, apr_array_make(r->pool, 4, sizeof(state_cookie_t))};
    /* A claims challenge starts a login after MSAuthStripCookie hid them from the app. */
    msa_cookie_each(r->pool, msa_sent_cookies(r), collect_state, &pc);
    int excess = pc.found->nelts - (MSA_STATE_COOKIE_MAX - 1);
    while (excess-- > 0) {
        int oldest = 0;
        for (int i = 1; i < pc.found->nelts; i++) {
            if (APR_ARRAY_IDX(pc.found, i, state_cookie_t).created <
                APR_ARRAY_IDX(pc.found, oldest, state_cookie_t).created) {
                oldest = i;
            }
        }
        state_cookie_t *sc = &APR_ARRAY_IDX(pc.found, oldest, state_cookie_t);
        msa_cookie_set(r, srv, app, sc->name, "", "/", 0, MSA_SAMESITE_LAX);
        sc->created = APR_INT64_MAX;
    }
}

int msa_start_login(request_rec *r, const msa_srv_t *srv, const msa_app_t *app,
                    const char *return_to)
{
    return msa_start_login_claims(r, srv, app, return_to, NULL);
}

int msa_start_login_claims(request_rec *r, const msa_srv_t *srv, const msa_app_t *app,
                           const char *return_to, const char *claims)
{
    msa_login_state_t ls;
    msa_ms_client_t c;
    const char *err;
    char *cookie;
    const msa_key_t *k = &APR_ARRAY_IDX(app->keys, 0, msa_key_t);
    apr_int64_t now = apr_time_sec(apr_time_now());

    if (msa_login_state_new(r->pool, app->appid, return_to, now, &ls) != APR_SUCCESS) {
        MSA_RLOG(r, APLOG_ERR, "login_start", "could not make the login state");
        return HTTP_SERVICE_UNAVAILABLE;
    }
    /* The state is spent in this epoch: if the store forgets spent states, it is refused. */
    if (msa_cache_state_epoch(r, srv, ls.state, &ls.epoch) != APR_SUCCESS) {
        MSA_RLOG(r, APLOG_ERR, "cache_error", "MSAuthCache %s cannot answer: no login started",
                 srv->cache);
        return HTTP_SERVICE_UNAVAILABLE;
    }
    if (msa_login_state_seal(r->pool, &ls, k->data, k->len, &cookie, &err) != APR_SUCCESS) {
        MSA_RLOG(r, APLOG_ERR, "login_start", "could not make the login state");
        return HTTP_SERVICE_UNAVAILABLE;
    }
    prune_state_cookies(r, srv, app);
    /*
     * Lax: the browser must send it on Microsoft's top-level redirect back.
     * Path "/": a login started on any page must see the others to prune them
     * (MSAuthStripCookie hides them from the app).
     */
    msa_cookie_set(r, srv, app, msa_login_state_cookie_name(r->pool, ls.state), cookie, "/",
                   MSA_STATE_TTL, MSA_SAMESITE_LAX);
    msa_login_client(r, srv, app, &c);
    if (claims != NULL) {
        c.claims = claims;
    }
    msa_metric_login_started();
    MSA_RLOG(r, APLOG_DEBUG, "login_start", "appid=%s", msa_app_token_id(app));
    return msa_redirect(r,
                        msa_ms_authorize_url(r->pool, &c, ls.state,
                                             msa_pkce_challenge(r->pool, ls.verifier), ls.nonce));
}

int msa_login_handler(request_rec *r, const msa_srv_t *srv)
{
    apr_table_t *q;
    const char *appid = NULL, *return_to = NULL;
    if (msa_query_parse(r->pool, r->args, &q) != APR_SUCCESS ||
        msa_query_get1(q, "appid", &appid) == APR_EINVAL ||
        msa_query_get1(q, "return_to", &return_to) == APR_EINVAL) {
        return msa_login_fail(r, srv, NULL, "invalid_request", APLOG_INFO,
                              "malformed /login query");
    }
    const msa_app_t *app = msa_app_lookup(r, srv, appid ? appid : "");
    if (app == NULL) {
        return msa_login_fail(r, srv, NULL, "unknown_app", APLOG_INFO,
                              apr_psprintf(r->pool, "no app '%s'", msa_loggable(r, appid)));
    }
    return msa_start_login(r, srv, app, msa_return_target(r, srv, app, return_to));
}

int msa_finish_login(request_rec *r, const msa_srv_t *srv, const msa_app_t *app,
                     const msa_identity_t *ident, const char *return_to)
{
    msa_token_t st;
    char *session = NULL;
    const char *err = NULL;
    const msa_key_t *key = &APR_ARRAY_IDX(app->keys, 0, msa_key_t);
    apr_int64_t now = apr_time_sec(apr_time_now());
    int rc = msa_issue_session(r, srv, app, ident, &st, &session);
    if (rc == HTTP_SERVICE_UNAVAILABLE) {
        return rc;
    }
    if (rc != OK) {
        return msa_login_fail(r, srv, app, "profile_failed", APLOG_WARNING,
                              "no session token issued");
    }
    msa_request_record(r, 1)->issued = apr_pmemdup(r->pool, &st, sizeof(st));
    msa_cookie_set(r, srv, app, app->cookie_name, session, app->cookie_path, app->session_timeout,
                   app->cookie_samesite);

    const char *target = return_to;
    if (target == NULL) {
        /* Only the success URL carries Para's placeholders (4.3). */
        target = app->signin_success;
        if (ap_strstr_c(target, "jwt=id") != NULL) {
            msa_token_t it;
            char *id_token = NULL;
            apr_status_t rv =
                msa_token_id(r->pool, ident, msa_app_token_id(app), now, app->id_token_ttl, &it);
            it.epoch = st.epoch; /* spent ID tokens are remembered in the same epoch */
            it.sid_epoch = st.sid_epoch;
            it.aud = st.aud;
            if (rv != APR_SUCCESS ||
                msa_token_sign(r->pool, &it, key, &id_token, &err) != APR_SUCCESS) {
                return msa_login_fail(r, srv, app, "profile_failed", APLOG_WARNING,
                                      "ID token not issued");
            }
            target = msa_url_fill(r->pool, target, "jwt", "id", id_token);
        }
        target = msa_url_fill(r->pool, target, "jwt", "?", session);
    }
    msa_metric_login_ok();
    msa_metric_token_issued();
    MSA_RLOG(r, APLOG_INFO, "login_ok", "appid=%s user=%s", msa_app_token_id(app),
             msa_loggable(r, ident->id));
    return msa_redirect(r, target);
}
