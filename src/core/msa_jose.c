/*
 * JOSE through cjose: the only file that includes cjose's headers.
 *
 * cjose allocates with malloc; every cjose object made here is released
 * before returning, and results are copied into the caller's pool. The
 * module's own HS256 tokens and Microsoft's RS256 id_tokens take a shorter
 * road: split, base64url and HMAC or RSA_verify on OpenSSL's primitives.
 */
#define OPENSSL_API_COMPAT                                                                         \
    0x10101000L /* RSA_verify & co: no provider fetch per call, not deprecated here */

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <apr_lib.h>
#include <apr_strings.h>
#include <cjose/cjose.h>
#include <json-c/json.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/bn.h>
#include <openssl/objects.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>

#include "msa_hmac.h"
#include "msa_jose.h"
#include "msa_json.h"

#define JOSE_ERR(p, what, cerr)                                                                    \
    apr_psprintf((p), "%s: %s", (what), (cerr).message ? (cerr).message : "unknown cjose error")

/* The protected header's "alg", copied into p; NULL when absent. */
static const char *jws_alg(apr_pool_t *p, cjose_jws_t *jws, const char **kid)
{
    cjose_err cerr;
    cjose_header_t *hdr = cjose_jws_get_protected(jws);
    if (hdr == NULL) {
        return NULL;
    }
    if (kid != NULL) {
        const char *k = cjose_header_get(hdr, CJOSE_HDR_KID, &cerr);
        *kid = k ? apr_pstrdup(p, k) : NULL;
    }
    const char *alg = cjose_header_get(hdr, CJOSE_HDR_ALG, &cerr);
    return alg ? apr_pstrdup(p, alg) : NULL;
}

/* Copies the verified payload of jws into p, NUL-terminated. */
static apr_status_t jws_payload(apr_pool_t *p, cjose_jws_t *jws, char **payload, const char **err)
{
    cjose_err cerr;
    uint8_t *plain = NULL;
    size_t plain_len = 0;
    if (!cjose_jws_get_plaintext(jws, &plain, &plain_len, &cerr)) {
        *err = JOSE_ERR(p, "JWS payload", cerr);
        return APR_EINVAL;
    }
    if (memchr(plain, '\0', plain_len) != NULL) {
        *err = "JWS payload holds a NUL byte";
        return APR_EINVAL;
    }
    *payload = apr_pstrmemdup(p, (const char *)plain, plain_len);
    return APR_SUCCESS;
}

/* Imports a compact JWS after a cheap shape check (3 parts, bounded size). */
static cjose_jws_t *jws_import(apr_pool_t *p, const char *compact, const char **err)
{
    cjose_err cerr;
    size_t len = strlen(compact);
    if (len == 0 || len > MSA_MAX_TOKEN) {
        *err = "JWS empty or too long";
        return NULL;
    }
    int dots = 0;
    for (const char *c = compact; *c; c++) {
        if (*c == '.') {
            dots++;
        } else if (!(apr_isalnum(*c) || *c == '-' || *c == '_')) {
            *err = "JWS holds characters outside base64url";
            return NULL;
        }
    }
    if (dots != 2) {
        *err = "JWS is not three parts";
        return NULL;
    }
    cjose_jws_t *jws = cjose_jws_import(compact, len, &cerr);
    if (jws == NULL) {
        *err = JOSE_ERR(p, "JWS import", cerr);
    }
    return jws;
}

/* The header of every token the module signs: {"alg":"HS256","typ":"JWT"}. */
static const char hs256_header[] = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.";

/*
 * header.payload.MAC with the header above (what cjose wrote, byte for byte):
 * base64url and an HMAC on the stack, no JOSE objects on the heap.
 */
apr_status_t msa_jws_hs256_sign(apr_pool_t *p, const msa_key_t *key, const char *payload,
                                char **jws_out, const char **err)
{
    if (key == NULL || key->data == NULL || key->len == 0 || payload == NULL) {
        *err = "HS256 key or header: no key or no payload";
        return APR_EGENERAL;
    }
    char *input =
        apr_pstrcat(p, hs256_header,
                    msa_b64url_encode(p, (const unsigned char *)payload, strlen(payload)), NULL);
    unsigned char mac[32];
    msa_hmac_sha256(key->data, key->len, (const unsigned char *)input, strlen(input), mac);
    *jws_out = apr_pstrcat(p, input, ".", msa_b64url_encode(p, mac, sizeof(mac)), NULL);
    return APR_SUCCESS;
}

