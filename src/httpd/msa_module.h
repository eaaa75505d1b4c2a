/* The Apache glue's shared declarations: config access, logging, hooks. */
#ifndef MSA_MODULE_H
#define MSA_MODULE_H

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>

#include "msa_cfg.h"
#include "msa_http.h"
#include "msa_ms.h"
#include "msa_token.h"

extern module AP_MODULE_DECLARE_DATA msauth_module;

#if defined(APLOG_USE_MODULE) && !defined(MSA_MODULE_MAIN) /* AP_DECLARE_MODULE declares it there  \
                                                            */
APLOG_USE_MODULE(msauth);
#endif

/* Every line starts "msauth: <tag>:" so it can be grepped and alerted on. */
#define MSA_RLOG(r, level, tag, ...)                                                               \
    ap_log_rerror(APLOG_MARK, (level), 0, (r), "msauth: " tag ": " __VA_ARGS__)
#define MSA_SLOG(s, level, status, tag, ...)                                                       \
    ap_log_error(APLOG_MARK, (level), (status), (s), "msauth: " tag ": " __VA_ARGS__)

/* A directive's use of an app, checked once all apps are known. */
typedef struct msa_app_ref {
    server_rec *s;
    const char *appid;
    const char *where;
} msa_app_ref_t;

extern apr_array_header_t *msa_app_refs;
extern const command_rec msa_cmds[];

static inline msa_srv_t *msa_srv_get(const server_rec *s)
{
    return ap_get_module_config(s->module_config, &msauth_module);
}

static inline msa_dir_t *msa_dir_get(const request_rec *r)
{
    return ap_get_module_config(r->per_dir_config, &msauth_module);
}

/* msa_config.c */
void *msa_create_srv_config(apr_pool_t *p, server_rec *s);
void *msa_merge_srv_config(apr_pool_t *p, void *base, void *add);
void *msa_create_dir_config(apr_pool_t *p, char *dir);
void *msa_merge_dir_config(apr_pool_t *p, void *base, void *add);
int msa_pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp);
int msa_check_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s);
int msa_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s);
void msa_child_init(apr_pool_t *p, server_rec *s);

/*
 * msa_authz.c: whether the session's "email" or "upn" (which) may identify the
 * user here: MSAuthTrustUnverifiedEmail On, a one-tenant app, or Microsoft
 * vouched for it at login (the token's verified claim).
 */
int msa_address_trusted(request_rec *r, const msa_token_t *t, const char *which);

/* msa_handler.c */
int msa_quick_handler(request_rec *r, int lookup_uri);
int msa_redact_request_line(request_rec *r);
/* Sets a state cookie and redirects to Microsoft; return_to already validated (or NULL). */
int msa_start_login(request_rec *r, const msa_srv_t *srv, const msa_app_t *app,
                    const char *return_to);
/*
 * Issues a session token for ident (groups that would make the cookie too big
 * go to the cache): OK, HTTP_BAD_REQUEST (no id), HTTP_SERVICE_UNAVAILABLE.
 */
int msa_issue_session(request_rec *r, const msa_srv_t *srv, const msa_app_t *app,
                      const msa_identity_t *ident, msa_token_t *st, char **jwt);
/*
 * Completes ident once Graph /me accepted access_token (prof its answer): the
 * user's tenant from Graph and the addresses Graph vouches for. When
 * ident->tid is NULL (no id_token), that tenant must pass MSAuthTenant and
 * MSAuthAllowedTenants (via_segment: the token came from MSAuthTenant's own
 * endpoint); a tenant Graph cannot name is refused where tenants are
 * restricted. Returns NULL, or a login failure cause with *detail set.
 */
const char *msa_graph_tenant(request_rec *r, const msa_srv_t *srv, const msa_app_t *app,
                             const char *access_token, const msa_ms_profile_t *prof,
                             int via_segment, msa_identity_t *ident, const char **detail);
/* Issues the session cookie for ident and redirects to return_to or the success URL. */
int msa_finish_login(request_rec *r, const msa_srv_t *srv, const msa_app_t *app,
                     const msa_identity_t *ident, const char *return_to);

