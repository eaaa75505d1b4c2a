/*
 * Fuzz target: Microsoft's JSON answers, as msa_ms_redeem_code,
 * msa_ms_graph_me, msa_ms_graph_groups and msa_ms_fetch_jwks read them.
 *
 * Those functions take their bodies from msa_http, so the input is served
 * by the loopback responder of the unit tests (test/unit/msa_responder.c)
 * as the body of each answer in turn: the token endpoint at 200 and at 400,
 * Graph /me, transitiveMemberOf and the JWKS endpoint, all at 200 (Graph's
 * other statuses are refused before the body is read). "@@HOST@@" in the
 * input is replaced by the responder's URL, so an @odata.nextLink can point
 * back at it and the paging is exercised too. msa_ms_scope_has_user_read
 * reads the granted scope.
 *
 * Invariants: statuses are the contract's; what is returned is what the
 * contract promises (a non-empty access token and Graph id, ids within the
 * cap, a JWKS with a keys array); error messages are one short line of
 * printable ASCII that never holds the code, the client secret or the access
 * token sent.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif

#include <apr_strings.h>
#include <json-c/json.h>

#include "msa_http.h"
#include "msa_ms.h"
#include "msa_responder.h"

#include "fuzz.h"

#define CODE      "0.AXkA-SECRETCODE-fuzz"
#define SECRET    "SECRETCLIENT~fuzz"
#define ACCESS    "eyJ0eXAiOiJKV1QiLCJub25jZSI6IlNFQ1JFVEFDQ0VTUyJ9.e30.SECRETACCESS"
#define MAX_IDS   50
#define HOST_MARK "@@HOST@@"

static msa_responder_t *responder;
static msa_http_t *http;
static msa_ms_client_t client;
static const char *host;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_init();
    msa_http_opts_t o = {.timeout = 10, .connect_timeout = 5};
    responder = msa_responder_start(fuzz_root);
    if (responder == NULL || msa_http_global_init() != APR_SUCCESS ||
        msa_http_create(&http, fuzz_root, &o) != APR_SUCCESS) {
        fprintf(stderr, "fuzz_token_response: no loopback responder or HTTP client\n");
        abort();
    }
    host = msa_responder_url(responder, fuzz_root, "");
    client = (msa_ms_client_t){
        .login_host = host,
        .graph_host = host,
        .tenant = "common",
        .client_id = "cid-123",
        .client_secret = SECRET,
        .redirect_uri = "https://app.example.com/microsoft_auth",
        .scope = "openid profile email User.Read",
    };
    return 0;
}

/* The input with every HOST_MARK replaced by the responder's URL. */
static char *with_host(apr_pool_t *p, const uint8_t *data, size_t size, size_t *len)
{
    const size_t mlen = sizeof(HOST_MARK) - 1, hlen = strlen(host);
    size_t marks = 0;
    for (size_t i = 0; i + mlen <= size; i++) {
        if (memcmp(data + i, HOST_MARK, mlen) == 0) {
            marks++;
            i += mlen - 1;
        }
    }
    char *out = apr_palloc(p, size + marks * hlen + 1), *o = out;
    for (size_t i = 0; i < size;) {
        if (i + mlen <= size && memcmp(data + i, HOST_MARK, mlen) == 0) {
            memcpy(o, host, hlen);
            o += hlen;
            i += mlen;
        } else {
            *o++ = (char)data[i++];
        }
    }
    *o = '\0';
    *len = (size_t)(o - out);
    return out;
}

static void serve(int status, const char *content_type, const char *body, size_t len)
{
    msa_resp_answer_t a = {
        .status = status,
        .content_type = content_type,
        .body = len ? body : NULL,
        .body_len = len,
    };
    msa_responder_push(responder, &a);
}

/* Whether err quotes secret, which the answer itself did not hold. */
static int leaks(const char *err, const char *secret, const uint8_t *data, size_t size)
{
    return strstr(err, secret) != NULL && memmem(data, size, secret, strlen(secret)) == NULL;
}

