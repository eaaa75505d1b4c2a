/* The settings store: one JSON file of apps, validated like the directives, written atomically. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <apr_file_io.h>
#include <apr_lib.h>
#include <apr_strings.h>
#include <json-c/json.h>

#include "msa_json.h"
#include "msa_settings.h"
#include "msa_state.h"
#include "msa_url.h"

#define MAX_STORE (4 * 1024 * 1024)
#define MASK      "********"

/* Para's keys, and passwordless_get (MSAuthPasswordlessGET) of our own. */
const char *const msa_settings_keys[] = {
    "ms_app_id",       "ms_secret",   "ms_tenant_id",   "signin_success",   "signin_failure",
    "session_timeout", "auth_cookie", "app_secret_key", "passwordless_get", NULL};

int msa_settings_key_secret(const char *key)
{
    return strcmp(key, "ms_secret") == 0 || strcmp(key, "app_secret_key") == 0;
}

static int known_key(const char *key)
{
    for (int i = 0; msa_settings_keys[i]; i++) {
        if (strcmp(msa_settings_keys[i], key) == 0) {
            return 1;
        }
    }
    return 0;
}

/* A parsed JSON document owned by the pool; NULL with err giving the position. */
static json_object *parse_json(apr_pool_t *p, const char *text, apr_size_t len, const char **err)
{
    if (len > MAX_STORE || memchr(text, '\0', len) != NULL) {
        *err = len > MAX_STORE ? "over 4 MiB" : "holds a NUL byte";
        return NULL;
    }
    msa_json_error_t e;
    json_object *o = msa_json_parse(p, text, len, &e);
    if (o == NULL) {
        int line = 1, col = 1;
        for (size_t i = 0; i < e.end && i < len; i++) {
            if (text[i] == '\n') {
                line++;
                col = 1;
            } else {
                col++;
            }
        }
        /* Trailing blanks are fine, anything else after the document is not. */
        *err = apr_psprintf(p, "not JSON at line %d, column %d (%s)", line, col,
                            e.fault == MSA_JSON_TRAILING ? "text after the document"
                            : e.desc                     ? e.desc
                                                         : "empty");
    }
    return o;
}

static const char *string_of(json_object *v)
{
    return json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

/* Checks one key's value and sets it on a. NULL, or what is wrong. */
static const char *apply_key(apr_pool_t *p, msa_app_t *a, const char *key, json_object *v)
{
    const char *s = string_of(v), *msg;
    if (!known_key(key)) {
        return "is not a setting (ms_app_id, ms_secret, ms_tenant_id, signin_success, "
               "signin_failure, session_timeout, auth_cookie, app_secret_key, passwordless_get)";
    }
    if (strcmp(key, "session_timeout") == 0) {
        apr_int64_t n;
        const char *text = json_object_is_type(v, json_type_int)
                               ? apr_psprintf(p, "%" APR_INT64_T_FMT, json_object_get_int64(v))
                               : s;
        if (text == NULL) {
            return "must be a whole number of seconds";
        }
        if ((msg = msa_parse_seconds(text, 60, 400LL * 86400, &n)) != NULL) {
            return msg;
        }
        MSA_CFG_SET(a, session_timeout, n);
        return NULL;
    }
    if (strcmp(key, "passwordless_get") == 0) {
        if (!json_object_is_type(v, json_type_boolean)) {
            return "must be true or false";
        }
        MSA_CFG_SET(a, passwordless_get, json_object_get_boolean(v) ? 1 : 0);
        return NULL;
    }
    if (s == NULL || *s == '\0') {
        return "must be a non-empty string";
    }
    s = apr_pstrdup(p, s);
    if (strcmp(key, "ms_app_id") == 0) {
        if ((msg = msa_parse_client_id(s)) != NULL) {
            return msg;
        }
        MSA_CFG_SET(a, client_id, s);
    } else if (strcmp(key, "ms_secret") == 0) {
        /* Literal only: the store never names files or variables to read. */
        MSA_CFG_SET(a, client_secret, s);
    } else if (strcmp(key, "ms_tenant_id") == 0) {
        if ((msg = msa_parse_tenant(s)) != NULL) {
            return msg;
        }
        MSA_CFG_SET(a, tenant, s);
    } else if (strcmp(key, "signin_success") == 0 || strcmp(key, "signin_failure") == 0) {
        if ((msg = msa_url_check(p, s, 0)) != NULL) {
            return msg;
        }
        if (key[7] == 's') {
            MSA_CFG_SET(a, signin_success, s);
        } else {
            MSA_CFG_SET(a, signin_failure, s);
        }
    } else if (strcmp(key, "auth_cookie") == 0) {
        if ((msg = msa_parse_cookie_name(s)) != NULL) {
            return msg;
        }
        MSA_CFG_SET(a, cookie_name, s);
    } else { /* app_secret_key */
        if (strlen(s) < 32) {
            return "must be at least 32 bytes";
        }
        apr_array_header_t *keys = apr_array_make(p, 1, sizeof(msa_key_t));
        msa_key_t *k = apr_array_push(keys);
        k->data = (const unsigned char *)s;
        k->len = strlen(s);
        MSA_CFG_SET(a, keys, keys);
    }
    return NULL;
}

/* Builds an app from its stored object; NULL with err naming the app and key. */
static msa_app_t *app_of(apr_pool_t *p, const char *appid, json_object *o, const char **err)
{
    if (!json_object_is_type(o, json_type_object)) {
        *err = apr_psprintf(p, "app '%s' is not a JSON object", appid);
        return NULL;
    }
    msa_app_t *a = msa_app_create(p, appid);
    a->where = "the settings store";
    json_object_object_foreach(o, key, v)
    {
        const char *msg = apply_key(p, a, key, v);
        if (msg != NULL) {
            *err = apr_psprintf(p, "app '%s': %s %s", appid, key, msg);
            return NULL;
        }
    }
    return a;
}

static apr_status_t store_of(apr_pool_t *p, json_object *doc, msa_store_t **out, const char **err)
{
    json_object *apps;
    if (!json_object_is_type(doc, json_type_object) ||
        !json_object_object_get_ex(doc, "apps", &apps) ||
        !json_object_is_type(apps, json_type_object)) {
        *err = "not an object with an \"apps\" object";
        return APR_EINVAL;
    }
    msa_store_t *s = apr_pcalloc(p, sizeof(*s));
    s->apps = apr_hash_make(p);
    s->docs = apr_hash_make(p);
    json_object_object_foreach(apps, appid, o)
    {
        if (!msa_appid_valid(appid) || strcmp(appid, "default") == 0) {
            *err = apr_psprintf(p, "'%s' is not an appid", appid);
            return APR_EINVAL;
        }
        msa_app_t *a = app_of(p, appid, o, err);
        if (a == NULL) {
            return APR_EINVAL;
        }
        const char *id = apr_pstrdup(p, appid);
        apr_hash_set(s->apps, id, APR_HASH_KEY_STRING, a);
        apr_hash_set(s->docs, id, APR_HASH_KEY_STRING,
                     apr_pstrdup(p, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN)));
    }
    *out = s;
    return APR_SUCCESS;
}

