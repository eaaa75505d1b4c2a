/*
 * The sealed record of a session's Microsoft tokens (msa_vault.h): JSON,
 * AES-256-GCM with a random 96-bit IV, the session binding as additional
 * data. OpenSSL's EVP interface; the key is HKDF-SHA256 of MSAuthSecretKey
 * under its own label.
 */
#include <string.h>

#include <json-c/json.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <apr_strings.h>
#include <apr_time.h>

#include "msa_json.h"
#include "msa_vault.h"

#define IV_LEN     12
#define TAG_LEN    16
#define PREFIX     "v1."
#define MAX_RECORD (60 * 1024)

static apr_status_t record_key(const msa_key_t *secret, unsigned char key[32])
{
    return msa_hkdf_sha256(secret, MSA_VAULT_KEY_INFO, key, 32);
}

static void add_str(json_object *o, const char *name, const char *v)
{
    if (v != NULL) {
        json_object_object_add(o, name, json_object_new_string(v));
    }
}

/* AES-256-GCM one way or the other; 1 on success (for open: the tag matched). */
static int gcm(int enc, const unsigned char key[32], const unsigned char *iv, const char *aad,
               const unsigned char *in, int inlen, unsigned char *out, unsigned char *tag)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int n = 0,
        ok = c != NULL && EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) == 1 &&
             EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, IV_LEN, NULL) == 1 &&
             EVP_CipherInit_ex(c, NULL, NULL, key, iv, enc) == 1 &&
             EVP_CipherUpdate(c, NULL, &n, (const unsigned char *)aad, (int)strlen(aad)) == 1 &&
             EVP_CipherUpdate(c, out, &n, in, inlen) == 1;
    if (ok && !enc) {
        ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag) == 1;
    }
    if (ok) {
        ok = EVP_CipherFinal_ex(c, out + n, &n) == 1;
    }
    if (ok && enc) {
        ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag) == 1;
    }
    EVP_CIPHER_CTX_free(c);
    return ok;
}

apr_status_t msa_vault_seal(apr_pool_t *p, const msa_key_t *secret, const char *binding,
                            const msa_vault_tokens_t *t, char **record, const char **err)
{
    unsigned char key[32];
    if (t->access_token == NULL || binding == NULL) {
        *err = "no access token to keep";
        return APR_EINVAL;
    }
    json_object *o = json_object_new_object();
    add_str(o, "at", t->access_token);
    add_str(o, "it", t->id_token);
    add_str(o, "rt", t->refresh_token);
    json_object_object_add(o, "exp", json_object_new_int64(t->expires_on));
    json_object_object_add(o, "iat", json_object_new_int64(t->obtained));
    const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    apr_size_t len = strlen(text);
    if (len > MAX_RECORD) {
        json_object_put(o);
        *err = "the tokens are too big to keep";
        return MSA_ETOOBIG;
    }
    unsigned char *buf = apr_palloc(p, IV_LEN + len + TAG_LEN);
    apr_status_t rv = APR_EGENERAL;
    *err = "sealing failed";
    if (RAND_bytes(buf, IV_LEN) == 1 && record_key(secret, key) == APR_SUCCESS &&
        gcm(1, key, buf, binding, (const unsigned char *)text, (int)len, buf + IV_LEN,
            buf + IV_LEN + len)) {
        *record = apr_pstrcat(p, PREFIX, msa_b64url_encode(p, buf, IV_LEN + len + TAG_LEN), NULL);
        *err = NULL;
        rv = APR_SUCCESS;
    }
    OPENSSL_cleanse(key, sizeof(key));
    OPENSSL_cleanse((void *)text, len);
    json_object_put(o);
    return rv;
}

apr_status_t msa_vault_open(apr_pool_t *p, const msa_key_t *keys, int nkeys, const char *binding,
                            const char *record, msa_vault_tokens_t *t, const char **err)
{
    unsigned char *raw = NULL, key[32];
    apr_size_t rawlen = 0;
    memset(t, 0, sizeof(*t));
    if (record == NULL || strncmp(record, PREFIX, strlen(PREFIX)) != 0 ||
        strlen(record) > MAX_RECORD * 2 ||
        msa_b64url_decode(p, record + strlen(PREFIX), strlen(record) - strlen(PREFIX), &raw,
                          &rawlen) != APR_SUCCESS ||
        rawlen < IV_LEN + TAG_LEN + 2) {
        *err = "malformed token record";
        return APR_EINVAL;
    }
    int ctlen = (int)(rawlen - IV_LEN - TAG_LEN);
    unsigned char *plain = apr_palloc(p, (apr_size_t)ctlen + 1);
    int opened = 0;
    for (int i = 0; i < nkeys && !opened; i++) {
        opened = record_key(&keys[i], key) == APR_SUCCESS &&
                 gcm(0, key, raw, binding, raw + IV_LEN, ctlen, plain, raw + IV_LEN + ctlen);
        OPENSSL_cleanse(key, sizeof(key));
    }
    if (!opened) {
        *err = "token record does not open (another session's, or sealed with another key)";
        return APR_EINVAL;
    }
    plain[ctlen] = '\0';
    json_object *o = msa_json_parse_object(p, (const char *)plain, (apr_size_t)ctlen);
    OPENSSL_cleanse(plain, (apr_size_t)ctlen);
    if (o == NULL || msa_json_string(p, o, "at", &t->access_token) != APR_SUCCESS ||
        t->access_token == NULL || msa_json_string(p, o, "it", &t->id_token) != APR_SUCCESS ||
        msa_json_string(p, o, "rt", &t->refresh_token) != APR_SUCCESS ||
        !msa_json_int(o, "exp", &t->expires_on) || !msa_json_int(o, "iat", &t->obtained)) {
        memset(t, 0, sizeof(*t));
        *err = "token record holds no tokens";
        return APR_EINVAL;
    }
    return APR_SUCCESS;
}

apr_int64_t msa_vault_refresh_at(const msa_vault_tokens_t *t)
{
    apr_int64_t life = t->expires_on - t->obtained, ahead = life / 4;
    if (ahead > 300) {
        ahead = 300;
    }
    if (ahead < 0) {
        ahead = 0;
    }
    return t->expires_on - ahead;
}

const char *msa_vault_iso_time(apr_pool_t *p, apr_int64_t epoch)
{
    apr_time_exp_t x;
    apr_time_exp_gmt(&x, apr_time_from_sec(epoch));
    return apr_psprintf(p, "%04d-%02d-%02dT%02d:%02d:%02d.0000000Z", x.tm_year + 1900, x.tm_mon + 1,
                        x.tm_mday, x.tm_hour, x.tm_min, x.tm_sec);
}

char *msa_vault_me_json(apr_pool_t *p, const char *user, apr_int64_t expires_on)
{
    json_object *entry = json_object_new_object();
    json_object_object_add(entry, "provider_name", json_object_new_string("aad"));
    json_object_object_add(entry, "user_id", json_object_new_string(user ? user : ""));
    json_object_object_add(entry, "expires_on",
                           json_object_new_string(msa_vault_iso_time(p, expires_on)));
    json_object *list = json_object_new_array();
    json_object_array_add(list, entry);
    char *out = apr_pstrdup(p, json_object_to_json_string_ext(
                                   list, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(list);
    return out;
}
