/*
 * MSAuthPassTokens. A login that asked for offline_access leaves its
 * Microsoft tokens (access, id and refresh token) in MSAuthCache, sealed
 * under the app's key for that one session (msa_vault.h): never in a cookie.
 * A protected request of a location that passes tokens reads that record
 * (one store read), refreshes it when the access token is near its expiry
 * (one refresh at a time per session on every server sharing the store: an
 * atomic add per record generation), and hands the app Easy Auth's headers.
 * A token past its expiry is never handed on: when a refresh fails the
 * headers are left out and the reason logged.
 */
#include <apr_lib.h>
#include <apr_strings.h>
#include <http_core.h>
#include <http_protocol.h>
#include <http_request.h>

#include "msa_apps.h"
#include "msa_cache.h"
#include "msa_login.h"
#include "msa_mstokens.h"
#include "msa_request.h"
#include "msa_session.h"
#include "msa_url.h"
#include "msa_vault.h"

#define H_ACCESS          "X-MS-TOKEN-AAD-ACCESS-TOKEN"
#define H_EXPIRES         "X-MS-TOKEN-AAD-EXPIRES-ON"
#define H_ID              "X-MS-TOKEN-AAD-ID-TOKEN"
#define TOMBSTONE         "-"         /* a dropped record: the store has no delete */
#define MAX_RECORD        (60 * 1024) /* msa_vault's records are smaller */
#define WAIT_STEP         100000      /* microseconds between looks at another's refresh */
#define FALLBACK_LIFETIME 300         /* an answer without expires_in: assume five minutes */
#define SESSION_ENDED     APR_EOF     /* store_tokens: the session ended meanwhile, dropped */

/* The session a record is sealed for: its app, its jti and its user. */
static const char *binding(apr_pool_t *p, const msa_token_t *t)
{
    return apr_pstrcat(p, "msauth-ms-tokens\n", t->appid, "\n", t->jti, "\n", t->sub, NULL);
}

static const char *owner_of(apr_pool_t *p, const msa_token_t *t)
{
    return msa_cache_owner(p, t->appid, t->sub);
}

/* Records live as long as their session may. */
static apr_time_t record_expiry(const msa_srv_t *srv, const msa_token_t *t)
{
    return apr_time_from_sec(t->exp + srv->clock_skew);
}

/*
 * Where a revocation finds the records. Each kept record is entered in two
 * indexes: its user's (appid:sub), for DELETE /jwt_auth, and its Microsoft
 * session's (sid), for the front-channel logout. An index is INDEX_SLOTS
 * records of their own ("<exp> <entered> <owner> <jti>": the record's expiry,
 * when it was entered in microseconds), each taken by an atomic add:
 * two logins of one user on two servers at once never take the same slot,
 * and nothing is read, changed and written back. When every slot is taken,
 * the oldest entry gives way and its record is dropped at once: beyond the
 * newest INDEX_SLOTS sessions with tokens, a session keeps none. Replacing
 * an entry is claimed once (an add named by the slot and the entry's jti).
 * A record is written only after both its entries: none that a revocation
 * could not find.
 */
#define INDEX_SLOTS  16
#define INDEX_ROUNDS 3 /* tries at replacing an entry that others replace too */
#define INDEX_MARGIN 5 /* seconds: an entry about to expire is not replaced (it frees itself) */

typedef struct index {
    const char *place; /* where its slots live (the shard of a sharded store) */
    const char *base;  /* its slots' names: base/0 ... */
    const char *whose; /* for the log */
} index_t;

static index_t user_index(apr_pool_t *p, const char *appid, const char *sub)
{
    const char *owner = msa_cache_owner(p, appid, sub);
    index_t x = {owner, apr_pstrcat(p, "u/", owner, NULL), "user"};
    return x;
}

/* Beside the records of who holds the sid (msa_cache.c's "sid:<sid>"): on the same shard. */
static index_t sid_index(apr_pool_t *p, const char *sid)
{
    index_t x = {apr_pstrcat(p, "sid:", sid, NULL), apr_pstrcat(p, "s/", sid, NULL),
                 "Microsoft session"};
    return x;
}

static const char *slot_id(apr_pool_t *p, const index_t *x, int i)
{
    return apr_psprintf(p, "%s/%d", x->base, i);
}

