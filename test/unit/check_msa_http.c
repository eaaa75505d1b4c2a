/* Unit tests of the HTTP client against the loopback responder. */
#include <pthread.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <apr_strings.h>
#include <apr_time.h>

#include "msa_http.h"
#include "msa_responder.h"
#include "msa_test.h"

static msa_http_t *new_client(const msa_http_opts_t *opts)
{
    msa_http_t *h = NULL;
    ck_assert_int_eq(msa_http_global_init(), APR_SUCCESS);
    ck_assert_int_eq(msa_http_create(&h, pool, opts), APR_SUCCESS);
    ck_assert_ptr_nonnull(h);
    return h;
}

static msa_responder_t *new_responder(void)
{
    msa_responder_t *r = msa_responder_start(pool);
    ck_assert_ptr_nonnull(r);
    return r;
}

/* The error text must never carry the query string (it may hold a code). */
static void assert_no_query(const char *err)
{
    ck_assert_ptr_nonnull(err);
    ck_assert_ptr_null(strstr(err, "SECRET"));
    ck_assert_ptr_null(strchr(err, '?'));
}

START_TEST(test_get_round_trip)
{
    msa_responder_t *r = new_responder();
    msa_http_t *h = new_client(NULL);
    msa_http_response_t resp;
    const char *err = NULL;

    msa_responder_json(r, 200, "{\"a\":1}");
    apr_status_t rv = msa_http_call(h, pool, msa_responder_url(r, pool, "/v1.0/me?x=1&y=%20"),
                                    "tok-123", NULL, NULL, NULL, &resp, &err);
    ck_assert_int_eq(rv, APR_SUCCESS);
    ck_assert_ptr_null(err);
    ck_assert_int_eq(resp.status, 200);
    ck_assert_str_eq(resp.content_type, "application/json");
    ck_assert_str_eq(resp.body, "{\"a\":1}");
    ck_assert_uint_eq(resp.body_len, 7);

    ck_assert_int_eq(msa_responder_nrequests(r), 1);
    const msa_resp_request_t *q = msa_responder_request(r, 0);
    ck_assert_str_eq(q->method, "GET");
    ck_assert_str_eq(q->target, "/v1.0/me?x=1&y=%20");
    ck_assert_str_eq(msa_resp_header(pool, q, "Authorization"), "Bearer tok-123");
    ck_assert_str_eq(msa_resp_header(pool, q, "Accept"), "application/json");
    const char *ua = msa_resp_header(pool, q, "User-Agent");
    ck_assert_ptr_nonnull(ua);
    ck_assert_int_eq(strncmp(ua, "mod_msauth/", 11), 0);
    ck_assert_ptr_null(msa_resp_header(pool, q, "Content-Type"));
    ck_assert_uint_eq(q->body_len, 0);
}
END_TEST

START_TEST(test_post_form)
{
    msa_responder_t *r = new_responder();
    msa_http_t *h = new_client(NULL);
    msa_http_response_t resp;
    const char *err = NULL;

    msa_responder_json(r, 200, "{}");
    apr_status_t rv = msa_http_call(h, pool, msa_responder_url(r, pool, "/t/oauth2/v2.0/token"),
                                    NULL, "a=1&b=x%20y", NULL, NULL, &resp, &err);
    ck_assert_int_eq(rv, APR_SUCCESS);
    const msa_resp_request_t *q = msa_responder_request(r, 0);
    ck_assert_ptr_nonnull(q);
    ck_assert_str_eq(q->method, "POST");
    ck_assert_str_eq(q->target, "/t/oauth2/v2.0/token");
    ck_assert_str_eq(q->body, "a=1&b=x%20y");
    ck_assert_str_eq(msa_resp_header(pool, q, "Content-Type"), "application/x-www-form-urlencoded");
    ck_assert_str_eq(msa_resp_header(pool, q, "Accept"), "application/json");
    ck_assert_ptr_null(msa_resp_header(pool, q, "Authorization"));
}
END_TEST

