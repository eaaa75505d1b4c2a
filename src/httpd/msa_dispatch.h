/* The module's endpoints, dispatched by path (a quick handler). */
#ifndef MSA_DISPATCH_H
#define MSA_DISPATCH_H

#include "msa_module.h"

int msa_quick_handler(request_rec *r, int lookup_uri);

#endif
