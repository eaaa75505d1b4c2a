/*
 * URL building, percent-encoding, query parsing and redirect-target validation.
 *
 * Everything here reads outside input (query strings, return_to, configured
 * URLs), so every scan is bounded by an explicit length or the terminating
 * NUL, nothing recurses, and allocations are proportional to the input.
 * Character classes are spelled out in ASCII rather than taken from
 * <ctype.h>, whose answers depend on the process locale.
 */
#include <string.h>

#include <apr_strings.h>
#include <apr_tables.h>

#include "msa_url.h"

/* Past this a return_to is refused: no legitimate target is that long. */
#define MSA_MAX_REDIRECT 2048

/* Past this a query is refused rather than turned into a huge table. */
#define MSA_MAX_PARAMS 100

static int is_alpha(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static unsigned char ascii_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + ('a' - 'A')) : c;
}

/* Case-insensitive (ASCII only) comparison of n bytes. */
static int ascii_caseeq(const char *a, const char *b, apr_size_t n)
{
    for (apr_size_t i = 0; i < n; i++) {
        if (ascii_lower((unsigned char)a[i]) != ascii_lower((unsigned char)b[i])) {
            return 0;
        }
    }
    return 1;
}

/* Whether NUL-terminated s starts with prefix, ignoring ASCII case. */
static int ascii_startswith(const char *s, const char *prefix)
{
    for (; *prefix; s++, prefix++) {
        /* *s == NUL differs from any *prefix here, so the scan stops at s's end. */
        if (ascii_lower((unsigned char)*s) != ascii_lower((unsigned char)*prefix)) {
            return 0;
        }
    }
    return 1;
}

/* Space, C0 controls and DEL: browsers strip or rewrite these inside URLs. */
static int is_ctl_or_space(unsigned char c)
{
    return c < 0x21 || c == 0x7F;
}

char *msa_url_encode(apr_pool_t *p, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    if (s == NULL) {
        return apr_pstrdup(p, "");
    }
    apr_size_t len = strlen(s);
    char *out = apr_palloc(p, len * 3 + 1);
    char *o = out;
    for (apr_size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_' || c == '~') {
            *o++ = (char)c;
        } else {
            *o++ = '%';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 0x0F];
        }
    }
    *o = '\0';
    return out;
}

/* UTF-8 well-formedness; controls refused unless controls_ok (NUL always refused). */
static int utf8_check(const char *s, apr_size_t len, int controls_ok)
{
    const unsigned char *u = (const unsigned char *)s;
    apr_size_t i = 0;
    if (s == NULL) {
        return len == 0;
    }
    while (i < len) {
        unsigned char c = u[i];
        if (c < 0x80) {
            /* TAB is the one control character text fields may carry. */
            if (c == 0 || (!controls_ok && ((c < 0x20 && c != '\t') || c == 0x7F))) {
                return 0;
            }
            i++;
            continue;
        }
        /* RFC 3629: the second byte's range excludes overlongs, surrogates and > U+10FFFF. */
        apr_size_t need;
        unsigned char lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
            /* U+0080..U+009F are the C1 controls (CSI, NEL...): terminal escapes in logs. */
            if (c == 0xC2 && !controls_ok) {
                lo = 0xA0;
            }
        } else if (c == 0xE0) {
            need = 2;
            lo = 0xA0;
        } else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) {
            need = 2;
        } else if (c == 0xED) {
            need = 2;
            hi = 0x9F;
        } else if (c == 0xF0) {
            need = 3;
            lo = 0x90;
        } else if (c >= 0xF1 && c <= 0xF3) {
            need = 3;
        } else if (c == 0xF4) {
            need = 3;
            hi = 0x8F;
        } else {
            return 0;
        }
        if (len - i <= need) {
            return 0;
        }
        if (u[i + 1] < lo || u[i + 1] > hi) {
            return 0;
        }
        for (apr_size_t k = 2; k <= need; k++) {
            if (u[i + k] < 0x80 || u[i + k] > 0xBF) {
                return 0;
            }
        }
        i += need + 1;
    }
    return 1;
}

int msa_utf8_valid(const char *s, apr_size_t len)
{
    return utf8_check(s, len, 0);
}