/* An entry's parts; 0 when it is not one. */
static int entry_parts(apr_pool_t *p, const char *val, apr_int64_t *exp, apr_int64_t *entered,
                       const char **owner, const char **jti)
{
    const char *first = val ? strchr(val, ' ') : NULL;
    const char *second = first ? strchr(first + 1, ' ') : NULL;
    const char *last = val ? strrchr(val, ' ') : NULL;
    if (second == NULL || last == second || last[1] == '\0') {
        return 0;
    }
    *exp = apr_atoi64(val);
    *entered = apr_atoi64(first + 1);
    *owner = apr_pstrmemdup(p, second + 1, (apr_size_t)(last - second - 1));
    *jti = last + 1;
    return *exp > 0 && **owner != '\0';
}

/* A record dropped: its tombstone lives as long as the record would have. */
static apr_status_t tombstone(request_rec *r, const msa_srv_t *srv, const char *owner,
                              const char *jti, apr_int64_t exp)
{
    return msa_cache_put(r, srv, MSA_REC_MS_TOKENS, owner, jti, TOMBSTONE, apr_time_from_sec(exp));
}

/* The mark of a session whose entry gave way: its tokens are not written again (a refresh). */
static const char *given_way(apr_pool_t *p, const char *jti)
{
    return apr_pstrcat(p, "gave-way/", jti, NULL);
}

/* Enters session t (its record living until exp) in x. APR_SUCCESS, else not entered. */
static apr_status_t index_add(request_rec *r, const msa_srv_t *srv, const index_t *x,
                              const msa_token_t *t, apr_int64_t exp)
{
    const char *owner = owner_of(r->pool, t);
    const char *val = apr_psprintf(r->pool, "%" APR_INT64_T_FMT " %" APR_INT64_T_FMT " %s %s", exp,
                                   (apr_int64_t)apr_time_now(), owner, t->jti);
    apr_status_t rv;
    for (int i = 0; i < INDEX_SLOTS; i++) {
        rv = msa_cache_add(r, srv, MSA_REC_MS_INDEX, x->place, slot_id(r->pool, x, i), val,
                           apr_time_from_sec(exp));
        if (rv != APR_EEXIST) {
            return rv;
        }
    }
    for (int round = 0; round < INDEX_ROUNDS; round++) {
        int oldest = -1;
        apr_int64_t oldest_exp = 0, oldest_entered = 0, now = apr_time_sec(apr_time_now());
        const char *old_owner = NULL, *old_jti = NULL;
        for (int i = 0; i < INDEX_SLOTS; i++) {
            char *cur = NULL;
            const char *o, *j, *id = slot_id(r->pool, x, i);
            apr_int64_t e, n;
            rv = msa_cache_get(r, srv, MSA_REC_MS_INDEX, x->place, id, 1024, &cur);
            if (rv == APR_NOTFOUND) {
                /* Freed since: take it, or go on looking when another just did. */
                rv = msa_cache_add(r, srv, MSA_REC_MS_INDEX, x->place, id, val,
                                   apr_time_from_sec(exp));
                if (rv != APR_EEXIST) {
                    return rv;
                }
                continue;
            }
            if (rv != APR_SUCCESS) {
                return rv;
            }
            if (!entry_parts(r->pool, cur, &e, &n, &o, &j)) {
                e = now + INDEX_MARGIN + 1; /* not an entry: the oldest possible, replaced */
                n = 0;
                o = owner;
                j = apr_pstrcat(r->pool, "-", cur, NULL);
            }
            /* The first entered gives way (the sessions of a sid may have several lifetimes). */
            if (e > now + INDEX_MARGIN && (oldest < 0 || n < oldest_entered)) {
                oldest = i, oldest_exp = e, oldest_entered = n, old_owner = o, old_jti = j;
            }
        }
        if (oldest < 0) {
            return APR_EBUSY; /* every entry about to expire */
        }
        const char *id = slot_id(r->pool, x, oldest);
        rv = msa_cache_claim(r, srv, MSA_REC_MS_INDEX_TAKEN, x->place,
                             apr_pstrcat(r->pool, id, "/", old_jti, NULL),
                             apr_time_from_sec(oldest_exp));
        if (rv == APR_EEXIST) {
            continue; /* another login replaces that one: look again */
        }
        if (rv != APR_SUCCESS) {
            return rv;
        }
        /* Forgotten only once dropped: a store that cannot drop it keeps it in the index. */
        rv = msa_cache_claim(r, srv, MSA_REC_MS_INDEX_TAKEN, old_owner, given_way(r->pool, old_jti),
                             apr_time_from_sec(oldest_exp));
        if (rv == APR_SUCCESS || rv == APR_EEXIST) {
            rv = tombstone(r, srv, old_owner, old_jti, oldest_exp);
        }
        if (rv != APR_SUCCESS) {
            return rv;
        }
        MSA_RLOG(r, APLOG_INFO, "tokens",
                 "appid=%s user=%s: more than %d sessions with Microsoft tokens for this %s: "
                 "the oldest one's are dropped",
                 t->appid, msa_loggable(r, t->sub), INDEX_SLOTS, x->whose);
        return msa_cache_put(r, srv, MSA_REC_MS_INDEX, x->place, id, val, apr_time_from_sec(exp));
    }
    return APR_EBUSY;
}

