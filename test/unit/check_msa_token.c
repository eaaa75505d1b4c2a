/* Unit tests of src/core/msa_token.c: session and ID tokens, their JSON and HS256 JWTs. */
#include <string.h>

#include <stdint.h>

#include <apr_strings.h>
#include <apr_tables.h>
#include <json-c/json.h>

#include "msa_test.h"
#include "msa_token.h"

#define NOW  ((apr_int64_t)1700000000)
#define SKEW ((apr_int64_t)60)

static const msa_key_t key_new = {(const unsigned char *)"new-key-0123456789abcdef-0123456", 32};
static const msa_key_t key_old = {(const unsigned char *)"old-key-0123456789abcdef-0123456", 32};
static const msa_key_t key_evil = {(const unsigned char *)"evil-key-0123456789abcdef-012345", 32};

static msa_identity_t alice(void)
{
    msa_identity_t id = {0};
    id.id = "00000000-0000-0000-aaaa-0123456789ab";
    id.name = "Alice Example";
    id.email = "alice@example.com";
    id.upn = "alice@contoso.onmicrosoft.com";
    id.tid = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    id.verified = "email";
    id.picture = "https://example.com/alice.png";
    id.groups = apr_array_make(pool, 2, sizeof(const char *));
    APR_ARRAY_PUSH(id.groups, const char *) = "g-one";
    APR_ARRAY_PUSH(id.groups, const char *) = "g-two";
    return id;
}

static int is_b64url(const char *s)
{
    return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") ==
           strlen(s);
}

/* ---- filling tokens from an identity ---- */

START_TEST(session_fields)
{
    msa_identity_t id = alice();
    msa_token_t t;
    ck_assert_int_eq(msa_token_session(pool, &id, "myapp", NOW, 86400, 3600, &t), APR_SUCCESS);
    ck_assert_str_eq(t.sub, id.id);
    ck_assert_str_eq(t.identifier, "ms:00000000-0000-0000-aaaa-0123456789ab");
    ck_assert_str_eq(t.appid, "myapp");
    ck_assert_str_eq(t.idp, "microsoft");
    ck_assert_str_eq(t.name, "Alice Example");
    ck_assert_str_eq(t.email, "alice@example.com");
    ck_assert_str_eq(t.upn, "alice@contoso.onmicrosoft.com");
    ck_assert_str_eq(t.tid, "72f988bf-86f1-41af-91ab-2d7cd011db47");
    ck_assert_str_eq(t.verified, "email");
    ck_assert_str_eq(t.token_use, "session");
    ck_assert_int_eq(t.iat, NOW);
    ck_assert_int_eq(t.nbf, NOW);
    ck_assert_int_eq(t.exp, NOW + 86400);
    ck_assert_int_eq(t.refresh, (NOW + 3600) * 1000);
    ck_assert_ptr_nonnull(t.groups);
    ck_assert_int_eq(t.groups->nelts, 2);
    ck_assert_str_eq(APR_ARRAY_IDX(t.groups, 1, const char *), "g-two");
    ck_assert_ptr_nonnull(t.jti);
    ck_assert_int_ge(strlen(t.jti), 22);
    ck_assert_msg(is_b64url(t.jti), "jti %s", t.jti);

    msa_token_t t2;
    ck_assert_int_eq(msa_token_session(pool, &id, "myapp", NOW, 86400, 3600, &t2), APR_SUCCESS);
    ck_assert_str_ne(t.jti, t2.jti);

    /* The verified claim survives the JSON round trip. */
    const char *err = NULL;
    ck_assert_int_eq(msa_token_from_json(pool, msa_token_to_json(pool, &t), &t2, &err),
                     APR_SUCCESS);
    ck_assert_str_eq(t2.verified, "email");
}
END_TEST

START_TEST(session_root_appid)
{
    msa_identity_t id = alice();
    msa_token_t t;
    ck_assert_int_eq(msa_token_session(pool, &id, "", NOW, 10, 5, &t), APR_SUCCESS);
    ck_assert_str_eq(t.appid, "default");
    ck_assert_int_eq(msa_token_session(pool, &id, NULL, NOW, 10, 5, &t), APR_SUCCESS);
    ck_assert_str_eq(t.appid, "default");
    ck_assert_int_eq(msa_token_id(pool, &id, NULL, NOW, 10, &t), APR_SUCCESS);
    ck_assert_str_eq(t.appid, "default");
}
END_TEST

START_TEST(session_graph_only_identity)
{
    /* The seed's Graph-only login: no tid, no upn, no groups. */
    msa_identity_t id = {0};
    id.id = "abc";
    msa_token_t t;
    ck_assert_int_eq(msa_token_session(pool, &id, "a", NOW, 100, 50, &t), APR_SUCCESS);
    ck_assert_ptr_null(t.tid);
    ck_assert_ptr_null(t.upn);
    ck_assert_ptr_null(t.groups);
    char *json = msa_token_to_json(pool, &t);
    ck_assert_ptr_null(strstr(json, "\"tid\""));
    ck_assert_ptr_null(strstr(json, "\"upn\""));
    ck_assert_ptr_null(strstr(json, "\"name\""));
    ck_assert_ptr_null(strstr(json, "\"groups\""));
}
END_TEST