apr_status_t msa_url_decode(apr_pool_t *p, const char *s, apr_size_t len, char **out)
{
    *out = NULL;
    if (s == NULL) {
        if (len != 0) {
            return APR_EINVAL;
        }
        *out = apr_pstrdup(p, "");
        return APR_SUCCESS;
    }
    char *buf = apr_palloc(p, len + 1);
    apr_size_t n = 0;
    for (apr_size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '+') {
            buf[n++] = ' ';
        } else if (c == '%') {
            if (len - i < 3) {
                return APR_EINVAL;
            }
            int h = msa_hex_digit((unsigned char)s[i + 1]),
                l = msa_hex_digit((unsigned char)s[i + 2]);
            if (h < 0 || l < 0) {
                return APR_EINVAL;
            }
            buf[n++] = (char)(h * 16 + l);
            i += 2;
        } else {
            buf[n++] = (char)c;
        }
    }
    buf[n] = '\0';
    /*
     * Control characters other than NUL are kept: Microsoft's error_description
     * carries CR LF. Each consumer checks the characters of the value it uses
     * (state, return_to), and logs go through a sanitiser.
     */
    if (!utf8_check(buf, n, 1)) {
        return APR_EINVAL;
    }
    *out = buf;
    return APR_SUCCESS;
}

apr_status_t msa_query_parse(apr_pool_t *p, const char *query, apr_table_t **out)
{
    *out = NULL;
    apr_table_t *t = apr_table_make(p, 8);
    int count = 0;
    const char *seg = query ? query : "";
    while (*seg) {
        const char *end = strchr(seg, '&');
        apr_size_t seglen = end ? (apr_size_t)(end - seg) : strlen(seg);
        if (seglen > 0) {
            if (++count > MSA_MAX_PARAMS) {
                return APR_EINVAL;
            }
            const char *eq = memchr(seg, '=', seglen);
            apr_size_t namelen = eq ? (apr_size_t)(eq - seg) : seglen;
            char *name, *val;
            if (msa_url_decode(p, seg, namelen, &name) != APR_SUCCESS) {
                return APR_EINVAL;
            }
            if (eq) {
                if (msa_url_decode(p, eq + 1, seglen - namelen - 1, &val) != APR_SUCCESS) {
                    return APR_EINVAL;
                }
            } else {
                val = "";
            }
            apr_table_addn(t, name, val);
        }
        if (end == NULL) {
            break;
        }
        seg = end + 1;
    }
    *out = t;
    return APR_SUCCESS;
}

struct get1_ctx {
    const char *name;
    const char *val;
    int count;
    int exact;
};

static int get1_cb(void *rec, const char *key, const char *value)
{
    struct get1_ctx *ctx = rec;
    ctx->count++;
    if (strcmp(key, ctx->name) == 0) {
        ctx->exact = 1;
        ctx->val = value;
    }
    return 1;
}

apr_status_t msa_query_get1(const apr_table_t *t, const char *name, const char **val)
{
    struct get1_ctx ctx = {name, NULL, 0, 0};
    *val = NULL;
    if (t == NULL || name == NULL) {
        return APR_ENOENT;
    }
    /*
     * apr_table_do matches keys ignoring case, so "state" and "STATE" both
     * count: a caller reading the table with apr_table_get could otherwise
     * see another value than the one we vouched for.
     */
    apr_table_do(get1_cb, &ctx, t, name, NULL);
    if (ctx.count > 1) {
        return APR_EINVAL;
    }
    if (ctx.count == 0 || !ctx.exact) {
        /* Query names are case-sensitive: "State" alone is not "state". */
        return APR_ENOENT;
    }
    *val = ctx.val;
    return APR_SUCCESS;
}