/* A large body must not make curl wait for "100 Continue" (a 1 s stall). */
START_TEST(test_post_large_no_expect)
{
    msa_responder_t *r = new_responder();
    msa_http_t *h = new_client(NULL);
    msa_http_response_t resp;
    const char *err = NULL;
    enum { LEN = 1100 * 1024 }; /* above curl's threshold for Expect (1 KiB, later 1 MiB) */
    char *form = apr_palloc(pool, LEN + 1);
    memset(form, 'c', LEN);
    form[0] = 'x';
    form[1] = '=';
    form[LEN] = '\0';

    msa_responder_json(r, 200, "{}");
    ck_assert_int_eq(msa_http_call(h, pool, msa_responder_url(r, pool, "/token"), NULL, form, NULL,
                                   NULL, &resp, &err),
                     APR_SUCCESS);
    const msa_resp_request_t *q = msa_responder_request(r, 0);
    ck_assert_uint_eq(q->body_len, LEN);
    ck_assert_str_eq(q->body, form);
    ck_assert_ptr_null(msa_resp_header(pool, q, "Expect"));
}
END_TEST

START_TEST(test_basic_auth)
{
    msa_responder_t *r = new_responder();
    msa_http_t *h = new_client(NULL);
    msa_http_response_t resp;
    const char *err = NULL;

    msa_responder_json(r, 200, "{}");
    ck_assert_int_eq(msa_http_call(h, pool, msa_responder_url(r, pool, "/token"), NULL, "a=b",
                                   "client", "s3cret", &resp, &err),
                     APR_SUCCESS);
    const msa_resp_request_t *q = msa_responder_request(r, 0);
    ck_assert_str_eq(msa_resp_header(pool, q, "Authorization"), "Basic Y2xpZW50OnMzY3JldA==");

    /* Bearer and basic together make no sense: refused before any traffic. */
    ck_assert_int_eq(msa_http_call(h, pool, msa_responder_url(r, pool, "/token"), "tok", NULL,
                                   "client", "s3cret", &resp, &err),
                     APR_EINVAL);
    ck_assert_int_eq(msa_responder_nrequests(r), 1);
}
END_TEST

START_TEST(test_connection_reuse)
{
    msa_responder_t *r = new_responder();
    msa_http_t *h = new_client(NULL);
    msa_http_response_t resp;
    const char *err = NULL;

    msa_responder_json(r, 200, "{\"n\":1}");
    msa_responder_json(r, 200, "{\"n\":2}");
    msa_responder_json(r, 200, "{\"n\":3}");
    ck_assert_int_eq(msa_http_call(h, pool, msa_responder_url(r, pool, "/a"), NULL, NULL, NULL,
                                   NULL, &resp, &err),
                     APR_SUCCESS);
    ck_assert_str_eq(resp.body, "{\"n\":1}");
    ck_assert_int_eq(msa_http_call(h, pool, msa_responder_url(r, pool, "/b"), "tok", NULL, NULL,
                                   NULL, &resp, &err),
                     APR_SUCCESS);
    ck_assert_str_eq(resp.body, "{\"n\":2}");
    ck_assert_int_eq(msa_responder_nrequests(r), 2);
    ck_assert_int_eq(msa_responder_connections(r), 1);

    /* A POST after GETs rides the same connection, and the bearer does not linger. */
    ck_assert_int_eq(msa_http_call(h, pool, msa_responder_url(r, pool, "/c"), NULL, "x=1", NULL,
                                   NULL, &resp, &err),
                     APR_SUCCESS);
    ck_assert_str_eq(resp.body, "{\"n\":3}");
    ck_assert_int_eq(msa_responder_connections(r), 1);
    ck_assert_ptr_null(msa_resp_header(pool, msa_responder_request(r, 2), "Authorization"));
    ck_assert_str_eq(msa_responder_request(r, 2)->method, "POST");
}
END_TEST

