/*
 * MSAuthCache shmcb[:path(bytes)]: one server's children share three areas
 * of shared memory, under one lock:
 *   durable    a table (msa_dtab.h) of revocations, not-before times and spent
 *              ID tokens: 32,768 buckets, 262,144 slots, 6 MiB;
 *   transient  a table of spent login states and codes: 16,384 buckets,
 *              131,072 slots, 3 MiB.
 *              Neither table ever evicts. When a write finds no room, that
 *              table begins a new epoch: for the durable one every token from
 *              before is refused (users sign in again), for the transient one
 *              every login started before must start again. Both tables and
 *              the lock are made once per server process and kept across
 *              graceful restarts; a full stop forgets them (new epochs).
 *   bulk       group lists and JWKS documents: Apache's shmcb, (bytes) big
 *              (8 MiB by default), made anew with each configuration. A group
 *              list pushed out by newer ones ends that session (401, sign in
 *              again); a JWKS pushed out costs a fetch. shmcb picks a sub-cache
 *              by a key's first byte: keys here are raw keyed digests.
 */
#include <ap_provider.h>
#include <ap_socache.h>
#include <apr_shm.h>
#include <apr_strings.h>
#include <util_mutex.h>

#include "msa_dtab.h"
#include "msa_hmac.h"
#include "msa_metrics.h"
#include "msa_store.h"

#define DURABLE_BUCKETS   32768
#define TRANSIENT_BUCKETS 16384
#define BULK_BYTES        (8 * 1024 * 1024)
#define KEY_LEN           20

/* What outlives a configuration: made in the server process's own pool. */
typedef struct lasting {
    apr_shm_t *shm;
    msa_dtab_t *durable, *transient;
    apr_global_mutex_t *mutex;
} lasting_t;

typedef struct local {
    lasting_t *lasting;
    const ap_socache_provider_t *provider;
    ap_socache_instance_t *bulk;
    server_rec *s; /* of this configuration, for the area's cleanup */
} local_t;

/* The argument as mod_socache_shmcb reads it, when it is loaded (check_config makes sure). */
static const char *shmcb_check(apr_pool_t *p, const char *arg)
{
    const ap_socache_provider_t *provider =
        ap_lookup_provider(AP_SOCACHE_PROVIDER_GROUP, "shmcb", AP_SOCACHE_PROVIDER_VERSION);
    ap_socache_instance_t *probe;
    return provider ? provider->create(&probe, arg, p, p) : NULL;
}

static apr_status_t bulk_gone(void *data)
{
    local_t *l = data;
    if (l->bulk != NULL) {
        l->provider->destroy(l->bulk, l->s);
    }
    return APR_SUCCESS;
}

static apr_status_t random_u64(apr_uint64_t *v)
{
    return apr_generate_random_bytes((unsigned char *)v, sizeof(*v));
}

static apr_status_t make_lasting(lasting_t **out, const char *spec, apr_pool_t *ptemp,
                                 server_rec *s)
{
    apr_pool_t *proc = s->process->pool;
    const char *key = apr_pstrcat(ptemp, "msauth-store:", spec, NULL);
    void *found = NULL;
    apr_pool_userdata_get(&found, key, proc);
    if (found != NULL) {
        *out = found;
        return APR_SUCCESS;
    }
    lasting_t *l = apr_pcalloc(proc, sizeof(*l));
    apr_size_t dsize = msa_dtab_size(DURABLE_BUCKETS), tsize = msa_dtab_size(TRANSIENT_BUCKETS);
    apr_status_t rv = apr_shm_create(&l->shm, dsize + tsize, NULL, proc);
    if (rv != APR_SUCCESS) {
        MSA_SLOG(s, APLOG_CRIT, rv, "cache", "MSAuthCache %s: no shared memory for the tables",
                 spec);
        return rv;
    }
    unsigned char seed[16];
    apr_uint64_t e1, e2;
    if ((rv = apr_generate_random_bytes(seed, sizeof(seed))) != APR_SUCCESS ||
        (rv = random_u64(&e1)) != APR_SUCCESS || (rv = random_u64(&e2)) != APR_SUCCESS) {
        MSA_SLOG(s, APLOG_CRIT, rv, "cache", "MSAuthCache %s: no random bytes", spec);
        return rv;
    }
    char *base = apr_shm_baseaddr_get(l->shm);
    l->durable = msa_dtab_format(base, DURABLE_BUCKETS, seed, e1);
    l->transient = msa_dtab_format(base + dsize, TRANSIENT_BUCKETS, seed, e2);
    /* One lock per store: the instance name tells stores apart. */
    char instance[17];
    apr_snprintf(instance, sizeof(instance), "%08x", (unsigned)msa_store_shard(spec, 1 << 30));
    rv = ap_global_mutex_create(&l->mutex, NULL, MSA_CACHE_MUTEX, instance, s, proc, 0);
    if (rv != APR_SUCCESS) {
        MSA_SLOG(s, APLOG_CRIT, rv, "cache", "MSAuthCache %s: no lock", spec);
        return rv;
    }
    apr_pool_userdata_set(l, key, apr_pool_cleanup_null, proc);
    *out = l;
    return APR_SUCCESS;
}

