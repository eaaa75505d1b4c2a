/*
 * The directive table and its setters. Every setter checks its value at
 * once, so `httpd -t` names the directive, the file and the line of a bad
 * value; the checks that need the whole configuration run in post_config.
 */
#include <apr_lib.h>
#include <apr_strings.h>
#include <http_core.h>

#include "msa_cache.h"
#include "msa_config.h"
#include "msa_ms.h"
#include "msa_state.h"
#include "msa_url.h"

/* The app block being read, if any: config is read by one thread. */
static msa_app_t *current_app;

static const char *where(cmd_parms *cmd)
{
    return apr_psprintf(cmd->pool, "%s:%d", cmd->directive->filename, cmd->directive->line_num);
}

static const char *bad(cmd_parms *cmd, const char *msg)
{
    return apr_psprintf(cmd->pool, "%s %s", cmd->cmd->name, msg);
}

/* The app a server-or-app directive applies to; NULL with *err on a misplaced one. */
static msa_app_t *app_of(cmd_parms *cmd, const char **err)
{
    *err = ap_check_cmd_context(cmd, NOT_IN_DIR_LOC_FILE);
    if (*err != NULL) {
        return NULL;
    }
    msa_app_t *a = current_app ? current_app : msa_srv_get(cmd->server)->root;
    if (a->where == NULL) {
        a->where = where(cmd);
    }
    return a;
}

/* The server a server-only directive applies to. */
static msa_srv_t *srv_of(cmd_parms *cmd, const char **err)
{
    *err = ap_check_cmd_context(cmd, NOT_IN_DIR_LOC_FILE);
    if (*err == NULL && current_app != NULL) {
        *err = apr_psprintf(cmd->pool, "%s is a server setting, not allowed inside <MSAuthApp>",
                            cmd->cmd->name);
    }
    return *err ? NULL : msa_srv_get(cmd->server);
}

#define APP_OR_RETURN(a)                                                                           \
    const char *err_;                                                                              \
    msa_app_t *a = app_of(cmd, &err_);                                                             \
    if (a == NULL) {                                                                               \
        return err_;                                                                               \
    }
#define SRV_OR_RETURN(s)                                                                           \
    const char *err_;                                                                              \
    msa_srv_t *s = srv_of(cmd, &err_);                                                             \
    if (s == NULL) {                                                                               \
        return err_;                                                                               \
    }
#define CHECK(expr)                                                                                \
    do {                                                                                           \
        const char *m_ = (expr);                                                                   \
        if (m_ != NULL) {                                                                          \
            return bad(cmd, m_);                                                                   \
        }                                                                                          \
    } while (0)

/* <MSAuthApp appid> ... </MSAuthApp> */
static const char *app_block(cmd_parms *cmd, void *dconf, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, NOT_IN_DIR_LOC_FILE);
    if (err != NULL) {
        return err;
    }
    if (current_app != NULL) {
        return "<MSAuthApp> cannot be nested";
    }
    const char *end = ap_strrchr_c(arg, '>');
    if (end == NULL || end[1] != '\0') {
        return "<MSAuthApp> lacks its closing '>'";
    }
    const char *appid = apr_pstrmemdup(cmd->pool, arg, (apr_size_t)(end - arg));
    appid = ap_getword_conf(cmd->pool, &appid);
    if (!msa_appid_valid(appid) || strcmp(appid, "default") == 0) {
        return apr_psprintf(cmd->pool,
                            "<MSAuthApp %s>: an appid is 1 to 64 letters, digits, '.', '_', "
                            "'~' or '-', and 'default' names the root app",
                            appid);
    }
    msa_srv_t *srv = msa_srv_get(cmd->server);
    if (apr_hash_get(srv->apps, appid, APR_HASH_KEY_STRING) != NULL) {
        return apr_psprintf(cmd->pool, "<MSAuthApp %s> is defined twice in this server", appid);
    }
    msa_app_t *a = msa_app_create(cmd->pool, appid);
    a->where = where(cmd);
    apr_hash_set(srv->apps, a->appid, APR_HASH_KEY_STRING, a);
    current_app = a;
    err = ap_walk_config(cmd->directive->first_child, cmd, cmd->context);
    current_app = NULL;
    return err;
}

