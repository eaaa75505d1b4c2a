/* Unit tests of the Microsoft calls, against the loopback responder. */
#include <string.h>

#include <apr_strings.h>

#include "msa_ms.h"
#include "msa_responder.h"
#include "msa_test.h"

#define SECRET "s3cr=t&x"
#define CODE   "0.AXkA-the/code+SECRETCODE"

typedef struct fixture {
    msa_responder_t *r;
    msa_http_t *h;
    msa_ms_client_t c;
    const char *host; /* the responder as login and Graph host */
} fixture_t;

static fixture_t setup_ms(apr_size_t max_response)
{
    fixture_t f;
    msa_http_opts_t o = {.timeout = 5, .max_response = max_response};
    f.r = msa_responder_start(pool);
    ck_assert_ptr_nonnull(f.r);
    ck_assert_int_eq(msa_http_global_init(), APR_SUCCESS);
    ck_assert_int_eq(msa_http_create(&f.h, pool, &o), APR_SUCCESS);
    f.host = msa_responder_url(f.r, pool, "");
    f.c = (msa_ms_client_t){
        .login_host = f.host,
        .graph_host = f.host,
        .tenant = "common",
        .client_id = "cid-123",
        .client_secret = SECRET,
        .redirect_uri = "https://app.example/microsoft_auth",
        .scope = "openid profile email User.Read",
    };
    return f;
}

static const msa_ms_client_t real_client = {
    .login_host = "https://login.microsoftonline.com",
    .graph_host = "https://graph.microsoft.com",
    .tenant = "common",
    .client_id = "cid-123",
    .client_secret = SECRET,
    .redirect_uri = "https://app.example/microsoft_auth",
    .scope = "openid profile email User.Read",
};

/* Messages name what failed, never the code or the secret. */
static void assert_clean_err(const char *err)
{
    ck_assert_ptr_nonnull(err);
    ck_assert_ptr_null(strstr(err, "SECRETCODE"));
    ck_assert_ptr_null(strstr(err, "s3cr"));
    ck_assert_ptr_null(strstr(err, "Trace ID"));
}

/* ---- URLs ---- */

START_TEST(test_authorize_url_plain)
{
    ck_assert_str_eq(msa_ms_authorize_url(pool, &real_client, "myapp", NULL, NULL),
                     "https://login.microsoftonline.com/common/oauth2/v2.0/authorize"
                     "?client_id=cid-123&response_type=code"
                     "&redirect_uri=https%3A%2F%2Fapp.example%2Fmicrosoft_auth"
                     "&response_mode=query&scope=openid%20profile%20email%20User.Read"
                     "&state=myapp");
}
END_TEST

START_TEST(test_authorize_url_pkce_nonce)
{
    msa_ms_client_t c = real_client;
    c.tenant = "9188040d-6c67-4c5b-b112-36a304b66dad";
    ck_assert_str_eq(msa_ms_authorize_url(pool, &c, "my app|x/y", "E9Melhoa2Ow-vFZx_c", "n&1"),
                     "https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad"
                     "/oauth2/v2.0/authorize"
                     "?client_id=cid-123&response_type=code"
                     "&redirect_uri=https%3A%2F%2Fapp.example%2Fmicrosoft_auth"
                     "&response_mode=query&scope=openid%20profile%20email%20User.Read"
                     "&state=my%20app%7Cx%2Fy"
                     "&code_challenge=E9Melhoa2Ow-vFZx_c&code_challenge_method=S256"
                     "&nonce=n%261");
    /* PKCE without a nonce, and the other way round. */
    ck_assert_str_eq(msa_ms_authorize_url(pool, &real_client, "s", "ch", NULL),
                     "https://login.microsoftonline.com/common/oauth2/v2.0/authorize"
                     "?client_id=cid-123&response_type=code"
                     "&redirect_uri=https%3A%2F%2Fapp.example%2Fmicrosoft_auth"
                     "&response_mode=query&scope=openid%20profile%20email%20User.Read"
                     "&state=s&code_challenge=ch&code_challenge_method=S256");
    ck_assert_str_eq(msa_ms_authorize_url(pool, &real_client, "s", NULL, "nn"),
                     "https://login.microsoftonline.com/common/oauth2/v2.0/authorize"
                     "?client_id=cid-123&response_type=code"
                     "&redirect_uri=https%3A%2F%2Fapp.example%2Fmicrosoft_auth"
                     "&response_mode=query&scope=openid%20profile%20email%20User.Read"
                     "&state=s&nonce=nn");
}
END_TEST

START_TEST(test_authorize_url_claims)
{
    msa_ms_client_t c = real_client;
    c.claims = "{\"access_token\":{\"xms_cc\":{\"values\":[\"cp1\"]}}}";
    ck_assert_str_eq(msa_ms_authorize_url(pool, &c, "s", "ch", "nn"),
                     "https://login.microsoftonline.com/common/oauth2/v2.0/authorize"
                     "?client_id=cid-123&response_type=code"
                     "&redirect_uri=https%3A%2F%2Fapp.example%2Fmicrosoft_auth"
                     "&response_mode=query&scope=openid%20profile%20email%20User.Read"
                     "&state=s&code_challenge=ch&code_challenge_method=S256&nonce=nn"
                     "&claims=%7B%22access_token%22%3A%7B%22xms_cc%22%3A%7B%22values%22%3A%5B%"
                     "22cp1%22%5D%7D%7D%7D");
}
END_TEST

START_TEST(test_redeem_sends_claims)
{
    fixture_t f = setup_ms(0);
    msa_ms_tokens_t t;
    const char *err = NULL;
    f.c.claims = "{\"access_token\":{\"xms_cc\":{\"values\":[\"cp1\"]}}}";
    msa_responder_json(f.r, 200, "{\"access_token\":\"AT\",\"expires_in\":1}");
    ck_assert_int_eq(msa_ms_redeem_code(f.h, pool, &f.c, CODE, "v", &t, &err), APR_SUCCESS);
    const msa_resp_request_t *q = msa_responder_request(f.r, 0);
    ck_assert_ptr_nonnull(q);
    ck_assert_ptr_nonnull(strstr(q->body,
                                 "&code_verifier=v&claims=%7B%22access_token%22%3A%7B%22"
                                 "xms_cc%22%3A%7B%22values%22%3A%5B%22cp1%22%5D%7D%7D%7D"));
}
END_TEST