const char *msa_url_fill(apr_pool_t *p, const char *url, const char *param, const char *placeholder,
                         const char *value)
{
    if (url == NULL || param == NULL || placeholder == NULL) {
        return url;
    }
    const char *hash = strchr(url, '#');
    apr_size_t base = hash ? (apr_size_t)(hash - url) : strlen(url);
    const char *q = memchr(url, '?', base);
    if (q == NULL) {
        return url;
    }
    apr_size_t plen = strlen(param), hlen = strlen(placeholder);
    const char *qend = url + base;
    const char *seg = q + 1;
    for (;;) {
        const char *amp = memchr(seg, '&', (apr_size_t)(qend - seg));
        const char *segend = amp ? amp : qend;
        apr_size_t seglen = (apr_size_t)(segend - seg);
        /* Only a whole segment matches, so "xjwt=id" or "jwt=idx" stay as they are. */
        if (seglen == plen + 1 + hlen && memcmp(seg, param, plen) == 0 && seg[plen] == '=' &&
            memcmp(seg + plen + 1, placeholder, hlen) == 0) {
            return apr_pstrcat(p, apr_pstrmemdup(p, url, (apr_size_t)(seg - url)), param, "=",
                               msa_url_encode(p, value), segend, NULL);
        }
        if (amp == NULL) {
            return url;
        }
        seg = amp + 1;
    }
}

/* An absolute http(s) URL cut at its authority. */
typedef struct {
    int https;
    const char *host; /* IPv6 literals keep their brackets */
    apr_size_t host_len;
    unsigned port;    /* 0 when absent */
    const char *rest; /* "" or starting with '/', '?' or '#' */
} url_parts;

static const char *const NOT_ABSOLUTE = "not an absolute http(s) URL";

/*
 * Splits an absolute http(s) URL. NULL when good, else what is wrong;
 * NOT_ABSOLUTE when it does not even start with http:// or https://.
 * Characters are checked by the callers; this looks at the authority only.
 */
static const char *split_absolute(const char *url, url_parts *u)
{
    const char *a;
    if (ascii_startswith(url, "https://")) {
        u->https = 1;
        a = url + 8;
    } else if (ascii_startswith(url, "http://")) {
        u->https = 0;
        a = url + 7;
    } else {
        return NOT_ABSOLUTE;
    }
    apr_size_t alen = strcspn(a, "/?#");
    u->rest = a + alen;
    /* Browsers read "user@host" as host, and people read it as user. */
    if (memchr(a, '@', alen) != NULL) {
        return "has user information ('@') in its authority";
    }
    if (alen == 0) {
        return "has no host";
    }
    apr_size_t i = 0;
    if (a[0] == '[') {
        int colon = 0;
        for (i = 1; i < alen && a[i] != ']'; i++) {
            unsigned char c = (unsigned char)a[i];
            if (c == ':') {
                colon = 1;
            } else if (c != '.' && msa_hex_digit(c) < 0) {
                return "has an invalid IPv6 address";
            }
        }
        if (i == alen || !colon) {
            return "has an invalid IPv6 address";
        }
        i++; /* past ']' */
    } else {
        for (; i < alen && a[i] != ':'; i++) {
            unsigned char c = (unsigned char)a[i];
            if (!is_alpha(c) && !is_digit(c) && c != '.' && c != '-') {
                return "has an invalid host name";
            }
        }
        if (i == 0) {
            return "has no host";
        }
    }
    u->host = a;
    u->host_len = i;
    u->port = 0;
    if (i < alen) {
        if (a[i] != ':' || i + 1 == alen) {
            return "has an invalid port";
        }
        unsigned long port = 0;
        for (i++; i < alen; i++) {
            if (!is_digit((unsigned char)a[i])) {
                return "has an invalid port";
            }
            port = port * 10 + (unsigned long)(a[i] - '0');
            if (port > 65535) {
                return "has an invalid port";
            }
        }
        if (port == 0) {
            return "has an invalid port";
        }
        u->port = (unsigned)port;
    }
    return NULL;
}

static unsigned effective_port(const url_parts *u)
{
    return u->port ? u->port : (u->https ? 443 : 80);
}

/* Same scheme, host (ignoring case) and port, with the default port filled in. */
static int same_origin(const url_parts *a, const url_parts *b)
{
    return a->https == b->https && a->host_len == b->host_len &&
           ascii_caseeq(a->host, b->host, a->host_len) && effective_port(a) == effective_port(b);
}

