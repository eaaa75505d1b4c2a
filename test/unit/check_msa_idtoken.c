/*
 * Microsoft's id_token (src/core/msa_idtoken.c): what a login accepts and
 * why it refuses, with RS256 tokens signed by a fixed key and a JWKS lookup
 * that counts its calls.
 */
#include <string.h>

#include <apr_strings.h>

#include "../fuzz/fuzz_rsa.h"
#include "msa_cfg.h"
#include "msa_idtoken.h"
#include "msa_test.h"

#define NOW    ((apr_int64_t)1767225600)
#define CLIENT "11111111-2222-3333-4444-555555555555"
#define TID    "72f988bf-86f1-41af-91ab-2d7cd011db47"
#define OTHER  "0a1b2c3d-0000-4000-8000-000000000001"
#define OID    "be20621b-842c-419d-a42f-f98f10de9f92"
#define LOGIN  "https://login.example"
#define ISS    LOGIN "/" TID "/v2.0"

typedef struct lookup {
    int calls, refreshes;
    const char *first, *second; /* the JWKS of the first look, and of a refresh */
} lookup_t;

static apr_status_t jwks(void *ctx, int refresh, const char **json, const char **err)
{
    lookup_t *l = ctx;
    l->calls++;
    l->refreshes += refresh;
    *json = refresh ? l->second : l->first;
    *err = "no keys";
    return *json ? APR_SUCCESS : APR_EGENERAL;
}

static const char *keys(void)
{
    return apr_psprintf(pool, "{\"keys\":[%s]}", fuzz_rsa_public_jwk(pool));
}

static msa_app_t app;
static lookup_t look;

static msa_idtoken_check_t check_of(const char *nonce)
{
    memset(&app, 0, sizeof(app));
    app.tenant = "common";
    app.client_id = CLIENT;
    look = (lookup_t){0, 0, keys(), keys()};
    msa_idtoken_check_t c = {CLIENT, LOGIN, nonce, &app, NOW, 60, jwks, &look};
    return c;
}

/* Claims of a good token, with extra appended (or a replacement of a whole claim set). */
static const char *claims(const char *extra)
{
    return apr_psprintf(pool,
                        "{\"aud\":\"" CLIENT "\",\"iss\":\"" ISS "\",\"tid\":\"" TID
                        "\",\"oid\":\"" OID "\",\"exp\":%" APR_INT64_T_FMT
                        ",\"nbf\":%" APR_INT64_T_FMT ",\"iat\":%" APR_INT64_T_FMT
                        ",\"nonce\":\"n-1\",\"name\":\"Alice\",\"preferred_username\":"
                        "\"alice@contoso.example\"%s}",
                        NOW + 3600, NOW - 10, NOW - 10, extra ? extra : "");
}

static const char *verify(msa_idtoken_check_t *c, const char *payload, msa_identity_t *id,
                          int *overage, const char **detail)
{
    const char *jws = fuzz_rs256_sign(pool, FUZZ_RSA_KID, payload);
    ck_assert_ptr_nonnull(jws);
    memset(id, 0, sizeof(*id));
    *detail = NULL;
    return msa_idtoken_verify(pool, jws, c, id, overage, detail);
}

START_TEST(a_good_token_gives_its_identity)
{
    msa_idtoken_check_t c = check_of("n-1");
    msa_identity_t id;
    int overage = 1;
    const char *detail;
    ck_assert_ptr_null(
        verify(&c, claims(",\"groups\":[\"" OTHER "\",\"not-a-guid\"]"), &id, &overage, &detail));
    ck_assert_str_eq(id.id, OID);
    ck_assert_str_eq(id.oid, OID);
    ck_assert_str_eq(id.tid, TID);
    ck_assert_str_eq(id.name, "Alice");
    ck_assert_str_eq(id.upn, "alice@contoso.example");
    ck_assert_str_eq(id.email, "alice@contoso.example"); /* the UPN stands in */
    ck_assert_ptr_null(id.verified);                     /* no xms_edov */
    ck_assert_int_eq(id.groups->nelts, 1);
    ck_assert_str_eq(APR_ARRAY_IDX(id.groups, 0, const char *), OTHER);
    ck_assert_int_eq(overage, 0);
    ck_assert_int_eq(look.calls, 1);
}
END_TEST

