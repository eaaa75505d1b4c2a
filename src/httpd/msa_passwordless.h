/* <callback>/passwordless. */
#ifndef MSA_PASSWORDLESS_H
#define MSA_PASSWORDLESS_H

#include "msa_module.h"

int msa_passwordless_handler(request_rec *r, const msa_srv_t *srv);

#endif
