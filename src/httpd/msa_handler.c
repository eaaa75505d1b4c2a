/*
 * The module's browser endpoints under MSAuthCallbackPath: the callback
 * (INTERFACE.md 4.2), /login (4.1). They run as a quick handler so that a
 * site protecting "/" with AuthType Microsoft still lets the login finish.
 */
#include <apr_lib.h>
#include <apr_strings.h>
#include <http_core.h>
#include <http_protocol.h>
#include <http_request.h>
#include <json-c/json.h>

#include "msa_api.h"
#include "msa_claims.h"
#include "msa_cookie.h"
#include "msa_jose.h"
#include "msa_module.h"
#include "msa_ms.h"
#include "msa_state.h"
#include "msa_token.h"
#include "msa_url.h"

#define STATE_TTL        600  /* seconds a login may take */
#define STATE_COOKIE_MAX 4    /* parallel logins kept per browser */
#define JWKS_MIN_REFRESH 60   /* seconds between fetches on an unknown kid */
#define MAX_GROUPS       1500 /* a longer list fails the login (and would not fit the cache) */
#define MAX_COOKIE       4000 /* bytes of name=value: browsers keep at least 4096 */

/* Request helpers ------------------------------------------------------------------- */

/* A forwarded header's first value when it is plain enough to trust as a host or scheme. */
static const char *forwarded(request_rec *r, const char *name)
{
    const char *v = apr_table_get(r->headers_in, name);
    if (v == NULL) {
        return NULL;
    }
    const char *end = v + strcspn(v, ",");
    while (end > v && end[-1] == ' ') {
        end--;
    }
    for (const char *c = v; c < end; c++) {
        if (!(apr_isalnum(*c) || *c == '.' || *c == '-' || *c == ':' || *c == '[' || *c == ']')) {
            return NULL;
        }
    }
    return end > v ? apr_pstrmemdup(r->pool, v, (apr_size_t)(end - v)) : NULL;
}

int msa_request_is_https(request_rec *r, const msa_srv_t *srv)
{
    if (srv->trust_forwarded) {
        const char *proto = forwarded(r, "X-Forwarded-Proto");
        if (proto != NULL) {
            return strcasecmp(proto, "https") == 0;
        }
    }
    return strcmp(ap_http_scheme(r), "https") == 0;
}

const char *msa_self_origin(request_rec *r, const msa_srv_t *srv)
{
    if (srv->trust_forwarded) {
        const char *host = forwarded(r, "X-Forwarded-Host");
        if (host != NULL) {
            return apr_pstrcat(r->pool, msa_request_is_https(r, srv) ? "https" : "http", "://",
                               host, NULL);
        }
    }
    const char *origin = ap_construct_url(r->pool, "/", r);
    return apr_pstrmemdup(r->pool, origin, strlen(origin) - 1);
}

const char *msa_cookie_get(request_rec *r, const char *name)
{
    return msa_cookie_find(r->pool, apr_table_get(r->headers_in, "Cookie"), name);
}

static const char *const samesite_names[] = {"Lax", "Strict", "None"};

void msa_cookie_set(request_rec *r, const msa_srv_t *srv, const msa_app_t *app, const char *name,
                    const char *value, const char *path, apr_int64_t max_age, int samesite)
{
    msa_cookie_attrs_t attrs = {
        .path = path,
        .domain = app->cookie_domain,
        .max_age = max_age,
        .samesite = samesite_names[samesite],
        .secure = app->cookie_secure == MSA_SECURE_ON ||
                  (app->cookie_secure == MSA_SECURE_AUTO && msa_request_is_https(r, srv)) ||
                  samesite == MSA_SAMESITE_NONE,
    };
    apr_table_addn(r->err_headers_out, "Set-Cookie",
                   msa_cookie_format(r->pool, name, value, &attrs));
}

/* A string safe to put in a log line: printable ASCII, bounded. */
static const char *loggable(request_rec *r, const char *s)
{
    if (s == NULL) {
        return "-";
    }
    size_t n = strlen(s) > 64 ? 64 : strlen(s);
    char *out = apr_pstrmemdup(r->pool, s, n);
    for (char *c = out; *c; c++) {
        if (*c < 0x21 || *c > 0x7e) {
            *c = '?';
        }
    }
    return out;
}

/* A validated return target, or NULL (refusal logged) so the caller uses its default. */
const char *msa_return_target(request_rec *r, const msa_srv_t *srv, const msa_app_t *app,
                              const char *target)
{
    if (target == NULL) {
        return NULL;
    }
    const char *ok =
        msa_redirect_target(r->pool, target, msa_self_origin(r, srv), app->redirect_allow);
    if (ok == NULL) {
        MSA_RLOG(r, APLOG_INFO, "return_to_refused",
                 "return target refused, the default target is used instead");
    }
    return ok;
}