START_TEST(test_logout_and_jwks_url)
{
    ck_assert_str_eq(msa_ms_logout_url(pool, &real_client, NULL),
                     "https://login.microsoftonline.com/common/oauth2/v2.0/logout");
    ck_assert_str_eq(msa_ms_logout_url(pool, &real_client, ""),
                     "https://login.microsoftonline.com/common/oauth2/v2.0/logout");
    ck_assert_str_eq(msa_ms_logout_url(pool, &real_client, "https://app.example/bye?x=1&y=2"),
                     "https://login.microsoftonline.com/common/oauth2/v2.0/logout"
                     "?post_logout_redirect_uri=https%3A%2F%2Fapp.example%2Fbye%3Fx%3D1%26y%3D2");
    msa_ms_client_t c = real_client;
    c.login_host = "https://login.microsoftonline.us";
    c.tenant = "contoso.onmicrosoft.com";
    ck_assert_str_eq(
        msa_ms_jwks_url(pool, &c),
        "https://login.microsoftonline.us/contoso.onmicrosoft.com/discovery/v2.0/keys");
}
END_TEST

/* ---- code redemption ---- */

START_TEST(test_redeem_success)
{
    fixture_t f = setup_ms(0);
    msa_ms_tokens_t t;
    const char *err = NULL;

    msa_responder_json(f.r, 200,
                       "{\"token_type\":\"Bearer\",\"scope\":\"openid profile email "
                       "https://graph.microsoft.com/User.Read\",\"expires_in\":3599,"
                       "\"ext_expires_in\":3599,\"access_token\":\"AT.x.y\","
                       "\"id_token\":\"ID.x.y\"}\n");
    ck_assert_int_eq(msa_ms_redeem_code(f.h, pool, &f.c, CODE, "verifier-~._", &t, &err),
                     APR_SUCCESS);
    ck_assert_ptr_null(err);
    ck_assert_str_eq(t.access_token, "AT.x.y");
    ck_assert_str_eq(t.id_token, "ID.x.y");
    ck_assert_str_eq(t.scope, "openid profile email https://graph.microsoft.com/User.Read");
    ck_assert_int_eq(t.expires_in, 3599);

    const msa_resp_request_t *q = msa_responder_request(f.r, 0);
    ck_assert_ptr_nonnull(q);
    ck_assert_str_eq(q->method, "POST");
    ck_assert_str_eq(q->target, "/common/oauth2/v2.0/token");
    ck_assert_str_eq(msa_resp_header(pool, q, "Content-Type"), "application/x-www-form-urlencoded");
    ck_assert_ptr_null(msa_resp_header(pool, q, "Authorization"));
    ck_assert_str_eq(q->body, "grant_type=authorization_code"
                              "&code=0.AXkA-the%2Fcode%2BSECRETCODE"
                              "&redirect_uri=https%3A%2F%2Fapp.example%2Fmicrosoft_auth"
                              "&client_id=cid-123"
                              "&client_secret=s3cr%3Dt%26x"
                              "&scope=openid%20profile%20email%20User.Read"
                              "&code_verifier=verifier-~._");
}
END_TEST

START_TEST(test_redeem_string_expiry_no_id_token)
{
    fixture_t f = setup_ms(0);
    msa_ms_tokens_t t;
    const char *err = NULL;

    msa_responder_json(f.r, 200,
                       "{\"token_type\":\"Bearer\",\"scope\":\"User.Read\","
                       "\"expires_in\":\"3600\",\"access_token\":\"AT2\"}");
    ck_assert_int_eq(msa_ms_redeem_code(f.h, pool, &f.c, CODE, NULL, &t, &err), APR_SUCCESS);
    ck_assert_str_eq(t.access_token, "AT2");
    ck_assert_ptr_null(t.id_token);
    ck_assert_str_eq(t.scope, "User.Read");
    ck_assert_int_eq(t.expires_in, 3600);
    const msa_resp_request_t *q = msa_responder_request(f.r, 0);
    ck_assert_ptr_null(strstr(q->body, "code_verifier"));
    ck_assert_int_eq(strncmp(q->body, "grant_type=authorization_code&code=", 35), 0);

    /* No expires_in, null id_token, no scope. */
    msa_responder_json(f.r, 200, "{\"access_token\":\"AT3\",\"id_token\":null}");
    ck_assert_int_eq(msa_ms_redeem_code(f.h, pool, &f.c, CODE, NULL, &t, &err), APR_SUCCESS);
    ck_assert_str_eq(t.access_token, "AT3");
    ck_assert_ptr_null(t.id_token);
    ck_assert_ptr_null(t.scope);
    ck_assert_int_eq(t.expires_in, 0);

    /* A non-numeric expires_in counts as absent. */
    msa_responder_json(f.r, 200, "{\"access_token\":\"AT4\",\"expires_in\":\"soon\"}");
    ck_assert_int_eq(msa_ms_redeem_code(f.h, pool, &f.c, CODE, NULL, &t, &err), APR_SUCCESS);
    ck_assert_int_eq(t.expires_in, 0);
}
END_TEST

START_TEST(test_refresh_rotates_and_refusals)
{
    fixture_t f = setup_ms(0);
    msa_ms_tokens_t t;
    const char *err = NULL;

    f.c.scope = "openid User.Read offline_access";
    msa_responder_json(f.r, 200,
                       "{\"token_type\":\"Bearer\",\"expires_in\":30,\"access_token\":\"AT.new\","
                       "\"refresh_token\":\"1.ARotated\",\"id_token\":\"ID.new.x\"}");
    ck_assert_int_eq(msa_ms_refresh(f.h, pool, &f.c, "1.AOld/RT+SECRETCODE", &t, &err),
                     APR_SUCCESS);
    ck_assert_str_eq(t.access_token, "AT.new");
    ck_assert_str_eq(t.refresh_token, "1.ARotated");
    ck_assert_str_eq(t.id_token, "ID.new.x");
    ck_assert_int_eq(t.expires_in, 30);
    const msa_resp_request_t *q = msa_responder_request(f.r, 0);
    ck_assert_str_eq(q->target, "/common/oauth2/v2.0/token");
    ck_assert_str_eq(q->body, "grant_type=refresh_token"
                              "&refresh_token=1.AOld%2FRT%2BSECRETCODE"
                              "&client_id=cid-123"
                              "&client_secret=s3cr%3Dt%26x"
                              "&scope=openid%20User.Read%20offline_access");

    /* No rotation in the answer: refresh_token NULL (the caller keeps the one it has). */
    msa_responder_json(f.r, 200, "{\"access_token\":\"AT.2\",\"refresh_token\":\"\"}");
    ck_assert_int_eq(msa_ms_refresh(f.h, pool, &f.c, "1.AOld", &t, &err), APR_SUCCESS);
    ck_assert_ptr_null(t.refresh_token);

    /* Expired or revoked: invalid_grant, the user must sign in again. */
    msa_responder_json(f.r, 400,
                       "{\"error\":\"invalid_grant\",\"error_description\":\"AADSTS50173: The "
                       "provided grant has expired due to it being revoked.\","
                       "\"error_codes\":[50173]}");
    ck_assert_int_eq(msa_ms_refresh(f.h, pool, &f.c, "1.AOld/RT+SECRETCODE", &t, &err),
                     MSA_EREFUSED);
    assert_clean_err(err);
    ck_assert_str_eq(err, "token endpoint (refresh) answered 400: invalid_grant (AADSTS50173)");
    ck_assert_ptr_null(t.access_token);

    msa_responder_json(f.r, 500, "{\"error\":\"temporarily_unavailable\"}");
    ck_assert_int_eq(msa_ms_refresh(f.h, pool, &f.c, "1.AOld", &t, &err), MSA_EPROTO);
    ck_assert_int_eq(msa_ms_refresh(f.h, pool, &f.c, "", &t, &err), APR_EINVAL);
    ck_assert_int_eq(msa_responder_nrequests(f.r), 4);
}
END_TEST

