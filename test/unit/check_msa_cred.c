/*
 * Unit tests of the client credentials: certificates made here with OpenSSL,
 * assertions verified here with the certificate's public key, the assertion
 * file re-read on change, and the token request that carries them.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include <apr_file_io.h>
#include <apr_strings.h>

#include "msa_cred.h"
#include "msa_jose.h"
#include "msa_ms.h"
#include "msa_responder.h"
#include "msa_test.h"

#define CLIENT "c1c1c1c1-1111-4111-8111-0000000000c1"
#define AUD    "https://login.microsoftonline.com/contoso.example/oauth2/v2.0/token"
#define DAY    (apr_time_from_sec(86400))

static EVP_PKEY *new_key(int bits)
{
    EVP_PKEY *k = EVP_RSA_gen((unsigned int)bits);
    ck_assert_ptr_nonnull(k);
    return k;
}

/* A self-signed certificate of key, valid from now-1 day to now+30 days. */
static X509 *new_cert(EVP_PKEY *key)
{
    X509 *x = X509_new();
    ck_assert_ptr_nonnull(x);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -86400);
    X509_gmtime_adj(X509_getm_notAfter(x), 30L * 86400);
    X509_set_pubkey(x, key);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"msauth unit", -1, -1,
                               0);
    X509_set_issuer_name(x, n);
    ck_assert_int_gt(X509_sign(x, key, EVP_sha256()), 0);
    return x;
}

static const char *tmp_path(const char *name)
{
    const char *dir;
    apr_temp_dir_get(&dir, pool);
    return apr_psprintf(pool, "%s/msa-cred-%ld-%s", dir, (long)getpid(), name);
}

static const char *write_cert(X509 *x, const char *name)
{
    const char *path = tmp_path(name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    PEM_write_X509(f, x);
    fclose(f);
    return path;
}

static const char *write_key(EVP_PKEY *k, const char *name)
{
    const char *path = tmp_path(name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
    fclose(f);
    return path;
}

static void write_text(const char *path, const char *text)
{
    /* As the kubelet rotates a token: a new file renamed over the old. */
    const char *tmp = apr_pstrcat(pool, path, ".new", NULL);
    FILE *f = fopen(tmp, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    ck_assert_int_eq(rename(tmp, path), 0);
}

typedef struct pair {
    EVP_PKEY *key;
    X509 *x;
    const char *cert_path, *key_path;
} pair_t;

static pair_t new_pair(const char *name)
{
    pair_t p;
    p.key = new_key(2048);
    p.x = new_cert(p.key);
    p.cert_path = write_cert(p.x, apr_pstrcat(pool, name, ".crt", NULL));
    p.key_path = write_key(p.key, apr_pstrcat(pool, name, ".key", NULL));
    return p;
}

static void free_pair(pair_t *p)
{
    unlink(p->cert_path);
    unlink(p->key_path);
    X509_free(p->x);
    EVP_PKEY_free(p->key);
}

static apr_status_t put_json(void *o)
{
    json_object_put(o);
    return APR_SUCCESS;
}

static json_object *part_json(const char *b64, apr_size_t len)
{
    unsigned char *d;
    apr_size_t n;
    ck_assert_int_eq(msa_b64url_decode(pool, b64, len, &d, &n), APR_SUCCESS);
    json_object *o = json_tokener_parse(apr_pstrmemdup(pool, (const char *)d, n));
    ck_assert_ptr_nonnull(o);
    apr_pool_cleanup_register(pool, o, put_json, apr_pool_cleanup_null);
    return o;
}

static const char *jstr(json_object *o, const char *name)
{
    json_object *v;
    ck_assert_msg(json_object_object_get_ex(o, name, &v), "no %s", name);
    return apr_pstrdup(pool, json_object_get_string(v));
}

static int64_t jint(json_object *o, const char *name)
{
    json_object *v;
    ck_assert_msg(json_object_object_get_ex(o, name, &v), "no %s", name);
    return json_object_get_int64(v);
}

/* Checks the assertion's signature with the certificate's key; returns header and claims. */
static void verify(const char *jwt, X509 *x, int pss, json_object **h, json_object **c)
{
    const char *dot1 = strchr(jwt, '.'), *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
    ck_assert_ptr_nonnull(dot2);
    ck_assert_ptr_null(strchr(dot2 + 1, '.'));
    *h = part_json(jwt, (apr_size_t)(dot1 - jwt));
    *c = part_json(dot1 + 1, (apr_size_t)(dot2 - dot1 - 1));
    unsigned char *sig;
    apr_size_t siglen;
    ck_assert_int_eq(msa_b64url_decode(pool, dot2 + 1, strlen(dot2 + 1), &sig, &siglen),
                     APR_SUCCESS);
    EVP_PKEY *pub = X509_get0_pubkey(x);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    ck_assert_int_eq(EVP_DigestVerifyInit(md, &pctx, EVP_sha256(), NULL, pub), 1);
    if (pss) {
        ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING), 1);
        ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32), 1);
    }
    int ok = EVP_DigestVerify(md, sig, siglen, (const unsigned char *)jwt, (size_t)(dot2 - jwt));
    EVP_MD_CTX_free(md);
    ck_assert_int_eq(ok, 1);
}

