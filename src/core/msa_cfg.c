/* Configuration as plain data: create with defaults, merge by set marks, parse values. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <apr_env.h>
#include <apr_file_io.h>
#include <apr_lib.h>
#include <apr_strings.h>

#include "msa_cfg.h"
#include "msa_state.h"
#include "msa_ms.h"
#include "msa_token.h"
#include "msa_url.h"

#define MSA_KEY_MIN 32

msa_app_t *msa_app_create(apr_pool_t *p, const char *appid)
{
    msa_app_t *a = apr_pcalloc(p, sizeof(*a));
    a->appid = appid ? appid : "";
    a->tenant = "common";
    a->signin_success = "/";
    a->signin_failure = "/?error";
    a->scope = "openid profile email User.Read";
    a->session_timeout = 86400;
    a->refresh_interval = 3600;
    a->id_token_ttl = 60;
    a->cookie_path = "/";
    a->cookie_samesite = MSA_SAMESITE_LAX;
    a->cookie_secure = MSA_SECURE_AUTO;
    a->legacy_state = 0;
    a->passwordless_get = 0;
    a->groups = MSA_GROUPS_OFF;
    a->cae = 0;
    return a;
}

msa_srv_t *msa_srv_create(apr_pool_t *p)
{
    msa_srv_t *s = apr_pcalloc(p, sizeof(*s));
    s->root = msa_app_create(p, "");
    s->apps = apr_hash_make(p);
    s->callback_path = "/microsoft_auth";
    s->jwt_path = "/jwt_auth";
    s->login_host = "https://login.microsoftonline.com";
    s->graph_host = "https://graph.microsoft.com";
    s->cache = "shmcb";
    s->http_timeout = 10;
    s->http_connect_timeout = 5;
    s->clock_skew = 60;
    s->trust_forwarded = 0;
    s->metrics = 0;
    s->health = 0;
    return s;
}

msa_dir_t *msa_dir_create(apr_pool_t *p)
{
    msa_dir_t *d = apr_pcalloc(p, sizeof(*d));
    d->app = "";
    d->unauth_action = MSA_UNAUTH_AUTO;
    d->remote_user_claim = MSA_CLAIM_EMAIL;
    d->pass_claims = MSA_PASS_ENV;
    d->easy_auth = 0;
    d->accept_bearer = 1;
    d->strip_cookie = 1;
    d->pass_tokens = MSA_TOKENS_OFF;
    return d;
}

#define MERGE_FIELD(type, field, directive)                                                        \
    if (add->field##_set) {                                                                        \
        m->field = add->field;                                                                     \
        m->field##_set = 1;                                                                        \
    } else {                                                                                       \
        m->field = base->field;                                                                    \
        m->field##_set = base->field##_set;                                                        \
    }

msa_app_t *msa_app_merge(apr_pool_t *p, const msa_app_t *base, const msa_app_t *add)
{
    msa_app_t *m = apr_pcalloc(p, sizeof(*m));
    m->appid = add->appid;
    m->where = add->where ? add->where : base->where;
    MSA_APP_FIELDS(MERGE_FIELD)
    if (add->client_secret_set || add->client_cert_set || add->assertion_file_set) {
        if (!add->client_secret_set) {
            m->client_secret = NULL;
            m->client_secret_set = 0;
        }
        if (!add->client_cert_set) {
            m->client_cert = NULL;
            m->client_cert_set = 0;
        }
        if (!add->assertion_file_set) {
            m->assertion_file = NULL;
            m->assertion_file_set = 0;
        }
    }
    return m;
}

msa_dir_t *msa_dir_merge(apr_pool_t *p, const msa_dir_t *base, const msa_dir_t *add)
{
    msa_dir_t *m = apr_pcalloc(p, sizeof(*m));
    MSA_DIR_FIELDS(MERGE_FIELD)
    return m;
}

msa_srv_t *msa_srv_merge(apr_pool_t *p, const msa_srv_t *base, const msa_srv_t *add)
{
    msa_srv_t *m = apr_pcalloc(p, sizeof(*m));
    MSA_SRV_FIELDS(MERGE_FIELD)
    m->root = msa_app_merge(p, base->root, add->root);
    /* The main server's <Location> sections apply in the virtual host too. */
    m->tokens_wanted = base->tokens_wanted || add->tokens_wanted;
    /* Named apps of the main server are the vhost's too; a vhost's own block refines one. */
    m->apps = apr_hash_copy(p, base->apps);
    for (apr_hash_index_t *hi = apr_hash_first(p, add->apps); hi; hi = apr_hash_next(hi)) {
        const char *id;
        msa_app_t *a;
        apr_hash_this(hi, (const void **)&id, NULL, (void **)&a);
        msa_app_t *b = apr_hash_get(base->apps, id, APR_HASH_KEY_STRING);
        apr_hash_set(m->apps, id, APR_HASH_KEY_STRING, b ? msa_app_merge(p, b, a) : a);
    }
    return m;
}
#undef MERGE_FIELD