START_TEST(id_token_fields)
{
    msa_identity_t id = alice();
    msa_token_t t;
    ck_assert_int_eq(msa_token_id(pool, &id, "myapp", NOW, 60, &t), APR_SUCCESS);
    ck_assert_str_eq(t.sub, id.id);
    ck_assert_str_eq(t.identifier, "ms:00000000-0000-0000-aaaa-0123456789ab");
    ck_assert_str_eq(t.appid, "myapp");
    ck_assert_str_eq(t.token_use, "id");
    ck_assert_str_eq(t.name, "Alice Example");
    ck_assert_str_eq(t.email, "alice@example.com");
    ck_assert_str_eq(t.picture, "https://example.com/alice.png");
    /* The tenant travels with it, for the app's tenant rule at the exchange. */
    ck_assert_str_eq(t.tid, "72f988bf-86f1-41af-91ab-2d7cd011db47");
    ck_assert_ptr_null(t.aud); /* set by the issuer, which knows its virtual host */
    ck_assert_int_eq(t.iat, NOW);
    ck_assert_int_eq(t.nbf, NOW);
    ck_assert_int_eq(t.exp, NOW + 60);
    /* And what else the login learnt, for the session it is exchanged for. */
    ck_assert_str_eq(t.upn, "alice@contoso.onmicrosoft.com");
    ck_assert_str_eq(t.verified, "email");
    ck_assert_ptr_null(t.idp);
    ck_assert_ptr_null(t.groups);
    ck_assert_int_eq(t.refresh, 0);
    ck_assert_int_ge(strlen(t.jti), 22);
    char *json = msa_token_to_json(pool, &t);
    ck_assert_ptr_nonnull(strstr(json, "\"verified\":\"email\""));
    ck_assert_ptr_null(strstr(json, "\"groups\""));
    ck_assert_ptr_null(strstr(json, "\"idp\""));
    ck_assert_ptr_null(strstr(json, "\"refresh\""));
}
END_TEST

START_TEST(identity_without_id)
{
    msa_identity_t id = alice();
    msa_token_t t;
    id.id = NULL;
    ck_assert_int_ne(msa_token_session(pool, &id, "a", NOW, 10, 5, &t), APR_SUCCESS);
    ck_assert_int_ne(msa_token_id(pool, &id, "a", NOW, 10, &t), APR_SUCCESS);
    id.id = "";
    ck_assert_int_ne(msa_token_session(pool, &id, "a", NOW, 10, 5, &t), APR_SUCCESS);
    ck_assert_int_ne(msa_token_id(pool, &id, "a", NOW, 10, &t), APR_SUCCESS);
}
END_TEST

/* ---- JSON ---- */

static void assert_same_token(const msa_token_t *a, const msa_token_t *b)
{
#define SAME_STR(f)                                                                                \
    if (a->f == NULL) {                                                                            \
        ck_assert_ptr_null(b->f);                                                                  \
    } else {                                                                                       \
        ck_assert_ptr_nonnull(b->f);                                                               \
        ck_assert_str_eq(a->f, b->f);                                                              \
    }
    SAME_STR(sub)
    SAME_STR(identifier)
    SAME_STR(appid)
    SAME_STR(aud)
    SAME_STR(idp)
    SAME_STR(name)
    SAME_STR(email)
    SAME_STR(upn)
    SAME_STR(tid)
    SAME_STR(picture)
    SAME_STR(sid)
    SAME_STR(jti)
    SAME_STR(token_use)
#undef SAME_STR
    ck_assert_int_eq(a->iat, b->iat);
    ck_assert_int_eq(a->nbf, b->nbf);
    ck_assert_int_eq(a->exp, b->exp);
    ck_assert_int_eq(a->refresh, b->refresh);
    if (a->groups == NULL) {
        ck_assert_ptr_null(b->groups);
    } else {
        ck_assert_ptr_nonnull(b->groups);
        ck_assert_int_eq(a->groups->nelts, b->groups->nelts);
        for (int i = 0; i < a->groups->nelts; i++) {
            ck_assert_str_eq(APR_ARRAY_IDX(a->groups, i, const char *),
                             APR_ARRAY_IDX(b->groups, i, const char *));
        }
    }
}

/* The claims as json-c writes them (JSON_C_TO_STRING_PLAIN), member for member. */
static char *json_c_claims(const msa_token_t *t)
{
    json_object *o = json_object_new_object();
    const char *names[] = {"sub",   "identifier", "appid", "aud", "idp",      "name",
                           "email", "upn",        "tid",   "oid", "picture",  "verified",
                           "jti",   "token_use",  "epoch", "sid", "sid_epoch"};
    const char *values[] = {t->sub,   t->identifier, t->appid, t->aud, t->idp,      t->name,
                            t->email, t->upn,        t->tid,   t->oid, t->picture,  t->verified,
                            t->jti,   t->token_use,  t->epoch, t->sid, t->sid_epoch};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        if (values[i] != NULL) {
            json_object_object_add(o, names[i], json_object_new_string(values[i]));
        }
    }
    const char *nnames[] = {"iat", "nbf", "exp", "refresh"};
    apr_int64_t nums[] = {t->iat, t->nbf, t->exp, t->refresh};
    for (size_t i = 0; i < 4; i++) {
        if (nums[i] != 0) {
            json_object_object_add(o, nnames[i], json_object_new_int64(nums[i]));
        }
    }
    if (t->groups != NULL) {
        json_object *a = json_object_new_array();
        for (int i = 0; i < t->groups->nelts; i++) {
            json_object_array_add(a, json_object_new_string(APR_ARRAY_IDX(t->groups, i, char *)));
        }
        json_object_object_add(o, "groups", a);
    }
    if (t->groups_cached) {
        json_object_object_add(o, "groups_cached", json_object_new_boolean(1));
    }
    char *s = apr_pstrdup(pool, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    return s;
}