static const char *x5t_s256_of(X509 *x)
{
    unsigned char *der = NULL, md[SHA256_DIGEST_LENGTH];
    int n = i2d_X509(x, &der);
    SHA256(der, (size_t)n, md);
    OPENSSL_free(der);
    return msa_b64url_encode(pool, md, sizeof(md));
}

START_TEST(cert_assertion_ps256)
{
    pair_t p = new_pair("ps");
    msa_cred_t *c;
    const char *err = NULL, *jwt, *jwt2;
    apr_time_t now = apr_time_now();
    ck_assert_int_eq(
        msa_cred_cert_load(&c, pool, p.cert_path, p.key_path, MSA_CRED_PS256, now, &err),
        APR_SUCCESS);
    ck_assert_str_eq(msa_cred_kind(c), "certificate");
    ck_assert_str_eq(msa_cred_x5t_s256(c), x5t_s256_of(p.x));
    ck_assert_int_eq(msa_cred_assertion(c, pool, CLIENT, AUD, now, &jwt, &err), APR_SUCCESS);
    json_object *h, *cl;
    verify(jwt, p.x, 1, &h, &cl);
    ck_assert_str_eq(jstr(h, "alg"), "PS256");
    ck_assert_str_eq(jstr(h, "typ"), "JWT");
    ck_assert_str_eq(jstr(h, "x5t#S256"), x5t_s256_of(p.x));
    ck_assert_int_eq(json_object_object_length(h), 3);
    ck_assert_str_eq(jstr(cl, "aud"), AUD);
    ck_assert_str_eq(jstr(cl, "iss"), CLIENT);
    ck_assert_str_eq(jstr(cl, "sub"), CLIENT);
    ck_assert_int_eq(jint(cl, "iat"), apr_time_sec(now));
    ck_assert_int_eq(jint(cl, "nbf"), apr_time_sec(now));
    ck_assert_int_eq(jint(cl, "exp"), apr_time_sec(now) + MSA_CRED_LIFETIME);
    ck_assert_int_le(MSA_CRED_LIFETIME, 600);
    const char *jti = jstr(cl, "jti");
    ck_assert_msg(msa_is_guid(jti) && jti[14] == '4', "jti %s is not a v4 GUID", jti);
    /* Each assertion is new. */
    ck_assert_int_eq(msa_cred_assertion(c, pool, CLIENT, AUD, now, &jwt2, &err), APR_SUCCESS);
    verify(jwt2, p.x, 1, &h, &cl);
    ck_assert_str_ne(jstr(cl, "jti"), jti);
    free_pair(&p);
}
END_TEST

START_TEST(cert_assertion_rs256)
{
    pair_t p = new_pair("rs");
    msa_cred_t *c;
    const char *err = NULL, *jwt;
    ck_assert_int_eq(
        msa_cred_cert_load(&c, pool, p.cert_path, p.key_path, MSA_CRED_RS256, apr_time_now(), &err),
        APR_SUCCESS);
    ck_assert_int_eq(msa_cred_assertion(c, pool, CLIENT, AUD, apr_time_now(), &jwt, &err),
                     APR_SUCCESS);
    json_object *h, *cl;
    verify(jwt, p.x, 0, &h, &cl);
    ck_assert_str_eq(jstr(h, "alg"), "RS256");
    free_pair(&p);
}
END_TEST

