/* Unit tests of src/core/msa_url.c. */
#include <string.h>

#include <apr_strings.h>
#include <apr_tables.h>

#include "msa_test.h"
#include "msa_url.h"

/* ---- msa_url_encode ---- */

START_TEST(encode_unreserved_kept)
{
    const char *s = "AZaz09-._~";
    ck_assert_str_eq(msa_url_encode(pool, s), s);
}
END_TEST

START_TEST(encode_reserved_escaped)
{
    ck_assert_str_eq(msa_url_encode(pool, "a b&c=d/e?f#g+h%"), "a%20b%26c%3Dd%2Fe%3Ff%23g%2Bh%25");
    ck_assert_str_eq(msa_url_encode(pool, "\xC3\xA9\xFF\x01"), "%C3%A9%FF%01");
    ck_assert_str_eq(msa_url_encode(pool, ""), "");
    ck_assert_str_eq(msa_url_encode(pool, NULL), "");
}
END_TEST

START_TEST(encode_decode_roundtrip)
{
    const char *s = "https://app.example/cb?x=1&y=caf\xC3\xA9 \xF0\x9F\x98\x80~";
    char *enc = msa_url_encode(pool, s);
    char *dec = NULL;
    ck_assert_int_eq(msa_url_decode(pool, enc, strlen(enc), &dec), APR_SUCCESS);
    ck_assert_str_eq(dec, s);
}
END_TEST

/* ---- msa_url_decode ---- */

static apr_status_t dec(const char *s, char **out)
{
    return msa_url_decode(pool, s, strlen(s), out);
}

START_TEST(decode_good)
{
    char *out = NULL;
    ck_assert_int_eq(dec("a+b%20c%2fd%2F", &out), APR_SUCCESS);
    ck_assert_str_eq(out, "a b c/d/");
    ck_assert_int_eq(dec("", &out), APR_SUCCESS);
    ck_assert_str_eq(out, "");
    ck_assert_int_eq(dec("%C3%A9t%C3%A9", &out), APR_SUCCESS);
    ck_assert_str_eq(out, "\xC3\xA9t\xC3\xA9");
    ck_assert_int_eq(dec("%F4%8F%BF%BF", &out), APR_SUCCESS); /* U+10FFFF */
    ck_assert_str_eq(out, "\xF4\x8F\xBF\xBF");
}
END_TEST

START_TEST(decode_respects_len)
{
    char *out = NULL;
    /* Only the first 3 bytes count: a '%' cut at the end of the slice is broken. */
    ck_assert_int_eq(msa_url_decode(pool, "ab%41", 3, &out), APR_EINVAL);
    ck_assert_ptr_null(out);
    ck_assert_int_eq(msa_url_decode(pool, "ab%41", 4, &out), APR_EINVAL);
    ck_assert_int_eq(msa_url_decode(pool, "ab%41", 2, &out), APR_SUCCESS);
    ck_assert_str_eq(out, "ab");
    ck_assert_int_eq(msa_url_decode(pool, NULL, 0, &out), APR_SUCCESS);
    ck_assert_str_eq(out, "");
    ck_assert_int_eq(msa_url_decode(pool, NULL, 1, &out), APR_EINVAL);
}
END_TEST

static const char *const bad_components[] = {
    "%",            /* lone percent */
    "a%",           /* percent at the end */
    "a%4",          /* one hex digit */
    "%G1",          /* non-hex */
    "%1G",          /* non-hex */
    "%4G",          /* non-hex second digit after a printable first */
    "%4z",          /* likewise */
    "%+4",          /* '+' is no hex digit */
    "%%41",         /* percent then percent */
    "%00",          /* encoded NUL */
    "a%00b",        /* encoded NUL inside */
    "%C0%AF",       /* overlong '/' */
    "%C1%BF",       /* overlong */
    "%E0%80%AF",    /* overlong '/' on 3 bytes */
    "%F0%80%80%AF", /* overlong '/' on 4 bytes */
    "%ED%A0%80",    /* surrogate U+D800 */
    "%ED%BF%BF",    /* surrogate U+DFFF */
    "%F4%90%80%80", /* U+110000 */
    "%F5%80%80%80", /* beyond Unicode */
    "%FF",          /* never in UTF-8 */
    "%80",          /* lone continuation byte */
    "%C3",          /* truncated sequence */
    "%E2%82",       /* truncated sequence */
    "%C3%28",       /* bad continuation */
    "caf\xC3",      /* raw truncated sequence */
};

