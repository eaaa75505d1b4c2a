/*
 * The stores behind MSAuthCache (msa_cache.c is their front): shmcb (local
 * shared memory), memcache (apr_memcache) and redis (hiredis).
 *
 * Every store keeps three classes of record apart, so that no volume of one
 * class can push out another:
 *   transient  spent login states and codes: anyone can make them, so they
 *              never share room with durable records; login states carry the
 *              epoch they began in, so a spent one the store lost is refused;
 *   durable    revoked token ids, per-user not-before times, spent ID-token
 *              ids: they must outlive the token they speak for;
 *   bulk       group lists that did not fit in a cookie, JWKS documents (large).
 * and an epoch: a value the store keeps for as long as it keeps its durable
 * records. Tokens carry the epoch they were issued in; when the store loses
 * its state (restarted empty, flushed, full) the epoch changes and older
 * tokens are refused.
 *
 * Sharded stores (several servers) place a record by its owner (appid:sub
 * for a user's records), so one round trip answers every question about a
 * token, epoch included.
 */
#ifndef MSA_STORE_H
#define MSA_STORE_H

#include "msa_cache.h"

typedef enum msa_class { MSA_CLASS_TRANSIENT, MSA_CLASS_DURABLE, MSA_CLASS_BULK } msa_class_t;

#define MSA_EPOCH_LEN 16 /* hex digits */

typedef struct msa_store msa_store_t;

typedef struct msa_store_ops {
    const char *name;
    /* Checks the argument of MSAuthCache name:arg; an error message or NULL. */
    const char *(*check)(apr_pool_t *p, const char *arg);
    /* Creates the store in the parent; pconf lives for this generation. */
    apr_status_t (*create)(msa_store_t *st, const char *arg, apr_pool_t *pconf, apr_pool_t *ptemp,
                           server_rec *s);
    void (*child_init)(msa_store_t *st, apr_pool_t *pchild, server_rec *s);
    /* APR_NOTFOUND when absent; anything else but APR_SUCCESS: the store cannot answer. */
    apr_status_t (*get)(msa_store_t *st, request_rec *r, msa_class_t cls, const char *owner,
                        const char *kind, const char *id, apr_size_t max, char **val);
    apr_status_t (*put)(msa_store_t *st, request_rec *r, msa_class_t cls, const char *owner,
                        const char *kind, const char *id, const char *val, apr_time_t expiry);
    /*
     * Atomic: APR_SUCCESS for exactly one caller among all, APR_EEXIST for the others; the
     * record then holds val ("1" when NULL; a number in the local store's tables).
     */
    apr_status_t (*add)(msa_store_t *st, request_rec *r, msa_class_t cls, const char *owner,
                        const char *kind, const char *id, const char *val, apr_time_t expiry);
    /*
     * One lock or one round trip: the epoch of owner's shard (created when
     * missing) and n durable records (vals[i] NULL when absent). APR_SUCCESS
     * only when the answer is complete and authoritative.
     */
    apr_status_t (*lookup)(msa_store_t *st, request_rec *r, const char *owner, int n,
                           const char *const *kinds, const char *const *ids, char **vals,
                           char *epoch);
    /*
     * The epoch of owner's shard for records of class cls, created when missing (the local
     * store keeps spent states apart, with an epoch of their own).
     */
    apr_status_t (*epoch)(msa_store_t *st, request_rec *r, msa_class_t cls, const char *owner,
                          char *epoch);
} msa_store_ops_t;

struct msa_store {
    const char *spec; /* MSAuthCache as written */
    const msa_store_ops_t *ops;
    void *impl;
    unsigned ordinal;            /* 1, 2, ... in the order the stores were made */
    int shards;                  /* servers records are spread over (0 or 1: one) */
    struct msa_store_view *view; /* shared stores: what this process last read of each shard */
};

extern const msa_store_ops_t msa_store_shmcb;
extern const msa_store_ops_t msa_store_memcache;
extern const msa_store_ops_t msa_store_redis;

/* Shared by the stores (msa_cache.c). */
/* "msauth:<kind>:<id>", ids that are long or not plain replaced by a keyed digest. */
const char *msa_store_text_key(apr_pool_t *p, const char *kind, const char *id);
/* A fresh random epoch, MSA_EPOCH_LEN hex digits and a NUL. */
apr_status_t msa_store_new_epoch(char *epoch);
/* Which of n shards owns owner. */
int msa_store_shard(const char *owner, int n);
/* host:port[,host:port...] into arrays; an error message or NULL. */
const char *msa_store_servers(apr_pool_t *p, const char *arg, int default_port,
                              apr_array_header_t **hosts, apr_array_header_t **ports);
/* The same, for a store being made: APR_SUCCESS, or the reason logged and APR_EGENERAL. */
apr_status_t msa_store_servers_of(msa_store_t *st, const char *arg, int default_port, apr_pool_t *p,
                                  server_rec *s, apr_array_header_t **hosts,
                                  apr_array_header_t **ports);
/* Connections a child may want at once: its worker threads. */
int msa_store_threads(void);
/* Logged once per process and epoch: the store lost its state, a new epoch begins. */
void msa_store_epoch_changed(server_rec *s, const char *spec, const char *why);

#endif