START_TEST(test_status_passthrough)
{
    msa_responder_t *r = new_responder();
    msa_http_t *h = new_client(NULL);
    msa_http_response_t resp;
    const char *err = NULL;
    msa_resp_answer_t a = {.status = 404, .content_type = "text/html", .body = "<html>no</html>"};

    msa_responder_push(r, &a);
    ck_assert_int_eq(msa_http_call(h, pool, msa_responder_url(r, pool, "/x"), NULL, NULL, NULL,
                                   NULL, &resp, &err),
                     APR_SUCCESS);
    ck_assert_int_eq(resp.status, 404);
    ck_assert_str_eq(resp.content_type, "text/html");
    ck_assert_str_eq(resp.body, "<html>no</html>");

    /* An empty body is "" (never NULL), and no content type is NULL. */
    a = (msa_resp_answer_t){.status = 204};
    msa_responder_push(r, &a);
    ck_assert_int_eq(msa_http_call(h, pool, msa_responder_url(r, pool, "/y"), NULL, NULL, NULL,
                                   NULL, &resp, &err),
                     APR_SUCCESS);
    ck_assert_int_eq(resp.status, 204);
    ck_assert_ptr_nonnull(resp.body);
    ck_assert_str_eq(resp.body, "");
    ck_assert_uint_eq(resp.body_len, 0);
    ck_assert_ptr_null(resp.content_type);
}
END_TEST

START_TEST(test_redirect_not_followed)
{
    msa_responder_t *r = new_responder();
    msa_http_t *h = new_client(NULL);
    msa_http_response_t resp;
    const char *err = NULL;
    msa_resp_answer_t a = {
        .status = 302,
        .headers = apr_pstrcat(pool, "Location: ", msa_responder_url(r, pool, "/elsewhere"), "\r\n",
                               NULL)};

    msa_responder_push(r, &a);
    msa_responder_json(r, 200, "{}");
    ck_assert_int_eq(msa_http_call(h, pool, msa_responder_url(r, pool, "/x"), NULL, NULL, NULL,
                                   NULL, &resp, &err),
                     APR_SUCCESS);
    ck_assert_int_eq(resp.status, 302);
    ck_assert_int_eq(msa_responder_nrequests(r), 1);
}
END_TEST

START_TEST(test_size_cap)
{
    msa_responder_t *r = new_responder();
    msa_http_opts_t o = {.max_response = 1000};
    msa_http_t *h = new_client(&o);
    msa_http_response_t resp;
    const char *err = NULL;
    char *big = apr_palloc(pool, 5001);
    memset(big, 'x', 5000);
    big[5000] = '\0';

    /* Announced by Content-Length. */
    msa_resp_answer_t a = {.body = big};
    msa_responder_push(r, &a);
    ck_assert_int_eq(msa_http_call(h, pool, msa_responder_url(r, pool, "/a?code=SECRET"), NULL,
                                   NULL, NULL, NULL, &resp, &err),
                     MSA_ETOOBIG);
    assert_no_query(err);

    /* Not announced: the body just keeps coming until the connection closes. */
    a = (msa_resp_answer_t){.body = big, .no_length = 1};
    msa_responder_push(r, &a);
    err = NULL;
    ck_assert_int_eq(msa_http_call(h, pool, msa_responder_url(r, pool, "/b"), NULL, NULL, NULL,
                                   NULL, &resp, &err),
                     MSA_ETOOBIG);
    ck_assert_ptr_nonnull(err);

    /* Exactly at the cap is fine, with or without a length. */
    a = (msa_resp_answer_t){.body = big, .body_len = 1000};
    msa_responder_push(r, &a);
    ck_assert_int_eq(msa_http_call(h, pool, msa_responder_url(r, pool, "/c"), NULL, NULL, NULL,
                                   NULL, &resp, &err),
                     APR_SUCCESS);
    ck_assert_uint_eq(resp.body_len, 1000);
    ck_assert_uint_eq(strlen(resp.body), 1000);
    a = (msa_resp_answer_t){.body = big, .body_len = 1000, .no_length = 1};
    msa_responder_push(r, &a);
    ck_assert_int_eq(msa_http_call(h, pool, msa_responder_url(r, pool, "/d"), NULL, NULL, NULL,
                                   NULL, &resp, &err),
                     APR_SUCCESS);
    ck_assert_uint_eq(resp.body_len, 1000);

    /* 0 means the default cap of 1 MiB. */
    msa_http_t *h2 = new_client(NULL);
    a = (msa_resp_answer_t){.body = big};
    msa_responder_push(r, &a);
    ck_assert_int_eq(msa_http_call(h2, pool, msa_responder_url(r, pool, "/e"), NULL, NULL, NULL,
                                   NULL, &resp, &err),
                     APR_SUCCESS);
    ck_assert_uint_eq(resp.body_len, 5000);
}
END_TEST