/*
 * Puts the Set-Cookie lines that clear a cookie after those that set one.
 * curl 7.88 with a cookie jar keeps a cookie whose clear is followed by any
 * other Set-Cookie of the same response: state cookies piled up in scripted
 * logins until the Cookie header overflowed. Each of the module's answers
 * clears at most one cookie in a login that runs its course.
 */
static void clears_last(request_rec *r)
{
    const apr_array_header_t *arr = apr_table_elts(r->err_headers_out);
    const apr_table_entry_t *e = (const apr_table_entry_t *)arr->elts;
    apr_array_header_t *sets = apr_array_make(r->pool, 2, sizeof(const char *));
    apr_array_header_t *clears = apr_array_make(r->pool, 2, sizeof(const char *));
    for (int i = 0; i < arr->nelts; i++) {
        if (e[i].key != NULL && strcasecmp(e[i].key, "Set-Cookie") == 0) {
            int clear = ap_strstr_c(e[i].val, "; Max-Age=0;") != NULL;
            APR_ARRAY_PUSH(clear ? clears : sets, const char *) = e[i].val;
        }
    }
    if (clears->nelts == 0 || sets->nelts == 0) {
        return;
    }
    apr_table_unset(r->err_headers_out, "Set-Cookie");
    apr_array_cat(sets, clears);
    for (int i = 0; i < sets->nelts; i++) {
        apr_table_addn(r->err_headers_out, "Set-Cookie", APR_ARRAY_IDX(sets, i, const char *));
    }
}

static int redirect(request_rec *r, const char *url)
{
    clears_last(r);
    apr_table_setn(r->headers_out, "Location", url);
    apr_table_setn(r->err_headers_out, "Cache-Control", "no-store");
    return HTTP_MOVED_TEMPORARILY;
}

/* 302 to the app's failure URL with its cause; the root app's when the app is unknown. */
static int fail(request_rec *r, const msa_srv_t *srv, const msa_app_t *app, const char *cause,
                int level, const char *detail)
{
    if (app == NULL) {
        app = srv->root;
    }
    msa_metric_login_failed(cause);
    ap_log_rerror(APLOG_MARK, level, 0, r, "msauth: login_failed: cause=%s appid=%s: %s", cause,
                  msa_app_token_id(app), detail);
    return redirect(r, msa_url_fill(r->pool, app->signin_failure, "cause", "?", cause));
}

static void client_of(request_rec *r, const msa_srv_t *srv, const msa_app_t *app,
                      msa_ms_client_t *c)
{
    c->login_host = srv->login_host;
    c->graph_host = srv->graph_host;
    c->tenant = app->tenant;
    c->client_id = app->client_id;
    c->client_secret = app->client_secret;
    c->scope = app->scope;
    c->redirect_uri = app->redirect_uri
                          ? app->redirect_uri
                          : apr_pstrcat(r->pool, msa_self_origin(r, srv), srv->callback_path, NULL);
}

/* JWKS cache ---------------------------------------------------------------------- */

/*
 * Kept in MSAuthCache as "<fetched>|<refreshed>|<document>" (epoch seconds), so
 * every process and server sharing the cache agrees on the keys and on when an
 * unknown kid last caused a refetch.
 */
typedef struct jwks_entry {
    apr_int64_t fetched, refreshed;
    const char *json;
} jwks_entry_t;

static int jwks_parse(char *v, jwks_entry_t *e)
{
    char *bar1 = strchr(v, '|'), *bar2 = bar1 ? strchr(bar1 + 1, '|') : NULL;
    if (bar2 == NULL) {
        return 0;
    }
    e->fetched = apr_atoi64(v);
    e->refreshed = apr_atoi64(bar1 + 1);
    e->json = bar2 + 1;
    return 1;
}

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
    jwks_entry_t e = {0, 0, NULL};
    char *v = NULL;
    int cached = msa_cache_get(r, srv, MSA_REC_JWKS, url, url, 64 * 1024, &v) == APR_SUCCESS &&
                 jwks_parse(v, &e);
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
    MSA_RLOG(r, APLOG_INFO, "jwks_fetched", "keys of tenant %s fetched%s", loggable(r, c->tenant),
             refresh ? " again for an unknown key id" : "");
    const char *entry = apr_psprintf(r->pool, "%" APR_INT64_T_FMT "|%" APR_INT64_T_FMT "|%s", now,
                                     refresh ? now : (apr_int64_t)0, doc);
    /* Keys are kept a day; a cache that cannot keep them only costs a fetch per login. */
    if (msa_cache_put(r, srv, MSA_REC_JWKS, url, url, entry, apr_time_from_sec(now + 86400)) !=
        APR_SUCCESS) {
        MSA_RLOG(r, APLOG_WARNING, "cache_error", "MSAuthCache %s cannot keep the JWKS",
                 srv->cache);
    }
    *json = doc;
    return APR_SUCCESS;
}

/* The id_token --------------------------------------------------------------------- */

static const char *jstr(apr_pool_t *p, json_object *o, const char *name)
{
    json_object *v;
    if (json_object_object_get_ex(o, name, &v) && json_object_is_type(v, json_type_string)) {
        return apr_pstrdup(p, json_object_get_string(v));
    }
    return NULL;
}

