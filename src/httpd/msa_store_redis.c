/*
 * MSAuthCache redis:host:port[,host:port...], through hiredis (Debian's
 * libhiredis): Apache's socache and apr-util's redis client have no atomic
 * "set if absent", and single use needs exactly that (SET ... NX PX).
 *
 * Each server is a shard of its own; a user's records and an epoch record
 * live on the shard of appid:sub, and a protected request reads the epoch
 * and the revocations with one MGET. Connections are pooled per child
 * (apr_reslist); a server that refused a connection is not tried again for
 * a second, so an outage answers 503 at once instead of after a timeout.
 */
#include <ap_mpm.h>
#include <apr_reslist.h>
#include <apr_strings.h>
#include <hiredis.h>

#include "msa_store.h"

#define EPOCH_KEY "msauth:epoch"

typedef struct shard {
    const char *host;
    int port;
    apr_reslist_t *conns;
    volatile apr_time_t dead_until;
} shard_t;

typedef struct rd {
    int n;
    shard_t *shards;
} rd_t;

static const char *redis_check(apr_pool_t *p, const char *arg)
{
    apr_array_header_t *hosts, *ports;
    return msa_store_servers(p, arg, 6379, &hosts, &ports);
}

static apr_status_t redis_create(msa_store_t *st, const char *arg, apr_pool_t *pconf,
                                 apr_pool_t *ptemp, server_rec *s)
{
    apr_array_header_t *hosts, *ports;
    const char *err = msa_store_servers(pconf, arg, 6379, &hosts, &ports);
    if (err != NULL) {
        MSA_SLOG(s, APLOG_CRIT, 0, "cache", "MSAuthCache %s: %s", st->spec, err);
        return APR_EGENERAL;
    }
    rd_t *d = apr_pcalloc(pconf, sizeof(*d));
    d->n = hosts->nelts;
    d->shards = apr_pcalloc(pconf, sizeof(*d->shards) * (apr_size_t)d->n);
    for (int i = 0; i < d->n; i++) {
        d->shards[i].host = APR_ARRAY_IDX(hosts, i, const char *);
        d->shards[i].port = APR_ARRAY_IDX(ports, i, int);
    }
    st->impl = d;
    return APR_SUCCESS;
}

static apr_status_t conn_make(void **res, void *params, apr_pool_t *pool)
{
    shard_t *sh = params;
    struct timeval connect = {1, 0}, io = {2, 0};
    redisContext *c = redisConnectWithTimeout(sh->host, sh->port, connect);
    if (c == NULL || c->err) {
        if (c != NULL) {
            redisFree(c);
        }
        return APR_ECONNREFUSED;
    }
    redisSetTimeout(c, io);
    *res = c;
    return APR_SUCCESS;
}

static apr_status_t conn_free(void *res, void *params, apr_pool_t *pool)
{
    redisFree(res);
    return APR_SUCCESS;
}

static void redis_child_init(msa_store_t *st, apr_pool_t *pchild, server_rec *s)
{
    rd_t *d = st->impl;
    int threads = 1;
    ap_mpm_query(AP_MPMQ_MAX_THREADS, &threads);
    if (threads < 1) {
        threads = 1;
    }
    for (int i = 0; i < d->n; i++) {
        /* Idle connections die after a second, so none outlives a redis restart for long. */
        apr_status_t rv =
            apr_reslist_create(&d->shards[i].conns, 0, threads, threads, apr_time_from_sec(1),
                               conn_make, conn_free, &d->shards[i], pchild);
        if (rv != APR_SUCCESS) {
            MSA_SLOG(s, APLOG_ERR, rv, "cache_error", "MSAuthCache %s: no connection pool",
                     st->spec);
            d->shards[i].conns = NULL;
        }
    }
}

/*
 * Runs one command on owner's shard: the reply, or NULL when the server
 * cannot be reached or broke the connection (which is then dropped).
 */
