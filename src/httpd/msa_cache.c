/*
 * MSAuthCache: the module's shared state (spent login states and ID tokens,
 * revocations, JWKS documents, group lists that do not fit in a cookie) and
 * the one question every protected request asks of it: is this token still
 * good? The stores themselves are in msa_store_*.c (see msa_store.h).
 */
#include <ap_mpm.h>
#include <ap_provider.h>
#include <ap_socache.h>
#include <apr_atomic.h>
#include <apr_shm.h>
#include <apr_strings.h>
#include <util_mutex.h>

#include "msa_hmac.h"
#include "msa_jose.h"
#include "msa_cache.h"
#include "msa_metrics.h"
#include "msa_store.h"

#define MAX_VALUE (64 * 1024)

static const struct {
    const char *kind;
    msa_class_t cls;
    int revokes; /* a write ends tokens: verdicts remembered before it are void */
} records[] = {
    [MSA_REC_STATE] = {"state", MSA_CLASS_TRANSIENT, 0},
    [MSA_REC_CODE] = {"code", MSA_CLASS_TRANSIENT, 0},
    [MSA_REC_JWKS] = {"jwks", MSA_CLASS_BULK, 0},
    [MSA_REC_SPENT_ID] = {"idjti", MSA_CLASS_DURABLE, 0},
    [MSA_REC_REVOKED] = {"revoked", MSA_CLASS_DURABLE, 1},
    [MSA_REC_USER_NBF] = {"revoked_user", MSA_CLASS_DURABLE, 1},
    [MSA_REC_GROUPS] = {"groups", MSA_CLASS_BULK, 0},
    [MSA_REC_SID_OWNER] = {"sid_owner", MSA_CLASS_DURABLE, 0},
    [MSA_REC_REVOKED_SID] = {"revoked_sid", MSA_CLASS_DURABLE, 1},
    [MSA_REC_MS_TOKENS] = {"mstokens", MSA_CLASS_BULK, 0},
    [MSA_REC_REFRESHING] = {"refreshing", MSA_CLASS_TRANSIENT, 0},
    [MSA_REC_MS_INDEX] = {"mstokens_index", MSA_CLASS_BULK, 0},
    [MSA_REC_MS_INDEX_TAKEN] = {"mstokens_taken", MSA_CLASS_DURABLE, 0},
};

/*
 * Remembered verdicts. A browser presents the same session token with every
 * request; asking the store each time whether it was revoked costs a lock
 * (shmcb) or a round trip (memcache, redis). Instead a verdict "live" is kept
 * with the token (msa_token_memo_set) under a stamp, and holds while the stamp
 * does not change. The stamp is made of
 *   - a counter in this server's shared memory, kept across graceful restarts,
 *     that every revocation this server writes and every new epoch of a store
 *     bumps: on this server a revocation takes effect at once, read without a
 *     lock;
 *   - the current second (MSA_REVOCATION_BOUND): each child asks the store
 *     about each token it serves at least once a second, so a revocation
 *     written by another server sharing the store, or the store losing its
 *     state or going away, takes effect within the second. Nothing but the
 *     token's own records speaks for it: no second record that a failed or
 *     partial write could leave behind.
 * Only protected requests use remembered verdicts: whatever issues a token
 * (a refresh) or ends one asks the store.
 */
#define MSA_REVOCATION_BOUND 1 /* second */
#define REVOCATIONS_KEY      "msauth-revocations"

static volatile apr_uint32_t *revocations; /* NULL: no shared memory, nothing remembered */

