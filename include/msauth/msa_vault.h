/*
 * The user's Microsoft tokens as the module keeps them server-side
 * (MSAuthPassTokens): one record per session, sealed with AES-256-GCM under a
 * key derived (HKDF-SHA256) from the app's MSAuthSecretKey, bound to the
 * session it belongs to, so a record copied to another session does not open.
 */
#ifndef MSA_VAULT_H
#define MSA_VAULT_H

#include "msa_core.h"
#include "msa_jose.h"

/* What a record holds; every string may be NULL but access_token. */
typedef struct msa_vault_tokens {
    const char *access_token;
    const char *id_token;
    const char *refresh_token;
    apr_int64_t expires_on; /* epoch seconds: when the access token expires */
    apr_int64_t obtained;   /* epoch seconds: when Microsoft issued it */
} msa_vault_tokens_t;

/* The HKDF info of the record key: no other key of the module is derived under it. */
#define MSA_VAULT_KEY_INFO "msauth microsoft-token record v1"

/*
 * Seals t under secret, bound to binding (the session's appid and jti: the
 * GCM additional data): "v1.<base64url(iv | ciphertext | tag)>".
 */
apr_status_t msa_vault_seal(apr_pool_t *p, const msa_key_t *secret, const char *binding,
                            const msa_vault_tokens_t *t, char **record, const char **err);

/*
 * Opens a record sealed by any of keys[0..nkeys) for binding: APR_SUCCESS
 * with *t; APR_EINVAL when it is malformed, sealed for another session or
 * with another key (err says which, never what it holds).
 */
apr_status_t msa_vault_open(apr_pool_t *p, const msa_key_t *keys, int nkeys, const char *binding,
                            const char *record, msa_vault_tokens_t *t, const char **err);

/*
 * When the access token should be refreshed: ahead of its expiry by a
 * quarter of its lifetime, at most five minutes (a one-hour token at 55
 * minutes, a 30-second one at 22 seconds).
 */
apr_int64_t msa_vault_refresh_at(const msa_vault_tokens_t *t);

/* "2026-12-02T10:21:47.0000000Z": how Easy Auth writes X-MS-TOKEN-AAD-EXPIRES-ON. */
const char *msa_vault_iso_time(apr_pool_t *p, apr_int64_t epoch);

/*
 * Easy Auth's /.auth/me entry for the provider, without any token:
 * [{"provider_name":"aad","user_id":<user>,"expires_on":<ISO time>}], JSON
 * whatever user holds.
 */
char *msa_vault_me_json(apr_pool_t *p, const char *user, apr_int64_t expires_on);

#endif