/* Drops every record x names: APR_SUCCESS, else the last failure (the others still tried). */
static apr_status_t index_drop(request_rec *r, const msa_srv_t *srv, const index_t *x, int *dropped)
{
    apr_status_t last = APR_SUCCESS;
    *dropped = 0;
    for (int i = 0; i < INDEX_SLOTS; i++) {
        char *cur = NULL;
        const char *o, *j;
        apr_int64_t e, n;
        apr_status_t rv =
            msa_cache_get(r, srv, MSA_REC_MS_INDEX, x->place, slot_id(r->pool, x, i), 1024, &cur);
        if (rv == APR_NOTFOUND) {
            continue;
        }
        if (rv == APR_SUCCESS && !entry_parts(r->pool, cur, &e, &n, &o, &j)) {
            continue;
        }
        if (rv == APR_SUCCESS) {
            rv = tombstone(r, srv, o, j, e);
        }
        if (rv != APR_SUCCESS) {
            last = rv;
        } else {
            (*dropped)++;
        }
    }
    return last;
}

/* A session's first record: entered in its indexes before it is written. */
static apr_status_t index_session(request_rec *r, const msa_srv_t *srv, const msa_token_t *t,
                                  const char **err)
{
    apr_int64_t exp = t->exp + srv->clock_skew;
    index_t user = user_index(r->pool, t->appid, t->sub);
    apr_status_t rv = index_add(r, srv, &user, t, exp);
    if (rv == APR_SUCCESS && t->sid != NULL) {
        index_t sid = sid_index(r->pool, t->sid);
        rv = index_add(r, srv, &sid, t, exp);
    }
    if (rv != APR_SUCCESS) {
        *err = "the store cannot enter them where a revocation finds them";
    }
    return rv;
}

static apr_status_t store_tokens(request_rec *r, const msa_srv_t *srv, const msa_app_t *app,
                                 const msa_token_t *t, const msa_vault_tokens_t *v, int first,
                                 const char **err)
{
    char *record = NULL;
    if (first && index_session(r, srv, t, err) != APR_SUCCESS) {
        return APR_EGENERAL;
    }
    const msa_key_t *key = &APR_ARRAY_IDX(app->keys, 0, msa_key_t);
    apr_status_t rv = msa_vault_seal(r->pool, key, binding(r->pool, t), v, &record, err);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    rv = msa_cache_put(r, srv, MSA_REC_MS_TOKENS, owner_of(r->pool, t), t->jti, record,
                       record_expiry(srv, t));
    if (rv != APR_SUCCESS) {
        *err = "the store cannot keep them";
        return rv;
    }
    /*
     * A revocation writes its record, then drops the tokens; here the tokens were written,
     * then the revocations are read: one that came meanwhile (a refresh or a login takes
     * seconds) is seen here, or its drop came after this write.
     */
    msa_verdict_t verdict = msa_cache_token_verdict(r, srv, t, NULL);
    char *mark = NULL;
    if (verdict == MSA_TOKEN_LIVE) {
        /* The same for an entry that gave way to newer sessions' (it is no longer indexed). */
        rv = msa_cache_get(r, srv, MSA_REC_MS_INDEX_TAKEN, owner_of(r->pool, t),
                           given_way(r->pool, t->jti), 64, &mark);
        verdict = rv == APR_NOTFOUND  ? MSA_TOKEN_LIVE
                  : rv == APR_SUCCESS ? MSA_TOKEN_REVOKED
                                      : MSA_TOKEN_UNKNOWN;
    }
    if (verdict != MSA_TOKEN_LIVE) {
        rv = tombstone(r, srv, owner_of(r->pool, t), t->jti, t->exp + srv->clock_skew);
        if (verdict == MSA_TOKEN_UNKNOWN || rv != APR_SUCCESS) {
            *err = "the store cannot tell whether the session was revoked meanwhile";
            return APR_EGENERAL;
        }
        *err = mark != NULL ? "newer sessions of the user took its place"
                            : "the session was revoked meanwhile";
        return SESSION_ENDED;
    }
    return APR_SUCCESS;
}