/* A 64-bit mix (splitmix64's finaliser): stamps that differ in any input differ. */
static apr_uint64_t mix64(apr_uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

/* The counter of revocations, made once per server process (graceful restarts keep it). */
static void revocations_make(server_rec *s)
{
    apr_pool_t *proc = s->process->pool;
    void *found = NULL;
    apr_pool_userdata_get(&found, REVOCATIONS_KEY, proc);
    if (found == NULL) {
        apr_shm_t *shm;
        if (apr_shm_create(&shm, sizeof(apr_uint32_t), NULL, proc) != APR_SUCCESS) {
            MSA_SLOG(s, APLOG_NOTICE, 0, "cache",
                     "no shared memory for remembered revocation checks: every protected "
                     "request asks MSAuthCache");
            revocations = NULL;
            return;
        }
        found = apr_shm_baseaddr_get(shm);
        apr_atomic_set32(found, 0);
        apr_pool_userdata_set(found, REVOCATIONS_KEY, apr_pool_cleanup_null, proc);
    }
    revocations = found;
}

/* The stamp a live verdict of a token is remembered under now; 0 when it cannot be. */
static apr_uint64_t verdict_stamp(const msa_store_t *st)
{
    if (revocations == NULL) {
        return 0;
    }
    apr_uint64_t second = (apr_uint64_t)(apr_time_sec(apr_time_now()) / MSA_REVOCATION_BOUND);
    apr_uint64_t stamp = mix64(((apr_uint64_t)apr_atomic_read32(revocations) << 8) ^ st->ordinal) ^
                         mix64(second + 0x9e3779b97f4a7c15ULL);
    return stamp != 0 ? stamp : 1;
}

/* After a revocation was written: verdicts this server remembered before it no longer hold. */
static void revocation_written(void)
{
    if (revocations != NULL) {
        apr_atomic_inc32(revocations);
    }
}

static const msa_store_ops_t *const stores[] = {&msa_store_shmcb, &msa_store_memcache,
                                                &msa_store_redis};

int msa_cache_pre_config(apr_pool_t *pconf)
{
    return ap_mutex_register(pconf, MSA_CACHE_MUTEX, NULL, APR_LOCK_DEFAULT, 0) == APR_SUCCESS
               ? OK
               : HTTP_INTERNAL_SERVER_ERROR;
}

/* The store named by "name[:arg]", or NULL. */
static const msa_store_ops_t *store_of(apr_pool_t *p, const char *spec, const char **arg)
{
    const char *colon = strchr(spec, ':');
    size_t n = colon ? (size_t)(colon - spec) : strlen(spec);
    *arg = colon ? colon + 1 : NULL;
    for (size_t i = 0; i < sizeof(stores) / sizeof(*stores); i++) {
        if (strlen(stores[i]->name) == n && strncasecmp(stores[i]->name, spec, n) == 0) {
            return stores[i];
        }
    }
    return NULL;
}

const char *msa_cache_check_spec(apr_pool_t *p, const char *spec)
{
    const char *arg;
    const msa_store_ops_t *ops = store_of(p, spec, &arg);
    if (ops == NULL) {
        return "names an unknown cache provider (shmcb[:path(bytes)], memcache:host:port[,...] "
               "or redis:host:port[,...])";
    }
    return ops->check(p, arg);
}

const char *msa_cache_check(apr_pool_t *p, const msa_srv_t *srv)
{
    const char *err = msa_cache_check_spec(p, srv->cache);
    if (err == NULL && strncmp(srv->cache, "shmcb", 5) == 0 &&
        ap_lookup_provider(AP_SOCACHE_PROVIDER_GROUP, "shmcb", AP_SOCACHE_PROVIDER_VERSION) ==
            NULL) {
        err = "the socache provider 'shmcb' is not loaded (LoadModule socache_shmcb_module "
              "modules/mod_socache_shmcb.so; on Debian: a2enmod socache_shmcb)";
    }
    return err ? apr_psprintf(p, "MSAuthCache %s: %s", srv->cache, err) : NULL;
}

apr_status_t msa_cache_post_config(apr_pool_t *pconf, apr_pool_t *ptemp, server_rec *s)
{
    apr_hash_t *made = apr_hash_make(ptemp);
    unsigned ordinal = 0;
    revocations_make(s);
    for (server_rec *vs = s; vs; vs = vs->next) {
        msa_srv_t *srv = msa_srv_get(vs);
        if (!msa_srv_has_apps(srv)) {
            continue;
        }
        /* Servers with the same MSAuthCache share one store. */
        msa_store_t *st = apr_hash_get(made, srv->cache, APR_HASH_KEY_STRING);
        if (st == NULL) {
            const char *arg, *err = msa_cache_check(ptemp, srv);
            if (err != NULL) {
                MSA_SLOG(vs, APLOG_CRIT, 0, "cache", "%s", err);
                return APR_EGENERAL;
            }
            st = apr_pcalloc(pconf, sizeof(*st));
            st->spec = srv->cache;
            st->ordinal = ++ordinal;
            st->ops = store_of(ptemp, srv->cache, &arg);
            apr_status_t rv = st->ops->create(st, arg, pconf, ptemp, vs);
            if (rv != APR_SUCCESS) {
                return rv;
            }
            apr_hash_set(made, srv->cache, APR_HASH_KEY_STRING, st);
        }
        srv->cache_handle = (struct msa_cache *)st;
    }
    return APR_SUCCESS;
}

void msa_cache_child_init(apr_pool_t *p, server_rec *s)
{
    apr_hash_t *done = apr_hash_make(p);
    for (server_rec *vs = s; vs; vs = vs->next) {
        msa_store_t *st = (msa_store_t *)msa_srv_get(vs)->cache_handle;
        if (st != NULL && apr_hash_get(done, &st, sizeof(st)) == NULL) {
            st->ops->child_init(st, p, vs);
            apr_hash_set(done, &st, sizeof(st), st);
        }
    }
}

static msa_store_t *store(const msa_srv_t *srv)
{
    return (msa_store_t *)srv->cache_handle;
}

static void count_error(apr_status_t rv)
{
    if (rv != APR_SUCCESS && rv != APR_NOTFOUND && rv != APR_EEXIST) {
        msa_metric_cache_error();
    }
}

apr_status_t msa_cache_get(request_rec *r, const msa_srv_t *srv, msa_rec_t rec, const char *owner,
                           const char *id, apr_size_t max, char **val)
{
    msa_store_t *st = store(srv);
    if (st == NULL) {
        return APR_EGENERAL;
    }
    apr_status_t rv = st->ops->get(st, r, records[rec].cls, owner, records[rec].kind, id,
                                   max < MAX_VALUE ? max : MAX_VALUE, val);
    count_error(rv);
    return rv;
}

apr_status_t msa_cache_put(request_rec *r, const msa_srv_t *srv, msa_rec_t rec, const char *owner,
                           const char *id, const char *val, apr_time_t expiry)
{
    msa_store_t *st = store(srv);
    if (st == NULL || strlen(val) > MAX_VALUE) {
        return APR_EGENERAL;
    }
    apr_status_t rv =
        st->ops->put(st, r, records[rec].cls, owner, records[rec].kind, id, val, expiry);
    if (rv == APR_SUCCESS && records[rec].revokes) {
        revocation_written();
    }
    count_error(rv);
    return rv;
}

apr_status_t msa_cache_claim(request_rec *r, const msa_srv_t *srv, msa_rec_t rec, const char *owner,
                             const char *id, apr_time_t expiry)
{
    return msa_cache_add(r, srv, rec, owner, id, NULL, expiry);
}

apr_status_t msa_cache_add(request_rec *r, const msa_srv_t *srv, msa_rec_t rec, const char *owner,
                           const char *id, const char *val, apr_time_t expiry)
{
    msa_store_t *st = store(srv);
    if (st == NULL || (val != NULL && strlen(val) > MAX_VALUE)) {
        return APR_EGENERAL;
    }
    apr_status_t rv =
        st->ops->add(st, r, records[rec].cls, owner, records[rec].kind, id, val, expiry);
    count_error(rv);
    return rv;
}

const char *msa_cache_owner(apr_pool_t *p, const char *appid, const char *sub)
{
    return apr_pstrcat(p, appid, ":", sub, NULL);
}

static apr_status_t epoch_of(request_rec *r, const msa_srv_t *srv, msa_class_t cls,
                             const char *owner, const char **epoch)
{
    msa_store_t *st = store(srv);
    if (st == NULL) {
        return APR_EGENERAL;
    }
    char *e = apr_palloc(r->pool, MSA_EPOCH_LEN + 1);
    apr_status_t rv = st->ops->epoch(st, r, cls, owner, e);
    count_error(rv);
    *epoch = rv == APR_SUCCESS ? e : NULL;
    return rv;
}

apr_status_t msa_cache_epoch(request_rec *r, const msa_srv_t *srv, const char *owner,
                             const char **epoch)
{
    return epoch_of(r, srv, MSA_CLASS_DURABLE, owner, epoch);
}

apr_status_t msa_cache_state_epoch(request_rec *r, const msa_srv_t *srv, const char *state,
                                   const char **epoch)
{
    return epoch_of(r, srv, MSA_CLASS_TRANSIENT, state, epoch);
}

/* Where the records of who holds a sid live (see the single sign-out below). */
static const char *sid_place(apr_pool_t *p, const char *sid)
{
    return apr_pstrcat(p, "sid:", sid, NULL);
}

/* Whether the records of sid are on another shard than owner's. */
static int sid_apart(apr_pool_t *p, const msa_store_t *st, const char *sid, const char *owner)
{
    return st->shards > 1 &&
           msa_store_shard(sid_place(p, sid), st->shards) != msa_store_shard(owner, st->shards);
}

msa_verdict_t msa_cache_token_verdict(request_rec *r, const msa_srv_t *srv, const msa_token_t *t,
                                      const msa_token_memo_t *memo)
{
    msa_store_t *st = store(srv);
    if (st == NULL) {
        return MSA_TOKEN_UNKNOWN;
    }
    /* Read before the records: a revocation after this read changes the stamp. */
    apr_uint64_t stamp = memo != NULL ? verdict_stamp(st) : 0;
    if (stamp != 0 && memo->stamp == stamp) {
        return MSA_TOKEN_LIVE;
    }
    const char *owner = msa_cache_owner(r->pool, t->appid, t->sub);
    /*
     * The token's own jti, the time up to which all the user's tokens are dead, and the
     * Microsoft session it came from, when Microsoft signed that out.
     */
    const char *const kinds[] = {records[MSA_REC_REVOKED].kind, records[MSA_REC_USER_NBF].kind,
                                 records[MSA_REC_REVOKED_SID].kind};
    const char *const ids[] = {t->jti, owner, t->sid};
    char *vals[3] = {NULL, NULL, NULL};
    char epoch[MSA_EPOCH_LEN + 1];
    apr_status_t rv = st->ops->lookup(st, r, owner, t->sid ? 3 : 2, kinds, ids, vals, epoch);
    if (rv != APR_SUCCESS) {
        msa_metric_cache_error();
        return MSA_TOKEN_UNKNOWN;
    }
    /* Issued before the store's epoch: what it knew of this token may be gone. */
    if (t->epoch == NULL || strcmp(t->epoch, epoch) != 0) {
        return MSA_TOKEN_STALE;
    }
    if (vals[0] != NULL || (vals[1] != NULL && t->iat <= apr_atoi64(vals[1])) || vals[2] != NULL) {
        return MSA_TOKEN_REVOKED;
    }
    /*
     * The records of who holds the sid live on the sid's shard: when that shard lost them,
     * Microsoft's sign-out could no longer find this token, so it is not accepted either.
     */
    if (t->sid != NULL && sid_apart(r->pool, st, t->sid, owner)) {
        char sid_epoch[MSA_EPOCH_LEN + 1];
        rv = st->ops->epoch(st, r, MSA_CLASS_DURABLE, sid_place(r->pool, t->sid), sid_epoch);
        if (rv != APR_SUCCESS) {
            msa_metric_cache_error();
            return MSA_TOKEN_UNKNOWN;
        }
        if (t->sid_epoch == NULL || strcmp(t->sid_epoch, sid_epoch) != 0) {
            return MSA_TOKEN_STALE;
        }
    }
    if (stamp != 0) {
        msa_token_memo_set(memo, stamp);
    }
    return MSA_TOKEN_LIVE;
}

/*
 * Single sign-out. The front-channel logout knows a sid, the verdict looks in
 * the shard of the token's owner (appid:sub): so each session issued with a
 * sid is recorded under the sid in one of SID_SLOTS slots ("<exp> <owner>",
 * one slot per owner: a sid may have sessions of several apps), all read in
 * one round trip, and the logout writes revoked_sid (id = the sid) in the
 * shard of each owner found, where the verdict's one lookup reads it.
 * The local store keeps numbers only (the slot's exp) and has one shard:
 * there any owner places the record where every lookup reads it.
 */
#define SID_SLOTS 8 /* what one lookup reads */

/* The slots of sid, read in one round trip: vals[i] NULL when free. */
static apr_status_t sid_slots(request_rec *r, const msa_srv_t *srv, const char *sid,
                              const char **ids, char **vals, char *epoch)
{
    msa_store_t *st = store(srv);
    if (st == NULL) {
        return APR_EGENERAL;
    }
    const char *kinds[SID_SLOTS];
    for (int i = 0; i < SID_SLOTS; i++) {
        kinds[i] = records[MSA_REC_SID_OWNER].kind;
        ids[i] = apr_psprintf(r->pool, "%s/%d", sid, i);
        vals[i] = NULL;
    }
    apr_status_t rv =
        st->ops->lookup(st, r, sid_place(r->pool, sid), SID_SLOTS, kinds, ids, vals, epoch);
    count_error(rv);
    return rv;
}

/* The owner a slot names, or NULL (a local store's slot holds its exp alone). */
static const char *slot_owner(const char *val)
{
    const char *sp = val ? strchr(val, ' ') : NULL;
    return sp && sp[1] ? sp + 1 : NULL;
}

apr_status_t msa_cache_sid_record(request_rec *r, const msa_srv_t *srv, const char *sid,
                                  const char *owner, apr_int64_t exp, const char **sid_epoch)
{
    const char *ids[SID_SLOTS];
    char *vals[SID_SLOTS];
    char epoch[MSA_EPOCH_LEN + 1];
    *sid_epoch = NULL;
    apr_status_t rv = sid_slots(r, srv, sid, ids, vals, epoch);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    /* Read before the record is written: a shard that loses it later shows a new epoch. */
    if (sid_apart(r->pool, store(srv), sid, owner)) {
        *sid_epoch = apr_pstrdup(r->pool, epoch);
    }
    const char *place = sid_place(r->pool, sid);
    int mine = -1, home = msa_store_shard(owner, SID_SLOTS);
    for (int i = 0; i < SID_SLOTS && mine < 0; i++) {
        const char *o = slot_owner(vals[i]);
        if (o != NULL && strcmp(o, owner) == 0) {
            mine = i; /* another session of this owner: its slot lives on */
        }
    }
    for (int k = 0; k < SID_SLOTS && mine < 0; k++) {
        int i = (home + k) % SID_SLOTS;
        if (vals[i] != NULL) {
            continue;
        }
        /* A free slot, taken atomically: two logins of one sid at once each get their own. */
        rv = msa_cache_claim(r, srv, MSA_REC_SID_OWNER, place, ids[i], apr_time_from_sec(exp));
        if (rv == APR_SUCCESS) {
            mine = i;
            vals[i] = NULL;
        } else if (rv != APR_EEXIST) {
            return rv;
        }
    }
    if (mine < 0) {
        /*
         * Every slot taken: a local store's slots name no owner (one is as good as another);
         * a shared store's name other apps, one of which loses its single sign-out.
         */
        mine = home;
        if (slot_owner(vals[mine]) != NULL) {
            MSA_RLOG(r, APLOG_INFO, "logout",
                     "a Microsoft session has sessions of more than %d apps: the front-channel "
                     "logout may miss one of them",
                     SID_SLOTS);
        }
    }
    /* A slot lives as long as the longest session it speaks for. */
    if (vals[mine] != NULL && apr_atoi64(vals[mine]) > exp) {
        exp = apr_atoi64(vals[mine]);
    }
    return msa_cache_put(r, srv, MSA_REC_SID_OWNER, place, ids[mine],
                         apr_psprintf(r->pool, "%" APR_INT64_T_FMT " %s", exp, owner),
                         apr_time_from_sec(exp));
}

apr_status_t msa_cache_sid_revoke(request_rec *r, const msa_srv_t *srv, const char *sid, int *ended)
{
    const char *ids[SID_SLOTS];
    char *vals[SID_SLOTS];
    char epoch[MSA_EPOCH_LEN + 1];
    *ended = 0;
    apr_status_t rv = sid_slots(r, srv, sid, ids, vals, epoch);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    apr_int64_t until = 0;
    for (int i = 0; i < SID_SLOTS; i++) {
        if (vals[i] != NULL && apr_atoi64(vals[i]) > until) {
            until = apr_atoi64(vals[i]);
        }
    }
    const char *done[SID_SLOTS];
    const char *now = apr_psprintf(r->pool, "%" APR_INT64_T_FMT, apr_time_sec(apr_time_now()));
    for (int i = 0; i < SID_SLOTS; i++) {
        if (vals[i] == NULL) {
            continue;
        }
        const char *owner = slot_owner(vals[i]);
        owner = owner ? owner : sid_place(r->pool, sid);
        int seen = 0;
        for (int k = 0; k < *ended && !seen; k++) {
            seen = strcmp(done[k], owner) == 0;
        }
        if (seen) {
            continue;
        }
        /* Kept as long as any token of that sid may live. */
        rv = msa_cache_put(r, srv, MSA_REC_REVOKED_SID, owner, sid, now, apr_time_from_sec(until));
        if (rv != APR_SUCCESS) {
            return rv;
        }
        done[(*ended)++] = owner;
    }
    return APR_SUCCESS;
}

/* Helpers of the stores ------------------------------------------------------------------ */

const char *msa_store_text_key(apr_pool_t *p, const char *kind, const char *id)
{
    /* Ids that are short and plain (jti, appid:sub) are keys as they are. */
    size_t n = strlen(id);
    if (n <= 128 && strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                               "0123456789-_.:") == n) {
        return apr_pstrcat(p, "msauth:", kind, ":", id, NULL);
    }
    unsigned char md[32];
    /* Keyed by the kind so that ids of different kinds never collide. */
    msa_hmac_sha256((const unsigned char *)kind, strlen(kind), (const unsigned char *)id, n, md);
    /* '#' cannot appear in a plain id: hashed and plain keys never meet. */
    return apr_pstrcat(p, "msauth:", kind, "#", msa_b64url_encode(p, md, 24), NULL);
}