/*
 * Tokens this thread verified lately, with the key that verified them: a
 * browser sends the same session token with every request, and its MAC need
 * not be computed again. A hit needs the whole token to be equal (its MAC
 * compared in constant time) and its key still among the keys given; the payload is then
 * the one decoded before. Claims, expiry and revocation are checked by the
 * callers on every request as before. Thread-local: no lock, nothing shared.
 */
#define VERIFIED_SLOTS 4
#define VERIFIED_MAX   2048 /* longer tokens are not remembered */
#define VERIFIED_KEY   128

typedef struct verified {
    size_t token_len, key_len, payload_len;
    unsigned char key[VERIFIED_KEY];
    char token[VERIFIED_MAX];
    char payload[VERIFIED_MAX];
} verified_t;

static _Thread_local verified_t verified[VERIFIED_SLOTS];
static _Thread_local unsigned verified_next;

static const verified_t *verified_find(const char *compact, size_t len, const msa_key_t *keys,
                                       int nkeys)
{
    for (int s = 0; s < VERIFIED_SLOTS; s++) {
        const verified_t *v = &verified[s];
        /*
         * The MAC (the last 43 characters) is what only the token's holder knows:
         * it is compared in constant time, and only then the rest, which is not secret.
         */
        if (v->token_len != len ||
            CRYPTO_memcmp(v->token + len - 43, compact + len - 43, 43) != 0 ||
            memcmp(v->token, compact, len - 43) != 0) {
            continue;
        }
        for (int i = 0; i < nkeys; i++) {
            if (keys[i].len == v->key_len && CRYPTO_memcmp(keys[i].data, v->key, v->key_len) == 0) {
                return v;
            }
        }
    }
    return NULL;
}

static void verified_keep(const char *compact, size_t len, const msa_key_t *key,
                          const unsigned char *payload, size_t plen)
{
    if (len >= VERIFIED_MAX || plen >= VERIFIED_MAX || key->len > VERIFIED_KEY) {
        return;
    }
    verified_t *v = &verified[verified_next++ % VERIFIED_SLOTS];
    memcpy(v->token, compact, len);
    v->token_len = len;
    memcpy(v->key, key->data, key->len);
    v->key_len = key->len;
    memcpy(v->payload, payload, plen);
    v->payload_len = plen;
}

/*
 * Our own tokens, as they come on every protected request: the MAC is checked
 * on the stack and the payload decoded into the pool, with no heap allocation.
 * 1 when this path decided (*rv set), 0 for the general cjose path.
 */
static int hs256_verify_own(apr_pool_t *p, const char *compact, const msa_key_t *keys, int nkeys,
                            char **payload, const char **err, apr_status_t *rv)
{
    const size_t hlen = sizeof(hs256_header) - 1, n = strlen(compact);
    if (n <= hlen || memcmp(compact, hs256_header, hlen) != 0) {
        return 0;
    }
    const char *body = compact + hlen, *dot = memchr(body, '.', n - hlen);
    if (dot == NULL || strlen(dot + 1) != 43 || strchr(dot + 1, '.') != NULL) {
        return 0;
    }
    size_t len = (size_t)(dot - compact) + 44;
    const verified_t *seen = verified_find(compact, len, keys, nkeys);
    if (seen != NULL) {
        *payload = apr_pstrmemdup(p, seen->payload, seen->payload_len);
        *rv = APR_SUCCESS;
        return 1;
    }
    unsigned char *sig, mac[32];
    apr_size_t siglen;
    if (msa_b64url_decode(p, dot + 1, 43, &sig, &siglen) != APR_SUCCESS || siglen != 32) {
        return 0;
    }
    *rv = APR_EINVAL;
    *err = "JWS signature does not verify with any key";
    for (int i = 0; i < nkeys; i++) {
        msa_hmac_sha256(keys[i].data, keys[i].len, (const unsigned char *)compact,
                        (size_t)(dot - compact), mac);
        if (CRYPTO_memcmp(mac, sig, sizeof(mac)) == 0) {
            unsigned char *plain;
            apr_size_t plen;
            if (msa_b64url_decode(p, body, (apr_size_t)(dot - body), &plain, &plen) !=
                    APR_SUCCESS ||
                memchr(plain, '\0', plen) != NULL) {
                *err = "JWS payload is not base64url text";
                return 1;
            }
            plain[plen] = '\0';
            verified_keep(compact, len, &keys[i], plain, plen);
            *payload = (char *)plain;
            *rv = APR_SUCCESS;
            return 1;
        }
    }
    return 1;
}