START_TEST(test_redeem_microsoft_error)
{
    fixture_t f = setup_ms(0);
    msa_ms_tokens_t t;
    const char *err = NULL;

    msa_responder_json(
        f.r, 400,
        "{\"error\":\"invalid_grant\",\"error_description\":\"AADSTS70008: The provided "
        "authorization code or refresh token has expired due to inactivity. Trace ID: "
        "0b6c2f0e Correlation ID: 7a1c Timestamp: 2024-01-01 00:00:00Z\","
        "\"error_codes\":[70008],\"timestamp\":\"2024-01-01 00:00:00Z\","
        "\"trace_id\":\"0b6c2f0e\",\"correlation_id\":\"7a1c\"}");
    ck_assert_int_eq(msa_ms_redeem_code(f.h, pool, &f.c, CODE, "v", &t, &err), MSA_EREFUSED);
    ck_assert_ptr_null(t.access_token);
    assert_clean_err(err);
    ck_assert_str_eq(err, "token endpoint answered 400: invalid_grant (AADSTS70008)");

    /* Without error_codes the number comes from the description. */
    msa_responder_json(f.r, 401,
                       "{\"error\":\"invalid_client\",\"error_description\":\"AADSTS7000215: "
                       "Invalid client secret provided.\"}");
    err = NULL;
    ck_assert_int_eq(msa_ms_redeem_code(f.h, pool, &f.c, CODE, "v", &t, &err), MSA_EPROTO);
    ck_assert_str_eq(err, "token endpoint answered 401: invalid_client (AADSTS7000215)");

    /* An error code that is not a plain word is not quoted. */
    msa_responder_json(f.r, 400, "{\"error\":\"bad\\r\\nthing SECRETCODE\"}");
    err = NULL;
    ck_assert_int_eq(msa_ms_redeem_code(f.h, pool, &f.c, CODE, "v", &t, &err), MSA_EPROTO);
    assert_clean_err(err);
    ck_assert_ptr_null(strchr(err, '\n'));

    /* A null error is no error. */
    msa_responder_json(f.r, 200, "{\"error\":null,\"access_token\":\"AT\"}");
    ck_assert_int_eq(msa_ms_redeem_code(f.h, pool, &f.c, CODE, "v", &t, &err), APR_SUCCESS);
    ck_assert_str_eq(t.access_token, "AT");

    /* An error alongside a 200 is still an error. */
    msa_responder_json(f.r, 200, "{\"error\":\"server_error\",\"access_token\":\"AT\"}");
    err = NULL;
    ck_assert_int_eq(msa_ms_redeem_code(f.h, pool, &f.c, CODE, "v", &t, &err), MSA_EPROTO);
    ck_assert_ptr_nonnull(strstr(err, "server_error"));
}
END_TEST

START_TEST(test_redeem_bad_answers)
{
    static const struct {
        int status;
        const char *ct, *body;
    } cases[] = {
        {200, "text/html", "<html><body>Sign in</body></html>"},
        {200, "application/json", "not json"},
        {200, "application/json", ""},
        {200, "application/json", "{\"access_token\":\"AT\""},
        {200, "application/json", "{\"token_type\":\"Bearer\",\"expires_in\":3599}"},
        {200, "application/json", "{\"access_token\":\"\"}"},
        {200, "application/json", "{\"access_token\":42}"},
        {200, "application/json", "{\"access_token\":null}"},
        {200, "application/json", "[\"access_token\"]"},
        {200, "application/json", "{\"access_token\":\"AT\"} trailing"},
        {200, "application/json", "{\"access_token\":\"A\\u0000T\"}"},
        {200, "application/json", "{\"access_token\":\"AT\",\"id_token\":{}}"},
        {500, "text/plain", "upstream broke"},
        {502, NULL, ""},
        {200, "application/json", "{\"access_token\":\"\xff\xfe\"}"},
    };
    fixture_t f = setup_ms(0);

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        msa_resp_answer_t a = {
            .status = cases[i].status, .content_type = cases[i].ct, .body = cases[i].body};
        msa_ms_tokens_t t;
        const char *err = NULL;
        msa_responder_push(f.r, &a);
        apr_status_t rv = msa_ms_redeem_code(f.h, pool, &f.c, CODE, NULL, &t, &err);
        ck_assert_msg(rv == MSA_EPROTO, "case %zu: %d", i, rv);
        ck_assert_msg(t.access_token == NULL, "case %zu", i);
        assert_clean_err(err);
    }
    ck_assert_int_eq(msa_responder_nrequests(f.r), sizeof(cases) / sizeof(cases[0]));
}
END_TEST