static int jint(json_object *o, const char *name, apr_int64_t *out)
{
    json_object *v;
    if (json_object_object_get_ex(o, name, &v) && json_object_is_type(v, json_type_int)) {
        *out = json_object_get_int64(v);
        return 1;
    }
    return 0;
}

static const char *vouched(int email, int upn)
{
    return email && upn ? "email upn" : email ? "email" : upn ? "upn" : NULL;
}

/*
 * Verifies Microsoft's id_token (4.2 step 4) and fills ident from it.
 * Returns NULL, or the failure cause with *detail set.
 */
static const char *verify_id_token(request_rec *r, const msa_srv_t *srv, const msa_app_t *app,
                                   const msa_ms_client_t *c, const char *id_token,
                                   const char *nonce, msa_identity_t *ident, int *overage,
                                   const char **detail)
{
    const char *jwks = NULL;
    char *payload = NULL;
    apr_status_t rv = jwks_get(r, srv, c, 0, &jwks, detail);
    if (rv == APR_SUCCESS) {
        rv = msa_jws_rs256_verify(r->pool, id_token, jwks, &payload, detail);
        if (rv == MSA_ENOKEY) {
            /* Keys roll over: an unknown kid is worth one more look at the JWKS. */
            rv = jwks_get(r, srv, c, 1, &jwks, detail);
            if (rv == APR_SUCCESS) {
                rv = msa_jws_rs256_verify(r->pool, id_token, jwks, &payload, detail);
            }
        }
    }
    if (rv == MSA_EUNREACHABLE) {
        return "idp_unreachable";
    }
    if (rv != APR_SUCCESS) {
        return "invalid_id_token";
    }
    json_object *o = json_tokener_parse(payload);
    const char *cause = "invalid_id_token";
    apr_int64_t now = apr_time_sec(apr_time_now()), exp = 0, nbf = 0, iat = 0;
    if (o == NULL || !json_object_is_type(o, json_type_object)) {
        *detail = "id_token claims are not a JSON object";
        goto out;
    }
    const char *aud = jstr(r->pool, o, "aud"), *iss = jstr(r->pool, o, "iss");
    const char *tid = jstr(r->pool, o, "tid"), *tok_nonce = jstr(r->pool, o, "nonce");
    if (aud == NULL || strcmp(aud, app->client_id) != 0) {
        *detail = "id_token aud is not our client id";
        goto out;
    }
    if (tid == NULL || msa_parse_guid(tid) != NULL) {
        *detail = "id_token has no tenant id";
        goto out;
    }
    if (iss == NULL ||
        strcmp(iss, apr_pstrcat(r->pool, srv->login_host, "/", tid, "/v2.0", NULL)) != 0) {
        *detail = "id_token iss does not match its tenant";
        goto out;
    }
    if (!jint(o, "exp", &exp) || exp <= now - srv->clock_skew) {
        *detail = "id_token expired";
        goto out;
    }
    if ((jint(o, "nbf", &nbf) && nbf > now + srv->clock_skew) ||
        (jint(o, "iat", &iat) && iat > now + srv->clock_skew)) {
        *detail = "id_token not yet valid";
        goto out;
    }
    if (nonce != NULL && (tok_nonce == NULL || !msa_ct_streq(tok_nonce, nonce))) {
        *detail = "id_token nonce does not match the login";
        goto out;
    }
    ident->id = jstr(r->pool, o, "oid");
    if (ident->id == NULL) {
        *detail = "id_token has no oid";
        goto out;
    }
    if (!msa_app_tenant_allowed(app, tid)) {
        *detail = apr_psprintf(r->pool, "tenant %s is not allowed", tid);
        cause = "tenant_not_allowed";
        goto out;
    }
    ident->tid = tid;
    ident->name = jstr(r->pool, o, "name");
    ident->upn = jstr(r->pool, o, "preferred_username");
    ident->email = jstr(r->pool, o, "email");
    /* xms_edov: Microsoft says the email claim's domain belongs to the user's tenant. */
    json_object *edov;
    int verified = ident->email != NULL && json_object_object_get_ex(o, "xms_edov", &edov) &&
                   (json_object_is_type(edov, json_type_boolean)
                        ? json_object_get_boolean(edov)
                        : json_object_is_type(edov, json_type_string) &&
                              (strcasecmp(json_object_get_string(edov), "true") == 0 ||
                               strcmp(json_object_get_string(edov), "1") == 0));
    ident->verified = vouched(verified, 0);
    if (ident->email == NULL && ident->upn != NULL && strchr(ident->upn, '@') != NULL) {
        ident->email = ident->upn;
    }
    ident->oid = ident->id;
    json_object *v;
    if (json_object_object_get_ex(o, "groups", &v) && json_object_is_type(v, json_type_array)) {
        size_t n = json_object_array_length(v);
        ident->groups = apr_array_make(r->pool, (int)n, sizeof(const char *));
        for (size_t i = 0; i < n; i++) {
            json_object *g = json_object_array_get_idx(v, i);
            if (json_object_is_type(g, json_type_string) &&
                msa_parse_guid(json_object_get_string(g)) == NULL) {
                APR_ARRAY_PUSH(ident->groups, const char *) =
                    apr_pstrdup(r->pool, json_object_get_string(g));
            }
        }
    }
    /* Over 200 groups Microsoft sends a pointer to Graph instead: the "overage". */
    json_object *names, *g;
    *overage = json_object_object_get_ex(o, "_claim_names", &names) &&
               json_object_is_type(names, json_type_object) &&
               json_object_object_get_ex(names, "groups", &g);
    cause = NULL;
out:
    json_object_put(o);
    return cause;
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
    ident->verified = vouched(
        msa_word_in(ident->verified, "email") || msa_ms_address_in(ident->email, org.domains),
        msa_word_in(ident->verified, "upn") || msa_ms_address_in(ident->upn, org.domains));
    return NULL;
}

