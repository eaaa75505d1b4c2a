/*
 * Writes the generated seeds of the fuzz corpora (files named gen-*) with the
 * library itself and the fixed keys of fuzz.h: session and ID tokens, RS256
 * id_tokens with their JWKS, JWEs and state cookies. The hand-written seeds
 * beside them are left alone.
 *
 *   gen_seeds <corpus-dir>       (scripts/fuzz --seeds runs it on test/fuzz/corpus)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_strings.h>

#include "msa_jose.h"
#include "msa_state.h"
#include "msa_token.h"

#include "fuzz.h"
#include "fuzz_rsa.h"

static apr_pool_t *pool;
static const char *root;

static void put(const char *target, const char *name, const char *text)
{
    const char *path = apr_pstrcat(pool, root, "/", target, "/gen-", name, NULL);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(text, 1, strlen(text), f) != strlen(text) || fclose(f) != 0) {
        fprintf(stderr, "gen_seeds: %s: %s\n", path, strerror(errno));
        exit(1);
    }
}

static void need(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "gen_seeds: %s failed\n", what);
        exit(1);
    }
}

static const msa_key_t key1 = {(const unsigned char *)FUZZ_HS_KEY1, sizeof(FUZZ_HS_KEY1) - 1};
static const msa_key_t key2 = {(const unsigned char *)FUZZ_HS_KEY2, sizeof(FUZZ_HS_KEY2) - 1};

static char *b64(const char *s)
{
    return msa_b64url_encode(pool, (const unsigned char *)s, strlen(s));
}

static char *sign(const msa_token_t *t, const msa_key_t *k)
{
    char *jwt;
    const char *err;
    need(msa_token_sign(pool, t, k, &jwt, &err) == APR_SUCCESS, "msa_token_sign");
    return jwt;
}

static void gen_jws(void)
{
    apr_array_header_t *groups = apr_array_make(pool, 2, sizeof(const char *));
    APR_ARRAY_PUSH(groups, const char *) = "b1c2d3e4-0000-4000-8000-00000000000a";
    APR_ARRAY_PUSH(groups, const char *) = "f0e1d2c3-0000-4000-8000-00000000000b";
    msa_identity_t who = {
        .id = "6c1f5a1e2d3b4c5d",
        .name = "Fuzz Tester",
        .email = "fuzz@example.com",
        .upn = "fuzz@example.onmicrosoft.com",
        .tid = "9188040d-6c67-4c5b-b112-36a304b66dad",
        .oid = "00000000-0000-0000-66f3-3332eca7ea81",
        .picture = "https://app.example.com/me/photo",
        .groups = groups,
    };
    msa_token_t t;
    need(msa_token_session(pool, &who, NULL, FUZZ_NOW, 3600, 300, &t) == APR_SUCCESS, "session");
    t.aud = FUZZ_AUD;
    put("jws", "session", sign(&t, &key1));
    put("jws", "session-previous-key", sign(&t, &key2));
    put("jws", "claims-session.json", msa_token_to_json(pool, &t));
    t.groups_cached = 1;
    t.groups = NULL;
    put("jws", "session-groups-cached", sign(&t, &key1));
    need(msa_token_session(pool, &who, "shop", FUZZ_NOW - 7200, 3600, 300, &t) == APR_SUCCESS,
         "session");
    put("jws", "session-expired-other-app", sign(&t, &key1));
    need(msa_token_id(pool, &who, NULL, FUZZ_NOW, 60, &t) == APR_SUCCESS, "id");
    t.aud = FUZZ_AUD;
    put("jws", "id", sign(&t, &key1));
    put("jws", "claims-id.json", msa_token_to_json(pool, &t));
    need(msa_token_id(pool, &who, NULL, FUZZ_NOW + 3600, 60, &t) == APR_SUCCESS, "id");
    put("jws", "id-not-yet-valid", sign(&t, &key1));

    /* Headers the verifier must refuse, with a real MAC or an empty one. */
    const char *payload = b64(msa_token_to_json(pool, &t));
    put("jws", "alg-none",
        apr_pstrcat(pool, b64("{\"alg\":\"none\",\"typ\":\"JWT\"}"), ".", payload, ".", NULL));
    put("jws", "alg-rs256",
        apr_pstrcat(pool, b64("{\"alg\":\"RS256\",\"kid\":\"" FUZZ_RSA_KID "\"}"), ".", payload,
                    ".AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", NULL));
    char *jwt = apr_pstrdup(pool, sign(&t, &key1));
    jwt[strlen(jwt) - 5] = jwt[strlen(jwt) - 5] == 'A' ? 'B' : 'A';
    put("jws", "bad-mac", jwt);
    jwt[strlen(jwt) - 10] = '\0';
    put("jws", "short-mac", jwt);
}

