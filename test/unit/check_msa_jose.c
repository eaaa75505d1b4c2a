/* Unit tests of src/core/msa_jose.c: HS256/RS256 JWS, dir/A256GCM JWE, HKDF, base64url, PKCE. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <apr_hash.h>
#include <apr_strings.h>
#include <cjose/util.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>

#include "msa_jose.h"
#include "msa_test.h"

static const msa_key_t key_a = {(const unsigned char *)"0123456789abcdef0123456789abcdef", 32};
static const msa_key_t key_b = {(const unsigned char *)"another key, also 32 bytes long!", 32};
static const msa_key_t key_c = {(const unsigned char *)"a third key nobody has configured", 33};

static const char claims[] = "{\"sub\":\"u1\",\"exp\":2000000000}";

/* ---- helpers: compact serialisations built by hand ---- */

static char *b64(const void *d, size_t n)
{
    return msa_b64url_encode(pool, d, n);
}

static char *b64s(const char *s)
{
    return b64(s, strlen(s));
}

/* Splits a compact serialisation at '.' into parts[0..*n). */
static void split(const char *compact, char **parts, int max, int *n)
{
    char *copy = apr_pstrdup(pool, compact), *c = copy;
    *n = 0;
    parts[(*n)++] = c;
    for (; *c; c++) {
        if (*c == '.') {
            *c = '\0';
            ck_assert_int_lt(*n, max);
            parts[(*n)++] = c + 1;
        }
    }
}

static char *join(char **parts, int n)
{
    char *out = parts[0];
    for (int i = 1; i < n; i++) {
        out = apr_pstrcat(pool, out, ".", parts[i], NULL);
    }
    return out;
}

static unsigned char *unb64(const char *s, apr_size_t *len)
{
    unsigned char *out = NULL;
    ck_assert_int_eq(msa_b64url_decode(pool, s, strlen(s), &out, len), APR_SUCCESS);
    return out;
}

/* header.payload.HMAC(md, key) with any header, payload bytes and key. */
static char *hmac_by_hand(const EVP_MD *md, const char *header, const void *payload, size_t plen,
                          const void *key, size_t klen)
{
    char *input = apr_pstrcat(pool, b64s(header), ".", b64(payload, plen), NULL);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    ck_assert_ptr_nonnull(
        HMAC(md, key, (int)klen, (const unsigned char *)input, strlen(input), mac, &maclen));
    return apr_pstrcat(pool, input, ".", b64(mac, maclen), NULL);
}

static char *hs256_by_hand(const char *header, const void *payload, size_t plen, const void *key,
                           size_t klen)
{
    return hmac_by_hand(EVP_sha256(), header, payload, plen, key, klen);
}

/* ---- HS256 ---- */

/* The per-thread memory of verified tokens never stands in for the key check. */
START_TEST(hs256_remembered_tokens_still_need_their_key)
{
    static const unsigned char a_bytes[] = "remembered-key-a-0123456789-abcdefgh";
    static const unsigned char b_bytes[] = "remembered-key-b-0123456789-abcdefgh";
    msa_key_t a = {a_bytes, sizeof(a_bytes) - 1}, b = {b_bytes, sizeof(b_bytes) - 1};
    msa_key_t both[2] = {b, a};
    char *jws = NULL, *payload = NULL;
    const char *err = NULL;
    ck_assert_int_eq(msa_jws_hs256_sign(pool, &a, "{\"sub\":\"remember-me\"}", &jws, &err),
                     APR_SUCCESS);
    for (int round = 0; round < 3; round++) {
        payload = NULL;
        ck_assert_int_eq(msa_jws_hs256_verify(pool, jws, &a, 1, &payload, &err), APR_SUCCESS);
        ck_assert_str_eq(payload, "{\"sub\":\"remember-me\"}");
    }
    ck_assert_int_eq(msa_jws_hs256_verify(pool, jws, &b, 1, &payload, &err), APR_EINVAL);
    ck_assert_int_eq(msa_jws_hs256_verify(pool, jws, both, 2, &payload, &err), APR_SUCCESS);
    /* One character off: not the remembered token, and not valid. */
    char *bad = apr_pstrdup(pool, jws);
    size_t n = strlen(bad);
    bad[n - 10] = bad[n - 10] == 'A' ? 'B' : 'A';
    ck_assert_int_eq(msa_jws_hs256_verify(pool, bad, &a, 1, &payload, &err), APR_EINVAL);
    /* More tokens than slots: the oldest is forgotten, and still verifies by its MAC. */
    for (int k = 0; k < 8; k++) {
        char *other;
        msa_jws_hs256_sign(pool, &a, apr_psprintf(pool, "{\"n\":%d}", k), &other, &err);
        ck_assert_int_eq(msa_jws_hs256_verify(pool, other, &a, 1, &payload, &err), APR_SUCCESS);
    }
    ck_assert_int_eq(msa_jws_hs256_verify(pool, jws, &a, 1, &payload, &err), APR_SUCCESS);
    ck_assert_str_eq(payload, "{\"sub\":\"remember-me\"}");
}
END_TEST

START_TEST(hs256_round_trip)
{
    char *jws = NULL, *payload = NULL;
    const char *err = NULL;
    ck_assert_int_eq(msa_jws_hs256_sign(pool, &key_a, claims, &jws, &err), APR_SUCCESS);
    ck_assert_ptr_nonnull(jws);
    /* The header is exactly what the contract names. */
    char *parts[3];
    int n;
    split(jws, parts, 3, &n);
    ck_assert_int_eq(n, 3);
    apr_size_t hlen;
    unsigned char *hdr = unb64(parts[0], &hlen);
    char *h = apr_pstrmemdup(pool, (const char *)hdr, hlen);
    ck_assert_msg(strstr(h, "\"alg\":\"HS256\"") != NULL, "header %s", h);
    ck_assert_msg(strstr(h, "\"typ\":\"JWT\"") != NULL, "header %s", h);

    ck_assert_int_eq(msa_jws_hs256_verify(pool, jws, &key_a, 1, &payload, &err), APR_SUCCESS);
    ck_assert_str_eq(payload, claims);
}
END_TEST

START_TEST(hs256_by_hand_interop)
{
    /* A token made with plain OpenSSL HMAC verifies: the MAC is standard HS256. */
    char *payload = NULL;
    const char *err = NULL;
    char *jws = hs256_by_hand("{\"alg\":\"HS256\"}", claims, strlen(claims), key_a.data, key_a.len);
    ck_assert_int_eq(msa_jws_hs256_verify(pool, jws, &key_a, 1, &payload, &err), APR_SUCCESS);
    ck_assert_str_eq(payload, claims);
}
END_TEST

START_TEST(hs256_rotation_second_key)
{
    msa_key_t keys[2] = {key_a, key_b};
    char *jws = NULL, *payload = NULL;
    const char *err = NULL;
    /* Signed with the old key (second in the list): still accepted. */
    ck_assert_int_eq(msa_jws_hs256_sign(pool, &key_b, claims, &jws, &err), APR_SUCCESS);
    ck_assert_int_eq(msa_jws_hs256_verify(pool, jws, keys, 2, &payload, &err), APR_SUCCESS);
    ck_assert_str_eq(payload, claims);
    /* And with the new one (first). */
    ck_assert_int_eq(msa_jws_hs256_sign(pool, &key_a, claims, &jws, &err), APR_SUCCESS);
    payload = NULL;
    ck_assert_int_eq(msa_jws_hs256_verify(pool, jws, keys, 2, &payload, &err), APR_SUCCESS);
    ck_assert_str_eq(payload, claims);
}
END_TEST

