/* msa_vault: sealed records of a session's Microsoft tokens. */
#include <string.h>

#include <apr_strings.h>

#include "msa_test.h"
#include "msa_vault.h"

static const msa_key_t key = {(const unsigned char *)"unit-test-key-0123456789-abcdefghijkl", 37};
static const msa_key_t old = {(const unsigned char *)"unit-test-old-key-0123456789-abcdefgh", 37};
static const char *const bound = "msauth-ms-tokens\ndefault\njti-1\nuser-1";

static msa_vault_tokens_t sample(void)
{
    msa_vault_tokens_t t = {"eyJ0eXAi.access.token", "eyJ0eXAi.id.token",
                            "1.AREFRESH-TOKEN-SECRET-VALUE", 1700003600, 1700000000};
    return t;
}

START_TEST(seal_then_open)
{
    msa_vault_tokens_t in = sample(), out;
    char *rec = NULL;
    const char *err = NULL;
    ck_assert_int_eq(msa_vault_seal(pool, &key, bound, &in, &rec, &err), APR_SUCCESS);
    ck_assert(strncmp(rec, "v1.", 3) == 0);
    ck_assert_ptr_null(strstr(rec, "REFRESH"));
    ck_assert_int_eq(msa_vault_open(pool, &key, 1, bound, rec, &out, &err), APR_SUCCESS);
    ck_assert_str_eq(out.access_token, in.access_token);
    ck_assert_str_eq(out.id_token, in.id_token);
    ck_assert_str_eq(out.refresh_token, in.refresh_token);
    ck_assert_int_eq(out.expires_on, in.expires_on);
    ck_assert_int_eq(out.obtained, in.obtained);
}
END_TEST

START_TEST(two_seals_differ)
{
    msa_vault_tokens_t in = sample();
    char *a = NULL, *b = NULL;
    const char *err = NULL;
    ck_assert_int_eq(msa_vault_seal(pool, &key, bound, &in, &a, &err), APR_SUCCESS);
    ck_assert_int_eq(msa_vault_seal(pool, &key, bound, &in, &b, &err), APR_SUCCESS);
    ck_assert_str_ne(a, b); /* a fresh IV each time */
}
END_TEST

START_TEST(another_session_or_key_does_not_open)
{
    msa_vault_tokens_t in = sample(), out;
    char *rec = NULL;
    const char *err = NULL;
    ck_assert_int_eq(msa_vault_seal(pool, &key, bound, &in, &rec, &err), APR_SUCCESS);
    ck_assert_int_eq(
        msa_vault_open(pool, &key, 1, "msauth-ms-tokens\ndefault\njti-2\nuser-1", rec, &out, &err),
        APR_EINVAL);
    ck_assert_ptr_null(out.access_token);
    ck_assert_int_eq(msa_vault_open(pool, &old, 1, bound, rec, &out, &err), APR_EINVAL);
    /* A rotation: the old key listed after the new one still opens what it sealed. */
    msa_key_t both[2] = {key, old};
    char *by_old = NULL;
    ck_assert_int_eq(msa_vault_seal(pool, &old, bound, &in, &by_old, &err), APR_SUCCESS);
    ck_assert_int_eq(msa_vault_open(pool, both, 2, bound, by_old, &out, &err), APR_SUCCESS);
}
END_TEST

START_TEST(damaged_records_refused)
{
    msa_vault_tokens_t in = sample(), out;
    char *rec = NULL;
    const char *err = NULL;
    ck_assert_int_eq(msa_vault_seal(pool, &key, bound, &in, &rec, &err), APR_SUCCESS);
    size_t n = strlen(rec);
    for (size_t i = 3; i + 1 < n; i += 7) {
        char *bad = apr_pstrdup(pool, rec);
        bad[i] = bad[i] == 'A' ? 'B' : 'A';
        ck_assert_int_eq(msa_vault_open(pool, &key, 1, bound, bad, &out, &err), APR_EINVAL);
    }
    const char *junk[] = {"",        "-",       "v1.",
                          "v2.AAAA", "v1.!!!!", "v1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"};
    for (size_t i = 0; i < sizeof(junk) / sizeof(*junk); i++) {
        ck_assert_int_eq(msa_vault_open(pool, &key, 1, bound, junk[i], &out, &err), APR_EINVAL);
    }
}
END_TEST

START_TEST(refresh_ahead_of_expiry)
{
    msa_vault_tokens_t t = {"a", NULL, NULL, 3600, 0};
    ck_assert_int_eq(msa_vault_refresh_at(&t), 3300); /* five minutes at most */
    t.expires_on = 30;
    ck_assert_int_eq(msa_vault_refresh_at(&t), 23); /* a quarter of 30 s */
    t.expires_on = -5;
    ck_assert_int_eq(msa_vault_refresh_at(&t), -5);
}
END_TEST

START_TEST(easy_auth_time)
{
    ck_assert_str_eq(msa_vault_iso_time(pool, 1764670907), "2025-12-02T10:21:47.0000000Z");
}
END_TEST

START_TEST(me_answer_is_json_whatever_the_user)
{
    ck_assert_str_eq(msa_vault_me_json(pool, "alice@contoso.example", 1764670907),
                     "[{\"provider_name\":\"aad\",\"user_id\":\"alice@contoso.example\","
                     "\"expires_on\":\"2025-12-02T10:21:47.0000000Z\"}]");
    /* A quote, a backslash at the end, a control character: escaped, the whole of it. */
    ck_assert_str_eq(msa_vault_me_json(pool, "a\"b\\", 0),
                     "[{\"provider_name\":\"aad\",\"user_id\":\"a\\\"b\\\\\","
                     "\"expires_on\":\"1970-01-01T00:00:00.0000000Z\"}]");
    char longer[200];
    memset(longer, 'x', sizeof(longer) - 1);
    longer[sizeof(longer) - 1] = '\0';
    ck_assert_ptr_nonnull(strstr(msa_vault_me_json(pool, longer, 0), longer));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("msa_vault");
    TCase *tc = msa_test_case("vault");
    tcase_add_test(tc, seal_then_open);
    tcase_add_test(tc, two_seals_differ);
    tcase_add_test(tc, another_session_or_key_does_not_open);
    tcase_add_test(tc, damaged_records_refused);
    tcase_add_test(tc, refresh_ahead_of_expiry);
    tcase_add_test(tc, easy_auth_time);
    tcase_add_test(tc, me_answer_is_json_whatever_the_user);
    suite_add_tcase(s, tc);
    return msa_test_run(s);
}
