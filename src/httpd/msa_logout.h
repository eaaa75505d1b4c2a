/* <callback>/logout, <callback>/logout/frontchannel and <callback>/me. */
#ifndef MSA_LOGOUT_H
#define MSA_LOGOUT_H

#include "msa_module.h"

int msa_logout_handler(request_rec *r, const msa_srv_t *srv);
/*
 * Microsoft's front-channel logout (GET ?sid=…, in an iframe of its sign-out
 * page): every session of that sid revoked on every server sharing the store;
 * 200 with an empty page only Microsoft's origin may frame, whatever the sid.
 */
int msa_frontchannel_handler(request_rec *r, const msa_srv_t *srv);
int msa_me_handler(request_rec *r, const msa_srv_t *srv);

#endif