START_TEST(hs256_wrong_key)
{
    msa_key_t keys[2] = {key_a, key_b};
    char *jws = NULL, *payload = NULL;
    const char *err = NULL;
    ck_assert_int_eq(msa_jws_hs256_sign(pool, &key_c, claims, &jws, &err), APR_SUCCESS);
    err = NULL;
    ck_assert_int_eq(msa_jws_hs256_verify(pool, jws, keys, 2, &payload, &err), APR_EINVAL);
    ck_assert_ptr_null(payload);
    ck_assert_ptr_nonnull(err);
    /* No keys at all: nothing verifies. */
    ck_assert_int_eq(msa_jws_hs256_verify(pool, jws, keys, 0, &payload, &err), APR_EINVAL);
    ck_assert_ptr_null(payload);
}
END_TEST

START_TEST(hs256_tampered)
{
    char *jws = NULL, *payload = NULL;
    const char *err = NULL;
    ck_assert_int_eq(msa_jws_hs256_sign(pool, &key_a, claims, &jws, &err), APR_SUCCESS);
    char *parts[3];
    int n;
    split(jws, parts, 3, &n);

    /* Another payload under the original signature. */
    char *p2[3] = {parts[0], b64s("{\"sub\":\"admin\",\"exp\":2000000000}"), parts[2]};
    ck_assert_int_eq(msa_jws_hs256_verify(pool, join(p2, 3), &key_a, 1, &payload, &err),
                     APR_EINVAL);
    ck_assert_ptr_null(payload);

    /* One bit of the signature flipped. */
    apr_size_t slen;
    unsigned char *sig = unb64(parts[2], &slen);
    ck_assert_int_eq(slen, 32);
    sig[5] ^= 0x01;
    char *p3[3] = {parts[0], parts[1], b64(sig, slen)};
    ck_assert_int_eq(msa_jws_hs256_verify(pool, join(p3, 3), &key_a, 1, &payload, &err),
                     APR_EINVAL);

    /* Signature cut to 16 bytes (its genuine prefix). */
    sig[5] ^= 0x01;
    char *p4[3] = {parts[0], parts[1], b64(sig, 16)};
    ck_assert_int_eq(msa_jws_hs256_verify(pool, join(p4, 3), &key_a, 1, &payload, &err),
                     APR_EINVAL);

    /* Signature removed. */
    char *p5[3] = {parts[0], parts[1], (char *)""};
    ck_assert_int_eq(msa_jws_hs256_verify(pool, join(p5, 3), &key_a, 1, &payload, &err),
                     APR_EINVAL);
    ck_assert_ptr_null(payload);
}
END_TEST

START_TEST(hs256_alg_none_refused)
{
    char *payload = NULL;
    const char *err = NULL;
    /* {"alg":"none"} with an empty signature, the classic forgery. */
    char *jws = apr_pstrcat(pool, "eyJhbGciOiJub25lIn0.", b64s(claims), ".", NULL);
    ck_assert_int_eq(msa_jws_hs256_verify(pool, jws, &key_a, 1, &payload, &err), APR_EINVAL);
    ck_assert_ptr_null(payload);
    /* And with a signature a careless verifier would ignore. */
    jws = hs256_by_hand("{\"alg\":\"none\"}", claims, strlen(claims), key_a.data, key_a.len);
    ck_assert_int_eq(msa_jws_hs256_verify(pool, jws, &key_a, 1, &payload, &err), APR_EINVAL);
    ck_assert_ptr_null(payload);
}
END_TEST

START_TEST(hs256_other_alg_refused)
{
    char *payload = NULL;
    const char *err = NULL;
    /* An RS256 header, even with an HMAC under the right key, is not ours. */
    char *jws = hs256_by_hand("{\"alg\":\"RS256\",\"typ\":\"JWT\"}", claims, strlen(claims),
                              key_a.data, key_a.len);
    ck_assert_int_eq(msa_jws_hs256_verify(pool, jws, &key_a, 1, &payload, &err), APR_EINVAL);
    ck_assert_ptr_null(payload);
    /* Other HMACs, correctly computed with the right key: only our alg is acceptable. */
    jws = hmac_by_hand(EVP_sha512(), "{\"alg\":\"HS512\"}", claims, strlen(claims), key_a.data,
                       key_a.len);
    ck_assert_int_eq(msa_jws_hs256_verify(pool, jws, &key_a, 1, &payload, &err), APR_EINVAL);
    jws = hmac_by_hand(EVP_sha384(), "{\"alg\":\"HS384\"}", claims, strlen(claims), key_a.data,
                       key_a.len);
    ck_assert_int_eq(msa_jws_hs256_verify(pool, jws, &key_a, 1, &payload, &err), APR_EINVAL);
    ck_assert_ptr_null(payload);
    jws = hs256_by_hand("{\"typ\":\"JWT\"}", claims, strlen(claims), key_a.data, key_a.len);
    ck_assert_int_eq(msa_jws_hs256_verify(pool, jws, &key_a, 1, &payload, &err), APR_EINVAL);
    ck_assert_ptr_null(payload);
}
END_TEST

START_TEST(hs256_malformed_refused)
{
    char *jws = NULL, *payload = NULL;
    const char *err = NULL;
    ck_assert_int_eq(msa_jws_hs256_sign(pool, &key_a, claims, &jws, &err), APR_SUCCESS);
    char *parts[3];
    int n;
    split(jws, parts, 3, &n);
    const char *bad[] = {
        "",
        apr_pstrndup(pool, jws, strlen(jws) - 3),                          /* truncated */
        apr_pstrndup(pool, jws, strlen(parts[0]) + 5),                     /* cut in the payload */
        apr_pstrcat(pool, parts[0], ".", parts[1], NULL),                  /* 2 parts */
        apr_pstrcat(pool, jws, ".", parts[2], NULL),                       /* 4 parts */
        apr_pstrcat(pool, jws, ".", NULL),                                 /* 4 parts, last empty */
        apr_pstrcat(pool, parts[0], "..", parts[2], NULL),                 /* empty payload */
        apr_pstrcat(pool, parts[0], "=.", parts[1], ".", parts[2], NULL),  /* padding */
        apr_pstrcat(pool, parts[0], ".", parts[1], "+/.", parts[2], NULL), /* standard b64 */
        apr_pstrcat(pool, " ", jws, NULL),
        apr_pstrcat(pool, jws, "\n", NULL),
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        payload = NULL;
        err = NULL;
        ck_assert_msg(msa_jws_hs256_verify(pool, bad[i], &key_a, 1, &payload, &err) == APR_EINVAL,
                      "accepted case %zu", i);
        ck_assert_ptr_null(payload);
        ck_assert_ptr_nonnull(err);
    }
}
END_TEST

START_TEST(hs256_size_cap)
{
    char *jws = NULL, *payload = NULL;
    const char *err = NULL;
    /* Just under 16 KiB: accepted, so the refusal below is the cap and not the payload. */
    char *fill = apr_palloc(pool, 12401);
    memset(fill, 'a', 12400);
    fill[12400] = '\0';
    fill[12000] = '\0';
    char *small = apr_psprintf(pool, "{\"x\":\"%s\"}", fill);
    ck_assert_int_eq(msa_jws_hs256_sign(pool, &key_a, small, &jws, &err), APR_SUCCESS);
    ck_assert_int_le(strlen(jws), MSA_MAX_TOKEN);
    ck_assert_int_eq(msa_jws_hs256_verify(pool, jws, &key_a, 1, &payload, &err), APR_SUCCESS);
    ck_assert_str_eq(payload, small);

    fill[12000] = 'a';
    char *big = apr_psprintf(pool, "{\"x\":\"%s\"}", fill);
    ck_assert_int_eq(msa_jws_hs256_sign(pool, &key_a, big, &jws, &err), APR_SUCCESS);
    ck_assert_int_gt(strlen(jws), MSA_MAX_TOKEN);
    payload = NULL;
    ck_assert_int_eq(msa_jws_hs256_verify(pool, jws, &key_a, 1, &payload, &err), APR_EINVAL);
    ck_assert_ptr_null(payload);
}
END_TEST