static const char *set_client_id(cmd_parms *cmd, void *d, const char *v)
{
    APP_OR_RETURN(a);
    CHECK(msa_parse_client_id(v));
    MSA_CFG_SET(a, client_id, v);
    return NULL;
}

static const char *set_client_secret(cmd_parms *cmd, void *d, const char *v)
{
    APP_OR_RETURN(a);
    const char *secret;
    CHECK(msa_parse_secret(cmd->pool, v, &secret));
    MSA_CFG_SET(a, client_secret, secret);
    return NULL;
}

/*
 * MSAuthClientCertificate cert.pem key.pem [PS256|RS256]: loaded now, so a
 * key that is not the certificate's, or a certificate out of its validity,
 * fails `httpd -t` on this line. The key stays in memory for the life of the
 * configuration; nothing of it is ever logged.
 */
static const char *set_client_cert(cmd_parms *cmd, void *d, const char *cert, const char *key,
                                   const char *alg)
{
    APP_OR_RETURN(a);
    int n = MSA_CRED_PS256;
    if (alg != NULL) {
        static const char *const names[] = {"PS256", "RS256", NULL};
        if (msa_parse_enum(alg, names, &n) != NULL) {
            return apr_psprintf(cmd->pool, "%s: unknown algorithm '%s' (expected PS256 or RS256)",
                                cmd->cmd->name, alg);
        }
    }
    const char *cp = ap_server_root_relative(cmd->pool, cert);
    const char *kp = ap_server_root_relative(cmd->pool, key);
    if (cp == NULL || kp == NULL) {
        return bad(cmd, "takes the paths of a certificate and its key");
    }
    msa_cred_t *c;
    const char *err;
    if (msa_cred_cert_load(&c, cmd->pool, cp, kp, n, apr_time_now(), &err) != APR_SUCCESS) {
        return bad(cmd, err);
    }
    /*
     * The key is read here, by root: nobody else needs to read it, least of all what runs
     * as Apache's User (CGI scripts, the app). Said where httpd -t and the start show it.
     */
    apr_finfo_t fi;
    if (apr_stat(&fi, kp, APR_FINFO_PROT, cmd->temp_pool) == APR_SUCCESS &&
        (fi.protection & (APR_FPROT_WREAD | APR_FPROT_WWRITE)) != 0) {
        MSA_SLOG(cmd->server, APLOG_WARNING, 0, "config",
                 "%s: key %s can be %s by every user of this machine (CGI scripts and the app "
                 "included): chmod o-rwx %s (on line %d of %s)",
                 cmd->cmd->name, kp, (fi.protection & APR_FPROT_WWRITE) != 0 ? "replaced" : "read",
                 kp, cmd->directive->line_num, cmd->directive->filename);
    }
    MSA_CFG_SET(a, client_cert, c);
    return NULL;
}

/* MSAuthClientAssertionFile path: read now (it must exist), re-read when it changes. */
static const char *set_assertion_file(cmd_parms *cmd, void *d, const char *v)
{
    APP_OR_RETURN(a);
    const char *path = ap_server_root_relative(cmd->pool, v);
    if (path == NULL) {
        return bad(cmd, "takes the path of a file");
    }
    msa_cred_t *c;
    const char *err;
    if (msa_cred_file_open(&c, cmd->pool, path, &err) != APR_SUCCESS) {
        return bad(cmd, err);
    }
    MSA_CFG_SET(a, assertion_file, c);
    return NULL;
}

static const char *set_tenant(cmd_parms *cmd, void *d, const char *v)
{
    APP_OR_RETURN(a);
    CHECK(msa_parse_tenant(v));
    MSA_CFG_SET(a, tenant, v);
    return NULL;
}

static const char *add_allowed_tenant(cmd_parms *cmd, void *d, const char *v)
{
    APP_OR_RETURN(a);
    CHECK(msa_parse_guid(v));
    if (!a->allowed_tenants_set) {
        MSA_CFG_SET(a, allowed_tenants, apr_array_make(cmd->pool, 4, sizeof(const char *)));
    }
    APR_ARRAY_PUSH(a->allowed_tenants, const char *) = apr_pstrdup(cmd->pool, v);
    return NULL;
}