apr_status_t msa_settings_parse(apr_pool_t *p, const char *text, apr_size_t len, msa_store_t **out,
                                const char **err)
{
    json_object *doc = parse_json(p, text, len, err);
    return doc ? store_of(p, doc, out, err) : APR_EINVAL;
}

/* The file's text, or "" when it does not exist. */
static apr_status_t read_file(apr_pool_t *p, const char *path, char **text, apr_size_t *len,
                              apr_finfo_t *fi, const char **err)
{
    apr_file_t *f;
    apr_status_t rv = apr_file_open(&f, path, APR_FOPEN_READ, APR_FPROT_OS_DEFAULT, p);
    if (APR_STATUS_IS_ENOENT(rv)) {
        memset(fi, 0, sizeof(*fi));
        *text = "{\"apps\":{}}";
        *len = strlen(*text);
        return APR_SUCCESS;
    }
    if (rv == APR_SUCCESS) {
        rv = apr_file_info_get(fi, APR_FINFO_MTIME | APR_FINFO_SIZE | APR_FINFO_INODE, f);
        if (rv == APR_INCOMPLETE) {
            rv = APR_SUCCESS;
        }
    }
    if (rv == APR_SUCCESS && fi->size > MAX_STORE) {
        *err = "the file is over 4 MiB";
        apr_file_close(f);
        return APR_EINVAL;
    }
    if (rv == APR_SUCCESS) {
        char *buf = apr_palloc(p, (apr_size_t)fi->size + 1);
        apr_size_t n = (apr_size_t)fi->size;
        rv = n ? apr_file_read_full(f, buf, n, &n) : APR_SUCCESS;
        buf[n] = '\0';
        *text = buf;
        *len = n;
    }
    if (rv != APR_SUCCESS) {
        *err = "the file cannot be read";
    }
    apr_file_close(f);
    return rv;
}

apr_status_t msa_settings_load(apr_pool_t *p, const char *path, msa_store_t **out, const char **err)
{
    char *text;
    apr_size_t len;
    apr_finfo_t fi;
    apr_status_t rv = read_file(p, path, &text, &len, &fi, err);
    if (rv == APR_SUCCESS) {
        rv = msa_settings_parse(p, text, len, out, err);
    }
    if (rv == APR_SUCCESS) {
        (*out)->finfo = fi;
    }
    return rv;
}

