/*
 * Login state: the OAuth state value, PKCE and nonce, and the encrypted
 * state cookie that binds a module-initiated login to the browser.
 */
#ifndef MSA_STATE_H
#define MSA_STATE_H

#include "msa_core.h"

typedef struct msa_state_ref {
    const char *appid;  /* "" = root app */
    const char *random; /* after the first '|'; NULL when absent */
    int client_built;   /* no '|', or "|<digits>" (Para's host-alias form) */
} msa_state_ref_t;

/*
 * Splits a state value. APR_EINVAL when it is longer than MSA_MAX_STATE or
 * holds characters outside [A-Za-z0-9._~|-] (appid) / base64url (random).
 */
apr_status_t msa_state_parse(apr_pool_t *p, const char *state, msa_state_ref_t *out);

/* Whether s is a valid appid: 1..64 of [A-Za-z0-9._~-]. */
int msa_appid_valid(const char *s);

/* What the state cookie carries. */
typedef struct msa_login_state {
    const char *state;     /* the full state value sent to Microsoft */
    const char *verifier;  /* PKCE code_verifier */
    const char *nonce;     /* OIDC nonce */
    const char *return_to; /* NULL = the app's success URL */
    const char *appid;     /* "" = root app */
    apr_int64_t created;   /* epoch seconds */
    const char *epoch;     /* MSAuthCache's epoch for spent states when it began; may be NULL */
} msa_login_state_t;

/* A fresh login: random state suffix, verifier, nonce. APR_EGENERAL if the RNG fails. */
apr_status_t msa_login_state_new(apr_pool_t *p, const char *appid, const char *return_to,
                                 apr_int64_t now, msa_login_state_t *out);

/* The cookie value: JWE of the state's JSON under a key derived from secret. */
apr_status_t msa_login_state_seal(apr_pool_t *p, const msa_login_state_t *s,
                                  const unsigned char *secret, apr_size_t secret_len, char **cookie,
                                  const char **err);

/* Opens and parses a cookie value; APR_EINVAL when it does not decrypt or parse. */
apr_status_t msa_login_state_open(apr_pool_t *p, const char *cookie, const unsigned char *secret,
                                  apr_size_t secret_len, msa_login_state_t *out, const char **err);

/* What every state cookie's name starts with. */
#define MSA_STATE_COOKIE_PREFIX "msauth_state_"

/* The state cookie's name for one login: MSA_STATE_COOKIE_PREFIX + a short digest of the state. */
char *msa_login_state_cookie_name(apr_pool_t *p, const char *state);

#endif