static redisReply *command(msa_store_t *st, const char *owner, int argc, const char **argv,
                           const size_t *lens)
{
    rd_t *d = st->impl;
    shard_t *sh = &d->shards[msa_store_shard(owner, d->n)];
    if (sh->conns == NULL || apr_time_now() < sh->dead_until) {
        return NULL;
    }
    void *res;
    if (apr_reslist_acquire(sh->conns, &res) != APR_SUCCESS) {
        sh->dead_until = apr_time_now() + apr_time_from_sec(1);
        return NULL;
    }
    redisContext *c = res;
    redisReply *reply = redisCommandArgv(c, argc, argv, lens);
    if (reply == NULL || c->err) {
        if (reply != NULL) {
            freeReplyObject(reply);
        }
        apr_reslist_invalidate(sh->conns, c);
        return NULL;
    }
    apr_reslist_release(sh->conns, c);
    return reply;
}

static int is_string(const redisReply *r)
{
    return r != NULL && r->type == REDIS_REPLY_STRING;
}

/* SET key val [NX] PX ms: APR_SUCCESS, APR_EEXIST (NX and present), or unreachable. */
static apr_status_t set(msa_store_t *st, request_rec *r, const char *owner, const char *key,
                        const char *val, apr_time_t expiry, int nx)
{
    const char *argv[6] = {"SET", key, val};
    size_t lens[6] = {3, strlen(key), strlen(val)};
    int argc = 3;
    char ms[32];
    if (nx) {
        argv[argc] = "NX";
        lens[argc++] = 2;
    }
    if (expiry != 0) {
        apr_int64_t left = apr_time_as_msec(expiry - apr_time_now());
        apr_snprintf(ms, sizeof(ms), "%" APR_INT64_T_FMT, left > 0 ? left : 1);
        argv[argc] = "PX";
        lens[argc++] = 2;
        argv[argc] = ms;
        lens[argc++] = strlen(ms);
    }
    redisReply *reply = command(st, owner, argc, argv, lens);
    if (reply == NULL) {
        return APR_ECONNREFUSED;
    }
    apr_status_t rv = reply->type == REDIS_REPLY_STATUS && strcasecmp(reply->str, "OK") == 0
                          ? APR_SUCCESS
                      : reply->type == REDIS_REPLY_NIL && nx ? APR_EEXIST
                                                             : APR_EGENERAL;
    if (rv == APR_EGENERAL && reply->type == REDIS_REPLY_ERROR) {
        /* e.g. OOM with maxmemory-policy noeviction: said once per failure, never the value. */
        MSA_RLOG(r, APLOG_ERR, "cache_error", "MSAuthCache %s refused a write: %.200s", st->spec,
                 reply->str);
    }
    freeReplyObject(reply);
    return rv;
}

/* The epoch of owner's shard, begun when missing. */
static apr_status_t epoch_of(msa_store_t *st, request_rec *r, const char *owner, char *epoch)
{
    char fresh[MSA_EPOCH_LEN + 1];
    apr_status_t rv = msa_store_new_epoch(fresh);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    rv = set(st, r, owner, EPOCH_KEY, fresh, 0, 1);
    if (rv == APR_SUCCESS) {
        memcpy(epoch, fresh, sizeof(fresh));
        msa_store_epoch_changed(r->server, st->spec,
                                "has no epoch record (restarted, flushed or evicting)");
        return APR_SUCCESS;
    }
    if (rv != APR_EEXIST) {
        return rv;
    }
    const char *argv[] = {"GET", EPOCH_KEY};
    size_t lens[] = {3, sizeof(EPOCH_KEY) - 1};
    redisReply *reply = command(st, owner, 2, argv, lens);
    rv = is_string(reply) && reply->len == MSA_EPOCH_LEN ? APR_SUCCESS : APR_EGENERAL;
    if (rv == APR_SUCCESS) {
        memcpy(epoch, reply->str, MSA_EPOCH_LEN);
        epoch[MSA_EPOCH_LEN] = '\0';
    }
    if (reply != NULL) {
        freeReplyObject(reply);
    }
    return reply == NULL ? APR_ECONNREFUSED : rv;
}

