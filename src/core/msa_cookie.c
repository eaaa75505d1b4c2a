/* Cookie header parsing (RFC 6265 section 5.4 form) and Set-Cookie building. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strchrnul: a pair's end in one pass, the last pair's too */
#endif
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

/* A cookie as it stands in the header: its name and its value (quotes removed), not copied. */
typedef struct span_pair {
    const char *name, *value;
    apr_size_t name_len, value_len;
} span_pair_t;

/* One "name=value" pair from *s, advancing past the next ';'. 0 at the end. */
static int next_pair(const char **s, span_pair_t *pair)
{
    for (;;) {
        const char *c = skip_ws(*s);
        if (*c == '\0') {
            return 0;
        }
        const char *end = strchrnul(c, ';');
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
        pair->name = c;
        pair->name_len = (apr_size_t)(ne - c);
        pair->value = v;
        pair->value_len = (apr_size_t)(ve - v);
        return 1;
    }
}

void msa_cookie_each(apr_pool_t *p, const char *header,
                     int (*fn)(void *ctx, const char *name, const char *value), void *ctx)
{
    const char *s = header;
    span_pair_t pair;
    for (int n = 0; s != NULL && n < MAX_PAIRS && next_pair(&s, &pair); n++) {
        if (fn(ctx, apr_pstrmemdup(p, pair.name, pair.name_len),
               apr_pstrmemdup(p, pair.value, pair.value_len))) {
            return;
        }
    }
}

const char *msa_cookie_find(apr_pool_t *p, const char *header, const char *name)
{
    /* Compared where it stands: only the value found is copied. */
    apr_size_t len = strlen(name);
    const char *s = header;
    span_pair_t pair;
    for (int n = 0; s != NULL && n < MAX_PAIRS && next_pair(&s, &pair); n++) {
        if (pair.name_len == len && memcmp(pair.name, name, len) == 0) {
            return apr_pstrmemdup(p, pair.value, pair.value_len);
        }
    }
    return NULL;
}

/*
 * The stripped header as it is built: while it is a run of the header (out NULL,
 * header[start, start + len), pairs joined by "; " as sent), nothing is written; the
 * first pair that does not follow on in place starts a copy.
 */
typedef struct strip_out {
    const char *header;
    char *out;
    apr_size_t start, len;
} strip_out_t;

static void strip_emit(apr_pool_t *p, strip_out_t *o, const char *c, apr_size_t n)
{
    if (o->out == NULL) {
        const char *h = o->header, *end = h + o->start + o->len;
        if (o->len == 0) {
            o->start = (apr_size_t)(c - h);
            o->len = n;
            return;
        }
        if (c == end + 2 && end[0] == ';' && end[1] == ' ') {
            o->len = (apr_size_t)(c - h) - o->start + n;
            return;
        }
        /* "a;b" may become "a; b": at most twice what is left of the header. */
        apr_size_t left = strlen(c);
        o->out = apr_palloc(p, o->len + 2 * (left + 2) + 1);
        memcpy(o->out, h + o->start, o->len);
    }
    o->out[o->len++] = ';';
    o->out[o->len++] = ' ';
    memcpy(o->out + o->len, c, n);
    o->len += n;
}

const char *msa_cookie_strip(apr_pool_t *p, const char *header, msa_cookie_drop_fn drop, void *ctx)
{
    if (header == NULL) {
        return NULL;
    }
    /*
     * Pairs that stay are kept byte for byte: quotes, nameless cookies and all, joined by
     * "; ". Nothing is copied while the result is the header itself.
     */
    strip_out_t o = {header, NULL, 0, 0};
    const char *comma = strchr(header, ','); /* the next comma at or after the pair, if any */
    const char *s = header;
    while (*s) {
        const char *c = skip_ws(s);
        const char *end = strchrnul(c, ';');
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
            dropped =
                drop(ctx, c, (apr_size_t)(ne - c), vs, vend > vs ? (apr_size_t)(vend - vs) : 0);
        }
        const char *ve = end;
        if (comma != NULL && comma < c) {
            comma = strchr(c, ',');
        }
        /*
         * httpd joins repeated Cookie lines with ", ": a pair of ours that opened
         * another line ends the pair before it there.
         */
        for (const char *k = eq ? eq : end;
             !dropped && comma != NULL && comma < end && (k = memchr(k, ',', (size_t)(end - k)));
             k++) {
            const char *n = skip_ws(k + 1);
            const char *ne = n;
            while (ne < end && *ne != '=' && *ne != ',' && *ne != ' ' && *ne != '\t') {
                ne++;
            }
            if (ne > n && ne < end && *ne == '=' &&
                drop(ctx, n, (apr_size_t)(ne - n), ne + 1, (apr_size_t)(end - ne - 1))) {
                ve = k;
                break;
            }
        }
        while (ve > c && (ve[-1] == ' ' || ve[-1] == '\t')) {
            ve--;
        }
        if (!dropped && ve > c) {
            strip_emit(p, &o, c, (apr_size_t)(ve - c));
        }
        s = *end ? end + 1 : end;
    }
    if (o.len == 0) {
        return NULL;
    }
    if (o.out == NULL) {
        /* A run that ends the header is a string as it stands: the header's own tail. */
        const char *run = header + o.start;
        return run[o.len] == '\0' ? run : apr_pstrmemdup(p, run, o.len);
    }
    o.out[o.len] = '\0';
    return o.out;
}

char *msa_cookie_format(apr_pool_t *p, const char *name, const char *value,
                        const msa_cookie_attrs_t *a)
{
    return apr_pstrcat(p, name, "=", value, "; Path=", a->path, a->domain ? "; Domain=" : "",
                       a->domain ? a->domain : "", "; Max-Age=", apr_ltoa(p, (long)a->max_age),
                       a->max_age == 0 ? "; Expires=Thu, 01 Jan 1970 00:00:00 GMT" : "",
                       "; HttpOnly; SameSite=", a->samesite, a->secure ? "; Secure" : "", NULL);
}
