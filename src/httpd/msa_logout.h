/* <callback>/logout and <callback>/me. */
#ifndef MSA_LOGOUT_H
#define MSA_LOGOUT_H

#include "msa_module.h"

int msa_logout_handler(request_rec *r, const msa_srv_t *srv);
int msa_me_handler(request_rec *r, const msa_srv_t *srv);

#endif
