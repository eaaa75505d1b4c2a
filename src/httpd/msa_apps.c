/*
 * The app registry: the effective app for an appid, configured or from the
 * settings store (MSAuthSettingsFile), which every process sees within a
 * second of a change, without a restart.
 *
 * Requests read an immutable snapshot of each store file (its apps merged
 * with each virtual host's root app, their cookie names and keys): no lock
 * and no stat on their path. A thread of each child looks at the file five
 * times a second and publishes a new snapshot in a slot of a ring that no request is
 * reading; an old snapshot's pool is freed once no request holds it. A long
 * request holds only the slot it started with.
 */
#include <apr_atomic.h>
#include <apr_strings.h>
#include <apr_thread_proc.h>
#include <http_core.h>
#include <unixd.h>

#include "msa_api.h"
#include "msa_apps.h"
#include "msa_jose.h"
#include "msa_settings.h"

#define SLOTS 64 /* snapshots that long requests may hold while a newer one serves */

/* What one store file holds, as requests see it; never changed once published. */
typedef struct snapshot {
    apr_pool_t *pool;
    msa_store_t *store;       /* NULL: no good file read yet */
    apr_hash_t *merged;       /* "<srv>/<appid>" -> msa_app_t * (INCOMPLETE: unusable) */
    apr_hash_t *cookie_names; /* the auth_cookie names the store sets (a set) */
    apr_hash_t *keys;         /* appid -> apr_array_header_t * of the apps' key arrays */
} snapshot_t;

static const msa_app_t incomplete_app;
#define INCOMPLETE (&incomplete_app)

/*
 * One store file in this process. A reader counts itself in refs[k] of the
 * current slot k before it reads slot[k], and looks again if current moved;
 * the watcher fills only another slot, after emptying it and seeing its
 * count at zero, then makes it current.
 */
typedef struct store_view {
    const char *path;
    const char *key;          /* the request pool's userdata key of the held snapshot */
    apr_array_header_t *srvs; /* msa_srv_t *: the virtual hosts that use the file */
    snapshot_t *volatile slot[SLOTS];
    volatile apr_uint32_t refs[SLOTS];
    volatile apr_uint32_t current;
    int waited;          /* watcher only: a publish found every slot held */
    snapshot_t *pending; /* watcher only: read, waiting for its slot to empty */
    apr_finfo_t damaged; /* watcher only: the file last found damaged */
    struct store_view *next;
} store_view_t;

static store_view_t *views;
static apr_pool_t *views_pool;

static const char *merged_key(apr_pool_t *p, const msa_srv_t *srv, const char *appid)
{
    return apr_psprintf(p, "%pp/%s", (const void *)srv, appid);
}

/*
 * Reads the file into a snapshot of its own pool, reporting a damaged file by
 * name and position (NULL then).
 */
static snapshot_t *read_snapshot(server_rec *s, store_view_t *v)
{
    apr_pool_t *p;
    msa_store_t *st = NULL;
    const char *err = NULL;
    apr_pool_create(&p, NULL); /* not under pconf: the watcher thread makes and frees these */
    if (msa_settings_load(p, v->path, &st, &err) != APR_SUCCESS) {
        MSA_SLOG(s, APLOG_ERR, 0, "settings_damaged",
                 "MSAuthSettingsFile %s: %s; the last good settings stay in service", v->path, err);
        apr_stat(&v->damaged, v->path, APR_FINFO_MTIME | APR_FINFO_SIZE | APR_FINFO_INODE, p);
        apr_pool_destroy(p);
        return NULL;
    }
    snapshot_t *snap = apr_pcalloc(p, sizeof(*snap));
    snap->pool = p;
    snap->store = st;
    snap->merged = apr_hash_make(p);
    snap->cookie_names = apr_hash_make(p);
    snap->keys = apr_hash_make(p);
    for (apr_hash_index_t *hi = apr_hash_first(p, st->apps); hi; hi = apr_hash_next(hi)) {
        const char *appid;
        const msa_app_t *stored;
        apr_hash_this(hi, (const void **)&appid, NULL, (void **)&stored);
        if (stored->cookie_name_set) {
            apr_hash_set(snap->cookie_names, stored->cookie_name, APR_HASH_KEY_STRING, "");
        }
        for (int i = 0; i < v->srvs->nelts; i++) {
            const msa_srv_t *srv = APR_ARRAY_IDX(v->srvs, i, const msa_srv_t *);
            /* A stored app overrides a configured one; what it lacks comes from the root app. */
            msa_app_t *a = msa_app_merge(p, srv->root, stored);
            if (!stored->cookie_name_set) {
                a->cookie_name = apr_pstrcat(p, "msauth-", appid, NULL);
            }
            apr_hash_set(snap->merged, merged_key(p, srv, appid), APR_HASH_KEY_STRING,
                         msa_app_incomplete(a) ? INCOMPLETE : a);
            if (a->keys != NULL && a->keys->nelts > 0) {
                apr_array_header_t *ks = apr_hash_get(snap->keys, appid, APR_HASH_KEY_STRING);
                if (ks == NULL) {
                    ks = apr_array_make(p, 1, sizeof(const apr_array_header_t *));
                    apr_hash_set(snap->keys, appid, APR_HASH_KEY_STRING, ks);
                }
                APR_ARRAY_PUSH(ks, const apr_array_header_t *) = a->keys;
            }
        }
    }
    return snap;
}

