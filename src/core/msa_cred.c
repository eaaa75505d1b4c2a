/*
 * Client credentials without a client secret (Microsoft's certificate
 * credentials and workload identity federation). The certificate's JWT is
 * signed here with OpenSSL directly (PS256 or RS256): cjose stays behind
 * msa_jose.c, and this is the only signature the module makes with a key of
 * its own that is not an HMAC.
 */
#include <string.h>
#include <time.h>

#include <json-c/json.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include <apr_file_info.h>
#include <apr_file_io.h>
#include <apr_strings.h>
#include <apr_thread_mutex.h>

#include "msa_cred.h"
#include "msa_jose.h"

#define CRED_MIN_RSA_BITS 2048

enum { CRED_CERT, CRED_FILE };

struct msa_cred {
    int kind;
    /* certificate */
    EVP_PKEY *key;
    int alg;
    const char *x5t_s256;
    /* assertion file */
    const char *path;
#if APR_HAS_THREADS
    apr_thread_mutex_t *lock;
#endif
    char *token;        /* MSA_MAX_TOKEN + 1 bytes, the current token */
    apr_time_t checked; /* when the file was last looked at */
    apr_time_t mtime;
    apr_off_t size;
    apr_ino_t inode;
};

static apr_status_t free_pkey(void *data)
{
    EVP_PKEY_free(data);
    return APR_SUCCESS;
}

/* Whether path names a regular file this process can open for reading. */
static const char *cred_readable(apr_pool_t *p, const char *what, const char *path)
{
    apr_file_t *f;
    apr_finfo_t fi;
    if (apr_stat(&fi, path, APR_FINFO_TYPE, p) != APR_SUCCESS) {
        return apr_psprintf(p, "%s %s does not exist", what, path);
    }
    if (fi.filetype != APR_REG) {
        return apr_psprintf(p, "%s %s is not a regular file", what, path);
    }
    if (apr_file_open(&f, path, APR_FOPEN_READ, APR_FPROT_OS_DEFAULT, p) != APR_SUCCESS) {
        return apr_psprintf(p, "%s %s cannot be read", what, path);
    }
    apr_file_close(f);
    return NULL;
}

/* An ASN1_TIME as text ("Jan  1 00:00:00 2030 GMT"), for messages. */
static const char *asn1_time_text(apr_pool_t *p, const ASN1_TIME *t)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *out = "?";
    if (b != NULL && ASN1_TIME_print(b, t) == 1) {
        char *data;
        long n = BIO_get_mem_data(b, &data);
        out = apr_pstrmemdup(p, data, (apr_size_t)n);
    }
    BIO_free(b);
    return out;
}

static const char *cert_x5t_s256(apr_pool_t *p, X509 *x)
{
    unsigned char *der = NULL;
    int n = i2d_X509(x, &der);
    if (n <= 0) {
        return NULL;
    }
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256(der, (size_t)n, md);
    OPENSSL_free(der);
    return msa_b64url_encode(p, md, sizeof(md));
}

