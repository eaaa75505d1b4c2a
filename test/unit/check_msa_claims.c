/* msa_claims: the Easy Auth principal and the /me document. */
#include <string.h>

#include <apr_base64.h>
#include <apr_strings.h>
#include <json-c/json.h>

#include "msa_claims.h"
#include "msa_test.h"

static msa_token_t alice(void)
{
    msa_token_t t;
    memset(&t, 0, sizeof(t));
    t.sub = "be20621b-842c-419d-a42f-f98f10de9f92";
    t.identifier = "ms:be20621b-842c-419d-a42f-f98f10de9f92";
    t.appid = "default";
    t.name = "Alice \"Quote\" Example";
    t.email = "alice@contoso.example";
    t.upn = "alice@contoso.example";
    t.tid = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    t.oid = "be20621b-842c-419d-a42f-f98f10de9f92";
    t.exp = 1800000000;
    return t;
}

/* Decodes the principal and returns its parsed JSON (caller puts it). */
static json_object *decode(const char *b64)
{
    /* Standard alphabet with padding, as App Service sends it. */
    ck_assert_int_eq(strlen(b64) % 4, 0);
    ck_assert_ptr_null(strpbrk(b64, "-_"));
    char *plain = apr_palloc(pool, (apr_size_t)apr_base64_decode_len(b64));
    int n = apr_base64_decode(plain, b64);
    plain[n] = '\0';
    json_object *o = json_tokener_parse(plain);
    ck_assert_ptr_nonnull(o);
    return o;
}

static int has_claim(json_object *o, const char *typ, const char *val)
{
    json_object *claims;
    ck_assert(json_object_object_get_ex(o, "claims", &claims));
    for (size_t i = 0; i < json_object_array_length(claims); i++) {
        json_object *c = json_object_array_get_idx(claims, i), *t, *v;
        ck_assert(json_object_object_get_ex(c, "typ", &t));
        ck_assert(json_object_object_get_ex(c, "val", &v));
        if (strcmp(json_object_get_string(t), typ) == 0 &&
            strcmp(json_object_get_string(v), val) == 0) {
            return 1;
        }
    }
    return 0;
}

START_TEST(principal_shape)
{
    msa_token_t t = alice();
    json_object *o = decode(msa_claims_easyauth_principal(pool, &t)), *v;
    ck_assert(json_object_object_get_ex(o, "auth_typ", &v));
    ck_assert_str_eq(json_object_get_string(v), "aad");
    ck_assert(json_object_object_get_ex(o, "name_typ", &v));
    ck_assert_str_eq(json_object_get_string(v), "name");
    ck_assert(json_object_object_get_ex(o, "role_typ", &v));
    ck_assert_str_eq(json_object_get_string(v), "roles");
    ck_assert(has_claim(o, "name", "Alice \"Quote\" Example"));
    ck_assert(has_claim(o, "preferred_username", "alice@contoso.example"));
    ck_assert(has_claim(o, "email", "alice@contoso.example"));
    ck_assert(has_claim(o, "tid", "72f988bf-86f1-41af-91ab-2d7cd011db47"));
    ck_assert(has_claim(o, "oid", "be20621b-842c-419d-a42f-f98f10de9f92"));
    ck_assert(!has_claim(o, "groups", "x"));
    json_object_put(o);
}
END_TEST

START_TEST(principal_one_entry_per_group)
{
    msa_token_t t = alice();
    t.groups = apr_array_make(pool, 2, sizeof(const char *));
    APR_ARRAY_PUSH(t.groups, const char *) = "g1";
    APR_ARRAY_PUSH(t.groups, const char *) = "g2";
    json_object *o = decode(msa_claims_easyauth_principal(pool, &t));
    ck_assert(has_claim(o, "groups", "g1"));
    ck_assert(has_claim(o, "groups", "g2"));
    json_object_put(o);
}
END_TEST

START_TEST(principal_without_optional_claims)
{
    msa_token_t t = alice();
    t.email = NULL;
    t.tid = NULL;
    t.oid = NULL;
    json_object *o = decode(msa_claims_easyauth_principal(pool, &t)), *claims;
    ck_assert(json_object_object_get_ex(o, "claims", &claims));
    /* name, preferred_username and the oid (from the Graph id) remain. */
    ck_assert_int_eq(json_object_array_length(claims), 3);
    ck_assert(has_claim(o, "oid", t.sub));
    json_object_put(o);
}
END_TEST

START_TEST(principal_name_and_id)
{
    msa_token_t t = alice();
    ck_assert_str_eq(msa_claims_principal_name(&t), "alice@contoso.example");
    t.email = NULL;
    t.upn = "alice@upn.example";
    ck_assert_str_eq(msa_claims_principal_name(&t), "alice@upn.example");
    t.upn = NULL;
    ck_assert_str_eq(msa_claims_principal_name(&t), t.sub);
    t.oid = "0000-oid";
    ck_assert_str_eq(msa_claims_principal_id(&t), "0000-oid");
    t.oid = NULL;
    t.sub = "7c7e6eb46df66116";
    ck_assert_str_eq(msa_claims_principal_id(&t), "7c7e6eb46df66116");
}
END_TEST

START_TEST(me_document)
{
    msa_token_t t = alice();
    t.tid = NULL;
    json_object *o = json_tokener_parse(msa_claims_me_json(pool, &t)), *v;
    ck_assert_ptr_nonnull(o);
    ck_assert(json_object_object_get_ex(o, "id", &v));
    ck_assert_str_eq(json_object_get_string(v), t.sub);
    ck_assert(json_object_object_get_ex(o, "identifier", &v));
    ck_assert_str_eq(json_object_get_string(v), t.identifier);
    ck_assert(json_object_object_get_ex(o, "expires", &v));
    ck_assert_int_eq(json_object_get_int64(v), 1800000000);
    ck_assert(!json_object_object_get_ex(o, "tid", &v));
    ck_assert(!json_object_object_get_ex(o, "groups", &v));
    json_object_put(o);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("msa_claims");
    TCase *tc = msa_test_case("claims");
    tcase_add_test(tc, principal_shape);
    tcase_add_test(tc, principal_one_entry_per_group);
    tcase_add_test(tc, principal_without_optional_claims);
    tcase_add_test(tc, principal_name_and_id);
    tcase_add_test(tc, me_document);
    suite_add_tcase(s, tc);
    return msa_test_run(s);
}