void msa_srv_resolve(apr_pool_t *p, msa_srv_t *s)
{
    s->resolved = apr_hash_make(p);
    if (s->root->client_id_set) {
        msa_app_t *r = msa_app_merge(p, s->root, s->root);
        if (r->cookie_name == NULL) {
            r->cookie_name = "msauth";
        }
        apr_hash_set(s->resolved, "", 0, r);
    }
    for (apr_hash_index_t *hi = apr_hash_first(p, s->apps); hi; hi = apr_hash_next(hi)) {
        const char *id;
        msa_app_t *a;
        apr_hash_this(hi, (const void **)&id, NULL, (void **)&a);
        msa_app_t *m = msa_app_merge(p, s->root, a);
        /* Each named app has its own cookie unless told otherwise; the root's name is not
         * inherited. */
        if (!a->cookie_name_set) {
            m->cookie_name = apr_pstrcat(p, "msauth-", id, NULL);
        }
        apr_hash_set(s->resolved, id, APR_HASH_KEY_STRING, m);
    }
}

const msa_app_t *msa_srv_app(const msa_srv_t *s, const char *appid)
{
    if (s->resolved == NULL) {
        return NULL;
    }
    if (appid == NULL || strcmp(appid, MSA_ROOT_APPID) == 0) {
        appid = "";
    }
    return apr_hash_get(s->resolved, appid, APR_HASH_KEY_STRING);
}

int msa_srv_has_apps(const msa_srv_t *s)
{
    /* A settings store may bring apps at any time. */
    return (s->resolved != NULL && apr_hash_count(s->resolved) > 0) || s->settings_file != NULL;
}

const char *msa_app_incomplete(const msa_app_t *a)
{
    if (a->client_id == NULL) {
        return "MSAuthClientID";
    }
    if (a->client_secret == NULL && a->client_cert == NULL && a->assertion_file == NULL) {
        return "MSAuthClientSecret";
    }
    if (a->keys == NULL || a->keys->nelts == 0) {
        return "MSAuthSecretKey";
    }
    return NULL;
}

const char *msa_app_credential_clash(apr_pool_t *p, const msa_app_t *a)
{
    const char *names[3];
    int n = 0;
    if (a->client_cert_set) {
        names[n++] = "MSAuthClientCertificate";
    }
    if (a->assertion_file_set) {
        names[n++] = "MSAuthClientAssertionFile";
    }
    if (a->client_secret_set) {
        names[n++] = "MSAuthClientSecret";
    }
    if (n < 2) {
        return NULL;
    }
    return n == 2 ? apr_pstrcat(p, names[0], " and ", names[1], NULL)
                  : apr_pstrcat(p, names[0], ", ", names[1], " and ", names[2], NULL);
}

msa_cred_t *msa_app_credential(const msa_app_t *a)
{
    return a->client_cert ? a->client_cert : a->assertion_file;
}

const char *msa_app_token_id(const msa_app_t *a)
{
    return *a->appid ? a->appid : MSA_ROOT_APPID;
}

void msa_app_audience_parts(const msa_app_t *a, const char *vhost, const char *parts[6])
{
    parts[0] = a->client_id ? a->client_id : "";
    parts[1] = ":";
    parts[2] = msa_app_token_id(a);
    parts[3] = "@";
    parts[4] = vhost ? vhost : "";
    parts[5] = NULL;
}

const char *msa_app_audience(apr_pool_t *p, const msa_app_t *a, const char *vhost)
{
    const char *parts[6];
    msa_app_audience_parts(a, vhost, parts);
    return apr_pstrcat(p, parts[0], parts[1], parts[2], parts[3], parts[4], NULL);
}

int msa_app_restricts_tenants(const msa_app_t *a)
{
    return strcasecmp(a->tenant, "common") != 0 || a->allowed_tenants != NULL;
}

int msa_app_tenant_allowed(const msa_app_t *a, const char *tid)
{
    if (tid == NULL || *tid == '\0') {
        return !msa_app_restricts_tenants(a);
    }
    const char *t = a->tenant;
    if (strcasecmp(t, "consumers") == 0 && strcasecmp(tid, MSA_MS_CONSUMERS_TID) != 0) {
        return 0;
    }
    if (strcasecmp(t, "organizations") == 0 && strcasecmp(tid, MSA_MS_CONSUMERS_TID) == 0) {
        return 0;
    }
    if (msa_parse_guid(t) == NULL && strcasecmp(t, tid) != 0) {
        return 0;
    }
    if (a->allowed_tenants != NULL) {
        for (int i = 0; i < a->allowed_tenants->nelts; i++) {
            if (strcasecmp(APR_ARRAY_IDX(a->allowed_tenants, i, const char *), tid) == 0) {
                return 1;
            }
        }
        return 0;
    }
    return 1;
}