static apr_status_t shmcb_create(msa_store_t *st, const char *arg, apr_pool_t *pconf,
                                 apr_pool_t *ptemp, server_rec *s)
{
    local_t *l = apr_pcalloc(pconf, sizeof(*l));
    l->s = s;
    l->provider =
        ap_lookup_provider(AP_SOCACHE_PROVIDER_GROUP, "shmcb", AP_SOCACHE_PROVIDER_VERSION);
    apr_status_t rv = make_lasting(&l->lasting, st->spec, ptemp, s);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    apr_pool_cleanup_register(pconf, l, bulk_gone, apr_pool_cleanup_null);
    const char *barg = arg && *arg ? arg : apr_psprintf(ptemp, "(%d)", BULK_BYTES);
    const char *err = l->provider->create(&l->bulk, barg, ptemp, pconf);
    if (err != NULL) {
        MSA_SLOG(s, APLOG_CRIT, 0, "cache", "MSAuthCache %s: %s", st->spec, err);
        return APR_EGENERAL;
    }
    struct ap_socache_hints hints = {
        .avg_id_len = KEY_LEN, .avg_obj_size = 4096, .expiry_interval = 60};
    rv = l->provider->init(l->bulk, "msauth", &hints, s, pconf);
    if (rv != APR_SUCCESS) {
        MSA_SLOG(s, APLOG_CRIT, rv, "cache", "MSAuthCache %s could not be set up", st->spec);
        return rv;
    }
    st->impl = l;
    return APR_SUCCESS;
}

static void shmcb_child_init(msa_store_t *st, apr_pool_t *pchild, server_rec *s)
{
    local_t *l = st->impl;
    apr_global_mutex_child_init(&l->lasting->mutex, apr_global_mutex_lockfile(l->lasting->mutex),
                                pchild);
}

static void lock(local_t *l)
{
    apr_global_mutex_lock(l->lasting->mutex);
}

static void unlock(local_t *l)
{
    apr_global_mutex_unlock(l->lasting->mutex);
}

static msa_dtab_t *table(local_t *l, msa_class_t cls)
{
    return cls == MSA_CLASS_TRANSIENT ? l->lasting->transient : l->lasting->durable;
}

/* A raw keyed digest: its first byte picks shmcb's sub-cache. */
static void bulk_key(const char *kind, const char *id, unsigned char key[KEY_LEN])
{
    unsigned char md[32];
    msa_hmac_sha256((const unsigned char *)kind, strlen(kind), (const unsigned char *)id,
                    strlen(id), md);
    memcpy(key, md, KEY_LEN);
}

static apr_int64_t now_sec(void)
{
    return apr_time_sec(apr_time_now());
}

/* Expiry in whole seconds, rounded up: a record never dies early. */
static apr_int64_t expiry_sec(apr_time_t expiry)
{
    return apr_time_sec(expiry + APR_USEC_PER_SEC - 1);
}

static void epoch_text(const msa_dtab_t *t, char *out)
{
    apr_snprintf(out, MSA_EPOCH_LEN + 1, "%016" APR_UINT64_T_HEX_FMT, msa_dtab_epoch(t));
}

/* A table had no room: start it again rather than lose a record. Under the lock. */
static void table_full(msa_dtab_t *t, msa_store_t *st, request_rec *r, msa_class_t cls)
{
    apr_uint64_t epoch;
    if (random_u64(&epoch) != APR_SUCCESS) {
        epoch = msa_dtab_epoch(t) + 1;
    }
    msa_dtab_new_epoch(t, epoch);
    if (cls == MSA_CLASS_DURABLE) {
        msa_store_epoch_changed(r->server, st->spec,
                                "is full (all 262,144 slots of revocations hold live records)");
    } else {
        msa_metric_cache_epoch();
        MSA_RLOG(r, APLOG_WARNING, "cache_epoch",
                 "MSAuthCache %s: all 131,072 slots of spent login states hold live records: "
                 "logins started before now must start again",
                 st->spec);
    }
}

/* Writes under the lock; a full table begins its new epoch and takes the record. */
static apr_status_t table_write(local_t *l, msa_store_t *st, request_rec *r, msa_class_t cls,
                                const char *kind, const char *id, apr_int64_t value,
                                apr_time_t expiry, int only_new)
{
    msa_dtab_t *t = table(l, cls);
    apr_uint64_t h = msa_dtab_hash(t, kind, id);
    apr_status_t rv;
    lock(l);
    for (int attempt = 0; attempt < 2; attempt++) {
        rv = only_new ? msa_dtab_add(t, h, expiry_sec(expiry), value, now_sec())
                      : msa_dtab_put(t, h, expiry_sec(expiry), value, now_sec());
        if (rv != APR_ENOSPC) {
            break;
        }
        table_full(t, st, r, cls);
    }
    unlock(l);
    return rv;
}

