/*
 * What every handler of the module needs of a request: its origin and scheme,
 * cookies, redirects, JSON answers, the body, a value fit for a log line, and
 * what AuthType Microsoft accepted for it. Includes no other glue file.
 */
#include <apr_lib.h>
#include <apr_strings.h>
#include <http_core.h>
#include <http_protocol.h>
#include <http_request.h>

#include "msa_api.h"
#include "msa_cookie.h"
#include "msa_request.h"
#include "msa_url.h"

/* A forwarded header's first value when it is plain enough to trust as a host or scheme. */
static const char *forwarded(request_rec *r, const char *name)
{
    const char *v = apr_table_get(r->headers_in, name);
    if (v == NULL) {
        return NULL;
    }
    const char *end = v + strcspn(v, ",");
    while (end > v && end[-1] == ' ') {
        end--;
    }
    for (const char *c = v; c < end; c++) {
        if (!(apr_isalnum(*c) || *c == '.' || *c == '-' || *c == ':' || *c == '[' || *c == ']')) {
            return NULL;
        }
    }
    return end > v ? apr_pstrmemdup(r->pool, v, (apr_size_t)(end - v)) : NULL;
}

int msa_request_is_https(request_rec *r, const msa_srv_t *srv)
{
    if (srv->trust_forwarded) {
        const char *proto = forwarded(r, "X-Forwarded-Proto");
        if (proto != NULL) {
            return strcasecmp(proto, "https") == 0;
        }
    }
    return strcmp(ap_http_scheme(r), "https") == 0;
}

const char *msa_self_origin(request_rec *r, const msa_srv_t *srv)
{
    if (srv->trust_forwarded) {
        const char *host = forwarded(r, "X-Forwarded-Host");
        if (host != NULL) {
            return apr_pstrcat(r->pool, msa_request_is_https(r, srv) ? "https" : "http", "://",
                               host, NULL);
        }
    }
    const char *origin = ap_construct_url(r->pool, "/", r);
    return apr_pstrmemdup(r->pool, origin, strlen(origin) - 1);
}

const char *msa_sent_cookies(request_rec *r)
{
    const msa_req_t *q = msa_request_record(r, 0);
    return q && q->kept ? q->sent_cookie : apr_table_get(r->headers_in, "Cookie");
}

const char *msa_cookie_get(request_rec *r, const char *name)
{
    return msa_cookie_find(r->pool, apr_table_get(r->headers_in, "Cookie"), name);
}

static const char *const samesite_names[] = {"Lax", "Strict", "None"};

void msa_cookie_set(request_rec *r, const msa_srv_t *srv, const msa_app_t *app, const char *name,
                    const char *value, const char *path, apr_int64_t max_age, int samesite)
{
    msa_cookie_attrs_t attrs = {
        .path = path,
        .domain = app->cookie_domain,
        .max_age = max_age,
        .samesite = samesite_names[samesite],
        .secure = app->cookie_secure == MSA_SECURE_ON ||
                  (app->cookie_secure == MSA_SECURE_AUTO && msa_request_is_https(r, srv)) ||
                  samesite == MSA_SAMESITE_NONE,
    };
    apr_table_addn(r->err_headers_out, "Set-Cookie",
                   msa_cookie_format(r->pool, name, value, &attrs));
}

/* A string safe to put in a log line: printable ASCII, bounded. */
const char *msa_loggable(request_rec *r, const char *s)
{
    if (s == NULL) {
        return "-";
    }
    size_t n = strlen(s) > 64 ? 64 : strlen(s);
    char *out = apr_pstrmemdup(r->pool, s, n);
    for (char *c = out; *c; c++) {
        if (*c < 0x21 || *c > 0x7e) {
            *c = '?';
        }
    }
    return out;
}

/* A validated return target, or NULL (refusal logged) so the caller uses its default. */
const char *msa_return_target(request_rec *r, const msa_srv_t *srv, const msa_app_t *app,
                              const char *target)
{
    if (target == NULL) {
        return NULL;
    }
    const char *ok =
        msa_redirect_target(r->pool, target, msa_self_origin(r, srv), app->redirect_allow);
    if (ok == NULL) {
        MSA_RLOG(r, APLOG_INFO, "return_to_refused",
                 "return target refused, the default target is used instead");
    }
    return ok;
}

/*
 * Puts the Set-Cookie lines that clear a cookie after those that set one.
 * curl 7.88 with a cookie jar keeps a cookie whose clear is followed by any
 * other Set-Cookie of the same response: state cookies piled up in scripted
 * logins until the Cookie header overflowed. Each of the module's answers
 * clears at most one cookie in a login that runs its course.
 */
static void clears_last(request_rec *r)
{
    const apr_array_header_t *arr = apr_table_elts(r->err_headers_out);
    const apr_table_entry_t *e = (const apr_table_entry_t *)arr->elts;
    apr_array_header_t *sets = apr_array_make(r->pool, 2, sizeof(const char *));
    apr_array_header_t *clears = apr_array_make(r->pool, 2, sizeof(const char *));
    for (int i = 0; i < arr->nelts; i++) {
        if (e[i].key != NULL && strcasecmp(e[i].key, "Set-Cookie") == 0) {
            int clear = ap_strstr_c(e[i].val, "; Max-Age=0;") != NULL;
            APR_ARRAY_PUSH(clear ? clears : sets, const char *) = e[i].val;
        }
    }
    if (clears->nelts == 0 || sets->nelts == 0) {
        return;
    }
    apr_table_unset(r->err_headers_out, "Set-Cookie");
    apr_array_cat(sets, clears);
    for (int i = 0; i < sets->nelts; i++) {
        apr_table_addn(r->err_headers_out, "Set-Cookie", APR_ARRAY_IDX(sets, i, const char *));
    }
}