static store_view_t *view_of(const char *path)
{
    for (store_view_t *v = views; v; v = v->next) {
        if (strcmp(v->path, path) == 0) {
            return v;
        }
    }
    store_view_t *v = apr_pcalloc(views_pool, sizeof(*v));
    v->path = apr_pstrdup(views_pool, path);
    v->key = apr_pstrcat(views_pool, "msauth-settings:", path, NULL);
    v->srvs = apr_array_make(views_pool, 2, sizeof(const msa_srv_t *));
    v->next = views;
    views = v;
    return v;
}

/* Publishes the pending snapshot in a slot no request reads, and makes it current. */
static void publish(server_rec *s, store_view_t *v)
{
    apr_uint32_t cur = apr_atomic_read32(&v->current);
    for (apr_uint32_t n = 1; n < SLOTS; n++) {
        apr_uint32_t k = (cur + n) % SLOTS;
        snapshot_t *old = apr_atomic_xchgptr((volatile void **)&v->slot[k], NULL);
        if (apr_atomic_read32(&v->refs[k]) != 0) {
            apr_atomic_xchgptr((volatile void **)&v->slot[k], old); /* a request still reads it */
            continue;
        }
        if (old != NULL) {
            apr_pool_destroy(old->pool);
        }
        apr_atomic_xchgptr((volatile void **)&v->slot[k], v->pending);
        v->pending = NULL;
        apr_atomic_set32(&v->current, k);
        v->waited = 0;
        return;
    }
    if (!v->waited) {
        v->waited = 1;
        MSA_SLOG(s, APLOG_WARNING, 0, "settings",
                 "MSAuthSettingsFile %s: a change waits for one of %d older settings that "
                 "running requests still read",
                 v->path, SLOTS - 1);
    }
}

/* The watcher's look at one file. */
static void refresh(server_rec *s, store_view_t *v, apr_pool_t *tmp)
{
    if (v->pending == NULL) {
        const snapshot_t *cur = v->slot[apr_atomic_read32(&v->current)];
        if (cur->store != NULL && !msa_settings_changed(tmp, v->path, cur->store)) {
            return;
        }
        /* A damaged file is reported once, not every second. */
        msa_store_t seen = {.finfo = v->damaged};
        if (v->damaged.mtime != 0 && !msa_settings_changed(tmp, v->path, &seen)) {
            return;
        }
        if ((v->pending = read_snapshot(s, v)) == NULL) {
            return;
        }
        v->damaged.mtime = 0;
    }
    publish(s, v);
}

/* A restart reads the files again: this generation's snapshots go with its pconf. */
static apr_status_t drop_snapshots(void *data)
{
    (void)data;
    for (store_view_t *v = views; v; v = v->next) {
        for (int k = 0; k < SLOTS; k++) {
            if (v->slot[k] != NULL) {
                apr_pool_destroy(v->slot[k]->pool);
                v->slot[k] = NULL;
            }
        }
        if (v->pending != NULL) {
            apr_pool_destroy(v->pending->pool);
            v->pending = NULL;
        }
    }
    views = NULL;
    return APR_SUCCESS;
}

