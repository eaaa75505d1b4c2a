/* Require ms-user, ms-domain, ms-tenant, ms-group, ms-claim. */
#ifndef MSA_AUTHZ_H
#define MSA_AUTHZ_H

#include "msa_module.h"

void msa_authz_register(apr_pool_t *p);

/*
 * Whether the session's "email" or "upn" (which) may identify the
 * user here: MSAuthTrustUnverifiedEmail On, a one-tenant app, or Microsoft
 * vouched for it at login (the token's verified claim).
 */
int msa_address_trusted(request_rec *r, const msa_token_t *t, const char *which);

#endif
