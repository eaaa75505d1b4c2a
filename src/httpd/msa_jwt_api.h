/* The Para-compatible JWT API at MSAuthJWTPath. */
#ifndef MSA_JWT_API_H
#define MSA_JWT_API_H

#include "msa_module.h"

int msa_jwt_api(request_rec *r, const msa_srv_t *srv);

#endif
