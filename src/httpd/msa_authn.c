/*
 * AuthType Microsoft (INTERFACE.md section 5): a session token from
 * Authorization: Bearer or the app's cookie becomes REMOTE_USER and the
 * identity the app is given; without one, a login or a 401.
 */
#include <apr_lib.h>
#include <apr_strings.h>
#include <http_core.h>
#include <http_protocol.h>
#include <http_request.h>
#include <mod_core.h>

#include "msa_claims.h"
#include "msa_cookie.h"
#include "msa_apps.h"
#include "msa_authn.h"
#include "msa_cae.h"
#include "msa_authz.h"
#include "msa_cache.h"
#include "msa_login.h"
#include "msa_metrics.h"
#include "msa_mstokens.h"
#include "msa_request.h"
#include "msa_session.h"
#include "msa_state.h"
#include "msa_token.h"
#include "msa_url.h"

/* Identity headers an app might trust: removed from every protected request. */
static int spoofable(const char *name)
{
    static const char *const prefixes[] = {"X_MSAUTH_", "X_MS_CLIENT_PRINCIPAL", "X_MS_TOKEN_"};
    if (name[0] != 'X' && name[0] != 'x') {
        return 0; /* every prefix starts so */
    }
    char norm[64];
    size_t n = 0;
    for (; name[n] && n < sizeof(norm) - 1; n++) {
        char c = name[n];
        norm[n] = c == '-' ? '_' : (char)apr_toupper(c);
    }
    norm[n] = '\0';
    /* Compared in environment-variable form: X-Foo-Bar, x_foo_bar and X-FOO_BAR alike. */
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(*prefixes); i++) {
        if (strncmp(norm, prefixes[i], strlen(prefixes[i])) == 0) {
            return 1;
        }
    }
    return 0;
}

static void scrub_headers(request_rec *r)
{
    const apr_array_header_t *arr = apr_table_elts(r->headers_in);
    const apr_table_entry_t *e = (const apr_table_entry_t *)arr->elts;
    apr_array_header_t *drop = NULL;
    for (int i = 0; i < arr->nelts; i++) {
        if (e[i].key != NULL && spoofable(e[i].key)) {
            if (drop == NULL) {
                drop = apr_array_make(r->pool, 2, sizeof(const char *));
            }
            APR_ARRAY_PUSH(drop, const char *) = e[i].key;
        }
    }
    for (int i = 0; drop && i < drop->nelts; i++) {
        apr_table_unset(r->headers_in, APR_ARRAY_IDX(drop, i, const char *));
    }
}

/*
 * The module's own cookies: state cookies, the session cookie of any app of
 * any virtual host or settings store (browsers send a host's cookies to all
 * its ports), and any cookie holding a token of one of the server's apps (a
 * cookie renamed since it was set).
 */
static int own_cookie(void *ctx, const char *name, apr_size_t nlen, const char *value,
                      apr_size_t vlen)
{
    request_rec *r = ctx;
    /* The default names: msauth, msauth-<appid> (apps from the settings store too). */
    if (nlen >= 6 && memcmp(name, "msauth", 6) == 0 && (nlen == 6 || name[6] == '-')) {
        return 1;
    }
    if ((nlen >= sizeof(MSA_STATE_COOKIE_PREFIX) - 1 &&
         memcmp(name, MSA_STATE_COOKIE_PREFIX, sizeof(MSA_STATE_COOKIE_PREFIX) - 1) == 0) ||
        (nlen == sizeof(MSA_CAE_COOKIE) - 1 && memcmp(name, MSA_CAE_COOKIE, nlen) == 0)) {
        return 1;
    }
    return msa_apps_own_cookie(r, name, nlen, value, vlen);
}

/* The (REDIRECT_)*HTTP_COOKIE or HTTP_AUTHORIZATION a CGI would see, as its header; else NULL. */
static const char *credential_var(const char *k)
{
    while (strncmp(k, "REDIRECT_", 9) == 0) {
        k += 9;
    }
    return strcmp(k, "HTTP_COOKIE") == 0          ? "Cookie"
           : strcmp(k, "HTTP_AUTHORIZATION") == 0 ? "Authorization"
                                                  : NULL;
}