void msa_mstokens_keep(request_rec *r, const msa_srv_t *srv, const msa_app_t *app,
                       const msa_token_t *st, const msa_ms_tokens_t *tokens)
{
    if (!srv->tokens_wanted || tokens == NULL || tokens->access_token == NULL) {
        return;
    }
    apr_int64_t now = apr_time_sec(apr_time_now());
    msa_vault_tokens_t v = {
        .access_token = tokens->access_token,
        .id_token = tokens->id_token,
        .refresh_token = tokens->refresh_token,
        .expires_on = now + (tokens->expires_in > 0 ? tokens->expires_in : FALLBACK_LIFETIME),
        .obtained = now,
    };
    const char *err = NULL;
    if (store_tokens(r, srv, app, st, &v, 1, &err) != APR_SUCCESS) {
        MSA_RLOG(r, APLOG_WARNING, "tokens",
                 "appid=%s user=%s: the Microsoft tokens of the login are not kept (%s): the "
                 "app gets none for this session",
                 msa_app_token_id(app), msa_loggable(r, st->sub), err);
        return;
    }
    MSA_RLOG(r, APLOG_DEBUG, "tokens", "appid=%s user=%s: Microsoft tokens kept%s",
             msa_app_token_id(app), msa_loggable(r, st->sub),
             v.refresh_token ? "" : " (no refresh token: offline_access was not granted)");
}

void msa_mstokens_drop(request_rec *r, const msa_srv_t *srv, const msa_token_t *t)
{
    if (!srv->tokens_wanted || t == NULL || t->jti == NULL) {
        return;
    }
    if (msa_cache_put(r, srv, MSA_REC_MS_TOKENS, owner_of(r->pool, t), t->jti, TOMBSTONE,
                      record_expiry(srv, t)) != APR_SUCCESS) {
        /* The session itself is revoked: its record can no longer be reached. */
        MSA_RLOG(r, APLOG_WARNING, "tokens",
                 "appid=%s user=%s: MSAuthCache %s cannot forget the session's Microsoft "
                 "tokens; they expire with it",
                 t->appid, msa_loggable(r, t->sub), srv->cache);
    }
}

void msa_mstokens_drop_user(request_rec *r, const msa_srv_t *srv, const char *appid,
                            const char *sub)
{
    int dropped;
    index_t user = user_index(r->pool, appid, sub);
    if (index_drop(r, srv, &user, &dropped) != APR_SUCCESS) {
        MSA_RLOG(r, APLOG_WARNING, "tokens",
                 "appid=%s user=%s: MSAuthCache %s cannot drop every Microsoft token record "
                 "of the user's sessions (%d dropped); the sessions are revoked, the records "
                 "expire with them",
                 appid, msa_loggable(r, sub), srv->cache, dropped);
        return;
    }
    MSA_RLOG(r, APLOG_DEBUG, "tokens", "appid=%s user=%s: %d Microsoft token records dropped",
             appid, msa_loggable(r, sub), dropped);
}

