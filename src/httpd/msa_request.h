/* Request helpers every handler of the module uses. */
#ifndef MSA_REQUEST_H
#define MSA_REQUEST_H

#include "msa_module.h"

/* Reads a request body of at most 64 KiB: OK, HTTP_REQUEST_ENTITY_TOO_LARGE, or an error. */
int msa_read_body(request_rec *r, char **body, apr_size_t *len);
int msa_answer_json(request_rec *r, int status, const char *json);
/* {"code":status,"message":message} */
int msa_answer_error(request_rec *r, int status, const char *message);
/* A validated return_to, or NULL (the refusal logged at INFO): the caller's default then. */
const char *msa_return_target(request_rec *r, const msa_srv_t *srv, const msa_app_t *app,
                              const char *target);
const char *msa_self_origin(request_rec *r, const msa_srv_t *srv);
int msa_request_is_https(request_rec *r, const msa_srv_t *srv);
const char *msa_cookie_get(request_rec *r, const char *name);
/* The Cookie header the client sent, its module cookies included even once hidden from the app. */
const char *msa_sent_cookies(request_rec *r);
void msa_cookie_set(request_rec *r, const msa_srv_t *srv, const msa_app_t *app, const char *name,
                    const char *value, const char *path, apr_int64_t max_age, int samesite);

/* A string safe to put in a log line: printable ASCII, at most 64 bytes; "-" for NULL. */
const char *msa_loggable(request_rec *r, const char *s);
/* A redirect (302, no-store) to url; Set-Cookie lines that clear come last. */
int msa_redirect(request_rec *r, const char *url);
/* The token of an Authorization: Bearer header, or NULL. */
const char *msa_bearer_token(request_rec *r);
/* The endpoint's name when path is base or below it ("" for base itself); NULL otherwise. */
const char *msa_endpoint(const char *path, const char *base);
/*
 * Why a POST cannot be shown to come from a page of this server, or NULL: its
 * Origin, else its Referer, must be this origin (login CSRF, cross-site posts).
 */
const char *msa_foreign_post(request_rec *r, const msa_srv_t *srv);
/* What AuthType Microsoft found for a request: the session and the app it opened. */
typedef struct msa_req {
    const msa_token_t *token; /* the session accepted for this request, or NULL */
    const msa_app_t *app;     /* the app whose session it is */
    const void *checked; /* the per-directory config its headers and session were checked under */
    const char *sent_cookie, *sent_authorization; /* the client's, once hidden from the app */
    int kept;                                     /* sent_* hold them */
    apr_array_header_t *hidden; /* msa_hidden_user_t: users of earlier requests, put back to log */
    const void *tokens_for; /* the per-directory config the Microsoft token headers were set for */
    const msa_token_t *issued; /* the session a login issued in this request, or NULL */
    const void *type_for;      /* the per-directory config type_microsoft was found under */
    int type_microsoft;        /* whether its AuthType is Microsoft */
} msa_req_t;
typedef struct msa_hidden_user {
    request_rec *r;
    const char *user;
} msa_hidden_user_t;
/* The request's own record, made when create is set (else NULL when there is none). */
msa_req_t *msa_request_record(request_rec *r, int create);
/* The session AuthType Microsoft accepted for this request itself, or NULL. */
const msa_token_t *msa_request_token(const request_rec *r);
/* The app whose session AuthType Microsoft accepted for this request, or NULL. */
const msa_app_t *msa_request_app(const request_rec *r);

#endif
