/*
 * Codes and tokens kept out of the logs: the logged request line and the
 * Referer of the module's own requests.
 */
#include <apr_strings.h>
#include <http_core.h>

#include "msa_redact.h"
#include "msa_request.h"

/* Overwrites the value of param (up to '&', '#' or ' ') in the query of line from q on. */
static void redact_param(char *q, const char *param, int jwt_only)
{
    size_t n = strlen(param);
    for (char *p = q; p && *p && *p != ' '; p = strpbrk(p + 1, "& ")) {
        char *name = (*p == '?' || *p == '&') ? p + 1 : p;
        if (strncmp(name, param, n) != 0 || name[n] != '=') {
            continue;
        }
        char *v = name + n + 1;
        if (jwt_only && strncmp(v, "eyJ", 3) != 0) {
            continue;
        }
        /* In place: the line only gets shorter, so the value is overwritten and the rest moved. */
        char *end = v + strcspn(v, "&# ");
        static const char mark[] = "[redacted]";
        if ((size_t)(end - v) > sizeof(mark) - 1) {
            memcpy(v, mark, sizeof(mark) - 1);
            memmove(v + sizeof(mark) - 1, end, strlen(end) + 1);
        } else {
            memset(v, '*', (size_t)(end - v));
        }
    }
}

/*
 * The page Para's jwt=id lands on posts its ID token to /passwordless or the
 * JWT API with that URL as the Referer, which httpd appends to every error-log
 * line of the request. No app sees the module's own requests, so the header
 * itself is changed there.
 */
static void redact_referer(request_rec *r)
{
    const char *referer = apr_table_get(r->headers_in, "Referer");
    const char *q = referer ? strchr(referer, '?') : NULL;
    if (q == NULL) {
        return;
    }
    char *copy = apr_pstrdup(r->pool, referer);
    redact_param(copy + (q - referer), "jwt", 1);
    redact_param(copy + (q - referer), "token", 0);
    apr_table_setn(r->headers_in, "Referer", copy);
}

/*
 * Codes and tokens travel in query strings (Microsoft's redirect, Para's
 * jwt=id landing, /passwordless); the access log's %r would keep them.
 * Only the logged request line is changed, never r->args.
 */
int msa_redact_request_line(request_rec *r)
{
    const msa_srv_t *srv = msa_srv_get(r->server);
    const char *path = r->parsed_uri.path;
    if (r->the_request == NULL || !msa_srv_has_apps(srv)) {
        return DECLINED;
    }
    int callback = path != NULL && msa_endpoint(path, srv->callback_path) != NULL;
    if (callback || (path != NULL && strcmp(path, srv->jwt_path) == 0)) {
        redact_referer(r);
    }
    char *q = strchr(r->the_request, '?');
    if (q == NULL) {
        return DECLINED;
    }
    char *line = apr_pstrdup(r->pool, r->the_request);
    q = line + (q - r->the_request);
    if (callback) {
        redact_param(q, "code", 0);
        redact_param(q, "token", 0);
        redact_param(q, "error_description", 0);
        /* A front-channel logout's sid signs its users out: no log reader gets to. */
        redact_param(q, "sid", 0);
    }
    redact_param(q, "jwt", 1);
    r->the_request = line;
    return DECLINED;
}