static const char *set_signin_success(cmd_parms *cmd, void *d, const char *v)
{
    APP_OR_RETURN(a);
    CHECK(msa_url_check(cmd->pool, v, 0));
    MSA_CFG_SET(a, signin_success, v);
    return NULL;
}

static const char *set_signin_failure(cmd_parms *cmd, void *d, const char *v)
{
    APP_OR_RETURN(a);
    CHECK(msa_url_check(cmd->pool, v, 0));
    MSA_CFG_SET(a, signin_failure, v);
    return NULL;
}

static const char *set_secret_key(cmd_parms *cmd, void *d, const char *key, const char *old)
{
    APP_OR_RETURN(a);
    apr_array_header_t *keys = apr_array_make(cmd->pool, 2, sizeof(msa_key_t));
    msa_key_t *k;
    CHECK(msa_parse_key(cmd->pool, key, &k));
    APR_ARRAY_PUSH(keys, msa_key_t) = *k;
    if (old != NULL) {
        CHECK(msa_parse_key(cmd->pool, old, &k));
        APR_ARRAY_PUSH(keys, msa_key_t) = *k;
    }
    MSA_CFG_SET(a, keys, keys);
    return NULL;
}

/* MSAuthScope takes the rest of the line, quoted or not, as one space-separated list. */
static const char *set_scope(cmd_parms *cmd, void *d, const char *args)
{
    APP_OR_RETURN(a);
    const char *scope = "";
    while (*args) {
        const char *w = ap_getword_conf(cmd->pool, &args);
        for (const char *c = w; *c; c++) {
            if (*c < ' ' || *c == 0x7f || *c == '"' || *c == '\\') {
                return bad(cmd, "holds a character not allowed in a scope");
            }
        }
        if (*w) {
            scope = *scope ? apr_pstrcat(cmd->pool, scope, " ", w, NULL) : w;
        }
    }
    if (*scope == '\0') {
        return bad(cmd, "needs at least one scope");
    }
    MSA_CFG_SET(a, scope, scope);
    return NULL;
}

static const char *set_redirect_uri(cmd_parms *cmd, void *d, const char *v)
{
    APP_OR_RETURN(a);
    CHECK(msa_url_check(cmd->pool, v, 1));
    MSA_CFG_SET(a, redirect_uri, v);
    return NULL;
}

#define APP_SECONDS(fn, field, min, max)                                                           \
    static const char *fn(cmd_parms *cmd, void *d, const char *v)                                  \
    {                                                                                              \
        APP_OR_RETURN(a);                                                                          \
        apr_int64_t n;                                                                             \
        CHECK(msa_parse_seconds(v, (min), (max), &n));                                             \
        MSA_CFG_SET(a, field, n);                                                                  \
        return NULL;                                                                               \
    }
APP_SECONDS(set_session_timeout, session_timeout, 60, 400LL * 86400)
APP_SECONDS(set_refresh_interval, refresh_interval, 60, 400LL * 86400)
APP_SECONDS(set_id_token_ttl, id_token_ttl, 5, 3600)

static const char *set_cookie_name(cmd_parms *cmd, void *d, const char *v)
{
    APP_OR_RETURN(a);
    CHECK(msa_parse_cookie_name(v));
    MSA_CFG_SET(a, cookie_name, v);
    return NULL;
}

static const char *set_cookie_domain(cmd_parms *cmd, void *d, const char *v)
{
    APP_OR_RETURN(a);
    const char *host = *v == '.' ? v + 1 : v;
    if (*host == '\0' || strlen(host) > 253) {
        return bad(cmd, "must be a domain name");
    }
    for (const char *c = host; *c; c++) {
        if (!(apr_isalnum(*c) || *c == '-' || *c == '.')) {
            return bad(cmd, "must be a domain name");
        }
    }
    MSA_CFG_SET(a, cookie_domain, v);
    return NULL;
}

