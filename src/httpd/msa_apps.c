/*
 * The app registry: the effective app for an appid, configured or from the
 * settings store (MSAuthSettingsFile), which every process sees within a
 * second of a change, without a restart.
 */
#include <apr_strings.h>
#include <apr_thread_mutex.h>
#include <http_core.h>
#include <unixd.h>

#include "msa_apps.h"
#include "msa_settings.h"

/* What this process last read of one store file. */
typedef struct store_view {
    const char *path;
    msa_store_t *store; /* the last good one; never freed while the process lives */
    apr_time_t checked;
    struct store_view *next;
} store_view_t;

static store_view_t *views;
static apr_thread_mutex_t *views_lock;
static apr_pool_t *views_pool;

/* Reads the file into a pool of its own, reporting a damaged file by name and position. */
static msa_store_t *read_store(server_rec *s, const char *path)
{
    apr_pool_t *p;
    msa_store_t *st = NULL;
    const char *err = NULL;
    apr_pool_create(&p, views_pool);
    if (msa_settings_load(p, path, &st, &err) != APR_SUCCESS) {
        MSA_SLOG(s, APLOG_ERR, 0, "settings_damaged",
                 "MSAuthSettingsFile %s: %s; the last good settings stay in service", path, err);
        apr_pool_destroy(p);
        return NULL;
    }
    return st;
}

static store_view_t *view_of(server_rec *s, const char *path)
{
    for (store_view_t *v = views; v; v = v->next) {
        if (strcmp(v->path, path) == 0) {
            return v;
        }
    }
    store_view_t *v = apr_pcalloc(views_pool, sizeof(*v));
    v->path = apr_pstrdup(views_pool, path);
    v->store = read_store(s, path);
    v->checked = apr_time_now();
    v->next = views;
    views = v;
    return v;
}

/* The session cookie names of every configured app of every virtual host. */
static apr_hash_t *cookie_names;

int msa_apps_cookie_name(const char *name)
{
    return cookie_names != NULL && apr_hash_get(cookie_names, name, APR_HASH_KEY_STRING) != NULL;
}

int msa_apps_post_config(apr_pool_t *pconf, apr_pool_t *ptemp, server_rec *s)
{
    views = NULL;
    views_pool = pconf;
    apr_thread_mutex_create(&views_lock, APR_THREAD_MUTEX_DEFAULT, pconf);
    /* Browsers send a host's cookies to all its ports and virtual hosts: every app's counts. */
    cookie_names = apr_hash_make(pconf);
    for (server_rec *vs = s; vs; vs = vs->next) {
        msa_srv_t *srv = msa_srv_get(vs);
        msa_srv_resolve(pconf, srv);
        for (apr_hash_index_t *hi = apr_hash_first(ptemp, srv->resolved); hi;
             hi = apr_hash_next(hi)) {
            const msa_app_t *a;
            apr_hash_this(hi, NULL, NULL, (void **)&a);
            if (a->cookie_name != NULL) {
                apr_hash_set(cookie_names, a->cookie_name, APR_HASH_KEY_STRING, "");
            }
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
        view_of(vs, srv->settings_file);
    }
    return OK;
}

/* The store as this process sees it, looked at again at most once a second. */
msa_store_t *msa_apps_store(request_rec *r, const msa_srv_t *srv)
{
    apr_time_t now = apr_time_now();
    apr_thread_mutex_lock(views_lock);
    store_view_t *v = view_of(r->server, srv->settings_file);
    if (now - v->checked >= apr_time_from_sec(1)) {
        v->checked = now;
        if (v->store == NULL || msa_settings_changed(r->pool, v->path, v->store)) {
            msa_store_t *fresh = read_store(r->server, v->path);
            if (fresh != NULL) {
                v->store = fresh;
            } else if (v->store != NULL) {
                /* Do not report the same damage every second. */
                apr_stat(&v->store->finfo, v->path,
                         APR_FINFO_MTIME | APR_FINFO_SIZE | APR_FINFO_INODE, r->pool);
            }
        }
    }
    msa_store_t *st = v->store;
    apr_thread_mutex_unlock(views_lock);
    return st;
}

const msa_app_t *msa_app_lookup(request_rec *r, const msa_srv_t *srv, const char *appid)
{
    if (srv->settings_file != NULL && appid != NULL && *appid && strcmp(appid, "default") != 0) {
        msa_store_t *st = msa_apps_store(r, srv);
        const msa_app_t *stored = st ? apr_hash_get(st->apps, appid, APR_HASH_KEY_STRING) : NULL;
        if (stored != NULL) {
            /* A stored app overrides a configured one; what it lacks comes from the root app. */
            msa_app_t *a = msa_app_merge(r->pool, srv->root, stored);
            if (!stored->cookie_name_set) {
                a->cookie_name = apr_pstrcat(r->pool, "msauth-", appid, NULL);
            }
            return msa_app_incomplete(a) ? NULL : a;
        }
    }
    return msa_srv_app(srv, appid);
}

apr_array_header_t *msa_stored_cookie_names(request_rec *r, const msa_srv_t *srv)
{
    apr_array_header_t *names = apr_array_make(r->pool, 4, sizeof(const char *));
    msa_store_t *st = srv->settings_file ? msa_apps_store(r, srv) : NULL;
    if (st == NULL) {
        return names;
    }
    for (apr_hash_index_t *hi = apr_hash_first(r->pool, st->apps); hi; hi = apr_hash_next(hi)) {
        const msa_app_t *a;
        apr_hash_this(hi, NULL, NULL, (void **)&a);
        if (a->cookie_name_set) {
            APR_ARRAY_PUSH(names, const char *) = a->cookie_name;
        }
    }
    return names;
}
