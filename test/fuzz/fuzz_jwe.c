/*
 * Fuzz target: the encrypted state cookie (msa_jwe_open, msa_login_state_open).
 *
 * The input is opened as a JWE with the fixed key and as a state cookie with
 * the fixed secret. Since a fuzzer cannot forge an AES-GCM tag, the input is
 * also sealed: as plaintext (which must open to the same text, and must not
 * open once a tag character is changed), as the JSON inside a state cookie
 * (whose parse must agree with a reading of the same JSON here), and as the
 * fields of a login state (which must come back unchanged).
 */
#include <apr_strings.h>
#include <json-c/json.h>

#include "msa_jose.h"
#include "msa_state.h"

#include "fuzz.h"

typedef char jwe_key_is_32_bytes[sizeof(FUZZ_JWE_KEY) - 1 == 32 ? 1 : -1];

static const unsigned char *jwe_key = (const unsigned char *)FUZZ_JWE_KEY;
static const unsigned char *secret = (const unsigned char *)FUZZ_STATE_KEY;
static const apr_size_t secret_len = sizeof(FUZZ_STATE_KEY) - 1;
static unsigned char state_key[32]; /* what msa_login_state_* derive from secret */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_init();
    msa_key_t k = {secret, secret_len};
    if (msa_hkdf_sha256(&k, FUZZ_STATE_INFO, state_key, sizeof(state_key)) != APR_SUCCESS) {
        fprintf(stderr, "fuzz_jwe: HKDF failed\n");
        abort();
    }
    return 0;
}

static int str_eq(const char *a, const char *b)
{
    return a == NULL ? b == NULL : b != NULL && strcmp(a, b) == 0;
}

/* Whether msa_login_state_open should accept a cookie holding json. */
static int state_json_ok(const char *json)
{
    static const char *const required[] = {"s", "v", "n", "a"};
    json_object *o = json_tokener_parse(json), *v;
    int ok = o != NULL && json_object_is_type(o, json_type_object);
    for (int i = 0; ok && i < 4; i++) {
        ok = json_object_object_get_ex(o, required[i], &v) &&
             json_object_is_type(v, json_type_string);
    }
    if (ok && json_object_object_get_ex(o, "r", &v)) {
        ok = json_object_is_type(v, json_type_string);
    }
    ok = ok && json_object_object_get_ex(o, "t", &v) && json_object_is_type(v, json_type_int);
    json_object_put(o);
    return ok;
}

/* The input as plaintext: seal, open, and open once tampered. */
static void plaintext_round_trip(apr_pool_t *p, const char *s, const uint8_t *data, size_t size)
{
    char *jwe = NULL, *plain = NULL;
    const char *err = NULL;
    apr_status_t rv = msa_jwe_seal(p, jwe_key, s, &jwe, &err);
    if (rv != APR_SUCCESS) {
        /* cjose will not encrypt nothing; the module never seals an empty text. */
        FUZZ_ASSERT(*s == '\0', data, size);
        return;
    }
    rv = msa_jwe_open(p, jwe_key, jwe, &plain, &err);
    if (strlen(jwe) > MSA_MAX_TOKEN) {
        FUZZ_ASSERT(rv == APR_EINVAL, data, size);
        return;
    }
    FUZZ_ASSERT(rv == APR_SUCCESS && strcmp(plain, s) == 0, data, size);

    /* A changed character inside the tag (all 6 bits in use there) must be refused. */
    char *bad = apr_pstrdup(p, jwe);
    char *tag = strrchr(bad, '.') + 1;
    tag[10] = tag[10] == 'A' ? 'B' : 'A';
    FUZZ_ASSERT(msa_jwe_open(p, jwe_key, bad, &plain, &err) == APR_EINVAL, data, size);
    /* So must a key other than the sealer's. */
    FUZZ_ASSERT(msa_jwe_open(p, state_key, jwe, &plain, &err) == APR_EINVAL, data, size);
}

/* The input as the JSON inside a state cookie. */
static void state_json(apr_pool_t *p, const char *s, const uint8_t *data, size_t size)
{
    char *cookie = NULL;
    const char *err = NULL;
    msa_login_state_t st;
    if (msa_jwe_seal(p, state_key, s, &cookie, &err) != APR_SUCCESS ||
        strlen(cookie) > MSA_MAX_TOKEN) {
        return;
    }
    apr_status_t rv = msa_login_state_open(p, cookie, secret, secret_len, &st, &err);
    FUZZ_ASSERT(rv == APR_SUCCESS || rv == APR_EINVAL, data, size);
    FUZZ_ASSERT((rv == APR_SUCCESS) == state_json_ok(s), data, size);
    if (rv == APR_SUCCESS) {
        FUZZ_ASSERT(st.state && st.verifier && st.nonce && st.appid, data, size);
    } else {
        FUZZ_ASSERT(err != NULL, data, size);
    }
}

/* The input as the fields of a login state. */
static void state_round_trip(apr_pool_t *p, const char *s, const uint8_t *data, size_t size)
{
    msa_login_state_t in = {
        .state = s,
        .verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
        .nonce = s,
        .return_to = size % 2 ? s : NULL,
        .appid = s,
        .created = (apr_int64_t)size * 1000003 - 500000,
    };
    msa_login_state_t out;
    char *cookie = NULL;
    const char *err = NULL;
    FUZZ_ASSERT(msa_login_state_seal(p, &in, secret, secret_len, &cookie, &err) == APR_SUCCESS,
                data, size);
    apr_status_t rv = msa_login_state_open(p, cookie, secret, secret_len, &out, &err);
    if (strlen(cookie) > MSA_MAX_TOKEN) {
        FUZZ_ASSERT(rv == APR_EINVAL, data, size);
        return;
    }
    FUZZ_ASSERT(rv == APR_SUCCESS, data, size);
    FUZZ_ASSERT(str_eq(out.state, in.state) && str_eq(out.verifier, in.verifier) &&
                    str_eq(out.nonce, in.nonce) && str_eq(out.return_to, in.return_to) &&
                    str_eq(out.appid, in.appid) && out.created == in.created,
                data, size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fuzz_begin();
    char *s = fuzz_cstr(p, data, size);
    char *plain = NULL;
    const char *err = NULL;
    msa_login_state_t st;

    apr_status_t rv = msa_jwe_open(p, jwe_key, s, &plain, &err);
    FUZZ_ASSERT(rv == APR_SUCCESS || rv == APR_EINVAL, data, size);
    FUZZ_ASSERT(rv != APR_SUCCESS || plain != NULL, data, size);
    FUZZ_ASSERT(rv == APR_SUCCESS || err != NULL, data, size);

    err = NULL;
    rv = msa_login_state_open(p, s, secret, secret_len, &st, &err);
    FUZZ_ASSERT(rv == APR_SUCCESS || rv == APR_EINVAL, data, size);
    FUZZ_ASSERT(rv == APR_SUCCESS || err != NULL, data, size);
    FUZZ_ASSERT(rv != APR_SUCCESS || (st.state && st.verifier && st.nonce && st.appid), data, size);

    plaintext_round_trip(p, s, data, size);
    state_json(p, s, data, size);
    state_round_trip(p, s, data, size);

    fuzz_end();
    return 0;
}