START_TEST(json_written_as_json_c_writes_it)
{
    msa_token_t t;
    memset(&t, 0, sizeof(t));
    ck_assert_str_eq(msa_token_to_json(pool, &t), "{}");
    ck_assert_str_eq(msa_token_to_json(pool, &t), json_c_claims(&t));
    t.sub = "s/1";
    t.identifier = "ms:\"x\"";
    t.appid = "default";
    t.aud = "aud\\";
    t.idp = "microsoft";
    t.name = "Zo\xc3\xab \"Q\" O'Brien / \\ \t\n\r\b\f\x01\x1f\x7f \xe2\x82\xac \xff";
    t.email = "zoe@example.com";
    t.upn = "zoe@contoso.onmicrosoft.com";
    t.tid = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    t.oid = "00000000-0000-0000-aaaa-0123456789ab";
    t.picture = "https://example.com/p.png?a=1&b=</script>";
    t.verified = "email upn";
    t.jti = "";
    t.token_use = "session";
    t.epoch = "e1";
    t.sid = "sid-1";
    t.sid_epoch = "se";
    t.iat = 1700000000;
    t.nbf = -1;
    t.exp = INT64_MAX;
    t.refresh = INT64_MIN;
    t.groups = apr_array_make(pool, 3, sizeof(const char *));
    ck_assert_str_eq(msa_token_to_json(pool, &t), json_c_claims(&t));
    APR_ARRAY_PUSH(t.groups, const char *) = "g/1";
    APR_ARRAY_PUSH(t.groups, const char *) = "g\"2";
    APR_ARRAY_PUSH(t.groups, const char *) = "";
    t.groups_cached = 1;
    ck_assert_str_eq(msa_token_to_json(pool, &t), json_c_claims(&t));
    /* Every byte but NUL, alone and between others. */
    for (int b = 1; b < 256; b++) {
        char one[2] = {(char)b, 0};
        t.name = one;
        t.email = apr_psprintf(pool, "a%cb%c", b, b);
        ck_assert_str_eq(msa_token_to_json(pool, &t), json_c_claims(&t));
    }
}
END_TEST

START_TEST(json_round_trip)
{
    msa_identity_t id = alice();
    id.name = "Zoë \"Q\" O'Brien \\ </script>";
    msa_token_t t, back;
    const char *err = NULL;
    ck_assert_int_eq(msa_token_session(pool, &id, "myapp", NOW, 86400, 3600, &t), APR_SUCCESS);
    char *json = msa_token_to_json(pool, &t);
    ck_assert_msg(strstr(json, "\"groups\":[\"g-one\",\"g-two\"]") != NULL, "%s", json);
    ck_assert_int_eq(msa_token_from_json(pool, json, &back, &err), APR_SUCCESS);
    assert_same_token(&t, &back);

    ck_assert_int_eq(msa_token_id(pool, &id, NULL, NOW, 60, &t), APR_SUCCESS);
    ck_assert_int_eq(msa_token_from_json(pool, msa_token_to_json(pool, &t), &back, &err),
                     APR_SUCCESS);
    assert_same_token(&t, &back);

    /* An empty group list stays a list. */
    id.groups = apr_array_make(pool, 0, sizeof(const char *));
    ck_assert_int_eq(msa_token_session(pool, &id, "a", NOW, 1, 1, &t), APR_SUCCESS);
    ck_assert_int_eq(msa_token_from_json(pool, msa_token_to_json(pool, &t), &back, &err),
                     APR_SUCCESS);
    ck_assert_ptr_nonnull(back.groups);
    ck_assert_int_eq(back.groups->nelts, 0);
}
END_TEST