START_TEST(xms_edov_vouches_for_the_email_only)
{
    msa_idtoken_check_t c = check_of(NULL);
    msa_identity_t id;
    int overage;
    const char *detail;
    static const char *const yes[] = {"true", "\"true\"", "\"1\""};
    for (size_t i = 0; i < sizeof(yes) / sizeof(*yes); i++) {
        const char *extra =
            apr_psprintf(pool, ",\"email\":\"alice@contoso.example\",\"xms_edov\":%s", yes[i]);
        ck_assert_ptr_null(verify(&c, claims(extra), &id, &overage, &detail));
        ck_assert_str_eq(id.verified, "email");
    }
    ck_assert_ptr_null(verify(&c, claims(",\"email\":\"a@b.example\",\"xms_edov\":false"), &id,
                              &overage, &detail));
    ck_assert_ptr_null(id.verified);
    /* No email claim: the UPN standing in is not vouched for. */
    ck_assert_ptr_null(verify(&c, claims(",\"xms_edov\":true"), &id, &overage, &detail));
    ck_assert_ptr_null(id.verified);
}
END_TEST

START_TEST(the_sid_claim_is_kept_when_it_can_be_named)
{
    msa_idtoken_check_t c = check_of(NULL);
    msa_identity_t id;
    int overage;
    const char *detail;
    /* Microsoft's optional claim: its sign-in session, named again by its front-channel logout. */
    ck_assert_ptr_null(verify(&c, claims(",\"sid\":\"00189ff0-c8f2-d8b4-2ca2-4d9c9b2e1f3a\""), &id,
                              &overage, &detail));
    ck_assert_str_eq(id.sid, "00189ff0-c8f2-d8b4-2ca2-4d9c9b2e1f3a");
    /* Without it the login is the same, with no sid. */
    ck_assert_ptr_null(verify(&c, claims(NULL), &id, &overage, &detail));
    ck_assert_ptr_null(id.sid);
    /* One no logout could name (not a string, empty, blank, control characters, too long) is
     * dropped: the login goes on without single sign-out. */
    char *long_sid = apr_pstrcat(pool, ",\"sid\":\"",
                                 apr_psprintf(pool, "%0*d", MSA_SID_MAX + 1, 7), "\"", NULL);
    const char *const bad[] = {",\"sid\":42",
                               ",\"sid\":\"\"",
                               ",\"sid\":\"a b\"",
                               ",\"sid\":\"a\\u0001b\"",
                               ",\"sid\":\"caf\\u00e9\"",
                               long_sid};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        ck_assert_msg(verify(&c, claims(bad[i]), &id, &overage, &detail) == NULL, "%s", bad[i]);
        ck_assert_msg(id.sid == NULL, "%s kept as %s", bad[i], id.sid);
    }
    ck_assert_int_eq(msa_sid_ok(apr_psprintf(pool, "%0*d", MSA_SID_MAX, 7)), 1);
    ck_assert_int_eq(msa_sid_ok(NULL), 0);
}
END_TEST

START_TEST(overage_points_at_graph)
{
    msa_idtoken_check_t c = check_of(NULL);
    msa_identity_t id;
    int overage = 0;
    const char *detail;
    ck_assert_ptr_null(
        verify(&c, claims(",\"_claim_names\":{\"groups\":\"src1\"}"), &id, &overage, &detail));
    ck_assert_int_eq(overage, 1);
}
END_TEST

