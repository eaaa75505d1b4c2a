/* <callback>/health (MSAuthHealth). */
#ifndef MSA_HEALTH_H
#define MSA_HEALTH_H

#include "msa_module.h"

/* A content handler: the request goes through Apache's access checks first. */
int msa_health_handler(request_rec *r);

#endif