apr_status_t msa_cred_cert_load(msa_cred_t **out, apr_pool_t *p, const char *cert_path,
                                const char *key_path, int alg, apr_time_t now, const char **err)
{
    const char *dummy;
    err = err ? err : &dummy;
    *err = NULL;
    *out = NULL;
    if ((*err = cred_readable(p, "certificate", cert_path)) != NULL ||
        (*err = cred_readable(p, "key", key_path)) != NULL) {
        return APR_EINVAL;
    }
    apr_status_t rv = APR_EINVAL;
    X509 *x = NULL;
    EVP_PKEY *key = NULL;
    BIO *b = BIO_new_file(cert_path, "r");
    if (b != NULL) {
        x = PEM_read_bio_X509(b, NULL, NULL, NULL);
        BIO_free(b);
    }
    if (x == NULL) {
        *err = apr_psprintf(p, "certificate %s holds no PEM certificate", cert_path);
        goto out;
    }
    /* No passphrase callback: an encrypted key fails here rather than prompting. */
    b = BIO_new_file(key_path, "r");
    if (b != NULL) {
        key = PEM_read_bio_PrivateKey(b, NULL, NULL, (void *)"");
        BIO_free(b);
    }
    if (key == NULL) {
        *err = apr_psprintf(p, "key %s holds no unencrypted PEM private key", key_path);
        goto out;
    }
    if (EVP_PKEY_base_id(key) != EVP_PKEY_RSA) {
        *err = apr_psprintf(p, "key %s is not an RSA key (PS256 and RS256 need one)", key_path);
        goto out;
    }
    if (EVP_PKEY_bits(key) < CRED_MIN_RSA_BITS) {
        *err = apr_psprintf(p, "key %s has %d bits: Microsoft refuses RSA keys under %d", key_path,
                            EVP_PKEY_bits(key), CRED_MIN_RSA_BITS);
        goto out;
    }
    if (X509_check_private_key(x, key) != 1) {
        *err = apr_psprintf(p, "key %s is not the key of certificate %s", key_path, cert_path);
        goto out;
    }
    time_t t = (time_t)apr_time_sec(now);
    if (X509_cmp_time(X509_get0_notAfter(x), &t) <= 0) {
        *err = apr_psprintf(p, "certificate %s expired on %s", cert_path,
                            asn1_time_text(p, X509_get0_notAfter(x)));
        goto out;
    }
    if (X509_cmp_time(X509_get0_notBefore(x), &t) > 0) {
        *err = apr_psprintf(p, "certificate %s is not valid before %s", cert_path,
                            asn1_time_text(p, X509_get0_notBefore(x)));
        goto out;
    }
    const char *x5t = cert_x5t_s256(p, x);
    if (x5t == NULL) {
        *err = apr_psprintf(p, "certificate %s cannot be encoded", cert_path);
        goto out;
    }
    msa_cred_t *c = apr_pcalloc(p, sizeof(*c));
    c->kind = CRED_CERT;
    c->alg = alg == MSA_CRED_RS256 ? MSA_CRED_RS256 : MSA_CRED_PS256;
    c->x5t_s256 = x5t;
    c->key = key;
    key = NULL;
    apr_pool_cleanup_register(p, c->key, free_pkey, apr_pool_cleanup_null);
    *out = c;
    rv = APR_SUCCESS;
out:
    X509_free(x);
    EVP_PKEY_free(key);
    ERR_clear_error();
    return rv;
}

