/* Unit tests of src/core/msa_state.c: the state value, login state and its cookie. */
#include <string.h>

#include <apr_strings.h>

#include "msa_jose.h"
#include "msa_state.h"
#include "msa_test.h"

static const unsigned char secret[] = "the app's MSAuthSecretKey, 32+ bytes";
static const unsigned char other_secret[] = "another app's MSAuthSecretKey, 32+b";

#define SECRET_LEN (sizeof secret - 1)

/* ---- msa_state_parse ---- */

START_TEST(parse_null_is_root_client_built)
{
    msa_state_ref_t r;
    ck_assert_int_eq(msa_state_parse(pool, NULL, &r), APR_SUCCESS);
    ck_assert_str_eq(r.appid, "");
    ck_assert_ptr_null(r.random);
    ck_assert_int_eq(r.client_built, 1);
}
END_TEST

START_TEST(parse_appid_only)
{
    msa_state_ref_t r;
    ck_assert_int_eq(msa_state_parse(pool, "app1", &r), APR_SUCCESS);
    ck_assert_str_eq(r.appid, "app1");
    ck_assert_ptr_null(r.random);
    ck_assert_int_eq(r.client_built, 1);
    ck_assert_int_eq(msa_state_parse(pool, "my.app_1~x-y", &r), APR_SUCCESS);
    ck_assert_str_eq(r.appid, "my.app_1~x-y");
}
END_TEST

START_TEST(parse_host_alias_digits)
{
    msa_state_ref_t r;
    ck_assert_int_eq(msa_state_parse(pool, "app1|123", &r), APR_SUCCESS);
    ck_assert_str_eq(r.appid, "app1");
    ck_assert_str_eq(r.random, "123");
    ck_assert_int_eq(r.client_built, 1);
}
END_TEST

START_TEST(parse_module_initiated)
{
    msa_state_ref_t r;
    ck_assert_int_eq(msa_state_parse(pool, "app1|AbC_-9", &r), APR_SUCCESS);
    ck_assert_str_eq(r.appid, "app1");
    ck_assert_str_eq(r.random, "AbC_-9");
    ck_assert_int_eq(r.client_built, 0);
    /* One letter among digits is enough to be ours. */
    ck_assert_int_eq(msa_state_parse(pool, "app1|123a", &r), APR_SUCCESS);
    ck_assert_int_eq(r.client_built, 0);
}
END_TEST

START_TEST(parse_root_module_initiated)
{
    msa_state_ref_t r;
    ck_assert_int_eq(msa_state_parse(pool, "|abc", &r), APR_SUCCESS);
    ck_assert_str_eq(r.appid, "");
    ck_assert_str_eq(r.random, "abc");
    ck_assert_int_eq(r.client_built, 0);
}
END_TEST

START_TEST(parse_lengths)
{
    msa_state_ref_t r;
    /* 512 bytes is the cap: accepted; 513 refused. */
    char *s = apr_palloc(pool, 514);
    memcpy(s, "app1|", 5);
    memset(s + 5, 'x', 508);
    s[512] = '\0';
    ck_assert_int_eq(msa_state_parse(pool, s, &r), APR_SUCCESS);
    ck_assert_uint_eq(strlen(r.random), 507);
    s[512] = 'x';
    s[513] = '\0';
    ck_assert_int_eq(msa_state_parse(pool, s, &r), APR_EINVAL);
    /* 64-char appid accepted, 65 refused, with or without a random part. */
    char a64[66];
    memset(a64, 'a', 65);
    a64[64] = '\0';
    ck_assert_int_eq(msa_state_parse(pool, a64, &r), APR_SUCCESS);
    ck_assert_int_eq(msa_state_parse(pool, apr_pstrcat(pool, a64, "|xyz", NULL), &r), APR_SUCCESS);
    a64[64] = 'a';
    a64[65] = '\0';
    ck_assert_int_eq(msa_state_parse(pool, a64, &r), APR_EINVAL);
    ck_assert_int_eq(msa_state_parse(pool, apr_pstrcat(pool, a64, "|xyz", NULL), &r), APR_EINVAL);
}
END_TEST

static const char *const bad_states[] = {
    "app1|",     /* empty random */
    "|",         /* empty random, root */
    "a b",       /* space in appid */
    "a/b",       /* slash */
    "%",         /* percent */
    "app%7C1",   /* encoded bar is not a bar */
    "a\tb",      /* control */
    "app1|a b",  /* space in random */
    "app1|a=b",  /* '=' is not base64url */
    "app1|a+b",  /* standard base64 */
    "app1|a/b",  /* standard base64 */
    "app1||x",   /* a second bar */
    "app1|x|y",  /* likewise */
    "app1|x.y",  /* '.' is fine in an appid, not in the random part */
    "\xC3\xA9",  /* non-ASCII appid */
    "app1|\xC3", /* non-ASCII random */
    "<script>",  /* markup */
};