START_TEST(decode_bad)
{
    const char *s = bad_components[_i];
    char *out = (char *)"sentinel";
    ck_assert_msg(dec(s, &out) == APR_EINVAL, "decoded \"%s\"", s);
    ck_assert_ptr_null(out);
}
END_TEST

/* Microsoft's error_description holds CR LF: decoding keeps controls other than NUL. */
static const char *const control_components[] = {"%0A", "%0d%0a", "%09",  "%1F",
                                                 "%7F", "%C2%85", "a\x01"};

START_TEST(decode_keeps_controls)
{
    char *out = NULL;
    ck_assert_int_eq(dec(control_components[_i], &out), APR_SUCCESS);
    ck_assert_ptr_nonnull(out);
}
END_TEST

START_TEST(decode_microsoft_error_description)
{
    apr_table_t *t = NULL;
    const char *v = NULL;
    ck_assert_int_eq(msa_query_parse(pool,
                                     "error=access_denied&error_description=AADSTS65004%3a+User"
                                     "+declined.%0d%0aTrace+ID%3a+0a14&state=app1",
                                     &t),
                     APR_SUCCESS);
    ck_assert_int_eq(msa_query_get1(t, "error", &v), APR_SUCCESS);
    ck_assert_str_eq(v, "access_denied");
    ck_assert_int_eq(msa_query_get1(t, "error_description", &v), APR_SUCCESS);
    ck_assert_str_eq(v, "AADSTS65004: User declined.\r\nTrace ID: 0a14");
}
END_TEST

START_TEST(decode_raw_nul_in_slice)
{
    char *out = NULL;
    ck_assert_int_eq(msa_url_decode(pool, "a\0b", 3, &out), APR_EINVAL);
}
END_TEST

/* ---- msa_utf8_valid ---- */

START_TEST(utf8_valid_cases)
{
    ck_assert_int_eq(msa_utf8_valid("", 0), 1);
    ck_assert_int_eq(msa_utf8_valid(NULL, 0), 1);
    ck_assert_int_eq(msa_utf8_valid("plain ascii ~", 13), 1);
    ck_assert_int_eq(msa_utf8_valid("a\tb", 3), 1);             /* TAB allowed, as documented */
    ck_assert_int_eq(msa_utf8_valid("\xC2\xA0", 2), 1);         /* NBSP */
    ck_assert_int_eq(msa_utf8_valid("\xE2\x82\xAC", 3), 1);     /* euro */
    ck_assert_int_eq(msa_utf8_valid("\xEF\xBF\xBD", 3), 1);     /* U+FFFD */
    ck_assert_int_eq(msa_utf8_valid("\xF0\x9F\x98\x80", 4), 1); /* emoji */
    ck_assert_int_eq(msa_utf8_valid("\xED\x9F\xBF", 3), 1);     /* U+D7FF, just below surrogates */
    ck_assert_int_eq(msa_utf8_valid("\xEE\x80\x80", 3), 1);     /* U+E000, just above */

    ck_assert_int_eq(msa_utf8_valid("a\nb", 3), 0);
    ck_assert_int_eq(msa_utf8_valid("a\rb", 3), 0);
    ck_assert_int_eq(msa_utf8_valid("a\x7F", 2), 0);
    ck_assert_int_eq(msa_utf8_valid("a\0b", 3), 0);
    ck_assert_int_eq(msa_utf8_valid("\xC2\x9B", 2), 0); /* CSI */
    ck_assert_int_eq(msa_utf8_valid("\xC0\xAF", 2), 0);
    ck_assert_int_eq(msa_utf8_valid("\xE0\x9F\xBF", 3), 0);
    ck_assert_int_eq(msa_utf8_valid("\xED\xA0\x80", 3), 0);
    ck_assert_int_eq(msa_utf8_valid("\xF4\x90\x80\x80", 4), 0);
    ck_assert_int_eq(msa_utf8_valid("\xF8\x88\x80\x80\x80", 5), 0);
    /* The length bounds the scan: a sequence cut by len is invalid. */
    ck_assert_int_eq(msa_utf8_valid("\xE2\x82\xAC", 2), 0);
    ck_assert_int_eq(msa_utf8_valid("\xF0\x9F\x98\x80", 3), 0);
}
END_TEST

