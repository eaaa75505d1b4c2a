/*
 * The fixed RSA key of fuzz.h at work: RS256 tokens signed with it and the
 * JWKS that holds its public half (fuzz_jwks and the seed generator).
 */
#ifndef MSA_FUZZ_RSA_H
#define MSA_FUZZ_RSA_H

#include <string.h>

#include <apr_strings.h>
#include <cjose/cjose.h>

#include "fuzz.h"

/*
 * A compact RS256 JWS of payload with header {"alg":"RS256","kid":kid,"typ":"JWT"}
 * (kid NULL: none), copied into p; NULL when cjose fails.
 */
static inline char *fuzz_rs256_sign(apr_pool_t *p, const char *kid, const char *payload)
{
    cjose_err e;
    cjose_jwk_t *jwk = cjose_jwk_import(FUZZ_RSA_JWK, strlen(FUZZ_RSA_JWK), &e);
    cjose_header_t *h = cjose_header_new(&e);
    cjose_jws_t *jws = NULL;
    const char *ser = NULL;
    char *out = NULL;
    if (jwk != NULL && h != NULL && cjose_header_set(h, CJOSE_HDR_ALG, CJOSE_HDR_ALG_RS256, &e) &&
        (kid == NULL || cjose_header_set(h, CJOSE_HDR_KID, kid, &e)) &&
        cjose_header_set(h, "typ", "JWT", &e)) {
        jws = cjose_jws_sign(jwk, h, (const uint8_t *)payload, strlen(payload), &e);
        if (jws != NULL && cjose_jws_export(jws, &ser, &e)) {
            out = apr_pstrdup(p, ser);
        }
    }
    cjose_jws_release(jws);
    cjose_header_release(h);
    cjose_jwk_release(jwk);
    return out;
}

/* The public half of the key as one JWK (JSON), copied into p. */
static inline char *fuzz_rsa_public_jwk(apr_pool_t *p)
{
    cjose_err e;
    cjose_jwk_t *jwk = cjose_jwk_import(FUZZ_RSA_JWK, strlen(FUZZ_RSA_JWK), &e);
    char *json = jwk ? cjose_jwk_to_json(jwk, false, &e) : NULL;
    char *out = json ? apr_pstrdup(p, json) : NULL;
    if (json != NULL) {
        cjose_get_dealloc()(json);
    }
    cjose_jwk_release(jwk);
    return out;
}

#endif