static void gen_jwks(void)
{
    const char *pub = fuzz_rsa_public_jwk(pool);
    const char *jwks = apr_pstrcat(pool, "{\"keys\":[", pub, "]}", NULL);
    /* Microsoft's shape: several keys, x5t/x5c/issuer beside n and e. */
    const char *ms_jwks = apr_pstrcat(
        pool,
        "{\"keys\":[{\"kty\":\"RSA\",\"use\":\"sig\",\"kid\":\"nOo3ZDrODXEK1jKWhXslHR_KXEg\","
        "\"x5t\":\"nOo3ZDrODXEK1jKWhXslHR_KXEg\",\"n\":"
        "\"oaLLT9hkcSj2tGfZsjbu7Xz1Krs0qEicXPmEsJKOBQHau"
        "ZsF2w\",\"e\":\"AQAB\",\"x5c\":["
        "\"MIIDBTCCAe2gAwIBAgIQN33ROaIJ6bJBWDCxtmJEbjANBgkqhkiG9w0B\"],"
        "\"issuer\":\"https://login.microsoftonline.com/{tenantid}/v2.0\"},",
        pub, "]}", NULL);
    const char *claims =
        "{\"aud\":\"cid-123\",\"iss\":\"https://login.microsoftonline.com/"
        "9188040d-6c67-4c5b-b112-36a304b66dad/v2.0\",\"iat\":1767225600,\"nbf\":1767225600,"
        "\"exp\":1767229200,\"name\":\"Fuzz "
        "Tester\",\"oid\":\"00000000-0000-0000-66f3-3332eca7ea81\","
        "\"preferred_username\":\"fuzz@example.com\",\"sub\":"
        "\"AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy7\","
        "\"tid\":\"9188040d-6c67-4c5b-b112-36a304b66dad\",\"nonce\":\"n-0S6_WzA2Mj\",\"ver\":\"2."
        "0\"}";
    const char *tok = fuzz_rs256_sign(pool, FUZZ_RSA_KID, claims);
    need(tok != NULL, "RS256 sign");
    put("jwks", "token-jwks", apr_pstrcat(pool, tok, "\n", jwks, NULL));
    put("jwks", "token-ms-jwks", apr_pstrcat(pool, tok, "\n", ms_jwks, NULL));
    put("jwks", "token-alone", tok);
    put("jwks", "unknown-kid",
        apr_pstrcat(pool, fuzz_rs256_sign(pool, "rotated-away", claims), "\n", jwks, NULL));
    put("jwks", "no-kid", apr_pstrcat(pool, fuzz_rs256_sign(pool, NULL, claims), "\n", jwks, NULL));
    put("jwks", "jwks-alone.json", jwks);
    put("jwks", "ms-jwks-alone.json", ms_jwks);
    put("jwks", "kid-not-rsa",
        apr_pstrcat(pool, tok,
                    "\n{\"keys\":[{\"kty\":\"EC\",\"kid\":\"" FUZZ_RSA_KID "\",\"crv\":"
                    "\"P-256\",\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
                    "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}]}",
                    NULL));
}

static void gen_jwe(void)
{
    unsigned char state_key[32];
    const unsigned char *jwe_key = (const unsigned char *)FUZZ_JWE_KEY;
    const unsigned char *secret = (const unsigned char *)FUZZ_STATE_KEY;
    const apr_size_t secret_len = sizeof(FUZZ_STATE_KEY) - 1;
    msa_key_t sk = {secret, secret_len};
    char *jwe;
    const char *err;

    need(msa_hkdf_sha256(&sk, FUZZ_STATE_INFO, state_key, 32) == APR_SUCCESS, "HKDF");
    need(msa_jwe_seal(pool, jwe_key, "hello, state", &jwe, &err) == APR_SUCCESS, "seal");
    put("jwe", "sealed-text", jwe);

    msa_login_state_t st;
    need(msa_login_state_new(pool, "shop", "/orders?id=42#top", FUZZ_NOW, &st) == APR_SUCCESS,
         "state");
    need(msa_login_state_seal(pool, &st, secret, secret_len, &jwe, &err) == APR_SUCCESS, "seal");
    put("jwe", "state-cookie", jwe);
    need(msa_login_state_new(pool, "", NULL, FUZZ_NOW, &st) == APR_SUCCESS, "state");
    need(msa_login_state_seal(pool, &st, secret, secret_len, &jwe, &err) == APR_SUCCESS, "seal");
    put("jwe", "state-cookie-root-app", jwe);
    /* The JSON inside a state cookie, for the seal-then-open path. */
    put("jwe", "state-json.json",
        apr_psprintf(pool,
                     "{\"s\":\"%s\",\"v\":\"%s\",\"n\":\"%s\",\"a\":\"shop\","
                     "\"r\":\"/orders?id=42#top\",\"t\":%" APR_INT64_T_FMT "}",
                     st.state, st.verifier, st.nonce, FUZZ_NOW));
    put("jwe", "state-json-no-t.json", "{\"s\":\"x|y\",\"v\":\"v\",\"n\":\"n\",\"a\":\"\"}");
    need(msa_jwe_seal(pool, state_key, "{\"s\":1}", &jwe, &err) == APR_SUCCESS, "seal");
    put("jwe", "state-cookie-bad-json", jwe);

    /* Headers that must be refused before decryption. */
    put("jwe", "alg-rsa-oaep",
        apr_pstrcat(pool, b64("{\"alg\":\"RSA-OAEP\",\"enc\":\"A256GCM\"}"),
                    "..AAAAAAAAAAAAAAAA.AAAA.AAAAAAAAAAAAAAAAAAAAAA", NULL));
    put("jwe", "enc-a128gcm",
        apr_pstrcat(pool, b64("{\"alg\":\"dir\",\"enc\":\"A128GCM\"}"),
                    "..AAAAAAAAAAAAAAAA.AAAA.AAAAAAAAAAAAAAAAAAAAAA", NULL));
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: gen_seeds <corpus-dir>\n");
        return 2;
    }
    root = argv[1];
    apr_initialize();
    apr_pool_create(&pool, NULL);
    gen_jws();
    gen_jwks();
    gen_jwe();
    apr_pool_destroy(pool);
    apr_terminate();
    return 0;
}
