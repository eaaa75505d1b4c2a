/*
 * Fuzz target: id_token signatures against Microsoft's JWKS (msa_jws_rs256_verify).
 *
 * The input is split at its first NUL or newline into a token and a JWKS
 * document; a token alone is checked against the JWKS of the fixed key. The
 * whole input (and the part after the split) is also tried as the JWKS for
 * a fixed token signed with that key, which is where the JSON walk and the
 * key import meet outside input.
 *
 * Invariants: the status is one of the contract's; the fixed token verifies
 * only against a JWKS whose entry for its kid holds the fixed key's modulus
 * and exponent, and then gives back the fixed payload.
 *
 * Known crash (test/fuzz/crashes/jwks/, README.md): libcjose 0.6.2.1 aborts
 * on an assertion when a JWK member such as "n" holds a '=' after 4k+1
 * characters, and msa_jws_rs256_verify hands it the JWKS entry as it came.
 * With FUZZ_SKIP_KNOWN=1 in the environment, JWKS documents holding a '='
 * (plain or \u003d) are not verified, so that a run can look past it.
 */
#include <apr_strings.h>
#include <json-c/json.h>

#include "msa_jose.h"

#include "fuzz.h"
#include "fuzz_rsa.h"

static const char fixed_claims[] =
    "{\"aud\":\"cid-123\",\"iss\":\"https://login.microsoftonline.com/"
    "9188040d-6c67-4c5b-b112-36a304b66dad/v2.0\",\"iat\":1767225600,\"nbf\":1767225600,"
    "\"exp\":1767229200,\"name\":\"Fuzz Tester\",\"oid\":\"00000000-0000-0000-66f3-3332eca7ea81\","
    "\"preferred_username\":\"fuzz@example.com\",\"sub\":"
    "\"AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ\","
    "\"tid\":\"9188040d-6c67-4c5b-b112-36a304b66dad\",\"nonce\":\"n-0S6_WzA2Mj\",\"ver\":\"2.0\"}";

static char *fixed_token; /* RS256, kid FUZZ_RSA_KID, payload fixed_claims */
static char *fixed_jwks;  /* {"keys":[the public key]} */
static unsigned char *key_n, *key_e;
static apr_size_t key_n_len, key_e_len;
static int skip_known; /* FUZZ_SKIP_KNOWN=1 */

/* A big-endian number without its leading zero bytes. */
static void strip_zeros(const unsigned char **d, apr_size_t *len)
{
    while (*len > 0 && **d == 0) {
        (*d)++;
        (*len)--;
    }
}

/* Decodes the base64url member name of JWK k; 0 when absent or malformed. */
static int jwk_number(apr_pool_t *p, json_object *k, const char *name, const unsigned char **out,
                      apr_size_t *len)
{
    json_object *v;
    unsigned char *d;
    if (!json_object_object_get_ex(k, name, &v) || !json_object_is_type(v, json_type_string)) {
        return 0;
    }
    const char *s = json_object_get_string(v);
    if (msa_b64url_decode(p, s, strlen(s), &d, len) != APR_SUCCESS) {
        return 0;
    }
    *out = d;
    strip_zeros(out, len);
    return 1;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_init();
    const char *skip = getenv("FUZZ_SKIP_KNOWN");
    skip_known = skip != NULL && strcmp(skip, "1") == 0;
    char *payload = NULL;
    const char *err = NULL, *pub = fuzz_rsa_public_jwk(fuzz_root);
    fixed_token = fuzz_rs256_sign(fuzz_root, FUZZ_RSA_KID, fixed_claims);
    if (pub == NULL || fixed_token == NULL) {
        fprintf(stderr, "fuzz_jwks: cannot sign with the fixed RSA key\n");
        abort();
    }
    fixed_jwks = apr_pstrcat(fuzz_root, "{\"keys\":[", pub, "]}", NULL);
    if (msa_jws_rs256_verify(fuzz_root, fixed_token, fixed_jwks, &payload, &err) != APR_SUCCESS ||
        strcmp(payload, fixed_claims) != 0) {
        fprintf(stderr, "fuzz_jwks: the fixed token does not verify: %s\n", err);
        abort();
    }
    json_object *k = json_tokener_parse(pub);
    const unsigned char *n, *e;
    if (k == NULL || !jwk_number(fuzz_root, k, "n", &n, &key_n_len) ||
        !jwk_number(fuzz_root, k, "e", &e, &key_e_len)) {
        fprintf(stderr, "fuzz_jwks: the fixed public key has no n or e\n");
        abort();
    }
    key_n = apr_pmemdup(fuzz_root, n, key_n_len);
    key_e = apr_pmemdup(fuzz_root, e, key_e_len);
    json_object_put(k);
    return 0;
}

