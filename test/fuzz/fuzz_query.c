/*
 * Fuzz target: query strings and URLs (src/core/msa_url.c): msa_query_parse
 * and msa_query_get1, msa_url_decode, msa_utf8_valid, msa_url_fill,
 * msa_url_check and msa_url_outgoing_allowed.
 *
 * Decoding, UTF-8 and the URL builder is compared with small models
 * written from their contracts; a parsed query survives re-encoding; get1
 * agrees with the table; and a URL let out by msa_url_outgoing_allowed is,
 * as curl parses it, https or http to a loopback host.
 */
#include <strings.h>

#include <apr_strings.h>
#include <apr_tables.h>
#include <curl/curl.h>

#include "msa_url.h"

#include "fuzz.h"

/* A value with every class of character msa_url_encode must handle. */
static const char fill_value[] = "eyJ0.e30.sig+/ =&?#%\xc3\xa9";

static const char *const get1_names[] = {"code",          "state", "error", "error_description",
                                         "session_state", "State"};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_init();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return 0;
}

/* ---- models ---- */

/* RFC 3629 UTF-8; controls (C0 but TAB, DEL, C1) refused unless controls_ok; NUL always. */
static int model_utf8(const unsigned char *s, size_t len, int controls_ok)
{
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i], cp, need;
        if (c < 0x80) {
            cp = c;
            need = 0;
        } else if ((c & 0xE0) == 0xC0) {
            cp = c & 0x1F;
            need = 1;
        } else if ((c & 0xF0) == 0xE0) {
            cp = c & 0x0F;
            need = 2;
        } else if ((c & 0xF8) == 0xF0) {
            cp = c & 0x07;
            need = 3;
        } else {
            return 0;
        }
        if (len - i <= need) {
            return 0;
        }
        for (size_t k = 1; k <= need; k++) {
            if ((s[i + k] & 0xC0) != 0x80) {
                return 0;
            }
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        static const unsigned min[4] = {0, 0x80, 0x800, 0x10000};
        if (cp < min[need] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF) || cp == 0) {
            return 0;
        }
        int control = (cp < 0x20 && cp != '\t') || (cp >= 0x7F && cp <= 0x9F);
        if (control && !controls_ok) {
            return 0;
        }
        i += need + 1;
    }
    return 1;
}

static int hexval(unsigned char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* msa_url_decode's contract; *outlen is the decoded length. */
static apr_status_t model_decode(apr_pool_t *p, const char *s, size_t len, char **out,
                                 size_t *outlen)
{
    char *buf = apr_palloc(p, len + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '%') {
            if (i + 2 >= len || hexval((unsigned char)s[i + 1]) < 0 ||
                hexval((unsigned char)s[i + 2]) < 0) {
                return APR_EINVAL;
            }
            buf[n++] =
                (char)(hexval((unsigned char)s[i + 1]) * 16 + hexval((unsigned char)s[i + 2]));
            i += 2;
        } else {
            buf[n++] = s[i] == '+' ? ' ' : s[i];
        }
    }
    buf[n] = '\0';
    if (!model_utf8((const unsigned char *)buf, n, 1)) {
        return APR_EINVAL;
    }
    *out = buf;
    *outlen = n;
    return APR_SUCCESS;
}

/* msa_url_fill's contract: the first whole query segment param=placeholder is replaced. */
static const char *model_fill(apr_pool_t *p, const char *url, const char *param,
                              const char *placeholder, const char *value)
{
    size_t base = strcspn(url, "#");
    const char *q = memchr(url, '?', base);
    if (q == NULL) {
        return url;
    }
    const char *want = apr_pstrcat(p, param, "=", placeholder, NULL);
    size_t wlen = strlen(want);
    const char *seg = q + 1, *end = url + base;
    for (;;) {
        const char *amp = memchr(seg, '&', (size_t)(end - seg));
        const char *segend = amp ? amp : end;
        if ((size_t)(segend - seg) == wlen && memcmp(seg, want, wlen) == 0) {
            return apr_pstrcat(p, apr_pstrmemdup(p, url, (size_t)(seg - url)), param, "=",
                               msa_url_encode(p, value), segend, NULL);
        }
        if (amp == NULL) {
            return url;
        }
        seg = amp + 1;
    }
}

/* ---- checks ---- */