/* Login start (4.1) ------------------------------------------------------------------- */

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
    if (strncmp(name, "msauth_state_", 13) == 0) {
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
    msa_cookie_each(r->pool, apr_table_get(r->headers_in, "Cookie"), collect_state, &pc);
    int excess = pc.found->nelts - (STATE_COOKIE_MAX - 1);
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
                   STATE_TTL, MSA_SAMESITE_LAX);
    client_of(r, srv, app, &c);
    msa_metric_login_started();
    MSA_RLOG(r, APLOG_DEBUG, "login_start", "appid=%s", msa_app_token_id(app));
    return redirect(r, msa_ms_authorize_url(r->pool, &c, ls.state,
                                            msa_pkce_challenge(r->pool, ls.verifier), ls.nonce));
}

static int handle_login(request_rec *r, const msa_srv_t *srv)
{
    apr_table_t *q;
    const char *appid = NULL, *return_to = NULL;
    if (msa_query_parse(r->pool, r->args, &q) != APR_SUCCESS ||
        msa_query_get1(q, "appid", &appid) == APR_EINVAL ||
        msa_query_get1(q, "return_to", &return_to) == APR_EINVAL) {
        return fail(r, srv, NULL, "invalid_request", APLOG_INFO, "malformed /login query");
    }
    const msa_app_t *app = msa_app_lookup(r, srv, appid ? appid : "");
    if (app == NULL) {
        return fail(r, srv, NULL, "unknown_app", APLOG_INFO,
                    apr_psprintf(r->pool, "no app '%s'", loggable(r, appid)));
    }
    return msa_start_login(r, srv, app, msa_return_target(r, srv, app, return_to));
}

/* The callback (4.2) ------------------------------------------------------------------ */

/* Checks a module-initiated state against its cookie, clearing the cookie. */
static const char *check_state_cookie(request_rec *r, const msa_srv_t *srv, const msa_app_t *app,
                                      const char *state, msa_login_state_t *ls)
{
    const char *name = msa_login_state_cookie_name(r->pool, state);
    const char *value = msa_cookie_get(r, name);
    const char *err = NULL;
    if (value == NULL) {
        return "no state cookie for this state (another browser, expired or already used)";
    }
    msa_cookie_set(r, srv, app, name, "", "/", 0, MSA_SAMESITE_LAX);
    for (int i = 0; i < app->keys->nelts; i++) {
        const msa_key_t *k = &APR_ARRAY_IDX(app->keys, i, msa_key_t);
        if (msa_login_state_open(r->pool, value, k->data, k->len, ls, &err) == APR_SUCCESS) {
            break;
        }
        ls->state = NULL;
    }
    if (ls->state == NULL) {
        return "state cookie does not decrypt";
    }
    if (!msa_ct_streq(ls->state, state) || strcmp(ls->appid, app->appid) != 0) {
        return "state does not match its cookie";
    }
    apr_int64_t now = apr_time_sec(apr_time_now());
    if (ls->created > now + srv->clock_skew || now - ls->created > STATE_TTL) {
        return "state cookie expired";
    }
    return NULL;
}

