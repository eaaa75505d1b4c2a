/* A login's start and end: state cookie, redirects, failures. */
#ifndef MSA_LOGIN_H
#define MSA_LOGIN_H

#include "msa_module.h"

#define MSA_STATE_TTL        600 /* seconds a login may take */
#define MSA_STATE_COOKIE_MAX 4   /* parallel logins kept per browser */

/* GET <callback>/login?appid&return_to (4.1). */
int msa_login_handler(request_rec *r, const msa_srv_t *srv);
/* Sets a state cookie and redirects to Microsoft; return_to already validated (or NULL). */
int msa_start_login(request_rec *r, const msa_srv_t *srv, const msa_app_t *app,
                    const char *return_to);
/* msa_start_login with a claims request (JSON) instead of the app's own (CAE). */
int msa_start_login_claims(request_rec *r, const msa_srv_t *srv, const msa_app_t *app,
                           const char *return_to, const char *claims);
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

/* 302 to the app's failure URL with its cause (4.4); the root app's when app is NULL. */
int msa_login_fail(request_rec *r, const msa_srv_t *srv, const msa_app_t *app, const char *cause,
                   int level, const char *detail);
/* The Microsoft client settings of app in this request (redirect_uri derived if unset). */
void msa_login_client(request_rec *r, const msa_srv_t *srv, const msa_app_t *app,
                      msa_ms_client_t *c);

/*
 * Verifies an id_token Microsoft's token endpoint answered for app (client c)
 * as a login does: signature, issuer, audience, times, the app's tenant rule,
 * and nonce when given. NULL with ident filled, or the failure cause with
 * *detail set (msa_idtoken_verify).
 */
const char *msa_login_verify_id_token(request_rec *r, const msa_srv_t *srv, const msa_app_t *app,
                                      const msa_ms_client_t *c, const char *id_token,
                                      const char *nonce, msa_identity_t *ident, int *overage,
                                      const char **detail);

#endif
