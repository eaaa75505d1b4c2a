/* Login state: the state value, PKCE, nonce and the encrypted state cookie. */
#include <string.h>

#include <apr_lib.h>
#include <apr_strings.h>
#include <json-c/json.h>
#include <openssl/sha.h>

#include "msa_jose.h"
#include "msa_json.h"
#include "msa_state.h"

#define STATE_KEY_INFO "mod_msauth state cookie v1"

static int appid_char(char c)
{
    return apr_isalnum(c) || c == '.' || c == '_' || c == '~' || c == '-';
}

int msa_appid_valid(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++) {
        if (!appid_char(s[n]) || n >= 64) {
            return 0;
        }
    }
    return n > 0;
}

apr_status_t msa_state_parse(apr_pool_t *p, const char *state, msa_state_ref_t *out)
{
    memset(out, 0, sizeof(*out));
    out->appid = "";
    if (state == NULL) {
        out->client_built = 1;
        return APR_SUCCESS;
    }
    size_t len = strlen(state);
    if (len > MSA_MAX_STATE) {
        return APR_EINVAL;
    }
    const char *bar = strchr(state, '|');
    size_t alen = bar ? (size_t)(bar - state) : len;
    for (size_t i = 0; i < alen; i++) {
        if (!appid_char(state[i])) {
            return APR_EINVAL;
        }
    }
    if (alen > 64) {
        return APR_EINVAL;
    }
    out->appid = apr_pstrmemdup(p, state, alen);
    if (bar == NULL) {
        out->client_built = 1;
        return APR_SUCCESS;
    }
    const char *r = bar + 1;
    int digits = *r != '\0';
    for (const char *c = r; *c; c++) {
        if (!(apr_isalnum(*c) || *c == '-' || *c == '_')) {
            return APR_EINVAL;
        }
        digits = digits && apr_isdigit(*c);
    }
    if (*r == '\0') {
        return APR_EINVAL;
    }
    out->random = apr_pstrdup(p, r);
    /* "<appid>|<digits>" is Para's host-alias form: still built by the client. */
    out->client_built = digits;
    return APR_SUCCESS;
}

apr_status_t msa_login_state_new(apr_pool_t *p, const char *appid, const char *return_to,
                                 apr_int64_t now, msa_login_state_t *out)
{
    const char *rnd = msa_random_b64url(p, 18);
    out->verifier = msa_random_b64url(p, 32);
    out->nonce = msa_random_b64url(p, 18);
    if (rnd == NULL || out->verifier == NULL || out->nonce == NULL) {
        return APR_EGENERAL;
    }
    out->state = apr_pstrcat(p, appid ? appid : "", "|", rnd, NULL);
    out->appid = appid ? appid : "";
    out->return_to = return_to;
    out->created = now;
    out->epoch = NULL;
    return APR_SUCCESS;
}

static apr_status_t state_key(const unsigned char *secret, apr_size_t secret_len,
                              unsigned char key[32])
{
    msa_key_t k = {secret, secret_len};
    return msa_hkdf_sha256(&k, STATE_KEY_INFO, key, 32);
}

apr_status_t msa_login_state_seal(apr_pool_t *p, const msa_login_state_t *s,
                                  const unsigned char *secret, apr_size_t secret_len, char **cookie,
                                  const char **err)
{
    unsigned char key[32];
    if (state_key(secret, secret_len, key) != APR_SUCCESS) {
        *err = "state key derivation failed";
        return APR_EGENERAL;
    }
    json_object *o = json_object_new_object();
    json_object_object_add(o, "s", json_object_new_string(s->state));
    json_object_object_add(o, "v", json_object_new_string(s->verifier));
    json_object_object_add(o, "n", json_object_new_string(s->nonce));
    json_object_object_add(o, "a", json_object_new_string(s->appid));
    if (s->return_to != NULL) {
        json_object_object_add(o, "r", json_object_new_string(s->return_to));
    }
    json_object_object_add(o, "t", json_object_new_int64(s->created));
    if (s->epoch != NULL) {
        json_object_object_add(o, "e", json_object_new_string(s->epoch));
    }
    apr_status_t rv = msa_jwe_seal(
        p, key, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN), cookie, err);
    json_object_put(o);
    return rv;
}

static const char *get_string(apr_pool_t *p, json_object *o, const char *name, int required,
                              int *bad)
{
    const char *s = NULL;
    if (msa_json_string(p, o, name, &s) != APR_SUCCESS || (s == NULL && required)) {
        *bad = 1;
    }
    return s;
}

apr_status_t msa_login_state_open(apr_pool_t *p, const char *cookie, const unsigned char *secret,
                                  apr_size_t secret_len, msa_login_state_t *out, const char **err)
{
    unsigned char key[32];
    char *plain = NULL;
    if (state_key(secret, secret_len, key) != APR_SUCCESS) {
        *err = "state key derivation failed";
        return APR_EGENERAL;
    }
    apr_status_t rv = msa_jwe_open(p, key, cookie, &plain, err);
    if (rv != APR_SUCCESS) {
        return APR_EINVAL;
    }
    json_object *o = msa_json_parse_object(p, plain, strlen(plain));
    int bad = 0;
    memset(out, 0, sizeof(*out));
    if (o == NULL) {
        *err = "state cookie is not a JSON object";
        return APR_EINVAL;
    }
    out->state = get_string(p, o, "s", 1, &bad);
    out->verifier = get_string(p, o, "v", 1, &bad);
    out->nonce = get_string(p, o, "n", 1, &bad);
    out->appid = get_string(p, o, "a", 1, &bad);
    out->return_to = get_string(p, o, "r", 0, &bad);
    out->epoch = get_string(p, o, "e", 0, &bad);
    if (!msa_json_int(o, "t", &out->created)) {
        bad = 1;
    }
    if (bad) {
        *err = "state cookie lacks a field";
        return APR_EINVAL;
    }
    return APR_SUCCESS;
}

char *msa_login_state_cookie_name(apr_pool_t *p, const char *state)
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)state, strlen(state), md);
    return apr_pstrcat(p, MSA_STATE_COOKIE_PREFIX, msa_b64url_encode(p, md, 9), NULL);
}