/* ---- msa_query_parse / msa_query_get1 ---- */

START_TEST(query_parse_basic)
{
    apr_table_t *t = NULL;
    const char *v = NULL;
    ck_assert_int_eq(msa_query_parse(pool, "code=abc&state=my%7Capp&flag&e=&&x=a+b", &t),
                     APR_SUCCESS);
    ck_assert_int_eq(apr_table_elts(t)->nelts, 5);
    ck_assert_int_eq(msa_query_get1(t, "code", &v), APR_SUCCESS);
    ck_assert_str_eq(v, "abc");
    ck_assert_int_eq(msa_query_get1(t, "state", &v), APR_SUCCESS);
    ck_assert_str_eq(v, "my|app");
    ck_assert_int_eq(msa_query_get1(t, "flag", &v), APR_SUCCESS);
    ck_assert_str_eq(v, "");
    ck_assert_int_eq(msa_query_get1(t, "e", &v), APR_SUCCESS);
    ck_assert_str_eq(v, "");
    ck_assert_int_eq(msa_query_get1(t, "x", &v), APR_SUCCESS);
    ck_assert_str_eq(v, "a b");
    ck_assert_int_eq(msa_query_get1(t, "missing", &v), APR_ENOENT);
    ck_assert_ptr_null(v);
}
END_TEST

START_TEST(query_parse_value_with_equals_and_encoded_name)
{
    apr_table_t *t = NULL;
    const char *v = NULL;
    ck_assert_int_eq(msa_query_parse(pool, "return%5Fto=%2Fa%3Fb%3D1&k=v=w", &t), APR_SUCCESS);
    ck_assert_int_eq(msa_query_get1(t, "return_to", &v), APR_SUCCESS);
    ck_assert_str_eq(v, "/a?b=1");
    ck_assert_int_eq(msa_query_get1(t, "k", &v), APR_SUCCESS);
    ck_assert_str_eq(v, "v=w");
}
END_TEST

START_TEST(query_parse_empty)
{
    apr_table_t *t = NULL;
    ck_assert_int_eq(msa_query_parse(pool, NULL, &t), APR_SUCCESS);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(apr_table_elts(t)->nelts, 0);
    t = NULL;
    ck_assert_int_eq(msa_query_parse(pool, "", &t), APR_SUCCESS);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(apr_table_elts(t)->nelts, 0);
    t = NULL;
    ck_assert_int_eq(msa_query_parse(pool, "&&&", &t), APR_SUCCESS);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(apr_table_elts(t)->nelts, 0);
}
END_TEST

static const char *const bad_queries[] = {
    "code=abc&state=%",     "code=abc&state=%zz", "code=%C0%AF",
    "return_to=%2F%00evil", "a=1&b%=2",           "x=%ED%A0%80",
    "x=\xC3\x28",           "x=%FF%FE",           "%=1",
};

START_TEST(query_parse_bad)
{
    apr_table_t *t = (apr_table_t *)pool; /* any non-NULL */
    ck_assert_msg(msa_query_parse(pool, bad_queries[_i], &t) == APR_EINVAL, "parsed \"%s\"",
                  bad_queries[_i]);
    ck_assert_ptr_null(t);
}
END_TEST

START_TEST(query_parse_param_limit)
{
    apr_table_t *t = NULL;
    char *q = apr_pstrdup(pool, "p0=0");
    for (int i = 1; i < 100; i++) {
        q = apr_psprintf(pool, "%s&p%d=%d", q, i, i);
    }
    ck_assert_int_eq(msa_query_parse(pool, q, &t), APR_SUCCESS);
    ck_assert_int_eq(apr_table_elts(t)->nelts, 100);
    /* Empty segments do not count towards the limit. */
    ck_assert_int_eq(msa_query_parse(pool, apr_pstrcat(pool, q, "&&&&", NULL), &t), APR_SUCCESS);
    ck_assert_int_eq(msa_query_parse(pool, apr_pstrcat(pool, q, "&x", NULL), &t), APR_EINVAL);
    ck_assert_ptr_null(t);
}
END_TEST

