/* msa_cae: reading a claims challenge and merging the cp1 capability into its claims. */
#include <string.h>

#include <apr_base64.h>
#include <apr_strings.h>

#include "msa_cae.h"
#include "msa_test.h"

static const char *b64(const char *s)
{
    char *out = apr_palloc(pool, (apr_size_t)apr_base64_encode_len((int)strlen(s)));
    apr_base64_encode(out, s, (int)strlen(s));
    return out;
}

static apr_status_t find(const char *field, const char **claims)
{
    const char *why;
    apr_status_t rv = msa_cae_find_challenge(pool, field, claims, &why);
    ck_assert(rv == APR_SUCCESS || rv == APR_ENOENT || why != NULL);
    return rv;
}

START_TEST(microsoft_example)
{
    const char *c;
    ck_assert_int_eq(
        find("Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/common/"
             "oauth2/authorize\", error=\"insufficient_claims\", claims=\"eyJhY2Nlc3NfdG9rZW4iOnsi"
             "YWNycyI6eyJlc3NlbnRpYWwiOnRydWUsInZhbHVlIjoiY3AxIn19fQ==\"",
             &c),
        APR_SUCCESS);
    ck_assert_str_eq(c,
                     "eyJhY2Nlc3NfdG9rZW4iOnsiYWNycyI6eyJlc3NlbnRpYWwiOnRydWUsInZhbHVlIjoiY3AxIn1"
                     "9fQ==");
}
END_TEST

START_TEST(several_challenges)
{
    const char *c;
    /* Another scheme with a token68 first, tokens unquoted, BWS around '=', case of names. */
    ck_assert_int_eq(find("Basic YWJj==, Negotiate, Bearer realm = x, ERROR=insufficient_claims,"
                          " Claims=\"e30\", Newauth foo=\"a\\\"b\"",
                          &c),
                     APR_SUCCESS);
    ck_assert_str_eq(c, "e30");
    /* The first insufficient_claims challenge counts. */
    ck_assert_int_eq(find("Bearer error=\"invalid_token\", Bearer error=\"insufficient_claims\", "
                          "claims=\"AAAA\", Bearer error=\"insufficient_claims\", claims=\"BBBB\"",
                          &c),
                     APR_SUCCESS);
    ck_assert_str_eq(c, "AAAA");
    /* Quoted-pair unescaped. */
    ck_assert_int_eq(find("Bearer error=\"insufficient_claims\", claims=\"e\\3\\0\"", &c),
                     APR_SUCCESS);
    ck_assert_str_eq(c, "e30");
}
END_TEST

START_TEST(no_challenge)
{
    const char *c;
    ck_assert_int_eq(find(NULL, &c), APR_ENOENT);
    ck_assert_int_eq(find("", &c), APR_ENOENT);
    ck_assert_int_eq(find("Bearer realm=\"app\"", &c), APR_ENOENT);
    ck_assert_int_eq(find("Bearer realm=\"app\", error=\"invalid_token\"", &c), APR_ENOENT);
    /* Another scheme's insufficient_claims is not Microsoft's challenge. */
    ck_assert_int_eq(find("Basic error=\"insufficient_claims\", claims=\"e30\"", &c), APR_ENOENT);
    /* The word in a quoted value is no error parameter. */
    ck_assert_int_eq(find("Bearer realm=\"error=insufficient_claims\"", &c), APR_ENOENT);
    ck_assert_ptr_null(c);
}
END_TEST

START_TEST(malformed)
{
    static const char *const bad[] = {
        "Bearer error=\"insufficient_claims\"",                            /* no claims */
        "Bearer error=\"insufficient_claims\", claims=\"\"",               /* empty claims */
        "Bearer error=\"insufficient_claims\", claims=\"e30",              /* unterminated */
        "Bearer error=\"insufficient_claims\", claims=e30\"x\"",           /* junk after a value */
        "Bearer error=\"insufficient_claims\", error=\"x\", claims=\"e\"", /* repeated */
        "Bearer error=\"insufficient_claims\", claims=\"e\x01\"",          /* control character */
        "Bearer error=\"insufficient_claims\",, claims=",                  /* no value */
        "=Bearer",                                                         /* no scheme */
        "Bearer error=\"insufficient_claims\" claims=\"e30\"",             /* no comma */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *c, *why = NULL;
        ck_assert_msg(msa_cae_find_challenge(pool, bad[i], &c, &why) == APR_EINVAL, "%s", bad[i]);
        ck_assert_ptr_nonnull(why);
    }
    char *big = apr_palloc(pool, 20000);
    memset(big, 'a', 19999);
    big[19999] = '\0';
    const char *c, *why;
    ck_assert_int_eq(msa_cae_find_challenge(pool, big, &c, &why), APR_EINVAL);
}
END_TEST

static const char *merge(const char *claims)
{
    const char *json = NULL, *why = NULL;
    apr_status_t rv = msa_cae_merge(pool, claims, &json, &why);
    ck_assert(rv == APR_SUCCESS ? json != NULL : why != NULL);
    return rv == APR_SUCCESS ? json : NULL;
}

START_TEST(merge_adds_cp1)
{
    ck_assert_str_eq(merge(b64("{\"access_token\":{\"nbf\":{\"essential\":true,\"value\":"
                               "\"1563308371\"}}}")),
                     "{\"access_token\":{\"nbf\":{\"essential\":true,\"value\":\"1563308371\"},"
                     "\"xms_cc\":{\"values\":[\"cp1\"]}}}");
    ck_assert_str_eq(merge(b64("{}")), "{\"access_token\":{\"xms_cc\":{\"values\":[\"cp1\"]}}}");
    /* Union without duplicates; other capabilities kept in their order. */
    ck_assert_str_eq(merge(b64("{\"access_token\":{\"xms_cc\":{\"values\":[\"x\",\"cp1\",\"x\"]}},"
                               "\"id_token\":{\"acrs\":{\"essential\":true,\"value\":\"c1\"}}}")),
                     "{\"access_token\":{\"xms_cc\":{\"values\":[\"x\",\"cp1\"]}},\"id_token\":"
                     "{\"acrs\":{\"essential\":true,\"value\":\"c1\"}}}");
}
END_TEST

