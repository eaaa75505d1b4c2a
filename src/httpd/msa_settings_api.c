/*
 * The settings store in the server: apps added at run time through
 * <callback>/_settings (INTERFACE.md section 7), seen by every process
 * within a second of a change, without a restart.
 */
#include <apr_strings.h>
#include <apr_thread_mutex.h>
#include <http_core.h>
#include <http_protocol.h>
#include <unixd.h>

#include "msa_api.h"
#include "msa_module.h"
#include "msa_settings.h"
#include "msa_state.h"

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

int msa_settings_post_config(apr_pool_t *pconf, apr_pool_t *ptemp, server_rec *s)
{
    views = NULL;
    views_pool = pconf;
    apr_thread_mutex_create(&views_lock, APR_THREAD_MUTEX_DEFAULT, pconf);
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
static msa_store_t *current_store(request_rec *r, const msa_srv_t *srv)
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
        msa_store_t *st = current_store(r, srv);
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
    msa_store_t *st = srv->settings_file ? current_store(r, srv) : NULL;
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

/* The API ------------------------------------------------------------------------- */

static int authorised(request_rec *r, const msa_srv_t *srv)
{
    const char *auth = apr_table_get(r->headers_in, "Authorization");
    if (auth != NULL && strncasecmp(auth, "Bearer ", 7) == 0 &&
        msa_ct_streq(auth + 7, srv->admin_key)) {
        return 1;
    }
    /* Never the presented value: it may be a mistyped real key. */
    MSA_RLOG(r, APLOG_WARNING, "settings_forbidden", "%s %s refused: %s admin key", r->method,
             r->uri, auth ? "wrong" : "no");
    return 0;
}

int msa_settings_api(request_rec *r, const msa_srv_t *srv, const char *rest)
{
    if (srv->settings_file == NULL || srv->admin_key == NULL) {
        return DECLINED;
    }
    if (!authorised(r, srv)) {
        return msa_answer_error(r, HTTP_FORBIDDEN, "forbidden");
    }
    /* rest: "", "<appid>" or "<appid>/<key>" */
    const char *slash = strchr(rest, '/');
    const char *appid = slash ? apr_pstrmemdup(r->pool, rest, (apr_size_t)(slash - rest)) : rest;
    const char *key = slash ? slash + 1 : NULL;
    if (*appid && (!msa_appid_valid(appid) || strcmp(appid, "default") == 0)) {
        return msa_answer_error(r, HTTP_BAD_REQUEST, "not an appid");
    }
    if (key != NULL && (*key == '\0' || strchr(key, '/') != NULL)) {
        return msa_answer_error(r, HTTP_NOT_FOUND, "not found");
    }
    if (r->method_number == M_GET) {
        msa_store_t *st = current_store(r, srv);
        if (st == NULL) {
            return msa_answer_error(r, HTTP_SERVICE_UNAVAILABLE,
                                    "the settings store cannot be read");
        }
        /* A read right after a write in another process must see it. */
        if (msa_settings_changed(r->pool, srv->settings_file, st)) {
            const char *err;
            msa_store_t *fresh;
            if (msa_settings_load(r->pool, srv->settings_file, &fresh, &err) == APR_SUCCESS) {
                st = fresh;
            }
        }
        const char *doc = !*appid ? msa_settings_list_json(r->pool, st)
                          : key   ? msa_settings_key_json(r->pool, st, appid, key)
                                  : msa_settings_app_json(r->pool, st, appid, 1);
        return doc ? msa_answer_json(r, HTTP_OK, doc)
                   : msa_answer_error(r, HTTP_NOT_FOUND, "not found");
    }
    if (!*appid) {
        apr_table_setn(r->err_headers_out, "Allow", "GET");
        return msa_answer_error(r, HTTP_METHOD_NOT_ALLOWED, "method not allowed");
    }
    msa_settings_op_t op;
    if (r->method_number == M_PUT) {
        op = key ? MSA_SETTINGS_PUT_KEY : MSA_SETTINGS_PUT_APP;
    } else if (r->method_number == M_DELETE) {
        op = key ? MSA_SETTINGS_DELETE_KEY : MSA_SETTINGS_DELETE_APP;
    } else {
        apr_table_setn(r->err_headers_out, "Allow", "GET, PUT, DELETE");
        return msa_answer_error(r, HTTP_METHOD_NOT_ALLOWED, "method not allowed");
    }
    char *body = "";
    apr_size_t len = 0;
    if (op == MSA_SETTINGS_PUT_APP || op == MSA_SETTINGS_PUT_KEY) {
        int rc = msa_read_body(r, &body, &len);
        if (rc == HTTP_REQUEST_ENTITY_TOO_LARGE) {
            return msa_answer_error(r, rc, "the body is over 64 KiB");
        }
        if (rc != OK) {
            return msa_answer_error(r, HTTP_BAD_REQUEST, "the body could not be read");
        }
    }
    msa_store_t *st = NULL;
    const char *err = NULL;
    apr_status_t rv = msa_settings_update(r->pool, srv->settings_file, op, appid, key, body, len,
                                          srv->root, &st, &err);
    if (rv == APR_ENOENT) {
        return msa_answer_error(r, HTTP_NOT_FOUND, err);
    }
    if (rv == APR_EINVAL) {
        return msa_answer_error(r, HTTP_BAD_REQUEST, err);
    }
    if (rv != APR_SUCCESS) {
        MSA_RLOG(r, APLOG_ERR, "settings_write", "MSAuthSettingsFile %s: %s", srv->settings_file,
                 err);
        return msa_answer_error(r, HTTP_SERVICE_UNAVAILABLE, err);
    }
    MSA_RLOG(r, APLOG_NOTICE, "settings_changed", "%s %s", r->method, r->uri);
    if (op == MSA_SETTINGS_DELETE_APP) {
        return msa_answer_json(
            r, HTTP_OK,
            msa_api_error_json(r->pool, 200, apr_psprintf(r->pool, "app %s deleted", appid)));
    }
    return msa_answer_json(r, HTTP_OK, msa_settings_app_json(r->pool, st, appid, 1));
}
