/*
 * MSAuthPassTokens: the user's Microsoft tokens kept server-side per session,
 * refreshed before they expire, and handed to the app as Easy Auth's
 * X-MS-TOKEN-AAD-* request headers; POST <callback>/refresh.
 */
#ifndef MSA_MSTOKENS_H
#define MSA_MSTOKENS_H

#include "msa_module.h"

/*
 * Keeps the tokens of a login's answer for the session st just issued (when
 * the virtual host passes tokens anywhere). A store that cannot keep them is
 * logged; the login goes on.
 */
void msa_mstokens_keep(request_rec *r, const msa_srv_t *srv, const msa_app_t *app,
                       const msa_token_t *st, const msa_ms_tokens_t *tokens);

/*
 * The tokens of session t for the app, as the location's MSAuthPassTokens
 * asks (MSA_TOKENS_*): refreshed first when the access token is near its
 * expiry. Nothing is set when there are none that are still valid.
 */
void msa_mstokens_pass(request_rec *r, const msa_srv_t *srv, const msa_app_t *app,
                       const msa_token_t *t, int kinds);

/* The tokens of session from, kept for session to that replaces it (the JWT API's GET). */
void msa_mstokens_carry(request_rec *r, const msa_srv_t *srv, const msa_app_t *app,
                        const msa_token_t *from, const msa_token_t *to);

/* Forgets the tokens of session t (logout, revocation). */
void msa_mstokens_drop(request_rec *r, const msa_srv_t *srv, const msa_token_t *t);

/*
 * Forgets the tokens of every session of the user (DELETE /jwt_auth revoked them all),
 * whether this virtual host passes tokens or not: another sharing the store may.
 */
void msa_mstokens_drop_user(request_rec *r, const msa_srv_t *srv, const char *appid,
                            const char *sub);

/* Forgets the tokens of every session of the Microsoft session sid (front-channel logout). */
void msa_mstokens_drop_sid(request_rec *r, const msa_srv_t *srv, const char *sid);

/* Every request: X-MS-TOKEN-AAD-* headers a client sent are removed (post_perdir_config). */
int msa_mstokens_strip(request_rec *r);

/*
 * Every request, just before its handler: X-MS-TOKEN-AAD-* headers (and
 * their environment copies) that the module did not set for this very
 * request and configuration are removed.
 */
void msa_mstokens_guard(request_rec *r);

/* POST <callback>/refresh?appid=: a refresh now; Easy Auth's answer. */
int msa_mstokens_refresh_handler(request_rec *r, const msa_srv_t *srv);

#endif