START_TEST(get1_repeated)
{
    apr_table_t *t = NULL;
    const char *v = "sentinel";
    ck_assert_int_eq(msa_query_parse(pool, "state=a&code=c&state=b", &t), APR_SUCCESS);
    ck_assert_int_eq(msa_query_get1(t, "state", &v), APR_EINVAL);
    ck_assert_ptr_null(v);
    ck_assert_int_eq(msa_query_get1(t, "code", &v), APR_SUCCESS);
    ck_assert_str_eq(v, "c");
    /* Same value twice is still repeated. */
    ck_assert_int_eq(msa_query_parse(pool, "code=c&code=c", &t), APR_SUCCESS);
    ck_assert_int_eq(msa_query_get1(t, "code", &v), APR_EINVAL);
    /* A name without '=' counts too. */
    ck_assert_int_eq(msa_query_parse(pool, "code=c&code", &t), APR_SUCCESS);
    ck_assert_int_eq(msa_query_get1(t, "code", &v), APR_EINVAL);
}
END_TEST

START_TEST(get1_case)
{
    apr_table_t *t = NULL;
    const char *v = NULL;
    /* A case variant alongside the real name is pollution: refused. */
    ck_assert_int_eq(msa_query_parse(pool, "state=a&STATE=b", &t), APR_SUCCESS);
    ck_assert_int_eq(msa_query_get1(t, "state", &v), APR_EINVAL);
    /* Names are case-sensitive: a lone variant is not the parameter. */
    ck_assert_int_eq(msa_query_parse(pool, "State=a", &t), APR_SUCCESS);
    ck_assert_int_eq(msa_query_get1(t, "state", &v), APR_ENOENT);
    ck_assert_int_eq(msa_query_get1(t, "State", &v), APR_SUCCESS);
    ck_assert_str_eq(v, "a");
    ck_assert_int_eq(msa_query_get1(NULL, "state", &v), APR_ENOENT);
}
END_TEST

/* ---- msa_url_fill ---- */

static const struct {
    const char *url, *param, *placeholder, *value, *want;
} fill_cases[] = {
    {"http://x/app?jwt=id", "jwt", "id", "abc", "http://x/app?jwt=abc"},
    {"/?a=1&jwt=?&b", "jwt", "?", "t", "/?a=1&jwt=t&b"},
    {"/?xjwt=id", "jwt", "id", "v", "/?xjwt=id"},
    {"/?jwt=idx", "jwt", "id", "v", "/?jwt=idx"},
    {"/?jwtxid", "jwt", "id", "v", "/?jwtxid"},
    {"/?jwt=id2&jwt=id", "jwt", "id", "v", "/?jwt=id2&jwt=v"},
    {"/fail?cause=?", "cause", "?", "token exchange", "/fail?cause=token%20exchange"},
    {"/app?jwt=id#f", "jwt", "id", "a.b-c", "/app?jwt=a.b-c#f"},
    {"/app?jwt=id&x=%2F&y#jwt=id", "jwt", "id", "v", "/app?jwt=v&x=%2F&y#jwt=id"},
    {"/app?x=1#?jwt=id", "jwt", "id", "v", "/app?x=1#?jwt=id"},
    {"/app#?jwt=id", "jwt", "id", "v", "/app#?jwt=id"},
    {"/app/jwt=id", "jwt", "id", "v", "/app/jwt=id"},
    {"/?jwt=id&jwt=id", "jwt", "id", "1", "/?jwt=1&jwt=id"},
    {"/?jwt=?&jwt=id", "jwt", "id", "I", "/?jwt=?&jwt=I"},
    {"/?a&&jwt=?", "jwt", "?", "x y&z", "/?a&&jwt=x%20y%26z"},
    {"/?jwt=", "jwt", "", "v", "/?jwt=v"},
    {"/?", "jwt", "id", "v", "/?"},
    {"", "jwt", "id", "v", ""},
};

START_TEST(fill_table)
{
    const char *got = msa_url_fill(pool, fill_cases[_i].url, fill_cases[_i].param,
                                   fill_cases[_i].placeholder, fill_cases[_i].value);
    ck_assert_msg(got != NULL && strcmp(got, fill_cases[_i].want) == 0, "fill(%s) gave %s, want %s",
                  fill_cases[_i].url, got ? got : "(null)", fill_cases[_i].want);
}
END_TEST