START_TEST(hs256_payload_nul_refused)
{
    char *payload = NULL;
    const char *err = NULL;
    static const char withnul[] = "{\"sub\":\"u1\"}\0{\"sub\":\"admin\"}";
    char *jws =
        hs256_by_hand("{\"alg\":\"HS256\"}", withnul, sizeof withnul - 1, key_a.data, key_a.len);
    ck_assert_int_eq(msa_jws_hs256_verify(pool, jws, &key_a, 1, &payload, &err), APR_EINVAL);
    ck_assert_ptr_null(payload);
}
END_TEST

/*
 * Over-reads are silent in a normal run. This allocator, plugged into cjose for
 * one call, ends every block exactly at an inaccessible page, so reading one
 * byte past a cjose buffer crashes the test instead of passing by luck.
 */
#define GUARD_MAX 4096
static struct guard_block {
    void *ptr, *base;
    size_t size, maplen;
} guards[GUARD_MAX];

static struct guard_block *guard_find(void *ptr)
{
    for (int i = 0; i < GUARD_MAX; i++) {
        if (ptr != NULL && guards[i].ptr == ptr) {
            return &guards[i];
        }
    }
    return NULL;
}

static void *guard_alloc(size_t size)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE), body = (size + page - 1) / page * page;
    struct guard_block *g = NULL;
    for (int i = 0; i < GUARD_MAX && g == NULL; i++) {
        g = guards[i].ptr == NULL ? &guards[i] : NULL;
    }
    if (g == NULL) {
        return NULL;
    }
    char *base =
        mmap(NULL, body + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED || mprotect(base + body, page, PROT_NONE) != 0) {
        return NULL;
    }
    *g = (struct guard_block){base + body - size, base, size, body + page};
    return g->ptr;
}

static void guard_free(void *ptr)
{
    struct guard_block *g = guard_find(ptr);
    if (g == NULL) {
        free(ptr); /* allocated before the switch */
        return;
    }
    munmap(g->base, g->maplen);
    memset(g, 0, sizeof(*g));
}

static void *guard_realloc(void *ptr, size_t size)
{
    struct guard_block *g = guard_find(ptr);
    if (ptr != NULL && g == NULL) {
        return realloc(ptr, size);
    }
    void *n = guard_alloc(size);
    if (n != NULL && g != NULL) {
        memcpy(n, ptr, g->size < size ? g->size : size);
        guard_free(ptr);
    }
    return n;
}

/*
 * BUG (src/core/msa_jose.c, msa_jws_hs256_verify, line 137): the signature part is
 * handed to cjose_jws_verify whatever its length; cjose 0.6.2.1 (the version this
 * tree builds against) then compares 32 bytes of it with the HMAC (cjose_const_memcmp
 * of dig_len bytes, no sig_len check), reading past the decoded signature when it is
 * shorter: a heap over-read from any cookie or Bearer token. Expected: a signature
 * that does not decode to exactly 32 bytes is refused before cjose is called (as
 * msa_jwe_open already does for the GCM tag). This test crashes (SIGSEGV) until then.
 */
START_TEST(hs256_short_signature_no_overread)
{
    if (getenv("CK_FORK") != NULL && strcmp(getenv("CK_FORK"), "no") == 0) {
        return; /* a crash would end the whole run; valgrind reports the over-read instead */
    }
    char *jws = NULL, *payload = NULL;
    const char *err = NULL;
    ck_assert_int_eq(msa_jws_hs256_sign(pool, &key_a, claims, &jws, &err), APR_SUCCESS);
    char *parts[3];
    int n;
    split(jws, parts, 3, &n);
    apr_size_t slen;
    unsigned char *sig = unb64(parts[2], &slen);
    const char *shorts[] = {
        "",
        b64(sig, 1),
        b64(sig, 16),
        b64(sig, 31),
    };
    cjose_set_alloc_funcs(guard_alloc, guard_realloc, guard_free);
    for (size_t i = 0; i < sizeof shorts / sizeof *shorts; i++) {
        char *p3[3] = {parts[0], parts[1], (char *)shorts[i]};
        ck_assert_int_eq(msa_jws_hs256_verify(pool, join(p3, 3), &key_a, 1, &payload, &err),
                         APR_EINVAL);
        ck_assert_ptr_null(payload);
    }
    /* The full signature still verifies under the guard: the crash above is the over-read. */
    ck_assert_int_eq(msa_jws_hs256_verify(pool, jws, &key_a, 1, &payload, &err), APR_SUCCESS);
    cjose_set_alloc_funcs(malloc, realloc, free);
}
END_TEST

/* ---- RS256 ---- */

static EVP_PKEY *rsa_key;

static void rsa_setup(void)
{
    rsa_key = EVP_RSA_gen(2048);
}

static void rsa_teardown(void)
{
    EVP_PKEY_free(rsa_key);
    rsa_key = NULL;
}

static char *bn_b64(EVP_PKEY *k, const char *param)
{
    BIGNUM *bn = NULL;
    ck_assert_int_eq(EVP_PKEY_get_bn_param(k, param, &bn), 1);
    int n = BN_num_bytes(bn);
    unsigned char *buf = apr_palloc(pool, (apr_size_t)n);
    BN_bn2bin(bn, buf);
    BN_free(bn);
    return b64(buf, (size_t)n);
}

static const char *rsa_n(void)
{
    return bn_b64(rsa_key, OSSL_PKEY_PARAM_RSA_N);
}

static const char *rsa_e(void)
{
    return bn_b64(rsa_key, OSSL_PKEY_PARAM_RSA_E);
}

/* A JWKS with an unrelated EC key first and the test key as kid. */
static const char *jwks_with(const char *kid, const char *kty, const char *n)
{
    return apr_psprintf(pool,
                        "{\"keys\":[{\"kty\":\"EC\",\"kid\":\"k0\",\"crv\":\"P-256\","
                        "\"x\":\"AAAA\",\"y\":\"AAAA\"},{\"kty\":\"%s\",\"use\":\"sig\","
                        "\"kid\":\"%s\",\"n\":\"%s\",\"e\":\"%s\"}]}",
                        kty, kid, n, rsa_e());
}

/* header.payload.signature with the test key: RSASSA-PKCS1-v1_5, or PSS when pss. */
static char *rsa_by_hand(const EVP_MD *md, int pss, const char *header, const char *payload)
{
    char *input = apr_pstrcat(pool, b64s(header), ".", b64s(payload), NULL);
    EVP_MD_CTX *mdctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    unsigned char sig[512];
    size_t siglen = sizeof sig;
    ck_assert_int_eq(EVP_DigestSignInit(mdctx, &pctx, md, NULL, rsa_key), 1);
    if (pss) {
        ck_assert_int_gt(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING), 0);
        ck_assert_int_gt(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST), 0);
    }
    ck_assert_int_eq(
        EVP_DigestSign(mdctx, sig, &siglen, (const unsigned char *)input, strlen(input)), 1);
    EVP_MD_CTX_free(mdctx);
    return apr_pstrcat(pool, input, ".", b64(sig, siglen), NULL);
}