static apr_status_t shmcb_get(msa_store_t *st, request_rec *r, msa_class_t cls, const char *owner,
                              const char *kind, const char *id, apr_size_t max, char **val)
{
    local_t *l = st->impl;
    apr_status_t rv;
    if (cls != MSA_CLASS_BULK) {
        msa_dtab_t *t = table(l, cls);
        apr_uint64_t h = msa_dtab_hash(t, kind, id);
        apr_int64_t v;
        lock(l);
        rv = msa_dtab_get(t, h, now_sec(), &v) ? APR_SUCCESS : APR_NOTFOUND;
        unlock(l);
        if (rv == APR_SUCCESS) {
            *val = apr_psprintf(r->pool, "%" APR_INT64_T_FMT, v);
        }
        return rv;
    }
    unsigned char key[KEY_LEN];
    unsigned int len = (unsigned int)max;
    unsigned char *buf = apr_palloc(r->pool, max + 1);
    bulk_key(kind, id, key);
    lock(l);
    rv = l->provider->retrieve(l->bulk, r->server, key, KEY_LEN, buf, &len, r->pool);
    unlock(l);
    if (rv == APR_SUCCESS) {
        buf[len] = '\0';
        *val = (char *)buf;
    }
    return rv;
}

static apr_status_t shmcb_put(msa_store_t *st, request_rec *r, msa_class_t cls, const char *owner,
                              const char *kind, const char *id, const char *val, apr_time_t expiry)
{
    local_t *l = st->impl;
    if (cls != MSA_CLASS_BULK) {
        return table_write(l, st, r, cls, kind, id, apr_atoi64(val), expiry, 0);
    }
    unsigned char key[KEY_LEN];
    bulk_key(kind, id, key);
    lock(l);
    apr_status_t rv = l->provider->store(l->bulk, r->server, key, KEY_LEN, expiry,
                                         (unsigned char *)apr_pstrdup(r->pool, val),
                                         (unsigned int)strlen(val), r->pool);
    unlock(l);
    return rv;
}

static apr_status_t shmcb_add(msa_store_t *st, request_rec *r, msa_class_t cls, const char *owner,
                              const char *kind, const char *id, const char *val, apr_time_t expiry)
{
    local_t *l = st->impl;
    if (cls != MSA_CLASS_BULK) {
        /* Looked for and written under the one lock every child takes: nobody comes in between. */
        return table_write(l, st, r, cls, kind, id, val ? apr_atoi64(val) : 1, expiry, 1);
    }
    /* The bulk area too is read and written under that lock only. */
    /* Room for any value: shmcb calls one that does not fit absent. */
    unsigned int len = 64 * 1024;
    unsigned char key[KEY_LEN], *probe = apr_palloc(r->pool, len);
    const char *v = val ? val : "1";
    bulk_key(kind, id, key);
    lock(l);
    apr_status_t rv = l->provider->retrieve(l->bulk, r->server, key, KEY_LEN, probe, &len, r->pool);
    if (rv == APR_NOTFOUND) {
        rv = l->provider->store(l->bulk, r->server, key, KEY_LEN, expiry,
                                (unsigned char *)apr_pstrdup(r->pool, v), (unsigned int)strlen(v),
                                r->pool);
    } else if (rv == APR_SUCCESS || rv == APR_ENOSPC) {
        rv = APR_EEXIST;
    }
    unlock(l);
    return rv;
}

static apr_status_t shmcb_lookup(msa_store_t *st, request_rec *r, const char *owner, int n,
                                 const char *const *kinds, const char *const *ids, char **vals,
                                 char *epoch)
{
    local_t *l = st->impl;
    msa_dtab_t *t = l->lasting->durable;
    apr_uint64_t h[8];
    apr_int64_t v[8];
    int found[8];
    apr_int64_t now = now_sec();
    if (n > 8) {
        return APR_EINVAL;
    }
    for (int i = 0; i < n; i++) {
        h[i] = msa_dtab_hash(t, kinds[i], ids[i]);
    }
    lock(l);
    for (int i = 0; i < n; i++) {
        found[i] = msa_dtab_get(t, h[i], now, &v[i]);
    }
    epoch_text(t, epoch);
    unlock(l);
    for (int i = 0; i < n; i++) {
        vals[i] = found[i] ? apr_psprintf(r->pool, "%" APR_INT64_T_FMT, v[i]) : NULL;
    }
    return APR_SUCCESS;
}

static apr_status_t shmcb_epoch(msa_store_t *st, request_rec *r, msa_class_t cls, const char *owner,
                                char *epoch)
{
    local_t *l = st->impl;
    lock(l);
    epoch_text(table(l, cls), epoch);
    unlock(l);
    return APR_SUCCESS;
}

const msa_store_ops_t msa_store_shmcb = {
    .name = "shmcb",
    .check = shmcb_check,
    .create = shmcb_create,
    .child_init = shmcb_child_init,
    .get = shmcb_get,
    .put = shmcb_put,
    .add = shmcb_add,
    .lookup = shmcb_lookup,
    .epoch = shmcb_epoch,
};