START_TEST(fill_unchanged_returns_same)
{
    const char *url = "/?a=1";
    ck_assert_ptr_eq(msa_url_fill(pool, url, "jwt", "id", "v"), url);
    ck_assert_ptr_null(msa_url_fill(pool, NULL, "jwt", "id", "v"));
    ck_assert_str_eq(msa_url_fill(pool, "/?jwt=id", "jwt", "id", NULL), "/?jwt=");
}
END_TEST

/* ---- msa_url_check ---- */

static const char *const good_absolute[] = {
    "https://app.example.com",
    "https://app.example.com/",
    "HTTPS://App.Example.com/x?y=1#z",
    "http://localhost:8080/cb",
    "http://127.0.0.1:1/",
    "https://[::1]:65535/x",
    "https://[2001:db8::1]/",
    "https://h?x",
    "https://h#x",
    "https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
};

static const char *const bad_absolute[] = {
    "",
    "ftp://h/",
    "https:/h",
    "https:h",
    "https://",
    "https:///path",
    "https://user@h/",
    "https://user:pw@h/",
    "https://h:0/",
    "https://h:65536/",
    "https://h:99999999999999999999/",
    "https://h:/",
    "https://h:8a/",
    "https://h_x/",
    "https://h%2e/",
    "https://[::1/",
    "https://[zz::1]/",
    "https://[]/",
    "https://[::1]x/",
    "https://h/a b",
    "https://h/\t",
    "https://h/\x7F",
    " https://h/",
    "https://h\\evil/",
    "https://h/caf\xC3\xA9",
    "/relative",
    "javascript:alert(1)",
};

START_TEST(check_good_absolute)
{
    ck_assert_msg(msa_url_check(pool, good_absolute[_i], 1) == NULL, "refused %s",
                  good_absolute[_i]);
    ck_assert_ptr_null(msa_url_check(pool, good_absolute[_i], 0));
}
END_TEST

START_TEST(check_bad_absolute)
{
    ck_assert_msg(msa_url_check(pool, bad_absolute[_i], 1) != NULL, "accepted %s",
                  bad_absolute[_i]);
}
END_TEST

START_TEST(check_relative)
{
    ck_assert_ptr_null(msa_url_check(pool, "/", 0));
    ck_assert_ptr_null(msa_url_check(pool, "/?error", 0));
    ck_assert_ptr_null(msa_url_check(pool, "/fail?cause=?", 0));
    ck_assert_ptr_nonnull(msa_url_check(pool, "//evil.com", 0));
    ck_assert_ptr_nonnull(msa_url_check(pool, "/\\evil.com", 0));
    ck_assert_ptr_nonnull(msa_url_check(pool, "relative", 0));
    ck_assert_ptr_nonnull(msa_url_check(pool, "?x", 0));
    ck_assert_ptr_nonnull(msa_url_check(pool, NULL, 0));
    ck_assert_ptr_nonnull(msa_url_check(pool, "", 0));
    ck_assert_ptr_nonnull(msa_url_check(pool, "javascript:alert(1)", 0));
    ck_assert_ptr_nonnull(msa_url_check(pool, "https://u@h/", 0));
}
END_TEST

START_TEST(check_messages)
{
    ck_assert_str_eq(msa_url_check(pool, "/x", 1), "not an absolute http(s) URL");
    ck_assert_str_eq(msa_url_check(pool, "ftp://h", 1), "not an absolute http(s) URL");
    ck_assert_str_eq(msa_url_check(pool, "https://h/a b", 0),
                     "contains whitespace or control characters");
    ck_assert_str_eq(msa_url_check(pool, "/a\r\n", 0), "contains whitespace or control characters");
    ck_assert_ptr_nonnull(strstr(msa_url_check(pool, "https://u@h", 1), "user"));
    ck_assert_ptr_nonnull(strstr(msa_url_check(pool, "https://h:0", 1), "port"));
    ck_assert_ptr_nonnull(strstr(msa_url_check(pool, "https://h!/", 1), "host"));
}
END_TEST

/* ---- msa_url_outgoing_allowed ---- */