apr_status_t msa_jws_hs256_verify(apr_pool_t *p, const char *compact, const msa_key_t *keys,
                                  int nkeys, char **payload, const char **err)
{
    cjose_err cerr;
    apr_status_t fast;
    if (strlen(compact) <= MSA_MAX_TOKEN &&
        hs256_verify_own(p, compact, keys, nkeys, payload, err, &fast)) {
        return fast;
    }
    cjose_jws_t *jws = jws_import(p, compact, err);
    if (jws == NULL) {
        return APR_EINVAL;
    }
    apr_status_t rv = APR_EINVAL;
    /*
     * An HS256 signature is 32 bytes, 43 base64url characters. Checked here
     * because some cjose builds compare 32 bytes whatever the length given.
     */
    const char *sig = strrchr(compact, '.') + 1;
    if (strlen(sig) != 43) {
        *err = "JWS signature is not the length of an HS256 MAC";
        goto out;
    }
    /* The header names the algorithm; only ours is acceptable (no none, no RS256). */
    const char *alg = jws_alg(p, jws, NULL);
    if (alg == NULL || strcmp(alg, CJOSE_HDR_ALG_HS256) != 0) {
        *err = apr_psprintf(p, "JWS alg %s refused", alg ? "other than HS256" : "missing");
        goto out;
    }
    *err = "JWS signature does not verify with any key";
    for (int i = 0; i < nkeys; i++) {
        cjose_jwk_t *jwk = cjose_jwk_create_oct_spec(keys[i].data, keys[i].len, &cerr);
        if (jwk == NULL) {
            continue;
        }
        int ok = cjose_jws_verify(jws, jwk, &cerr);
        cjose_jwk_release(jwk);
        if (ok) {
            rv = jws_payload(p, jws, payload, err);
            break;
        }
    }
out:
    cjose_jws_release(jws);
    return rv;
}

/*
 * The RSA key of kid in a JWKS document (n and e, canonical base64url, n at
 * least 1024 bits, e odd and at least 3); NULL when absent or unusable, with
 * *rv and *err set.
 */
static RSA *jwks_find(apr_pool_t *p, const char *jwks, const char *kid, apr_status_t *rv,
                      const char **err)
{
    RSA *found = NULL;
    json_object *doc = json_tokener_parse(jwks);
    json_object *keys = NULL;
    *rv = APR_EINVAL;
    if (doc == NULL || !json_object_object_get_ex(doc, "keys", &keys) ||
        !json_object_is_type(keys, json_type_array)) {
        *err = "JWKS is not a JSON object with a keys array";
        goto out;
    }
    size_t n = json_object_array_length(keys);
    for (size_t i = 0; i < n; i++) {
        json_object *k = json_object_array_get_idx(keys, i), *v = NULL;
        if (!json_object_is_type(k, json_type_object) || !json_object_object_get_ex(k, "kid", &v) ||
            !json_object_is_type(v, json_type_string) ||
            strcmp(json_object_get_string(v), kid) != 0) {
            continue;
        }
        if (!json_object_object_get_ex(k, "kty", &v) || !json_object_is_type(v, json_type_string) ||
            strcmp(json_object_get_string(v), "RSA") != 0) {
            *err = "JWKS key for this kid is not RSA";
            goto out;
        }
        /* Only n and e are read, and only as canonical base64url: the JWKS comes from the network.
         */
        json_object *jn = NULL, *je = NULL;
        unsigned char *nraw, *eraw;
        apr_size_t nlen, elen;
        if (!json_object_object_get_ex(k, "n", &jn) || !json_object_is_type(jn, json_type_string) ||
            !json_object_object_get_ex(k, "e", &je) || !json_object_is_type(je, json_type_string) ||
            msa_b64url_decode(p, json_object_get_string(jn), strlen(json_object_get_string(jn)),
                              &nraw, &nlen) != APR_SUCCESS ||
            nlen < 128 ||
            msa_b64url_decode(p, json_object_get_string(je), strlen(json_object_get_string(je)),
                              &eraw, &elen) != APR_SUCCESS ||
            elen == 0 || elen > 8) {
            *err = "JWKS key for this kid has no usable n and e";
            goto out;
        }
        RSA *rsa = RSA_new();
        BIGNUM *bn = BN_bin2bn(nraw, (int)nlen, NULL), *be = BN_bin2bn(eraw, (int)elen, NULL);
        /*
         * n of 1024 bits or more whatever zero bytes lead it; e odd and at least 3: under
         * e = 1 the PKCS #1 encoding of any hash is its own signature.
         */
        if (bn == NULL || be == NULL || BN_num_bits(bn) < 1024 || !BN_is_odd(be) ||
            BN_num_bits(be) < 2) {
            RSA_free(rsa);
            BN_free(bn);
            BN_free(be);
            *err = "JWKS key for this kid has no usable n and e";
            goto out;
        }
        if (rsa == NULL || RSA_set0_key(rsa, bn, be, NULL) != 1) {
            RSA_free(rsa);
            BN_free(bn);
            BN_free(be);
            *err = "JWKS key import: not a usable RSA public key";
            goto out;
        }
        found = rsa;
        *rv = APR_SUCCESS;
        goto out;
    }
    *rv = MSA_ENOKEY;
    *err = "kid not in JWKS";
out:
    json_object_put(doc);
    return found;
}