START_TEST(test_redeem_unreachable_and_too_big)
{
    msa_ms_tokens_t t;
    const char *err = NULL;
    fixture_t f = setup_ms(64);

    f.c.login_host = apr_psprintf(pool, "http://127.0.0.1:%d", msa_responder_dead_port(pool));
    ck_assert_int_eq(msa_ms_redeem_code(f.h, pool, &f.c, CODE, "v", &t, &err), MSA_EUNREACHABLE);
    assert_clean_err(err);
    ck_assert_ptr_nonnull(strstr(err, "token endpoint"));

    f.c.login_host = f.host;
    msa_responder_json(f.r, 200,
                       "{\"access_token\":\"a-token-longer-than-the-sixty-four-byte-cap-set-"
                       "above-for-this-test\"}");
    err = NULL;
    ck_assert_int_eq(msa_ms_redeem_code(f.h, pool, &f.c, CODE, "v", &t, &err), MSA_ETOOBIG);
    assert_clean_err(err);

    /* No code, no call. */
    ck_assert_int_eq(msa_ms_redeem_code(f.h, pool, &f.c, "", "v", &t, &err), APR_EINVAL);
    ck_assert_int_eq(msa_responder_nrequests(f.r), 1);
}
END_TEST

/* ---- Graph /me ---- */

static apr_status_t me(fixture_t *f, int status, const char *json, msa_ms_profile_t *pr,
                       const char **err)
{
    msa_responder_json(f->r, status, json);
    *err = NULL;
    return msa_ms_graph_me(f->h, pool, f->host, "AT-graph", pr, err);
}

START_TEST(test_graph_me_mapping)
{
    fixture_t f = setup_ms(0);
    msa_ms_profile_t pr;
    const char *err;

    ck_assert_int_eq(me(&f, 200,
                        "{\"@odata.context\":\"x\",\"id\":\"87d349ed-44d7-43e1-9a83-5f2406dee5bd\","
                        "\"displayName\":\"Adele Vance\",\"mail\":\"AdeleV@contoso.com\","
                        "\"userPrincipalName\":\"AdeleV@contoso.onmicrosoft.com\","
                        "\"givenName\":\"Adele\",\"surname\":\"Vance\"}",
                        &pr, &err),
                     APR_SUCCESS);
    ck_assert_str_eq(pr.id, "87d349ed-44d7-43e1-9a83-5f2406dee5bd");
    ck_assert_str_eq(pr.name, "Adele Vance");
    ck_assert_str_eq(pr.email, "AdeleV@contoso.com");
    ck_assert_str_eq(pr.upn, "AdeleV@contoso.onmicrosoft.com");
    const msa_resp_request_t *q = msa_responder_request(f.r, 0);
    ck_assert_str_eq(q->method, "GET");
    ck_assert_str_eq(q->target, "/v1.0/me");
    ck_assert_str_eq(msa_resp_header(pool, q, "Authorization"), "Bearer AT-graph");

    /* mail null: the UPN, which holds '@'. */
    ck_assert_int_eq(me(&f, 200,
                        "{\"id\":\"u2\",\"displayName\":null,\"mail\":null,"
                        "\"userPrincipalName\":\"bob@contoso.com\"}",
                        &pr, &err),
                     APR_SUCCESS);
    ck_assert_str_eq(pr.email, "bob@contoso.com");
    ck_assert_ptr_null(pr.name);
    ck_assert_str_eq(pr.upn, "bob@contoso.com");

    /* mail empty: the same. */
    ck_assert_int_eq(
        me(&f, 200, "{\"id\":\"u3\",\"mail\":\"\",\"userPrincipalName\":\"c@d.e\"}", &pr, &err),
        APR_SUCCESS);
    ck_assert_str_eq(pr.email, "c@d.e");

    /* A UPN without '@' is no email. */
    ck_assert_int_eq(me(&f, 200,
                        "{\"id\":\"0123456789abcdef\",\"displayName\":\"P\",\"mail\":null,"
                        "\"userPrincipalName\":\"live.com#p\"}",
                        &pr, &err),
                     APR_SUCCESS);
    ck_assert_ptr_null(pr.email);
    ck_assert_str_eq(pr.upn, "live.com#p");

    /* Only an id. */
    ck_assert_int_eq(me(&f, 200, "{\"id\":\"u5\"}", &pr, &err), APR_SUCCESS);
    ck_assert_str_eq(pr.id, "u5");
    ck_assert_ptr_null(pr.email);
    ck_assert_ptr_null(pr.upn);
    ck_assert_ptr_null(pr.name);

    /* A mail of the wrong type is dropped, not trusted. */
    ck_assert_int_eq(me(&f, 200,
                        "{\"id\":\"u6\",\"mail\":[\"x@y.z\"],\"userPrincipalName\":\"u@v.w\"}", &pr,
                        &err),
                     APR_SUCCESS);
    ck_assert_str_eq(pr.email, "u@v.w");
}
END_TEST

START_TEST(test_graph_me_failures)
{
    fixture_t f = setup_ms(0);
    msa_ms_profile_t pr;
    const char *err;

    ck_assert_int_eq(me(&f, 200, "{\"displayName\":\"No Id\"}", &pr, &err), MSA_EPROTO);
    ck_assert_ptr_nonnull(err);
    ck_assert_ptr_null(pr.id);
    ck_assert_int_eq(me(&f, 200, "{\"id\":\"\"}", &pr, &err), MSA_EPROTO);
    ck_assert_int_eq(me(&f, 200, "{\"id\":12345}", &pr, &err), MSA_EPROTO);
    ck_assert_int_eq(me(&f, 200, "{\"id\":null}", &pr, &err), MSA_EPROTO);
    ck_assert_int_eq(me(&f, 200, "<html/>", &pr, &err), MSA_EPROTO);
    ck_assert_int_eq(me(&f, 401,
                        "{\"error\":{\"code\":\"InvalidAuthenticationToken\","
                        "\"message\":\"Access token is empty.\"}}",
                        &pr, &err),
                     MSA_EDENIED);
    ck_assert_ptr_nonnull(err);
    ck_assert_ptr_null(strstr(err, "AT-graph"));
    ck_assert_int_eq(me(&f, 403, "{}", &pr, &err), MSA_EDENIED);
    ck_assert_int_eq(me(&f, 500, "{\"id\":\"u\"}", &pr, &err), MSA_EPROTO);
    ck_assert_int_eq(me(&f, 404, "", &pr, &err), MSA_EPROTO);

    f.host = apr_psprintf(pool, "http://127.0.0.1:%d", msa_responder_dead_port(pool));
    err = NULL;
    ck_assert_int_eq(msa_ms_graph_me(f.h, pool, f.host, "AT-graph", &pr, &err), MSA_EUNREACHABLE);
    ck_assert_ptr_nonnull(err);
    ck_assert_ptr_null(strstr(err, "AT-graph"));
}
END_TEST