static const char *const outgoing_ok[] = {
    "https://login.microsoftonline.com/common/oauth2/v2.0/token",
    "HTTPS://graph.microsoft.com",
    "https://proxy.internal:8443/",
    "https://[2001:db8::1]/",
    "http://127.0.0.1:8080/",
    "http://127.0.0.1",
    "http://127.1.2.3/x",
    "http://127.255.255.255",
    "http://localhost/",
    "http://LocalHost:9/x",
    "HTTP://[::1]:5555/keys",
    "http://[::1]",
    "http://127.0.0.1?x",
};

static const char *const outgoing_refused[] = {
    NULL,
    "",
    "http://example.com/",
    "http://10.0.0.1/",
    "http://128.0.0.1/",
    "http://127.0.0.1@evil.com/",
    "http://127.0.0.1:80@evil.com/",
    "http://evil.com@127.0.0.1/",
    "http://127.0.0.1.evil.com/",
    "http://localhost.evil.com/",
    "http://localhost./",
    "http://evil-localhost/",
    "http://127.0.0/",
    "http://127.0.0.1.1/",
    "http://127.0.0.256/",
    "http://127.0.0.1000/",
    "http://0127.0.0.1/",
    "http://127..0.1/",
    "http://127.0.0./",
    "http://[::2]/",
    "http://[::1]evil/",
    "http://127.0.0.1\\@evil.com/",
    "http://127.0.0.1 /",
    "http://127.0.0.1:0/",
    "https://user@host/",
    "https://",
    "https:///x",
    "https:graph.microsoft.com",
    "ftp://127.0.0.1/",
    "file:///etc/passwd",
    "https://h\n/",
};

START_TEST(outgoing_allowed_ok)
{
    ck_assert_msg(msa_url_outgoing_allowed(outgoing_ok[_i]) == 1, "refused %s", outgoing_ok[_i]);
}
END_TEST

START_TEST(outgoing_allowed_refused)
{
    const char *u = outgoing_refused[_i];
    ck_assert_msg(msa_url_outgoing_allowed(u) == 0, "allowed %s", u ? u : "(null)");
}
END_TEST

/* ---- msa_redirect_target ---- */

#define SELF "https://self.example"

static apr_array_header_t *allow_list(void)
{
    apr_array_header_t *a = apr_array_make(pool, 3, sizeof(const char *));
    APR_ARRAY_PUSH(a, const char *) = "https://app.example.com";
    APR_ARRAY_PUSH(a, const char *) = "https://docs.example.com/guide/";
    APR_ARRAY_PUSH(a, const char *) = "http://localhost:3000/app";
    return a;
}

/* Known open-redirect payloads: each must be refused. */
static const char *const bypasses[] = {
    "//evil.com",
    "///evil.com",
    "////evil.com",
    "/\\evil.com",
    "\\\\evil.com",
    "\\/evil.com",
    "https:evil.com",
    "https:/evil.com",
    "https:\\\\evil.com",
    "http://evil.com",
    "https://evil.com",
    "%2F%2Fevil.com",
    "%2f%2fevil.com",
    "%5C%5Cevil.com",
    "/%2F/evil.com",
    "/%2f/evil.com",
    "/%5Cevil.com",
    "/%5cevil.com",
    "java\tscript:alert(1)",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "data:text/html,x",
    "vbscript:x",
    "/\t/evil.com",
    "/\r\n/evil.com",
    "/\n/evil.com",
    "https://self.example@evil.com",
    "https://self.example:443@evil.com",
    "https://self.example\\@evil.com",
    "https://evil.com#@self.example",
    "https://evil.com?@self.example",
    "https://evil.com\\self.example",
    "https://self.example.evil.com",
    "https://self.example./x",
    "http://self.example",
    "http://self.example:443/",
    "https://self.example:8443/",
    " /path",
    "\t/path",
    "/path\n",
    "/path ",
    "/pa th",
    "/\x7F",
    "//self.example",
    "//self.example/x",
    "https://app.example.com.evil.com",
    "https://app.example.com.evil.com/x",
    "https://app.example.com:8443/",
    "https://app.example.comx",
    "https://docs.example.com/guidebook",
    "https://docs.example.com/",
    "https://docs.example.com/other",
    "http://localhost:3000/apparently",
    "http://localhost:3000/",
    "http://localhost/app",
    "https://[::1]/",
    "https:///self.example",
    "https://",
    "?x=1",
    "#frag",
    "relative/path",
    "evil.com",
    "/caf\xC3",
    "/\xC0\xAF",
    "/\xC2\x85",
};