START_TEST(parse_bad)
{
    msa_state_ref_t r;
    ck_assert_msg(msa_state_parse(pool, bad_states[_i], &r) == APR_EINVAL, "accepted \"%s\"",
                  bad_states[_i]);
}
END_TEST

START_TEST(appid_valid)
{
    char a[66];
    memset(a, 'a', sizeof a);
    a[64] = '\0';
    ck_assert_int_eq(msa_appid_valid("a"), 1);
    ck_assert_int_eq(msa_appid_valid("My-App_1.2~x"), 1);
    ck_assert_int_eq(msa_appid_valid(a), 1);
    a[64] = 'a';
    a[65] = '\0';
    ck_assert_int_eq(msa_appid_valid(a), 0);
    ck_assert_int_eq(msa_appid_valid(""), 0);
    ck_assert_int_eq(msa_appid_valid("a b"), 0);
    ck_assert_int_eq(msa_appid_valid("a|b"), 0);
    ck_assert_int_eq(msa_appid_valid("a/b"), 0);
    ck_assert_int_eq(msa_appid_valid("a%20"), 0);
    ck_assert_int_eq(msa_appid_valid("caf\xC3\xA9"), 0);
    ck_assert_int_eq(msa_appid_valid("a\n"), 0);
}
END_TEST

/* ---- login state and its cookie ---- */

START_TEST(login_state_new_fields)
{
    msa_login_state_t a, b;
    ck_assert_int_eq(msa_login_state_new(pool, "app1", "/back", 1700000000, &a), APR_SUCCESS);
    ck_assert_int_eq(msa_login_state_new(pool, "app1", NULL, 1700000000, &b), APR_SUCCESS);
    ck_assert_str_eq(a.appid, "app1");
    ck_assert_str_eq(a.return_to, "/back");
    ck_assert_ptr_null(b.return_to);
    ck_assert_int_eq(a.created, 1700000000);
    ck_assert_msg(strncmp(a.state, "app1|", 5) == 0, "state %s", a.state);
    ck_assert_uint_ge(strlen(a.state + 5), 22);

    /* The state we send parses back as our own, module-initiated. */
    msa_state_ref_t r;
    ck_assert_int_eq(msa_state_parse(pool, a.state, &r), APR_SUCCESS);
    ck_assert_str_eq(r.appid, "app1");
    ck_assert_int_eq(r.client_built, 0);

    /* RFC 7636: a verifier of 43..128 unreserved characters. */
    ck_assert_uint_ge(strlen(a.verifier), 43);
    ck_assert_uint_le(strlen(a.verifier), 128);
    ck_assert_uint_eq(strspn(a.verifier, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                         "0123456789-._~"),
                      strlen(a.verifier));
    ck_assert_ptr_nonnull(a.nonce);
    ck_assert_uint_ge(strlen(a.nonce), 22);

    ck_assert_str_ne(a.state, b.state);
    ck_assert_str_ne(a.verifier, b.verifier);
    ck_assert_str_ne(a.nonce, b.nonce);
    ck_assert_str_ne(a.nonce, a.verifier);
}
END_TEST

START_TEST(login_state_new_root)
{
    msa_login_state_t a;
    ck_assert_int_eq(msa_login_state_new(pool, "", NULL, 1, &a), APR_SUCCESS);
    ck_assert_str_eq(a.appid, "");
    ck_assert_int_eq(a.state[0], '|');
    ck_assert_int_eq(msa_login_state_new(pool, NULL, NULL, 1, &a), APR_SUCCESS);
    ck_assert_str_eq(a.appid, "");
    ck_assert_int_eq(a.state[0], '|');
    msa_state_ref_t r;
    ck_assert_int_eq(msa_state_parse(pool, a.state, &r), APR_SUCCESS);
    ck_assert_str_eq(r.appid, "");
    ck_assert_int_eq(r.client_built, 0);
}
END_TEST

static void assert_same_login(const msa_login_state_t *a, const msa_login_state_t *b)
{
    ck_assert_str_eq(a->state, b->state);
    ck_assert_str_eq(a->verifier, b->verifier);
    ck_assert_str_eq(a->nonce, b->nonce);
    ck_assert_str_eq(a->appid, b->appid);
    ck_assert_int_eq(a->created, b->created);
    if (a->epoch == NULL) {
        ck_assert_ptr_null(b->epoch);
    } else {
        ck_assert_pstr_eq(a->epoch, b->epoch);
    }
    if (a->return_to == NULL) {
        ck_assert_ptr_null(b->return_to);
    } else {
        ck_assert_ptr_nonnull(b->return_to);
        ck_assert_str_eq(a->return_to, b->return_to);
    }
}