/* A message fit for the error log: one short line, printable ASCII, none of our secrets. */
static void check_err(apr_status_t rv, const char *err, const uint8_t *data, size_t size)
{
    if (rv == APR_SUCCESS) {
        return;
    }
    FUZZ_ASSERT(err != NULL && strlen(err) < 400, data, size);
    for (const char *c = err; *c; c++) {
        FUZZ_ASSERT(*c >= 0x20 && *c < 0x7F, data, size);
    }
    FUZZ_ASSERT(!leaks(err, CODE, data, size) && !leaks(err, SECRET, data, size) &&
                    !leaks(err, ACCESS, data, size),
                data, size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fuzz_begin();
    size_t len;
    char *body = with_host(p, data, size, &len);
    const char *err = NULL;
    apr_status_t rv;

    /* The token endpoint, at 200 and with an error status. */
    msa_ms_tokens_t tok;
    serve(200, "application/json; charset=utf-8", body, len);
    rv = msa_ms_redeem_code(http, p, &client, CODE, "verifier-0123456789", &tok, &err);
    /* MSA_EREFUSED only for Microsoft's invalid_grant, named in the message. */
    FUZZ_ASSERT(rv == APR_SUCCESS || rv == MSA_EPROTO ||
                    (rv == MSA_EREFUSED && strstr(err, ": invalid_grant") != NULL),
                data, size);
    check_err(rv, err, data, size);
    if (rv == APR_SUCCESS) {
        FUZZ_ASSERT(tok.access_token != NULL && *tok.access_token != '\0', data, size);
        FUZZ_ASSERT(tok.id_token == NULL || *tok.id_token != '\0', data, size);
        FUZZ_ASSERT(tok.expires_in >= 0 && tok.expires_in < 100000000, data, size);
        (void)msa_ms_scope_has_user_read(tok.scope);
    } else {
        FUZZ_ASSERT(tok.access_token == NULL, data, size);
    }
    serve(400, "text/html; charset=utf-8", body, len);
    rv = msa_ms_redeem_code(http, p, &client, CODE, NULL, &tok, &err);
    FUZZ_ASSERT((rv == MSA_EPROTO || rv == MSA_EREFUSED) && tok.access_token == NULL, data, size);
    check_err(rv, err, data, size);

    /* Graph /me. */
    msa_ms_profile_t me;
    serve(200, "application/json;odata.metadata=minimal", body, len);
    rv = msa_ms_graph_me(http, p, host, ACCESS, &me, &err);
    FUZZ_ASSERT(rv == APR_SUCCESS || rv == MSA_EPROTO, data, size);
    check_err(rv, err, data, size);
    if (rv == APR_SUCCESS) {
        FUZZ_ASSERT(me.id != NULL && *me.id != '\0', data, size);
        FUZZ_ASSERT(me.email == NULL || *me.email != '\0', data, size);
        FUZZ_ASSERT(me.email == NULL || me.email != me.upn || strchr(me.upn, '@'), data, size);
    }

    /* Graph transitiveMemberOf (a followed nextLink finds no answer queued: a 500). */
    apr_array_header_t *ids = NULL;
    serve(200, "application/json", body, len);
    rv = msa_ms_graph_groups(http, p, host, ACCESS, MAX_IDS, &ids, &err);
    FUZZ_ASSERT(rv == APR_SUCCESS || rv == MSA_EPROTO || rv == MSA_ETOOBIG, data, size);
    check_err(rv, err, data, size);
    FUZZ_ASSERT(ids != NULL && ids->nelts <= MAX_IDS, data, size);
    for (int i = 0; i < ids->nelts; i++) {
        const char *id = APR_ARRAY_IDX(ids, i, const char *);
        FUZZ_ASSERT(id != NULL && *id != '\0', data, size);
    }

    /* The JWKS endpoint: the body comes back as it was, holding a keys array. */
    char *jwks = NULL;
    serve(200, "application/json", body, len);
    rv = msa_ms_fetch_jwks(http, p, &client, &jwks, &err);
    FUZZ_ASSERT(rv == APR_SUCCESS || rv == MSA_EPROTO, data, size);
    check_err(rv, err, data, size);
    if (rv == APR_SUCCESS) {
        json_object *o = json_tokener_parse(jwks), *keys;
        FUZZ_ASSERT(strlen(jwks) == len && memcmp(jwks, body, len) == 0, data, size);
        FUZZ_ASSERT(o != NULL && json_object_object_get_ex(o, "keys", &keys) &&
                        json_object_is_type(keys, json_type_array),
                    data, size);
        json_object_put(o);
    }

    (void)msa_ms_scope_has_user_read(body);

    fuzz_end();
    return 0;
}
