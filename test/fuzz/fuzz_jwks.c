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
 * only against a JWKS whose first entry for its kid is usable (kty "RSA",
 * "n" and "e" canonical base64url: alphabet [A-Za-z0-9_-] only, so no '='
 * and no NUL, length % 4 != 1, unused low bits zero; n at least 128 bytes,
 * e 1 to 8) and holds the fixed key's modulus and exponent, and then gives
 * back the fixed payload; whatever token verifies, the JWKS has a usable
 * entry. Only such n and e may reach cjose: libcjose 0.6.2.1 aborts on a
 * '=' after 4k+1 characters (regression seeds corpus/jwks/regress-cjose-*).
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

/* A big-endian number without its leading zero bytes. */
static void strip_zeros(const unsigned char **d, apr_size_t *len)
{
    while (*len > 0 && **d == 0) {
        (*d)++;
        (*len)--;
    }
}

/*
 * Canonical base64url, the only form msa_jws_rs256_verify may hand to cjose:
 * the alphabet only (so no '=' and no NUL in the JSON string's len bytes),
 * len % 4 != 1, the unused low bits of the last character zero. 0 otherwise.
 */
static int canonical_b64url(apr_pool_t *p, const char *s, apr_size_t n, unsigned char **out,
                            apr_size_t *len)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    apr_size_t o = 0;
    unsigned char *d = apr_palloc(p, n * 3 / 4 + 1);
    unsigned acc = 0;
    int bits = 0;
    if (n % 4 == 1) {
        return 0;
    }
    for (apr_size_t i = 0; i < n; i++) {
        const char *c = s[i] ? strchr(alphabet, s[i]) : NULL;
        if (c == NULL) {
            return 0;
        }
        acc = (acc << 6 | (unsigned)(c - alphabet)) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            d[o++] = (unsigned char)(acc >> bits);
        }
    }
    if (acc & ((1u << bits) - 1)) {
        return 0; /* leftover bits set: a second spelling of the same bytes */
    }
    *out = d;
    *len = o;
    return 1;
}

/*
 * Whether JWK k is one msa_jws_rs256_verify may use: kty "RSA", "n" and "e"
 * canonical base64url of at least 128 bytes (1024 bits) and of 1 to 8 bytes.
 * Its n and e, without leading zero bytes, in *n and *e.
 */
static int usable_rsa_jwk(apr_pool_t *p, json_object *k, const unsigned char **n, apr_size_t *nlen,
                          const unsigned char **e, apr_size_t *elen)
{
    json_object *kty;
    if (!json_object_object_get_ex(k, "kty", &kty) || !json_object_is_type(kty, json_type_string) ||
        strcmp(json_object_get_string(kty), "RSA") != 0) {
        return 0;
    }
    json_object *vn, *ve;
    unsigned char *dn, *de;
    if (!json_object_object_get_ex(k, "n", &vn) || !json_object_is_type(vn, json_type_string) ||
        !canonical_b64url(p, json_object_get_string(vn), (apr_size_t)json_object_get_string_len(vn),
                          &dn, nlen) ||
        *nlen < 128 || !json_object_object_get_ex(k, "e", &ve) ||
        !json_object_is_type(ve, json_type_string) ||
        !canonical_b64url(p, json_object_get_string(ve), (apr_size_t)json_object_get_string_len(ve),
                          &de, elen) ||
        *elen == 0 || *elen > 8) {
        return 0;
    }
    *n = dn;
    *e = de;
    strip_zeros(n, nlen);
    strip_zeros(e, elen);
    return 1;
}

/*
 * The first entry of jwks with kid (NULL: any kid) for which usable_rsa_jwk
 * holds (kid given: the first with that kid, usable or not); *n and *e as there.
 */
static int jwks_usable_entry(apr_pool_t *p, const char *jwks, const char *kid,
                             const unsigned char **n, apr_size_t *nlen, const unsigned char **e,
                             apr_size_t *elen)
{
    json_object *doc = json_tokener_parse(jwks), *keys;
    int found = 0;
    if (doc != NULL && json_object_object_get_ex(doc, "keys", &keys) &&
        json_object_is_type(keys, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(keys); i++) {
            json_object *k = json_object_array_get_idx(keys, i), *v;
            if (!json_object_is_type(k, json_type_object) ||
                !json_object_object_get_ex(k, "kid", &v) ||
                !json_object_is_type(v, json_type_string) ||
                (kid != NULL && strcmp(json_object_get_string(v), kid) != 0)) {
                continue;
            }
            found = usable_rsa_jwk(p, k, n, nlen, e, elen);
            if (found || kid != NULL) {
                break;
            }
        }
    }
    json_object_put(doc);
    return found;
}

/* Whether the first entry of jwks with the fixed kid is usable and holds the fixed key. */
static int jwks_holds_fixed_key(apr_pool_t *p, const char *jwks)
{
    const unsigned char *n, *e;
    apr_size_t nlen, elen;
    return jwks_usable_entry(p, jwks, FUZZ_RSA_KID, &n, &nlen, &e, &elen) && nlen == key_n_len &&
           memcmp(n, key_n, nlen) == 0 && elen == key_e_len && memcmp(e, key_e, elen) == 0;
}

/* Whether some entry of jwks (whatever its kid) is usable. */
static int jwks_has_canonical_rsa_key(apr_pool_t *p, const char *jwks)
{
    const unsigned char *n, *e;
    apr_size_t nlen, elen;
    return jwks_usable_entry(p, jwks, NULL, &n, &nlen, &e, &elen);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_init();
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
    if (k == NULL || !usable_rsa_jwk(fuzz_root, k, &n, &key_n_len, &e, &key_e_len)) {
        fprintf(stderr, "fuzz_jwks: the fixed public key is not a usable RSA JWK\n");
        abort();
    }
    key_n = apr_pmemdup(fuzz_root, n, key_n_len);
    key_e = apr_pmemdup(fuzz_root, e, key_e_len);
    json_object_put(k);
    return 0;
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

    apr_status_t rv = msa_jws_rs256_verify(p, token, jwks, &payload, &err);
    check_status(rv, err, data, size);
    FUZZ_ASSERT(rv != APR_SUCCESS || payload != NULL, data, size);
    FUZZ_ASSERT(rv != APR_SUCCESS || jwks_has_canonical_rsa_key(p, jwks), data, size);

    fixed_token_against(p, s, data, size);
    if (cut < size) {
        fixed_token_against(p, jwks, data, size);
    }

    fuzz_end();
    return 0;
}