static int handle_callback(request_rec *r, const msa_srv_t *srv)
{
    apr_table_t *q;
    const char *state = NULL, *code = NULL, *error = NULL, *detail = NULL;
    msa_state_ref_t ref;
    msa_login_state_t ls = {0};
    int module_initiated = 0;

    if (msa_query_parse(r->pool, r->args, &q) != APR_SUCCESS) {
        return fail(r, srv, NULL, "invalid_request", APLOG_INFO,
                    "malformed query string (broken escape or not UTF-8)");
    }
    if (msa_query_get1(q, "state", &state) == APR_EINVAL) {
        return fail(r, srv, NULL, "invalid_state", APLOG_INFO, "state given more than once");
    }
    if (msa_state_parse(r->pool, state, &ref) != APR_SUCCESS) {
        return fail(
            r, srv, NULL, "invalid_state", APLOG_INFO,
            apr_psprintf(r->pool, "malformed state (%" APR_SIZE_T_FMT " bytes)", strlen(state)));
    }
    const msa_app_t *app = msa_app_lookup(r, srv, ref.appid);
    if (app == NULL) {
        return fail(r, srv, NULL, "unknown_app", APLOG_INFO,
                    apr_psprintf(r->pool, "no app '%s'", ref.appid));
    }
    if (!ref.client_built) {
        const char *why = check_state_cookie(r, srv, app, state, &ls);
        if (why != NULL) {
            return fail(r, srv, app, "invalid_state", APLOG_INFO, why);
        }
        /* Single use, even if the cookie and the state are replayed together. */
        apr_status_t used = msa_cache_claim(r, srv, MSA_REC_STATE, state, state,
                                            apr_time_from_sec(ls.created + STATE_TTL + 60));
        if (used == APR_EEXIST) {
            return fail(r, srv, app, "invalid_state", APLOG_INFO, "state used already");
        }
        if (used != APR_SUCCESS) {
            MSA_RLOG(r, APLOG_ERR, "cache_error", "MSAuthCache %s cannot record the login state",
                     srv->cache);
            return HTTP_SERVICE_UNAVAILABLE;
        }
        /* Read after the claim: a store that lost its spent states shows a new epoch by now. */
        const char *epoch = NULL;
        if (msa_cache_state_epoch(r, srv, state, &epoch) != APR_SUCCESS) {
            MSA_RLOG(r, APLOG_ERR, "cache_error", "MSAuthCache %s cannot answer for the state",
                     srv->cache);
            return HTTP_SERVICE_UNAVAILABLE;
        }
        if (ls.epoch == NULL || strcmp(ls.epoch, epoch) != 0) {
            return fail(r, srv, app, "invalid_state", APLOG_INFO,
                        "state from before MSAuthCache's current epoch (it may have been spent)");
        }
        module_initiated = 1;
    } else if (!app->legacy_state) {
        return fail(r, srv, app, "unsolicited_login", APLOG_INFO,
                    "a client-built state and MSAuthLegacyState is Off");
    }
    if (apr_table_get(q, "error") != NULL) {
        msa_query_get1(q, "error", &error);
        return fail(r, srv, app, "access_denied", APLOG_INFO,
                    apr_psprintf(r->pool, "Microsoft answered error=%s", loggable(r, error)));
    }
    apr_status_t rv = msa_query_get1(q, "code", &code);
    if (rv != APR_SUCCESS || *code == '\0' || strlen(code) > 8192) {
        return fail(r, srv, app, "invalid_request", APLOG_INFO,
                    rv == APR_EINVAL ? "code given more than once" : "no code");
    }

    /*
     * A code is redeemed once, whatever Microsoft does with a second try: a client-built
     * login has no state of ours to spend, and this covers it too.
     */
    apr_status_t spent = msa_cache_claim(r, srv, MSA_REC_CODE, code, code,
                                         apr_time_now() + apr_time_from_sec(STATE_TTL + 60));
    if (spent == APR_EEXIST) {
        return fail(r, srv, app, "token_exchange_failed", APLOG_INFO, "code used already");
    }
    if (spent != APR_SUCCESS) {
        MSA_RLOG(r, APLOG_ERR, "cache_error", "MSAuthCache %s cannot record the code", srv->cache);
        return HTTP_SERVICE_UNAVAILABLE;
    }

    msa_ms_client_t c;
    msa_ms_tokens_t tokens;
    client_of(r, srv, app, &c);
    rv = msa_ms_redeem_code(srv->http, r->pool, &c, code, module_initiated ? ls.verifier : NULL,
                            &tokens, &detail);
    if (rv == MSA_EUNREACHABLE) {
        return fail(r, srv, app, "idp_unreachable", APLOG_WARNING, detail);
    }
    if (rv != APR_SUCCESS) {
        return fail(r, srv, app, "token_exchange_failed", APLOG_WARNING, detail);
    }

    msa_identity_t ident = {0};
    int overage = 0;
    if (tokens.id_token != NULL) {
        const char *cause =
            verify_id_token(r, srv, app, &c, tokens.id_token, module_initiated ? ls.nonce : NULL,
                            &ident, &overage, &detail);
        if (cause != NULL) {
            return fail(r, srv, app, cause, APLOG_WARNING, detail);
        }
    } else if (module_initiated && msa_word_in(c.scope, "openid")) {
        /* We asked for an id_token (and its nonce): a scope edited on the way is no login. */
        return fail(r, srv, app, "invalid_id_token", APLOG_INFO,
                    "the login asked for openid and the token answer has no id_token");
    }
    const char *granted = tokens.scope ? tokens.scope : app->scope;
    if (tokens.id_token == NULL || msa_ms_scope_has_user_read(granted)) {
        msa_ms_profile_t prof;
        rv = msa_ms_graph_me(srv->http, r->pool, srv->graph_host, tokens.access_token, &prof,
                             &detail);
        if (rv == MSA_EUNREACHABLE) {
            return fail(r, srv, app, "idp_unreachable", APLOG_WARNING, detail);
        }
        if (rv != APR_SUCCESS) {
            return fail(r, srv, app, "profile_failed", APLOG_WARNING, detail);
        }
        if (ident.email == NULL || prof.email == NULL || strcasecmp(ident.email, prof.email) != 0) {
            ident.verified = NULL; /* xms_edov spoke of the id_token's address only */
        }
        ident.id = prof.id;
        ident.name = prof.name;
        ident.email = prof.email;
        ident.upn = prof.upn;
        /* Without an id_token the tenant comes from Graph, and passes the same rule. */
        const char *cause =
            msa_graph_tenant(r, srv, app, tokens.access_token, &prof, 1, &ident, &detail);
        if (cause != NULL) {
            return fail(r, srv, app, cause, APLOG_WARNING, detail);
        }
    }
    if (app->groups == MSA_GROUPS_GRAPH || (app->groups == MSA_GROUPS_TOKEN && overage)) {
        rv = msa_ms_graph_groups(srv->http, r->pool, srv->graph_host, tokens.access_token,
                                 MAX_GROUPS, &ident.groups, &detail);
        if (rv != APR_SUCCESS) {
            return fail(r, srv, app, rv == MSA_EUNREACHABLE ? "idp_unreachable" : "profile_failed",
                        APLOG_WARNING, apr_pstrcat(r->pool, "groups: ", detail, NULL));
        }
    } else if (app->groups == MSA_GROUPS_OFF) {
        ident.groups = NULL;
    }

    return msa_finish_login(r, srv, app, &ident, module_initiated ? ls.return_to : NULL);
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
        return fail(r, srv, app, "profile_failed", APLOG_WARNING, "no session token issued");
    }
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
            it.aud = st.aud;
            if (rv != APR_SUCCESS ||
                msa_token_sign(r->pool, &it, key, &id_token, &err) != APR_SUCCESS) {
                return fail(r, srv, app, "profile_failed", APLOG_WARNING, "ID token not issued");
            }
            target = msa_url_fill(r->pool, target, "jwt", "id", id_token);
        }
        target = msa_url_fill(r->pool, target, "jwt", "?", session);
    }
    msa_metric_login_ok();
    msa_metric_token_issued();
    MSA_RLOG(r, APLOG_INFO, "login_ok", "appid=%s user=%s", msa_app_token_id(app),
             loggable(r, ident->id));
    return redirect(r, target);
}