/* ---- Graph /organization: the user's tenant ---- */

#define CONTOSO   "72f988bf-86f1-41af-91ab-2d7cd011db47"
#define FABRIKAM  "a1b2c3d4-0000-4000-8000-000000000001"
#define CONSUMERS MSA_MS_CONSUMERS_TID

static apr_status_t org(fixture_t *f, int status, const char *json, msa_ms_org_t *o,
                        const char **err)
{
    msa_responder_json(f->r, status, json);
    *err = NULL;
    return msa_ms_graph_tenant(f->h, pool, f->host, "AT-graph", CONTOSO, o, err);
}

START_TEST(test_graph_tenant)
{
    fixture_t f = setup_ms(0);
    msa_ms_org_t o;
    const char *err;

    ck_assert_int_eq(org(&f, 200,
                         "{\"@odata.context\":\"x\",\"value\":[{\"id\":\"" CONTOSO "\","
                         "\"verifiedDomains\":[{\"name\":\"contoso.com\",\"isDefault\":true},"
                         "{\"name\":\"contoso.onmicrosoft.com\"},{\"name\":7},{\"x\":1},"
                         "{\"name\":\"not a domain\"}]}]}",
                         &o, &err),
                     APR_SUCCESS);
    ck_assert_str_eq(o.tid, CONTOSO);
    ck_assert_int_eq(o.domains->nelts, 2);
    ck_assert_str_eq(APR_ARRAY_IDX(o.domains, 1, const char *), "contoso.onmicrosoft.com");
    const msa_resp_request_t *q = msa_responder_request(f.r, 0);
    ck_assert_str_eq(q->target, "/v1.0/organization?$select=id,verifiedDomains");
    ck_assert_str_eq(msa_resp_header(pool, q, "Authorization"), "Bearer AT-graph");

    /* Graph names no single organization with a tenant id: unknown, never a guess. */
    ck_assert_int_eq(org(&f, 200, "{\"value\":[]}", &o, &err), APR_NOTFOUND);
    ck_assert_ptr_nonnull(err);
    ck_assert_ptr_null(o.tid);
    ck_assert_int_eq(org(&f, 200, "{\"value\":[{\"id\":\"x\"}]}", &o, &err), APR_NOTFOUND);
    ck_assert_int_eq(
        org(&f, 200, "{\"value\":[{\"id\":\"" CONTOSO "\"},{\"id\":\"" FABRIKAM "\"}]}", &o, &err),
        APR_NOTFOUND);
    ck_assert_int_eq(org(&f, 200, "{}", &o, &err), APR_NOTFOUND);
    ck_assert_int_eq(org(&f, 400, "{\"error\":{\"code\":\"Request_BadRequest\"}}", &o, &err),
                     APR_NOTFOUND);
    ck_assert_int_eq(org(&f, 403, "{}", &o, &err), APR_NOTFOUND);
    ck_assert_int_eq(org(&f, 500, "{}", &o, &err), APR_NOTFOUND);
    ck_assert_int_eq(org(&f, 401, "{}", &o, &err), MSA_EDENIED);
    ck_assert_ptr_null(strstr(err, "AT-graph"));

    /* A personal account (Graph's 16-hex-digit id) is the consumers tenant, without a call. */
    int before = msa_responder_nrequests(f.r);
    ck_assert_int_eq(
        msa_ms_graph_tenant(f.h, pool, f.host, "AT-graph", "7c7e6eb46df66116", &o, &err),
        APR_SUCCESS);
    ck_assert_str_eq(o.tid, CONSUMERS);
    ck_assert_int_eq(o.domains->nelts, 0);
    ck_assert_int_eq(msa_responder_nrequests(f.r), before);

    f.host = apr_psprintf(pool, "http://127.0.0.1:%d", msa_responder_dead_port(pool));
    ck_assert_int_eq(msa_ms_graph_tenant(f.h, pool, f.host, "AT-graph", CONTOSO, &o, &err),
                     MSA_EUNREACHABLE);
}
END_TEST

static apr_array_header_t *list(const char *a, const char *b)
{
    apr_array_header_t *l = apr_array_make(pool, 2, sizeof(const char *));
    APR_ARRAY_PUSH(l, const char *) = a;
    if (b != NULL) {
        APR_ARRAY_PUSH(l, const char *) = b;
    }
    return l;
}

START_TEST(test_one_tenant_and_domains)
{
    apr_array_header_t *contoso = list(CONTOSO, NULL), *two = list(CONTOSO, FABRIKAM);
    apr_array_header_t *doms = list("contoso.com", "contoso.onmicrosoft.com");

    /* One organisation only. */
    ck_assert(msa_ms_tenant_single(CONTOSO, NULL));
    ck_assert(msa_ms_tenant_single("contoso.com", NULL));
    ck_assert(msa_ms_tenant_single("organizations", contoso));
    ck_assert(msa_ms_tenant_single("common", contoso));
    ck_assert(!msa_ms_tenant_single("common", two));
    ck_assert(!msa_ms_tenant_single("common", NULL));
    ck_assert(!msa_ms_tenant_single("organizations", NULL));
    ck_assert(!msa_ms_tenant_single("consumers", NULL));
    ck_assert(!msa_ms_tenant_single(CONSUMERS, NULL));
    ck_assert(!msa_ms_tenant_single("common", list(CONSUMERS, NULL)));
    /* Addresses and domains in verified domains. */
    ck_assert(msa_ms_domain_in("CONTOSO.com", doms));
    ck_assert(!msa_ms_domain_in("fabrikam.com", doms));
    ck_assert(!msa_ms_domain_in("", doms));
    ck_assert(msa_ms_address_in("Alice@Contoso.com", doms));
    ck_assert(msa_ms_address_in("dave_gmail.com#EXT#@contoso.onmicrosoft.com", doms));
    ck_assert(!msa_ms_address_in("alice@contoso.com.evil", doms));
    ck_assert(!msa_ms_address_in("alice@evil.com", doms));
    ck_assert(!msa_ms_address_in("contoso.com", doms));
    ck_assert(!msa_ms_address_in("alice@", doms));
    ck_assert(!msa_ms_address_in(NULL, doms));
    ck_assert(!msa_ms_address_in("alice@contoso.com", NULL));
}
END_TEST

/* ---- Graph groups ---- */

