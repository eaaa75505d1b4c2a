/* Identity in the forms apps expect: Azure App Service's Easy Auth principal. */
#ifndef MSA_CLAIMS_H
#define MSA_CLAIMS_H

#include "msa_core.h"
#include "msa_token.h"

/*
 * X-MS-CLIENT-PRINCIPAL: standard base64 (with padding) of
 * {"auth_typ":"aad","claims":[{"typ":…,"val":…}…],"name_typ":"name","role_typ":"roles"},
 * one claim entry per value, with the id_token's claim names.
 */
char *msa_claims_easyauth_principal(apr_pool_t *p, const msa_token_t *t);

/* X-MS-CLIENT-PRINCIPAL-NAME: the email, else the UPN, else the id. */
const char *msa_claims_principal_name(const msa_token_t *t);

/* X-MS-CLIENT-PRINCIPAL-ID: the oid, else the Graph id. */
const char *msa_claims_principal_id(const msa_token_t *t);

/* The JSON of /me: the identity of a session. */
char *msa_claims_me_json(apr_pool_t *p, const msa_token_t *t);

#endif