/* The endpoint's name when path is the callback path or below it; NULL otherwise. */
static const char *endpoint(const char *path, const char *base)
{
    size_t n = strlen(base);
    if (strncmp(path, base, n) != 0) {
        return NULL;
    }
    return path[n] == '\0' ? "" : path[n] == '/' ? path + n + 1 : NULL;
}

/* The request line ---------------------------------------------------------------- */

/* Overwrites the value of param (up to '&', '#' or ' ') in the query of line from q on. */
static void redact_param(char *q, const char *param, int jwt_only)
{
    size_t n = strlen(param);
    for (char *p = q; p && *p && *p != ' '; p = strpbrk(p + 1, "& ")) {
        char *name = (*p == '?' || *p == '&') ? p + 1 : p;
        if (strncmp(name, param, n) != 0 || name[n] != '=') {
            continue;
        }
        char *v = name + n + 1;
        if (jwt_only && strncmp(v, "eyJ", 3) != 0) {
            continue;
        }
        /* In place: the line only gets shorter, so the value is overwritten and the rest moved. */
        char *end = v + strcspn(v, "&# ");
        static const char mark[] = "[redacted]";
        if ((size_t)(end - v) > sizeof(mark) - 1) {
            memcpy(v, mark, sizeof(mark) - 1);
            memmove(v + sizeof(mark) - 1, end, strlen(end) + 1);
        } else {
            memset(v, '*', (size_t)(end - v));
        }
    }
}

/*
 * The page Para's jwt=id lands on posts its ID token to /passwordless or the
 * JWT API with that URL as the Referer, which httpd appends to every error-log
 * line of the request. No app sees the module's own requests, so the header
 * itself is changed there.
 */
static void redact_referer(request_rec *r)
{
    const char *referer = apr_table_get(r->headers_in, "Referer");
    const char *q = referer ? strchr(referer, '?') : NULL;
    if (q == NULL) {
        return;
    }
    char *copy = apr_pstrdup(r->pool, referer);
    redact_param(copy + (q - referer), "jwt", 1);
    redact_param(copy + (q - referer), "token", 0);
    apr_table_setn(r->headers_in, "Referer", copy);
}

/*
 * Codes and tokens travel in query strings (Microsoft's redirect, Para's
 * jwt=id landing, /passwordless); the access log's %r would keep them.
 * Only the logged request line is changed, never r->args.
 */