static apr_status_t redis_lookup(msa_store_t *st, request_rec *r, const char *owner, int n,
                                 const char *const *kinds, const char *const *ids, char **vals,
                                 char *epoch)
{
    const char *argv[10];
    size_t lens[10];
    if (n > 8) {
        return APR_EINVAL;
    }
    argv[0] = "MGET";
    lens[0] = 4;
    for (int i = 0; i < n; i++) {
        argv[i + 1] = msa_store_text_key(r->pool, kinds[i], ids[i]);
        lens[i + 1] = strlen(argv[i + 1]);
    }
    argv[n + 1] = EPOCH_KEY;
    lens[n + 1] = sizeof(EPOCH_KEY) - 1;
    redisReply *reply = command(st, owner, n + 2, argv, lens);
    if (reply == NULL) {
        return APR_ECONNREFUSED;
    }
    apr_status_t rv = APR_SUCCESS;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != (size_t)n + 1) {
        rv = APR_EGENERAL;
    }
    for (int i = 0; rv == APR_SUCCESS && i < n; i++) {
        const redisReply *e = reply->element[i];
        vals[i] = is_string(e) ? apr_pstrmemdup(r->pool, e->str, e->len) : NULL;
        if (!is_string(e) && e->type != REDIS_REPLY_NIL) {
            rv = APR_EGENERAL;
        }
    }
    int have_epoch = 0;
    if (rv == APR_SUCCESS) {
        const redisReply *e = reply->element[n];
        have_epoch = is_string(e) && e->len == MSA_EPOCH_LEN;
        if (have_epoch) {
            memcpy(epoch, e->str, MSA_EPOCH_LEN);
            epoch[MSA_EPOCH_LEN] = '\0';
        } else if (e->type != REDIS_REPLY_NIL) {
            rv = APR_EGENERAL;
        }
    }
    freeReplyObject(reply);
    if (rv != APR_SUCCESS || have_epoch) {
        return rv;
    }
    /* No epoch: the store is empty. Redis answered for the records, which are absent. */
    return epoch_of(st, r, owner, epoch);
}

static apr_status_t redis_epoch(msa_store_t *st, request_rec *r, const char *owner, char *epoch)
{
    return redis_lookup(st, r, owner, 0, NULL, NULL, NULL, epoch);
}

static apr_status_t redis_get(msa_store_t *st, request_rec *r, msa_class_t cls, const char *owner,
                              const char *kind, const char *id, apr_size_t max, char **val)
{
    const char *key = msa_store_text_key(r->pool, kind, id);
    const char *argv[] = {"GET", key};
    size_t lens[] = {3, strlen(key)};
    redisReply *reply = command(st, owner, 2, argv, lens);
    if (reply == NULL) {
        return APR_ECONNREFUSED;
    }
    apr_status_t rv = reply->type == REDIS_REPLY_NIL ? APR_NOTFOUND
                      : !is_string(reply)            ? APR_EGENERAL
                      : reply->len > max             ? APR_ENOSPC
                                                     : APR_SUCCESS;
    if (rv == APR_SUCCESS) {
        *val = apr_pstrmemdup(r->pool, reply->str, reply->len);
    }
    freeReplyObject(reply);
    return rv;
}

static apr_status_t redis_put(msa_store_t *st, request_rec *r, msa_class_t cls, const char *owner,
                              const char *kind, const char *id, const char *val, apr_time_t expiry)
{
    return set(st, r, owner, msa_store_text_key(r->pool, kind, id), val, expiry, 0);
}

static apr_status_t redis_add(msa_store_t *st, request_rec *r, msa_class_t cls, const char *owner,
                              const char *kind, const char *id, apr_time_t expiry)
{
    return set(st, r, owner, msa_store_text_key(r->pool, kind, id), "1", expiry, 1);
}

const msa_store_ops_t msa_store_redis = {
    .name = "redis",
    .check = redis_check,
    .create = redis_create,
    .child_init = redis_child_init,
    .get = redis_get,
    .put = redis_put,
    .add = redis_add,
    .lookup = redis_lookup,
    .epoch = redis_epoch,
};
