/*
 * MSAuthCache memcache:host:port[,host:port...], through apr-util's own
 * memcached client rather than Apache's socache, which has no atomic add:
 * single use needs memcached's "add", which succeeds for exactly one client.
 *
 * Each server is a shard of its own (apr_memcache would move a dead server's
 * keys to a live one, where a revocation is simply absent): a user's records
 * and an epoch record live on the shard of appid:sub, and every protected
 * request asks that shard for the epoch and the revocations in one "get".
 * An answer counts only when the epoch came back with it: a dead server,
 * a timeout or an empty restarted memcached all show as a missing epoch.
 */
#include <ap_mpm.h>
#include <apr_memcache.h>
#include <apr_strings.h>

#include "msa_store.h"

#define EPOCH_KEY "msauth:epoch"

#define EVICTIONS_KEY "msauth:evictions"

typedef struct mc {
    apr_array_header_t *hosts, *ports;
    apr_memcache_t **shards;         /* per child */
    apr_memcache_server_t **servers; /* the one server of each shard */
    volatile apr_time_t *next_look;  /* when to look at a shard's eviction count again */
} mc_t;

static const char *memcache_check(apr_pool_t *p, const char *arg)
{
    apr_array_header_t *hosts, *ports;
    return msa_store_servers(p, arg, 11211, &hosts, &ports);
}

static apr_status_t memcache_create(msa_store_t *st, const char *arg, apr_pool_t *pconf,
                                    apr_pool_t *ptemp, server_rec *s)
{
    mc_t *m = apr_pcalloc(pconf, sizeof(*m));
    st->impl = m;
    apr_status_t rv = msa_store_servers_of(st, arg, 11211, pconf, s, &m->hosts, &m->ports);
    st->shards = rv == APR_SUCCESS ? m->hosts->nelts : 0;
    return rv;
}

static void memcache_child_init(msa_store_t *st, apr_pool_t *pchild, server_rec *s)
{
    mc_t *m = st->impl;
    int threads = msa_store_threads();
    m->shards = apr_pcalloc(pchild, sizeof(*m->shards) * (apr_size_t)m->hosts->nelts);
    m->servers = apr_pcalloc(pchild, sizeof(*m->servers) * (apr_size_t)m->hosts->nelts);
    m->next_look = apr_pcalloc(pchild, sizeof(*m->next_look) * (apr_size_t)m->hosts->nelts);
    for (int i = 0; i < m->hosts->nelts; i++) {
        apr_memcache_server_t *ms;
        apr_status_t rv = apr_memcache_create(pchild, 1, 0, &m->shards[i]);
        /* Idle connections die after a second, so none outlives a memcached restart for long. */
        if (rv == APR_SUCCESS) {
            rv = apr_memcache_server_create(pchild, APR_ARRAY_IDX(m->hosts, i, const char *),
                                            (apr_port_t)APR_ARRAY_IDX(m->ports, i, int), 0, threads,
                                            threads, apr_time_from_sec(1), &ms);
        }
        if (rv == APR_SUCCESS) {
            rv = apr_memcache_add_server(m->shards[i], ms);
            m->servers[i] = ms;
        }
        if (rv != APR_SUCCESS) {
            MSA_SLOG(s, APLOG_ERR, rv, "cache_error", "MSAuthCache %s: no client for %s", st->spec,
                     APR_ARRAY_IDX(m->hosts, i, const char *));
            m->shards[i] = NULL;
        }
    }
}

static apr_memcache_t *shard(mc_t *m, const char *owner)
{
    return m->shards ? m->shards[msa_store_shard(owner, m->hosts->nelts)] : NULL;
}

/*
 * A memcached that evicts (started without -M, or out of memory) may have
 * dropped a revocation, which nothing else would show. Once a second each
 * child compares the server's eviction count with the count the current
 * epoch began at; more evictions begin a new epoch: everyone signs in again.
 */