/* Compact JSON of o, owned by p (o is released). */
static char *json_text(apr_pool_t *p, json_object *o)
{
    char *s = apr_pstrdup(p, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                                   JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    return s;
}

/* A random version-4 GUID, as Microsoft's page suggests for jti; NULL if the RNG fails. */
static const char *random_guid(apr_pool_t *p)
{
    unsigned char *b;
    apr_size_t n;
    char *r = msa_random_b64url(p, 16);
    if (r == NULL || msa_b64url_decode(p, r, strlen(r), &b, &n) != APR_SUCCESS || n != 16) {
        return NULL;
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    return apr_psprintf(p, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                        b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11],
                        b[12], b[13], b[14], b[15]);
}

static apr_status_t cert_assertion(msa_cred_t *c, apr_pool_t *p, const char *client_id,
                                   const char *aud, apr_time_t now, const char **assertion,
                                   const char **err)
{
    const char *jti = random_guid(p);
    if (jti == NULL) {
        *err = "client assertion: the random number generator failed";
        return APR_EGENERAL;
    }
    json_object *h = json_object_new_object();
    json_object_object_add(h, "alg",
                           json_object_new_string(c->alg == MSA_CRED_RS256 ? "RS256" : "PS256"));
    json_object_object_add(h, "typ", json_object_new_string("JWT"));
    json_object_object_add(h, "x5t#S256", json_object_new_string(c->x5t_s256));
    int64_t t = (int64_t)apr_time_sec(now);
    json_object *cl = json_object_new_object();
    json_object_object_add(cl, "aud", json_object_new_string(aud));
    json_object_object_add(cl, "iss", json_object_new_string(client_id));
    json_object_object_add(cl, "sub", json_object_new_string(client_id));
    json_object_object_add(cl, "jti", json_object_new_string(jti));
    json_object_object_add(cl, "iat", json_object_new_int64(t));
    json_object_object_add(cl, "nbf", json_object_new_int64(t));
    json_object_object_add(cl, "exp", json_object_new_int64(t + MSA_CRED_LIFETIME));
    const char *hs = json_text(p, h), *cs = json_text(p, cl);
    char *input = apr_pstrcat(p, msa_b64url_encode(p, (const unsigned char *)hs, strlen(hs)), ".",
                              msa_b64url_encode(p, (const unsigned char *)cs, strlen(cs)), NULL);

    apr_status_t rv = APR_EGENERAL;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    size_t siglen = 0;
    unsigned char *sig = NULL;
    if (md == NULL || EVP_DigestSignInit(md, &pctx, EVP_sha256(), NULL, c->key) != 1) {
        goto out;
    }
    /* PS256 (RFC 7518 3.5): PSS with MGF1-SHA-256 and a salt as long as the hash. */
    if (c->alg == MSA_CRED_PS256 &&
        (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
         EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1 ||
         EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) != 1)) {
        goto out;
    }
    if (EVP_DigestSign(md, NULL, &siglen, (const unsigned char *)input, strlen(input)) != 1) {
        goto out;
    }
    sig = apr_palloc(p, siglen);
    if (EVP_DigestSign(md, sig, &siglen, (const unsigned char *)input, strlen(input)) != 1) {
        goto out;
    }
    *assertion = apr_pstrcat(p, input, ".", msa_b64url_encode(p, sig, siglen), NULL);
    rv = APR_SUCCESS;
out:
    if (rv != APR_SUCCESS) {
        *err = "client assertion: signing with the certificate's key failed";
    }
    EVP_MD_CTX_free(md);
    ERR_clear_error();
    return rv;
}

/*
 * The token of the file: its first line, trimmed; printable ASCII only (it
 * travels in a form and must not be able to carry anything else).
 */
static apr_status_t file_read(apr_pool_t *p, const char *path, char **token, apr_finfo_t *fi,
                              const char **err)
{
    apr_file_t *f;
    /*
     * Non-blocking: a FIFO put where the token was would block the open (and every login
     * waiting for the credential's lock) until something writes to it. What was opened is
     * then asked what it is: only a regular file is read.
     */
    if (apr_file_open(&f, path, APR_FOPEN_READ | APR_FOPEN_NONBLOCK, APR_FPROT_OS_DEFAULT, p) !=
        APR_SUCCESS) {
        *err = apr_psprintf(p, "assertion file %s cannot be read", path);
        return APR_ENOENT;
    }
    apr_status_t rv = apr_file_info_get(
        fi, APR_FINFO_TYPE | APR_FINFO_MTIME | APR_FINFO_SIZE | APR_FINFO_INODE, f);
    if (rv != APR_SUCCESS && rv != APR_INCOMPLETE) {
        apr_file_close(f);
        *err = apr_psprintf(p, "assertion file %s cannot be read", path);
        return rv;
    }
    if (fi->filetype != APR_REG) {
        apr_file_close(f);
        *err = apr_psprintf(p, "assertion file %s is not a regular file", path);
        return APR_EINVAL;
    }
    char *buf = apr_palloc(p, MSA_MAX_TOKEN + 2);
    apr_size_t n = MSA_MAX_TOKEN + 1;
    rv = apr_file_read_full(f, buf, n, &n);
    apr_file_close(f);
    if (rv != APR_SUCCESS && rv != APR_EOF) {
        *err = apr_psprintf(p, "assertion file %s cannot be read", path);
        return rv;
    }
    buf[n] = '\0';
    char *s = buf + strspn(buf, " \t\r\n");
    s[strcspn(s, "\r\n")] = '\0';
    apr_size_t len = strlen(s);
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t')) {
        s[--len] = '\0';
    }
    if (n > MSA_MAX_TOKEN) {
        *err = apr_psprintf(p, "assertion file %s is over %d bytes", path, MSA_MAX_TOKEN);
        return MSA_ETOOBIG;
    }
    if (len == 0) {
        *err = apr_psprintf(p, "assertion file %s is empty", path);
        return APR_EINVAL;
    }
    for (const char *c = s; *c; c++) {
        if (*c < 0x21 || *c > 0x7e) {
            *err = apr_psprintf(p, "assertion file %s holds a character a token cannot have", path);
            return APR_EINVAL;
        }
    }
    *token = s;
    return APR_SUCCESS;
}