/* msa_cache.c: shared state (MSAuthCache), kept by record kind; see msa_store.h. */
#define MSA_CACHE_MUTEX "msauth-cache"
typedef struct msa_cache msa_cache_t;
typedef enum msa_rec {
    MSA_REC_STATE,    /* a spent login state (transient) */
    MSA_REC_CODE,     /* a spent authorization code (transient) */
    MSA_REC_JWKS,     /* a JWKS document (bulk: losing it costs a fetch) */
    MSA_REC_SPENT_ID, /* a spent ID token's jti (durable) */
    MSA_REC_REVOKED,  /* a revoked session token's jti (durable) */
    MSA_REC_USER_NBF, /* appid:sub -> the time up to which its tokens are dead (durable) */
    MSA_REC_GROUPS,   /* a session's groups that did not fit in the cookie (durable, bulk) */
} msa_rec_t;
int msa_cache_pre_config(apr_pool_t *pconf);
/* MSAuthCache's value: an error message (for the directive) or NULL. */
const char *msa_cache_check_spec(apr_pool_t *p, const char *spec);
/* The whole store setting of srv, once every module is loaded. */
const char *msa_cache_check(apr_pool_t *p, const msa_srv_t *srv);
apr_status_t msa_cache_post_config(apr_pool_t *pconf, apr_pool_t *ptemp, server_rec *s);
void msa_cache_child_init(apr_pool_t *p, server_rec *s);
/* The owner of a user's records (where sharded stores keep them): "appid:sub". */
const char *msa_cache_owner(apr_pool_t *p, const char *appid, const char *sub);
/*
 * APR_NOTFOUND when absent; any other failure means the cache cannot answer. Values of at
 * most max bytes (64 KiB at most) are read. owner places the record (msa_cache_owner for a
 * user's records, the id itself otherwise).
 */
apr_status_t msa_cache_get(request_rec *r, const msa_srv_t *srv, msa_rec_t rec, const char *owner,
                           const char *id, apr_size_t max, char **val);
apr_status_t msa_cache_put(request_rec *r, const msa_srv_t *srv, msa_rec_t rec, const char *owner,
                           const char *id, const char *val, apr_time_t expiry);
/*
 * Records id once, atomically on every server sharing the cache: APR_SUCCESS for exactly
 * one caller, APR_EEXIST for every other; other failures: the cache cannot answer.
 */
apr_status_t msa_cache_claim(request_rec *r, const msa_srv_t *srv, msa_rec_t rec, const char *owner,
                             const char *id, apr_time_t expiry);
/* The epoch tokens of owner are issued in now (created when the store has none). */
apr_status_t msa_cache_epoch(request_rec *r, const msa_srv_t *srv, const char *owner,
                             const char **epoch);
/* The epoch spent login states are kept in (a login state carries it, state = its owner). */
apr_status_t msa_cache_state_epoch(request_rec *r, const msa_srv_t *srv, const char *state,
                                   const char **epoch);
typedef enum msa_verdict {
    MSA_TOKEN_LIVE,    /* not revoked, in the store's epoch */
    MSA_TOKEN_REVOKED, /* its jti, or every token of its user up to its iat */
    MSA_TOKEN_STALE,   /* issued before the store's epoch: the store may have lost its records */
    MSA_TOKEN_UNKNOWN, /* the store cannot answer */
} msa_verdict_t;
/* The revocation check of every protected request: one lock or one round trip. */
msa_verdict_t msa_cache_token_verdict(request_rec *r, const msa_srv_t *srv, const msa_token_t *t);

/* msa_authn.c */
/* Under AuthType Microsoft: client-sent identity headers dropped (post_perdir_config). */
int msa_scrub_request(request_rec *r);
/* Under AuthType Microsoft: the module's cookies and Bearer token hidden from the app (fixups). */
int msa_hide_credentials(request_rec *r);
int msa_check_authn(request_rec *r);
/* The aud claim of app's tokens in this request's virtual host (its ServerName and port). */
const char *msa_request_audience(request_rec *r, const msa_app_t *app);
/*
 * Verifies a token of app (msa_token_verify with the app's appid and the
 * audience of this virtual host), then applies the app's tenant rule to its
 * tid. MSA_EEXPIRED or APR_EINVAL with *err, as msa_token_verify.
 */