START_TEST(test_timeout)
{
    msa_responder_t *r = new_responder();
    msa_http_opts_t o = {.timeout = 1, .connect_timeout = 1};
    msa_http_t *h = new_client(&o);
    msa_http_response_t resp;
    const char *err = NULL;
    msa_resp_answer_t a = {.body = "{}", .delay_ms = 3000};

    msa_responder_push(r, &a);
    apr_time_t t0 = apr_time_now();
    ck_assert_int_eq(msa_http_call(h, pool, msa_responder_url(r, pool, "/slow?code=SECRET"), NULL,
                                   NULL, NULL, NULL, &resp, &err),
                     MSA_EUNREACHABLE);
    apr_time_t took = apr_time_now() - t0;
    ck_assert_int_ge(took, apr_time_from_msec(900));
    ck_assert_int_lt(took, apr_time_from_sec(2));
    assert_no_query(err);
}
END_TEST

START_TEST(test_connection_refused)
{
    int port = msa_responder_dead_port(pool);
    ck_assert_int_gt(port, 0);
    msa_http_t *h = new_client(NULL);
    msa_http_response_t resp;
    const char *err = NULL;

    ck_assert_int_eq(
        msa_http_call(h, pool, apr_psprintf(pool, "http://127.0.0.1:%d/token?code=SECRET", port),
                      NULL, "code=SECRET", NULL, NULL, &resp, &err),
        MSA_EUNREACHABLE);
    assert_no_query(err);
    ck_assert_ptr_nonnull(strstr(err, "/token"));
}
END_TEST

START_TEST(test_https_no_server)
{
    int port = msa_responder_dead_port(pool);
    msa_http_t *h = new_client(NULL);
    msa_http_response_t resp;
    const char *err = NULL;

    ck_assert_int_eq(msa_http_call(h, pool,
                                   apr_psprintf(pool, "https://127.0.0.1:%d/k?code=SECRET", port),
                                   NULL, NULL, NULL, NULL, &resp, &err),
                     MSA_EUNREACHABLE);
    assert_no_query(err);
}
END_TEST

/* TLS to a plain-HTTP peer: the handshake fails, which is "unreachable". */
START_TEST(test_https_handshake_fails)
{
    msa_responder_t *r = new_responder();
    msa_http_opts_t o = {.timeout = 3};
    msa_http_t *h = new_client(&o);
    msa_http_response_t resp;
    const char *err = NULL;

    ck_assert_int_eq(
        msa_http_call(h, pool, apr_psprintf(pool, "https://127.0.0.1:%d/k", msa_responder_port(r)),
                      NULL, NULL, NULL, NULL, &resp, &err),
        MSA_EUNREACHABLE);
    ck_assert_ptr_nonnull(err);
    ck_assert_int_eq(msa_responder_nrequests(r), 0);
}
END_TEST

