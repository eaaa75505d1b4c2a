/*
 * Configuration as plain data: apps, per-server and per-directory settings,
 * their merges by "set" marks, and the value parsers the directives share.
 * Defaults are filled in at create time with their set marks clear, so a
 * merge takes a child's value exactly when the child set it.
 */
#ifndef MSA_CFG_H
#define MSA_CFG_H

#include <apr_hash.h>

#include "msa_core.h"
#include "msa_cred.h"
#include "msa_jose.h"

enum { MSA_SAMESITE_LAX, MSA_SAMESITE_STRICT, MSA_SAMESITE_NONE };
enum { MSA_SECURE_AUTO, MSA_SECURE_ON, MSA_SECURE_OFF };
enum { MSA_GROUPS_OFF, MSA_GROUPS_TOKEN, MSA_GROUPS_GRAPH };
enum { MSA_UNAUTH_AUTO, MSA_UNAUTH_LOGIN, MSA_UNAUTH_401, MSA_UNAUTH_PASS };
enum { MSA_CLAIM_EMAIL, MSA_CLAIM_UPN, MSA_CLAIM_ID, MSA_CLAIM_NAME };
enum { MSA_PASS_ENV, MSA_PASS_HEADERS, MSA_PASS_BOTH, MSA_PASS_NONE };
/* MSAuthPassTokens: bit 1 the access token (and its expiry), bit 2 the id_token. */
enum { MSA_TOKENS_OFF = 0, MSA_TOKENS_ACCESS = 1, MSA_TOKENS_ID = 2, MSA_TOKENS_ALL = 3 };

/* App settings (context S A): X(type, field, directive). */
#define MSA_APP_FIELDS(X)                                                                          \
    X(const char *, client_id, "MSAuthClientID")                                                   \
    X(const char *, client_secret, "MSAuthClientSecret")                                           \
    X(msa_cred_t *, client_cert, "MSAuthClientCertificate")                                        \
    X(msa_cred_t *, assertion_file, "MSAuthClientAssertionFile")                                   \
    X(const char *, tenant, "MSAuthTenant")                                                        \
    X(apr_array_header_t *, allowed_tenants, "MSAuthAllowedTenants")                               \
    X(const char *, signin_success, "MSAuthSigninSuccess")                                         \
    X(const char *, signin_failure, "MSAuthSigninFailure")                                         \
    X(apr_array_header_t *, keys, "MSAuthSecretKey")                                               \
    X(const char *, scope, "MSAuthScope")                                                          \
    X(const char *, redirect_uri, "MSAuthRedirectURI")                                             \
    X(apr_int64_t, session_timeout, "MSAuthSessionTimeout")                                        \
    X(apr_int64_t, refresh_interval, "MSAuthRefreshInterval")                                      \
    X(apr_int64_t, id_token_ttl, "MSAuthIDTokenTTL")                                               \
    X(const char *, cookie_name, "MSAuthCookieName")                                               \
    X(const char *, cookie_domain, "MSAuthCookieDomain")                                           \
    X(const char *, cookie_path, "MSAuthCookiePath")                                               \
    X(int, cookie_samesite, "MSAuthCookieSameSite")                                                \
    X(int, cookie_secure, "MSAuthCookieSecure")                                                    \
    X(int, legacy_state, "MSAuthLegacyState")                                                      \
    X(int, passwordless_get, "MSAuthPasswordlessGET")                                              \
    X(int, groups, "MSAuthGroups")                                                                 \
    X(int, cae, "MSAuthCAE")                                                                       \
    X(apr_array_header_t *, redirect_allow, "MSAuthRedirectAllow")

/* Server settings (context S). */
#define MSA_SRV_FIELDS(X)                                                                          \
    X(const char *, callback_path, "MSAuthCallbackPath")                                           \
    X(const char *, jwt_path, "MSAuthJWTPath")                                                     \
    X(const char *, login_host, "MSAuthLoginHost")                                                 \
    X(const char *, graph_host, "MSAuthGraphHost")                                                 \
    X(const char *, cache, "MSAuthCache")                                                          \
    X(int, http_timeout, "MSAuthHTTPTimeout")                                                      \
    X(int, http_connect_timeout, "MSAuthHTTPTimeout")                                              \
    X(const char *, ca_file, "MSAuthCAFile")                                                       \
    X(const char *, http_proxy, "MSAuthHTTPProxy")                                                 \
    X(apr_int64_t, clock_skew, "MSAuthClockSkew")                                                  \
    X(int, trust_forwarded, "MSAuthTrustForwarded")                                                \
    X(const char *, settings_file, "MSAuthSettingsFile")                                           \
    X(const char *, admin_key, "MSAuthAdminKey")                                                   \
    X(apr_array_header_t *, cors_origins, "MSAuthCORSOrigins")                                     \
    X(int, metrics, "MSAuthMetrics")                                                               \
    X(int, health, "MSAuthHealth")

/* Directory settings (context D). */
#define MSA_DIR_FIELDS(X)                                                                          \
    X(const char *, app, "MSAuthApp")                                                              \
    X(int, unauth_action, "MSAuthUnauthAction")                                                    \
    X(int, remote_user_claim, "MSAuthRemoteUserClaim")                                             \
    X(int, pass_claims, "MSAuthPassClaims")                                                        \
    X(int, easy_auth, "MSAuthEasyAuthHeaders")                                                     \
    X(int, accept_bearer, "MSAuthAcceptBearer")                                                    \
    X(int, strip_cookie, "MSAuthStripCookie")                                                      \
    X(int, trust_unverified_email, "MSAuthTrustUnverifiedEmail")                                   \
    X(int, pass_tokens, "MSAuthPassTokens")

