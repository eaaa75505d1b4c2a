/*
 * Client credentials without a client secret: a certificate whose key signs
 * a client assertion (Microsoft's certificate credentials: PS256 or RS256,
 * x5t#S256), or a federated token read from a file (workload identity
 * federation: Kubernetes projects a service-account token and rotates it).
 * Either becomes the client_assertion of every token request.
 */
#ifndef MSA_CRED_H
#define MSA_CRED_H

#include <apr_time.h>

#include "msa_core.h"

/* The form value of client_assertion_type for both kinds. */
#define MSA_CRED_ASSERTION_TYPE "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

/* How long a signed assertion is valid (Microsoft: keep it within 10 minutes). */
#define MSA_CRED_LIFETIME 300

/* How often the assertion file is looked at, at most (seconds). */
#define MSA_CRED_FILE_RECHECK 1

/* Signature algorithms of a certificate's assertion. */
enum { MSA_CRED_PS256, MSA_CRED_RS256 };

typedef struct msa_cred msa_cred_t;

/*
 * Loads a PEM certificate and its PEM private key (RSA, unencrypted, at
 * least 2048 bits). Fails, with a message naming the file and the fault,
 * when a file cannot be read or parsed, the key is not the certificate's,
 * or the certificate is not valid at now (expired or not yet valid). The
 * key is freed with the pool; nothing about it is ever put in a message.
 */
apr_status_t msa_cred_cert_load(msa_cred_t **out, apr_pool_t *p, const char *cert_path,
                                const char *key_path, int alg, apr_time_t now, const char **err);

/*
 * A federated credential: the token in the file at path (its first line,
 * white space trimmed), read now and again whenever the file's mtime, size
 * or inode change, looked at no more than once every MSA_CRED_FILE_RECHECK
 * seconds. Fails when the file cannot be read, is empty or over
 * MSA_MAX_TOKEN bytes. The token is kept in memory from p, safe to share
 * between threads.
 */
apr_status_t msa_cred_file_open(msa_cred_t **out, apr_pool_t *p, const char *path,
                                const char **err);

/*
 * The client_assertion for a token request to aud (the token endpoint URL
 * being called) by client_id, at now: a fresh signed JWT for a certificate
 * (unique jti, iat = nbf = now, exp = now + MSA_CRED_LIFETIME), the file's
 * current token for a federated credential (re-read when it changed; the
 * last good token is kept when a re-read fails, and *err then says so while
 * the status is APR_SUCCESS). *assertion is in p.
 */
apr_status_t msa_cred_assertion(msa_cred_t *c, apr_pool_t *p, const char *client_id,
                                const char *aud, apr_time_t now, const char **assertion,
                                const char **err);

/* "certificate" or "assertion file": what a message calls it. */
const char *msa_cred_kind(const msa_cred_t *c);

/* A certificate's x5t#S256 (base64url SHA-256 of its DER), NULL for a file. */
const char *msa_cred_x5t_s256(const msa_cred_t *c);

#endif