START_TEST(seal_open_round_trip)
{
    const char *return_tos[] = {NULL, "https://app.example.com/x?y=1&z=\"q\"#f", ""};
    for (size_t i = 0; i < sizeof return_tos / sizeof *return_tos; i++) {
        msa_login_state_t s, back;
        char *cookie = NULL;
        const char *err = NULL;
        ck_assert_int_eq(msa_login_state_new(pool, "app1", return_tos[i], 1700000000, &s),
                         APR_SUCCESS);
        ck_assert_int_eq(msa_login_state_seal(pool, &s, secret, SECRET_LEN, &cookie, &err),
                         APR_SUCCESS);
        /* Encrypted: no field readable in the cookie. */
        ck_assert_ptr_null(strstr(cookie, s.verifier));
        ck_assert_ptr_null(strstr(cookie, s.nonce));
        ck_assert_int_eq(msa_login_state_open(pool, cookie, secret, SECRET_LEN, &back, &err),
                         APR_SUCCESS);
        assert_same_login(&s, &back);
    }
}
END_TEST

START_TEST(epoch_round_trips)
{
    msa_login_state_t s, back;
    char *cookie = NULL;
    const char *err = NULL;
    ck_assert_int_eq(msa_login_state_new(pool, "app1", NULL, 1, &s), APR_SUCCESS);
    ck_assert_ptr_null(s.epoch);
    s.epoch = "0123456789abcdef";
    ck_assert_int_eq(msa_login_state_seal(pool, &s, secret, SECRET_LEN, &cookie, &err),
                     APR_SUCCESS);
    ck_assert_int_eq(msa_login_state_open(pool, cookie, secret, SECRET_LEN, &back, &err),
                     APR_SUCCESS);
    ck_assert_str_eq(back.epoch, "0123456789abcdef");
}
END_TEST

START_TEST(open_other_secret)
{
    msa_login_state_t s, back;
    char *cookie = NULL;
    const char *err = NULL;
    ck_assert_int_eq(msa_login_state_new(pool, "app1", "/x", 1, &s), APR_SUCCESS);
    ck_assert_int_eq(msa_login_state_seal(pool, &s, secret, SECRET_LEN, &cookie, &err),
                     APR_SUCCESS);
    ck_assert_int_eq(
        msa_login_state_open(pool, cookie, other_secret, sizeof other_secret - 1, &back, &err),
        APR_EINVAL);
    /* A prefix of the right secret is another secret. */
    ck_assert_int_eq(msa_login_state_open(pool, cookie, secret, SECRET_LEN - 1, &back, &err),
                     APR_EINVAL);
}
END_TEST

START_TEST(open_tampered)
{
    msa_login_state_t s, back;
    char *cookie = NULL;
    const char *err = NULL;
    ck_assert_int_eq(msa_login_state_new(pool, "app1", "/x", 1, &s), APR_SUCCESS);
    ck_assert_int_eq(msa_login_state_seal(pool, &s, secret, SECRET_LEN, &cookie, &err),
                     APR_SUCCESS);
    /* Change one character in each of the four non-empty parts (never the last char). */
    size_t len = strlen(cookie);
    int part = 0;
    for (size_t i = 0; i < len; i++) {
        if (cookie[i] == '.') {
            part++;
            continue;
        }
        if (i + 1 < len && cookie[i + 1] != '.' && (i == 0 || cookie[i - 1] == '.')) {
            char *t = apr_pstrdup(pool, cookie);
            t[i] = t[i] == 'A' ? 'B' : 'A';
            err = NULL;
            ck_assert_msg(msa_login_state_open(pool, t, secret, SECRET_LEN, &back, &err) ==
                              APR_EINVAL,
                          "tampered part %d opened", part);
            ck_assert_ptr_nonnull(err);
        }
    }
    ck_assert_int_eq(part, 4);
    const char *junk[] = {"", "x", "a.b.c.d.e", apr_pstrcat(pool, cookie, "x", NULL),
                          apr_pstrndup(pool, cookie, len - 1)};
    for (size_t i = 0; i < sizeof junk / sizeof *junk; i++) {
        ck_assert_int_eq(msa_login_state_open(pool, junk[i], secret, SECRET_LEN, &back, &err),
                         APR_EINVAL);
    }
}
END_TEST