static char *rs256_by_hand(const char *header, const char *payload)
{
    return rsa_by_hand(EVP_sha256(), 0, header, payload);
}

static const char rs_header[] = "{\"alg\":\"RS256\",\"kid\":\"k1\"}";

START_TEST(rs256_good)
{
    char *payload = NULL;
    const char *err = NULL;
    char *jws = rs256_by_hand(rs_header, claims);
    ck_assert_int_eq(
        msa_jws_rs256_verify(pool, jws, jwks_with("k1", "RSA", rsa_n()), &payload, &err),
        APR_SUCCESS);
    ck_assert_str_eq(payload, claims);
}
END_TEST

START_TEST(rs256_remembered_key)
{
    char *payload = NULL;
    const char *err = NULL;
    char *jws = rs256_by_hand(rs_header, claims);
    const char *jwks = jwks_with("k1", "RSA", rsa_n());
    for (int i = 0; i < 3; i++) { /* imported once, then remembered */
        ck_assert_int_eq(msa_jws_rs256_verify(pool, jws, jwks, &payload, &err), APR_SUCCESS);
        ck_assert_str_eq(payload, claims);
    }
    /* A remembered key still checks the signature. */
    char *bad = apr_pstrdup(pool, jws);
    size_t n = strlen(bad);
    bad[n - 3] = bad[n - 3] == 'A' ? 'B' : 'A';
    ck_assert_int_eq(msa_jws_rs256_verify(pool, bad, jwks, &payload, &err), APR_EINVAL);
    /* The same kid with another key in a newer document: the old key is not used. */
    char *other_n = apr_pstrdup(pool, rsa_n());
    other_n[10] = other_n[10] == 'A' ? 'B' : 'A';
    ck_assert_int_eq(
        msa_jws_rs256_verify(pool, jws, jwks_with("k1", "RSA", other_n), &payload, &err),
        APR_EINVAL);
    /* Nor is a key for the kid of a document that no longer has it. */
    ck_assert_int_eq(msa_jws_rs256_verify(pool, jws, "{\"keys\":[]}", &payload, &err), MSA_ENOKEY);
    ck_assert_int_eq(msa_jws_rs256_verify(pool, jws, jwks, &payload, &err), APR_SUCCESS);
}
END_TEST

START_TEST(rs256_unknown_kid)
{
    char *payload = NULL;
    const char *err = NULL;
    char *jws = rs256_by_hand("{\"alg\":\"RS256\",\"kid\":\"k9\"}", claims);
    ck_assert_int_eq(
        msa_jws_rs256_verify(pool, jws, jwks_with("k1", "RSA", rsa_n()), &payload, &err),
        MSA_ENOKEY);
    ck_assert_ptr_null(payload);
    /* An empty key set: the kid is unknown as well (fetch again). */
    ck_assert_int_eq(msa_jws_rs256_verify(pool, jws, "{\"keys\":[]}", &payload, &err), MSA_ENOKEY);
}
END_TEST

START_TEST(rs256_no_kid)
{
    char *payload = NULL;
    const char *err = NULL;
    char *jws = rs256_by_hand("{\"alg\":\"RS256\"}", claims);
    ck_assert_int_eq(
        msa_jws_rs256_verify(pool, jws, jwks_with("k1", "RSA", rsa_n()), &payload, &err),
        APR_EINVAL);
    ck_assert_ptr_null(payload);
}
END_TEST

START_TEST(rs256_jwks_garbage)
{
    char *payload = NULL;
    const char *err = NULL;
    char *jws = rs256_by_hand(rs_header, claims);
    const char *bad[] = {
        "", "not json", "[]", "{}", "{\"keys\":{}}", "{\"keys\":\"k1\"}", "{\"keys\":[", "null"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ck_assert_msg(msa_jws_rs256_verify(pool, jws, bad[i], &payload, &err) == APR_EINVAL,
                      "JWKS %s", bad[i]);
        ck_assert_ptr_null(payload);
    }
    /* The right kid with unusable key material. */
    ck_assert_int_eq(msa_jws_rs256_verify(pool, jws, jwks_with("k1", "RSA", "!!"), &payload, &err),
                     APR_EINVAL);
    ck_assert_ptr_null(payload);
}
END_TEST

START_TEST(rs256_kid_not_rsa)
{
    char *payload = NULL;
    const char *err = NULL;
    char *jws = rs256_by_hand(rs_header, claims);
    ck_assert_int_eq(
        msa_jws_rs256_verify(pool, jws, jwks_with("k1", "EC", rsa_n()), &payload, &err),
        APR_EINVAL);
    ck_assert_ptr_null(payload);
    ck_assert_int_eq(
        msa_jws_rs256_verify(pool, jws, jwks_with("k1", "oct", rsa_n()), &payload, &err),
        APR_EINVAL);
}
END_TEST

START_TEST(rs256_tampered)
{
    char *payload = NULL;
    const char *err = NULL;
    const char *jwks = jwks_with("k1", "RSA", rsa_n());
    char *parts[3];
    int n;
    split(rs256_by_hand(rs_header, claims), parts, 3, &n);
    char *p2[3] = {parts[0], b64s("{\"sub\":\"admin\",\"exp\":2000000000}"), parts[2]};
    ck_assert_int_eq(msa_jws_rs256_verify(pool, join(p2, 3), jwks, &payload, &err), APR_EINVAL);
    ck_assert_ptr_null(payload);

    apr_size_t slen;
    unsigned char *sig = unb64(parts[2], &slen);
    sig[slen - 1] ^= 0x80;
    char *p3[3] = {parts[0], parts[1], b64(sig, slen)};
    ck_assert_int_eq(msa_jws_rs256_verify(pool, join(p3, 3), jwks, &payload, &err), APR_EINVAL);

    /* The kid's key is another modulus: the signature is not from it. */
    apr_size_t nlen;
    unsigned char *nb = unb64(rsa_n(), &nlen);
    nb[nlen / 2] ^= 0x10;
    ck_assert_int_eq(msa_jws_rs256_verify(pool, join(parts, 3),
                                          jwks_with("k1", "RSA", b64(nb, nlen)), &payload, &err),
                     APR_EINVAL);
    ck_assert_ptr_null(payload);
}
END_TEST

START_TEST(rs256_alg_confusion)
{
    char *payload = NULL;
    const char *err = NULL;
    const char *n = rsa_n();
    const char *jwks = jwks_with("k1", "RSA", n);
    apr_size_t nlen;
    unsigned char *nb = unb64(n, &nlen);
    const char *hs = "{\"alg\":\"HS256\",\"kid\":\"k1\"}";

    /* HMAC keyed with the public modulus bytes. */
    char *jws = hs256_by_hand(hs, claims, strlen(claims), nb, nlen);
    ck_assert_int_eq(msa_jws_rs256_verify(pool, jws, jwks, &payload, &err), APR_EINVAL);
    ck_assert_ptr_null(payload);
    /* HMAC keyed with the JWKS text, or the base64url of n. */
    jws = hs256_by_hand(hs, claims, strlen(claims), jwks, strlen(jwks));
    ck_assert_int_eq(msa_jws_rs256_verify(pool, jws, jwks, &payload, &err), APR_EINVAL);
    jws = hs256_by_hand(hs, claims, strlen(claims), n, strlen(n));
    ck_assert_int_eq(msa_jws_rs256_verify(pool, jws, jwks, &payload, &err), APR_EINVAL);
    ck_assert_ptr_null(payload);
    /* A good RS256 token is not accepted by the HS256 verifier keyed with the same text. */
    msa_key_t k = {(const unsigned char *)jwks, strlen(jwks)};
    ck_assert_int_eq(
        msa_jws_hs256_verify(pool, rs256_by_hand(rs_header, claims), &k, 1, &payload, &err),
        APR_EINVAL);
    ck_assert_ptr_null(payload);
}
END_TEST

