/*
 * Shared state through Apache's socache providers (MSAuthCache): spent
 * login states, spent ID tokens, revoked tokens, JWKS documents and group
 * lists that do not fit in a cookie. shmcb (the default) is shared by the
 * children of one server; memcache and redis by a cluster.
 */
#include <ap_mpm.h>
#include <ap_provider.h>
#include <ap_socache.h>
#include <apr_strings.h>
#include <http_protocol.h>
#include <util_mutex.h>

#include "msa_hmac.h"
#include "msa_jose.h"
#include "msa_module.h"

#define MUTEX_TYPE "msauth-cache"
#define MAX_VALUE  (64 * 1024)

struct msa_cache {
    const char *spec;
    const ap_socache_provider_t *provider;
    ap_socache_instance_t *instance;
    apr_global_mutex_t *mutex; /* for providers that are not multi-process safe */
    server_rec *s;
};

int msa_cache_pre_config(apr_pool_t *pconf)
{
    return ap_mutex_register(pconf, MUTEX_TYPE, NULL, APR_LOCK_DEFAULT, 0) == APR_SUCCESS
               ? OK
               : HTTP_INTERNAL_SERVER_ERROR;
}

/* The provider name and its argument from "name[:args]". */
static const char *split_spec(apr_pool_t *p, const char *spec, const char **arg)
{
    const char *colon = strchr(spec, ':');
    *arg = colon ? colon + 1 : NULL;
    return colon ? apr_pstrmemdup(p, spec, (apr_size_t)(colon - spec)) : spec;
}

const char *msa_cache_check(apr_pool_t *p, const msa_srv_t *srv)
{
    const char *arg, *name = split_spec(p, srv->cache, &arg);
    if (ap_lookup_provider(AP_SOCACHE_PROVIDER_GROUP, name, AP_SOCACHE_PROVIDER_VERSION) == NULL) {
        return apr_psprintf(p,
                            "MSAuthCache %s: the socache provider '%s' is not loaded "
                            "(LoadModule socache_%s_module modules/mod_socache_%s.so)",
                            srv->cache, name, name, name);
    }
    return NULL;
}

static apr_status_t cache_destroy(void *data)
{
    msa_cache_t *c = data;
    c->provider->destroy(c->instance, c->s);
    return APR_SUCCESS;
}

apr_status_t msa_cache_post_config(apr_pool_t *pconf, apr_pool_t *ptemp, server_rec *s)
{
    apr_hash_t *made = apr_hash_make(ptemp);
    for (server_rec *vs = s; vs; vs = vs->next) {
        msa_srv_t *srv = msa_srv_get(vs);
        if (!msa_srv_has_apps(srv)) {
            continue;
        }
        /* Servers with the same MSAuthCache share one instance. */
        msa_cache_t *c = apr_hash_get(made, srv->cache, APR_HASH_KEY_STRING);
        if (c != NULL) {
            srv->cache_handle = c;
            continue;
        }
        c = apr_pcalloc(pconf, sizeof(*c));
        c->spec = srv->cache;
        c->s = vs;
        const char *arg, *name = split_spec(ptemp, srv->cache, &arg);
        c->provider =
            ap_lookup_provider(AP_SOCACHE_PROVIDER_GROUP, name, AP_SOCACHE_PROVIDER_VERSION);
        if (c->provider == NULL) {
            MSA_SLOG(vs, APLOG_CRIT, 0, "cache", "%s", msa_cache_check(ptemp, srv));
            return APR_EGENERAL;
        }
        const char *err = c->provider->create(&c->instance, arg, ptemp, pconf);
        if (err != NULL) {
            MSA_SLOG(vs, APLOG_CRIT, 0, "cache", "MSAuthCache %s: %s", srv->cache, err);
            return APR_EGENERAL;
        }
        if (c->provider->flags & AP_SOCACHE_FLAG_NOTMPSAFE) {
            apr_status_t rv =
                ap_global_mutex_create(&c->mutex, NULL, MUTEX_TYPE, NULL, vs, pconf, 0);
            if (rv != APR_SUCCESS) {
                MSA_SLOG(vs, APLOG_CRIT, rv, "cache", "MSAuthCache %s: no mutex", srv->cache);
                return rv;
            }
        }
        struct ap_socache_hints hints = {
            .avg_id_len = 48, .avg_obj_size = 512, .expiry_interval = 60};
        apr_status_t rv = c->provider->init(c->instance, "msauth", &hints, vs, pconf);
        if (rv != APR_SUCCESS) {
            MSA_SLOG(vs, APLOG_CRIT, rv, "cache", "MSAuthCache %s could not be set up", srv->cache);
            return rv;
        }
        apr_pool_cleanup_register(pconf, c, cache_destroy, apr_pool_cleanup_null);
        apr_hash_set(made, srv->cache, APR_HASH_KEY_STRING, c);
        srv->cache_handle = c;
    }
    return APR_SUCCESS;
}

void msa_cache_child_init(apr_pool_t *p, server_rec *s)
{
    for (server_rec *vs = s; vs; vs = vs->next) {
        msa_cache_t *c = msa_srv_get(vs)->cache_handle;
        if (c != NULL && c->mutex != NULL && c->s == vs) {
            apr_global_mutex_child_init(&c->mutex, apr_global_mutex_lockfile(c->mutex), p);
        }
    }
}