/*
 * Keys imported lately from a JWKS document. Every login verifies its id_token
 * with a key of a document that changes rarely: while the document is the same
 * text, neither parsing it nor importing the key is done again. OpenSSL counts
 * an RSA key's references atomically and verifies with one key from many
 * threads at once; the lock guards the slots.
 */
#define JWK_SLOTS 8

typedef struct jwk_slot {
    char *doc, *kid;
    size_t doc_len;
    RSA *rsa;
} jwk_slot_t;

static jwk_slot_t jwk_slots[JWK_SLOTS];
static unsigned jwk_next;
static pthread_mutex_t jwk_lock = PTHREAD_MUTEX_INITIALIZER;

static RSA *jwk_remembered(const char *jwks, const char *kid)
{
    size_t len = strlen(jwks);
    RSA *found = NULL;
    pthread_mutex_lock(&jwk_lock);
    for (int i = 0; i < JWK_SLOTS && found == NULL; i++) {
        const jwk_slot_t *s = &jwk_slots[i];
        if (s->rsa != NULL && s->doc_len == len && strcmp(s->kid, kid) == 0 &&
            memcmp(s->doc, jwks, len) == 0 && RSA_up_ref(s->rsa) == 1) {
            found = s->rsa;
        }
    }
    pthread_mutex_unlock(&jwk_lock);
    return found;
}

static void jwk_remember(const char *jwks, const char *kid, RSA *rsa)
{
    size_t len = strlen(jwks);
    char *doc = malloc(len + 1), *k = strdup(kid);
    if (doc == NULL || k == NULL || RSA_up_ref(rsa) != 1) {
        free(doc);
        free(k);
        return;
    }
    memcpy(doc, jwks, len + 1);
    pthread_mutex_lock(&jwk_lock);
    jwk_slot_t *s = &jwk_slots[jwk_next++ % JWK_SLOTS], old = *s;
    s->doc = doc;
    s->kid = k;
    s->doc_len = len;
    s->rsa = rsa;
    pthread_mutex_unlock(&jwk_lock);
    RSA_free(old.rsa);
    free(old.doc);
    free(old.kid);
}

static const unsigned char b64url_values[256];

/* SHA-256 on the stack (the one-shot SHA256() goes through an EVP fetch and a heap context). */
static int sha256(const char *data, size_t len, unsigned char md[SHA256_DIGEST_LENGTH])
{
    SHA256_CTX c;
    return SHA256_Init(&c) == 1 && SHA256_Update(&c, data, len) == 1 && SHA256_Final(md, &c) == 1;
}

/*
 * A compact JWS's three parts: base64url characters only, two dots, bounded
 * size. *hlen and *plen are the header's and the payload's lengths; the
 * signature follows the second dot.
 */