START_TEST(rs256_alg_none_and_others)
{
    char *payload = NULL;
    const char *err = NULL;
    const char *jwks = jwks_with("k1", "RSA", rsa_n());
    char *jws =
        apr_pstrcat(pool, b64s("{\"alg\":\"none\",\"kid\":\"k1\"}"), ".", b64s(claims), ".", NULL);
    ck_assert_int_eq(msa_jws_rs256_verify(pool, jws, jwks, &payload, &err), APR_EINVAL);
    ck_assert_ptr_null(payload);
    jws = apr_pstrcat(pool, "eyJhbGciOiJub25lIn0.", b64s(claims), ".", NULL);
    ck_assert_int_eq(msa_jws_rs256_verify(pool, jws, jwks, &payload, &err), APR_EINVAL);
    /* Other RSA algorithms, correctly signed with the JWKS key: refused all the same. */
    jws = rsa_by_hand(EVP_sha384(), 0, "{\"alg\":\"RS384\",\"kid\":\"k1\"}", claims);
    ck_assert_int_eq(msa_jws_rs256_verify(pool, jws, jwks, &payload, &err), APR_EINVAL);
    jws = rsa_by_hand(EVP_sha512(), 0, "{\"alg\":\"RS512\",\"kid\":\"k1\"}", claims);
    ck_assert_int_eq(msa_jws_rs256_verify(pool, jws, jwks, &payload, &err), APR_EINVAL);
    jws = rsa_by_hand(EVP_sha256(), 1, "{\"alg\":\"PS256\",\"kid\":\"k1\"}", claims);
    ck_assert_int_eq(msa_jws_rs256_verify(pool, jws, jwks, &payload, &err), APR_EINVAL);
    /* A good RS256 signature under a header that names another algorithm, or none. */
    jws = rs256_by_hand("{\"alg\":\"HS256\",\"kid\":\"k1\"}", claims);
    ck_assert_int_eq(msa_jws_rs256_verify(pool, jws, jwks, &payload, &err), APR_EINVAL);
    jws = rs256_by_hand("{\"alg\":\"rs256\",\"kid\":\"k1\"}", claims);
    ck_assert_int_eq(msa_jws_rs256_verify(pool, jws, jwks, &payload, &err), APR_EINVAL);
    jws = rs256_by_hand("{\"kid\":\"k1\"}", claims);
    ck_assert_int_eq(msa_jws_rs256_verify(pool, jws, jwks, &payload, &err), APR_EINVAL);
    ck_assert_ptr_null(payload);
}
END_TEST

START_TEST(rs256_malformed)
{
    char *payload = NULL;
    const char *err = NULL;
    const char *jwks = jwks_with("k1", "RSA", rsa_n());
    char *jws = rs256_by_hand(rs_header, claims);
    const char *bad[] = {
        "",
        apr_pstrndup(pool, jws, strlen(jws) - 4),
        apr_pstrcat(pool, jws, ".", NULL),
        apr_pstrcat(pool, jws, "=", NULL),
        strchr(jws, '.') + 1,
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ck_assert_msg(msa_jws_rs256_verify(pool, bad[i], jwks, &payload, &err) == APR_EINVAL,
                      "accepted case %zu", i);
        ck_assert_ptr_null(payload);
    }
}
END_TEST

/* header.payload.signature over raw payload bytes (which may hold a NUL). */
static char *rs256_raw(const char *header, const void *payload, size_t plen, unsigned char *sig,
                       size_t *siglen)
{
    char *input = apr_pstrcat(pool, b64s(header), ".", b64(payload, plen), NULL);
    EVP_MD_CTX *mdctx = EVP_MD_CTX_new();
    ck_assert_int_eq(EVP_DigestSignInit(mdctx, NULL, EVP_sha256(), NULL, rsa_key), 1);
    ck_assert_int_eq(
        EVP_DigestSign(mdctx, sig, siglen, (const unsigned char *)input, strlen(input)), 1);
    EVP_MD_CTX_free(mdctx);
    return input;
}

START_TEST(rs256_signature_length)
{
    char *payload = NULL;
    const char *err = NULL;
    const char *jwks = jwks_with("k1", "RSA", rsa_n());
    unsigned char sig[512];
    size_t siglen = 0;
    char *input = NULL;
    /* A signature whose first byte is 0 (one in 256): without it, it is one byte short. */
    for (int i = 0; i < 20000; i++) {
        siglen = sizeof sig;
        const char *c = apr_psprintf(pool, "{\"sub\":\"alice\",\"n\":%d}", i);
        input = rs256_raw(rs_header, c, strlen(c), sig, &siglen);
        if (sig[0] == 0) {
            break;
        }
    }
    ck_assert_int_eq(sig[0], 0);
    char *whole = apr_pstrcat(pool, input, ".", b64(sig, siglen), NULL);
    ck_assert_int_eq(msa_jws_rs256_verify(pool, whole, jwks, &payload, &err), APR_SUCCESS);
    payload = NULL;
    char *shorter = apr_pstrcat(pool, input, ".", b64(sig + 1, siglen - 1), NULL);
    ck_assert_int_eq(msa_jws_rs256_verify(pool, shorter, jwks, &payload, &err), APR_EINVAL);
    ck_assert_ptr_null(payload);
    ck_assert_str_eq(err, "id_token signature does not verify");
}
END_TEST

/* The test key's n under another exponent, as base64url. */
static const char *jwks_e(const char *n, const char *e)
{
    return apr_psprintf(
        pool, "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"k1\",\"n\":\"%s\",\"e\":\"%s\"}]}", n, e);
}

/*
 * With e = 1 a "signature" is its own message: the PKCS #1 v1.5 encoding of
 * the hash, written by anyone, verifies. A JWKS naming such a key (or an even
 * exponent, which is no RSA key) is refused, not used.
 */
START_TEST(rs256_weak_exponent)
{
    char *payload = NULL;
    const char *err = NULL;
    static const unsigned char info[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                         0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20};
    char *input = apr_pstrcat(pool, b64s(rs_header), ".", b64s(claims), NULL);
    unsigned char em[256];
    memset(em, 0xff, sizeof em);
    em[0] = 0x00;
    em[1] = 0x01;
    size_t at = sizeof em - 32 - sizeof info;
    em[at - 1] = 0x00;
    memcpy(em + at, info, sizeof info);
    SHA256((const unsigned char *)input, strlen(input), em + at + sizeof info);
    char *forged = apr_pstrcat(pool, input, ".", b64(em, sizeof em), NULL);
    const char *n = rsa_n();
    const char *weak[] = {"AQ", "Ag", "AAE", "AQAA"};
    for (size_t i = 0; i < sizeof weak / sizeof *weak; i++) {
        ck_assert_msg(msa_jws_rs256_verify(pool, forged, jwks_e(n, weak[i]), &payload, &err) !=
                          APR_SUCCESS,
                      "forged signature accepted under e=%s", weak[i]);
        ck_assert_ptr_null(payload);
        ck_assert_msg(msa_jws_rs256_verify(pool, rs256_by_hand(rs_header, claims),
                                           jwks_e(n, weak[i]), &payload, &err) != APR_SUCCESS,
                      "key with e=%s used", weak[i]);
        ck_assert_str_eq(err, "JWKS key for this kid has no usable n and e");
    }
    /* The test key's own exponent (65537) still verifies its signature. */
    ck_assert_int_eq(msa_jws_rs256_verify(pool, rs256_by_hand(rs_header, claims),
                                          jwks_e(n, rsa_e()), &payload, &err),
                     APR_SUCCESS);
}
END_TEST

