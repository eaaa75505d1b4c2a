/*
 * A scripted loopback HTTP/1.1 server for the unit tests: it listens on
 * 127.0.0.1 (a free port), answers from a queue of canned answers, keeps
 * connections alive, records every request and counts accepted connections.
 * One thread serves all connections; all of it goes away with the pool.
 */
#ifndef MSA_RESPONDER_H
#define MSA_RESPONDER_H

#include <stddef.h>

#include <apr_pools.h>

typedef struct msa_responder msa_responder_t;

/* One canned answer. Zeroes mean "the usual". */
typedef struct msa_resp_answer {
    int status;               /* 0 = 200 */
    const char *content_type; /* NULL = none */
    const char *headers;      /* extra "Name: value\r\n" lines, or NULL */
    const char *body;         /* NULL = empty */
    size_t body_len;          /* 0 = strlen(body) */
    int delay_ms;             /* wait this long before answering */
    int close_without_answer; /* read the request, then just close */
    int no_length;            /* no Content-Length: the body ends when the connection closes */
    const char *raw;          /* send these bytes instead of an answer, then close */
} msa_resp_answer_t;

/* One request as received. Strings are NUL-terminated. */
typedef struct msa_resp_request {
    char *method;
    char *target;  /* path and query, or host:port for CONNECT */
    char *headers; /* the header lines as received, CRLF-separated */
    char *body;
    size_t body_len;
} msa_resp_request_t;

/* Starts a server; NULL (with a message on stderr) when it cannot. */
msa_responder_t *msa_responder_start(apr_pool_t *p);

/* Stops the server and frees what it recorded (also done by the pool's cleanup). */
void msa_responder_stop(msa_responder_t *r);

/* Queues an answer; requests beyond the queue get a 500. */
void msa_responder_push(msa_responder_t *r, const msa_resp_answer_t *a);

/* Queues a status with a JSON body (Content-Type: application/json). */
void msa_responder_json(msa_responder_t *r, int status, const char *json);

int msa_responder_port(const msa_responder_t *r);

/* "http://127.0.0.1:<port>" followed by path (which may be ""). */
const char *msa_responder_url(const msa_responder_t *r, apr_pool_t *p, const char *path);

int msa_responder_connections(msa_responder_t *r);
int msa_responder_nrequests(msa_responder_t *r);

/* The i-th request received (0-based), or NULL. Valid until the server stops. */
const msa_resp_request_t *msa_responder_request(msa_responder_t *r, int i);

/* A request header's value (first of that name, case-insensitive), or NULL. */
const char *msa_resp_header(apr_pool_t *p, const msa_resp_request_t *q, const char *name);

/*
 * A loopback port on which nothing listens: the socket stays bound (so no
 * one else can take the port) but does not listen, so a connect is refused.
 */
int msa_responder_dead_port(apr_pool_t *p);

#endif