static int jws_parts(const char *compact, size_t *hlen, size_t *plen, const char **sig,
                     const char **err)
{
    size_t len = strlen(compact);
    const char *dot[2] = {NULL, NULL};
    int dots = 0;
    if (len == 0 || len > MSA_MAX_TOKEN) {
        *err = "JWS empty or too long";
        return 0;
    }
    for (const char *c = compact; *c; c++) {
        if (*c == '.') {
            if (dots < 2) {
                dot[dots] = c;
            }
            dots++;
        } else if (b64url_values[(unsigned char)*c] == 64) {
            *err = "JWS holds characters outside base64url";
            return 0;
        }
    }
    if (dots != 2) {
        *err = "JWS is not three parts";
        return 0;
    }
    *hlen = (size_t)(dot[0] - compact);
    *plen = (size_t)(dot[1] - dot[0] - 1);
    *sig = dot[1] + 1;
    return 1;
}

apr_status_t msa_jws_rs256_verify(apr_pool_t *p, const char *compact, const char *jwks,
                                  char **payload, const char **err)
{
    size_t hlen, plen;
    const char *sigtext;
    if (!jws_parts(compact, &hlen, &plen, &sigtext, err)) {
        return APR_EINVAL;
    }
    unsigned char *raw;
    apr_size_t rawlen;
    json_object *hdr = NULL;
    if (msa_b64url_decode(p, compact, hlen, &raw, &rawlen) != APR_SUCCESS ||
        (hdr = msa_json_parse_object(p, (const char *)raw, rawlen)) == NULL) {
        *err = "JWS header is not a base64url JSON object";
        return APR_EINVAL;
    }
    /* The header names the algorithm; only RS256 is acceptable (no none, no HS256). */
    const char *alg = msa_json_str(p, hdr, "alg"), *kid = msa_json_str(p, hdr, "kid");
    if (alg == NULL || strcmp(alg, "RS256") != 0) {
        *err = alg ? "id_token alg other than RS256 refused" : "id_token alg missing";
        return APR_EINVAL;
    }
    if (kid == NULL) {
        *err = "id_token has no kid";
        return APR_EINVAL;
    }
    apr_status_t rv;
    RSA *rsa = jwk_remembered(jwks, kid);
    if (rsa == NULL) {
        rsa = jwks_find(p, jwks, kid, &rv, err);
        if (rsa == NULL) {
            return rv;
        }
        jwk_remember(jwks, kid, rsa);
    }
    rv = APR_EINVAL;
    *err = "id_token signature does not verify";
    unsigned char md[SHA256_DIGEST_LENGTH];
    /* RSA_verify also wants the signature exactly as long as the modulus (RFC 8017 8.2.2). */
    if (msa_b64url_decode(p, sigtext, strlen(sigtext), &raw, &rawlen) != APR_SUCCESS ||
        !sha256(compact, hlen + 1 + plen, md) ||
        RSA_verify(NID_sha256, md, sizeof(md), raw, (unsigned int)rawlen, rsa) != 1) {
        goto out;
    }
    if (msa_b64url_decode(p, compact + hlen + 1, plen, &raw, &rawlen) != APR_SUCCESS) {
        *err = "JWS payload is not base64url";
        goto out;
    }
    if (memchr(raw, '\0', rawlen) != NULL) {
        *err = "JWS payload holds a NUL byte";
        goto out;
    }
    raw[rawlen] = '\0';
    *payload = (char *)raw;
    rv = APR_SUCCESS;
out:
    RSA_free(rsa);
    return rv;
}

apr_status_t msa_jwe_seal(apr_pool_t *p, const unsigned char key[32], const char *plaintext,
                          char **jwe_out, const char **err)
{
    cjose_err cerr;
    apr_status_t rv = APR_EGENERAL;
    cjose_jwk_t *jwk = cjose_jwk_create_oct_spec(key, 32, &cerr);
    cjose_header_t *hdr = cjose_header_new(&cerr);
    cjose_jwe_t *jwe = NULL;
    char *ser = NULL;
    if (jwk == NULL || hdr == NULL ||
        !cjose_header_set(hdr, CJOSE_HDR_ALG, CJOSE_HDR_ALG_DIR, &cerr) ||
        !cjose_header_set(hdr, CJOSE_HDR_ENC, CJOSE_HDR_ENC_A256GCM, &cerr)) {
        *err = JOSE_ERR(p, "JWE key or header", cerr);
        goto out;
    }
    jwe = cjose_jwe_encrypt(jwk, hdr, (const uint8_t *)plaintext, strlen(plaintext), &cerr);
    if (jwe == NULL || (ser = cjose_jwe_export(jwe, &cerr)) == NULL) {
        *err = JOSE_ERR(p, "JWE encrypt", cerr);
        goto out;
    }
    *jwe_out = apr_pstrdup(p, ser);
    rv = APR_SUCCESS;
out:
    if (ser != NULL) {
        cjose_get_dealloc()(ser);
    }
    cjose_jwe_release(jwe);
    cjose_header_release(hdr);
    cjose_jwk_release(jwk);
    return rv;
}