/* The Microsoft session (id_token sid) travels in both kinds of token, and back out of them. */
START_TEST(sid_round_trip)
{
    msa_identity_t id = alice();
    id.sid = "00189ff0-c8f2-d8b4-2ca2-4d9c9b2e1f3a";
    msa_token_t t, back, id_tok;
    char *jwt = NULL;
    const char *err = NULL;
    ck_assert_int_eq(msa_token_session(pool, &id, "myapp", NOW, 86400, 3600, &t), APR_SUCCESS);
    ck_assert_str_eq(t.sid, id.sid);
    char *json = msa_token_to_json(pool, &t);
    ck_assert_msg(strstr(json, "\"sid\":\"00189ff0-c8f2-d8b4-2ca2-4d9c9b2e1f3a\"") != NULL, "%s",
                  json);
    /* Signed and verified, through the fast reader and through json-c alone. */
    ck_assert_int_eq(msa_token_sign(pool, &t, &key_new, &jwt, &err), APR_SUCCESS);
    ck_assert_int_eq(
        msa_token_verify(pool, jwt, &key_new, 1, "session", "myapp", NULL, NOW, SKEW, &back, &err),
        APR_SUCCESS);
    ck_assert_str_eq(back.sid, id.sid);
    ck_assert_int_eq(msa_token_claims_json(pool, json, &back, &err), APR_SUCCESS);
    ck_assert_str_eq(back.sid, id.sid);
    /* The jwt=id ID token keeps it for the session it is exchanged for. */
    ck_assert_int_eq(msa_token_id(pool, &id, "myapp", NOW, 60, &id_tok), APR_SUCCESS);
    ck_assert_str_eq(id_tok.sid, id.sid);
    ck_assert_int_eq(msa_token_from_json(pool, msa_token_to_json(pool, &id_tok), &back, &err),
                     APR_SUCCESS);
    assert_same_token(&id_tok, &back);
    /* A login without sid: no claim at all, not an empty one. */
    id.sid = NULL;
    ck_assert_int_eq(msa_token_session(pool, &id, "myapp", NOW, 86400, 3600, &t), APR_SUCCESS);
    json = msa_token_to_json(pool, &t);
    ck_assert_msg(strstr(json, "\"sid\"") == NULL, "%s", json);
    ck_assert_int_eq(msa_token_from_json(pool, json, &back, &err), APR_SUCCESS);
    ck_assert_ptr_null(back.sid);
    /* A sid of the wrong type is a bad token, as any string claim's. */
    ck_assert_int_eq(msa_token_from_json(pool, "{\"sub\":\"s\",\"sid\":7}", &back, &err),
                     APR_EINVAL);
}
END_TEST

START_TEST(json_null_and_unknown_claims)
{
    msa_token_t t;
    const char *err = NULL;
    ck_assert_int_eq(msa_token_from_json(pool,
                                         "{\"sub\":\"s\",\"name\":null,\"extra\":[1,2],"
                                         "\"exp\":1700000100}",
                                         &t, &err),
                     APR_SUCCESS);
    ck_assert_str_eq(t.sub, "s");
    ck_assert_ptr_null(t.name);
    ck_assert_int_eq(t.exp, NOW + 100);
    ck_assert_ptr_null(t.groups);
}
END_TEST

static const char *const bad_claims[] = {
    "",
    "not json",
    "[]",
    "[{\"sub\":\"x\"}]",
    "\"sub\"",
    "42",
    "null",
    "{\"sub\":5}",
    "{\"sub\":true}",
    "{\"sub\":[\"x\"]}",
    "{\"name\":{}}",
    "{\"jti\":1}",
    "{\"exp\":\"1700000000\"}",
    "{\"exp\":1.5}",
    "{\"exp\":true}",
    "{\"iat\":null}",
    "{\"refresh\":\"soon\"}",
    "{\"groups\":\"g-one\"}",
    "{\"groups\":{\"0\":\"g\"}}",
    "{\"groups\":[1]}",
    "{\"groups\":[\"a\",2]}",
    "{\"groups\":[\"a\",null]}",
    "{\"groups\":[[\"a\"]]}",
};

START_TEST(json_bad)
{
    msa_token_t t;
    const char *err = NULL;
    ck_assert_msg(msa_token_from_json(pool, bad_claims[_i], &t, &err) == APR_EINVAL, "accepted %s",
                  bad_claims[_i]);
    ck_assert_ptr_nonnull(err);
}
END_TEST

/* ---- sign and verify ---- */

static char *signed_session(const char *appid, apr_int64_t now, msa_token_t *t)
{
    msa_identity_t id = alice();
    char *jwt = NULL;
    const char *err = NULL;
    ck_assert_int_eq(msa_token_session(pool, &id, appid, now, 86400, 3600, t), APR_SUCCESS);
    ck_assert_int_eq(msa_token_sign(pool, t, &key_new, &jwt, &err), APR_SUCCESS);
    return jwt;
}

static char *sign_tok(const msa_token_t *t)
{
    char *jwt = NULL;
    const char *err = NULL;
    ck_assert_int_eq(msa_token_sign(pool, t, &key_new, &jwt, &err), APR_SUCCESS);
    return jwt;
}

static apr_status_t verify(const char *jwt, const char *use, const char *appid, apr_int64_t now,
                           msa_token_t *out)
{
    msa_key_t keys[2] = {key_new, key_old};
    const char *err = NULL;
    apr_status_t rv = msa_token_verify(pool, jwt, keys, 2, use, appid, NULL, now, SKEW, out, &err);
    if (rv != APR_SUCCESS) {
        ck_assert_ptr_nonnull(err);
    }
    return rv;
}

START_TEST(verify_good)
{
    msa_token_t t, back;
    char *jwt = signed_session("myapp", NOW, &t);
    ck_assert_int_eq(verify(jwt, "session", "myapp", NOW + 10, &back), APR_SUCCESS);
    assert_same_token(&t, &back);
    /* Made with the old key of a rotation: still good. */
    char *old = NULL;
    const char *err = NULL;
    ck_assert_int_eq(msa_token_sign(pool, &t, &key_old, &old, &err), APR_SUCCESS);
    ck_assert_int_eq(verify(old, "session", "myapp", NOW, &back), APR_SUCCESS);
    ck_assert_str_eq(back.jti, t.jti);
}
END_TEST