static volatile apr_uint32_t stopping;

static void *APR_THREAD_FUNC watcher(apr_thread_t *thread, void *data)
{
    server_rec *s = data;
    apr_pool_t *tmp;
    apr_pool_create(&tmp, NULL);
    while (!apr_atomic_read32(&stopping)) {
        /* Five looks a second: a change is served everywhere well within the second. */
        for (int i = 0; i < 2 && !apr_atomic_read32(&stopping); i++) {
            apr_sleep(apr_time_from_msec(100));
        }
        for (store_view_t *v = views; v && !apr_atomic_read32(&stopping); v = v->next) {
            refresh(s, v, tmp);
            apr_pool_clear(tmp);
        }
    }
    apr_pool_destroy(tmp);
    apr_thread_exit(thread, APR_SUCCESS);
    return NULL;
}

static apr_thread_t *watcher_thread;

static apr_status_t stop_watcher(void *data)
{
    apr_status_t rv;
    (void)data;
    apr_atomic_set32(&stopping, 1);
    apr_thread_join(&rv, watcher_thread);
    return APR_SUCCESS;
}

void msa_apps_child_init(apr_pool_t *p, server_rec *s)
{
    if (views == NULL) {
        return;
    }
    /* A new child serves nothing older than the files: it looks before its first request. */
    apr_pool_t *tmp;
    apr_pool_create(&tmp, p);
    for (store_view_t *v = views; v; v = v->next) {
        refresh(s, v, tmp);
        apr_pool_clear(tmp);
    }
    apr_pool_destroy(tmp);
    apr_atomic_set32(&stopping, 0);
    if (apr_thread_create(&watcher_thread, NULL, watcher, s, p) != APR_SUCCESS) {
        MSA_SLOG(s, APLOG_CRIT, 0, "settings",
                 "no thread to watch MSAuthSettingsFile: stored apps keep their startup settings");
        return;
    }
    apr_pool_cleanup_register(p, NULL, stop_watcher, apr_pool_cleanup_null);
}

typedef struct held {
    store_view_t *v;
    apr_uint32_t k;
    const snapshot_t *snap;
} held_t;

static apr_status_t release(void *data)
{
    held_t *h = data;
    apr_atomic_dec32(&h->v->refs[h->k]);
    return APR_SUCCESS;
}

/* The snapshot of v this request reads (the same for all its lookups and subrequests). */
static const snapshot_t *snapshot_of_view(request_rec *r, store_view_t *v)
{
    request_rec *top = r;
    while (top->main != NULL) {
        top = top->main;
    }
    held_t *h = NULL;
    if (apr_pool_userdata_get((void **)&h, v->key, top->pool) == APR_SUCCESS && h != NULL) {
        return h->snap;
    }
    h = apr_palloc(top->pool, sizeof(*h));
    h->v = v;
    for (;;) {
        h->k = apr_atomic_read32(&v->current);
        apr_atomic_inc32(&v->refs[h->k]);
        h->snap = apr_atomic_casptr((volatile void **)&v->slot[h->k], NULL, NULL);
        if (h->snap != NULL && apr_atomic_read32(&v->current) == h->k) {
            break;
        }
        apr_atomic_dec32(&v->refs[h->k]); /* the watcher moved on: look again */
    }
    apr_pool_cleanup_register(top->pool, h, release, apr_pool_cleanup_null);
    apr_pool_userdata_setn(h, v->key, NULL, top->pool);
    return h->snap;
}

static const snapshot_t *snapshot_of(request_rec *r, const msa_srv_t *srv)
{
    return snapshot_of_view(r, view_of(srv->settings_file));
}

/* The session cookie names of every configured app of every virtual host. */
static apr_hash_t *cookie_names;
/* appid ("default" for root apps) -> apr_array_header_t * of key arrays, every virtual host. */
static apr_hash_t *configured_keys;

