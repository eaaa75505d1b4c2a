/*
 * The module's tokens (INTERFACE.md section 6): session tokens and the
 * short-lived ID tokens of Para's jwt=id, as claims sets and HS256 JWTs.
 */
#ifndef MSA_TOKEN_H
#define MSA_TOKEN_H

#include "msa_core.h"
#include "msa_jose.h"

#define MSA_USE_SESSION "session"
#define MSA_USE_ID      "id"
#define MSA_IDP         "microsoft"
#define MSA_ROOT_APPID  "default" /* the root app's appid in tokens and logs */

/* Who signed in, from Graph or a verified id_token. */
typedef struct msa_identity {
    const char *id; /* Graph id, else the id_token's oid */
    const char *name;
    const char *email;
    const char *upn;
    const char *tid; /* NULL when unknown (Graph-only login) */
    const char *oid; /* the id_token's oid, or a work account's Graph id */
    const char *picture;
    /*
     * The id_token's sid (optional claim): Microsoft's sign-in session, which
     * its front-channel logout names. NULL when Microsoft sent none.
     */
    const char *sid;
    /*
     * Which of email and upn Microsoft vouches for beyond the user's own tenant
     * ("email", "upn", "email upn"; NULL for neither): the id_token's xms_edov,
     * or a domain Graph lists as verified for the user's tenant.
     */
    const char *verified;
    apr_array_header_t *groups; /* const char *, may be NULL */
} msa_identity_t;

typedef struct msa_token {
    const char *sub;
    const char *identifier; /* "ms:<sub>" */
    const char *appid;
    const char *aud; /* the issuing app: "<client id>:<appid>@<host>:<port>" (msa_app_audience) */
    const char *idp;
    const char *name;
    const char *email;
    const char *upn;
    const char *tid;
    const char *oid;
    const char *picture;
    const char *verified; /* as in msa_identity_t */
    const char *sid;      /* as in msa_identity_t: the Microsoft session it came from */
    const char *jti;
    const char *token_use;
    const char *epoch;         /* the shared store's epoch at issue (MSAuthCache) */
    const char *sid_epoch;     /* with a sid in a store of several shards: the epoch of the sid's */
    apr_int64_t iat, nbf, exp; /* epoch seconds */
    apr_int64_t refresh;       /* epoch milliseconds, session tokens */
    apr_array_header_t *groups; /* const char *, may be NULL */
    int groups_cached;          /* the groups did not fit: they are in the cache under jti */
    /*
     * What is known to hold no control character (below 0x20, 0x7f), MSA_PLAIN_*: set by
     * the token memory for the claims it hands out, else 0 (not looked at).
     */
    int plain;
} msa_token_t;

#define MSA_PLAIN_CLAIMS 1 /* every string claim */
#define MSA_PLAIN_GROUPS 2 /* every group */

/* Fills a session token for ident: exp = now + timeout, refresh = (now + refresh_interval) ms. */
apr_status_t msa_token_session(apr_pool_t *p, const msa_identity_t *ident, const char *appid,
                               apr_int64_t now, apr_int64_t timeout, apr_int64_t refresh_interval,
                               msa_token_t *t);

/* Fills an ID token for ident: exp = now + ttl. */
apr_status_t msa_token_id(apr_pool_t *p, const msa_identity_t *ident, const char *appid,
                          apr_int64_t now, apr_int64_t ttl, msa_token_t *t);

/* The claims as JSON text (json-c); absent strings are left out. */
char *msa_token_to_json(apr_pool_t *p, const msa_token_t *t);

/* Parses claims JSON; APR_EINVAL when it is not an object or a claim has the wrong type. */
apr_status_t msa_token_from_json(apr_pool_t *p, const char *json, msa_token_t *t, const char **err);
/*
 * The same through json-c alone, without the fast scanner msa_token_from_json
 * tries first (for the differential fuzz target: both must agree).
 */
apr_status_t msa_token_claims_json(apr_pool_t *p, const char *json, msa_token_t *t,
                                   const char **err);

/* Signs t with key (HS256). */
apr_status_t msa_token_sign(apr_pool_t *p, const msa_token_t *t, const msa_key_t *key, char **jwt,
                            const char **err);

/*
 * Verifies jwt against keys (HS256) and checks: token_use = use, appid =
 * appid (when not NULL), aud = aud (when not NULL; a token without aud then
 * fails), iat/nbf not after now + skew, exp after now - skew,
 * sub and jti present. MSA_EEXPIRED for a time-window failure, APR_EINVAL
 * for anything else.
 */
apr_status_t msa_token_verify(apr_pool_t *p, const char *jwt, const msa_key_t *keys, int nkeys,
                              const char *use, const char *appid, const char *aud, apr_int64_t now,
                              apr_int64_t skew, msa_token_t *t, const char **err);

/*
 * The process's memory of tokens it verified: a browser sends the same session
 * token with every request, and neither its MAC nor its claims need to be
 * worked out again. A slot holds the token's text, a digest of the keys that
 * verified it and its parsed claims; a hit needs the same text (its MAC
 * compared in constant time) and the same keys, and hands back a copy of the
 * claims in the caller's pool. The checks of msa_token_verify that depend on
 * the request (use, appid, aud, times) run on every call. Shared by the
 * process's threads (a lock per group of slots); until msa_token_memory_init
 * every call verifies from scratch.
 */
apr_status_t msa_token_memory_init(apr_pool_t *p, unsigned slots);

/*
 * What a caller remembers about a token with it (e.g. when it last found the
 * token not revoked): the stamp it recorded, 0 for none, and where.
 */
typedef struct msa_token_memo {
    apr_uint64_t stamp;
    unsigned slot;
    apr_uint32_t version;
} msa_token_memo_t;

/* msa_token_verify through the memory; *memo tells what was recorded with the token. */
apr_status_t msa_token_verify_memo(apr_pool_t *p, const char *jwt, const msa_key_t *keys, int nkeys,
                                   const char *use, const char *appid, const char *aud,
                                   apr_int64_t now, apr_int64_t skew, msa_token_t *t,
                                   msa_token_memo_t *memo, const char **err);

/*
 * msa_token_verify_memo with the expected aud given as the concatenation of the
 * NULL-terminated list aud_parts (NULL: any aud), compared where the parts stand.
 */
apr_status_t msa_token_verify_memo_parts(apr_pool_t *p, const char *jwt, const msa_key_t *keys,
                                         int nkeys, const char *use, const char *appid,
                                         const char *const *aud_parts, apr_int64_t now,
                                         apr_int64_t skew, msa_token_t *t, msa_token_memo_t *memo,
                                         const char **err);

/* Records stamp with the token memo came from (nothing when its slot was reused since). */
void msa_token_memo_set(const msa_token_memo_t *memo, apr_uint64_t stamp);

#endif