static void check_query(apr_pool_t *p, const char *s, const uint8_t *data, size_t size)
{
    apr_table_t *t = NULL;
    apr_status_t rv = msa_query_parse(p, s, &t);
    FUZZ_ASSERT(rv == APR_SUCCESS || rv == APR_EINVAL, data, size);
    if (rv != APR_SUCCESS) {
        FUZZ_ASSERT(t == NULL, data, size);
        return;
    }
    const apr_array_header_t *arr = apr_table_elts(t);
    const apr_table_entry_t *e = (const apr_table_entry_t *)arr->elts;
    FUZZ_ASSERT(arr->nelts <= 100, data, size);

    /* Re-encoded, the same parameters in the same order. */
    char *again = "";
    for (int i = 0; i < arr->nelts; i++) {
        again = apr_pstrcat(p, again, i ? "&" : "", msa_url_encode(p, e[i].key), "=",
                            msa_url_encode(p, e[i].val), NULL);
    }
    apr_table_t *t2 = NULL;
    FUZZ_ASSERT(msa_query_parse(p, again, &t2) == APR_SUCCESS, data, size);
    const apr_array_header_t *arr2 = apr_table_elts(t2);
    const apr_table_entry_t *e2 = (const apr_table_entry_t *)arr2->elts;
    FUZZ_ASSERT(arr2->nelts == arr->nelts, data, size);
    for (int i = 0; i < arr->nelts; i++) {
        FUZZ_ASSERT(strcmp(e[i].key, e2[i].key) == 0 && strcmp(e[i].val, e2[i].val) == 0, data,
                    size);
    }

    /* get1: one entry of that name (any case) and it is spelled exactly so. */
    for (size_t n = 0; n < sizeof(get1_names) / sizeof(*get1_names); n++) {
        const char *name = get1_names[n], *val = NULL, *only = NULL;
        int ci = 0, exact = 0;
        for (int i = 0; i < arr->nelts; i++) {
            if (strcasecmp(e[i].key, name) == 0) {
                ci++;
                if (strcmp(e[i].key, name) == 0) {
                    exact++;
                    only = e[i].val;
                }
            }
        }
        rv = msa_query_get1(t, name, &val);
        if (ci == 1 && exact == 1) {
            FUZZ_ASSERT(rv == APR_SUCCESS && val == only, data, size);
        } else {
            FUZZ_ASSERT(rv == (ci > 1 ? APR_EINVAL : APR_ENOENT) && val == NULL, data, size);
        }
    }
}

static void check_decode(apr_pool_t *p, const uint8_t *data, size_t size)
{
    char *got = NULL, *want = NULL;
    size_t wlen = 0;
    apr_status_t rv = msa_url_decode(p, (const char *)data, size, &got);
    apr_status_t mrv = model_decode(p, (const char *)data, size, &want, &wlen);
    FUZZ_ASSERT(rv == mrv, data, size);
    if (rv == APR_SUCCESS) {
        FUZZ_ASSERT(strlen(got) == wlen && memcmp(got, want, wlen) == 0, data, size);
        char *back = NULL;
        const char *enc = msa_url_encode(p, got);
        FUZZ_ASSERT(msa_url_decode(p, enc, strlen(enc), &back) == APR_SUCCESS &&
                        strcmp(back, got) == 0,
                    data, size);
    } else {
        FUZZ_ASSERT(got == NULL, data, size);
    }
    FUZZ_ASSERT(!!msa_utf8_valid((const char *)data, size) == model_utf8(data, size, 0), data,
                size);
}

static int bad_url_char(unsigned char c)
{
    return c < 0x21 || c >= 0x7F || c == '\\';
}

static int has_bad_url_char(const char *s)
{
    for (; *s; s++) {
        if (bad_url_char((unsigned char)*s)) {
            return 1;
        }
    }
    return 0;
}

/* The authority of an absolute http(s) URL (after "://"), in p; NULL when not one. */
static const char *authority(apr_pool_t *p, const char *url)
{
    const char *a = strncasecmp(url, "https://", 8) == 0  ? url + 8
                    : strncasecmp(url, "http://", 7) == 0 ? url + 7
                                                          : NULL;
    return a ? apr_pstrmemdup(p, a, strcspn(a, "/?#")) : NULL;
}

static int loopback_host(const char *h)
{
    return strcasecmp(h, "localhost") == 0 || strcmp(h, "[::1]") == 0 || strncmp(h, "127.", 4) == 0;
}

static void check_urls(apr_pool_t *p, const char *s, const uint8_t *data, size_t size)
{
    const char *got = msa_url_fill(p, s, "jwt", "id", fill_value);
    const char *want = model_fill(p, s, "jwt", "id", fill_value);
    FUZZ_ASSERT(want == s ? got == s : strcmp(got, want) == 0, data, size);

    const char *abs_msg = msa_url_check(p, s, 1), *any_msg = msa_url_check(p, s, 0);
    if (abs_msg == NULL) {
        const char *a = authority(p, s);
        FUZZ_ASSERT(any_msg == NULL && !has_bad_url_char(s), data, size);
        FUZZ_ASSERT(a != NULL && *a != '\0' && strchr(a, '@') == NULL, data, size);
    } else if (any_msg == NULL) {
        FUZZ_ASSERT(s[0] == '/' && s[1] != '/' && !has_bad_url_char(s), data, size);
    }

    if (msa_url_outgoing_allowed(s)) {
        const char *a = authority(p, s);
        for (const char *c = s; *c; c++) {
            FUZZ_ASSERT((unsigned char)*c > 0x20 && *c != 0x7F && *c != '\\', data, size);
        }
        FUZZ_ASSERT(a != NULL && *a != '\0' && strchr(a, '@') == NULL, data, size);
        /* As curl reads it: https, or http to this machine. */
        CURLU *u = curl_url();
        char *scheme = NULL, *host = NULL;
        if (u != NULL && curl_url_set(u, CURLUPART_URL, s, 0) == CURLUE_OK &&
            curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
            curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
            FUZZ_ASSERT(strcmp(scheme, "https") == 0 ||
                            (strcmp(scheme, "http") == 0 && loopback_host(host)),
                        data, size);
        }
        curl_free(scheme);
        curl_free(host);
        curl_url_cleanup(u);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fuzz_begin();
    char *s = fuzz_cstr(p, data, size);

    check_query(p, s, data, size);
    check_decode(p, data, size);
    check_urls(p, s, data, size);

    fuzz_end();
    return 0;
}