/* A modulus under 1024 bits is refused however many leading zero bytes pad it to 128. */
START_TEST(rs256_short_modulus_padded)
{
    char *payload = NULL;
    const char *err = NULL;
    EVP_PKEY *big = rsa_key;
    rsa_key = EVP_RSA_gen(1000);
    ck_assert_ptr_nonnull(rsa_key);
    BIGNUM *bn = NULL;
    ck_assert_int_eq(EVP_PKEY_get_bn_param(rsa_key, OSSL_PKEY_PARAM_RSA_N, &bn), 1);
    unsigned char nb[128];
    ck_assert_int_eq(BN_bn2binpad(bn, nb, sizeof nb), 128);
    BN_free(bn);
    ck_assert_int_eq(nb[0], 0);
    char *jws = rs256_by_hand(rs_header, claims);
    const char *jwks = jwks_e(b64(nb, sizeof nb), rsa_e());
    apr_status_t rv = msa_jws_rs256_verify(pool, jws, jwks, &payload, &err);
    EVP_PKEY_free(rsa_key);
    rsa_key = big;
    ck_assert_int_ne(rv, APR_SUCCESS);
    ck_assert_ptr_null(payload);
    ck_assert_str_eq(err, "JWKS key for this kid has no usable n and e");
}
END_TEST

/* A good signature with a zero byte put before it is longer than the modulus: refused. */
START_TEST(rs256_signature_longer_than_modulus)
{
    char *payload = NULL;
    const char *err = NULL;
    const char *jwks = jwks_with("k1", "RSA", rsa_n());
    unsigned char sig[513];
    size_t siglen = sizeof sig - 1;
    char *input = rs256_raw(rs_header, claims, strlen(claims), sig + 1, &siglen);
    sig[0] = 0;
    char *whole = apr_pstrcat(pool, input, ".", b64(sig + 1, siglen), NULL);
    ck_assert_int_eq(msa_jws_rs256_verify(pool, whole, jwks, &payload, &err), APR_SUCCESS);
    payload = NULL;
    char *longer = apr_pstrcat(pool, input, ".", b64(sig, siglen + 1), NULL);
    ck_assert_int_eq(msa_jws_rs256_verify(pool, longer, jwks, &payload, &err), APR_EINVAL);
    ck_assert_ptr_null(payload);
    ck_assert_str_eq(err, "id_token signature does not verify");
}
END_TEST

START_TEST(rs256_payload_with_nul)
{
    char *payload = NULL;
    const char *err = NULL;
    const char *jwks = jwks_with("k1", "RSA", rsa_n());
    static const char nul[] = "{\"sub\":\"alice\"}\0{\"sub\":\"admin\"}";
    unsigned char sig[512];
    size_t siglen = sizeof sig;
    char *input = rs256_raw(rs_header, nul, sizeof nul - 1, sig, &siglen);
    char *jws = apr_pstrcat(pool, input, ".", b64(sig, siglen), NULL);
    ck_assert_int_eq(msa_jws_rs256_verify(pool, jws, jwks, &payload, &err), APR_EINVAL);
    ck_assert_ptr_null(payload);
    ck_assert_str_eq(err, "JWS payload holds a NUL byte");
}
END_TEST

/* ---- JWE ---- */

static const unsigned char jwe_key[32] = "0123456789ABCDEF0123456789ABCDEF";
static const unsigned char jwe_key2[32] = "fedcba9876543210fedcba9876543210";
static const char secret_text[] = "{\"s\":\"app|xyz\",\"v\":\"verifier\",\"r\":\"/back?a=1\"}";

static char *sealed(void)
{
    char *jwe = NULL;
    const char *err = NULL;
    ck_assert_int_eq(msa_jwe_seal(pool, jwe_key, secret_text, &jwe, &err), APR_SUCCESS);
    ck_assert_ptr_nonnull(jwe);
    return jwe;
}

static apr_status_t open_it(const unsigned char *key, const char *jwe, char **plain)
{
    const char *err = NULL;
    *plain = NULL;
    apr_status_t rv = msa_jwe_open(pool, key, jwe, plain, &err);
    if (rv != APR_SUCCESS) {
        ck_assert_ptr_nonnull(err);
        ck_assert_ptr_null(*plain);
    }
    return rv;
}

START_TEST(jwe_round_trip)
{
    char *jwe = sealed(), *plain = NULL;
    char *parts[6];
    int n;
    split(jwe, parts, 6, &n);
    ck_assert_int_eq(n, 5);
    ck_assert_str_eq(parts[1], ""); /* dir: no encrypted key */
    ck_assert_ptr_null(strstr(jwe, "verifier"));
    ck_assert_int_eq(open_it(jwe_key, jwe, &plain), APR_SUCCESS);
    ck_assert_str_eq(plain, secret_text);
    /* Two seals of the same text differ (fresh IV). */
    ck_assert_str_ne(sealed(), jwe);
}
END_TEST

START_TEST(jwe_wrong_key)
{
    char *plain;
    ck_assert_int_eq(open_it(jwe_key2, sealed(), &plain), APR_EINVAL);
}
END_TEST

/* Flips one bit of the decoded part i and re-encodes. */
static char *flip_part(const char *jwe, int i, apr_size_t at)
{
    char *parts[6];
    int n;
    split(jwe, parts, 6, &n);
    apr_size_t len;
    unsigned char *d = unb64(parts[i], &len);
    ck_assert_uint_lt(at, len);
    d[at] ^= 0x01;
    parts[i] = b64(d, len);
    return join(parts, n);
}

START_TEST(jwe_flipped_bytes)
{
    char *jwe = sealed(), *plain;
    apr_size_t ctlen;
    char *parts[6];
    int n;
    split(jwe, parts, 6, &n);
    unb64(parts[3], &ctlen);
    /* header, iv, ciphertext (first and last byte), tag */
    ck_assert_int_eq(open_it(jwe_key, flip_part(jwe, 0, 3), &plain), APR_EINVAL);
    ck_assert_int_eq(open_it(jwe_key, flip_part(jwe, 2, 0), &plain), APR_EINVAL);
    ck_assert_int_eq(open_it(jwe_key, flip_part(jwe, 2, 11), &plain), APR_EINVAL);
    ck_assert_int_eq(open_it(jwe_key, flip_part(jwe, 3, 0), &plain), APR_EINVAL);
    ck_assert_int_eq(open_it(jwe_key, flip_part(jwe, 3, ctlen - 1), &plain), APR_EINVAL);
    ck_assert_int_eq(open_it(jwe_key, flip_part(jwe, 4, 0), &plain), APR_EINVAL);
    ck_assert_int_eq(open_it(jwe_key, flip_part(jwe, 4, 15), &plain), APR_EINVAL);
    /* The untouched one still opens: the refusals above are the flips. */
    ck_assert_int_eq(open_it(jwe_key, jwe, &plain), APR_SUCCESS);
}
END_TEST