START_TEST(test_garbage_and_close)
{
    msa_responder_t *r = new_responder();
    msa_http_t *h = new_client(NULL);
    msa_http_response_t resp;
    const char *err = NULL;
    msa_resp_answer_t garbage = {.raw = "this is not HTTP at all\r\n\r\n"};
    msa_resp_answer_t hangup = {.close_without_answer = 1};
    msa_resp_answer_t truncated = {.raw = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"a\""};

    msa_responder_push(r, &garbage);
    ck_assert_int_eq(msa_http_call(h, pool, msa_responder_url(r, pool, "/g?code=SECRET"), NULL,
                                   NULL, NULL, NULL, &resp, &err),
                     MSA_EUNREACHABLE);
    assert_no_query(err);

    msa_responder_push(r, &hangup);
    err = NULL;
    ck_assert_int_eq(msa_http_call(h, pool, msa_responder_url(r, pool, "/h"), NULL, NULL, NULL,
                                   NULL, &resp, &err),
                     MSA_EUNREACHABLE);
    ck_assert_ptr_nonnull(err);

    msa_responder_push(r, &truncated);
    err = NULL;
    ck_assert_int_eq(msa_http_call(h, pool, msa_responder_url(r, pool, "/t"), NULL, NULL, NULL,
                                   NULL, &resp, &err),
                     MSA_EUNREACHABLE);
    ck_assert_ptr_nonnull(err);

    /* The client is still usable after failures. */
    msa_responder_json(r, 200, "{}");
    ck_assert_int_eq(msa_http_call(h, pool, msa_responder_url(r, pool, "/ok"), NULL, NULL, NULL,
                                   NULL, &resp, &err),
                     APR_SUCCESS);
    ck_assert_int_eq(resp.status, 200);
}
END_TEST

/*
 * Refused URLs cause no traffic at all: the proxy is pointed at the
 * responder, so any attempt, direct or proxied, would show up there... or
 * fail to connect, which would not be APR_EINVAL.
 */
START_TEST(test_url_refused_without_traffic)
{
    static const char *const bad[] = {
        "http://192.0.2.10/token",
        "http://example.com/token",
        "http://127.0.0.1.example.com/token",
        "HTTP://8.8.8.8/",
        "ftp://127.0.0.1/x",
        "file:///etc/passwd",
        "gopher://127.0.0.1/",
        "https://user:pw@login.example.test/x",
        "http://127.0.0.1@example.com/",
        "//example.com/x",
        "/relative",
        "",
        "https://exa mple.com/",
        "http://[::2]/",
        "http://0.0.0.0/",
    };
    msa_responder_t *r = new_responder();
    msa_http_opts_t o = {.proxy = msa_responder_url(r, pool, "")};
    msa_http_t *h = new_client(&o);
    msa_http_response_t resp;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *err = NULL;
        ck_assert_msg(msa_http_call(h, pool, bad[i], NULL, NULL, NULL, NULL, &resp, &err) ==
                          APR_EINVAL,
                      "not refused: %s", bad[i]);
        ck_assert_ptr_nonnull(err);
        ck_assert_ptr_null(strstr(err, "pw@"));
    }
    const char *err = NULL;
    ck_assert_int_eq(msa_http_call(h, pool, NULL, NULL, NULL, NULL, NULL, &resp, &err), APR_EINVAL);
    ck_assert_int_eq(msa_responder_connections(r), 0);
}
END_TEST

START_TEST(test_loopback_http_allowed)
{
    msa_responder_t *r = new_responder();
    msa_http_t *h = new_client(NULL);
    msa_http_response_t resp;
    const char *err = NULL;

    msa_responder_json(r, 200, "{\"via\":\"localhost\"}");
    ck_assert_int_eq(
        msa_http_call(h, pool, apr_psprintf(pool, "http://LocalHost:%d/x", msa_responder_port(r)),
                      NULL, NULL, NULL, NULL, &resp, &err),
        APR_SUCCESS);
    ck_assert_str_eq(resp.body, "{\"via\":\"localhost\"}");
}
END_TEST

START_TEST(test_bearer_line_break)
{
    msa_responder_t *r = new_responder();
    msa_http_t *h = new_client(NULL);
    msa_http_response_t resp;
    const char *err = NULL;

    ck_assert_int_eq(msa_http_call(h, pool, msa_responder_url(r, pool, "/x"), "tok\r\nX-Evil: 1",
                                   NULL, NULL, NULL, &resp, &err),
                     APR_EINVAL);
    ck_assert_ptr_nonnull(err);
    ck_assert_ptr_null(strstr(err, "Evil"));
    ck_assert_int_eq(msa_responder_connections(r), 0);
}
END_TEST

