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
#include <apr_thread_mutex.h>
#include <apr_strings.h>
#include <hiredis.h>

#include "msa_store.h"

#define EPOCH_KEY "msauth:epoch"

typedef struct shard {
    const char *host;
    int port;
    apr_reslist_t *conns;
    volatile apr_time_t dead_until;
    apr_thread_mutex_t *lock; /* for what connections learn of the server: */
    char run_id[48];          /* its run id (a new one after every restart or failover) */
    char evicts[96];          /* why it is refused: it may evict records ("" when it may not) */
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
    apr_status_t rv = msa_store_servers_of(st, arg, 6379, pconf, s, &hosts, &ports);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    rd_t *d = apr_pcalloc(pconf, sizeof(*d));
    d->n = hosts->nelts;
    d->shards = apr_pcalloc(pconf, sizeof(*d->shards) * (apr_size_t)d->n);
    for (int i = 0; i < d->n; i++) {
        d->shards[i].host = APR_ARRAY_IDX(hosts, i, const char *);
        d->shards[i].port = APR_ARRAY_IDX(ports, i, int);
    }
    st->impl = d;
    st->shards = d->n;
    return APR_SUCCESS;
}

/* The value of "name:" in an INFO answer, into out (empty when absent). */
static void info_field(const char *info, const char *name, char *out, size_t n)
{
    size_t len = strlen(name);
    out[0] = '\0';
    for (const char *l = info; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        if (strncmp(l, name, len) == 0 && l[len] == ':') {
            size_t v = strcspn(l + len + 1, "\r\n");
            if (v >= n) {
                v = n - 1;
            }
            memcpy(out, l + len + 1, v);
            out[v] = '\0';
            return;
        }
    }
}