START_TEST(test_graph_groups_paging)
{
    fixture_t f = setup_ms(0);
    apr_array_header_t *ids = NULL;
    const char *err = NULL;

    msa_responder_json(
        f.r, 200,
        apr_psprintf(pool,
                     "{\"value\":[{\"@odata.type\":\"#microsoft.graph.group\",\"id\":\"g1\"},"
                     "{\"@odata.type\":\"#microsoft.graph.directoryRole\",\"id\":\"g2\"}],"
                     "\"@odata.nextLink\":\"%s/v1.0/me/transitiveMemberOf?$select=id&"
                     "$skiptoken=p2\"}",
                     f.host));
    msa_responder_json(f.r, 200,
                       apr_psprintf(pool,
                                    "{\"value\":[{\"id\":\"g3\"}],\"@odata.nextLink\":\"%s/v1.0/"
                                    "me/transitiveMemberOf?$select=id&$skiptoken=p3\"}",
                                    f.host));
    msa_responder_json(f.r, 200, "{\"value\":[{\"id\":\"g4\"}]}");
    msa_responder_json(f.r, 200, "{\"value\":[{\"id\":\"never\"}]}");

    ck_assert_int_eq(msa_ms_graph_groups(f.h, pool, f.host, "AT-g", 100, &ids, &err), APR_SUCCESS);
    ck_assert_int_eq(ids->nelts, 4);
    ck_assert_str_eq(APR_ARRAY_IDX(ids, 0, const char *), "g1");
    ck_assert_str_eq(APR_ARRAY_IDX(ids, 1, const char *), "g2");
    ck_assert_str_eq(APR_ARRAY_IDX(ids, 2, const char *), "g3");
    ck_assert_str_eq(APR_ARRAY_IDX(ids, 3, const char *), "g4");
    ck_assert_int_eq(msa_responder_nrequests(f.r), 3);
    const msa_resp_request_t *q0 = msa_responder_request(f.r, 0);
    ck_assert_str_eq(q0->target, "/v1.0/me/transitiveMemberOf?$select=id&$top=999");
    ck_assert_str_eq(msa_resp_header(pool, q0, "Authorization"), "Bearer AT-g");
    ck_assert_str_eq(msa_responder_request(f.r, 1)->target,
                     "/v1.0/me/transitiveMemberOf?$select=id&$skiptoken=p2");
    ck_assert_str_eq(msa_responder_request(f.r, 2)->target,
                     "/v1.0/me/transitiveMemberOf?$select=id&$skiptoken=p3");
    ck_assert_str_eq(msa_resp_header(pool, msa_responder_request(f.r, 2), "Authorization"),
                     "Bearer AT-g");
}
END_TEST

START_TEST(test_graph_groups_foreign_next_link)
{
    fixture_t f = setup_ms(0);
    apr_array_header_t *ids = NULL;
    const char *err = NULL;

    /* Another host altogether. */
    msa_responder_json(f.r, 200,
                       "{\"value\":[{\"id\":\"g1\"}],\"@odata.nextLink\":"
                       "\"https://evil.example/v1.0/me/transitiveMemberOf?$skiptoken=x\"}");
    /* Not followed, and the list it would complete is no list: the login fails. */
    ck_assert_int_eq(msa_ms_graph_groups(f.h, pool, f.host, "AT-g", 100, &ids, &err), MSA_EPROTO);
    ck_assert_ptr_nonnull(strstr(err, "nextLink off the Graph host"));
    ck_assert_ptr_null(strstr(err, "evil"));
    ck_assert_int_eq(msa_responder_nrequests(f.r), 1);

    /* The Graph host as a mere prefix of another authority (":<port>0", ".evil"). */
    msa_responder_json(f.r, 200,
                       apr_psprintf(pool,
                                    "{\"value\":[{\"id\":\"g1\"}],\"@odata.nextLink\":"
                                    "\"%s0/v1.0/me/transitiveMemberOf?$skiptoken=x\"}",
                                    f.host));
    ck_assert_int_eq(msa_ms_graph_groups(f.h, pool, f.host, "AT-g", 100, &ids, &err), MSA_EPROTO);
    msa_responder_json(f.r, 200,
                       apr_psprintf(pool,
                                    "{\"value\":[{\"id\":\"g1\"}],\"@odata.nextLink\":"
                                    "\"%s.evil.example/v1.0/x\"}",
                                    f.host));
    ck_assert_int_eq(msa_ms_graph_groups(f.h, pool, f.host, "AT-g", 100, &ids, &err), MSA_EPROTO);
    /* A nextLink that is not a string. */
    msa_responder_json(f.r, 200, "{\"value\":[{\"id\":\"g1\"}],\"@odata.nextLink\":7}");
    ck_assert_int_eq(msa_ms_graph_groups(f.h, pool, f.host, "AT-g", 100, &ids, &err), MSA_EPROTO);
    /* null is no link: the list ends there. */
    msa_responder_json(f.r, 200, "{\"value\":[{\"id\":\"g1\"}],\"@odata.nextLink\":null}");
    ck_assert_int_eq(msa_ms_graph_groups(f.h, pool, f.host, "AT-g", 100, &ids, &err), APR_SUCCESS);
    ck_assert_int_eq(ids->nelts, 1);
    ck_assert_int_eq(msa_responder_nrequests(f.r), 5);
}
END_TEST