int msa_redact_request_line(request_rec *r)
{
    const msa_srv_t *srv = msa_srv_get(r->server);
    const char *path = r->parsed_uri.path;
    if (r->the_request == NULL || !msa_srv_has_apps(srv)) {
        return DECLINED;
    }
    int callback = path != NULL && endpoint(path, srv->callback_path) != NULL;
    if (callback || (path != NULL && strcmp(path, srv->jwt_path) == 0)) {
        redact_referer(r);
    }
    char *q = strchr(r->the_request, '?');
    if (q == NULL) {
        return DECLINED;
    }
    char *line = apr_pstrdup(r->pool, r->the_request);
    q = line + (q - r->the_request);
    if (callback) {
        redact_param(q, "code", 0);
        redact_param(q, "token", 0);
        redact_param(q, "error_description", 0);
    }
    redact_param(q, "jwt", 1);
    r->the_request = line;
    return DECLINED;
}

/* /logout and /me -------------------------------------------------------------------- */

int msa_answer_json(request_rec *r, int status, const char *json)
{
    r->status = status;
    ap_set_content_type(r, "application/json");
    apr_table_setn(r->err_headers_out, "Cache-Control", "no-store");
    ap_rputs(json, r);
    ap_rputs("\n", r);
    return OK;
}

int msa_answer_error(request_rec *r, int status, const char *message)
{
    return msa_answer_json(r, status, msa_api_error_json(r->pool, status, message));
}

static int handle_logout(request_rec *r, const msa_srv_t *srv)
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
        MSA_RLOG(r, APLOG_INFO, "logout", "no app '%s'", loggable(r, appid));
        return HTTP_NOT_FOUND;
    }
    msa_token_t *t = NULL;
    const char *presented;
    int rc = msa_session_check(r, srv, app, 1, &t, &presented);
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
                 loggable(r, t->sub));
    }
    msa_cookie_set(r, srv, app, app->cookie_name, "", app->cookie_path, 0, app->cookie_samesite);
    const char *target = msa_return_target(r, srv, app, return_to);
    if (target == NULL) {
        target = "/";
    }
    if (sso != NULL && strcmp(sso, "1") == 0) {
        msa_ms_client_t c;
        client_of(r, srv, app, &c);
        const char *back =
            *target == '/' ? apr_pstrcat(r->pool, msa_self_origin(r, srv), target, NULL) : target;
        return redirect(r, msa_ms_logout_url(r->pool, &c, back));
    }
    return redirect(r, target);
}

static int handle_me(request_rec *r, const msa_srv_t *srv)
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
    int rc = msa_session_check(r, srv, app, 1, &t, &presented);
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

/*
 * Why a POST cannot be shown to come from a page of this server, or NULL: its
 * Origin, else its Referer, must be this origin. Otherwise any site could post
 * its own user's ID token and sign the visitor in as that user (login CSRF).
 */
static const char *foreign_post(request_rec *r, const msa_srv_t *srv)
{
    const char *self = msa_self_origin(r, srv);
    const char *origin = apr_table_get(r->headers_in, "Origin");
    const char *referer = apr_table_get(r->headers_in, "Referer");
    size_t n = strlen(self);
    if (origin != NULL) {
        return strcasecmp(origin, self) == 0
                   ? NULL
                   : apr_psprintf(r->pool, "Origin %s is another origin", loggable(r, origin));
    }
    if (referer == NULL) {
        return "neither Origin nor Referer shows the page's origin";
    }
    if (strncasecmp(referer, self, n) == 0 && strchr("/?#", referer[n]) != NULL) {
        return NULL; /* strchr finds the NUL too: the origin alone */
    }
    /* Only the origin of it: a path or query may carry a token. */
    const char *host = ap_strstr_c(referer, "://");
    if (host == NULL) {
        return "the Referer is no URL of an origin";
    }
    size_t end = (size_t)(host + 3 - referer) + strcspn(host + 3, "/?#");
    return apr_psprintf(r->pool, "Referer %s is another origin",
                        loggable(r, apr_pstrmemdup(r->pool, referer, end)));
}

/* The token (and returnto) of a POST form, or NULL with the failure answered in *rc. */
static const char *passwordless_form(request_rec *r, const msa_srv_t *srv, const char **returnto,
                                     int *rc)
{
    const char *ct = apr_table_get(r->headers_in, "Content-Type");
    static const char form[] = "application/x-www-form-urlencoded";
    char *body = NULL;
    apr_size_t len = 0;
    apr_table_t *q;
    const char *token = NULL, *why = NULL;
    if (ct == NULL || strncasecmp(ct, form, sizeof(form) - 1) != 0 ||
        strchr("; ", ct[sizeof(form) - 1]) == NULL) {
        why = "POST /passwordless takes an application/x-www-form-urlencoded form";
    } else if (msa_read_body(r, &body, &len) != OK) {
        why = "POST /passwordless: the form is over 64 KiB or could not be read";
    } else if (msa_query_parse(r->pool, body, &q) != APR_SUCCESS ||
               msa_query_get1(q, "token", &token) != APR_SUCCESS ||
               msa_query_get1(q, "returnto", returnto) == APR_EINVAL) {
        why = "POST /passwordless needs one token and at most one returnto";
    }
    if (why != NULL) {
        *rc = fail(r, srv, NULL, "invalid_request", APLOG_INFO, why);
        return NULL;
    }
    /* The app's own failure URL, when the token names one. */
    const char *appid = msa_api_peek_appid(r->pool, token);
    const msa_app_t *app = msa_app_lookup(r, srv, appid ? appid : "");
    if ((why = foreign_post(r, srv)) != NULL) {
        *rc = fail(r, srv, app, "invalid_request", APLOG_INFO,
                   apr_pstrcat(r->pool, "POST /passwordless refused: ", why, NULL));
        return NULL;
    }
    return token;
}