START_TEST(verify_foreign_key)
{
    msa_token_t t, back;
    char *jwt = NULL;
    const char *err = NULL;
    signed_session("myapp", NOW, &t);
    ck_assert_int_eq(msa_token_sign(pool, &t, &key_evil, &jwt, &err), APR_SUCCESS);
    ck_assert_int_eq(verify(jwt, "session", "myapp", NOW, &back), APR_EINVAL);
}
END_TEST

START_TEST(verify_wrong_use)
{
    msa_identity_t id = alice();
    msa_token_t t, back;
    char *jwt = signed_session("myapp", NOW, &t);
    ck_assert_int_eq(verify(jwt, "id", "myapp", NOW, &back), APR_EINVAL);
    /* An ID token is not a session token. */
    ck_assert_int_eq(msa_token_id(pool, &id, "myapp", NOW, 60, &t), APR_SUCCESS);
    jwt = sign_tok(&t);
    ck_assert_int_eq(verify(jwt, "session", "myapp", NOW, &back), APR_EINVAL);
    ck_assert_int_eq(verify(jwt, "id", "myapp", NOW, &back), APR_SUCCESS);
    /* No token_use at all. */
    t.token_use = NULL;
    ck_assert_int_eq(verify(sign_tok(&t), "id", "myapp", NOW, &back), APR_EINVAL);
}
END_TEST

START_TEST(verify_appid)
{
    msa_token_t t, back;
    char *jwt = signed_session("myapp", NOW, &t);
    ck_assert_int_eq(verify(jwt, "session", "otherapp", NOW, &back), APR_EINVAL);
    ck_assert_int_eq(verify(jwt, "session", "default", NOW, &back), APR_EINVAL);
    ck_assert_int_eq(verify(jwt, "session", "MYAPP", NOW, &back), APR_EINVAL);
    ck_assert_int_eq(verify(jwt, "session", NULL, NOW, &back), APR_SUCCESS);
    ck_assert_str_eq(back.appid, "myapp");
    /* A root app token is "default". */
    jwt = signed_session(NULL, NOW, &t);
    ck_assert_int_eq(verify(jwt, "session", "default", NOW, &back), APR_SUCCESS);
    ck_assert_int_eq(verify(jwt, "session", "myapp", NOW, &back), APR_EINVAL);
    /* A token without an appid claim is no app's. */
    t.appid = NULL;
    jwt = sign_tok(&t);
    ck_assert_int_eq(verify(jwt, "session", "default", NOW, &back), APR_EINVAL);
}
END_TEST

START_TEST(verify_aud)
{
    msa_key_t keys[1] = {key_new};
    msa_token_t t, back;
    const char *err = NULL;
    const char *aud = "11111111-2222-3333-4444-555555555555:myapp@a.example";
    signed_session("myapp", NOW, &t);
    t.aud = aud;
    char *jwt = sign_tok(&t);
    ck_assert_int_eq(
        msa_token_verify(pool, jwt, keys, 1, "session", "myapp", aud, NOW, SKEW, &back, &err),
        APR_SUCCESS);
    ck_assert_str_eq(back.aud, aud);
    /* Another virtual host, client id or appid: another app. */
    static const char *const others[] = {
        "11111111-2222-3333-4444-555555555555:myapp@b.example",
        "99999999-2222-3333-4444-555555555555:myapp@a.example",
        "11111111-2222-3333-4444-555555555555:default@a.example",
        "11111111-2222-3333-4444-555555555555:myapp@a.example ",
        "",
    };
    for (size_t i = 0; i < sizeof others / sizeof *others; i++) {
        err = NULL;
        ck_assert_int_eq(msa_token_verify(pool, jwt, keys, 1, "session", "myapp", others[i], NOW,
                                          SKEW, &back, &err),
                         APR_EINVAL);
        ck_assert_ptr_nonnull(err);
    }
    /* A token without aud opens no app that asks for one. */
    t.aud = NULL;
    jwt = sign_tok(&t);
    ck_assert_int_eq(
        msa_token_verify(pool, jwt, keys, 1, "session", "myapp", aud, NOW, SKEW, &back, &err),
        APR_EINVAL);
    ck_assert_str_eq(err, "token has no aud");
}
END_TEST

START_TEST(verify_expiry)
{
    msa_token_t t, back;
    signed_session("a", NOW, &t);
    t.exp = NOW + 1;
    ck_assert_int_eq(verify(sign_tok(&t), "session", "a", NOW, &back), APR_SUCCESS);
    /* Expired, but within the skew. */
    t.exp = NOW - 30;
    ck_assert_int_eq(verify(sign_tok(&t), "session", "a", NOW, &back), APR_SUCCESS);
    t.exp = NOW - SKEW + 1;
    ck_assert_int_eq(verify(sign_tok(&t), "session", "a", NOW, &back), APR_SUCCESS);
    /* At and beyond the skew. */
    t.exp = NOW - SKEW;
    ck_assert_int_eq(verify(sign_tok(&t), "session", "a", NOW, &back), MSA_EEXPIRED);
    t.exp = NOW - 3600;
    ck_assert_int_eq(verify(sign_tok(&t), "session", "a", NOW, &back), MSA_EEXPIRED);
    /* No exp at all never passes for a live token. */
    t.exp = 0;
    ck_assert_int_ne(verify(sign_tok(&t), "session", "a", NOW, &back), APR_SUCCESS);
    /* A real session token a day and a bit later. */
    char *jwt = signed_session("a", NOW, &t);
    ck_assert_int_eq(verify(jwt, "session", "a", NOW + 86400 + SKEW - 1, &back), APR_SUCCESS);
    ck_assert_int_eq(verify(jwt, "session", "a", NOW + 86400 + SKEW + 1, &back), MSA_EEXPIRED);
}
END_TEST