START_TEST(test_graph_groups_limits)
{
    fixture_t f = setup_ms(0);
    apr_array_header_t *ids = NULL;
    const char *err = NULL;
    const char *page = apr_psprintf(pool,
                                    "{\"value\":[{\"id\":\"a\"},{\"id\":\"b\"}],"
                                    "\"@odata.nextLink\":\"%s/v1.0/me/transitiveMemberOf?n\"}",
                                    f.host);

    /* Past max_ids the list fails rather than being cut: no third request. */
    for (int i = 0; i < 3; i++) {
        msa_responder_json(f.r, 200, page);
    }
    ck_assert_int_eq(msa_ms_graph_groups(f.h, pool, f.host, "AT", 3, &ids, &err), MSA_ETOOBIG);
    ck_assert_ptr_nonnull(strstr(err, "more than 3 groups"));
    ck_assert_int_le(ids->nelts, 3);
    ck_assert_int_eq(msa_responder_nrequests(f.r), 2);

    /* Exactly max_ids is a whole list. */
    msa_responder_stop(f.r);
    f = setup_ms(0);
    msa_responder_json(f.r, 200,
                       apr_psprintf(pool,
                                    "{\"value\":[{\"id\":\"a\"},{\"id\":\"b\"}],"
                                    "\"@odata.nextLink\":\"%s/v1.0/me/"
                                    "transitiveMemberOf?n\"}",
                                    f.host));
    msa_responder_json(f.r, 200, "{\"value\":[{\"id\":\"c\"}]}");
    ck_assert_int_eq(msa_ms_graph_groups(f.h, pool, f.host, "AT", 3, &ids, &err), APR_SUCCESS);
    ck_assert_int_eq(ids->nelts, 3);

    /* An endless chain fails after MSA_MS_MAX_GROUP_PAGES pages. */
    msa_responder_stop(f.r);
    f = setup_ms(0);
    page = apr_psprintf(pool,
                        "{\"value\":[{\"id\":\"a\"}],"
                        "\"@odata.nextLink\":\"%s/v1.0/me/transitiveMemberOf?n\"}",
                        f.host);
    for (int i = 0; i < MSA_MS_MAX_GROUP_PAGES + 10; i++) {
        msa_responder_json(f.r, 200, page);
    }
    ck_assert_int_eq(msa_ms_graph_groups(f.h, pool, f.host, "AT", 1000, &ids, &err), MSA_ETOOBIG);
    ck_assert_ptr_nonnull(strstr(err, "more than 200 pages"));
    ck_assert_int_eq(msa_responder_nrequests(f.r), MSA_MS_MAX_GROUP_PAGES);
}
END_TEST

START_TEST(test_graph_groups_failures)
{
    fixture_t f = setup_ms(0);
    apr_array_header_t *ids = NULL;
    const char *err = NULL;

    msa_responder_json(f.r, 200, "{\"value\":[{\"id\":\"g1\"},{\"id\":7}]}");
    ck_assert_int_eq(msa_ms_graph_groups(f.h, pool, f.host, "AT", 100, &ids, &err), MSA_EPROTO);
    ck_assert_ptr_nonnull(err);
    msa_responder_json(f.r, 200, "{\"value\":[\"g1\"]}");
    ck_assert_int_eq(msa_ms_graph_groups(f.h, pool, f.host, "AT", 100, &ids, &err), MSA_EPROTO);
    msa_responder_json(f.r, 200, "{\"value\":{}}");
    ck_assert_int_eq(msa_ms_graph_groups(f.h, pool, f.host, "AT", 100, &ids, &err), MSA_EPROTO);
    msa_responder_json(f.r, 200, "{\"nothing\":1}");
    ck_assert_int_eq(msa_ms_graph_groups(f.h, pool, f.host, "AT", 100, &ids, &err), MSA_EPROTO);
    msa_responder_json(f.r, 401, "{\"error\":{\"code\":\"InvalidAuthenticationToken\"}}");
    ck_assert_int_eq(msa_ms_graph_groups(f.h, pool, f.host, "AT", 100, &ids, &err), MSA_EDENIED);
    msa_responder_json(f.r, 403, "{}");
    ck_assert_int_eq(msa_ms_graph_groups(f.h, pool, f.host, "AT", 100, &ids, &err), MSA_EDENIED);

    /* A failure on a later page fails the whole list. */
    msa_responder_json(f.r, 200,
                       apr_psprintf(pool,
                                    "{\"value\":[{\"id\":\"g1\"}],\"@odata.nextLink\":"
                                    "\"%s/v1.0/me/transitiveMemberOf?p2\"}",
                                    f.host));
    msa_responder_json(f.r, 503, "{}");
    ck_assert_int_eq(msa_ms_graph_groups(f.h, pool, f.host, "AT", 100, &ids, &err), MSA_EPROTO);

    /* A nextLink on the Graph host that is no URL curl accepts. */
    msa_responder_json(f.r, 200,
                       apr_psprintf(pool,
                                    "{\"value\":[{\"id\":\"g1\"}],\"@odata.nextLink\":"
                                    "\"%s/v1.0/me/transitive MemberOf\"}",
                                    f.host));
    ck_assert_int_eq(msa_ms_graph_groups(f.h, pool, f.host, "AT", 100, &ids, &err), MSA_EPROTO);

    /* An empty list is a list. */
    msa_responder_json(f.r, 200, "{\"value\":[]}");
    ck_assert_int_eq(msa_ms_graph_groups(f.h, pool, f.host, "AT", 100, &ids, &err), APR_SUCCESS);
    ck_assert_int_eq(ids->nelts, 0);
}
END_TEST

/* ---- JWKS ---- */

START_TEST(test_fetch_jwks)
{
    fixture_t f = setup_ms(0);
    char *jwks = NULL;
    const char *err = NULL;
    const char *doc = "{\"keys\":[{\"kty\":\"RSA\",\"use\":\"sig\",\"kid\":\"k1\",\"n\":\"AQAB\","
                      "\"e\":\"AQAB\",\"x5c\":[\"MIIC\"]}]}";

    msa_responder_json(f.r, 200, doc);
    ck_assert_int_eq(msa_ms_fetch_jwks(f.h, pool, &f.c, &jwks, &err), APR_SUCCESS);
    ck_assert_str_eq(jwks, doc);
    const msa_resp_request_t *q = msa_responder_request(f.r, 0);
    ck_assert_str_eq(q->method, "GET");
    ck_assert_str_eq(q->target, "/common/discovery/v2.0/keys");
    ck_assert_ptr_null(msa_resp_header(pool, q, "Authorization"));

    static const char *const bad[] = {
        "{\"nokeys\":[]}", "{\"keys\":{}}", "[]", "<html/>", "", "{\"keys\":[]",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        msa_responder_json(f.r, 200, bad[i]);
        err = NULL;
        ck_assert_msg(msa_ms_fetch_jwks(f.h, pool, &f.c, &jwks, &err) == MSA_EPROTO, "case %zu", i);
        ck_assert_ptr_null(jwks);
        ck_assert_ptr_nonnull(err);
    }
    msa_responder_json(f.r, 404, doc);
    ck_assert_int_eq(msa_ms_fetch_jwks(f.h, pool, &f.c, &jwks, &err), MSA_EPROTO);

    f.c.login_host = apr_psprintf(pool, "http://127.0.0.1:%d", msa_responder_dead_port(pool));
    ck_assert_int_eq(msa_ms_fetch_jwks(f.h, pool, &f.c, &jwks, &err), MSA_EUNREACHABLE);
}
END_TEST

/* ---- pure functions ---- */

