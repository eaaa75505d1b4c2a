/*
 * Continuous access evaluation: the cp1 client capability the module declares,
 * and the claims challenge an app answers with (WWW-Authenticate: Bearer
 * error="insufficient_claims", claims="<base64 JSON>") turned into the claims
 * request of a new sign-in.
 */
#ifndef MSA_CAE_H
#define MSA_CAE_H

#include "msa_core.h"

/* The claims request declaring the cp1 capability: every authorize and token request. */
#define MSA_CAE_CP1_CLAIMS "{\"access_token\":{\"xms_cc\":{\"values\":[\"cp1\"]}}}"

/* The loop guard's cookie: the page last challenged, how often, since when (MAC'd). */
#define MSA_CAE_COOKIE "msauth_cae"

/* The longest claims value (base64) taken from a challenge. */
#define MSA_CAE_MAX_CLAIMS 4096

/*
 * Looks through the challenges of one WWW-Authenticate field value (RFC 7235:
 * 1#challenge, auth-params of tokens or quoted strings, a token68) for a
 * Bearer challenge with error="insufficient_claims". APR_SUCCESS with *claims
 * (the claims parameter as sent) when there is one; APR_ENOENT when the field
 * holds none; APR_EINVAL with *why (a short fixed text) when the field does
 * not parse, or the challenge lacks its claims or repeats a parameter.
 */
apr_status_t msa_cae_find_challenge(apr_pool_t *p, const char *field, const char **claims,
                                    const char **why);

/*
 * The claims request for a new sign-in from a challenge's claims value:
 * base64 (standard or URL-safe alphabet, padded or not) of a JSON object of
 * at most MSA_CAE_MAX_CLAIMS characters, with "cp1" added to
 * access_token.xms_cc.values (once). APR_SUCCESS with *json (compact JSON);
 * APR_EINVAL with *why (a short fixed text that never quotes the value).
 */
apr_status_t msa_cae_merge(apr_pool_t *p, const char *claims, const char **json, const char **why);

/*
 * The time before which a claims request (msa_cae_merge's JSON) refuses
 * tokens: access_token.nbf's value, which Microsoft's challenge after a
 * revocation event carries ({"access_token":{"nbf":{"essential":true,
 * "value":"1602707784"}}}), as epoch seconds, a string of digits or an
 * integer. APR_SUCCESS with *at; APR_ENOENT when it asks for no such time
 * (a step-up challenge, acrs) or the value is no time.
 */
apr_status_t msa_cae_not_before(apr_pool_t *p, const char *json, apr_int64_t *at);

#endif
