/*
 * Fuzz target: the module's own HS256 tokens (session and ID tokens).
 *
 * The input is tried as a compact JWS (msa_jws_hs256_verify, msa_token_verify
 * for both uses) and as claims JSON (msa_token_from_json, whose fast scanner must agree
 * with json-c alone, msa_token_claims_json). Since a fuzzer
 * cannot forge an HMAC, the input is also signed with the fixed key so that
 * the claim checks behind the signature see arbitrary claims.
 *
 * Invariants: no key list of length 0 verifies anything; what is signed with
 * a configured key verifies and gives back the same payload (up to the size
 * cap); claims survive to_json/from_json and sign/verify unchanged; a token
 * msa_token_verify accepts meets every check of its contract.
 */
#include <apr_strings.h>

#include "msa_jose.h"
#include "msa_token.h"

#include "fuzz.h"

static const msa_key_t keys[2] = {
    {(const unsigned char *)FUZZ_HS_KEY1, sizeof(FUZZ_HS_KEY1) - 1},
    {(const unsigned char *)FUZZ_HS_KEY2, sizeof(FUZZ_HS_KEY2) - 1},
};

static const char *const uses[2] = {MSA_USE_SESSION, MSA_USE_ID};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_init();
    return 0;
}

static int str_eq(const char *a, const char *b)
{
    return a == NULL ? b == NULL : b != NULL && strcmp(a, b) == 0;
}

static int token_eq(const msa_token_t *a, const msa_token_t *b)
{
    const char *const sa[] = {a->sub,     a->identifier, a->appid, a->aud,       a->idp,
                              a->name,    a->email,      a->upn,   a->tid,       a->oid,
                              a->picture, a->verified,   a->jti,   a->token_use, a->epoch};
    const char *const sb[] = {b->sub,     b->identifier, b->appid, b->aud,       b->idp,
                              b->name,    b->email,      b->upn,   b->tid,       b->oid,
                              b->picture, b->verified,   b->jti,   b->token_use, b->epoch};
    for (size_t i = 0; i < sizeof(sa) / sizeof(*sa); i++) {
        if (!str_eq(sa[i], sb[i])) {
            return 0;
        }
    }
    if (a->iat != b->iat || a->nbf != b->nbf || a->exp != b->exp || a->refresh != b->refresh ||
        a->groups_cached != b->groups_cached) {
        return 0;
    }
    if (a->groups == NULL || b->groups == NULL) {
        return a->groups == b->groups;
    }
    if (a->groups->nelts != b->groups->nelts) {
        return 0;
    }
    for (int i = 0; i < a->groups->nelts; i++) {
        if (!str_eq(APR_ARRAY_IDX(a->groups, i, const char *),
                    APR_ARRAY_IDX(b->groups, i, const char *))) {
            return 0;
        }
    }
    return 1;
}

/* What msa_token_verify must answer for claims t once the signature is good. */
static apr_status_t expected_verdict(const msa_token_t *t, const char *use, const char *appid,
                                     const char *aud)
{
    if (t->sub == NULL || *t->sub == '\0' || t->jti == NULL || *t->jti == '\0') {
        return APR_EINVAL;
    }
    if (t->token_use == NULL || strcmp(t->token_use, use) != 0) {
        return APR_EINVAL;
    }
    if (appid != NULL && !str_eq(t->appid, appid)) {
        return APR_EINVAL;
    }
    if (aud != NULL && !str_eq(t->aud, aud)) {
        return APR_EINVAL;
    }
    if (t->exp == 0 || t->exp <= FUZZ_NOW - FUZZ_SKEW) {
        return MSA_EEXPIRED;
    }
    if (t->nbf > FUZZ_NOW + FUZZ_SKEW || t->iat > FUZZ_NOW + FUZZ_SKEW) {
        return MSA_EEXPIRED;
    }
    return APR_SUCCESS;
}

