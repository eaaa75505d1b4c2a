/* Shared state (MSAuthCache), kept by record kind; see msa_store.h. */
#ifndef MSA_CACHE_H
#define MSA_CACHE_H

#include "msa_module.h"

#define MSA_CACHE_MUTEX "msauth-cache"
typedef struct msa_cache msa_cache_t;
typedef enum msa_rec {
    MSA_REC_STATE,    /* a spent login state (transient) */
    MSA_REC_CODE,     /* a spent authorization code (transient) */
    MSA_REC_JWKS,     /* a JWKS document (bulk: losing it costs a fetch) */
    MSA_REC_SPENT_ID, /* a spent ID token's jti (durable) */
    MSA_REC_REVOKED,  /* a revoked session token's jti (durable) */
    MSA_REC_USER_NBF, /* appid:sub -> the time up to which its tokens are dead (durable) */
    MSA_REC_GROUPS,   /* a session's groups that did not fit in the cookie (durable, bulk) */
    /* sid/<slot> -> "<exp> <owner>": whose tokens a Microsoft session has (durable) */
    MSA_REC_SID_OWNER,
    /* a Microsoft session signed out (id: its sid): its tokens are dead (durable) */
    MSA_REC_REVOKED_SID,
    /* a session's Microsoft tokens, sealed (msa_vault.h; bulk: large, losing it costs a login) */
    MSA_REC_MS_TOKENS,
    /* jti/<generation>: one refresh of a session's Microsoft tokens is under way (transient) */
    MSA_REC_REFRESHING,
    /*
     * <user or sid>/<slot> -> "<exp> <owner> <jti>": a session whose Microsoft tokens are kept,
     * where a revocation finds its record (bulk, like the records)
     */
    MSA_REC_MS_INDEX,
    /* <slot>/<jti>: that slot's entry for jti is being replaced (durable) */
    MSA_REC_MS_INDEX_TAKEN,
} msa_rec_t;
int msa_cache_pre_config(apr_pool_t *pconf);
/* MSAuthCache's value: an error message (for the directive) or NULL. */
const char *msa_cache_check_spec(apr_pool_t *p, const char *spec);
/* The whole store setting of srv, once every module is loaded. */
const char *msa_cache_check(apr_pool_t *p, const msa_srv_t *srv);
apr_status_t msa_cache_post_config(apr_pool_t *pconf, apr_pool_t *ptemp, server_rec *s);
void msa_cache_child_init(apr_pool_t *p, server_rec *s);
/* The owner of a user's records (where sharded stores keep them): "appid:sub". */
const char *msa_cache_owner(apr_pool_t *p, const char *appid, const char *sub);
/*
 * APR_NOTFOUND when absent; any other failure means the cache cannot answer. Values of at
 * most max bytes (64 KiB at most) are read. owner places the record (msa_cache_owner for a
 * user's records, the id itself otherwise).
 */
apr_status_t msa_cache_get(request_rec *r, const msa_srv_t *srv, msa_rec_t rec, const char *owner,
                           const char *id, apr_size_t max, char **val);
apr_status_t msa_cache_put(request_rec *r, const msa_srv_t *srv, msa_rec_t rec, const char *owner,
                           const char *id, const char *val, apr_time_t expiry);
/*
 * Records id once, atomically on every server sharing the cache: APR_SUCCESS for exactly
 * one caller, APR_EEXIST for every other; other failures: the cache cannot answer.
 */
apr_status_t msa_cache_claim(request_rec *r, const msa_srv_t *srv, msa_rec_t rec, const char *owner,
                             const char *id, apr_time_t expiry);
/* The same with a value of the caller's (NULL: "1"; in the local store's tables a number). */
apr_status_t msa_cache_add(request_rec *r, const msa_srv_t *srv, msa_rec_t rec, const char *owner,
                           const char *id, const char *val, apr_time_t expiry);
/* The epoch tokens of owner are issued in now (created when the store has none). */
apr_status_t msa_cache_epoch(request_rec *r, const msa_srv_t *srv, const char *owner,
                             const char **epoch);
/* The epoch spent login states are kept in (a login state carries it, state = its owner). */
apr_status_t msa_cache_state_epoch(request_rec *r, const msa_srv_t *srv, const char *state,
                                   const char **epoch);
typedef enum msa_verdict {
    MSA_TOKEN_LIVE,    /* not revoked, in the store's epoch */
    MSA_TOKEN_REVOKED, /* its jti, or every token of its user up to its iat */
    MSA_TOKEN_STALE,   /* issued before the store's epoch: the store may have lost its records */
    MSA_TOKEN_UNKNOWN, /* the store cannot answer */
} msa_verdict_t;
/*
 * The revocation check of every protected request: one lock or one round trip,
 * none when memo (the token's, from msa_token_verify_memo; may be NULL) holds a
 * live verdict whose stamp still holds (see msa_cache.c).
 */
msa_verdict_t msa_cache_token_verdict(request_rec *r, const msa_srv_t *srv, const msa_token_t *t,
                                      const msa_token_memo_t *memo);
/*
 * A session of owner issued in the Microsoft session sid, alive until exp
 * (epoch seconds): recorded where a front-channel logout, which knows only
 * the sid, finds it. *sid_epoch: in a store of several shards whose shard of
 * the sid is not owner's, that shard's epoch, which the token must carry (its
 * verdict then asks that shard too: losing the record of who holds a sid
 * must not put those sessions out of reach of the sign-out); else NULL.
 * APR_SUCCESS, else the store cannot answer.
 */
apr_status_t msa_cache_sid_record(request_rec *r, const msa_srv_t *srv, const char *sid,
                                  const char *owner, apr_int64_t exp, const char **sid_epoch);
/*
 * Microsoft signed the session sid out: every token recorded for it dies, on
 * every server sharing the store. *ended is how many users' records were
 * written (0 for a sid the store does not know). APR_SUCCESS, else the store
 * cannot answer (and nothing may have been revoked).
 */
apr_status_t msa_cache_sid_revoke(request_rec *r, const msa_srv_t *srv, const char *sid,
                                  int *ended);

#endif