/* Whether the first entry of jwks with the fixed kid holds the fixed key's n and e. */
static int jwks_holds_fixed_key(apr_pool_t *p, const char *jwks)
{
    json_object *doc = json_tokener_parse(jwks), *keys;
    int same = 0;
    if (doc != NULL && json_object_object_get_ex(doc, "keys", &keys) &&
        json_object_is_type(keys, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(keys); i++) {
            json_object *k = json_object_array_get_idx(keys, i), *kid;
            const unsigned char *n, *e;
            apr_size_t nlen, elen;
            if (!json_object_is_type(k, json_type_object) ||
                !json_object_object_get_ex(k, "kid", &kid) ||
                !json_object_is_type(kid, json_type_string) ||
                strcmp(json_object_get_string(kid), FUZZ_RSA_KID) != 0) {
                continue;
            }
            same = jwk_number(p, k, "n", &n, &nlen) && jwk_number(p, k, "e", &e, &elen) &&
                   nlen == key_n_len && memcmp(n, key_n, nlen) == 0 && elen == key_e_len &&
                   memcmp(e, key_e, elen) == 0;
            break;
        }
    }
    json_object_put(doc);
    return same;
}

/* Whether jwks could reach the cjose assertion (over-approximated: any '=' at all). */
static int known_crash(const char *jwks)
{
    return skip_known && (strchr(jwks, '=') != NULL || strstr(jwks, "u003d") != NULL ||
                          strstr(jwks, "u003D") != NULL);
}

static void check_status(apr_status_t rv, const char *err, const uint8_t *data, size_t size)
{
    FUZZ_ASSERT(rv == APR_SUCCESS || rv == APR_EINVAL || rv == MSA_ENOKEY, data, size);
    FUZZ_ASSERT(rv == APR_SUCCESS || err != NULL, data, size);
}

/* The fixed token against jwks. */
static void fixed_token_against(apr_pool_t *p, const char *jwks, const uint8_t *data, size_t size)
{
    char *payload = NULL;
    const char *err = NULL;
    if (known_crash(jwks)) {
        return;
    }
    apr_status_t rv = msa_jws_rs256_verify(p, fixed_token, jwks, &payload, &err);
    check_status(rv, err, data, size);
    if (rv == APR_SUCCESS) {
        FUZZ_ASSERT(payload != NULL && strcmp(payload, fixed_claims) == 0, data, size);
        FUZZ_ASSERT(jwks_holds_fixed_key(p, jwks), data, size);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fuzz_begin();
    char *s = fuzz_cstr(p, data, size);
    size_t cut = 0;
    while (cut < size && data[cut] != '\0' && data[cut] != '\n') {
        cut++;
    }
    char *token = apr_pstrmemdup(p, (const char *)data, cut);
    const char *jwks = cut < size ? fuzz_cstr(p, data + cut + 1, size - cut - 1) : fixed_jwks;
    char *payload = NULL;
    const char *err = NULL;

    if (!known_crash(jwks)) {
        apr_status_t rv = msa_jws_rs256_verify(p, token, jwks, &payload, &err);
        check_status(rv, err, data, size);
        FUZZ_ASSERT(rv != APR_SUCCESS || payload != NULL, data, size);
    }

    fixed_token_against(p, s, data, size);
    if (cut < size) {
        fixed_token_against(p, jwks, data, size);
    }

    fuzz_end();
    return 0;
}