START_TEST(open_valid_jwe_wrong_content)
{
    /* Decrypts under the state key, but is not a state: refused. */
    unsigned char key[32];
    msa_key_t k = {secret, SECRET_LEN};
    ck_assert_int_eq(msa_hkdf_sha256(&k, "mod_msauth state cookie v1", key, sizeof key),
                     APR_SUCCESS);
    const char *bodies[] = {
        "[]",
        "{\"s\":\"a|b\",\"v\":\"v\",\"n\":\"n\",\"a\":\"a\"}",             /* no t */
        "{\"s\":\"a|b\",\"v\":\"v\",\"n\":\"n\",\"t\":1}",                 /* no a */
        "{\"s\":\"a|b\",\"v\":7,\"n\":\"n\",\"a\":\"a\",\"t\":1}",         /* v not a string */
        "{\"s\":\"a|b\",\"v\":\"v\",\"n\":\"n\",\"a\":\"a\",\"t\":\"1\"}", /* t a string */
        "{\"s\":\"a|b\",\"v\":\"v\",\"n\":\"n\",\"a\":\"a\",\"r\":5,\"t\":1}",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof *bodies; i++) {
        char *jwe = NULL;
        const char *err = NULL;
        msa_login_state_t back;
        ck_assert_int_eq(msa_jwe_seal(pool, key, bodies[i], &jwe, &err), APR_SUCCESS);
        ck_assert_msg(msa_login_state_open(pool, jwe, secret, SECRET_LEN, &back, &err) ==
                          APR_EINVAL,
                      "opened %s", bodies[i]);
    }
    /* The same key with a well-formed body opens: the refusals are the content. */
    char *jwe = NULL;
    const char *err = NULL;
    msa_login_state_t back;
    ck_assert_int_eq(msa_jwe_seal(pool, key,
                                  "{\"s\":\"a|b\",\"v\":\"v\",\"n\":\"n\",\"a\":\"a\",\"t\":1}",
                                  &jwe, &err),
                     APR_SUCCESS);
    ck_assert_int_eq(msa_login_state_open(pool, jwe, secret, SECRET_LEN, &back, &err), APR_SUCCESS);
    ck_assert_str_eq(back.state, "a|b");
    ck_assert_ptr_null(back.return_to);
}
END_TEST

START_TEST(cookie_name)
{
    const char *n1 = msa_login_state_cookie_name(pool, "app1|AAAA");
    const char *n1b = msa_login_state_cookie_name(pool, "app1|AAAA");
    const char *n2 = msa_login_state_cookie_name(pool, "app1|AAAB");
    const char *n3 = msa_login_state_cookie_name(pool, "|AAAA");
    ck_assert_str_eq(n1, n1b);
    ck_assert_str_ne(n1, n2);
    ck_assert_str_ne(n1, n3);
    ck_assert_msg(strncmp(n1, "msauth_state_", 13) == 0, "%s", n1);
    ck_assert_uint_gt(strlen(n1), 13);
    /* A cookie name token (RFC 6265): no separators, so it needs no quoting. */
    ck_assert_uint_eq(strspn(n1, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                 "0123456789-_"),
                      strlen(n1));
    /* Short: the browser sends it with every request during a login. */
    ck_assert_uint_le(strlen(n1), 40);
}
END_TEST

static Suite *state_suite(void)
{
    Suite *s = suite_create("msa_state");
    TCase *tc;

    tc = msa_test_case("parse");
    tcase_add_test(tc, parse_null_is_root_client_built);
    tcase_add_test(tc, parse_appid_only);
    tcase_add_test(tc, parse_host_alias_digits);
    tcase_add_test(tc, parse_module_initiated);
    tcase_add_test(tc, parse_root_module_initiated);
    tcase_add_test(tc, parse_lengths);
    tcase_add_loop_test(tc, parse_bad, 0, sizeof bad_states / sizeof *bad_states);
    tcase_add_test(tc, appid_valid);
    suite_add_tcase(s, tc);

    tc = msa_test_case("login_state");
    tcase_add_test(tc, login_state_new_fields);
    tcase_add_test(tc, login_state_new_root);
    tcase_add_test(tc, seal_open_round_trip);
    tcase_add_test(tc, open_other_secret);
    tcase_add_test(tc, epoch_round_trips);
    tcase_add_test(tc, open_tampered);
    tcase_add_test(tc, open_valid_jwe_wrong_content);
    tcase_add_test(tc, cookie_name);
    suite_add_tcase(s, tc);

    return s;
}

int main(void)
{
    return msa_test_run(state_suite());
}