apr_status_t msa_store_new_epoch(char *epoch)
{
    unsigned char b[MSA_EPOCH_LEN / 2];
    static const char hex[] = "0123456789abcdef";
    apr_status_t rv = apr_generate_random_bytes(b, sizeof(b));
    if (rv != APR_SUCCESS) {
        return rv;
    }
    for (size_t i = 0; i < sizeof(b); i++) {
        epoch[2 * i] = hex[b[i] >> 4];
        epoch[2 * i + 1] = hex[b[i] & 15];
    }
    epoch[MSA_EPOCH_LEN] = '\0';
    return APR_SUCCESS;
}

int msa_store_shard(const char *owner, int n)
{
    if (n <= 1) {
        return 0;
    }
    /* FNV-1a: stable across processes and servers, which is all placement needs. */
    apr_uint32_t h = 2166136261u;
    for (const unsigned char *c = (const unsigned char *)owner; *c; c++) {
        h = (h ^ *c) * 16777619u;
    }
    /* FNV's low bits are weak (the low bit is a parity): finish with murmur3's mix. */
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return (int)(h % (apr_uint32_t)n);
}

const char *msa_store_servers(apr_pool_t *p, const char *arg, int default_port,
                              apr_array_header_t **hosts, apr_array_header_t **ports)
{
    if (arg == NULL || *arg == '\0') {
        return "needs host:port[,host:port...]";
    }
    *hosts = apr_array_make(p, 2, sizeof(const char *));
    *ports = apr_array_make(p, 2, sizeof(int));
    char *last, *list = apr_pstrdup(p, arg);
    for (char *one = apr_strtok(list, ",", &last); one; one = apr_strtok(NULL, ",", &last)) {
        char *host, *scope;
        apr_port_t port = 0;
        if (apr_parse_addr_port(&host, &scope, &port, one, p) != APR_SUCCESS || host == NULL ||
            scope != NULL ||
            (*one != '[' && strspn(host, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                         "0123456789.-_") != strlen(host))) {
            return apr_psprintf(p, "'%s' is not host:port", one);
        }
        APR_ARRAY_PUSH(*hosts, const char *) = host;
        APR_ARRAY_PUSH(*ports, int) = port ? port : default_port;
    }
    if ((*hosts)->nelts == 0) {
        return "needs host:port[,host:port...]";
    }
    if ((*hosts)->nelts > 64) {
        return "at most 64 servers";
    }
    return NULL;
}

apr_status_t msa_store_servers_of(msa_store_t *st, const char *arg, int default_port, apr_pool_t *p,
                                  server_rec *s, apr_array_header_t **hosts,
                                  apr_array_header_t **ports)
{
    const char *err = msa_store_servers(p, arg, default_port, hosts, ports);
    if (err != NULL) {
        MSA_SLOG(s, APLOG_CRIT, 0, "cache", "MSAuthCache %s: %s", st->spec, err);
        return APR_EGENERAL;
    }
    return APR_SUCCESS;
}

int msa_store_threads(void)
{
    int threads = 1;
    ap_mpm_query(AP_MPMQ_MAX_THREADS, &threads);
    return threads < 1 ? 1 : threads;
}

void msa_store_epoch_changed(server_rec *s, const char *spec, const char *why)
{
    if (revocations != NULL) {
        apr_atomic_inc32(revocations); /* verdicts remembered in the old epoch no longer hold */
    }
    msa_metric_cache_epoch();
    MSA_SLOG(s, APLOG_WARNING, 0, "cache_epoch",
             "MSAuthCache %s %s: a new epoch begins; tokens issued before it are refused and "
             "their users sign in again",
             spec, why);
}