/*
 * <callback>/passwordless: an ID token (jwt=id) for the session cookie.
 * POST token&returnto from a page of this origin; Para's GET ?token&returnto
 * only for an app with MSAuthPasswordlessGET On, since a link then signs in
 * whoever follows it as the token's owner.
 */
static int handle_passwordless(request_rec *r, const msa_srv_t *srv)
{
    apr_table_t *q;
    const char *token = NULL, *returnto = NULL;
    if (r->method_number == M_POST) {
        int rc = OK;
        if ((token = passwordless_form(r, srv, &returnto, &rc)) == NULL) {
            return rc;
        }
    } else {
        const msa_app_t *app = NULL;
        if (msa_query_parse(r->pool, r->args, &q) == APR_SUCCESS &&
            msa_query_get1(q, "token", &token) == APR_SUCCESS &&
            msa_query_get1(q, "returnto", &returnto) != APR_EINVAL) {
            const char *appid = msa_api_peek_appid(r->pool, token);
            app = msa_app_lookup(r, srv, appid ? appid : "");
        }
        if (app == NULL || !app->passwordless_get) {
            MSA_RLOG(r, APLOG_INFO, "passwordless_refused",
                     "GET refused: POST the form, or set MSAuthPasswordlessGET On for the app");
            apr_table_setn(r->err_headers_out, "Allow", "POST");
            return msa_answer_error(r, HTTP_METHOD_NOT_ALLOWED,
                                    "POST token and returnto from a page of this site");
        }
    }
    const msa_app_t *app = NULL;
    msa_identity_t ident;
    int rc = msa_spend_id_token(r, srv, NULL, token, &app, &ident);
    if (rc == HTTP_SERVICE_UNAVAILABLE) {
        return rc;
    }
    if (rc != OK) {
        return fail(r, srv, app, "invalid_token", APLOG_INFO, "ID token refused");
    }
    return msa_finish_login(r, srv, app, &ident, msa_return_target(r, srv, app, returnto));
}

/* Dispatch --------------------------------------------------------------------------- */

/* 405 naming the endpoint's own methods (Apache's would add OPTIONS and TRACE). */
static int not_allowed(request_rec *r, const char *allow)
{
    apr_table_setn(r->err_headers_out, "Allow", allow);
    return msa_answer_error(r, HTTP_METHOD_NOT_ALLOWED, "method not allowed");
}

int msa_quick_handler(request_rec *r, int lookup_uri)
{
    if (lookup_uri || r->main != NULL || r->parsed_uri.path == NULL) {
        return DECLINED;
    }
    const msa_srv_t *srv = msa_srv_get(r->server);
    if (!msa_srv_has_apps(srv)) {
        return DECLINED;
    }
    if (strcmp(r->parsed_uri.path, srv->jwt_path) == 0) {
        return msa_jwt_api(r, srv);
    }
    const char *ep = endpoint(r->parsed_uri.path, srv->callback_path);
    if (ep == NULL) {
        return DECLINED;
    }
    if (strcmp(ep, "") == 0 || strcmp(ep, "login") == 0) {
        if (r->method_number != M_GET) {
            return not_allowed(r, "GET, HEAD");
        }
        return *ep ? handle_login(r, srv) : handle_callback(r, srv);
    }
    if (strcmp(ep, "logout") == 0) {
        if (r->method_number != M_GET && r->method_number != M_POST) {
            return not_allowed(r, "GET, HEAD, POST");
        }
        return handle_logout(r, srv);
    }
    if (strcmp(ep, "_settings") == 0 || strncmp(ep, "_settings/", 10) == 0) {
        return msa_settings_api(r, srv, ep[9] ? ep + 10 : "");
    }
    if (strcmp(ep, "passwordless") == 0) {
        if (r->method_number != M_GET && r->method_number != M_POST) {
            return not_allowed(r, "POST");
        }
        return handle_passwordless(r, srv);
    }
    if (strcmp(ep, "me") == 0) {
        if (r->method_number != M_GET) {
            return not_allowed(r, "GET, HEAD");
        }
        return handle_me(r, srv);
    }
    return DECLINED;
}