static void add_keys(apr_pool_t *p, apr_hash_t *by_appid, const char *appid,
                     const apr_array_header_t *keys)
{
    if (keys == NULL || keys->nelts == 0) {
        return;
    }
    apr_array_header_t *ks = apr_hash_get(by_appid, appid, APR_HASH_KEY_STRING);
    if (ks == NULL) {
        ks = apr_array_make(p, 1, sizeof(const apr_array_header_t *));
        apr_hash_set(by_appid, appid, APR_HASH_KEY_STRING, ks);
    }
    APR_ARRAY_PUSH(ks, const apr_array_header_t *) = keys;
}

/* Whether jwt verifies under one of the key arrays in ks (const apr_array_header_t *). */
static int signed_by(apr_pool_t *p, const char *jwt, const apr_array_header_t *ks)
{
    char *payload;
    const char *err;
    for (int i = 0; ks != NULL && i < ks->nelts; i++) {
        const apr_array_header_t *keys = APR_ARRAY_IDX(ks, i, const apr_array_header_t *);
        if (msa_jws_hs256_verify(p, jwt, (const msa_key_t *)keys->elts, keys->nelts, &payload,
                                 &err) == APR_SUCCESS) {
            return 1;
        }
    }
    return 0;
}

/* Whether value (len bytes) is a token of one of the server's apps, configured or stored. */
static int own_token(request_rec *r, const char *value, apr_size_t len)
{
    /* Only a compact JWS whose claims name an app is worth a MAC. */
    if (len < 3 || memcmp(value, "eyJ", 3) != 0 || memchr(value, '.', len) == NULL) {
        return 0;
    }
    const char *jwt = apr_pstrmemdup(r->pool, value, len);
    const char *appid = msa_api_peek_appid(r->pool, jwt);
    if (appid == NULL) {
        return 0;
    }
    if (configured_keys != NULL &&
        signed_by(r->pool, jwt, apr_hash_get(configured_keys, appid, APR_HASH_KEY_STRING))) {
        return 1;
    }
    for (store_view_t *v = views; v; v = v->next) {
        const snapshot_t *snap = snapshot_of_view(r, v);
        if (signed_by(r->pool, jwt, apr_hash_get(snap->keys, appid, APR_HASH_KEY_STRING))) {
            return 1;
        }
    }
    return 0;
}

/* Whether name (len bytes) is an auth_cookie a settings store sets (any virtual host's). */
static int stored_cookie_name(request_rec *r, const char *name, apr_size_t len)
{
    for (store_view_t *v = views; v; v = v->next) {
        if (apr_hash_get(snapshot_of_view(r, v)->cookie_names, name, (apr_ssize_t)len) != NULL) {
            return 1;
        }
    }
    return 0;
}

/* A cheap first look: which (length, first byte, last byte) of cookie_names' names occur. */
static apr_uint64_t cookie_name_marks;

static apr_uint64_t cookie_name_mark(const char *name, apr_size_t len)
{
    if (len == 0) {
        return 1;
    }
    unsigned h = (unsigned)len * 31u + (unsigned char)name[0] * 7u + (unsigned char)name[len - 1];
    return (apr_uint64_t)1 << (h % 64);
}

int msa_apps_cookie_name(const char *name, apr_size_t len)
{
    return cookie_names != NULL && (cookie_name_marks & cookie_name_mark(name, len)) &&
           apr_hash_get(cookie_names, name, (apr_ssize_t)len) != NULL;
}

int msa_apps_own_cookie(request_rec *r, const char *name, apr_size_t nlen, const char *value,
                        apr_size_t vlen)
{
    /* The cheap looks first: a name's mark, a store at all, a value that opens like a JWS. */
    return msa_apps_cookie_name(name, nlen) ||
           (views != NULL && stored_cookie_name(r, name, nlen)) ||
           (vlen > 3 && value[0] == 'e' && value[1] == 'y' && value[2] == 'J' &&
            own_token(r, value, vlen));
}

