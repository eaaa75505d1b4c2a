/*
 * MSAuthCache shmcb[:path(bytes)]: one server's children share three areas
 * of shared memory, under one lock:
 *   durable    the durable table (msa_dtab.h): 32,768 buckets, 262,144 slots,
 *              6 MiB. Nothing in it is evicted; when a write finds no room a
 *              new epoch begins instead. It and the lock are made once per
 *              server process and kept across graceful restarts, so a
 *              reload forgets nothing; a full stop forgets everything, and
 *              the new epoch makes users sign in again.
 *   transient  spent login states: Apache's shmcb, (bytes) big (2 MiB by
 *              default), made anew with each configuration.
 *   bulk       group lists and JWKS documents: shmcb, 8 MiB. A group list
 *              pushed out by newer ones ends that session (401, sign in again).
 * shmcb picks a sub-cache by a key's first byte: keys here are raw keyed
 * digests, so they spread over every sub-cache.
 */
#include <ap_provider.h>
#include <ap_socache.h>
#include <apr_shm.h>
#include <apr_strings.h>
#include <util_mutex.h>

#include "msa_dtab.h"
#include "msa_hmac.h"
#include "msa_store.h"

#define DTAB_BUCKETS    32768
#define TRANSIENT_BYTES (2 * 1024 * 1024)
#define BULK_BYTES      (8 * 1024 * 1024)
#define KEY_LEN         20

/* What outlives a configuration: made in the server process's own pool. */
typedef struct lasting {
    apr_shm_t *shm;
    msa_dtab_t *dtab;
    apr_global_mutex_t *mutex;
} lasting_t;

typedef struct local {
    lasting_t *lasting;
    const ap_socache_provider_t *provider;
    ap_socache_instance_t *transient, *bulk;
    server_rec *s; /* of this configuration, for the areas' cleanup */
} local_t;

/* The argument as mod_socache_shmcb reads it, when it is loaded (check_config makes sure). */
static const char *shmcb_check(apr_pool_t *p, const char *arg)
{
    const ap_socache_provider_t *provider =
        ap_lookup_provider(AP_SOCACHE_PROVIDER_GROUP, "shmcb", AP_SOCACHE_PROVIDER_VERSION);
    ap_socache_instance_t *probe;
    return provider ? provider->create(&probe, arg, p, p) : NULL;
}