START_TEST(redirect_bypasses_refused)
{
    const char *t = bypasses[_i];
    const char *got = msa_redirect_target(pool, t, SELF, allow_list());
    ck_assert_msg(got == NULL, "accepted bypass #%d \"%s\"", _i, t);
}
END_TEST

static const char *const redirect_ok[] = {
    "/",
    "/path",
    "/path?x=1&y=%2F#frag",
    "/a/b/../c",
    "/caf\xC3\xA9",
    "/%2e%2e/x",
    "/?return_to=//evil.com", /* only a query of our own path */
    "https://self.example",
    "https://self.example/x?y#z",
    "https://SELF.example:443/x",
    "HTTPS://self.EXAMPLE/",
    "https://self.example?x",
    "https://app.example.com",
    "https://app.example.com/",
    "https://app.example.com/any/path?x#y",
    "https://APP.example.com:443/x",
    "https://app.example.com?x",
    "https://app.example.com#x",
    "https://docs.example.com/guide/",
    "https://docs.example.com/guide/intro",
    "http://localhost:3000/app",
    "http://localhost:3000/app/",
    "http://localhost:3000/app?x=1",
    "http://localhost:3000/app#top",
};

START_TEST(redirect_accepted)
{
    const char *t = redirect_ok[_i];
    const char *got = msa_redirect_target(pool, t, SELF, allow_list());
    ck_assert_msg(got != NULL && strcmp(got, t) == 0, "refused \"%s\"", t);
}
END_TEST

START_TEST(redirect_self_origin_forms)
{
    /* A self origin with an explicit default port, or a non-default one. */
    ck_assert_ptr_nonnull(
        msa_redirect_target(pool, "https://self.example/x", "https://self.example:443", NULL));
    ck_assert_ptr_null(
        msa_redirect_target(pool, "https://self.example/x", "https://self.example:8443", NULL));
    ck_assert_ptr_nonnull(msa_redirect_target(pool, "https://self.example:8443/x",
                                              "https://self.example:8443", NULL));
    ck_assert_ptr_nonnull(msa_redirect_target(pool, "http://h:80/x", "http://h", NULL));
    ck_assert_ptr_null(msa_redirect_target(pool, "https://h/x", "http://h", NULL));
    /* Without a usable self origin, paths still work and absolute URLs do not. */
    ck_assert_ptr_nonnull(msa_redirect_target(pool, "/x", NULL, NULL));
    ck_assert_ptr_null(msa_redirect_target(pool, "https://self.example/x", NULL, NULL));
    ck_assert_ptr_null(msa_redirect_target(pool, "https://self.example/x", "garbage", NULL));
    ck_assert_ptr_null(msa_redirect_target(pool, NULL, SELF, NULL));
    ck_assert_ptr_null(msa_redirect_target(pool, "", SELF, NULL));
}
END_TEST

START_TEST(redirect_allow_prefix_boundary)
{
    apr_array_header_t *a = apr_array_make(pool, 1, sizeof(const char *));
    APR_ARRAY_PUSH(a, const char *) = "https://app.example.com";
    ck_assert_ptr_nonnull(msa_redirect_target(pool, "https://app.example.com/x", SELF, a));
    ck_assert_ptr_null(msa_redirect_target(pool, "https://app.example.com.evil.com", SELF, a));
    ck_assert_ptr_null(msa_redirect_target(pool, "https://app.example.co", SELF, a));
    /* Without the list the same target is refused: the list is what admits it. */
    ck_assert_ptr_null(msa_redirect_target(pool, "https://app.example.com/x", SELF, NULL));
    /* A prefix of a bare origin with its '/' admits the origin written without one. */
    apr_array_header_t *r = apr_array_make(pool, 1, sizeof(const char *));
    APR_ARRAY_PUSH(r, const char *) = "https://root.example/";
    ck_assert_ptr_nonnull(msa_redirect_target(pool, "https://root.example", SELF, r));
    ck_assert_ptr_nonnull(msa_redirect_target(pool, "https://root.example?x", SELF, r));
    ck_assert_ptr_nonnull(msa_redirect_target(pool, "https://root.example/x", SELF, r));
    ck_assert_ptr_null(msa_redirect_target(pool, "https://root.example.evil", SELF, r));
    /* A broken prefix in the list admits nothing. */
    apr_array_header_t *b = apr_array_make(pool, 2, sizeof(const char *));
    APR_ARRAY_PUSH(b, const char *) = "https://";
    APR_ARRAY_PUSH(b, const char *) = NULL;
    ck_assert_ptr_null(msa_redirect_target(pool, "https://evil.com/", SELF, b));
}
END_TEST