/* msa_token_verify for both uses, with and without the app check. */
static void verify_all(apr_pool_t *p, const char *jwt, const msa_token_t *claims,
                       const uint8_t *data, size_t size)
{
    for (int u = 0; u < 2; u++) {
        for (int a = 0; a < 2; a++) {
            const char *appid = a ? FUZZ_APPID : NULL, *aud = a ? FUZZ_AUD : NULL;
            const char *err = NULL;
            msa_token_t t;
            apr_status_t rv = msa_token_verify(p, jwt, keys, 2, uses[u], appid, aud, FUZZ_NOW,
                                               FUZZ_SKEW, &t, &err);
            FUZZ_ASSERT(rv == APR_SUCCESS || rv == APR_EINVAL || rv == MSA_EEXPIRED, data, size);
            FUZZ_ASSERT(rv == APR_SUCCESS || err != NULL, data, size);
            if (rv == APR_SUCCESS) {
                FUZZ_ASSERT(expected_verdict(&t, uses[u], appid, aud) == APR_SUCCESS, data, size);
            }
            if (claims != NULL) {
                FUZZ_ASSERT(rv == expected_verdict(claims, uses[u], appid, aud), data, size);
                FUZZ_ASSERT(rv != APR_SUCCESS || token_eq(&t, claims), data, size);
            }
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fuzz_begin();
    char *s = fuzz_cstr(p, data, size);
    char *payload = NULL, *jwt = NULL;
    const char *err = NULL;
    msa_token_t t, t2;

    /* 1. The input as a token. */
    apr_status_t rv = msa_jws_hs256_verify(p, s, keys, 2, &payload, &err);
    FUZZ_ASSERT(rv == APR_SUCCESS || rv == APR_EINVAL, data, size);
    FUZZ_ASSERT(rv != APR_SUCCESS || payload != NULL, data, size);
    FUZZ_ASSERT(msa_jws_hs256_verify(p, s, keys, 0, &payload, &err) != APR_SUCCESS, data, size);
    verify_all(p, s, NULL, data, size);

    /* 2. The input as claims, signed with the current key: every check behind the MAC. */
    if (msa_jws_hs256_sign(p, &keys[0], s, &jwt, &err) == APR_SUCCESS) {
        rv = msa_jws_hs256_verify(p, jwt, keys, 2, &payload, &err);
        if (strlen(jwt) <= MSA_MAX_TOKEN) {
            FUZZ_ASSERT(rv == APR_SUCCESS && strcmp(payload, s) == 0, data, size);
        } else {
            FUZZ_ASSERT(rv != APR_SUCCESS, data, size);
        }
        /* Made with the current key, it must not verify with the previous key alone. */
        FUZZ_ASSERT(msa_jws_hs256_verify(p, jwt, &keys[1], 1, &payload, &err) != APR_SUCCESS, data,
                    size);
        verify_all(p, jwt, NULL, data, size);
    }

    /*
     * 3. The input as claims JSON: the fast scanner and json-c agree (whatever one
     * accepts the other does, with the same claims), and parsing is stable under
     * serialising and signing.
     */
    msa_token_t slow;
    const char *slow_err = NULL;
    apr_status_t fast_rv = msa_token_from_json(p, s, &t, &err);
    apr_status_t slow_rv = msa_token_claims_json(p, s, &slow, &slow_err);
    FUZZ_ASSERT(fast_rv == slow_rv, data, size);
    FUZZ_ASSERT(fast_rv != APR_SUCCESS || token_eq(&t, &slow), data, size);
    if (fast_rv == APR_SUCCESS) {
        char *json = msa_token_to_json(p, &t);
        FUZZ_ASSERT(json != NULL, data, size);
        FUZZ_ASSERT(msa_token_from_json(p, json, &t2, &err) == APR_SUCCESS, data, size);
        FUZZ_ASSERT(token_eq(&t, &t2), data, size);
        if (msa_token_sign(p, &t, &keys[1], &jwt, &err) == APR_SUCCESS &&
            strlen(jwt) <= MSA_MAX_TOKEN) {
            verify_all(p, jwt, &t, data, size);
        }
    } else {
        FUZZ_ASSERT(err != NULL, data, size);
    }

    fuzz_end();
    return 0;
}