/*
 * The environment's copies of the credentials: mod_include puts the main
 * request's headers into the environment a subrequest copies, an internal
 * redirect keeps the earlier request's as REDIRECT_*. Cookies are stripped
 * like the header, a Bearer token dropped.
 */
static void hide_env_copies(request_rec *r, const msa_dir_t *dir)
{
    const apr_array_header_t *arr = apr_table_elts(r->subprocess_env);
    const apr_table_entry_t *e = (const apr_table_entry_t *)arr->elts;
    apr_table_t *fixed = NULL;
    for (int i = 0; i < arr->nelts; i++) {
        const char *h = e[i].key ? credential_var(e[i].key) : NULL;
        if (h == NULL || e[i].val == NULL) {
            continue;
        }
        const char *v = e[i].val;
        if (*h == 'C' && dir->strip_cookie) {
            v = msa_cookie_strip(r->pool, v, own_cookie, r);
        } else if (*h == 'A' && dir->accept_bearer && strncasecmp(v, "Bearer ", 7) == 0) {
            v = NULL;
        }
        if (v != e[i].val) {
            if (fixed == NULL) {
                fixed = apr_table_make(r->pool, 2);
            }
            apr_table_setn(fixed, e[i].key, v ? v : "");
        }
    }
    const apr_array_header_t *fa = fixed ? apr_table_elts(fixed) : NULL;
    for (int i = 0; fa && i < fa->nelts; i++) {
        const apr_table_entry_t *f = &((const apr_table_entry_t *)fa->elts)[i];
        if (*f->val) {
            apr_table_setn(r->subprocess_env, f->key, f->val);
        } else {
            apr_table_unset(r->subprocess_env, f->key);
        }
    }
}

static void strip_cookies(request_rec *r, const char *header)
{
    if (header == NULL) {
        return;
    }
    const char *rest = msa_cookie_strip(r->pool, header, own_cookie, r);
    if (rest == NULL) {
        apr_table_unset(r->headers_in, "Cookie");
    } else if (rest != header) { /* the header itself: none of the module's, as sent */
        apr_table_setn(r->headers_in, "Cookie", rest);
    }
}

