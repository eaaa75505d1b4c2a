/* Cookie header parsing (RFC 6265 section 5.4 form) and Set-Cookie building. */
#include <string.h>

#include <apr_lib.h>
#include <apr_strings.h>

#include "msa_cookie.h"

#define MAX_PAIRS 200

static const char *skip_ws(const char *s)
{
    while (*s == ' ' || *s == '\t') {
        s++;
    }
    return s;
}

/* One "name=value" pair from *s, advancing past the next ';'. 0 at the end. */
static int next_pair(apr_pool_t *p, const char **s, const char **name, const char **value)
{
    for (;;) {
        const char *c = skip_ws(*s);
        if (*c == '\0') {
            return 0;
        }
        const char *end = strchr(c, ';');
        if (end == NULL) {
            end = c + strlen(c);
        }
        *s = *end ? end + 1 : end;
        const char *eq = memchr(c, '=', (size_t)(end - c));
        if (eq == NULL) {
            continue;
        }
        const char *ne = eq;
        while (ne > c && (ne[-1] == ' ' || ne[-1] == '\t')) {
            ne--;
        }
        const char *v = skip_ws(eq + 1), *ve = end;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) {
            ve--;
        }
        /* A quoted value is the same value without its quotes. */
        if (ve - v >= 2 && *v == '"' && ve[-1] == '"') {
            v++;
            ve--;
        }
        *name = apr_pstrmemdup(p, c, (apr_size_t)(ne - c));
        *value = apr_pstrmemdup(p, v, (apr_size_t)(ve - v));
        return 1;
    }
}

void msa_cookie_each(apr_pool_t *p, const char *header,
                     int (*fn)(void *ctx, const char *name, const char *value), void *ctx)
{
    const char *s = header, *name, *value;
    for (int n = 0; s != NULL && n < MAX_PAIRS && next_pair(p, &s, &name, &value); n++) {
        if (fn(ctx, name, value)) {
            return;
        }
    }
}

typedef struct find_ctx {
    const char *name;
    const char *value;
} find_ctx_t;

static int find_one(void *ctx, const char *name, const char *value)
{
    find_ctx_t *f = ctx;
    if (strcmp(name, f->name) == 0) {
        f->value = value;
        return 1;
    }
    return 0;
}

const char *msa_cookie_find(apr_pool_t *p, const char *header, const char *name)
{
    find_ctx_t f = {name, NULL};
    msa_cookie_each(p, header, find_one, &f);
    return f.value;
}

const char *msa_cookie_strip(apr_pool_t *p, const char *header,
                             int (*drop)(void *ctx, const char *name, const char *value), void *ctx)
{
    if (header == NULL) {
        return NULL;
    }
    /* Pairs that stay are copied byte for byte: quotes, nameless cookies and all. */
    char *out = apr_palloc(p, 2 * strlen(header) + 1), *o = out; /* "a;b" may become "a; b" */
    const char *s = header;
    while (*s) {
        const char *c = skip_ws(s);
        const char *end = strchr(c, ';');
        if (end == NULL) {
            end = c + strlen(c);
        }
        const char *eq = memchr(c, '=', (size_t)(end - c));
        int dropped = 0;
        if (eq != NULL) {
            const char *ne = eq;
            while (ne > c && (ne[-1] == ' ' || ne[-1] == '\t')) {
                ne--;
            }
            const char *vs = skip_ws(eq + 1), *vend = end;
            while (vend > vs && (vend[-1] == ' ' || vend[-1] == '\t')) {
                vend--;
            }
            dropped = drop(ctx, apr_pstrmemdup(p, c, (apr_size_t)(ne - c)),
                           apr_pstrmemdup(p, vs, vend > vs ? (apr_size_t)(vend - vs) : 0));
        }
        const char *ve = end;
        /*
         * httpd joins repeated Cookie lines with ", ": a pair of ours that opened
         * another line ends the pair before it there.
         */
        for (const char *k = eq ? eq : end; !dropped && (k = memchr(k, ',', (size_t)(end - k)));
             k++) {
            const char *n = skip_ws(k + 1);
            const char *ne = n;
            while (ne < end && *ne != '=' && *ne != ',' && *ne != ' ' && *ne != '\t') {
                ne++;
            }
            if (ne > n && ne < end && *ne == '=' &&
                drop(ctx, apr_pstrmemdup(p, n, (apr_size_t)(ne - n)),
                     apr_pstrmemdup(p, ne + 1, (apr_size_t)(end - ne - 1)))) {
                ve = k;
                break;
            }
        }
        while (ve > c && (ve[-1] == ' ' || ve[-1] == '\t')) {
            ve--;
        }
        if (!dropped && ve > c) {
            if (o != out) {
                *o++ = ';';
                *o++ = ' ';
            }
            memcpy(o, c, (size_t)(ve - c));
            o += ve - c;
        }
        s = *end ? end + 1 : end;
    }
    *o = '\0';
    return o == out ? NULL : out;
}

char *msa_cookie_format(apr_pool_t *p, const char *name, const char *value,
                        const msa_cookie_attrs_t *a)
{
    return apr_pstrcat(p, name, "=", value, "; Path=", a->path, a->domain ? "; Domain=" : "",
                       a->domain ? a->domain : "", "; Max-Age=", apr_ltoa(p, (long)a->max_age),
                       a->max_age == 0 ? "; Expires=Thu, 01 Jan 1970 00:00:00 GMT" : "",
                       "; HttpOnly; SameSite=", a->samesite, a->secure ? "; Secure" : "", NULL);
}