const char *msa_url_check(apr_pool_t *p, const char *url, int absolute_only)
{
    (void)p; /* the messages are constant: nothing to allocate */
    if (url == NULL || *url == '\0') {
        return "is empty";
    }
    for (const char *c = url; *c; c++) {
        unsigned char ch = (unsigned char)*c;
        if (is_ctl_or_space(ch)) {
            return "contains whitespace or control characters";
        }
        /* Browsers read '\' as '/' in http(s) URLs; the server would not. */
        if (ch == '\\') {
            return "contains a backslash";
        }
        /* A Location header carries ASCII only. */
        if (ch >= 0x80) {
            return "contains non-ASCII characters (percent-encode them)";
        }
    }
    url_parts u;
    const char *err = split_absolute(url, &u);
    if (err != NOT_ABSOLUTE) {
        return err;
    }
    if (absolute_only) {
        return NOT_ABSOLUTE;
    }
    /* "//host" would be another origin; "/x" stays on ours. */
    if (url[0] != '/' || url[1] == '/') {
        return "is neither an absolute http(s) URL nor a path starting with a single '/'";
    }
    return NULL;
}

/* 127.x.x.x written as four decimal octets: the only loopback form curl and people agree on. */

int msa_url_outgoing_allowed(const char *url)
{
    if (url == NULL) {
        return 0;
    }
    for (const char *c = url; *c; c++) {
        if (is_ctl_or_space((unsigned char)*c) || *c == '\\') {
            return 0;
        }
    }
    url_parts u;
    if (split_absolute(url, &u) != NULL) {
        return 0;
    }
    if (u.https) {
        return 1;
    }
    /* Plain http only where nobody can listen in: this machine. */
    return msa_host_loopback(u.host, u.host_len);
}

/*
 * Whether target (already split as t) starts with an allow prefix. The
 * origins are compared as origins (host case, default port), the rest as
 * bytes, and the prefix must end at a boundary so that "https://app.example"
 * does not admit "https://app.example.evil" or ".../appx" for ".../app".
 */
static int allowed_by_prefix(const url_parts *t, const char *prefix)
{
    url_parts a;
    if (prefix == NULL || split_absolute(prefix, &a) != NULL || !same_origin(t, &a)) {
        return 0;
    }
    const char *pr = a.rest;
    if (strcmp(pr, "/") == 0) {
        pr = ""; /* "https://app.example/" allows the whole origin */
    }
    apr_size_t n = strlen(pr);
    if (strncmp(t->rest, pr, n) != 0) {
        return 0;
    }
    char next = t->rest[n];
    return n == 0 || pr[n - 1] == '/' || next == '\0' || next == '/' || next == '?' || next == '#';
}

const char *msa_redirect_target(apr_pool_t *p, const char *target, const char *self_origin,
                                const apr_array_header_t *allow)
{
    (void)p; /* an accepted target is returned as it is */
    if (target == NULL || *target == '\0') {
        return NULL;
    }
    apr_size_t len = strnlen(target, MSA_MAX_REDIRECT + 1);
    if (len > MSA_MAX_REDIRECT) {
        return NULL;
    }
    /*
     * Browsers drop TAB/CR/LF anywhere in a URL, trim spaces and controls at
     * its ends, and read '\' as '/': "/\t/evil.com" becomes "//evil.com". So
     * none of them may appear at all. Non-ASCII must at least be UTF-8.
     */
    for (apr_size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)target[i];
        if (is_ctl_or_space(c) || c == '\\') {
            return NULL;
        }
    }
    if (!msa_utf8_valid(target, len)) {
        return NULL;
    }
    /*
     * An encoded slash or backslash at the start turns into "//" in the
     * hands of anything that decodes once more before redirecting.
     */
    if (ascii_startswith(target, "%2f") || ascii_startswith(target, "%5c") ||
        ascii_startswith(target, "/%2f") || ascii_startswith(target, "/%5c")) {
        return NULL;
    }
    if (target[0] == '/') {
        /* "//host" is protocol-relative, another origin even when it names ours. */
        return target[1] == '/' ? NULL : target;
    }
    url_parts t;
    if (split_absolute(target, &t) != NULL) {
        return NULL; /* other schemes, "https:evil", userinfo, bad hosts */
    }
    url_parts self;
    if (self_origin != NULL && split_absolute(self_origin, &self) == NULL &&
        same_origin(&t, &self)) {
        return target;
    }
    if (allow != NULL && allow->elt_size == sizeof(const char *)) {
        for (int i = 0; i < allow->nelts; i++) {
            if (allowed_by_prefix(&t, APR_ARRAY_IDX(allow, i, const char *))) {
                return target;
            }
        }
    }
    return NULL;
}