static const char *set_cookie_path(cmd_parms *cmd, void *d, const char *v)
{
    APP_OR_RETURN(a);
    if (*v != '/' || strpbrk(v, ";, \t\r\n") != NULL) {
        return bad(cmd, "must be a path starting with '/'");
    }
    MSA_CFG_SET(a, cookie_path, v);
    return NULL;
}

#define APP_ENUM(fn, field, ...)                                                                   \
    static const char *fn(cmd_parms *cmd, void *d, const char *v)                                  \
    {                                                                                              \
        static const char *const names[] = {__VA_ARGS__, NULL};                                    \
        APP_OR_RETURN(a);                                                                          \
        int n;                                                                                     \
        if (msa_parse_enum(v, names, &n) != NULL) {                                                \
            return apr_psprintf(cmd->pool, "%s: unknown value '%s' (expected %s)", cmd->cmd->name, \
                                v, #__VA_ARGS__);                                                  \
        }                                                                                          \
        MSA_CFG_SET(a, field, n);                                                                  \
        return NULL;                                                                               \
    }
APP_ENUM(set_cookie_samesite, cookie_samesite, "Lax", "Strict", "None")
APP_ENUM(set_cookie_secure, cookie_secure, "Auto", "On", "Off")
APP_ENUM(set_legacy_state, legacy_state, "Off", "On")
APP_ENUM(set_passwordless_get, passwordless_get, "Off", "On")
APP_ENUM(set_groups, groups, "Off", "Token", "Graph")
APP_ENUM(set_cae, cae, "Off", "On")

static const char *add_redirect_allow(cmd_parms *cmd, void *d, const char *v)
{
    APP_OR_RETURN(a);
    CHECK(msa_url_check(cmd->pool, v, 1));
    if (!a->redirect_allow_set) {
        MSA_CFG_SET(a, redirect_allow, apr_array_make(cmd->pool, 4, sizeof(const char *)));
    }
    APR_ARRAY_PUSH(a->redirect_allow, const char *) = v;
    return NULL;
}

/* Server settings ------------------------------------------------------------------ */

static const char *set_callback_path(cmd_parms *cmd, void *d, const char *v)
{
    SRV_OR_RETURN(s);
    CHECK(msa_parse_path(v));
    if (v[1] == '\0') {
        return bad(cmd, "cannot be '/'");
    }
    MSA_CFG_SET(s, callback_path, v);
    return NULL;
}

static const char *set_jwt_path(cmd_parms *cmd, void *d, const char *v)
{
    SRV_OR_RETURN(s);
    CHECK(msa_parse_path(v));
    if (v[1] == '\0') {
        return bad(cmd, "cannot be '/'");
    }
    MSA_CFG_SET(s, jwt_path, v);
    return NULL;
}

/* A base URL of an outgoing call: https (http for loopback), no path, no trailing '/'. */
static const char *base_url(cmd_parms *cmd, const char *v, const char **out)
{
    const char *msg = msa_url_check(cmd->pool, v, 1);
    if (msg != NULL) {
        return msg;
    }
    if (!msa_url_outgoing_allowed(v)) {
        return "must be https (http only for a loopback host)";
    }
    char *u = apr_pstrdup(cmd->pool, v);
    apr_size_t n = strlen(u);
    while (n > 0 && u[n - 1] == '/') {
        u[--n] = '\0';
    }
    if (strchr(u, '?') || strchr(u, '#')) {
        return "must not hold a query or fragment";
    }
    *out = u;
    return NULL;
}

static const char *set_login_host(cmd_parms *cmd, void *d, const char *v)
{
    SRV_OR_RETURN(s);
    const char *u;
    CHECK(base_url(cmd, v, &u));
    MSA_CFG_SET(s, login_host, u);
    return NULL;
}

static const char *set_graph_host(cmd_parms *cmd, void *d, const char *v)
{
    SRV_OR_RETURN(s);
    const char *u;
    CHECK(base_url(cmd, v, &u));
    MSA_CFG_SET(s, graph_host, u);
    return NULL;
}

static const char *set_cache(cmd_parms *cmd, void *d, const char *v)
{
    SRV_OR_RETURN(s);
    const char *err = msa_cache_check_spec(cmd->temp_pool, v);
    if (err != NULL) {
        return bad(cmd, err);
    }
    MSA_CFG_SET(s, cache, v);
    return NULL;
}

static const char *set_http_timeout(cmd_parms *cmd, void *d, const char *total, const char *connect)
{
    SRV_OR_RETURN(s);
    apr_int64_t t, c;
    CHECK(msa_parse_seconds(total, 1, 300, &t));
    c = t < 5 ? t : 5;
    if (connect != NULL) {
        CHECK(msa_parse_seconds(connect, 1, 300, &c));
        if (c > t) {
            return bad(cmd, "connect timeout exceeds the total timeout");
        }
    }
    MSA_CFG_SET(s, http_timeout, (int)t);
    MSA_CFG_SET(s, http_connect_timeout, (int)c);
    return NULL;
}

static const char *set_ca_file(cmd_parms *cmd, void *d, const char *v)
{
    SRV_OR_RETURN(s);
    const char *path = ap_server_root_relative(cmd->pool, v);
    apr_finfo_t fi;
    if (path == NULL || apr_stat(&fi, path, APR_FINFO_TYPE, cmd->pool) != APR_SUCCESS ||
        fi.filetype != APR_REG) {
        return bad(cmd, apr_psprintf(cmd->pool, "file %s cannot be read", v));
    }
    MSA_CFG_SET(s, ca_file, path);
    return NULL;
}

static const char *set_http_proxy(cmd_parms *cmd, void *d, const char *v)
{
    SRV_OR_RETURN(s);
    CHECK(msa_url_check(cmd->pool, v, 1));
    MSA_CFG_SET(s, http_proxy, v);
    return NULL;
}

static const char *set_clock_skew(cmd_parms *cmd, void *d, const char *v)
{
    SRV_OR_RETURN(s);
    apr_int64_t n;
    CHECK(msa_parse_seconds(v, 0, 600, &n));
    MSA_CFG_SET(s, clock_skew, n);
    return NULL;
}

#define SRV_FLAG(fn, field)                                                                        \
    static const char *fn(cmd_parms *cmd, void *d, int on)                                         \
    {                                                                                              \
        SRV_OR_RETURN(s);                                                                          \
        MSA_CFG_SET(s, field, on);                                                                 \
        return NULL;                                                                               \
    }
SRV_FLAG(set_trust_forwarded, trust_forwarded)
SRV_FLAG(set_metrics, metrics)
SRV_FLAG(set_health, health)

static const char *set_settings_file(cmd_parms *cmd, void *d, const char *v)
{
    SRV_OR_RETURN(s);
    const char *path = ap_server_root_relative(cmd->pool, v);
    const char *slash = path ? strrchr(path, '/') : NULL;
    apr_finfo_t fi;
    if (slash == NULL ||
        apr_stat(&fi, slash == path ? "/" : apr_pstrmemdup(cmd->pool, path, slash - path),
                 APR_FINFO_TYPE, cmd->pool) != APR_SUCCESS ||
        fi.filetype != APR_DIR) {
        return bad(cmd, apr_psprintf(cmd->pool, "%s: its directory does not exist", v));
    }
    MSA_CFG_SET(s, settings_file, path);
    return NULL;
}

static const char *set_admin_key(cmd_parms *cmd, void *d, const char *v)
{
    SRV_OR_RETURN(s);
    const char *key;
    CHECK(msa_parse_secret(cmd->pool, v, &key));
    if (strlen(key) < 32) {
        return bad(cmd, "must be at least 32 bytes");
    }
    MSA_CFG_SET(s, admin_key, key);
    return NULL;
}

static const char *add_cors_origin(cmd_parms *cmd, void *d, const char *v)
{
    SRV_OR_RETURN(s);
    if (strcmp(v, "*") == 0) {
        return bad(cmd, "takes origins, not '*' (credentials are never shared with any origin)");
    }
    CHECK(msa_url_check(cmd->pool, v, 1));
    const char *rest = ap_strstr_c(v, "://") + 3;
    if (strchr(rest, '/') != NULL || strchr(rest, '?') != NULL) {
        return bad(cmd, "takes origins (scheme://host[:port]) without a path");
    }
    if (!s->cors_origins_set) {
        MSA_CFG_SET(s, cors_origins, apr_array_make(cmd->pool, 4, sizeof(const char *)));
    }
    APR_ARRAY_PUSH(s->cors_origins, const char *) = v;
    return NULL;
}

/* Directory settings ---------------------------------------------------------------- */

static const char *set_dir_app(cmd_parms *cmd, void *dconf, const char *v)
{
    msa_dir_t *d = dconf;
    if (strcmp(v, "default") == 0) {
        v = "";
    } else if (!msa_appid_valid(v)) {
        return bad(cmd, "must name an app: 1 to 64 letters, digits, '.', '_', '~' or '-'");
    }
    MSA_CFG_SET(d, app, v);
    msa_app_ref_t *ref = apr_array_push(msa_app_refs);
    ref->s = cmd->server;
    ref->appid = v;
    ref->where = where(cmd);
    return NULL;
}

#define DIR_ENUM(fn, field, ...)                                                                   \
    static const char *fn(cmd_parms *cmd, void *dconf, const char *v)                              \
    {                                                                                              \
        static const char *const names[] = {__VA_ARGS__, NULL};                                    \
        msa_dir_t *d = dconf;                                                                      \
        int n;                                                                                     \
        if (msa_parse_enum(v, names, &n) != NULL) {                                                \
            return apr_psprintf(cmd->pool, "%s: unknown value '%s' (expected %s)", cmd->cmd->name, \
                                v, #__VA_ARGS__);                                                  \
        }                                                                                          \
        MSA_CFG_SET(d, field, n);                                                                  \
        return NULL;                                                                               \
    }
DIR_ENUM(set_unauth_action, unauth_action, "auto", "login", "401", "pass")
DIR_ENUM(set_remote_user_claim, remote_user_claim, "email", "upn", "id", "name")
DIR_ENUM(set_pass_claims, pass_claims, "env", "headers", "both", "none")

/* MSAuthPassTokens: in the server's configuration it also makes its logins keep the tokens. */
static const char *set_pass_tokens(cmd_parms *cmd, void *dconf, const char *v)
{
    static const char *const names[] = {"off", "access", "id", "all", NULL};
    static const int kinds[] = {MSA_TOKENS_OFF, MSA_TOKENS_ACCESS, MSA_TOKENS_ID, MSA_TOKENS_ALL};
    msa_dir_t *d = dconf;
    int n;
    if (msa_parse_enum(v, names, &n) != NULL) {
        return apr_psprintf(cmd->pool, "%s: unknown value '%s' (expected off, access, id or all)",
                            cmd->cmd->name, v);
    }
    MSA_CFG_SET(d, pass_tokens, kinds[n]);
    /* httpd reads .htaccess with one pool for both (ap_check_cmd_context does the same). */
    if (kinds[n] != MSA_TOKENS_OFF && cmd->pool != cmd->temp_pool) {
        msa_srv_get(cmd->server)->tokens_wanted = 1;
    }
    return NULL;
}

#define DIR_FLAG(fn, field)                                                                        \
    static const char *fn(cmd_parms *cmd, void *dconf, int on)                                     \
    {                                                                                              \
        msa_dir_t *d = dconf;                                                                      \
        MSA_CFG_SET(d, field, on);                                                                 \
        return NULL;                                                                               \
    }
DIR_FLAG(set_easy_auth, easy_auth)
DIR_FLAG(set_accept_bearer, accept_bearer)
DIR_FLAG(set_strip_cookie, strip_cookie)
DIR_FLAG(set_trust_unverified_email, trust_unverified_email)

#define S_ RSRC_CONF
#define D_ (ACCESS_CONF | OR_AUTHCFG)

const command_rec msa_cmds[] = {
    AP_INIT_RAW_ARGS("<MSAuthApp", app_block, NULL, S_,
                     "a named app: its settings, inheriting the rest from the server"),
    AP_INIT_TAKE1("MSAuthClientID", set_client_id, NULL, S_,
                  "the Application (client) ID from the Entra portal"),
    AP_INIT_TAKE1("MSAuthClientSecret", set_client_secret, NULL, S_,
                  "the client secret: a literal, file:/path or env:NAME"),
    AP_INIT_TAKE23("MSAuthClientCertificate", set_client_cert, NULL, S_,
                   "certificate and key files (PEM) signing a client assertion instead of a "
                   "secret, and optionally PS256 (the default) or RS256"),
    AP_INIT_TAKE1("MSAuthClientAssertionFile", set_assertion_file, NULL, S_,
                  "a file holding a federated token, sent as the client assertion (re-read "
                  "when it changes)"),
    AP_INIT_TAKE1("MSAuthTenant", set_tenant, NULL, S_,
                  "common, organizations, consumers, a tenant GUID or a verified domain"),
    AP_INIT_ITERATE("MSAuthAllowedTenants", add_allowed_tenant, NULL, S_,
                    "tenant GUIDs whose users may sign in (with common/organizations)"),
    AP_INIT_TAKE1("MSAuthSigninSuccess", set_signin_success, NULL, S_,
                  "where a successful login lands; jwt=id and jwt=? are filled in"),
    AP_INIT_TAKE1("MSAuthSigninFailure", set_signin_failure, NULL, S_,
                  "where a failed login lands; cause=? is filled in"),
    AP_INIT_TAKE12("MSAuthSecretKey", set_secret_key, NULL, S_,
                   "HS256 key of at least 32 bytes, and optionally the previous key"),
    AP_INIT_RAW_ARGS("MSAuthScope", set_scope, NULL, S_, "the scopes asked of Microsoft"),
    AP_INIT_TAKE1("MSAuthRedirectURI", set_redirect_uri, NULL, S_,
                  "the redirect_uri registered with Microsoft (default: derived)"),
    AP_INIT_TAKE1("MSAuthSessionTimeout", set_session_timeout, NULL, S_,
                  "session token lifetime and cookie Max-Age, in seconds"),
    AP_INIT_TAKE1("MSAuthRefreshInterval", set_refresh_interval, NULL, S_,
                  "the refresh hint of the JWT API, in seconds"),
    AP_INIT_TAKE1("MSAuthIDTokenTTL", set_id_token_ttl, NULL, S_,
                  "lifetime of the jwt=id ID token, in seconds"),
    AP_INIT_TAKE1("MSAuthCookieName", set_cookie_name, NULL, S_, "the session cookie's name"),
    AP_INIT_TAKE1("MSAuthCookieDomain", set_cookie_domain, NULL, S_, "the session cookie's Domain"),
    AP_INIT_TAKE1("MSAuthCookiePath", set_cookie_path, NULL, S_, "the session cookie's Path"),
    AP_INIT_TAKE1("MSAuthCookieSameSite", set_cookie_samesite, NULL, S_, "Lax, Strict or None"),
    AP_INIT_TAKE1("MSAuthCookieSecure", set_cookie_secure, NULL, S_,
                  "Auto (Secure over https), On or Off"),
    AP_INIT_TAKE1("MSAuthLegacyState", set_legacy_state, NULL, S_,
                  "On: accept the client-built login (state=<appid>) without a state cookie"),
    AP_INIT_TAKE1("MSAuthPasswordlessGET", set_passwordless_get, NULL, S_,
                  "On: also accept Para's GET <callback>/passwordless?token (open to login CSRF)"),
    AP_INIT_TAKE1("MSAuthGroups", set_groups, NULL, S_,
                  "Off, Token or Graph: where group ids come from"),
    AP_INIT_TAKE1("MSAuthCAE", set_cae, NULL, S_,
                  "On: declare the cp1 capability and answer the app's claims challenges "
                  "with a new sign-in"),
    AP_INIT_ITERATE("MSAuthRedirectAllow", add_redirect_allow, NULL, S_,
                    "URL prefixes return_to may point to, besides this host"),
    AP_INIT_TAKE1("MSAuthCallbackPath", set_callback_path, NULL, S_,
                  "the path of the callback and the module's browser endpoints"),
    AP_INIT_TAKE1("MSAuthJWTPath", set_jwt_path, NULL, S_, "the path of the JWT API"),
    AP_INIT_TAKE1("MSAuthLoginHost", set_login_host, NULL, S_,
                  "Microsoft's login host (national clouds, stand-ins)"),
    AP_INIT_TAKE1("MSAuthGraphHost", set_graph_host, NULL, S_, "Microsoft Graph's host"),
    AP_INIT_TAKE1("MSAuthCache", set_cache, NULL, S_,
                  "socache provider[:args] for shared state (default shmcb)"),
    AP_INIT_TAKE12("MSAuthHTTPTimeout", set_http_timeout, NULL, S_,
                   "total and connect timeouts of calls to Microsoft, in seconds"),
    AP_INIT_TAKE1("MSAuthCAFile", set_ca_file, NULL, S_,
                  "CA certificates trusted for calls to Microsoft (replaces the system's)"),
    AP_INIT_TAKE1("MSAuthHTTPProxy", set_http_proxy, NULL, S_, "proxy for calls to Microsoft"),
    AP_INIT_TAKE1("MSAuthClockSkew", set_clock_skew, NULL, S_, "leeway on token times, in seconds"),
    AP_INIT_TAKE1("MSAuthSettingsFile", set_settings_file, NULL, S_,
                  "the JSON file of apps managed through the settings API"),
    AP_INIT_TAKE1("MSAuthAdminKey", set_admin_key, NULL, S_,
                  "the settings API's bearer key (>= 32 bytes): literal, file:/path or env:NAME"),
    AP_INIT_FLAG("MSAuthMetrics", set_metrics, NULL, S_,
                 "On: Prometheus counters at <callback>/metrics (guard it with Require)"),
    AP_INIT_FLAG("MSAuthHealth", set_health, NULL, S_,
                 "On: JSON health at <callback>/health, 503 when logins cannot be served "
                 "(guard it with Require)"),
    AP_INIT_ITERATE("MSAuthCORSOrigins", add_cors_origin, NULL, S_,
                    "origins allowed to call the JWT API from a browser"),
    AP_INIT_FLAG("MSAuthTrustForwarded", set_trust_forwarded, NULL, S_,
                 "On: build URLs from X-Forwarded-Proto/Host"),
    AP_INIT_TAKE1("MSAuthApp", set_dir_app, NULL, D_, "the app protecting this location"),
    AP_INIT_TAKE1("MSAuthUnauthAction", set_unauth_action, NULL, D_,
                  "auto, login, 401 or pass: what an unauthenticated request gets"),
    AP_INIT_TAKE1("MSAuthRemoteUserClaim", set_remote_user_claim, NULL, D_,
                  "email, upn, id or name: what REMOTE_USER is"),
    AP_INIT_TAKE1("MSAuthPassClaims", set_pass_claims, NULL, D_,
                  "env, headers, both or none: how identity reaches the app"),
    AP_INIT_TAKE1("MSAuthPassTokens", set_pass_tokens, NULL, D_,
                  "off, access, id or all: the user's Microsoft tokens as X-MS-TOKEN-AAD-* "
                  "request headers"),
    AP_INIT_FLAG("MSAuthEasyAuthHeaders", set_easy_auth, NULL, D_,
                 "On: also send X-MS-CLIENT-PRINCIPAL* headers"),
    AP_INIT_FLAG("MSAuthAcceptBearer", set_accept_bearer, NULL, D_,
                 "On: accept Authorization: Bearer <session token>"),
    AP_INIT_FLAG("MSAuthStripCookie", set_strip_cookie, NULL, D_,
                 "On: hide the module's cookies from the app"),
    AP_INIT_FLAG("MSAuthTrustUnverifiedEmail", set_trust_unverified_email, NULL, D_,
                 "On: REMOTE_USER and Require ms-user/ms-domain take any email or UPN, "
                 "verified or not (Para)"),
    {NULL},
};
