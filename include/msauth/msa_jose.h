/*
 * JOSE: the only interface to cjose. HS256 JWS for the module's own tokens,
 * RS256 JWS against Microsoft's JWKS, JWE (dir, A256GCM) for the state
 * cookie; plus the random bytes, HKDF and base64url the rest needs.
 */
#ifndef MSA_JOSE_H
#define MSA_JOSE_H

#include "msa_core.h"

typedef struct msa_key {
    const unsigned char *data;
    apr_size_t len;
} msa_key_t;

/* Signs payload (JSON text) as a compact JWS, header {"alg":"HS256","typ":"JWT"}. */
apr_status_t msa_jws_hs256_sign(apr_pool_t *p, const msa_key_t *key, const char *payload,
                                char **jws, const char **err);

/*
 * Verifies a compact JWS made with HS256 by any of keys[0..nkeys); any
 * other alg is refused. On success *payload is the NUL-terminated claims text.
 */
apr_status_t msa_jws_hs256_verify(apr_pool_t *p, const char *jws, const msa_key_t *keys, int nkeys,
                                  char **payload, const char **err);

/*
 * Verifies a compact JWS made with RS256 by the key of its kid in the JWKS
 * document jwks. MSA_ENOKEY when the kid is not in the set (fetch again);
 * APR_EINVAL for any other failure, including alg other than RS256.
 */
apr_status_t msa_jws_rs256_verify(apr_pool_t *p, const char *jws, const char *jwks, char **payload,
                                  const char **err);

/* JWE compact, alg dir, enc A256GCM, with a 32-byte key. */
apr_status_t msa_jwe_seal(apr_pool_t *p, const unsigned char key[32], const char *plaintext,
                          char **jwe, const char **err);
apr_status_t msa_jwe_open(apr_pool_t *p, const unsigned char key[32], const char *jwe,
                          char **plaintext, const char **err);

/* HKDF-SHA256 of secret with the given info (no salt) into out[0..outlen). */
apr_status_t msa_hkdf_sha256(const msa_key_t *secret, const char *info, unsigned char *out,
                             apr_size_t outlen);

/* nbytes from the CSPRNG, base64url without padding; NULL if the RNG fails. */
char *msa_random_b64url(apr_pool_t *p, apr_size_t nbytes);

/* base64url without padding. */
char *msa_b64url_encode(apr_pool_t *p, const unsigned char *data, apr_size_t len);
apr_status_t msa_b64url_decode(apr_pool_t *p, const char *s, apr_size_t slen, unsigned char **out,
                               apr_size_t *outlen);

/* base64url(SHA-256(verifier)): the PKCE S256 code_challenge. */
char *msa_pkce_challenge(apr_pool_t *p, const char *verifier);

#endif