int msa_settings_changed(apr_pool_t *p, const char *path, const msa_store_t *s)
{
    apr_finfo_t fi;
    apr_status_t rv = apr_stat(&fi, path, APR_FINFO_MTIME | APR_FINFO_SIZE | APR_FINFO_INODE, p);
    if (APR_STATUS_IS_ENOENT(rv)) {
        return s->finfo.inode != 0;
    }
    if (rv != APR_SUCCESS && rv != APR_INCOMPLETE) {
        return 1;
    }
    return fi.mtime != s->finfo.mtime || fi.size != s->finfo.size || fi.inode != s->finfo.inode;
}

static char *masked_copy(apr_pool_t *p, const char *doc, int masked)
{
    json_object *o = json_tokener_parse(doc);
    if (o == NULL) {
        return NULL;
    }
    if (masked) {
        json_object_object_foreach(o, key, v)
        {
            (void)v;
            if (msa_settings_key_secret(key)) {
                json_object_object_add(o, key, json_object_new_string(MASK));
            }
        }
    }
    char *s = apr_pstrdup(p, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    return s;
}

char *msa_settings_app_json(apr_pool_t *p, const msa_store_t *s, const char *appid, int masked)
{
    const char *doc = apr_hash_get(s->docs, appid, APR_HASH_KEY_STRING);
    return doc ? masked_copy(p, doc, masked) : NULL;
}

char *msa_settings_key_json(apr_pool_t *p, const msa_store_t *s, const char *appid, const char *key)
{
    const char *doc = apr_hash_get(s->docs, appid, APR_HASH_KEY_STRING);
    json_object *o = doc ? json_tokener_parse(doc) : NULL, *v;
    char *out = NULL;
    if (o != NULL && json_object_object_get_ex(o, key, &v)) {
        json_object *w = json_object_new_object();
        json_object_object_add(w, "value",
                               msa_settings_key_secret(key) ? json_object_new_string(MASK)
                                                            : json_object_get(v));
        out = apr_pstrdup(p, json_object_to_json_string_ext(w, JSON_C_TO_STRING_PLAIN));
        json_object_put(w);
    }
    json_object_put(o);
    return out;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

char *msa_settings_list_json(apr_pool_t *p, const msa_store_t *s)
{
    apr_array_header_t *ids = apr_array_make(p, 8, sizeof(const char *));
    for (apr_hash_index_t *hi = apr_hash_first(p, s->docs); hi; hi = apr_hash_next(hi)) {
        const void *k;
        apr_hash_this(hi, &k, NULL, NULL);
        APR_ARRAY_PUSH(ids, const char *) = k;
    }
    qsort(ids->elts, (size_t)ids->nelts, sizeof(const char *), cmp_str);
    json_object *o = json_object_new_object(), *a = json_object_new_array();
    for (int i = 0; i < ids->nelts; i++) {
        json_object_array_add(a, json_object_new_string(APR_ARRAY_IDX(ids, i, const char *)));
    }
    json_object_object_add(o, "apps", a);
    char *out = apr_pstrdup(p, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    return out;
}

/* The Para key of a directive msa_app_incomplete names. */
static const char *para_key(const char *directive)
{
    return strcmp(directive, "MSAuthClientID") == 0       ? "ms_app_id"
           : strcmp(directive, "MSAuthClientSecret") == 0 ? "ms_secret"
                                                          : "app_secret_key";
}

/* Writes text to a new file next to path, then renames it over path: never a torn store. */
static apr_status_t write_atomically(apr_pool_t *p, const char *path, const char *text,
                                     const char **err)
{
    apr_file_t *f;
    char *tmpl = apr_pstrcat(p, path, ".XXXXXX", NULL);
    apr_size_t len = strlen(text), n = len;
    apr_status_t rv = apr_file_mktemp(&f, tmpl,
                                      APR_FOPEN_CREATE | APR_FOPEN_READ | APR_FOPEN_WRITE |
                                          APR_FOPEN_EXCL | APR_FOPEN_NOCLEANUP,
                                      p);
    if (rv != APR_SUCCESS) {
        *err = "cannot create a file in the store's directory";
        return rv;
    }
    apr_file_perms_set(tmpl, APR_FPROT_UREAD | APR_FPROT_UWRITE);
    rv = apr_file_write_full(f, text, len, &n);
    if (rv == APR_SUCCESS) {
        rv = apr_file_sync(f);
    }
    apr_file_close(f);
    if (rv == APR_SUCCESS) {
        rv = apr_file_rename(tmpl, path, p);
    }
    if (rv != APR_SUCCESS) {
        apr_file_remove(tmpl, p);
        *err = "cannot write the store";
        return rv;
    }
    /* The rename itself must reach the disk too. */
    char *dir = apr_pstrdup(p, path), *slash = strrchr(dir, '/');
    if (slash != NULL) {
        *(slash == dir ? slash + 1 : slash) = '\0';
        int fd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY);
        if (fd >= 0) {
            fsync(fd);
            close(fd);
        }
    }
    return APR_SUCCESS;
}

apr_status_t msa_settings_update(apr_pool_t *p, const char *path, msa_settings_op_t op,
                                 const char *appid, const char *key, const char *body,
                                 apr_size_t body_len, const msa_app_t *root, msa_store_t **out,
                                 const char **err)
{
    apr_file_t *lock;
    apr_status_t rv =
        apr_file_open(&lock, apr_pstrcat(p, path, ".lock", NULL),
                      APR_FOPEN_CREATE | APR_FOPEN_WRITE, APR_FPROT_UREAD | APR_FPROT_UWRITE, p);
    if (rv != APR_SUCCESS) {
        *err = "cannot open the store's lock file";
        return APR_EGENERAL;
    }
    rv = apr_file_lock(lock, APR_FLOCK_EXCLUSIVE);
    if (rv != APR_SUCCESS) {
        apr_file_close(lock);
        *err = "cannot lock the store";
        return APR_EGENERAL;
    }

    char *text;
    apr_size_t len;
    apr_finfo_t fi;
    json_object *doc = NULL, *apps = NULL, *app = NULL, *v = NULL;
    msa_store_t *check;
    rv = read_file(p, path, &text, &len, &fi, err);
    if (rv == APR_SUCCESS && (doc = parse_json(p, text, len, err)) != NULL &&
        store_of(p, doc, &check, err) == APR_SUCCESS) {
        json_object_object_get_ex(doc, "apps", &apps);
    }
    if (apps == NULL) {
        *err = apr_pstrcat(p, "the store is damaged (", *err, "); fix it by hand first", NULL);
        rv = APR_EGENERAL;
        goto out;
    }
    int exists = json_object_object_get_ex(apps, appid, &app);
    json_object *body_doc = NULL;
    if (op == MSA_SETTINGS_PUT_APP || op == MSA_SETTINGS_PUT_KEY) {
        body_doc = parse_json(p, body, body_len, err);
        if (body_doc == NULL) {
            *err = apr_pstrcat(p, "the body is ", *err, NULL);
            rv = APR_EINVAL;
            goto out;
        }
    }
    rv = APR_ENOENT;
    switch (op) {
    case MSA_SETTINGS_PUT_APP:
        if (!json_object_is_type(body_doc, json_type_object)) {
            *err = "the body must be a JSON object of settings";
            rv = APR_EINVAL;
            goto out;
        }
        json_object_object_add(apps, appid, json_object_get(body_doc));
        break;
    case MSA_SETTINGS_DELETE_APP:
        if (!exists) {
            *err = "no such app";
            goto out;
        }
        json_object_object_del(apps, appid);
        break;
    case MSA_SETTINGS_PUT_KEY:
        if (!exists) {
            *err = "no such app";
            goto out;
        }
        if (!known_key(key)) {
            *err = apr_psprintf(p, "'%s' is not a setting", key);
            rv = APR_EINVAL;
            goto out;
        }
        if (!json_object_is_type(body_doc, json_type_object) ||
            !json_object_object_get_ex(body_doc, "value", &v)) {
            *err = "the body must be {\"value\":…}";
            rv = APR_EINVAL;
            goto out;
        }
        json_object_object_add(app, key, json_object_get(v));
        break;
    case MSA_SETTINGS_DELETE_KEY:
        if (!exists || !json_object_object_get_ex(app, key, &v)) {
            *err = exists ? "no such key" : "no such app";
            goto out;
        }
        json_object_object_del(app, key);
        break;
    }
    /* The result must be as good as a configuration: every value, and a complete app. */
    if (op != MSA_SETTINGS_DELETE_APP) {
        json_object_object_get_ex(apps, appid, &app);
        msa_app_t *a = app_of(p, appid, app, err);
        if (a == NULL) {
            rv = APR_EINVAL;
            goto out;
        }
        const char *missing = msa_app_incomplete(msa_app_merge(p, root, a));
        if (missing != NULL) {
            *err = apr_psprintf(p, "app '%s' needs %s", appid, para_key(missing));
            rv = APR_EINVAL;
            goto out;
        }
    }
    rv = write_atomically(p, path, json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PRETTY),
                          err);
    if (rv == APR_SUCCESS) {
        rv = msa_settings_load(p, path, out, err);
    }
    if (rv != APR_SUCCESS && rv != APR_EINVAL) {
        rv = APR_EGENERAL;
    }
out:
    apr_file_unlock(lock);
    apr_file_close(lock);
    return rv;
}
