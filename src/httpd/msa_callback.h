/* The callback (4.2). */
#ifndef MSA_CALLBACK_H
#define MSA_CALLBACK_H

#include "msa_module.h"

/* GET <callback>?code&state or ?error&state. */
int msa_callback_handler(request_rec *r, const msa_srv_t *srv);

#endif
