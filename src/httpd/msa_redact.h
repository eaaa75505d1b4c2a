/* Codes and tokens kept out of the logged request line and Referer. */
#ifndef MSA_REDACT_H
#define MSA_REDACT_H

#include "msa_module.h"

/* post_read_request: the logged request line without codes and tokens. */
int msa_redact_request_line(request_rec *r);

#endif