/* Value parsers ------------------------------------------------------------------- */

const char *msa_parse_secret(apr_pool_t *p, const char *value, const char **out)
{
    if (strncmp(value, "file:", 5) == 0) {
        apr_file_t *f;
        char line[4096];
        const char *path = value + 5;
        if (apr_file_open(&f, path, APR_FOPEN_READ, APR_FPROT_OS_DEFAULT, p) != APR_SUCCESS) {
            return apr_psprintf(p, "cannot read the secret file %s", path);
        }
        apr_status_t rv = apr_file_gets(line, sizeof(line), f);
        apr_file_close(f);
        if (rv != APR_SUCCESS) {
            return apr_psprintf(p, "the secret file %s is empty", path);
        }
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '\0') {
            return apr_psprintf(p, "the first line of the secret file %s is empty", path);
        }
        *out = apr_pstrdup(p, line);
        return NULL;
    }
    if (strncmp(value, "env:", 4) == 0) {
        char *v = NULL;
        if (value[4] == '\0' || apr_env_get(&v, value + 4, p) != APR_SUCCESS || v == NULL ||
            *v == '\0') {
            return apr_psprintf(p, "the environment variable %s is not set", value + 4);
        }
        *out = v;
        return NULL;
    }
    if (*value == '\0') {
        return "the secret is empty";
    }
    *out = value;
    return NULL;
}

const char *msa_parse_key(apr_pool_t *p, const char *value, msa_key_t **out)
{
    const char *secret;
    const char *msg = msa_parse_secret(p, value, &secret);
    if (msg != NULL) {
        return msg;
    }
    if (strlen(secret) < MSA_KEY_MIN) {
        return apr_psprintf(p, "the key must be at least %d bytes", MSA_KEY_MIN);
    }
    msa_key_t *k = apr_palloc(p, sizeof(*k));
    k->data = (const unsigned char *)secret;
    k->len = strlen(secret);
    *out = k;
    return NULL;
}

const char *msa_parse_seconds(const char *value, apr_int64_t min, apr_int64_t max, apr_int64_t *out)
{
    char *end = NULL;
    if (!apr_isdigit(*value)) {
        return "expects a whole number of seconds";
    }
    apr_int64_t v = apr_strtoi64(value, &end, 10);
    if (errno == ERANGE || end == NULL || *end != '\0') {
        return "expects a whole number of seconds";
    }
    if (v < min || v > max) {
        return "is out of range";
    }
    *out = v;
    return NULL;
}

const char *msa_parse_enum(const char *value, const char *const *names, int *out)
{
    for (int i = 0; names[i] != NULL; i++) {
        if (strcasecmp(value, names[i]) == 0) {
            *out = i;
            return NULL;
        }
    }
    return "has an unknown value";
}

const char *msa_parse_path(const char *value)
{
    if (value[0] != '/' || value[1] == '/' || strlen(value) > 256) {
        return "must be a path starting with a single '/'";
    }
    for (const char *c = value; *c; c++) {
        if (!(apr_isalnum(*c) || strchr("/-._~", *c))) {
            return "may hold only letters, digits and / - . _ ~";
        }
    }
    if (value[1] != '\0' && value[strlen(value) - 1] == '/') {
        return "must not end with '/'";
    }
    return NULL;
}

const char *msa_parse_tenant(const char *value)
{
    return msa_ms_tenant_valid(value)
               ? NULL
               : "must be common, organizations, consumers, a tenant GUID or a domain";
}

const char *msa_parse_guid(const char *value)
{
    return msa_is_guid(value) ? NULL : "must be a tenant GUID";
}

const char *msa_parse_client_id(const char *value)
{
    if (*value == '\0' || strlen(value) > 128) {
        return "must be the application (client) ID";
    }
    for (const char *c = value; *c; c++) {
        if ((unsigned char)*c <= ' ' || *c == 0x7f) {
            return "must be the application (client) ID";
        }
    }
    return NULL;
}

const char *msa_parse_cookie_name(const char *value)
{
    if (*value == '\0' || strlen(value) > 64 ||
        strncmp(value, MSA_STATE_COOKIE_PREFIX, sizeof(MSA_STATE_COOKIE_PREFIX) - 1) == 0) {
        return "must be a cookie name of 1 to 64 characters";
    }
    for (const char *c = value; *c; c++) {
        if (!(apr_isalnum(*c) || strchr("!#$%&'*+-.^_`|~", *c))) {
            return "holds a character not allowed in a cookie name";
        }
    }
    return NULL;
}