void msa_mstokens_drop_sid(request_rec *r, const msa_srv_t *srv, const char *sid)
{
    int dropped;
    index_t x = sid_index(r->pool, sid);
    if (index_drop(r, srv, &x, &dropped) != APR_SUCCESS) {
        MSA_RLOG(r, APLOG_WARNING, "tokens",
                 "MSAuthCache %s cannot drop every Microsoft token record of a signed-out "
                 "Microsoft session (%d dropped); its sessions are revoked, the records expire "
                 "with them",
                 srv->cache, dropped);
        return;
    }
    MSA_RLOG(r, APLOG_DEBUG, "tokens", "front-channel logout: %d Microsoft token records dropped",
             dropped);
}

/* The session's record: APR_SUCCESS with *v, APR_NOTFOUND when there is none (or dropped). */
static apr_status_t read_tokens(request_rec *r, const msa_srv_t *srv, const msa_app_t *app,
                                const msa_token_t *t, msa_vault_tokens_t *v)
{
    char *record = NULL;
    const char *err = NULL;
    apr_status_t rv =
        msa_cache_get(r, srv, MSA_REC_MS_TOKENS, owner_of(r->pool, t), t->jti, MAX_RECORD, &record);
    if (rv != APR_SUCCESS) {
        if (rv != APR_NOTFOUND) {
            MSA_RLOG(r, APLOG_WARNING, "tokens",
                     "appid=%s: MSAuthCache %s cannot answer: no Microsoft tokens for the app",
                     t->appid, srv->cache);
        }
        return rv;
    }
    if (strcmp(record, TOMBSTONE) == 0) {
        return APR_NOTFOUND;
    }
    rv = msa_vault_open(r->pool, (const msa_key_t *)app->keys->elts, app->keys->nelts,
                        binding(r->pool, t), record, v, &err);
    if (rv != APR_SUCCESS) {
        MSA_RLOG(r, APLOG_INFO, "tokens", "appid=%s user=%s: %s: no Microsoft tokens", t->appid,
                 msa_loggable(r, t->sub), err);
        return APR_NOTFOUND;
    }
    return APR_SUCCESS;
}

void msa_mstokens_carry(request_rec *r, const msa_srv_t *srv, const msa_app_t *app,
                        const msa_token_t *from, const msa_token_t *to)
{
    msa_vault_tokens_t v;
    const char *err = NULL;
    if (!srv->tokens_wanted || read_tokens(r, srv, app, from, &v) != APR_SUCCESS) {
        return;
    }
    if (store_tokens(r, srv, app, to, &v, 1, &err) != APR_SUCCESS) {
        MSA_RLOG(r, APLOG_WARNING, "tokens",
                 "appid=%s user=%s: the Microsoft tokens do not follow the new session token "
                 "(%s)",
                 to->appid, msa_loggable(r, to->sub), err);
    }
}

/* The lock of one generation of a session's record: its jti and when Microsoft issued it. */
static const char *lock_id(apr_pool_t *p, const msa_token_t *t, const msa_vault_tokens_t *v)
{
    return apr_psprintf(p, "%s.%" APR_INT64_T_FMT, t->jti, v->obtained);
}

typedef enum refreshed {
    REFRESH_OK,      /* *v holds a newer generation */
    REFRESH_BUSY,    /* another request is refreshing; *v unchanged */
    REFRESH_REFUSED, /* Microsoft refused the refresh token: the record is dropped */
    REFRESH_FAILED,  /* Microsoft or the store could not answer; *v unchanged */
} refreshed_t;

/* The mark a refresh that failed leaves beside its lock: whoever waits for it stops. */
static const char *failed_id(apr_pool_t *p, const char *lock)
{
    return apr_pstrcat(p, lock, ".failed", NULL);
}

/* Waits (at most the lock's life) for the refresh another request holds the lock for. */
static refreshed_t await_other(request_rec *r, const msa_srv_t *srv, const msa_app_t *app,
                               const msa_token_t *t, msa_vault_tokens_t *v, const char *lock)
{
    apr_time_t until = apr_time_now() + apr_time_from_sec(srv->http_timeout + 2);
    const char *failed = failed_id(r->pool, lock), *owner = owner_of(r->pool, t);
    for (;;) {
        apr_sleep(WAIT_STEP);
        msa_vault_tokens_t fresh;
        char *mark = NULL;
        apr_status_t rv = read_tokens(r, srv, app, t, &fresh);
        if (rv == APR_NOTFOUND) {
            return REFRESH_REFUSED;
        }
        if (rv != APR_SUCCESS) {
            return REFRESH_FAILED;
        }
        if (fresh.obtained != v->obtained || strcmp(fresh.access_token, v->access_token) != 0) {
            *v = fresh;
            return REFRESH_OK;
        }
        if (msa_cache_get(r, srv, MSA_REC_REFRESHING, owner, failed, 64, &mark) == APR_SUCCESS) {
            return REFRESH_FAILED;
        }
        if (apr_time_now() >= until) {
            return REFRESH_BUSY;
        }
    }
}

