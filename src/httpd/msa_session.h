/* Session and ID tokens of an app: verify, issue, spend. */
#ifndef MSA_SESSION_H
#define MSA_SESSION_H

#include "msa_module.h"

/* The virtual host's name in the audience: its ServerName and port (see msa_request_audience). */
const char *msa_vhost_name(apr_pool_t *p, const server_rec *s);
/* The aud claim of app's tokens in this request's virtual host (its ServerName and port). */
const char *msa_request_audience(request_rec *r, const msa_app_t *app);
/*
 * Verifies a token of app (msa_token_verify with the app's appid and the
 * audience of this virtual host), then applies the app's tenant rule to its
 * tid. MSA_EEXPIRED or APR_EINVAL with *err, as msa_token_verify; memo (may
 * be NULL) as msa_token_verify_memo.
 */
apr_status_t msa_app_token_verify(request_rec *r, const msa_srv_t *srv, const msa_app_t *app,
                                  const char *jwt, const char *use, apr_int64_t now, msa_token_t *t,
                                  msa_token_memo_t *memo, const char **err);
/*
 * The app's valid session in the request (Bearer when accept_bearer, else the
 * cookie): OK with *out, HTTP_UNAUTHORIZED when absent, invalid or revoked,
 * HTTP_SERVICE_UNAVAILABLE when the cache cannot answer. *presented is the
 * token text, or NULL when none was presented. remembered: a live verdict
 * this child remembers may answer (at most a second old, see msa_cache.c);
 * else the store is asked, as whatever issues or ends a token must.
 */
int msa_session_check(request_rec *r, const msa_srv_t *srv, const msa_app_t *app, int accept_bearer,
                      int remembered, msa_token_t **out, const char **presented);

/*
 * The session a module endpoint serves (GET <callback>/me, POST <callback>/refresh):
 * the app of ?appid= (the root app without it) and its session, cookie or Bearer,
 * asked of the store. 1 with *app and *t; else 0, the answer given (400 malformed
 * query, 404 unknown app, 503 store unavailable, 401 with WWW-Authenticate) and
 * the handler's return in *rc.
 */
int msa_endpoint_session(request_rec *r, const msa_srv_t *srv, const msa_app_t **app,
                         msa_token_t **t, int *rc);

/*
 * Issues a session token for ident (groups that would make the cookie too big
 * go to the cache): OK, HTTP_BAD_REQUEST (no id), HTTP_SERVICE_UNAVAILABLE.
 */
int msa_issue_session(request_rec *r, const msa_srv_t *srv, const msa_app_t *app,
                      const msa_identity_t *ident, msa_token_t *st, char **jwt);

/*
 * Verifies an ID token (of appid, else of the app its claim names) and spends
 * it: OK with *app and ident; HTTP_UNAUTHORIZED; HTTP_SERVICE_UNAVAILABLE.
 */
int msa_spend_id_token(request_rec *r, const msa_srv_t *srv, const char *appid, const char *token,
                       const msa_app_t **app, msa_identity_t *ident);
/* The identity a verified token records (for a session issued from it). */
void msa_identity_of_token(const msa_token_t *t, msa_identity_t *ident);

#endif
