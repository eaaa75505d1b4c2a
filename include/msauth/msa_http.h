/*
 * The one HTTP client: libcurl with timeouts, a response-size cap, verified
 * TLS, an optional CA file and proxy, and connections reused within the
 * process (a curl share handle, safe across threads).
 */
#ifndef MSA_HTTP_H
#define MSA_HTTP_H

#include <apr_time.h>

#include "msa_core.h"

typedef struct msa_http_opts {
    int timeout;             /* seconds, bounds each call as a whole */
    int connect_timeout;     /* seconds */
    const char *ca_file;     /* replaces the system store; NULL = system */
    const char *proxy;       /* NULL = none */
    apr_size_t max_response; /* bytes; 0 = MSA_MAX_RESPONSE */
} msa_http_opts_t;

typedef struct msa_http msa_http_t;

typedef struct msa_http_response {
    int status;               /* HTTP status */
    const char *content_type; /* may be NULL */
    char *body;               /* NUL-terminated, never NULL on success */
    apr_size_t body_len;
} msa_http_response_t;

/* Told of each call: how long it took, and whether an answer came. */
typedef void (*msa_http_observer_t)(void *ctx, apr_interval_time_t elapsed, int answered);
void msa_http_set_observer(msa_http_t *h, msa_http_observer_t fn, void *ctx);

/* Once per process (curl_global_init is not thread-safe). */
apr_status_t msa_http_global_init(void);

/* A client whose lifetime is the pool's. */
apr_status_t msa_http_create(msa_http_t **ph, apr_pool_t *p, const msa_http_opts_t *opts);

/*
 * GET url (with `Authorization: Bearer <bearer>` when bearer is not NULL),
 * or POST form_body as application/x-www-form-urlencoded when form_body is not
 * NULL; basic_user/basic_pass, when not NULL, add HTTP Basic authentication.
 * APR_SUCCESS for any HTTP answer (see resp->status); MSA_EUNREACHABLE on a
 * transport failure or timeout; MSA_ETOOBIG when the answer exceeds the cap;
 * APR_EINVAL for a URL that is not https (or http to loopback).
 */
apr_status_t msa_http_call(msa_http_t *h, apr_pool_t *p, const char *url, const char *bearer,
                           const char *form_body, const char *basic_user, const char *basic_pass,
                           msa_http_response_t *resp, const char **err);

#endif