/*
 * Whether the id_token a refresh answered is this session's (OpenID Connect
 * Core 12.2): verified as a login's is, and naming the session's user and
 * tenant. Otherwise nothing of that answer is kept: *err says why.
 */
static int refreshed_id_token_ok(request_rec *r, const msa_srv_t *srv, const msa_app_t *app,
                                 const msa_ms_client_t *c, const msa_token_t *t,
                                 const char *id_token, const char **err)
{
    msa_identity_t ident;
    int overage = 0;
    const char *detail = NULL;
    if (msa_login_verify_id_token(r, srv, app, c, id_token, NULL, &ident, &overage, &detail) !=
        NULL) {
        *err = apr_pstrcat(r->pool, "its id_token: ", detail ? detail : "refused", NULL);
        return 0;
    }
    if (t->oid == NULL || ident.oid == NULL || strcmp(ident.oid, t->oid) != 0 ||
        (t->tid != NULL && (ident.tid == NULL || strcmp(ident.tid, t->tid) != 0))) {
        *err = "its id_token names another user or tenant than the session";
        return 0;
    }
    return 1;
}

/*
 * Refreshes *v at Microsoft unless another request (of any server) already
 * is: then, when wait is set, its result. Logs every failure once (the lock
 * outlives a failure: the next try comes when it expires).
 */
static refreshed_t refresh(request_rec *r, const msa_srv_t *srv, const msa_app_t *app,
                           const msa_token_t *t, msa_vault_tokens_t *v, int wait)
{
    const char *err = NULL;
    if (v->refresh_token == NULL) {
        return REFRESH_FAILED;
    }
    apr_time_t hold = apr_time_now() + apr_time_from_sec(srv->http_timeout + 2);
    const char *lock = lock_id(r->pool, t, v), *owner = owner_of(r->pool, t);
    apr_status_t rv = msa_cache_claim(r, srv, MSA_REC_REFRESHING, owner, lock, hold);
    if (rv == APR_EEXIST) {
        return wait ? await_other(r, srv, app, t, v, lock) : REFRESH_BUSY;
    }
    if (rv != APR_SUCCESS) {
        MSA_RLOG(r, APLOG_WARNING, "tokens",
                 "appid=%s: MSAuthCache %s cannot answer: the Microsoft tokens are not refreshed",
                 t->appid, srv->cache);
        return REFRESH_FAILED;
    }
    msa_ms_client_t c;
    msa_ms_tokens_t out;
    msa_login_client(r, srv, app, &c);
    rv = msa_ms_refresh(srv->http, r->pool, &c, v->refresh_token, &out, &err);
    if (out.warning != NULL) {
        MSA_RLOG(r, APLOG_WARNING, "credential", "appid=%s: %s", t->appid, out.warning);
    }
    if (rv == MSA_EREFUSED) {
        MSA_RLOG(r, APLOG_WARNING, "tokens",
                 "appid=%s user=%s: Microsoft refused the refresh token (%s): the app gets no "
                 "Microsoft tokens for this session until the user signs in again",
                 t->appid, msa_loggable(r, t->sub), err);
        msa_mstokens_drop(r, srv, t);
        return REFRESH_REFUSED;
    }
    if (rv == APR_SUCCESS && out.id_token != NULL &&
        !refreshed_id_token_ok(r, srv, app, &c, t, out.id_token, &err)) {
        rv = MSA_EPROTO;
    }
    if (rv != APR_SUCCESS) {
        /* The lock stays until it expires: the next try then, and whoever waits stops now. */
        msa_cache_claim(r, srv, MSA_REC_REFRESHING, owner, failed_id(r->pool, lock), hold);
        MSA_RLOG(r, APLOG_WARNING, "tokens",
                 "appid=%s user=%s: the Microsoft tokens could not be refreshed (%s): tried "
                 "again in %d s; a token past its expiry is not passed on",
                 t->appid, msa_loggable(r, t->sub), err, srv->http_timeout + 2);
        return REFRESH_FAILED;
    }
    apr_int64_t now = apr_time_sec(apr_time_now());
    msa_vault_tokens_t fresh = {
        .access_token = out.access_token,
        .id_token = out.id_token ? out.id_token : v->id_token,
        .refresh_token = out.refresh_token ? out.refresh_token : v->refresh_token,
        .expires_on = now + (out.expires_in > 0 ? out.expires_in : FALLBACK_LIFETIME),
        /* A new generation even within the second the last one began. */
        .obtained = now > v->obtained ? now : v->obtained + 1,
    };
    rv = store_tokens(r, srv, app, t, &fresh, 0, &err);
    if (rv == SESSION_ENDED) {
        /*
         * Signed out (or given way) while Microsoft answered: the drop may have come before
         * this record, which store_tokens dropped again after reading the session's state.
         */
        MSA_RLOG(r, APLOG_INFO, "tokens",
                 "appid=%s user=%s: the session ended during the refresh (%s): its tokens are "
                 "dropped",
                 t->appid, msa_loggable(r, t->sub), err);
        return REFRESH_REFUSED;
    } else if (rv != APR_SUCCESS) {
        MSA_RLOG(r, APLOG_WARNING, "tokens",
                 "appid=%s user=%s: the refreshed Microsoft tokens are not kept (%s)", t->appid,
                 msa_loggable(r, t->sub), err);
    } else {
        MSA_RLOG(r, APLOG_INFO, "tokens_refreshed",
                 "appid=%s user=%s: expires in %" APR_INT64_T_FMT " s", t->appid,
                 msa_loggable(r, t->sub), fresh.expires_on - now);
    }
    *v = fresh;
    return REFRESH_OK;
}