apr_status_t msa_jwe_open(apr_pool_t *p, const unsigned char key[32], const char *compact,
                          char **plaintext, const char **err)
{
    cjose_err cerr;
    apr_status_t rv = APR_EINVAL;
    size_t len = strlen(compact);
    const char *parts[5];
    int n = 0;
    parts[n++] = compact;
    for (const char *c = compact; *c; c++) {
        if (*c == '.') {
            if (n == 5) {
                *err = "JWE is not five parts";
                return APR_EINVAL;
            }
            parts[n++] = c + 1;
        } else if (!(apr_isalnum(*c) || *c == '-' || *c == '_')) {
            *err = "JWE holds characters outside base64url";
            return APR_EINVAL;
        }
    }
    /*
     * dir: no encrypted key; A256GCM: a 96-bit IV and a 128-bit tag. The tag
     * length is checked here so a shortened tag can never be accepted.
     */
    if (n != 5 || len > MSA_MAX_TOKEN || parts[2] - parts[1] != 1 ||
        parts[3] - parts[2] - 1 != 16 || strlen(parts[4]) != 22) {
        *err = "JWE is not dir/A256GCM compact serialisation";
        return APR_EINVAL;
    }
    cjose_jwk_t *jwk = cjose_jwk_create_oct_spec(key, 32, &cerr);
    cjose_jwe_t *jwe = cjose_jwe_import(compact, len, &cerr);
    uint8_t *plain = NULL;
    size_t plain_len = 0;
    if (jwk == NULL || jwe == NULL) {
        *err = JOSE_ERR(p, "JWE import", cerr);
        goto out;
    }
    cjose_header_t *hdr = cjose_jwe_get_protected(jwe);
    const char *alg = hdr ? cjose_header_get(hdr, CJOSE_HDR_ALG, &cerr) : NULL;
    const char *enc = hdr ? cjose_header_get(hdr, CJOSE_HDR_ENC, &cerr) : NULL;
    if (alg == NULL || enc == NULL || strcmp(alg, CJOSE_HDR_ALG_DIR) != 0 ||
        strcmp(enc, CJOSE_HDR_ENC_A256GCM) != 0) {
        *err = "JWE algorithms other than dir/A256GCM refused";
        goto out;
    }
    plain = cjose_jwe_decrypt(jwe, jwk, &plain_len, &cerr);
    if (plain == NULL) {
        *err = "JWE does not decrypt";
        goto out;
    }
    if (memchr(plain, '\0', plain_len) != NULL) {
        *err = "JWE plaintext holds a NUL byte";
        goto out;
    }
    *plaintext = apr_pstrmemdup(p, (const char *)plain, plain_len);
    rv = APR_SUCCESS;
out:
    if (plain != NULL) {
        cjose_get_dealloc()(plain);
    }
    cjose_jwe_release(jwe);
    cjose_jwk_release(jwk);
    return rv;
}

apr_status_t msa_hkdf_sha256(const msa_key_t *secret, const char *info, unsigned char *out,
                             apr_size_t outlen)
{
    apr_status_t rv = APR_EGENERAL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
    if (ctx != NULL && EVP_PKEY_derive_init(ctx) > 0 &&
        EVP_PKEY_CTX_set_hkdf_md(ctx, EVP_sha256()) > 0 &&
        EVP_PKEY_CTX_set1_hkdf_key(ctx, secret->data, (int)secret->len) > 0 &&
        EVP_PKEY_CTX_add1_hkdf_info(ctx, (const unsigned char *)info, (int)strlen(info)) > 0) {
        size_t len = outlen;
        if (EVP_PKEY_derive(ctx, out, &len) > 0 && len == outlen) {
            rv = APR_SUCCESS;
        }
    }
    EVP_PKEY_CTX_free(ctx);
    return rv;
}

static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