/* A value fit for an environment variable or a header: no control characters. */
static int control_char(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

/* "MSAUTH_GROUPS_<i>". */
static const char *group_var(apr_pool_t *p, int i)
{
    static const char prefix[] = "MSAUTH_GROUPS_";
    char digits[16];
    int n = 0;
    do {
        digits[n++] = (char)('0' + i % 10);
        i /= 10;
    } while (i > 0 && n < (int)sizeof(digits));
    char *name = apr_palloc(p, sizeof(prefix) + (apr_size_t)n), *at = name + sizeof(prefix) - 1;
    memcpy(name, prefix, sizeof(prefix) - 1);
    while (n > 0) {
        *at++ = digits[--n];
    }
    *at = '\0';
    return name;
}

/* Whether any of the 8 bytes in w is below 0x20 or is 0x7f (a guess that may say yes wrongly). */
static int may_hold_control(apr_uint64_t w)
{
    const apr_uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    apr_uint64_t del = w ^ (0x7f * ones);
    return (((w - 0x20 * ones) & ~w) | ((del - ones) & ~del)) & highs;
}

static const char *clean(request_rec *r, const char *v)
{
    if (v == NULL) {
        return "";
    }
    size_t len = strlen(v), at = 0;
    /* Eight bytes at a time; only a word that may hold one is looked at byte by byte. */
    for (; at + 8 <= len; at += 8) {
        apr_uint64_t w;
        memcpy(&w, v + at, 8);
        if (may_hold_control(w)) {
            break;
        }
    }
    while (at < len && !control_char((unsigned char)v[at])) {
        at++;
    }
    if (at == len) {
        return v; /* the common case: nothing to replace */
    }
    char *out = apr_pstrmemdup(r->pool, v, len);
    for (char *o = out + at; *o; o++) {
        if (control_char((unsigned char)*o)) {
            *o = ' ';
        }
    }
    return out;
}

/* A claim of t, cleaned unless the token memory found all of them plain already. */
static const char *clean_claim(request_rec *r, const msa_token_t *t, const char *v)
{
    return (t->plain & MSA_PLAIN_CLAIMS) ? (v ? v : "") : clean(r, v);
}

/*
 * REMOTE_USER rests on what the user's tenant cannot set for another tenant
 * (the README's identity rule): an email or UPN only where it is trusted,
 * else <oid>@<tid>, else the id.
 */
static const char *remote_user(request_rec *r, const msa_dir_t *dir, const msa_token_t *t)
{
    switch (dir->remote_user_claim) {
    case MSA_CLAIM_ID:
        return t->sub;
    case MSA_CLAIM_NAME:
        return t->name ? t->name : t->sub;
    case MSA_CLAIM_UPN:
        break;
    default:
        if (t->email && msa_address_trusted(r, t, "email")) {
            return t->email;
        }
        break;
    }
    if (t->upn && msa_address_trusted(r, t, "upn")) {
        return t->upn;
    }
    return t->tid ? apr_pstrcat(r->pool, t->oid ? t->oid : t->sub, "@", t->tid, NULL) : t->sub;
}

/* Whether the environment holds a name of the module's (MSAUTH_*) already. */
static int has_module_var(const apr_table_t *env)
{
    const apr_array_header_t *arr = apr_table_elts(env);
    const apr_table_entry_t *e = (const apr_table_entry_t *)arr->elts;
    for (int i = 0; i < arr->nelts; i++) {
        if (e[i].key != NULL && strncasecmp(e[i].key, "MSAUTH_", 7) == 0) {
            return 1;
        }
    }
    return 0;
}

static void pass_identity(request_rec *r, const msa_dir_t *dir, const msa_token_t *t)
{
    int env = dir->pass_claims == MSA_PASS_ENV || dir->pass_claims == MSA_PASS_BOTH;
    int hdr = dir->pass_claims == MSA_PASS_HEADERS || dir->pass_claims == MSA_PASS_BOTH;
    struct {
        const char *env, *header, *value;
    } vars[] = {
        {"MSAUTH_ID", "X-MSAuth-Id", t->sub},
        {"MSAUTH_IDENTIFIER", NULL, t->identifier},
        {"MSAUTH_NAME", "X-MSAuth-Name", t->name},
        {"MSAUTH_EMAIL", "X-MSAuth-Email", t->email},
        {"MSAUTH_UPN", "X-MSAuth-Upn", t->upn},
        {"MSAUTH_TID", "X-MSAuth-Tid", t->tid},
        {"MSAUTH_APPID", "X-MSAuth-Appid", t->appid},
        {"MSAUTH_EXPIRES", NULL, apr_ltoa(r->pool, (long)t->exp)},
    };
    /* httpd's table compares names by their first four letters first, all "MSAU" here. */
    int fresh = env && !has_module_var(r->subprocess_env);
    for (size_t i = 0; i < sizeof(vars) / sizeof(*vars); i++) {
        const char *v = clean_claim(r, t, vars[i].value);
        if (fresh) {
            apr_table_addn(r->subprocess_env, vars[i].env, v);
        } else if (env) {
            apr_table_setn(r->subprocess_env, vars[i].env, v);
        }
        if (hdr && vars[i].header != NULL) {
            apr_table_setn(r->headers_in, vars[i].header, v);
        }
    }
    if (t->groups != NULL) {
        /* Linear in the groups: one join, each name added when none was there before. */
        int n = t->groups->nelts;
        apr_array_header_t *clean_groups = apr_array_make(r->pool, n > 0 ? n : 1, sizeof(char *));
        for (int i = 0; i < n; i++) {
            const char *g = APR_ARRAY_IDX(t->groups, i, const char *);
            APR_ARRAY_PUSH(clean_groups, const char *) =
                (t->plain & MSA_PLAIN_GROUPS) ? (g ? g : "") : clean(r, g);
        }
        const char *joined = apr_array_pstrcat(r->pool, clean_groups, ',');
        if (env) {
            apr_table_setn(r->subprocess_env, "MSAUTH_GROUPS", joined);
            apr_table_setn(r->subprocess_env, "MSAUTH_GROUPS_N", apr_itoa(r->pool, n));
            for (int i = 0; i < n; i++) {
                const char *name = group_var(r->pool, i);
                const char *g = APR_ARRAY_IDX(clean_groups, i, const char *);
                if (fresh) {
                    apr_table_addn(r->subprocess_env, name, g);
                } else {
                    apr_table_setn(r->subprocess_env, name, g);
                }
            }
        }
        if (hdr) {
            apr_table_setn(r->headers_in, "X-MSAuth-Groups", joined);
        }
    }
}

int msa_is_navigation(request_rec *r)
{
    if (r->method_number != M_GET) { /* HEAD is M_GET with r->header_only */
        return 0;
    }
    const char *accept = apr_table_get(r->headers_in, "Accept");
    const char *xrw = apr_table_get(r->headers_in, "X-Requested-With");
    const char *mode = apr_table_get(r->headers_in, "Sec-Fetch-Mode");
    return accept != NULL && ap_strcasestr(accept, "text/html") != NULL &&
           (xrw == NULL || strcasecmp(xrw, "XMLHttpRequest") != 0) &&
           (mode == NULL || strcasecmp(mode, "navigate") == 0);
}

static void pass_easyauth(request_rec *r, const msa_token_t *t)
{
    apr_table_setn(r->headers_in, "X-MS-CLIENT-PRINCIPAL-NAME",
                   clean_claim(r, t, msa_claims_principal_name(t)));
    apr_table_setn(r->headers_in, "X-MS-CLIENT-PRINCIPAL-ID",
                   clean_claim(r, t, msa_claims_principal_id(t)));
    apr_table_setn(r->headers_in, "X-MS-CLIENT-PRINCIPAL-IDP", "aad");
    apr_table_setn(r->headers_in, "X-MS-CLIENT-PRINCIPAL",
                   msa_claims_easyauth_principal(r->pool, t));
}

int msa_is_microsoft(request_rec *r)
{
    /*
     * Every hook of every request asks, and httpd evaluates AuthType (it may be an
     * expression) each time: the answer is kept with the request for the
     * configuration it was found under (a subrequest or an internal redirect is a
     * request of its own; mod_dir and mod_negotiation moving this one change it).
     */
    msa_req_t *q = msa_request_record(r, 0);
    if (q != NULL && q->type_for == r->per_dir_config) {
        return q->type_microsoft;
    }
    const char *type = ap_auth_type(r);
    int yes = type != NULL && strcasecmp(type, "Microsoft") == 0;
    if (yes || q != NULL) { /* an open request gets no record for it */
        q = msa_request_record(r, 1);
        q->type_microsoft = yes;
        q->type_for = r->per_dir_config;
    }
    return yes;
}

/* An environment variable that names a user: REMOTE_USER, MSAUTH_*, an identity header's. */
static int identity_var(const char *k)
{
    while (strncmp(k, "REDIRECT_", 9) == 0) { /* an internal redirect's copy of the earlier's */
        k += 9;
    }
    return strcmp(k, "REMOTE_USER") == 0 || strcmp(k, "AUTH_TYPE") == 0 ||
           strncmp(k, "MSAUTH_", 7) == 0 || (strncmp(k, "HTTP_", 5) == 0 && spoofable(k + 5));
}

/*
 * The identity a request inherits in its environment from its main request
 * (mod_include adds REMOTE_USER and AUTH_TYPE there), from the request an
 * internal redirect came from (REDIRECT_*), or from a subrequest that mod_dir
 * or mod_negotiation ran in its place, which its own app did not vouch for.
 */
static void scrub_env(request_rec *r)
{
    const apr_array_header_t *arr = apr_table_elts(r->subprocess_env);
    const apr_table_entry_t *e = (const apr_table_entry_t *)arr->elts;
    apr_array_header_t *drop = NULL;
    for (int i = 0; i < arr->nelts; i++) {
        const char *k = e[i].key;
        if (k != NULL && identity_var(k)) {
            if (drop == NULL) {
                drop = apr_array_make(r->pool, 8, sizeof(const char *));
            }
            APR_ARRAY_PUSH(drop, const char *) = e[i].key;
        }
    }
    for (int i = 0; drop && i < drop->nelts; i++) {
        apr_table_unset(r->subprocess_env, APR_ARRAY_IDX(drop, i, const char *));
    }
}

/* The request this one came from: its main request, or the one it was redirected from. */
static request_rec *parent_of(request_rec *r)
{
    return r->main ? r->main : r->prev;
}

/* The session the request it came from accepted under the same app, or NULL. */
static msa_token_t *inherited(request_rec *r, const msa_app_t *app)
{
    request_rec *up = parent_of(r);
    const msa_req_t *q = up ? msa_request_record(up, 0) : NULL;
    return q != NULL && q->token != NULL && q->app == app ? (msa_token_t *)q->token : NULL;
}

/* REMOTE_USER and the identity the app is given, from session t of app. */
static void sign_in(request_rec *r, const msa_dir_t *dir, const msa_app_t *app, msa_token_t *t)
{
    msa_req_t *q = msa_request_record(r, 1);
    q->token = t;
    q->app = app;
    r->user = apr_pstrdup(r->pool, clean_claim(r, t, remote_user(r, dir, t)));
    r->ap_auth_type = "Microsoft";
    pass_identity(r, dir, t);
    if (dir->easy_auth) {
        pass_easyauth(r, t);
    }
    if (dir->pass_tokens != MSA_TOKENS_OFF) {
        msa_mstokens_pass(r, msa_srv_get(r->server), app, t, dir->pass_tokens);
    }
}

/*
 * The module's cookies and a Bearer token it takes, hidden from the app (the
 * client's kept aside for a check under another configuration); and no shared
 * cache may keep what the app answers.
 */
static void hide_credentials(request_rec *r, const msa_dir_t *dir)
{
    msa_req_t *q = msa_request_record(r, 1);
    const char *cookie = apr_table_get(r->headers_in, "Cookie");
    const char *authorization = apr_table_get(r->headers_in, "Authorization");
    if (!q->kept) {
        q->sent_cookie = cookie;
        q->sent_authorization = authorization;
        q->kept = 1;
    }
    if (dir->strip_cookie) {
        strip_cookies(r, cookie);
    }
    /* msa_bearer_token's test: the header the module takes as its own. */
    if (dir->accept_bearer && authorization != NULL &&
        strncasecmp(authorization, "Bearer ", 7) == 0) {
        apr_table_unset(r->headers_in, "Authorization");
    }
    if (r->main != NULL || r->prev != NULL) {
        hide_env_copies(r, dir);
    }
    /* Like a response to Authorization: mod_cache and other shared caches keep none. */
    const char *cc = apr_table_get(r->err_headers_out, "Cache-Control");
    if (cc == NULL || ap_strcasestr(cc, "private") == NULL) {
        apr_table_mergen(r->err_headers_out, "Cache-Control", "private");
    }
}

/*
 * mod_negotiation (MultiViews, in type_checker) and mod_dir (DirectoryIndex,
 * in fixups) check a file in a subrequest and then run it in this request
 * under the file's configuration, which this request's headers and session
 * went through no check of. Then it is checked here as a request of its own:
 * the identity it carries is dropped; the session it had is kept when the
 * same app protects the file, else the client's credentials are checked
 * under the file's app.
 */
static void recheck_if_moved(request_rec *r, const msa_dir_t *dir)
{
    msa_req_t *q = msa_request_record(r, 1);
    if (q->checked == r->per_dir_config) {
        return;
    }
    const msa_srv_t *srv = msa_srv_get(r->server);
    const msa_app_t *app = msa_app_lookup(r, srv, dir->app);
    msa_token_t *keep = q->token != NULL && q->app == app ? (msa_token_t *)q->token : NULL;
    q->token = NULL;
    q->app = NULL;
    r->user = NULL;
    r->ap_auth_type = NULL;
    scrub_env(r);
    scrub_headers(r);
    if (q->kept) { /* the client's credentials, for the check */
        apr_table_unset(r->headers_in, "Cookie");
        apr_table_unset(r->headers_in, "Authorization");
        if (q->sent_cookie != NULL) {
            apr_table_setn(r->headers_in, "Cookie", q->sent_cookie);
        }
        if (q->sent_authorization != NULL) {
            apr_table_setn(r->headers_in, "Authorization", q->sent_authorization);
        }
    }
    msa_token_t *t = keep;
    const char *jwt = NULL;
    if (t == NULL && app != NULL &&
        msa_session_check(r, srv, app, dir->accept_bearer, 1, &t, &jwt) != OK) {
        t = NULL;
    }
    if (t != NULL) {
        sign_in(r, dir, app, t);
    }
    q->checked = r->per_dir_config;
}

/*
 * An internal redirect (an ErrorDocument) into another app: httpd would hand
 * the earlier request's user to a CGI as REDIRECT_REMOTE_USER. The user is
 * taken off the earlier requests until the request is logged.
 */
static void hide_earlier_users(request_rec *r, msa_req_t *q)
{
    for (request_rec *back = r->prev; back != NULL; back = back->prev) {
        if (back->user != NULL) {
            if (q->hidden == NULL) {
                q->hidden = apr_array_make(r->pool, 1, sizeof(msa_hidden_user_t));
            }
            msa_hidden_user_t *h = apr_array_push(q->hidden);
            h->r = back;
            h->user = back->user;
            back->user = NULL;
        }
    }
}

int msa_restore_users(request_rec *r)
{
    for (request_rec *rr = r; rr != NULL; rr = rr->next) {
        const msa_req_t *q = msa_request_record(rr, 0);
        for (int i = 0; q != NULL && q->hidden != NULL && i < q->hidden->nelts; i++) {
            const msa_hidden_user_t *h = &APR_ARRAY_IDX(q->hidden, i, msa_hidden_user_t);
            h->r->user = (char *)h->user;
        }
    }
    return DECLINED;
}

/*
 * Every request under AuthType Microsoft, before any access, authentication
 * or authorization hook: identity headers the client sent are dropped, so
 * neither a Require rule nor the app can mistake them for the module's. Runs
 * whether or not the location's Require rules need a user. A subrequest or an
 * internal redirect keeps the identity it inherited only when the same app
 * protects it.
 */
int msa_scrub_request(request_rec *r)
{
    if (!msa_is_microsoft(r)) {
        return DECLINED;
    }
    msa_req_t *q = msa_request_record(r, 1);
    if (parent_of(r) != NULL) {
        const msa_srv_t *srv = msa_srv_get(r->server);
        const msa_app_t *app = msa_app_lookup(r, srv, msa_dir_get(r)->app);
        if (app == NULL || inherited(r, app) == NULL) {
            scrub_env(r);
            hide_earlier_users(r, q);
        }
    }
    scrub_headers(r);
    q->checked = r->per_dir_config;
    return DECLINED;
}

/*
 * After authorization: a request that inherited its session (httpd skips
 * authentication for a subrequest or an internal redirect under the same
 * configuration) is given its identity again; the app (a CGI, a proxied
 * backend) never sees the module's cookies or an Authorization: Bearer the
 * module takes, whether or not a session was checked for this request.
 */
int msa_hide_credentials(request_rec *r)
{
    if (!msa_is_microsoft(r)) {
        return DECLINED;
    }
    const msa_dir_t *dir = msa_dir_get(r);
    if (msa_request_token(r) == NULL) {
        const msa_srv_t *srv = msa_srv_get(r->server);
        const msa_app_t *app = msa_app_lookup(r, srv, dir->app);
        msa_token_t *t = app && parent_of(r) ? inherited(r, app) : NULL;
        const char *jwt = NULL;
        /* MSAuthUnauthAction pass is an optional login: a session, where there is one, counts. */
        if (t == NULL && app != NULL && dir->unauth_action == MSA_UNAUTH_PASS &&
            msa_session_check(r, srv, app, dir->accept_bearer, 1, &t, &jwt) != OK) {
            t = NULL;
        }
        if (t != NULL) {
            sign_in(r, dir, app, t);
        }
    }
    hide_credentials(r, dir);
    return DECLINED;
}

/*
 * Last, just before the handler runs: a request mod_negotiation or mod_dir
 * moved to a file's configuration is checked again under it.
 */
void msa_before_handler(request_rec *r)
{
    if (msa_is_microsoft(r)) {
        const msa_req_t *q = msa_request_record(r, 0);
        if (q == NULL || q->checked != r->per_dir_config) {
            const msa_dir_t *dir = msa_dir_get(r);
            recheck_if_moved(r, dir);
            hide_credentials(r, dir);
        }
    }
    /* Any location, protected or not: the app sees only the Microsoft tokens set for it. */
    msa_mstokens_guard(r);
}

int msa_check_authn(request_rec *r)
{
    if (!msa_is_microsoft(r)) {
        return DECLINED;
    }
    const msa_srv_t *srv = msa_srv_get(r->server);
    const msa_dir_t *dir = msa_dir_get(r);
    const msa_app_t *app = msa_app_lookup(r, srv, dir->app);
    if (app == NULL) {
        /* configtest catches a configured one: this is a stored app removed at run time. */
        MSA_RLOG(r, APLOG_ERR, "config",
                 "AuthType Microsoft for %s, but app '%s' is not configured in this server", r->uri,
                 *dir->app ? dir->app : "(root)");
        return HTTP_SERVICE_UNAVAILABLE;
    }

    /*
     * A subrequest reuses what its main request found only when the same app
     * protects it (its Require rules still run); under another app it is
     * checked on its own.
     */
    const char *jwt = NULL;
    msa_token_t *t = inherited(r, app);
    if (t == NULL) {
        int rc = msa_session_check(r, srv, app, dir->accept_bearer, 1, &t, &jwt);
        if (rc == HTTP_SERVICE_UNAVAILABLE) {
            return rc;
        }
    }

    if (t != NULL) {
        sign_in(r, dir, app, t);
        return OK;
    }

    switch (dir->unauth_action) {
    case MSA_UNAUTH_PASS:
        /* On, without a user: a Require that needs one answers 401 (no login), not a 500. */
        goto unauthorized;
    case MSA_UNAUTH_LOGIN:
        break;
    case MSA_UNAUTH_401:
        goto unauthorized;
    default:
        if (!msa_is_navigation(r)) {
            goto unauthorized;
        }
    }
    if (r->main != NULL) {
        goto unauthorized; /* a subrequest is no page a login could return to */
    }
    return msa_start_login(r, srv, app, msa_return_target(r, srv, app, r->unparsed_uri));

unauthorized:
    apr_table_setn(r->err_headers_out, "WWW-Authenticate",
                   apr_psprintf(r->pool, "Bearer realm=\"%s\"%s", msa_app_token_id(app),
                                jwt ? ", error=\"invalid_token\"" : ""));
    return HTTP_UNAUTHORIZED;
}

/*
 * mod_authz_core answers 401 when a signed-in user fails a Require rule. For
 * AuthType Microsoft that user gets 403 instead: a 401 would invite a new
 * login that cannot help. The 401 is noted here and turned into 403 when the
 * error response starts (insert_error_filter runs before the status line).
 */
#define FORBIDDEN_NOTE "msauth-forbidden"

int msa_note_auth_failure(request_rec *r, const char *auth_type)
{
    if (strcasecmp(auth_type, "Microsoft") != 0) {
        return DECLINED;
    }
    if (r->user != NULL && msa_request_token(r) != NULL) {
        apr_table_setn(r->notes, FORBIDDEN_NOTE, "1");
        /* The site's own ErrorDocument 403, else a page that says what happened. */
        const char *page = ap_response_code_string(r, ap_index_of_response(HTTP_FORBIDDEN));
        ap_custom_response(r, HTTP_UNAUTHORIZED,
                           page ? page
                                : "<!DOCTYPE html><html><head><title>403 Forbidden</title></head>"
                                  "<body><h1>Forbidden</h1><p>You are signed in, but this page is "
                                  "not open to your account.</p></body></html>\n");
        return OK;
    }
    const msa_dir_t *dir = msa_dir_get(r);
    apr_table_setn(r->err_headers_out, "WWW-Authenticate",
                   apr_psprintf(r->pool, "Bearer realm=\"%s\"", *dir->app ? dir->app : "default"));
    return OK;
}

void msa_insert_error_filter(request_rec *r)
{
    if (r->status == HTTP_UNAUTHORIZED && apr_table_get(r->notes, FORBIDDEN_NOTE) != NULL) {
        r->status = HTTP_FORBIDDEN;
        apr_table_unset(r->err_headers_out, "WWW-Authenticate");
    }
}