static void look_at_evictions(msa_store_t *st, request_rec *r, const char *owner)
{
    mc_t *m = st->impl;
    int i = msa_store_shard(owner, m->hosts->nelts);
    apr_time_t now = apr_time_now();
    if (m->servers[i] == NULL || now < m->next_look[i]) {
        return;
    }
    m->next_look[i] = now + apr_time_from_sec(1);
    apr_memcache_stats_t *stats;
    if (apr_memcache_stats(m->servers[i], r->pool, &stats) != APR_SUCCESS) {
        return; /* the lookup itself will tell */
    }
    char *val, count[32];
    apr_size_t len;
    apr_snprintf(count, sizeof(count), "%" APR_UINT64_T_FMT, stats->evictions);
    apr_status_t rv = apr_memcache_getp(m->shards[i], r->pool, EVICTIONS_KEY, &val, &len, NULL);
    if (rv == APR_NOTFOUND) {
        apr_memcache_add(m->shards[i], EVICTIONS_KEY, count, strlen(count), 0, 0);
        return;
    }
    if (rv != APR_SUCCESS || apr_atoi64(val) >= (apr_int64_t)stats->evictions) {
        return;
    }
    char fresh[MSA_EPOCH_LEN + 1];
    if (msa_store_new_epoch(fresh) != APR_SUCCESS ||
        apr_memcache_set(m->shards[i], EPOCH_KEY, fresh, MSA_EPOCH_LEN, 0, 0) != APR_SUCCESS) {
        return;
    }
    apr_memcache_set(m->shards[i], EVICTIONS_KEY, count, strlen(count), 0, 0);
    msa_store_epoch_changed(
        r->server, st->spec,
        apr_psprintf(r->pool,
                     "evicted records (%s evictions, %s when the epoch began: run memcached "
                     "with -M and more -m)",
                     count, val));
}

/* memcached's exptime: seconds from now up to 30 days, a Unix time beyond; 0 for never. */
static apr_uint32_t exptime(apr_time_t expiry)
{
    if (expiry == 0) {
        return 0; /* never */
    }
    apr_int64_t at = apr_time_sec(expiry + APR_USEC_PER_SEC - 1);
    apr_int64_t ttl = at - apr_time_sec(apr_time_now());
    if (ttl <= 0) {
        return 1;
    }
    return (apr_uint32_t)(ttl <= 30 * 86400 ? ttl : at);
}

/*
 * One "get" of n keys and the epoch. APR_SUCCESS when the epoch came back
 * (the answer is complete); APR_NOTFOUND when the server answered without
 * an epoch or could not be asked; values[i] NULL when absent.
 */
static apr_status_t multiget(apr_memcache_t *mc, request_rec *r, int n, const char *const *keys,
                             char **vals, char *epoch)
{
    apr_hash_t *values = NULL;
    for (int i = 0; i < n; i++) {
        apr_memcache_add_multget_key(r->pool, keys[i], &values);
    }
    apr_memcache_add_multget_key(r->pool, EPOCH_KEY, &values);
    apr_pool_t *tmp;
    apr_pool_create(&tmp, r->pool);
    apr_status_t rv = apr_memcache_multgetp(mc, tmp, r->pool, values);
    apr_pool_destroy(tmp);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    apr_memcache_value_t *e = apr_hash_get(values, EPOCH_KEY, APR_HASH_KEY_STRING);
    if (e->status != APR_SUCCESS || e->len != MSA_EPOCH_LEN) {
        return e->status == APR_SUCCESS ? APR_EGENERAL : APR_NOTFOUND;
    }
    memcpy(epoch, e->data, MSA_EPOCH_LEN);
    epoch[MSA_EPOCH_LEN] = '\0';
    for (int i = 0; i < n; i++) {
        apr_memcache_value_t *v = apr_hash_get(values, keys[i], APR_HASH_KEY_STRING);
        if (v->status == APR_SUCCESS) {
            vals[i] = v->data;
        } else if (v->status == APR_NOTFOUND) {
            vals[i] = NULL;
        } else {
            return v->status;
        }
    }
    return APR_SUCCESS;
}

/*
 * After a get without an epoch: the store is empty (restarted, flushed or
 * evicting) or unreachable. Creating the epoch tells which: an add that
 * succeeds begins a new epoch; one that finds an epoch means the get was
 * not answered; anything else, the server is down.
 */
static apr_status_t begin_epoch(msa_store_t *st, apr_memcache_t *mc, request_rec *r, char *epoch,
                                int *began)
{
    *began = 0;
    apr_status_t rv = msa_store_new_epoch(epoch);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    rv = apr_memcache_add(mc, EPOCH_KEY, epoch, MSA_EPOCH_LEN, 0, 0);
    if (rv == APR_SUCCESS) {
        *began = 1;
        msa_store_epoch_changed(r->server, st->spec,
                                "has no epoch record (restarted, flushed or evicting)");
        return APR_SUCCESS;
    }
    if (rv != APR_EEXIST) {
        return rv == APR_NOTFOUND ? APR_ECONNREFUSED : rv;
    }
    char *val;
    apr_size_t len;
    rv = apr_memcache_getp(mc, r->pool, EPOCH_KEY, &val, &len, NULL);
    if (rv != APR_SUCCESS || len != MSA_EPOCH_LEN) {
        return rv == APR_SUCCESS || rv == APR_NOTFOUND ? APR_EGENERAL : rv;
    }
    memcpy(epoch, val, MSA_EPOCH_LEN);
    epoch[MSA_EPOCH_LEN] = '\0';
    return APR_SUCCESS;
}