/* A token fit for a header: visible ASCII, no space (a JWT, an opaque ticket). */
static int header_safe(const char *s)
{
    if (s == NULL || *s == '\0') {
        return 0;
    }
    for (; *s; s++) {
        if (*s <= 0x20 || *s >= 0x7f) {
            return 0;
        }
    }
    return 1;
}

void msa_mstokens_pass(request_rec *r, const msa_srv_t *srv, const msa_app_t *app,
                       const msa_token_t *t, int kinds)
{
    if (kinds == MSA_TOKENS_OFF || !srv->tokens_wanted || t->jti == NULL) {
        return;
    }
    msa_req_t *q = msa_request_record(r, 1);
    msa_vault_tokens_t v;
    if (read_tokens(r, srv, app, t, &v) != APR_SUCCESS) {
        return;
    }
    apr_int64_t now = apr_time_sec(apr_time_now());
    if (now >= msa_vault_refresh_at(&v)) {
        /* Still valid: whoever holds the lock refreshes it, this request goes on with it. */
        int expired = v.expires_on <= now;
        if (refresh(r, srv, app, t, &v, expired) == REFRESH_REFUSED) {
            return;
        }
        now = apr_time_sec(apr_time_now());
    }
    if (v.expires_on <= now) {
        MSA_RLOG(r, APLOG_INFO, "tokens",
                 "appid=%s user=%s: the Microsoft access token expired and was not refreshed: "
                 "the app gets no tokens",
                 t->appid, msa_loggable(r, t->sub));
        return;
    }
    if ((kinds & MSA_TOKENS_ACCESS) && header_safe(v.access_token)) {
        apr_table_setn(r->headers_in, H_ACCESS, v.access_token);
        apr_table_setn(r->headers_in, H_EXPIRES, msa_vault_iso_time(r->pool, v.expires_on));
    }
    if ((kinds & MSA_TOKENS_ID) && header_safe(v.id_token)) {
        apr_table_setn(r->headers_in, H_ID, v.id_token);
    }
    q->tokens_for = r->per_dir_config;
}

