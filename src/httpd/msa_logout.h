/* <callback>/logout, <callback>/logout/frontchannel and <callback>/me. */
#ifndef MSA_LOGOUT_H
#define MSA_LOGOUT_H

#include "msa_module.h"

int msa_logout_handler(request_rec *r, const msa_srv_t *srv);
/*
 * Ends session t as a logout does: its jti revoked on every server sharing
 * MSAuthCache until its expiry, the user's Microsoft tokens kept for it
 * dropped. APR_SUCCESS, else the store cannot answer (the session may live).
 */
apr_status_t msa_logout_session(request_rec *r, const msa_srv_t *srv, const msa_token_t *t);
/*
 * Microsoft's front-channel logout (GET ?sid=…, in an iframe of its sign-out
 * page): every session of that sid revoked on every server sharing the store;
 * 200 with an empty page only Microsoft's origin may frame, whatever the sid.
 */
int msa_frontchannel_handler(request_rec *r, const msa_srv_t *srv);
int msa_me_handler(request_rec *r, const msa_srv_t *srv);

#endif