START_TEST(verify_not_yet_valid)
{
    msa_token_t t, back;
    signed_session("a", NOW, &t);
    t.exp = NOW + 7200;
    /* nbf/iat in the future, within the skew: fine. */
    t.nbf = t.iat = NOW + SKEW;
    ck_assert_int_eq(verify(sign_tok(&t), "session", "a", NOW, &back), APR_SUCCESS);
    /* Beyond it. */
    t.nbf = NOW + SKEW + 1;
    t.iat = NOW;
    ck_assert_int_eq(verify(sign_tok(&t), "session", "a", NOW, &back), MSA_EEXPIRED);
    t.nbf = NOW;
    t.iat = NOW + SKEW + 1;
    ck_assert_int_eq(verify(sign_tok(&t), "session", "a", NOW, &back), MSA_EEXPIRED);
    t.nbf = t.iat = NOW + 3600;
    ck_assert_int_eq(verify(sign_tok(&t), "session", "a", NOW, &back), MSA_EEXPIRED);
}
END_TEST

START_TEST(verify_needs_sub_and_jti)
{
    msa_token_t t, back;
    signed_session("a", NOW, &t);
    const char *sub = t.sub, *jti = t.jti;
    t.sub = NULL;
    ck_assert_int_eq(verify(sign_tok(&t), "session", "a", NOW, &back), APR_EINVAL);
    t.sub = "";
    ck_assert_int_eq(verify(sign_tok(&t), "session", "a", NOW, &back), APR_EINVAL);
    t.sub = sub;
    t.jti = NULL;
    ck_assert_int_eq(verify(sign_tok(&t), "session", "a", NOW, &back), APR_EINVAL);
    t.jti = "";
    ck_assert_int_eq(verify(sign_tok(&t), "session", "a", NOW, &back), APR_EINVAL);
    t.jti = jti;
    ck_assert_int_eq(verify(sign_tok(&t), "session", "a", NOW, &back), APR_SUCCESS);
}
END_TEST

START_TEST(verify_bad_claims_types)
{
    /* Correctly signed, but the claims have the wrong types. */
    msa_key_t keys[1] = {key_new};
    msa_token_t back;
    char *jwt = NULL;
    const char *err = NULL;
    ck_assert_int_eq(msa_jws_hs256_sign(pool, &key_new,
                                        "{\"sub\":\"s\",\"jti\":\"j\",\"token_use\":\"session\","
                                        "\"appid\":\"a\",\"exp\":\"9999999999\"}",
                                        &jwt, &err),
                     APR_SUCCESS);
    ck_assert_int_eq(
        msa_token_verify(pool, jwt, keys, 1, "session", "a", NULL, NOW, SKEW, &back, &err),
        APR_EINVAL);
    ck_assert_int_eq(msa_jws_hs256_sign(pool, &key_new, "[\"session\"]", &jwt, &err), APR_SUCCESS);
    ck_assert_int_eq(
        msa_token_verify(pool, jwt, keys, 1, "session", NULL, NULL, NOW, SKEW, &back, &err),
        APR_EINVAL);
}
END_TEST

START_TEST(verify_garbage)
{
    msa_token_t back;
    ck_assert_int_eq(verify("", "session", NULL, NOW, &back), APR_EINVAL);
    ck_assert_int_eq(verify("a.b.c", "session", NULL, NOW, &back), APR_EINVAL);
    ck_assert_int_eq(verify("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", "session", NULL, NOW, &back),
                     APR_EINVAL);
}
END_TEST

/* The pool-only claims reader and json-c agree on what the module writes. */
START_TEST(claims_round_trip_with_escapes)
{
    msa_token_t t, back;
    const char *err = NULL;
    memset(&t, 0, sizeof(t));
    t.sub = "7c7e6eb46df66116";
    t.identifier = "ms:7c7e6eb46df66116";
    t.appid = "default";
    t.name = "Zo\xc3\xab \"Q\" O'Brien / \\ \t\x01 \xe2\x82\xac";
    t.email = "zoe@example.com";
    t.jti = "abc";
    t.token_use = "session";
    t.iat = 1700000000;
    t.exp = -5;
    t.refresh = 1700003600000LL;
    t.groups = apr_array_make(pool, 2, sizeof(const char *));
    APR_ARRAY_PUSH(t.groups, const char *) = "g/1";
    APR_ARRAY_PUSH(t.groups, const char *) = "g\"2";
    t.groups_cached = 1;
    char *json = msa_token_to_json(pool, &t);
    ck_assert_int_eq(msa_token_from_json(pool, json, &back, &err), APR_SUCCESS);
    ck_assert_str_eq(back.name, t.name);
    ck_assert_str_eq(back.sub, t.sub);
    ck_assert_int_eq(back.iat, t.iat);
    ck_assert_int_eq(back.exp, -5);
    ck_assert_int_eq(back.refresh, t.refresh);
    ck_assert_int_eq(back.groups->nelts, 2);
    ck_assert_str_eq(APR_ARRAY_IDX(back.groups, 1, const char *), "g\"2");
    ck_assert_int_eq(back.groups_cached, 1);
    ck_assert_ptr_null(back.upn);
}
END_TEST