START_TEST(redirect_length_cap)
{
    char *t = apr_palloc(pool, 2050);
    t[0] = '/';
    memset(t + 1, 'a', 2047);
    t[2048] = '\0';
    ck_assert_ptr_nonnull(msa_redirect_target(pool, t, SELF, NULL)); /* exactly 2048 */
    t[2048] = 'a';
    t[2049] = '\0';
    ck_assert_ptr_null(msa_redirect_target(pool, t, SELF, NULL));
}
END_TEST

static Suite *url_suite(void)
{
    Suite *s = suite_create("msa_url");
    TCase *tc;

    tc = msa_test_case("encode");
    tcase_add_test(tc, encode_unreserved_kept);
    tcase_add_test(tc, encode_reserved_escaped);
    tcase_add_test(tc, encode_decode_roundtrip);
    suite_add_tcase(s, tc);

    tc = msa_test_case("decode");
    tcase_add_test(tc, decode_good);
    tcase_add_test(tc, decode_respects_len);
    tcase_add_loop_test(tc, decode_bad, 0, sizeof bad_components / sizeof *bad_components);
    tcase_add_test(tc, decode_raw_nul_in_slice);
    tcase_add_loop_test(tc, decode_keeps_controls, 0,
                        sizeof control_components / sizeof *control_components);
    tcase_add_test(tc, decode_microsoft_error_description);
    tcase_add_test(tc, utf8_valid_cases);
    suite_add_tcase(s, tc);

    tc = msa_test_case("query");
    tcase_add_test(tc, query_parse_basic);
    tcase_add_test(tc, query_parse_value_with_equals_and_encoded_name);
    tcase_add_test(tc, query_parse_empty);
    tcase_add_loop_test(tc, query_parse_bad, 0, sizeof bad_queries / sizeof *bad_queries);
    tcase_add_test(tc, query_parse_param_limit);
    tcase_add_test(tc, get1_repeated);
    tcase_add_test(tc, get1_case);
    suite_add_tcase(s, tc);

    tc = msa_test_case("build");
    tcase_add_loop_test(tc, fill_table, 0, sizeof fill_cases / sizeof *fill_cases);
    tcase_add_test(tc, fill_unchanged_returns_same);
    suite_add_tcase(s, tc);

    tc = msa_test_case("check");
    tcase_add_loop_test(tc, check_good_absolute, 0, sizeof good_absolute / sizeof *good_absolute);
    tcase_add_loop_test(tc, check_bad_absolute, 0, sizeof bad_absolute / sizeof *bad_absolute);
    tcase_add_test(tc, check_relative);
    tcase_add_test(tc, check_messages);
    tcase_add_loop_test(tc, outgoing_allowed_ok, 0, sizeof outgoing_ok / sizeof *outgoing_ok);
    tcase_add_loop_test(tc, outgoing_allowed_refused, 0,
                        sizeof outgoing_refused / sizeof *outgoing_refused);
    suite_add_tcase(s, tc);

    tc = msa_test_case("redirect");
    tcase_add_loop_test(tc, redirect_bypasses_refused, 0, sizeof bypasses / sizeof *bypasses);
    tcase_add_loop_test(tc, redirect_accepted, 0, sizeof redirect_ok / sizeof *redirect_ok);
    tcase_add_test(tc, redirect_self_origin_forms);
    tcase_add_test(tc, redirect_allow_prefix_boundary);
    tcase_add_test(tc, redirect_length_cap);
    suite_add_tcase(s, tc);

    return s;
}

int main(void)
{
    return msa_test_run(url_suite());
}