int msa_redirect(request_rec *r, const char *url)
{
    clears_last(r);
    apr_table_setn(r->headers_out, "Location", url);
    apr_table_setn(r->err_headers_out, "Cache-Control", "no-store");
    return HTTP_MOVED_TEMPORARILY;
}

int msa_answer_json(request_rec *r, int status, const char *json)
{
    r->status = status;
    ap_set_content_type(r, "application/json");
    apr_table_setn(r->err_headers_out, "Cache-Control", "no-store");
    ap_rputs(json, r);
    ap_rputs("\n", r);
    return OK;
}

int msa_answer_error(request_rec *r, int status, const char *message)
{
    return msa_answer_json(r, status, msa_api_error_json(r->pool, status, message));
}

int msa_read_body(request_rec *r, char **body, apr_size_t *len)
{
    int rc = ap_setup_client_block(r, REQUEST_CHUNKED_DECHUNK);
    if (rc != OK) {
        return rc;
    }
    const char *cl = apr_table_get(r->headers_in, "Content-Length");
    if (cl != NULL && apr_atoi64(cl) > MSA_MAX_BODY) {
        return HTTP_REQUEST_ENTITY_TOO_LARGE;
    }
    char *buf = apr_palloc(r->pool, MSA_MAX_BODY + 1);
    apr_size_t n = 0;
    if (ap_should_client_block(r)) {
        long got;
        while ((got = ap_get_client_block(r, buf + n, MSA_MAX_BODY + 1 - n)) > 0) {
            n += (apr_size_t)got;
            if (n > MSA_MAX_BODY) {
                return HTTP_REQUEST_ENTITY_TOO_LARGE;
            }
        }
        if (got < 0) {
            return HTTP_BAD_REQUEST;
        }
    }
    buf[n] = '\0';
    *body = buf;
    *len = n;
    return OK;
}

/* The token of an Authorization: Bearer header, or NULL. */
const char *msa_bearer_token(request_rec *r)
{
    const char *auth = apr_table_get(r->headers_in, "Authorization");
    if (auth == NULL || strncasecmp(auth, "Bearer ", 7) != 0) {
        return NULL;
    }
    const char *t = auth + 7;
    while (*t == ' ') {
        t++;
    }
    return t;
}

/* The endpoint's name when path is the callback path or below it; NULL otherwise. */
const char *msa_endpoint(const char *path, const char *base)
{
    size_t n = strlen(base);
    if (strncmp(path, base, n) != 0) {
        return NULL;
    }
    return path[n] == '\0' ? "" : path[n] == '/' ? path + n + 1 : NULL;
}

/*
 * Only the request's own: a subrequest has what msa_check_authn found for it
 * under the app that protects it, never its main request's session.
 */
const msa_token_t *msa_request_token(const request_rec *r)
{
    const msa_req_t *q = ap_get_module_config(r->request_config, &msauth_module);
    return q ? q->token : NULL;
}

msa_req_t *msa_request_record(request_rec *r, int create)
{
    msa_req_t *q = ap_get_module_config(r->request_config, &msauth_module);
    if (q == NULL && create) {
        q = apr_pcalloc(r->pool, sizeof(*q));
        ap_set_module_config(r->request_config, &msauth_module, q);
    }
    return q;
}

const msa_app_t *msa_request_app(const request_rec *r)
{
    const msa_req_t *q = ap_get_module_config(r->request_config, &msauth_module);
    return q ? q->app : NULL;
}

/*
 * Why a POST cannot be shown to come from a page of this server, or NULL: its
 * Origin, else its Referer, must be this origin. Otherwise any site could post
 * its own user's ID token and sign the visitor in as that user (login CSRF).
 */
const char *msa_foreign_post(request_rec *r, const msa_srv_t *srv)
{
    const char *self = msa_self_origin(r, srv);
    const char *origin = apr_table_get(r->headers_in, "Origin");
    const char *referer = apr_table_get(r->headers_in, "Referer");
    size_t n = strlen(self);
    if (origin != NULL) {
        return strcasecmp(origin, self) == 0
                   ? NULL
                   : apr_psprintf(r->pool, "Origin %s is another origin", msa_loggable(r, origin));
    }
    if (referer == NULL) {
        return "neither Origin nor Referer shows the page's origin";
    }
    if (strncasecmp(referer, self, n) == 0 && strchr("/?#", referer[n]) != NULL) {
        return NULL; /* strchr finds the NUL too: the origin alone */
    }
    /* Only the origin of it: a path or query may carry a token. */
    const char *host = ap_strstr_c(referer, "://");
    if (host == NULL) {
        return "the Referer is no URL of an origin";
    }
    size_t end = (size_t)(host + 3 - referer) + strcspn(host + 3, "/?#");
    return apr_psprintf(r->pool, "Referer %s is another origin",
                        msa_loggable(r, apr_pstrmemdup(r->pool, referer, end)));
}