/* Hand-written documents: the same answers whichever reader takes them. */
START_TEST(claims_reader_edge_cases)
{
    msa_token_t t;
    const char *err = NULL;
    ck_assert_int_eq(
        msa_token_from_json(pool, " { \"sub\" : \"a\\u00e9\\u20ac\" , \"x\":[1,{}] } ", &t, &err),
        APR_SUCCESS);
    ck_assert_str_eq(t.sub, "a\xc3\xa9\xe2\x82\xac");
    ck_assert_int_eq(msa_token_from_json(pool, "{\"sub\":\"\\ud83d\\ude00\"}", &t, &err),
                     APR_SUCCESS);
    ck_assert_str_eq(t.sub, "\xf0\x9f\x98\x80");
    ck_assert_int_eq(msa_token_from_json(pool, "{\"exp\":1.5}", &t, &err), APR_EINVAL);
    ck_assert_int_eq(msa_token_from_json(pool, "{\"sub\":null,\"exp\":7}", &t, &err), APR_SUCCESS);
    ck_assert_ptr_null(t.sub);
    ck_assert_int_eq(t.exp, 7);
    ck_assert_int_eq(msa_token_from_json(pool, "{\"sub\":\"a\"} x", &t, &err), APR_EINVAL);
    ck_assert_int_eq(msa_token_from_json(pool, "{\"groups\":[\"a\",2]}", &t, &err), APR_EINVAL);
    ck_assert_int_eq(msa_token_from_json(pool, "{\"sub\":\"a\\q\"}", &t, &err), APR_EINVAL);
    ck_assert_int_eq(msa_token_from_json(pool, "{}", &t, &err), APR_SUCCESS);
}
END_TEST

/* ---- the memory of verified tokens ---- */

/* A session token with every claim set: what a copy out of the memory must give back whole. */
static char *full_session(const char *jti, msa_token_t *t)
{
    msa_identity_t id = alice();
    id.oid = "11111111-2222-3333-4444-555555555555";
    id.sid = "00189ff0-c8f2-d8b4-2ca2-4d9c9b2e1f3a";
    ck_assert_int_eq(msa_token_session(pool, &id, "myapp", NOW, 3600, 300, t), APR_SUCCESS);
    t->jti = jti;
    t->aud = "client:myapp@app.test:443";
    t->epoch = "0123456789abcdef";
    char *jwt = NULL;
    const char *err = NULL;
    ck_assert_int_eq(msa_token_sign(pool, t, &key_new, &jwt, &err), APR_SUCCESS);
    return jwt;
}

static apr_status_t remembered(apr_pool_t *p, const char *jwt, const msa_key_t *keys, int n,
                               msa_token_t *out, msa_token_memo_t *memo)
{
    const char *err = NULL;
    return msa_token_verify_memo(p, jwt, keys, n, "session", "myapp", NULL, NOW + 10, SKEW, out,
                                 memo, &err);
}

START_TEST(memory_gives_back_every_claim)
{
    ck_assert_int_eq(msa_token_memory_init(pool, 1), APR_SUCCESS);
    msa_token_t t, back;
    msa_token_memo_t memo;
    char *jwt = full_session("jti-one", &t);
    const char *want = msa_token_to_json(pool, &t);
    /* Verified in a pool that is then cleared and written over. */
    apr_pool_t *first;
    apr_pool_create(&first, pool);
    ck_assert_int_eq(remembered(first, jwt, &key_new, 1, &back, &memo), APR_SUCCESS);
    ck_assert_int_eq(memo.stamp, 0);
    apr_pool_clear(first);
    for (int i = 0; i < 256; i++) {
        memset(apr_palloc(first, 256), 'X', 256);
    }
    ck_assert_int_eq(remembered(pool, jwt, &key_new, 1, &back, &memo), APR_SUCCESS);
    ck_assert_str_eq(msa_token_to_json(pool, &back), want);
    assert_same_token(&t, &back);
    /* The copy is the caller's: another token taking the slot leaves it whole. */
    msa_token_t other, gone;
    char *jwt2 = full_session("jti-two", &other);
    ck_assert_int_eq(remembered(pool, jwt2, &key_new, 1, &gone, NULL), APR_SUCCESS);
    ck_assert_int_eq(remembered(pool, jwt2, &key_new, 1, &gone, NULL), APR_SUCCESS);
    ck_assert_str_eq(gone.jti, "jti-two");
    ck_assert_str_eq(msa_token_to_json(pool, &back), want);
}
END_TEST