/* https goes through the proxy (a CONNECT); loopback stand-ins do not. */
START_TEST(test_proxy)
{
    msa_responder_t *proxy = new_responder();
    msa_responder_t *direct = new_responder();
    msa_http_opts_t o = {.proxy = msa_responder_url(proxy, pool, ""), .timeout = 5};
    msa_http_t *h = new_client(&o);
    msa_http_response_t resp;
    const char *err = NULL;
    msa_resp_answer_t refuse = {.status = 403, .body = "no"};

    msa_responder_push(proxy, &refuse);
    ck_assert_int_eq(msa_http_call(h, pool,
                                   "https://login.example.test/common/oauth2/v2.0/"
                                   "token?code=SECRET",
                                   NULL, "code=SECRET", NULL, NULL, &resp, &err),
                     MSA_EUNREACHABLE);
    assert_no_query(err);
    const msa_resp_request_t *q = msa_responder_request(proxy, 0);
    ck_assert_ptr_nonnull(q);
    ck_assert_str_eq(q->method, "CONNECT");
    ck_assert_str_eq(q->target, "login.example.test:443");

    msa_responder_json(direct, 200, "{}");
    ck_assert_int_eq(msa_http_call(h, pool, msa_responder_url(direct, pool, "/me"), NULL, NULL,
                                   NULL, NULL, &resp, &err),
                     APR_SUCCESS);
    ck_assert_int_eq(msa_responder_nrequests(direct), 1);
    ck_assert_int_eq(msa_responder_nrequests(proxy), 1);
}
END_TEST

/* Environment proxies are ignored: MSAuthHTTPProxy is the only way to get one. */
START_TEST(test_env_proxy_ignored)
{
    msa_responder_t *r = new_responder();
    msa_responder_t *envproxy = new_responder();
    msa_http_t *h = new_client(NULL);
    msa_http_response_t resp;
    const char *err = NULL;
    const char *pu = msa_responder_url(envproxy, pool, "");

    setenv("http_proxy", pu, 1);
    setenv("https_proxy", pu, 1);
    setenv("ALL_PROXY", pu, 1);
    setenv("no_proxy", "", 1);
    int port = msa_responder_dead_port(pool);
    apr_status_t rv = msa_http_call(h, pool, apr_psprintf(pool, "https://127.0.0.1:%d/x", port),
                                    NULL, NULL, NULL, NULL, &resp, &err);
    msa_responder_json(r, 200, "{}");
    apr_status_t rv2 = msa_http_call(h, pool, msa_responder_url(r, pool, "/x"), NULL, NULL, NULL,
                                     NULL, &resp, &err);
    unsetenv("http_proxy");
    unsetenv("https_proxy");
    unsetenv("ALL_PROXY");
    unsetenv("no_proxy");
    ck_assert_int_eq(rv, MSA_EUNREACHABLE);
    ck_assert_int_eq(rv2, APR_SUCCESS);
    ck_assert_int_eq(msa_responder_connections(envproxy), 0);
}
END_TEST

typedef struct thread_arg {
    msa_http_t *h;
    const char *url;
    int ok;
} thread_arg_t;

static void *call_many(void *data)
{
    thread_arg_t *a = data;
    apr_pool_t *tp;
    /* A pool of its own: pools are not shared across threads. */
    apr_pool_create(&tp, NULL);
    for (int i = 0; i < 10; i++) {
        msa_http_response_t resp;
        const char *err = NULL;
        if (msa_http_call(a->h, tp, a->url, "tok", NULL, NULL, NULL, &resp, &err) == APR_SUCCESS &&
            resp.status == 200 && strcmp(resp.body, "{\"ok\":true}") == 0) {
            a->ok++;
        }
        apr_pool_clear(tp);
    }
    apr_pool_destroy(tp);
    return NULL;
}