int msa_apps_post_config(apr_pool_t *pconf, apr_pool_t *ptemp, server_rec *s)
{
    views = NULL;
    views_pool = pconf;
    /* Browsers send a host's cookies to all its ports and virtual hosts: every app's counts. */
    cookie_names = apr_hash_make(pconf);
    cookie_name_marks = 0;
    configured_keys = apr_hash_make(pconf);
    for (server_rec *vs = s; vs; vs = vs->next) {
        msa_srv_t *srv = msa_srv_get(vs);
        msa_srv_resolve(pconf, srv);
        for (apr_hash_index_t *hi = apr_hash_first(ptemp, srv->resolved); hi;
             hi = apr_hash_next(hi)) {
            const msa_app_t *a;
            apr_hash_this(hi, NULL, NULL, (void **)&a);
            if (a->cookie_name != NULL) {
                apr_hash_set(cookie_names, a->cookie_name, APR_HASH_KEY_STRING, "");
                cookie_name_marks |= cookie_name_mark(a->cookie_name, strlen(a->cookie_name));
            }
            add_keys(pconf, configured_keys, msa_app_token_id(a), a->keys);
        }
    }
    for (server_rec *vs = s; vs; vs = vs->next) {
        const msa_srv_t *srv = msa_srv_get(vs);
        if (srv->settings_file == NULL) {
            continue;
        }
        /* Children run as User/Group and must be able to replace the file. */
        apr_finfo_t fi;
        if (apr_stat(&fi, srv->settings_file, APR_FINFO_TYPE, ptemp) != APR_SUCCESS) {
            apr_file_t *f;
            if (apr_file_open(&f, srv->settings_file,
                              APR_FOPEN_CREATE | APR_FOPEN_WRITE | APR_FOPEN_EXCL,
                              APR_FPROT_UREAD | APR_FPROT_UWRITE, ptemp) == APR_SUCCESS) {
                apr_file_puts("{\"apps\":{}}\n", f);
                apr_file_close(f);
            }
        }
        if (geteuid() == 0) {
            if (chown(srv->settings_file, ap_unixd_config.user_id, ap_unixd_config.group_id) != 0) {
                MSA_SLOG(vs, APLOG_WARNING, 0, "settings", "MSAuthSettingsFile %s: cannot chown",
                         srv->settings_file);
            }
        }
        store_view_t *v = view_of(srv->settings_file);
        APR_ARRAY_PUSH(v->srvs, const msa_srv_t *) = srv;
    }
    /* The first snapshot, read before the children start. */
    for (store_view_t *v = views; v; v = v->next) {
        snapshot_t *snap = read_snapshot(s, v);
        if (snap == NULL) {
            apr_pool_t *p;
            apr_pool_create(&p, NULL);
            snap = apr_pcalloc(p, sizeof(*snap));
            snap->pool = p;
            snap->merged = apr_hash_make(p);
            snap->cookie_names = apr_hash_make(p);
            snap->keys = apr_hash_make(p);
        }
        v->slot[0] = snap;
    }
    apr_pool_cleanup_register(pconf, NULL, drop_snapshots, apr_pool_cleanup_null);
    return OK;
}

/* The settings store as this request sees it, or NULL. */
msa_store_t *msa_apps_store(request_rec *r, const msa_srv_t *srv)
{
    return srv->settings_file ? snapshot_of(r, srv)->store : NULL;
}

const msa_app_t *msa_app_lookup(request_rec *r, const msa_srv_t *srv, const char *appid)
{
    if (srv->settings_file != NULL && appid != NULL && *appid && strcmp(appid, "default") != 0) {
        const snapshot_t *snap = snapshot_of(r, srv);
        const msa_app_t *a =
            apr_hash_get(snap->merged, merged_key(r->pool, srv, appid), APR_HASH_KEY_STRING);
        if (a != NULL) {
            return a == INCOMPLETE ? NULL : a;
        }
    }
    return msa_srv_app(srv, appid);
}

const char *msa_apps_settings_state(request_rec *r, const msa_srv_t *srv)
{
    if (srv->settings_file == NULL) {
        return NULL;
    }
    if (snapshot_of(r, srv)->store == NULL) {
        return "unreadable";
    }
    /* Written by the watcher thread; an informational read. */
    return view_of(srv->settings_file)->damaged.mtime != 0 ? "damaged" : "ok";
}