START_TEST(memory_needs_the_same_keys_and_text)
{
    ck_assert_int_eq(msa_token_memory_init(pool, 4), APR_SUCCESS);
    msa_token_t t, back;
    char *jwt = full_session("jti-one", &t);
    const msa_key_t both[] = {key_new, key_old};
    ck_assert_int_eq(remembered(pool, jwt, both, 2, &back, NULL), APR_SUCCESS);
    ck_assert_int_eq(remembered(pool, jwt, both, 2, &back, NULL), APR_SUCCESS);
    /* The key that signed it is gone from the configuration: refused, remembered or not. */
    ck_assert_int_eq(remembered(pool, jwt, &key_evil, 1, &back, NULL), APR_EINVAL);
    ck_assert_int_eq(remembered(pool, jwt, &key_old, 1, &back, NULL), APR_EINVAL);
    ck_assert_int_eq(remembered(pool, jwt, both, 0, &back, NULL), APR_EINVAL);
    /* One character of the MAC, or of the claims, changed: not the remembered token. */
    char *mac = apr_pstrdup(pool, jwt), *body = apr_pstrdup(pool, jwt);
    mac[strlen(mac) - 2] = mac[strlen(mac) - 2] == 'A' ? 'B' : 'A';
    body[40] = body[40] == 'A' ? 'B' : 'A';
    ck_assert_int_eq(remembered(pool, mac, both, 2, &back, NULL), APR_EINVAL);
    ck_assert_int_eq(remembered(pool, body, both, 2, &back, NULL), APR_EINVAL);
    /* The checks of the request still run on a remembered token. */
    const char *err = NULL;
    ck_assert_int_eq(
        msa_token_verify(pool, jwt, both, 2, "session", "otherapp", NULL, NOW, SKEW, &back, &err),
        APR_EINVAL);
    ck_assert_int_eq(
        msa_token_verify(pool, jwt, both, 2, "id", "myapp", NULL, NOW, SKEW, &back, &err),
        APR_EINVAL);
    ck_assert_int_eq(msa_token_verify(pool, jwt, both, 2, "session", "myapp", "other-aud", NOW,
                                      SKEW, &back, &err),
                     APR_EINVAL);
    ck_assert_int_eq(msa_token_verify(pool, jwt, both, 2, "session", "myapp", NULL,
                                      NOW + 3600 + SKEW + 1, SKEW, &back, &err),
                     MSA_EEXPIRED);
}
END_TEST

START_TEST(memory_keeps_the_stamp_with_its_token)
{
    ck_assert_int_eq(msa_token_memory_init(pool, 1), APR_SUCCESS);
    msa_token_t t, back;
    msa_token_memo_t memo, again;
    char *jwt = full_session("jti-one", &t);
    ck_assert_int_eq(remembered(pool, jwt, &key_new, 1, &back, &memo), APR_SUCCESS);
    ck_assert_int_eq(memo.stamp, 0);
    msa_token_memo_set(&memo, 42);
    ck_assert_int_eq(remembered(pool, jwt, &key_new, 1, &back, &again), APR_SUCCESS);
    ck_assert_uint_eq(again.stamp, 42);
    /* Another token takes the slot: a stamp recorded through the old memo is not its. */
    char *jwt2 = full_session("jti-two", &t);
    ck_assert_int_eq(remembered(pool, jwt2, &key_new, 1, &back, &again), APR_SUCCESS);
    msa_token_memo_set(&memo, 43);
    ck_assert_int_eq(remembered(pool, jwt2, &key_new, 1, &back, &again), APR_SUCCESS);
    ck_assert_uint_eq(again.stamp, 0);
    /* And the first token, back in the slot, starts with no stamp. */
    ck_assert_int_eq(remembered(pool, jwt, &key_new, 1, &back, &again), APR_SUCCESS);
    ck_assert_uint_eq(again.stamp, 0);
}
END_TEST

static Suite *token_suite(void)
{
    Suite *s = suite_create("msa_token");
    TCase *tc;

    tc = msa_test_case("fill");
    tcase_add_test(tc, session_fields);
    tcase_add_test(tc, session_root_appid);
    tcase_add_test(tc, session_graph_only_identity);
    tcase_add_test(tc, id_token_fields);
    tcase_add_test(tc, identity_without_id);
    suite_add_tcase(s, tc);

    tc = msa_test_case("json");
    tcase_add_test(tc, json_round_trip);
    tcase_add_test(tc, json_written_as_json_c_writes_it);
    tcase_add_test(tc, sid_round_trip);
    tcase_add_test(tc, json_null_and_unknown_claims);
    tcase_add_loop_test(tc, json_bad, 0, sizeof bad_claims / sizeof *bad_claims);
    suite_add_tcase(s, tc);

    tc = msa_test_case("verify");
    tcase_add_test(tc, verify_good);
    tcase_add_test(tc, verify_foreign_key);
    tcase_add_test(tc, verify_wrong_use);
    tcase_add_test(tc, verify_appid);
    tcase_add_test(tc, verify_aud);
    tcase_add_test(tc, verify_expiry);
    tcase_add_test(tc, verify_not_yet_valid);
    tcase_add_test(tc, verify_needs_sub_and_jti);
    tcase_add_test(tc, verify_bad_claims_types);
    tcase_add_test(tc, verify_garbage);
    tcase_add_test(tc, claims_round_trip_with_escapes);
    tcase_add_test(tc, claims_reader_edge_cases);
    suite_add_tcase(s, tc);

    tc = msa_test_case("memory");
    tcase_add_test(tc, memory_gives_back_every_claim);
    tcase_add_test(tc, memory_needs_the_same_keys_and_text);
    tcase_add_test(tc, memory_keeps_the_stamp_with_its_token);
    suite_add_tcase(s, tc);

    return s;
}

int main(void)
{
    return msa_test_run(token_suite());
}