START_TEST(cert_load_refusals)
{
    pair_t a = new_pair("a"), b = new_pair("b");
    msa_cred_t *c;
    const char *err;
    apr_time_t now = apr_time_now();
    /* another certificate's key */
    ck_assert_int_eq(msa_cred_cert_load(&c, pool, a.cert_path, b.key_path, 0, now, &err),
                     APR_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "is not the key of certificate"));
    ck_assert_ptr_null(c);
    /* expired, not yet valid */
    ck_assert_int_eq(msa_cred_cert_load(&c, pool, a.cert_path, a.key_path, 0, now + 31 * DAY, &err),
                     APR_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "expired on"));
    ck_assert_int_eq(msa_cred_cert_load(&c, pool, a.cert_path, a.key_path, 0, now - 2 * DAY, &err),
                     APR_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "is not valid before"));
    /* missing files, files of the wrong kind */
    ck_assert_int_eq(msa_cred_cert_load(&c, pool, "/nonexistent/c.pem", a.key_path, 0, now, &err),
                     APR_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "certificate /nonexistent/c.pem does not exist"));
    ck_assert_int_eq(msa_cred_cert_load(&c, pool, a.cert_path, "/", 0, now, &err), APR_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "is not a regular file"));
    ck_assert_int_eq(msa_cred_cert_load(&c, pool, a.key_path, a.key_path, 0, now, &err),
                     APR_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "holds no PEM certificate"));
    ck_assert_int_eq(msa_cred_cert_load(&c, pool, a.cert_path, a.cert_path, 0, now, &err),
                     APR_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "holds no unencrypted PEM private key"));
    /* an RSA key Microsoft calls weak */
    EVP_PKEY *small = new_key(1024);
    X509 *sx = new_cert(small);
    const char *sc = write_cert(sx, "small.crt"), *sk = write_key(small, "small.key");
    ck_assert_int_eq(msa_cred_cert_load(&c, pool, sc, sk, 0, now, &err), APR_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "1024 bits"));
    unlink(sc);
    unlink(sk);
    X509_free(sx);
    EVP_PKEY_free(small);
    free_pair(&a);
    free_pair(&b);
}
END_TEST

START_TEST(file_rotation)
{
    const char *path = tmp_path("token");
    write_text(path, "  first.token.value \n# the rest is ignored\n");
    msa_cred_t *c;
    const char *err, *tok;
    ck_assert_int_eq(msa_cred_file_open(&c, pool, path, &err), APR_SUCCESS);
    ck_assert_str_eq(msa_cred_kind(c), "assertion file");
    ck_assert_ptr_null(msa_cred_x5t_s256(c));
    apr_time_t t0 = apr_time_now();
    ck_assert_int_eq(msa_cred_assertion(c, pool, CLIENT, AUD, t0, &tok, &err), APR_SUCCESS);
    ck_assert_str_eq(tok, "first.token.value");
    /* rotated: not looked at again within the second, then the new token */
    write_text(path, "second.token.value\n");
    ck_assert_int_eq(
        msa_cred_assertion(c, pool, CLIENT, AUD, t0 + apr_time_from_msec(500), &tok, &err),
        APR_SUCCESS);
    ck_assert_str_eq(tok, "first.token.value");
    ck_assert_int_eq(
        msa_cred_assertion(c, pool, CLIENT, AUD, t0 + apr_time_from_sec(1), &tok, &err),
        APR_SUCCESS);
    ck_assert_str_eq(tok, "second.token.value");
    /* a rotation that leaves no usable token keeps the last good one, and says so */
    write_text(path, "\n");
    ck_assert_int_eq(
        msa_cred_assertion(c, pool, CLIENT, AUD, t0 + apr_time_from_sec(3), &tok, &err),
        APR_SUCCESS);
    ck_assert_str_eq(tok, "second.token.value");
    ck_assert_ptr_nonnull(err);
    ck_assert_ptr_nonnull(strstr(err, "is empty; the last token read is sent"));
    unlink(path);
    ck_assert_int_eq(
        msa_cred_assertion(c, pool, CLIENT, AUD, t0 + apr_time_from_sec(5), &tok, &err),
        APR_SUCCESS);
    ck_assert_str_eq(tok, "second.token.value");
    ck_assert_ptr_nonnull(strstr(err, "cannot be read"));
}
END_TEST

START_TEST(file_refusals)
{
    msa_cred_t *c;
    const char *err;
    ck_assert_int_eq(msa_cred_file_open(&c, pool, "/nonexistent/token", &err), APR_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "assertion file /nonexistent/token does not exist"));
    const char *path = tmp_path("bad-token");
    write_text(path, "\n\n");
    ck_assert_int_ne(msa_cred_file_open(&c, pool, path, &err), APR_SUCCESS);
    ck_assert_ptr_nonnull(strstr(err, "is empty"));
    write_text(path, "tok\x01en\n");
    ck_assert_int_ne(msa_cred_file_open(&c, pool, path, &err), APR_SUCCESS);
    ck_assert_ptr_nonnull(strstr(err, "a character a token cannot have"));
    char *big = apr_palloc(pool, MSA_MAX_TOKEN + 10);
    memset(big, 'a', MSA_MAX_TOKEN + 9);
    big[MSA_MAX_TOKEN + 9] = '\0';
    write_text(path, big);
    ck_assert_int_eq(msa_cred_file_open(&c, pool, path, &err), MSA_ETOOBIG);
    unlink(path);
}
END_TEST