#define MSA_CFG_MEMBER(type, field, directive)                                                     \
    type field;                                                                                    \
    unsigned int field##_set : 1;

typedef struct msa_app {
    const char *appid; /* "" for the root app */
    const char *where; /* "file:line" where it was first configured, for messages */
    MSA_APP_FIELDS(MSA_CFG_MEMBER)
} msa_app_t;

typedef struct msa_srv {
    msa_app_t *root;
    apr_hash_t *apps;      /* appid -> msa_app_t *, as configured (not yet merged with root) */
    apr_hash_t *resolved;  /* appid ("" = root) -> effective msa_app_t *; see msa_srv_resolve */
    struct msa_http *http; /* this server's HTTP client, made per process */
    struct msa_cache *cache_handle; /* this server's shared cache, made in post_config */
    const char *vhost_name;         /* its name in the audience of its tokens, post_config */
    /* MSAuthPassTokens other than off in its configuration (or the main server's): logins
     * ask for offline_access and their Microsoft tokens are kept */
    int tokens_wanted;
    MSA_SRV_FIELDS(MSA_CFG_MEMBER)
} msa_srv_t;

typedef struct msa_dir {
    MSA_DIR_FIELDS(MSA_CFG_MEMBER)
} msa_dir_t;

#undef MSA_CFG_MEMBER

/* Marks a field as set to a value. */
#define MSA_CFG_SET(cfg, field, value)                                                             \
    do {                                                                                           \
        (cfg)->field = (value);                                                                    \
        (cfg)->field##_set = 1;                                                                    \
    } while (0)

/* Creation with defaults, set marks clear. */
msa_app_t *msa_app_create(apr_pool_t *p, const char *appid);
msa_srv_t *msa_srv_create(apr_pool_t *p);
msa_dir_t *msa_dir_create(apr_pool_t *p);

/*
 * Merges: a field comes from add when add set it, else from base. The
 * credential is one setting: an app that sets MSAuthClientSecret,
 * MSAuthClientCertificate or MSAuthClientAssertionFile inherits none of the
 * other two.
 */
msa_app_t *msa_app_merge(apr_pool_t *p, const msa_app_t *base, const msa_app_t *add);
msa_srv_t *msa_srv_merge(apr_pool_t *p, const msa_srv_t *base, const msa_srv_t *add);
msa_dir_t *msa_dir_merge(apr_pool_t *p, const msa_dir_t *base, const msa_dir_t *add);

/*
 * Computes each app's effective settings once (after the last merge): the
 * root app when it has a client id, and every named app merged over the
 * root app, with its default cookie name filled in.
 */
void msa_srv_resolve(apr_pool_t *p, msa_srv_t *s);

/* The effective app for appid ("" or "default" = root app); NULL when not configured. */
const msa_app_t *msa_srv_app(const msa_srv_t *s, const char *appid);

/* Whether any app is configured (the module's endpoints are served only then). */
int msa_srv_has_apps(const msa_srv_t *s);

/*
 * Whether the app has what a login needs; NULL when complete, else the
 * missing directive (MSAuthClientSecret stands for any credential).
 */
const char *msa_app_incomplete(const msa_app_t *a);

/*
 * NULL when the app sets at most one credential, else the directives that
 * clash ("MSAuthClientCertificate and MSAuthClientSecret").
 */
const char *msa_app_credential_clash(apr_pool_t *p, const msa_app_t *a);

/* The app's credential for client assertions, or NULL when it uses its secret. */
msa_cred_t *msa_app_credential(const msa_app_t *a);

/* The app's appid as it appears in tokens and logs ("default" for the root app). */
const char *msa_app_token_id(const msa_app_t *a);

/*
 * The aud claim of the app's tokens in the virtual host named vhost (its
 * ServerName and port): "<client id>:<appid>@<vhost>". A token opens only
 * the app whose audience it names.
 */
const char *msa_app_audience(apr_pool_t *p, const msa_app_t *a, const char *vhost);
/* The same as the NULL-terminated list of its parts, nothing copied (parts: 6 slots). */
void msa_app_audience_parts(const msa_app_t *a, const char *vhost, const char *parts[6]);

/* Whether the app restricts tenants: MSAuthTenant other than common, or MSAuthAllowedTenants. */
int msa_app_restricts_tenants(const msa_app_t *a);

/*
 * Whether tenant id tid satisfies the app's MSAuthTenant (consumers,
 * organizations, a GUID; common and domains take any) and MSAuthAllowedTenants.
 * An unknown tid (NULL) satisfies only an app that does not restrict tenants.
 */
int msa_app_tenant_allowed(const msa_app_t *a, const char *tid);

/* Value parsers: NULL on success, else a message (without the directive name). */
const char *msa_parse_secret(apr_pool_t *p, const char *value, const char **out);
const char *msa_parse_key(apr_pool_t *p, const char *value, msa_key_t **out);
const char *msa_parse_seconds(const char *value, apr_int64_t min, apr_int64_t max,
                              apr_int64_t *out);
/* names: NULL-terminated list; *out = index of the match (case-insensitive). */
const char *msa_parse_enum(const char *value, const char *const *names, int *out);
const char *msa_parse_path(const char *value);
const char *msa_parse_tenant(const char *value);
const char *msa_parse_guid(const char *value);
const char *msa_parse_client_id(const char *value);
const char *msa_parse_cookie_name(const char *value);

#endif