START_TEST(jwe_header_swapped)
{
    char *jwe = sealed(), *plain;
    char *parts[6];
    int n;
    split(jwe, parts, 6, &n);
    /* Same meaning, other bytes: the header is authenticated data. */
    parts[0] = b64s("{\"enc\":\"A256GCM\",\"alg\":\"dir\"}");
    ck_assert_int_eq(open_it(jwe_key, join(parts, 5), &plain), APR_EINVAL);
    parts[0] = b64s("{\"alg\":\"dir\",\"enc\":\"A128GCM\"}");
    ck_assert_int_eq(open_it(jwe_key, join(parts, 5), &plain), APR_EINVAL);
    parts[0] = b64s("{\"alg\":\"A256KW\",\"enc\":\"A256GCM\"}");
    ck_assert_int_eq(open_it(jwe_key, join(parts, 5), &plain), APR_EINVAL);
}
END_TEST

START_TEST(jwe_short_tag_refused)
{
    /* CVE-2023-37464: cjose <= 0.6.2.1 checks only as many tag bytes as it is given. */
    char *jwe = sealed(), *plain;
    char *parts[6];
    int n;
    split(jwe, parts, 6, &n);
    apr_size_t tlen;
    unsigned char *tag = unb64(parts[4], &tlen);
    ck_assert_int_eq(tlen, 16);
    static const apr_size_t cuts[] = {8, 1, 12, 15};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        parts[4] = b64(tag, cuts[i]); /* the genuine tag's prefix */
        ck_assert_msg(open_it(jwe_key, join(parts, 5), &plain) == APR_EINVAL,
                      "tag of %d bytes accepted", (int)cuts[i]);
    }
    parts[4] = (char *)"";
    ck_assert_int_eq(open_it(jwe_key, join(parts, 5), &plain), APR_EINVAL);
}
END_TEST

START_TEST(jwe_bad_shapes)
{
    char *jwe = sealed(), *plain;
    char *parts[6];
    int n;
    split(jwe, parts, 6, &n);
    const char *bad[] = {
        "",
        join(parts, 4),                              /* 4 parts */
        apr_pstrcat(pool, jwe, ".", parts[4], NULL), /* 6 parts */
        apr_pstrcat(pool, jwe, ".", NULL),           /* 6 parts, last empty */
        apr_pstrcat(pool, jwe, "=", NULL),           /* padding */
        apr_pstrcat(pool, parts[0], ".AAAA.", parts[2], ".", parts[3], ".", parts[4],
                    NULL), /* an encrypted key for dir */
        apr_pstrcat(pool, parts[0], "..", b64("0123456789abcdef", 16), ".", parts[3], ".", parts[4],
                    NULL),                                                 /* 16-byte IV */
        apr_pstrcat(pool, parts[0], "..", parts[2], "..", parts[4], NULL), /* no ciphertext */
        "a.b.c.d.e",
        "....",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ck_assert_msg(open_it(jwe_key, bad[i], &plain) == APR_EINVAL, "accepted case %zu", i);
    }
}
END_TEST

START_TEST(jwe_size_cap)
{
    char *fill = apr_palloc(pool, 13001), *jwe = NULL, *plain;
    const char *err = NULL;
    memset(fill, 'x', 13000);
    fill[13000] = '\0';
    ck_assert_int_eq(msa_jwe_seal(pool, jwe_key, fill, &jwe, &err), APR_SUCCESS);
    ck_assert_int_gt(strlen(jwe), MSA_MAX_TOKEN);
    ck_assert_int_eq(open_it(jwe_key, jwe, &plain), APR_EINVAL);
}
END_TEST

/* ---- HKDF ---- */

/* HKDF-SHA256 computed from its definition (RFC 5869 section 2) with plain HMAC. */
static void hkdf_by_hand(const unsigned char *ikm, size_t ikmlen, const char *info,
                         unsigned char *out, size_t outlen)
{
    unsigned char zero[32] = {0}, prk[32], t[32 + 256 + 1];
    unsigned int l = 0;
    ck_assert_ptr_nonnull(HMAC(EVP_sha256(), zero, sizeof zero, ikm, ikmlen, prk, &l));
    size_t ilen = strlen(info), tlen = 0, done = 0;
    for (unsigned char i = 1; done < outlen; i++) {
        unsigned char block[32];
        memmove(t + tlen, info, ilen);
        t[tlen + ilen] = i;
        ck_assert_ptr_nonnull(HMAC(EVP_sha256(), prk, sizeof prk, t, tlen + ilen + 1, block, &l));
        size_t take = outlen - done < 32 ? outlen - done : 32;
        memcpy(out + done, block, take);
        done += take;
        memcpy(t, block, 32);
        tlen = 32;
    }
}

START_TEST(hkdf_rfc5869_case3)
{
    /* Test case 3: IKM = 22 x 0x0b, no salt, no info, L = 42. */
    unsigned char ikm[22], out[42], expect[42];
    memset(ikm, 0x0b, sizeof ikm);
    static const unsigned char okm[42] = {
        0x8d, 0xa4, 0xe7, 0x75, 0xa5, 0x63, 0xc1, 0x8f, 0x71, 0x5f, 0x80, 0x2a, 0x06, 0x3c,
        0x5a, 0x31, 0xb8, 0xa1, 0x1f, 0x5c, 0x5e, 0xe1, 0x87, 0x9e, 0xc3, 0x45, 0x4e, 0x5f,
        0x3c, 0x73, 0x8d, 0x2d, 0x9d, 0x20, 0x13, 0x95, 0xfa, 0xa4, 0xb6, 0x1a, 0x96, 0xc8};
    msa_key_t k = {ikm, sizeof ikm};
    ck_assert_int_eq(msa_hkdf_sha256(&k, "", out, sizeof out), APR_SUCCESS);
    ck_assert_mem_eq(out, okm, sizeof okm);
    hkdf_by_hand(ikm, sizeof ikm, "", expect, sizeof expect);
    ck_assert_mem_eq(expect, okm, sizeof okm); /* the reference agrees with the RFC */
}
END_TEST

START_TEST(hkdf_with_info)
{
    unsigned char out[32], expect[32], other[32];
    msa_key_t k = key_a;
    ck_assert_int_eq(msa_hkdf_sha256(&k, "mod_msauth state cookie v1", out, sizeof out),
                     APR_SUCCESS);
    hkdf_by_hand(key_a.data, key_a.len, "mod_msauth state cookie v1", expect, sizeof expect);
    ck_assert_mem_eq(out, expect, sizeof out);
    /* The info separates keys. */
    ck_assert_int_eq(msa_hkdf_sha256(&k, "another purpose", other, sizeof other), APR_SUCCESS);
    ck_assert_int_ne(memcmp(out, other, sizeof out), 0);
    /* Longer output, three blocks. */
    unsigned char l1[80], l2[80];
    ck_assert_int_eq(msa_hkdf_sha256(&k, "x", l1, sizeof l1), APR_SUCCESS);
    hkdf_by_hand(key_a.data, key_a.len, "x", l2, sizeof l2);
    ck_assert_mem_eq(l1, l2, sizeof l1);
}
END_TEST

/* ---- base64url ---- */

