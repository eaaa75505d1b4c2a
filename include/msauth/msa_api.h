/* The Para-compatible JWT API: request bodies and answers (INTERFACE.md section 7). */
#ifndef MSA_API_H
#define MSA_API_H

#include "msa_core.h"
#include "msa_token.h"

typedef struct msa_api_request {
    const char *appid;    /* NULL when absent */
    const char *provider; /* "microsoft" or "passwordless" */
    const char *token;
} msa_api_request_t;

/*
 * Parses a POST body: a JSON object with string "provider" and "token" and an
 * optional string "appid"; other members are ignored. APR_EINVAL with a message
 * fit for the client when it is not JSON, not an object, or a field is missing,
 * empty or not a string; an unknown provider is refused too.
 */
apr_status_t msa_api_parse_request(apr_pool_t *p, const char *body, apr_size_t len,
                                   msa_api_request_t *out, const char **err);

/* {"jwt":{"access_token","refresh","expires"},"user":{"id","identifier","name","email","appid"}} */
char *msa_api_token_json(apr_pool_t *p, const char *jwt, const msa_token_t *t);

/* {"code":N,"message":"..."} */
char *msa_api_error_json(apr_pool_t *p, int code, const char *message);

/* The appid claim of a JWS payload, read without verifying it (to choose the key). */
const char *msa_api_peek_appid(apr_pool_t *p, const char *jwt);

#endif