START_TEST(test_scope_has_user_read)
{
    ck_assert(msa_ms_scope_has_user_read("User.Read"));
    ck_assert(msa_ms_scope_has_user_read("user.read"));
    ck_assert(msa_ms_scope_has_user_read("USER.READ"));
    ck_assert(msa_ms_scope_has_user_read("https://graph.microsoft.com/user.read"));
    ck_assert(msa_ms_scope_has_user_read("https://graph.microsoft.com/User.Read"));
    ck_assert(msa_ms_scope_has_user_read("HTTPS://GRAPH.MICROSOFT.COM/User.Read"));
    ck_assert(msa_ms_scope_has_user_read("https://graph.microsoft.com/user.read openid"));
    ck_assert(msa_ms_scope_has_user_read("openid profile email User.Read"));
    ck_assert(msa_ms_scope_has_user_read("  openid   User.Read  "));

    ck_assert(!msa_ms_scope_has_user_read(NULL));
    ck_assert(!msa_ms_scope_has_user_read(""));
    ck_assert(!msa_ms_scope_has_user_read("openid profile"));
    ck_assert(!msa_ms_scope_has_user_read("User.ReadWrite"));
    ck_assert(!msa_ms_scope_has_user_read("User.ReadBasic.All"));
    ck_assert(!msa_ms_scope_has_user_read("User.Read.All"));
    ck_assert(!msa_ms_scope_has_user_read("xUser.Read"));
    ck_assert(!msa_ms_scope_has_user_read("https://graph.microsoft.com//User.Read"));
    ck_assert(!msa_ms_scope_has_user_read("https://graph.microsoft.com/"));
    ck_assert(!msa_ms_scope_has_user_read("https://evil.example/User.Read"));
    ck_assert(!msa_ms_scope_has_user_read("api://graph.microsoft.com/User.Read"));
}
END_TEST

START_TEST(test_tenant_valid)
{
    char long_label[80], long_name[300];

    ck_assert(msa_ms_tenant_valid("common"));
    ck_assert(msa_ms_tenant_valid("COMMON"));
    ck_assert(msa_ms_tenant_valid("Organizations"));
    ck_assert(msa_ms_tenant_valid("consumers"));
    ck_assert(msa_ms_tenant_valid("9188040d-6c67-4c5b-b112-36a304b66dad"));
    ck_assert(msa_ms_tenant_valid("9188040D-6C67-4C5B-B112-36A304B66DAD"));
    ck_assert(msa_ms_tenant_valid("contoso.onmicrosoft.com"));
    ck_assert(msa_ms_tenant_valid("contoso.com"));
    ck_assert(msa_ms_tenant_valid("my-org.example.co.uk"));
    ck_assert(msa_ms_tenant_valid("x1.y2"));

    ck_assert(!msa_ms_tenant_valid(NULL));
    ck_assert(!msa_ms_tenant_valid(""));
    ck_assert(!msa_ms_tenant_valid("contoso"));
    ck_assert(!msa_ms_tenant_valid("commonx"));
    ck_assert(!msa_ms_tenant_valid("-bad.com"));
    ck_assert(!msa_ms_tenant_valid("bad-.com"));
    ck_assert(!msa_ms_tenant_valid("bad.-com"));
    ck_assert(!msa_ms_tenant_valid("a..b"));
    ck_assert(!msa_ms_tenant_valid("a.b."));
    ck_assert(!msa_ms_tenant_valid(".a.b"));
    ck_assert(!msa_ms_tenant_valid("a_b.com"));
    ck_assert(!msa_ms_tenant_valid("con mon.com"));
    ck_assert(!msa_ms_tenant_valid("x.com/evil"));
    ck_assert(!msa_ms_tenant_valid("common/../x"));
    ck_assert(!msa_ms_tenant_valid("x.com?a=b"));
    ck_assert(!msa_ms_tenant_valid("9188040d-6c67-4c5b-b112-36a304b66da"));
    ck_assert(!msa_ms_tenant_valid("9188040d-6c67-4c5b-b112-36a304b66dag"));
    ck_assert(!msa_ms_tenant_valid("9188040d6c674c5bb11236a304b66dad0000"));
    ck_assert(!msa_ms_tenant_valid("caf\xc3\xa9.com"));

    /* A label of 63 characters passes, 64 do not. */
    memset(long_label, 'a', 63);
    strcpy(long_label + 63, ".com");
    ck_assert(msa_ms_tenant_valid(long_label));
    memset(long_label, 'a', 64);
    strcpy(long_label + 64, ".com");
    ck_assert(!msa_ms_tenant_valid(long_label));

    /* 253 characters pass, 254 do not. */
    memset(long_name, 'a', sizeof(long_name));
    for (int i = 50; i < 253; i += 51) {
        long_name[i] = '.';
    }
    long_name[253] = '\0';
    ck_assert(msa_ms_tenant_valid(long_name));
    long_name[253] = 'a';
    long_name[254] = '\0';
    ck_assert(!msa_ms_tenant_valid(long_name));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("msa_ms");
    TCase *tc = msa_test_case("ms");
    tcase_add_test(tc, test_authorize_url_plain);
    tcase_add_test(tc, test_authorize_url_pkce_nonce);
    tcase_add_test(tc, test_authorize_url_claims);
    tcase_add_test(tc, test_redeem_sends_claims);
    tcase_add_test(tc, test_logout_and_jwks_url);
    tcase_add_test(tc, test_redeem_success);
    tcase_add_test(tc, test_redeem_string_expiry_no_id_token);
    tcase_add_test(tc, test_redeem_microsoft_error);
    tcase_add_test(tc, test_refresh_rotates_and_refusals);
    tcase_add_test(tc, test_redeem_bad_answers);
    tcase_add_test(tc, test_redeem_unreachable_and_too_big);
    tcase_add_test(tc, test_graph_me_mapping);
    tcase_add_test(tc, test_graph_tenant);
    tcase_add_test(tc, test_one_tenant_and_domains);
    tcase_add_test(tc, test_graph_me_failures);
    tcase_add_test(tc, test_graph_groups_paging);
    tcase_add_test(tc, test_graph_groups_foreign_next_link);
    tcase_add_test(tc, test_graph_groups_limits);
    tcase_add_test(tc, test_graph_groups_failures);
    tcase_add_test(tc, test_fetch_jwks);
    tcase_add_test(tc, test_scope_has_user_read);
    tcase_add_test(tc, test_tenant_valid);
    suite_add_tcase(s, tc);
    return msa_test_run(s);
}