static const char *const rfc4648[][2] = {
    {"", ""},           {"f", "Zg"},          {"fo", "Zm8"},          {"foo", "Zm9v"},
    {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"},
};

START_TEST(b64url_rfc4648)
{
    const char *plain = rfc4648[_i][0], *enc = rfc4648[_i][1];
    ck_assert_str_eq(msa_b64url_encode(pool, (const unsigned char *)plain, strlen(plain)), enc);
    unsigned char *out = NULL;
    apr_size_t len = 99;
    ck_assert_int_eq(msa_b64url_decode(pool, enc, strlen(enc), &out, &len), APR_SUCCESS);
    ck_assert_uint_eq(len, strlen(plain));
    ck_assert_mem_eq(out, plain, len);
}
END_TEST

START_TEST(b64url_url_alphabet)
{
    static const unsigned char d[] = {0xfb, 0xff, 0xbf, 0x00, 0x10};
    ck_assert_str_eq(msa_b64url_encode(pool, d, sizeof d), "-_-_ABA");
    unsigned char *out = NULL;
    apr_size_t len = 0;
    ck_assert_int_eq(msa_b64url_decode(pool, "-_-_ABA", 7, &out, &len), APR_SUCCESS);
    ck_assert_uint_eq(len, sizeof d);
    ck_assert_mem_eq(out, d, sizeof d);
    /* Every byte value survives a round trip. */
    unsigned char all[256];
    for (int i = 0; i < 256; i++) {
        all[i] = (unsigned char)i;
    }
    char *e = msa_b64url_encode(pool, all, sizeof all);
    ck_assert_uint_eq(strlen(e), 342);
    ck_assert_int_eq(msa_b64url_decode(pool, e, strlen(e), &out, &len), APR_SUCCESS);
    ck_assert_uint_eq(len, 256);
    ck_assert_mem_eq(out, all, 256);
    /* The length argument bounds the input. */
    ck_assert_int_eq(msa_b64url_decode(pool, "Zm9vYmFy", 4, &out, &len), APR_SUCCESS);
    ck_assert_uint_eq(len, 3);
    ck_assert_mem_eq(out, "foo", 3);
}
END_TEST

static const char *const b64_bad[] = {
    "Zh",      /* 'f' with a non-zero trailing bit */
    "Zm9",     /* "fo" with trailing bits: canonical is Zm8 */
    "Zm9vYh",  /* "foob" non-canonical */
    "Zm9vYmF", /* "fooba" non-canonical (canonical Zm9vYmE) */
    "Z",       /* length % 4 == 1 */
    "Zm9vY",   /* length % 4 == 1 */
    "Zg==",    /* padding */
    "Zm+v",    /* standard alphabet */
    "Zm/v",    /* standard alphabet */
    "Zm9 v",   /* space */
    "Zm9v\n",  /* newline */
    "Zm\x80v", /* high byte */
};

START_TEST(b64url_bad)
{
    unsigned char *out = NULL;
    apr_size_t len = 0;
    const char *s = b64_bad[_i];
    ck_assert_msg(msa_b64url_decode(pool, s, strlen(s), &out, &len) == APR_EINVAL, "decoded %s", s);
}
END_TEST

START_TEST(b64url_embedded_nul)
{
    unsigned char *out = NULL;
    apr_size_t len = 0;
    ck_assert_int_eq(msa_b64url_decode(pool, "Zm\0v", 4, &out, &len), APR_EINVAL);
}
END_TEST

/* ---- PKCE, random ---- */

START_TEST(pkce_rfc7636)
{
    ck_assert_str_eq(msa_pkce_challenge(pool, "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
                     "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
}
END_TEST

static int all_b64url(const char *s)
{
    return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") ==
           strlen(s);
}

START_TEST(random_b64url)
{
    static const struct {
        apr_size_t n, chars;
    } sizes[] = {{1, 2}, {16, 22}, {18, 24}, {32, 43}, {64, 86}};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        char *a = msa_random_b64url(pool, sizes[i].n), *b = msa_random_b64url(pool, sizes[i].n);
        ck_assert_ptr_nonnull(a);
        ck_assert_uint_eq(strlen(a), sizes[i].chars);
        ck_assert_msg(all_b64url(a), "%s", a);
        if (sizes[i].n >= 16) {
            ck_assert_str_ne(a, b);
        }
        unsigned char *d;
        apr_size_t len;
        ck_assert_int_eq(msa_b64url_decode(pool, a, strlen(a), &d, &len), APR_SUCCESS);
        ck_assert_uint_eq(len, sizes[i].n);
    }
    /* A hundred 16-byte values, all distinct. */
    apr_hash_t *seen = apr_hash_make(pool);
    for (int i = 0; i < 100; i++) {
        char *r = msa_random_b64url(pool, 16);
        ck_assert_ptr_null(apr_hash_get(seen, r, APR_HASH_KEY_STRING));
        apr_hash_set(seen, r, APR_HASH_KEY_STRING, r);
    }
    ck_assert_ptr_null(msa_random_b64url(pool, 0));
    ck_assert_ptr_null(msa_random_b64url(pool, 65));
}
END_TEST

static Suite *jose_suite(void)
{
    Suite *s = suite_create("msa_jose");
    TCase *tc;

    tc = msa_test_case("hs256");
    tcase_add_test(tc, hs256_round_trip);
    tcase_add_test(tc, hs256_remembered_tokens_still_need_their_key);
    tcase_add_test(tc, hs256_by_hand_interop);
    tcase_add_test(tc, hs256_rotation_second_key);
    tcase_add_test(tc, hs256_wrong_key);
    tcase_add_test(tc, hs256_tampered);
    tcase_add_test(tc, hs256_alg_none_refused);
    tcase_add_test(tc, hs256_other_alg_refused);
    tcase_add_test(tc, hs256_malformed_refused);
    tcase_add_test(tc, hs256_size_cap);
    tcase_add_test(tc, hs256_payload_nul_refused);
    tcase_add_test(tc, hs256_short_signature_no_overread);
    suite_add_tcase(s, tc);

    tc = msa_test_case("rs256");
    tcase_add_unchecked_fixture(tc, rsa_setup, rsa_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, rs256_good);
    tcase_add_test(tc, rs256_remembered_key);
    tcase_add_test(tc, rs256_unknown_kid);
    tcase_add_test(tc, rs256_no_kid);
    tcase_add_test(tc, rs256_jwks_garbage);
    tcase_add_test(tc, rs256_kid_not_rsa);
    tcase_add_test(tc, rs256_tampered);
    tcase_add_test(tc, rs256_alg_confusion);
    tcase_add_test(tc, rs256_alg_none_and_others);
    tcase_add_test(tc, rs256_malformed);
    tcase_add_test(tc, rs256_signature_length);
    tcase_add_test(tc, rs256_payload_with_nul);
    tcase_add_test(tc, rs256_weak_exponent);
    tcase_add_test(tc, rs256_signature_longer_than_modulus);
    tcase_add_test(tc, rs256_short_modulus_padded);
    suite_add_tcase(s, tc);

    tc = msa_test_case("jwe");
    tcase_add_test(tc, jwe_round_trip);
    tcase_add_test(tc, jwe_wrong_key);
    tcase_add_test(tc, jwe_flipped_bytes);
    tcase_add_test(tc, jwe_header_swapped);
    tcase_add_test(tc, jwe_short_tag_refused);
    tcase_add_test(tc, jwe_bad_shapes);
    tcase_add_test(tc, jwe_size_cap);
    suite_add_tcase(s, tc);

    tc = msa_test_case("kdf_b64_pkce");
    tcase_add_test(tc, hkdf_rfc5869_case3);
    tcase_add_test(tc, hkdf_with_info);
    tcase_add_loop_test(tc, b64url_rfc4648, 0, sizeof rfc4648 / sizeof *rfc4648);
    tcase_add_test(tc, b64url_url_alphabet);
    tcase_add_loop_test(tc, b64url_bad, 0, sizeof b64_bad / sizeof *b64_bad);
    tcase_add_test(tc, b64url_embedded_nul);
    tcase_add_test(tc, pkce_rfc7636);
    tcase_add_test(tc, random_b64url);
    suite_add_tcase(s, tc);

    return s;
}

int main(void)
{
    return msa_test_run(jose_suite());
}