/* Keys are "msauth:<kind>:<digest>", short and safe for every provider. */
static const unsigned char *cache_key(apr_pool_t *p, const char *kind, const char *id,
                                      unsigned int *len)
{
    /* Ids that are short and plain (jti, appid:sub) are keys as they are: no hashing. */
    size_t n = strlen(id);
    if (n <= 128 && strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                               "0123456789-_.:") == n) {
        char *key = apr_pstrcat(p, "msauth:", kind, ":", id, NULL);
        *len = (unsigned int)strlen(key);
        return (const unsigned char *)key;
    }
    unsigned char md[32];
    /* Keyed by the kind so that ids of different kinds never collide. */
    msa_hmac_sha256((const unsigned char *)kind, strlen(kind), (const unsigned char *)id,
                    strlen(id), md);
    /* '#' cannot appear in a plain id: hashed and plain keys never meet. */
    char *key = apr_pstrcat(p, "msauth:", kind, "#", msa_b64url_encode(p, md, 24), NULL);
    *len = (unsigned int)strlen(key);
    return (const unsigned char *)key;
}

static void lock(msa_cache_t *c)
{
    if (c->mutex) {
        apr_global_mutex_lock(c->mutex);
    }
}

static void unlock(msa_cache_t *c)
{
    if (c->mutex) {
        apr_global_mutex_unlock(c->mutex);
    }
}

static apr_status_t get_locked(msa_cache_t *c, request_rec *r, const unsigned char *key,
                               unsigned int klen, char **val, unsigned int max)
{
    unsigned int len = max;
    unsigned char *buf = apr_palloc(r->pool, max + 1);
    apr_status_t rv = c->provider->retrieve(c->instance, r->server, key, klen, buf, &len, r->pool);
    if (rv == APR_SUCCESS) {
        buf[len] = '\0';
        *val = (char *)buf;
    }
    return rv;
}

apr_status_t msa_cache_get(request_rec *r, const msa_srv_t *srv, const char *kind, const char *id,
                           apr_size_t max, char **val)
{
    msa_cache_t *c = srv->cache_handle;
    unsigned int klen;
    if (c == NULL) {
        return APR_EGENERAL;
    }
    const unsigned char *key = cache_key(r->pool, kind, id, &klen);
    lock(c);
    apr_status_t rv =
        get_locked(c, r, key, klen, val, max < MAX_VALUE ? (unsigned int)max : MAX_VALUE);
    unlock(c);
    if (rv != APR_SUCCESS && rv != APR_NOTFOUND) {
        msa_metric_cache_error();
    }
    return rv;
}

apr_status_t msa_cache_get2(request_rec *r, const msa_srv_t *srv, const char *kind1,
                            const char *id1, const char *kind2, const char *id2, apr_size_t max,
                            char **val1, char **val2, apr_status_t *rv2)
{
    msa_cache_t *c = srv->cache_handle;
    unsigned int klen1, klen2;
    if (c == NULL) {
        *rv2 = APR_EGENERAL;
        return APR_EGENERAL;
    }
    const unsigned char *key1 = cache_key(r->pool, kind1, id1, &klen1);
    const unsigned char *key2 = cache_key(r->pool, kind2, id2, &klen2);
    unsigned int m = max < MAX_VALUE ? (unsigned int)max : MAX_VALUE;
    lock(c);
    apr_status_t rv1 = get_locked(c, r, key1, klen1, val1, m);
    *rv2 = get_locked(c, r, key2, klen2, val2, m);
    unlock(c);
    if ((rv1 != APR_SUCCESS && rv1 != APR_NOTFOUND) ||
        (*rv2 != APR_SUCCESS && *rv2 != APR_NOTFOUND)) {
        msa_metric_cache_error();
    }
    return rv1;
}

apr_status_t msa_cache_put(request_rec *r, const msa_srv_t *srv, const char *kind, const char *id,
                           const char *val, apr_time_t expiry)
{
    msa_cache_t *c = srv->cache_handle;
    unsigned int klen;
    if (c == NULL || strlen(val) > MAX_VALUE) {
        return APR_EGENERAL;
    }
    const unsigned char *key = cache_key(r->pool, kind, id, &klen);
    lock(c);
    apr_status_t rv = c->provider->store(c->instance, r->server, key, klen, expiry,
                                         (unsigned char *)apr_pstrdup(r->pool, val),
                                         (unsigned int)strlen(val), r->pool);
    unlock(c);
    if (rv != APR_SUCCESS) {
        msa_metric_cache_error();
    }
    return rv;
}

apr_status_t msa_cache_claim(request_rec *r, const msa_srv_t *srv, const char *kind, const char *id,
                             apr_time_t expiry)
{
    msa_cache_t *c = srv->cache_handle;
    unsigned int klen;
    char *old = NULL;
    if (c == NULL) {
        return APR_EGENERAL;
    }
    const unsigned char *key = cache_key(r->pool, kind, id, &klen);
    lock(c);
    apr_status_t rv = get_locked(c, r, key, klen, &old, 16);
    if (rv == APR_SUCCESS) {
        rv = APR_EEXIST;
    } else if (rv == APR_NOTFOUND) {
        rv = c->provider->store(c->instance, r->server, key, klen, expiry, (unsigned char *)"1", 1,
                                r->pool);
    }
    unlock(c);
    if (rv != APR_SUCCESS && rv != APR_EEXIST) {
        msa_metric_cache_error();
    }
    return rv;
}