/* The token request: the assertion replaces the secret, aud is the endpoint called. */
START_TEST(token_request_carries_the_assertion)
{
    msa_responder_t *r = msa_responder_start(pool);
    ck_assert_ptr_nonnull(r);
    msa_http_t *h;
    msa_http_opts_t o = {.timeout = 5, .max_response = 65536};
    ck_assert_int_eq(msa_http_global_init(), APR_SUCCESS);
    ck_assert_int_eq(msa_http_create(&h, pool, &o), APR_SUCCESS);
    const char *path = tmp_path("req-token");
    write_text(path, "federated.jwt.token\n");
    msa_cred_t *fed;
    const char *err;
    ck_assert_int_eq(msa_cred_file_open(&fed, pool, path, &err), APR_SUCCESS);
    pair_t p = new_pair("req");
    msa_cred_t *cert;
    ck_assert_int_eq(msa_cred_cert_load(&cert, pool, p.cert_path, p.key_path, MSA_CRED_PS256,
                                        apr_time_now(), &err),
                     APR_SUCCESS);
    msa_ms_client_t c = {
        .login_host = msa_responder_url(r, pool, ""),
        .graph_host = msa_responder_url(r, pool, ""),
        .tenant = "common",
        .client_id = CLIENT,
        .client_secret = "never-sent",
        .redirect_uri = "https://app.example/microsoft_auth",
        .scope = "openid",
        .credential = fed,
    };
    msa_ms_tokens_t t;
    msa_responder_json(r, 200, "{\"access_token\":\"at\",\"expires_in\":3599}");
    ck_assert_int_eq(msa_ms_redeem_code(h, pool, &c, "code", "verifier", &t, &err), APR_SUCCESS);
    const msa_resp_request_t *q = msa_responder_request(r, 0);
    ck_assert_str_eq(q->target, "/common/oauth2/v2.0/token");
    ck_assert_str_eq(q->body, "grant_type=authorization_code&code=code&redirect_uri=https%3A%2F%2F"
                              "app.example%2Fmicrosoft_auth&client_id=" CLIENT
                              "&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-"
                              "assertion-type%3Ajwt-bearer&client_assertion=federated.jwt.token"
                              "&scope=openid&code_verifier=verifier");
    ck_assert_ptr_null(t.warning);
    /* the assertion file gone after a rotation: its last token is sent, with a warning */
    unlink(path);
    apr_sleep(apr_time_from_msec(1100)); /* the file is looked at once a second at most */
    msa_responder_json(r, 200, "{\"access_token\":\"at\",\"expires_in\":3599}");
    ck_assert_int_eq(msa_ms_redeem_code(h, pool, &c, "code", NULL, &t, &err), APR_SUCCESS);
    ck_assert_ptr_nonnull(t.warning);
    ck_assert_ptr_nonnull(strstr(t.warning, "cannot be read; the last token read is sent"));
    ck_assert_ptr_nonnull(
        strstr(msa_responder_request(r, 1)->body, "&client_assertion=federated.jwt.token&"));
    /* a certificate: a signed JWT whose aud is the URL called */
    c.credential = cert;
    msa_responder_json(r, 200, "{\"access_token\":\"at\",\"expires_in\":3599}");
    ck_assert_int_eq(msa_ms_redeem_code(h, pool, &c, "code", NULL, &t, &err), APR_SUCCESS);
    q = msa_responder_request(r, 2);
    ck_assert_ptr_null(strstr(q->body, "client_secret"));
    const char *a = strstr(q->body, "&client_assertion=");
    ck_assert_ptr_nonnull(a);
    a += strlen("&client_assertion=");
    const char *jwt = apr_pstrmemdup(pool, a, strcspn(a, "&"));
    json_object *hd, *cl;
    verify(jwt, p.x, 1, &hd, &cl);
    ck_assert_str_eq(jstr(cl, "aud"), msa_ms_token_url(pool, &c));
    ck_assert_str_eq(
        jstr(cl, "aud"),
        apr_pstrcat(pool, msa_responder_url(r, pool, "/common/oauth2/v2.0/token"), NULL));
    /* without a credential, the secret as before */
    c.credential = NULL;
    msa_responder_json(r, 200, "{\"access_token\":\"at\",\"expires_in\":3599}");
    ck_assert_int_eq(msa_ms_redeem_code(h, pool, &c, "code", NULL, &t, &err), APR_SUCCESS);
    q = msa_responder_request(r, 3);
    ck_assert_ptr_nonnull(strstr(q->body, "&client_secret=never-sent&"));
    ck_assert_ptr_null(strstr(q->body, "client_assertion"));
    unlink(path);
    free_pair(&p);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("msa_cred");
    TCase *tc = msa_test_case("cred");
    tcase_add_test(tc, cert_assertion_ps256);
    tcase_add_test(tc, cert_assertion_rs256);
    tcase_add_test(tc, cert_load_refusals);
    tcase_add_test(tc, file_rotation);
    tcase_add_test(tc, file_refusals);
    tcase_add_test(tc, token_request_carries_the_assertion);
    suite_add_tcase(s, tc);
    return msa_test_run(s);
}