apr_status_t msa_app_token_verify(request_rec *r, const msa_srv_t *srv, const msa_app_t *app,
                                  const char *jwt, const char *use, apr_int64_t now, msa_token_t *t,
                                  const char **err);
/*
 * The app's valid session in the request (Bearer when accept_bearer, else the
 * cookie): OK with *out, HTTP_UNAUTHORIZED when absent, invalid or revoked,
 * HTTP_SERVICE_UNAVAILABLE when the cache cannot answer. *presented is the
 * token text, or NULL when none was presented.
 */
int msa_session_check(request_rec *r, const msa_srv_t *srv, const msa_app_t *app, int accept_bearer,
                      msa_token_t **out, const char **presented);

int msa_note_auth_failure(request_rec *r, const char *auth_type);
void msa_insert_error_filter(request_rec *r);

/* msa_metrics.c: shared counters (MSAuthMetrics) and <callback>/metrics. */
int msa_metrics_post_config(apr_pool_t *pconf, server_rec *s);
int msa_metrics_handler(request_rec *r);
void msa_metric_login_started(void);
void msa_metric_login_ok(void);
void msa_metric_login_failed(const char *cause);
void msa_metric_token_issued(void);
void msa_metric_token_refused(const char *reason);
void msa_metric_jwks_fetch(void);
void msa_metric_cache_error(void);
void msa_metric_cache_epoch(void);
void msa_metric_call(void *ctx, apr_interval_time_t elapsed, int answered);

/* msa_settings_api.c */
int msa_settings_post_config(apr_pool_t *pconf, apr_pool_t *ptemp, server_rec *s);
/* The effective app for appid: a stored app first (settings store), else the configured one. */
const msa_app_t *msa_app_lookup(request_rec *r, const msa_srv_t *srv, const char *appid);
/* The auth_cookie names the settings store sets (the default names are msauth-<appid>). */
apr_array_header_t *msa_stored_cookie_names(request_rec *r, const msa_srv_t *srv);
/* <callback>/_settings[/appid[/key]]; rest is what follows "_settings/". */
int msa_settings_api(request_rec *r, const msa_srv_t *srv, const char *rest);

/* msa_jwt_api.c */
/* Reads a request body of at most 64 KiB: OK, HTTP_REQUEST_ENTITY_TOO_LARGE, or an error. */
int msa_read_body(request_rec *r, char **body, apr_size_t *len);
int msa_jwt_api(request_rec *r, const msa_srv_t *srv);
/*
 * Verifies an ID token (of appid, else of the app its claim names) and spends
 * it: OK with *app and ident; HTTP_UNAUTHORIZED; HTTP_SERVICE_UNAVAILABLE.
 */
int msa_spend_id_token(request_rec *r, const msa_srv_t *srv, const char *appid, const char *token,
                       const msa_app_t **app, msa_identity_t *ident);

/* msa_authz.c */
void msa_authz_register(apr_pool_t *p);
/* What AuthType Microsoft accepted for a request: the session and the app it opened. */
typedef struct msa_req {
    const msa_token_t *token;
    const msa_app_t *app;
} msa_req_t;
/* The session AuthType Microsoft accepted for this request itself, or NULL. */
const msa_token_t *msa_request_token(const request_rec *r);
/* The app whose session AuthType Microsoft accepted for this request, or NULL. */
const msa_app_t *msa_request_app(const request_rec *r);

/* Helpers shared by the handlers. */
int msa_answer_json(request_rec *r, int status, const char *json);
/* {"code":status,"message":message} */
int msa_answer_error(request_rec *r, int status, const char *message);
/* A validated return_to, or NULL (the refusal logged at INFO): the caller's default then. */
const char *msa_return_target(request_rec *r, const msa_srv_t *srv, const msa_app_t *app,
                              const char *target);
const char *msa_self_origin(request_rec *r, const msa_srv_t *srv);
int msa_request_is_https(request_rec *r, const msa_srv_t *srv);
const char *msa_cookie_get(request_rec *r, const char *name);
void msa_cookie_set(request_rec *r, const msa_srv_t *srv, const msa_app_t *app, const char *name,
                    const char *value, const char *path, apr_int64_t max_age, int samesite);

#endif