/*
 * A new connection asks the server who it is and whether it may evict: a
 * redis that may drop a revocation to make room cannot vouch for "not
 * revoked", so it is refused (503) until it is set to noeviction.
 */
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
    redisReply *info = redisCommand(c, "INFO");
    if (info == NULL || info->type != REDIS_REPLY_STRING) {
        if (info != NULL) {
            freeReplyObject(info);
        }
        redisFree(c);
        return APR_EGENERAL;
    }
    char run_id[48], maxmemory[32], policy[48];
    info_field(info->str, "run_id", run_id, sizeof(run_id));
    info_field(info->str, "maxmemory", maxmemory, sizeof(maxmemory));
    info_field(info->str, "maxmemory_policy", policy, sizeof(policy));
    freeReplyObject(info);
    int evicts = maxmemory[0] && strcmp(maxmemory, "0") != 0 && strcmp(policy, "noeviction") != 0;
    apr_thread_mutex_lock(sh->lock);
    apr_cpystrn(sh->run_id, run_id, sizeof(sh->run_id));
    if (evicts) {
        apr_snprintf(sh->evicts, sizeof(sh->evicts), "maxmemory %s with maxmemory-policy %s",
                     maxmemory, policy);
    } else {
        sh->evicts[0] = '\0';
    }
    apr_thread_mutex_unlock(sh->lock);
    if (evicts || run_id[0] == '\0') {
        redisFree(c);
        return APR_EGENERAL;
    }
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
    int threads = msa_store_threads();
    for (int i = 0; i < d->n; i++) {
        apr_thread_mutex_create(&d->shards[i].lock, APR_THREAD_MUTEX_DEFAULT, pchild);
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
static redisReply *command(msa_store_t *st, request_rec *r, const char *owner, int argc,
                           const char **argv, const size_t *lens)
{
    rd_t *d = st->impl;
    shard_t *sh = &d->shards[msa_store_shard(owner, d->n)];
    if (sh->conns == NULL || apr_time_now() < sh->dead_until) {
        return NULL;
    }
    void *res;
    if (apr_reslist_acquire(sh->conns, &res) != APR_SUCCESS) {
        sh->dead_until = apr_time_now() + apr_time_from_sec(1);
        char why[96];
        apr_thread_mutex_lock(sh->lock);
        apr_cpystrn(why, sh->evicts, sizeof(why));
        apr_thread_mutex_unlock(sh->lock);
        if (why[0]) {
            MSA_RLOG(r, APLOG_ERR, "cache_error",
                     "MSAuthCache %s: %s:%d may evict records (%s), so it cannot vouch for a "
                     "revocation: refused until it is set to maxmemory-policy noeviction",
                     st->spec, sh->host, sh->port, why);
        }
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
    redisReply *reply = command(st, r, owner, argc, argv, lens);
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

/*
 * The epoch record is "<epoch>@<run id of the server when it began>". A redis
 * restarted from a snapshot, or a replica promoted in its place, has the
 * record but maybe not the writes after it: its run id tells, and the epoch
 * begins again.
 */
static shard_t *shard_of(msa_store_t *st, const char *owner)
{
    rd_t *d = st->impl;
    return &d->shards[msa_store_shard(owner, d->n)];
}

static void run_id_of(shard_t *sh, char *out, size_t n)
{
    apr_thread_mutex_lock(sh->lock);
    apr_cpystrn(out, sh->run_id, n);
    apr_thread_mutex_unlock(sh->lock);
}

/* The epoch in a record written by this very server run, else 0. */
static int epoch_in(const char *v, size_t len, const char *run_id, char *epoch)
{
    if (len != MSA_EPOCH_LEN + 1 + strlen(run_id) || v[MSA_EPOCH_LEN] != '@' ||
        memcmp(v + MSA_EPOCH_LEN + 1, run_id, len - MSA_EPOCH_LEN - 1) != 0) {
        return 0;
    }
    memcpy(epoch, v, MSA_EPOCH_LEN);
    epoch[MSA_EPOCH_LEN] = '\0';
    return 1;
}

/* Replaces the record old (NULL: none) by a fresh epoch of this run, unless someone did. */
static apr_status_t renew_epoch(msa_store_t *st, request_rec *r, const char *owner, const char *old,
                                char *epoch)
{
    static const char script[] = "local v = redis.call('GET', KEYS[1]) "
                                 "if (v == false and ARGV[1] == '') or v == ARGV[1] then "
                                 "redis.call('SET', KEYS[1], ARGV[2]) return ARGV[2] end return v";
    char run_id[48], fresh[MSA_EPOCH_LEN + 1];
    run_id_of(shard_of(st, owner), run_id, sizeof(run_id));
    apr_status_t rv = msa_store_new_epoch(fresh);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    const char *value = apr_pstrcat(r->pool, fresh, "@", run_id, NULL);
    const char *argv[] = {"EVAL", script, "1", EPOCH_KEY, old ? old : "", value};
    size_t lens[6];
    for (int i = 0; i < 6; i++) {
        lens[i] = strlen(argv[i]);
    }
    redisReply *reply = command(st, r, owner, 6, argv, lens);
    if (reply == NULL) {
        return APR_ECONNREFUSED;
    }
    rv = is_string(reply) && epoch_in(reply->str, reply->len, run_id, epoch) ? APR_SUCCESS
                                                                             : APR_EGENERAL;
    if (rv == APR_SUCCESS && strcmp(reply->str, value) == 0) {
        msa_store_epoch_changed(r->server, st->spec,
                                old ? "was restarted or failed over since its epoch began (writes "
                                      "after its last snapshot may be lost)"
                                    : "has no epoch record (restarted empty or flushed)");
    }
    freeReplyObject(reply);
    return rv;
}

static apr_status_t redis_lookup(msa_store_t *st, request_rec *r, const char *owner, int n,
                                 const char *const *kinds, const char *const *ids, char **vals,
                                 char *epoch);

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
    redisReply *reply = command(st, r, owner, n + 2, argv, lens);
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
    char run_id[48];
    const char *old = NULL;
    int have_epoch = 0;
    run_id_of(shard_of(st, owner), run_id, sizeof(run_id));
    if (rv == APR_SUCCESS) {
        const redisReply *e = reply->element[n];
        if (is_string(e)) {
            have_epoch = epoch_in(e->str, e->len, run_id, epoch);
            old = have_epoch ? NULL : apr_pstrmemdup(r->pool, e->str, e->len);
        } else if (e->type != REDIS_REPLY_NIL) {
            rv = APR_EGENERAL;
        }
    }
    freeReplyObject(reply);
    if (rv != APR_SUCCESS || have_epoch) {
        return rv;
    }
    /*
     * No epoch of this server run: it is empty, or it restarted from an older state. What
     * it answered for the records may be incomplete; tokens of the old epoch are refused.
     */
    return renew_epoch(st, r, owner, old, epoch);
}

static apr_status_t redis_epoch(msa_store_t *st, request_rec *r, msa_class_t cls, const char *owner,
                                char *epoch)
{
    return redis_lookup(st, r, owner, 0, NULL, NULL, NULL, epoch);
}

static apr_status_t redis_get(msa_store_t *st, request_rec *r, msa_class_t cls, const char *owner,
                              const char *kind, const char *id, apr_size_t max, char **val)
{
    const char *key = msa_store_text_key(r->pool, kind, id);
    const char *argv[] = {"GET", key};
    size_t lens[] = {3, strlen(key)};
    redisReply *reply = command(st, r, owner, 2, argv, lens);
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
                              const char *kind, const char *id, const char *val, apr_time_t expiry)
{
    return set(st, r, owner, msa_store_text_key(r->pool, kind, id), val ? val : "1", expiry, 1);
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