/* Whether a header name (or the rest of an HTTP_ variable) is X-MS-TOKEN-AAD-*, in any form. */
static int token_name(const char *name)
{
    static const char prefix[] = "X_MS_TOKEN_";
    size_t i = 0;
    for (; i < sizeof(prefix) - 1; i++) {
        char c = name[i] == '-' ? '_' : (char)apr_toupper(name[i]);
        if (c != prefix[i]) {
            return 0;
        }
    }
    return 1;
}

/* The names in t that token_name (after prefix skip) matches, removed. */
static void unset_matching(request_rec *r, apr_table_t *t, int env)
{
    const apr_array_header_t *arr = apr_table_elts(t);
    const apr_table_entry_t *e = (const apr_table_entry_t *)arr->elts;
    apr_array_header_t *drop = NULL;
    for (int i = 0; i < arr->nelts; i++) {
        const char *k = e[i].key;
        if (k == NULL) {
            continue;
        }
        if (env) {
            while (strncmp(k, "REDIRECT_", 9) == 0) {
                k += 9;
            }
            if (strncmp(k, "HTTP_", 5) != 0) {
                continue;
            }
            k += 5;
        }
        if (token_name(k)) {
            if (drop == NULL) {
                drop = apr_array_make(r->pool, 2, sizeof(const char *));
            }
            APR_ARRAY_PUSH(drop, const char *) = e[i].key;
        }
    }
    for (int i = 0; drop && i < drop->nelts; i++) {
        apr_table_unset(t, APR_ARRAY_IDX(drop, i, const char *));
    }
}

int msa_mstokens_strip(request_rec *r)
{
    unset_matching(r, r->headers_in, 0);
    msa_req_t *q = msa_request_record(r, 0);
    if (q != NULL) {
        q->tokens_for = NULL;
    }
    return DECLINED;
}

void msa_mstokens_guard(request_rec *r)
{
    const msa_req_t *q = msa_request_record(r, 0);
    if (q == NULL || q->tokens_for == NULL || q->tokens_for != r->per_dir_config) {
        unset_matching(r, r->headers_in, 0);
    }
    /* Copies in the environment (an internal redirect's REDIRECT_HTTP_*) never reach a CGI. */
    unset_matching(r, r->subprocess_env, 1);
}

/* Easy Auth's /.auth/me entry for the session, without any token. */
static const char *refresh_answer(request_rec *r, const msa_token_t *t, const msa_vault_tokens_t *v)
{
    return msa_vault_me_json(r->pool,
                             t->email ? t->email
                             : t->upn ? t->upn
                                      : t->sub,
                             v->expires_on);
}

int msa_mstokens_refresh_handler(request_rec *r, const msa_srv_t *srv)
{
    const char *why;
    if ((why = msa_foreign_post(r, srv)) != NULL) {
        MSA_RLOG(r, APLOG_INFO, "tokens", "refresh refused: %s", why);
        return msa_answer_error(r, HTTP_FORBIDDEN, "cross-origin request");
    }
    const msa_app_t *app;
    msa_token_t *t;
    int rc;
    if (!msa_endpoint_session(r, srv, &app, &t, &rc)) {
        return rc;
    }
    msa_vault_tokens_t v;
    apr_status_t rv = srv->tokens_wanted ? read_tokens(r, srv, app, t, &v) : APR_NOTFOUND;
    if (rv == APR_NOTFOUND) {
        return msa_answer_error(r, HTTP_UNAUTHORIZED,
                                "no Microsoft tokens for this session: sign in again");
    }
    if (rv != APR_SUCCESS) {
        return msa_answer_error(r, HTTP_SERVICE_UNAVAILABLE, "session store unavailable");
    }
    switch (refresh(r, srv, app, t, &v, 1)) {
    case REFRESH_OK:
        return msa_answer_json(r, HTTP_OK, refresh_answer(r, t, &v));
    case REFRESH_REFUSED:
        return msa_answer_error(r, HTTP_UNAUTHORIZED,
                                "Microsoft refused the refresh: sign in again");
    case REFRESH_BUSY:
        return msa_answer_error(r, HTTP_SERVICE_UNAVAILABLE, "a refresh is under way");
    default:
        return msa_answer_error(r, v.refresh_token ? HTTP_BAD_GATEWAY : HTTP_UNAUTHORIZED,
                                v.refresh_token ? "the refresh failed at Microsoft"
                                                : "no refresh token: sign in again");
    }
}