/* Threads of a worker MPM share one client. */
START_TEST(test_threads_share_client)
{
    enum { NTHREADS = 4 };
    msa_responder_t *r = new_responder();
    msa_http_t *h = new_client(NULL);
    pthread_t t[NTHREADS];
    thread_arg_t args[NTHREADS];

    for (int i = 0; i < NTHREADS * 10; i++) {
        msa_responder_json(r, 200, "{\"ok\":true}");
    }
    for (int i = 0; i < NTHREADS; i++) {
        args[i] = (thread_arg_t){.h = h, .url = msa_responder_url(r, pool, "/me")};
        ck_assert_int_eq(pthread_create(&t[i], NULL, call_many, &args[i]), 0);
    }
    for (int i = 0; i < NTHREADS; i++) {
        pthread_join(t[i], NULL);
    }
    for (int i = 0; i < NTHREADS; i++) {
        ck_assert_int_eq(args[i].ok, 10);
    }
    ck_assert_int_eq(msa_responder_nrequests(r), NTHREADS * 10);
    /* Connections are kept between calls: at most one per concurrent caller. */
    ck_assert_int_le(msa_responder_connections(r), NTHREADS);
}
END_TEST

/*
 * httpd forks its children after the client may have been used: a child
 * must not talk on the parent's kept connections (two processes writing on
 * one socket, or one TLS session), so it opens its own.
 */
START_TEST(test_fork_does_not_share_connections)
{
    msa_responder_t *r = new_responder();
    msa_http_t *h = new_client(NULL);
    msa_http_response_t resp;
    const char *err = NULL;
    const char *url = msa_responder_url(r, pool, "/x");

    for (int i = 0; i < 3; i++) {
        msa_responder_json(r, 200, "{}");
    }
    ck_assert_int_eq(msa_http_call(h, pool, url, NULL, NULL, NULL, NULL, &resp, &err), APR_SUCCESS);
    ck_assert_int_eq(msa_responder_connections(r), 1);

    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int ok = msa_http_call(h, pool, url, NULL, NULL, NULL, NULL, &resp, &err) == APR_SUCCESS &&
                 resp.status == 200;
        _exit(ok ? 0 : 1);
    }
    int status = -1;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ck_assert_int_eq(msa_responder_connections(r), 2);

    /* The parent keeps its own connection. */
    ck_assert_int_eq(msa_http_call(h, pool, url, NULL, NULL, NULL, NULL, &resp, &err), APR_SUCCESS);
    ck_assert_int_eq(msa_responder_connections(r), 2);
    ck_assert_int_eq(msa_responder_nrequests(r), 3);
}
END_TEST

START_TEST(test_global_init_twice)
{
    ck_assert_int_eq(msa_http_global_init(), APR_SUCCESS);
    ck_assert_int_eq(msa_http_global_init(), APR_SUCCESS);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("msa_http");
    TCase *tc = msa_test_case("http");
    tcase_add_test(tc, test_get_round_trip);
    tcase_add_test(tc, test_post_form);
    tcase_add_test(tc, test_post_large_no_expect);
    tcase_add_test(tc, test_basic_auth);
    tcase_add_test(tc, test_connection_reuse);
    tcase_add_test(tc, test_status_passthrough);
    tcase_add_test(tc, test_redirect_not_followed);
    tcase_add_test(tc, test_size_cap);
    tcase_add_test(tc, test_timeout);
    tcase_add_test(tc, test_connection_refused);
    tcase_add_test(tc, test_https_no_server);
    tcase_add_test(tc, test_https_handshake_fails);
    tcase_add_test(tc, test_garbage_and_close);
    tcase_add_test(tc, test_url_refused_without_traffic);
    tcase_add_test(tc, test_loopback_http_allowed);
    tcase_add_test(tc, test_bearer_line_break);
    tcase_add_test(tc, test_proxy);
    tcase_add_test(tc, test_env_proxy_ignored);
    tcase_add_test(tc, test_threads_share_client);
    tcase_add_test(tc, test_fork_does_not_share_connections);
    tcase_add_test(tc, test_global_init_twice);
    suite_add_tcase(s, tc);
    return msa_test_run(s);
}