/* Each claim that must hold, broken one at a time: the token is refused with its reason. */
START_TEST(every_rule_refuses)
{
    struct {
        const char *payload, *cause, *detail;
    } cases[] = {
        {"[1]", "invalid_id_token", "not a JSON object"},
        {"{\"aud\":\"someone-else\"}", "invalid_id_token", "aud"},
        {apr_psprintf(pool, "{\"aud\":\"" CLIENT "\",\"iss\":\"" ISS "\",\"oid\":\"" OID "\"}"),
         "invalid_id_token", "no tenant"},
        {apr_psprintf(pool, "{\"aud\":\"" CLIENT "\",\"tid\":\"" TID "\",\"iss\":\"" LOGIN "/" OTHER
                            "/v2.0\"}"),
         "invalid_id_token", "iss"},
        {apr_psprintf(pool,
                      "{\"aud\":\"" CLIENT "\",\"tid\":\"" TID "\",\"iss\":\"" ISS
                      "\",\"exp\":%" APR_INT64_T_FMT "}",
                      NOW - 61),
         "invalid_id_token", "expired"},
        {apr_psprintf(pool,
                      "{\"aud\":\"" CLIENT "\",\"tid\":\"" TID "\",\"iss\":\"" ISS
                      "\",\"exp\":%" APR_INT64_T_FMT ",\"nbf\":%" APR_INT64_T_FMT "}",
                      NOW + 3600, NOW + 61),
         "invalid_id_token", "not yet valid"},
        {apr_psprintf(pool,
                      "{\"aud\":\"" CLIENT "\",\"tid\":\"" TID "\",\"iss\":\"" ISS
                      "\",\"exp\":%" APR_INT64_T_FMT ",\"iat\":%" APR_INT64_T_FMT "}",
                      NOW + 3600, NOW + 61),
         "invalid_id_token", "not yet valid"},
        {apr_psprintf(pool,
                      "{\"aud\":\"" CLIENT "\",\"tid\":\"" TID "\",\"iss\":\"" ISS
                      "\",\"exp\":%" APR_INT64_T_FMT ",\"nonce\":\"n-2\"}",
                      NOW + 3600),
         "invalid_id_token", "nonce"},
        {apr_psprintf(pool,
                      "{\"aud\":\"" CLIENT "\",\"tid\":\"" TID "\",\"iss\":\"" ISS
                      "\",\"exp\":%" APR_INT64_T_FMT "}",
                      NOW + 3600),
         "invalid_id_token", "nonce"},
        {apr_psprintf(pool,
                      "{\"aud\":\"" CLIENT "\",\"tid\":\"" TID "\",\"iss\":\"" ISS
                      "\",\"exp\":%" APR_INT64_T_FMT ",\"nonce\":\"n-1\"}",
                      NOW + 3600),
         "invalid_id_token", "oid"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        msa_idtoken_check_t c = check_of("n-1");
        msa_identity_t id;
        int overage;
        const char *detail;
        const char *cause = verify(&c, cases[i].payload, &id, &overage, &detail);
        ck_assert_msg(cause != NULL, "case %zu accepted", i);
        ck_assert_str_eq(cause, cases[i].cause);
        ck_assert_msg(strstr(detail, cases[i].detail) != NULL, "case %zu: %s", i, detail);
    }
}
END_TEST

START_TEST(the_clock_skew_is_a_leeway_not_more)
{
    msa_idtoken_check_t c = check_of(NULL);
    msa_identity_t id;
    int overage;
    const char *detail;
    const char *t = apr_psprintf(pool,
                                 "{\"aud\":\"" CLIENT "\",\"tid\":\"" TID "\",\"iss\":\"" ISS
                                 "\",\"oid\":\"" OID "\",\"exp\":%" APR_INT64_T_FMT
                                 ",\"nbf\":%" APR_INT64_T_FMT "}",
                                 NOW - 59, NOW + 60);
    ck_assert_ptr_null(verify(&c, t, &id, &overage, &detail));
}
END_TEST

START_TEST(the_tenant_rule_applies)
{
    msa_idtoken_check_t c = check_of(NULL);
    msa_identity_t id;
    int overage;
    const char *detail;
    app.tenant = OTHER;
    const char *cause = verify(&c, claims(NULL), &id, &overage, &detail);
    ck_assert_ptr_nonnull(cause);
    ck_assert_str_eq(cause, "tenant_not_allowed");
    app.tenant = "consumers";
    ck_assert_str_eq(verify(&c, claims(NULL), &id, &overage, &detail), "tenant_not_allowed");
    app.tenant = TID;
    ck_assert_ptr_null(verify(&c, claims(NULL), &id, &overage, &detail));
}
END_TEST

START_TEST(an_unknown_kid_looks_at_the_keys_once_more)
{
    msa_idtoken_check_t c = check_of(NULL);
    msa_identity_t id;
    int overage;
    const char *detail;
    look.first = "{\"keys\":[]}";
    ck_assert_ptr_null(verify(&c, claims(NULL), &id, &overage, &detail));
    ck_assert_int_eq(look.calls, 2);
    ck_assert_int_eq(look.refreshes, 1);
    /* Still unknown after the refresh: refused, and no third look. */
    c = check_of(NULL);
    look.first = look.second = "{\"keys\":[]}";
    ck_assert_str_eq(verify(&c, claims(NULL), &id, &overage, &detail), "invalid_id_token");
    ck_assert_int_eq(look.calls, 2);
    /* A forged signature is not worth a refresh. */
    c = check_of(NULL);
    const char *jws = fuzz_rs256_sign(pool, FUZZ_RSA_KID, claims(NULL));
    char *bad = apr_pstrdup(pool, jws);
    bad[strlen(bad) - 2] = bad[strlen(bad) - 2] == 'A' ? 'B' : 'A';
    ck_assert_str_eq(msa_idtoken_verify(pool, bad, &c, &id, &overage, &detail), "invalid_id_token");
    ck_assert_int_eq(look.calls, 1);
}
END_TEST

START_TEST(keys_that_cannot_be_had_fail_the_login)
{
    msa_idtoken_check_t c = check_of(NULL);
    msa_identity_t id;
    int overage;
    const char *detail;
    look.first = NULL;
    ck_assert_str_eq(verify(&c, claims(NULL), &id, &overage, &detail), "invalid_id_token");
    ck_assert_str_eq(detail, "no keys");
}
END_TEST

START_TEST(jwks_entries_round_trip)
{
    msa_jwks_entry_t e = {1767225600, 1767225660, "{\"keys\":[]}"}, back;
    char *v = msa_jwks_entry_format(pool, &e);
    ck_assert_str_eq(v, "1767225600|1767225660|{\"keys\":[]}");
    ck_assert_int_eq(msa_jwks_entry_parse(v, &back), 1);
    ck_assert_int_eq(back.fetched, e.fetched);
    ck_assert_int_eq(back.refreshed, e.refreshed);
    ck_assert_str_eq(back.json, e.json);
    /* A document with bars in it keeps them. */
    ck_assert_int_eq(msa_jwks_entry_parse(apr_pstrdup(pool, "1|2|{\"a\":\"x|y\"}"), &back), 1);
    ck_assert_str_eq(back.json, "{\"a\":\"x|y\"}");
    ck_assert_int_eq(msa_jwks_entry_parse(apr_pstrdup(pool, "1|{}"), &back), 0);
    ck_assert_str_eq(msa_vouched(1, 1), "email upn");
    ck_assert_str_eq(msa_vouched(0, 1), "upn");
    ck_assert_ptr_null(msa_vouched(0, 0));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("msa_idtoken");
    TCase *tc = msa_test_case("idtoken");
    tcase_add_test(tc, a_good_token_gives_its_identity);
    tcase_add_test(tc, xms_edov_vouches_for_the_email_only);
    tcase_add_test(tc, the_sid_claim_is_kept_when_it_can_be_named);
    tcase_add_test(tc, overage_points_at_graph);
    tcase_add_test(tc, every_rule_refuses);
    tcase_add_test(tc, the_clock_skew_is_a_leeway_not_more);
    tcase_add_test(tc, the_tenant_rule_applies);
    tcase_add_test(tc, an_unknown_kid_looks_at_the_keys_once_more);
    tcase_add_test(tc, keys_that_cannot_be_had_fail_the_login);
    tcase_add_test(tc, jwks_entries_round_trip);
    suite_add_tcase(s, tc);
    return msa_test_run(s);
}