char *msa_b64url_encode(apr_pool_t *p, const unsigned char *d, apr_size_t len)
{
    char *out = apr_palloc(p, (len + 2) / 3 * 4 + 1), *o = out;
    apr_size_t i = 0;
    for (; i + 2 < len; i += 3) {
        unsigned v = (unsigned)d[i] << 16 | (unsigned)d[i + 1] << 8 | d[i + 2];
        *o++ = b64url_alphabet[v >> 18 & 63];
        *o++ = b64url_alphabet[v >> 12 & 63];
        *o++ = b64url_alphabet[v >> 6 & 63];
        *o++ = b64url_alphabet[v & 63];
    }
    if (len - i == 1) {
        unsigned v = (unsigned)d[i] << 16;
        *o++ = b64url_alphabet[v >> 18 & 63];
        *o++ = b64url_alphabet[v >> 12 & 63];
    } else if (len - i == 2) {
        unsigned v = (unsigned)d[i] << 16 | (unsigned)d[i + 1] << 8;
        *o++ = b64url_alphabet[v >> 18 & 63];
        *o++ = b64url_alphabet[v >> 12 & 63];
        *o++ = b64url_alphabet[v >> 6 & 63];
    }
    *o = '\0';
    return out;
}

/* base64url digit values; 64 marks a byte that is not one. */
static const unsigned char b64url_values[256] = {
#define X64 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64
    X64, X64, 64,  64,  64,  64,  64,  64,  64, 64, 64, 64, 64, 64, 64, 62, 64, 64, /* '-' */
    52,  53,  54,  55,  56,  57,  58,  59,  60, 61, 64, 64, 64, 64, 64, 64,         /* 0-9 */
    64,  0,   1,   2,   3,   4,   5,   6,   7,  8,  9,  10, 11, 12, 13, 14,         /* A-O */
    15,  16,  17,  18,  19,  20,  21,  22,  23, 24, 25, 64, 64, 64, 64, 63,         /* P-Z, '_' */
    64,  26,  27,  28,  29,  30,  31,  32,  33, 34, 35, 36, 37, 38, 39, 40,         /* a-o */
    41,  42,  43,  44,  45,  46,  47,  48,  49, 50, 51, 64, 64, 64, 64, 64,         /* p-z */
    X64, X64, X64, X64, X64, X64, X64, X64,
#undef X64
};

apr_status_t msa_b64url_decode(apr_pool_t *p, const char *s, apr_size_t slen, unsigned char **out,
                               apr_size_t *outlen)
{
    if (slen % 4 == 1) {
        return APR_EINVAL;
    }
    const unsigned char *in = (const unsigned char *)s;
    unsigned char *buf = apr_palloc(p, slen / 4 * 3 + 3), *o = buf;
    apr_size_t i = 0;
    for (; i + 4 <= slen; i += 4) {
        unsigned a = b64url_values[in[i]], b = b64url_values[in[i + 1]],
                 c = b64url_values[in[i + 2]], d = b64url_values[in[i + 3]];
        if ((a | b | c | d) & 64) {
            return APR_EINVAL;
        }
        unsigned v = a << 18 | b << 12 | c << 6 | d;
        *o++ = (unsigned char)(v >> 16);
        *o++ = (unsigned char)(v >> 8);
        *o++ = (unsigned char)v;
    }
    if (i < slen) {
        /* 2 or 3 digits left; their unused low bits must be zero (one encoding per string). */
        unsigned a = b64url_values[in[i]], b = b64url_values[in[i + 1]];
        unsigned c = slen - i == 3 ? b64url_values[in[i + 2]] : 0;
        if ((a | b | c) & 64) {
            return APR_EINVAL;
        }
        unsigned v = a << 18 | b << 12 | c << 6;
        *o++ = (unsigned char)(v >> 16);
        if (slen - i == 3) {
            *o++ = (unsigned char)(v >> 8);
            if (v & 0xff) {
                return APR_EINVAL;
            }
        } else if (v & 0xffff) {
            return APR_EINVAL;
        }
    }
    *out = buf;
    *outlen = (apr_size_t)(o - buf);
    return APR_SUCCESS;
}

char *msa_random_b64url(apr_pool_t *p, apr_size_t nbytes)
{
    unsigned char buf[64];
    if (nbytes == 0 || nbytes > sizeof(buf) || RAND_bytes(buf, (int)nbytes) != 1) {
        return NULL;
    }
    return msa_b64url_encode(p, buf, nbytes);
}

char *msa_pkce_challenge(apr_pool_t *p, const char *verifier)
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)verifier, strlen(verifier), md);
    return msa_b64url_encode(p, md, sizeof(md));
}