apr_status_t msa_cred_file_open(msa_cred_t **out, apr_pool_t *p, const char *path, const char **err)
{
    const char *dummy;
    err = err ? err : &dummy;
    *err = NULL;
    *out = NULL;
    if ((*err = cred_readable(p, "assertion file", path)) != NULL) {
        return APR_EINVAL;
    }
    char *token;
    apr_finfo_t fi;
    apr_status_t rv = file_read(p, path, &token, &fi, err);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    msa_cred_t *c = apr_pcalloc(p, sizeof(*c));
    c->kind = CRED_FILE;
    c->path = apr_pstrdup(p, path);
    c->token = apr_palloc(p, MSA_MAX_TOKEN + 1);
    apr_cpystrn(c->token, token, MSA_MAX_TOKEN + 1);
    c->checked = 0; /* the first assertion looks again: the file may change before it */
    c->mtime = fi.mtime;
    c->size = fi.size;
    c->inode = fi.inode;
#if APR_HAS_THREADS
    if (apr_thread_mutex_create(&c->lock, APR_THREAD_MUTEX_DEFAULT, p) != APR_SUCCESS) {
        *err = "assertion file: no mutex";
        return APR_EGENERAL;
    }
#endif
    *out = c;
    return APR_SUCCESS;
}

/* Called with the lock held: re-reads the file when it changed since it was last read. */
static void file_refresh(msa_cred_t *c, apr_pool_t *p, apr_time_t now, const char **err)
{
    if (c->checked != 0 && now - c->checked < apr_time_from_sec(MSA_CRED_FILE_RECHECK) &&
        now >= c->checked) {
        return;
    }
    c->checked = now;
    apr_finfo_t fi;
    if (apr_stat(&fi, c->path, APR_FINFO_MTIME | APR_FINFO_SIZE | APR_FINFO_INODE, p) !=
        APR_SUCCESS) {
        *err = apr_psprintf(p, "assertion file %s cannot be read; the last token read is sent",
                            c->path);
        return;
    }
    if (fi.mtime == c->mtime && fi.size == c->size && fi.inode == c->inode) {
        return;
    }
    char *token;
    if (file_read(p, c->path, &token, &fi, err) != APR_SUCCESS) {
        *err = apr_pstrcat(p, *err, "; the last token read is sent", NULL);
        return;
    }
    apr_cpystrn(c->token, token, MSA_MAX_TOKEN + 1);
    c->mtime = fi.mtime;
    c->size = fi.size;
    c->inode = fi.inode;
}

apr_status_t msa_cred_assertion(msa_cred_t *c, apr_pool_t *p, const char *client_id,
                                const char *aud, apr_time_t now, const char **assertion,
                                const char **err)
{
    const char *dummy;
    err = err ? err : &dummy;
    *err = NULL;
    *assertion = NULL;
    if (c->kind == CRED_CERT) {
        return cert_assertion(c, p, client_id, aud, now, assertion, err);
    }
#if APR_HAS_THREADS
    apr_thread_mutex_lock(c->lock);
#endif
    file_refresh(c, p, now, err);
    *assertion = apr_pstrdup(p, c->token);
#if APR_HAS_THREADS
    apr_thread_mutex_unlock(c->lock);
#endif
    return APR_SUCCESS;
}

const char *msa_cred_kind(const msa_cred_t *c)
{
    return c->kind == CRED_CERT ? "certificate" : "assertion file";
}

const char *msa_cred_x5t_s256(const msa_cred_t *c)
{
    return c->kind == CRED_CERT ? c->x5t_s256 : NULL;
}