static apr_status_t instance_gone(void *data)
{
    local_t *l = data;
    if (l->transient != NULL) {
        l->provider->destroy(l->transient, l->s);
    }
    if (l->bulk != NULL) {
        l->provider->destroy(l->bulk, l->s);
    }
    return APR_SUCCESS;
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
    apr_status_t rv = apr_shm_create(&l->shm, msa_dtab_size(DTAB_BUCKETS), NULL, proc);
    if (rv != APR_SUCCESS) {
        MSA_SLOG(s, APLOG_CRIT, rv, "cache", "MSAuthCache %s: no shared memory for the table",
                 spec);
        return rv;
    }
    unsigned char seed[16];
    apr_uint64_t epoch;
    if ((rv = apr_generate_random_bytes(seed, sizeof(seed))) != APR_SUCCESS ||
        (rv = apr_generate_random_bytes((unsigned char *)&epoch, sizeof(epoch))) != APR_SUCCESS) {
        MSA_SLOG(s, APLOG_CRIT, rv, "cache", "MSAuthCache %s: no random bytes", spec);
        return rv;
    }
    l->dtab = msa_dtab_format(apr_shm_baseaddr_get(l->shm), DTAB_BUCKETS, seed, epoch);
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

static apr_status_t make_area(local_t *l, ap_socache_instance_t **inst, const char *arg,
                              const char *ns, apr_size_t avg_obj, apr_pool_t *pconf,
                              apr_pool_t *ptemp, server_rec *s)
{
    const char *err = l->provider->create(inst, arg, ptemp, pconf);
    if (err != NULL) {
        MSA_SLOG(s, APLOG_CRIT, 0, "cache", "MSAuthCache shmcb: %s", err);
        return APR_EGENERAL;
    }
    struct ap_socache_hints hints = {
        .avg_id_len = KEY_LEN, .avg_obj_size = avg_obj, .expiry_interval = 60};
    apr_status_t rv = l->provider->init(*inst, ns, &hints, s, pconf);
    if (rv != APR_SUCCESS) {
        MSA_SLOG(s, APLOG_CRIT, rv, "cache", "MSAuthCache shmcb could not be set up");
    }
    return rv;
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
    const char *targ = arg && *arg ? arg : apr_psprintf(ptemp, "(%d)", TRANSIENT_BYTES);
    apr_pool_cleanup_register(pconf, l, instance_gone, apr_pool_cleanup_null);
    if ((rv = make_area(l, &l->transient, targ, "msauth", 25, pconf, ptemp, s)) != APR_SUCCESS ||
        (rv = make_area(l, &l->bulk, apr_psprintf(ptemp, "(%d)", BULK_BYTES), "msauth-bulk", 4096,
                        pconf, ptemp, s)) != APR_SUCCESS) {
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

/* A raw keyed digest: its first byte picks shmcb's sub-cache. */
static void area_key(const char *kind, const char *id, unsigned char key[KEY_LEN])
{
    unsigned char md[32];
    msa_hmac_sha256((const unsigned char *)kind, strlen(kind), (const unsigned char *)id,
                    strlen(id), md);
    memcpy(key, md, KEY_LEN);
}

static ap_socache_instance_t *area(local_t *l, msa_class_t cls)
{
    return cls == MSA_CLASS_TRANSIENT ? l->transient : l->bulk;
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

/* The table had no room: start again rather than lose a record. Under the lock. */
static void table_full(local_t *l, msa_store_t *st, request_rec *r)
{
    apr_uint64_t epoch;
    if (apr_generate_random_bytes((unsigned char *)&epoch, sizeof(epoch)) != APR_SUCCESS) {
        epoch = msa_dtab_epoch(l->lasting->dtab) + 1;
    }
    msa_dtab_new_epoch(l->lasting->dtab, epoch);
    msa_store_epoch_changed(r->server, st->spec, "is full (its 262,144 slots hold live records)");
}

static apr_status_t area_get(local_t *l, request_rec *r, msa_class_t cls, const char *kind,
                             const char *id, apr_size_t max, char **val)
{
    unsigned char key[KEY_LEN];
    unsigned int len = (unsigned int)max;
    unsigned char *buf = apr_palloc(r->pool, max + 1);
    area_key(kind, id, key);
    apr_status_t rv =
        l->provider->retrieve(area(l, cls), r->server, key, KEY_LEN, buf, &len, r->pool);
    if (rv == APR_SUCCESS) {
        buf[len] = '\0';
        *val = (char *)buf;
    }
    return rv;
}

static apr_status_t shmcb_get(msa_store_t *st, request_rec *r, msa_class_t cls, const char *owner,
                              const char *kind, const char *id, apr_size_t max, char **val)
{
    local_t *l = st->impl;
    apr_status_t rv;
    lock(l);
    if (cls == MSA_CLASS_DURABLE) {
        msa_dtab_t *t = l->lasting->dtab;
        apr_int64_t v;
        rv =
            msa_dtab_get(t, msa_dtab_hash(t, kind, id), now_sec(), &v) ? APR_SUCCESS : APR_NOTFOUND;
        unlock(l);
        if (rv == APR_SUCCESS) {
            *val = apr_psprintf(r->pool, "%" APR_INT64_T_FMT, v);
        }
        return rv;
    }
    rv = area_get(l, r, cls, kind, id, max, val);
    unlock(l);
    return rv;
}

static apr_status_t shmcb_put(msa_store_t *st, request_rec *r, msa_class_t cls, const char *owner,
                              const char *kind, const char *id, const char *val, apr_time_t expiry)
{
    local_t *l = st->impl;
    apr_status_t rv;
    if (cls == MSA_CLASS_DURABLE) {
        msa_dtab_t *t = l->lasting->dtab;
        apr_uint64_t h = msa_dtab_hash(t, kind, id);
        lock(l);
        rv = msa_dtab_put(t, h, expiry_sec(expiry), apr_atoi64(val), now_sec());
        if (rv == APR_ENOSPC) {
            table_full(l, st, r);
            rv = msa_dtab_put(t, h, expiry_sec(expiry), apr_atoi64(val), now_sec());
        }
        unlock(l);
        return rv;
    }
    unsigned char key[KEY_LEN];
    area_key(kind, id, key);
    lock(l);
    rv = l->provider->store(area(l, cls), r->server, key, KEY_LEN, expiry,
                            (unsigned char *)apr_pstrdup(r->pool, val), (unsigned int)strlen(val),
                            r->pool);
    unlock(l);
    return rv;
}

static apr_status_t shmcb_add(msa_store_t *st, request_rec *r, msa_class_t cls, const char *owner,
                              const char *kind, const char *id, apr_time_t expiry)
{
    local_t *l = st->impl;
    apr_status_t rv;
    if (cls == MSA_CLASS_DURABLE) {
        msa_dtab_t *t = l->lasting->dtab;
        apr_uint64_t h = msa_dtab_hash(t, kind, id);
        lock(l);
        rv = msa_dtab_add(t, h, expiry_sec(expiry), 1, now_sec());
        if (rv == APR_ENOSPC) {
            table_full(l, st, r);
            rv = msa_dtab_add(t, h, expiry_sec(expiry), 1, now_sec());
        }
        unlock(l);
        return rv;
    }
    /* Read and write under the one lock every child takes: nobody comes in between. */
    unsigned char key[KEY_LEN];
    char *old;
    area_key(kind, id, key);
    lock(l);
    rv = area_get(l, r, cls, kind, id, 16, &old);
    if (rv == APR_SUCCESS) {
        rv = APR_EEXIST;
    } else if (rv == APR_NOTFOUND) {
        rv = l->provider->store(area(l, cls), r->server, key, KEY_LEN, expiry, (unsigned char *)"1",
                                1, r->pool);
    }
    unlock(l);
    return rv;
}

static apr_status_t shmcb_lookup(msa_store_t *st, request_rec *r, const char *owner, int n,
                                 const char *const *kinds, const char *const *ids, char **vals,
                                 char *epoch)
{
    local_t *l = st->impl;
    msa_dtab_t *t = l->lasting->dtab;
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

static apr_status_t shmcb_epoch(msa_store_t *st, request_rec *r, const char *owner, char *epoch)
{
    local_t *l = st->impl;
    lock(l);
    epoch_text(l->lasting->dtab, epoch);
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