START_TEST(merge_base64_forms)
{
    const char *want = "{\"access_token\":{\"a\":\"~~~\",\"xms_cc\":{\"values\":[\"cp1\"]}}}";
    /* {"access_token":{"a":"~~~"}} in base64: '+'/'/' and padding, URL-safe, unpadded. */
    const char *std = b64("{\"access_token\":{\"a\":\"~~~\"}}");
    ck_assert_ptr_nonnull(strpbrk(std, "+/="));
    ck_assert_str_eq(merge(std), want);
    char *url = apr_pstrdup(pool, std);
    for (char *q = url; *q; q++) {
        *q = *q == '+' ? '-' : *q == '/' ? '_' : *q;
    }
    ck_assert_str_eq(merge(url), want);
    *strchr(url, '=') = '\0';
    ck_assert_str_eq(merge(url), want);
}
END_TEST

/* "{  ...  }": a JSON object of n bytes. */
static const char *object_of(apr_size_t n)
{
    char *json = apr_palloc(pool, n + 1);
    memset(json, ' ', n);
    json[0] = '{';
    json[n - 1] = '}';
    json[n] = '\0';
    return json;
}

/* The revocation time of Microsoft's challenge after an event; none for other claims. */
START_TEST(not_before)
{
    apr_int64_t at = -1;
    ck_assert_int_eq(
        msa_cae_not_before(pool,
                           "{\"access_token\":{\"nbf\":{\"essential\":true,"
                           "\"value\":\"1602707784\"},\"xms_cc\":{\"values\":[\"cp1\"]}}}",
                           &at),
        APR_SUCCESS);
    ck_assert_int_eq(at, 1602707784);
    ck_assert_int_eq(
        msa_cae_not_before(pool, "{\"access_token\":{\"nbf\":{\"value\":1700000000}}}", &at),
        APR_SUCCESS);
    ck_assert_int_eq(at, 1700000000);
    static const char *const none[] = {
        MSA_CAE_CP1_CLAIMS,
        "{\"access_token\":{\"acrs\":{\"essential\":true,\"value\":\"c1\"}}}",
        "{\"access_token\":{\"nbf\":{\"value\":\"16027x7784\"}}}",
        "{\"access_token\":{\"nbf\":{\"value\":\"\"}}}",
        "{\"access_token\":{\"nbf\":{\"value\":\"9999999999999\"}}}",
        "{\"access_token\":{\"nbf\":{\"value\":-5}}}",
        "{\"access_token\":{\"nbf\":{\"value\":[1]}}}",
        "{\"access_token\":{\"nbf\":\"1602707784\"}}",
        "{\"access_token\":\"x\"}",
        "{\"id_token\":{\"nbf\":{\"value\":\"1602707784\"}}}",
        "not json",
    };
    for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++) {
        ck_assert_msg(msa_cae_not_before(pool, none[i], &at) == APR_ENOENT, "%s", none[i]);
        ck_assert_int_eq(at, 0);
    }
    ck_assert_int_eq(msa_cae_not_before(pool, NULL, &at), APR_ENOENT);
}
END_TEST

START_TEST(merge_refuses)
{
    ck_assert_ptr_null(merge(""));
    ck_assert_ptr_null(merge("not base64!"));
    ck_assert_ptr_null(merge("e30=="));   /* padding that does not fit */
    ck_assert_ptr_null(merge("e3+_"));    /* both alphabets */
    ck_assert_ptr_null(merge("e30 "));    /* white space */
    ck_assert_ptr_null(merge(b64("[]"))); /* JSON, not an object */
    ck_assert_ptr_null(merge(b64("\"x\"")));
    ck_assert_ptr_null(merge(b64("{\"a\":1} x")));
    ck_assert_ptr_null(merge(b64("{\"access_token\":\"cp1\"}")));
    ck_assert_ptr_null(merge(b64("{\"access_token\":{\"xms_cc\":[\"cp1\"]}}")));
    ck_assert_ptr_null(merge(b64("{\"access_token\":{\"xms_cc\":{\"values\":\"cp1\"}}}")));
    ck_assert_ptr_null(merge(b64("{\"access_token\":{\"xms_cc\":{\"values\":[1]}}}")));
    ck_assert_ptr_null(merge(b64("{\"a\":\"\xff\"}"))); /* not UTF-8 */
    /* At most 4096 characters of base64: 3072 bytes of JSON fit, 3073 do not. */
    ck_assert_uint_eq(strlen(b64(object_of(3069))), 4092);
    ck_assert_ptr_nonnull(merge(b64(object_of(3069))));
    ck_assert_uint_eq(strlen(b64(object_of(3072))), 4096);
    ck_assert_ptr_nonnull(merge(b64(object_of(3072))));
    ck_assert_ptr_null(merge(b64(object_of(3073))));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("msa_cae");
    TCase *tc = msa_test_case("cae");
    tcase_add_test(tc, microsoft_example);
    tcase_add_test(tc, several_challenges);
    tcase_add_test(tc, no_challenge);
    tcase_add_test(tc, malformed);
    tcase_add_test(tc, merge_adds_cp1);
    tcase_add_test(tc, merge_base64_forms);
    tcase_add_test(tc, merge_refuses);
    tcase_add_test(tc, not_before);
    suite_add_tcase(s, tc);
    return msa_test_run(s);
}