static const char **text_keys(request_rec *r, int n, const char *const *kinds,
                              const char *const *ids)
{
    const char **keys = apr_palloc(r->pool, sizeof(*keys) * (apr_size_t)n);
    for (int i = 0; i < n; i++) {
        keys[i] = msa_store_text_key(r->pool, kinds[i], ids[i]);
    }
    return keys;
}

static apr_status_t memcache_lookup(msa_store_t *st, request_rec *r, const char *owner, int n,
                                    const char *const *kinds, const char *const *ids, char **vals,
                                    char *epoch)
{
    apr_memcache_t *mc = shard(st->impl, owner);
    if (mc == NULL) {
        return APR_EGENERAL;
    }
    look_at_evictions(st, r, owner);
    const char **keys = text_keys(r, n, kinds, ids);
    apr_status_t rv = multiget(mc, r, n, keys, vals, epoch);
    if (rv != APR_NOTFOUND) {
        return rv;
    }
    int began;
    rv = begin_epoch(st, mc, r, epoch, &began);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    if (!began) {
        /* The epoch is there, so the get was not answered: ask once more. */
        rv = multiget(mc, r, n, keys, vals, epoch);
        return rv == APR_NOTFOUND ? APR_EGENERAL : rv;
    }
    /* A store that just began knows nothing: every record is absent. */
    for (int i = 0; i < n; i++) {
        vals[i] = NULL;
    }
    return APR_SUCCESS;
}

static apr_status_t memcache_epoch(msa_store_t *st, request_rec *r, msa_class_t cls,
                                   const char *owner, char *epoch)
{
    apr_memcache_t *mc = shard(st->impl, owner);
    if (mc == NULL) {
        return APR_EGENERAL;
    }
    apr_status_t rv = multiget(mc, r, 0, NULL, NULL, epoch);
    if (rv == APR_NOTFOUND) {
        int began;
        rv = begin_epoch(st, mc, r, epoch, &began);
    }
    return rv;
}

static apr_status_t memcache_get(msa_store_t *st, request_rec *r, msa_class_t cls,
                                 const char *owner, const char *kind, const char *id,
                                 apr_size_t max, char **val)
{
    apr_memcache_t *mc = shard(st->impl, owner);
    if (mc == NULL) {
        return APR_EGENERAL;
    }
    const char *key = msa_store_text_key(r->pool, kind, id);
    char epoch[MSA_EPOCH_LEN + 1];
    apr_status_t rv = multiget(mc, r, 1, &key, val, epoch);
    if (rv == APR_NOTFOUND) {
        return APR_EGENERAL; /* no epoch: the answer does not count */
    }
    if (rv != APR_SUCCESS) {
        return rv;
    }
    if (*val == NULL) {
        return APR_NOTFOUND;
    }
    return strlen(*val) <= max ? APR_SUCCESS : APR_ENOSPC;
}

static apr_status_t memcache_put(msa_store_t *st, request_rec *r, msa_class_t cls,
                                 const char *owner, const char *kind, const char *id,
                                 const char *val, apr_time_t expiry)
{
    apr_memcache_t *mc = shard(st->impl, owner);
    if (mc == NULL) {
        return APR_EGENERAL;
    }
    apr_status_t rv = apr_memcache_set(mc, msa_store_text_key(r->pool, kind, id),
                                       apr_pstrdup(r->pool, val), strlen(val), exptime(expiry), 0);
    /* apr_memcache says "not found" when it has no live server. */
    return rv == APR_NOTFOUND ? APR_ECONNREFUSED : rv;
}

static apr_status_t memcache_add(msa_store_t *st, request_rec *r, msa_class_t cls,
                                 const char *owner, const char *kind, const char *id,
                                 const char *val, apr_time_t expiry)
{
    apr_memcache_t *mc = shard(st->impl, owner);
    if (mc == NULL) {
        return APR_EGENERAL;
    }
    char *v = apr_pstrdup(r->pool, val ? val : "1");
    apr_status_t rv = apr_memcache_add(mc, msa_store_text_key(r->pool, kind, id), v, strlen(v),
                                       exptime(expiry), 0);
    return rv == APR_NOTFOUND ? APR_ECONNREFUSED : rv;
}

const msa_store_ops_t msa_store_memcache = {
    .name = "memcache",
    .check = memcache_check,
    .create = memcache_create,
    .child_init = memcache_child_init,
    .get = memcache_get,
    .put = memcache_put,
    .add = memcache_add,
    .lookup = memcache_lookup,
    .epoch = memcache_epoch,
};
