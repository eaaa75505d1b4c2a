/*
 * The loopback HTTP/1.1 server of the unit tests (see msa_responder.h).
 *
 * Plain POSIX sockets and one pthread with poll(): the tests must see what
 * curl really sends (and how many connections it opens), so the server is
 * deliberately simple and strict rather than a second HTTP stack. Memory
 * is malloc'd because the server thread must not share the test's pool.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* asprintf, memmem */
#endif

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <apr_strings.h>

#include "msa_responder.h"

#define RESP_MAX_CONNS    32
#define RESP_MAX_ANSWERS  256 /* a ring: one slot stays free */
#define RESP_MAX_REQUESTS 256
#define RESP_MAX_HEAD     (64 * 1024)
#define RESP_MAX_BODY     (8 * 1024 * 1024)

typedef struct resp_conn {
    int fd; /* -1 when the slot is free */
    char *buf;
    size_t len, cap;
} resp_conn_t;

struct msa_responder {
    int listen_fd;
    int wake[2]; /* a byte on wake[1] stops the thread, even in a delay */
    int port;
    int running;
    pthread_t thread;
    pthread_mutex_t lock; /* guards the queue, the records and the counters */
    msa_resp_answer_t answers[RESP_MAX_ANSWERS];
    int a_head, a_tail;
    msa_resp_request_t *requests[RESP_MAX_REQUESTS];
    int nrequests;
    int nconnections;
    resp_conn_t conns[RESP_MAX_CONNS]; /* the server thread's alone */
};

enum { RESP_MORE, RESP_CLOSED, RESP_STOP };

static char *resp_strndup(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d == NULL) {
        abort();
    }
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

static char *resp_strdup(const char *s)
{
    return s ? resp_strndup(s, strlen(s)) : NULL;
}

static void resp_close(resp_conn_t *c)
{
    if (c->fd >= 0) {
        close(c->fd);
    }
    c->fd = -1;
    c->len = 0;
}

static int resp_send_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        /* MSG_NOSIGNAL: a client that gave up must not kill the test with SIGPIPE. */
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return 0;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 1;
}

/* Waits ms milliseconds; 0 when asked to stop meanwhile. */
static int resp_sleep(msa_responder_t *r, int ms)
{
    struct pollfd pf = {.fd = r->wake[0], .events = POLLIN};
    int n;
    do {
        n = poll(&pf, 1, ms);
    } while (n < 0 && errno == EINTR);
    return n == 0;
}

static const char *resp_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 302:
        return "Found";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    default:
        return "Whatever";
    }
}

/* The value of header name in a raw header block, malloc'd, or NULL. */
static char *resp_find_header(const char *headers, const char *name)
{
    size_t nlen = strlen(name);
    const char *line = headers;
    while (line != NULL && *line != '\0') {
        const char *eol = strstr(line, "\r\n");
        size_t llen = eol ? (size_t)(eol - line) : strlen(line);
        if (llen > nlen && line[nlen] == ':' && strncasecmp(line, name, nlen) == 0) {
            const char *v = line + nlen + 1, *end = line + llen;
            while (v < end && (*v == ' ' || *v == '\t')) {
                v++;
            }
            while (end > v && (end[-1] == ' ' || end[-1] == '\t')) {
                end--;
            }
            return resp_strndup(v, (size_t)(end - v));
        }
        line = eol ? eol + 2 : NULL;
    }
    return NULL;
}

/* Answers one request; RESP_CLOSED when the connection is to be closed. */
static int resp_answer(msa_responder_t *r, resp_conn_t *c, const msa_resp_answer_t *a)
{
    if (a->delay_ms > 0 && !resp_sleep(r, a->delay_ms)) {
        return RESP_STOP;
    }
    if (a->close_without_answer) {
        return RESP_CLOSED;
    }
    if (a->raw != NULL) {
        resp_send_all(c->fd, a->raw, strlen(a->raw));
        return RESP_CLOSED;
    }
    int status = a->status ? a->status : 200;
    size_t blen = a->body ? (a->body_len ? a->body_len : strlen(a->body)) : 0;
    char *head;
    int hlen;
    if (a->no_length) {
        hlen = asprintf(&head, "HTTP/1.1 %d %s\r\nConnection: close\r\n%s%s%s%s\r\n", status,
                        resp_reason(status), a->content_type ? "Content-Type: " : "",
                        a->content_type ? a->content_type : "", a->content_type ? "\r\n" : "",
                        a->headers ? a->headers : "");
    } else {
        hlen = asprintf(&head, "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\n%s%s%s%s\r\n", status,
                        resp_reason(status), blen, a->content_type ? "Content-Type: " : "",
                        a->content_type ? a->content_type : "", a->content_type ? "\r\n" : "",
                        a->headers ? a->headers : "");
    }
    if (hlen < 0) {
        abort();
    }
    /* One send: a head and a body in two writes would meet Nagle and delayed ACKs (40 ms). */
    char *msg = realloc(head, (size_t)hlen + blen);
    if (msg == NULL) {
        abort();
    }
    if (blen > 0) {
        memcpy(msg + hlen, a->body, blen);
    }
    int ok = resp_send_all(c->fd, msg, (size_t)hlen + blen);
    free(msg);
    return ok && !a->no_length ? RESP_MORE : RESP_CLOSED;
}

/* Serves every complete request in c's buffer. */
static int resp_serve(msa_responder_t *r, resp_conn_t *c)
{
    for (;;) {
        if (c->len == 0) {
            return RESP_MORE;
        }
        /* Not HTTP (say, a TLS ClientHello): hang up, as a real server would. */
        if (c->buf[0] < 'A' || c->buf[0] > 'Z') {
            return RESP_CLOSED;
        }
        char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
        if (end == NULL) {
            return c->len > RESP_MAX_HEAD ? RESP_CLOSED : RESP_MORE;
        }
        size_t head_len = (size_t)(end - c->buf) + 4;
        char *head = resp_strndup(c->buf, head_len - 2); /* keeps the last header's CRLF */
        char *eol = strstr(head, "\r\n");
        char *line = resp_strndup(head, (size_t)(eol - head));
        char *sp1 = strchr(line, ' ');
        char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
        if (sp1 == NULL || sp2 == NULL) {
            free(line);
            free(head);
            return RESP_CLOSED;
        }
        char *cl = resp_find_header(eol + 2, "Content-Length");
        char *connection = resp_find_header(eol + 2, "Connection");
        size_t body_len = cl ? strtoul(cl, NULL, 10) : 0;
        free(cl);
        if (body_len > RESP_MAX_BODY || c->len < head_len + body_len) {
            free(connection);
            free(line);
            free(head);
            return body_len > RESP_MAX_BODY ? RESP_CLOSED : RESP_MORE;
        }

        msa_resp_request_t *q = calloc(1, sizeof(*q));
        if (q == NULL) {
            abort();
        }
        q->method = resp_strndup(line, (size_t)(sp1 - line));
        q->target = resp_strndup(sp1 + 1, (size_t)(sp2 - sp1 - 1));
        q->headers = resp_strdup(eol + 2);
        q->body = resp_strndup(c->buf + head_len, body_len);
        q->body_len = body_len;
        free(line);
        free(head);
        memmove(c->buf, c->buf + head_len + body_len, c->len - head_len - body_len);
        c->len -= head_len + body_len;

        /* Recorded before answering: when the client has its answer, the test sees the request. */
        msa_resp_answer_t a = {.status = 500, .body = "no answer scripted\n"};
        pthread_mutex_lock(&r->lock);
        if (r->nrequests < RESP_MAX_REQUESTS) {
            r->requests[r->nrequests++] = q;
            q = NULL;
        }
        if (r->a_head != r->a_tail) {
            a = r->answers[r->a_head];
            r->a_head = (r->a_head + 1) % RESP_MAX_ANSWERS;
        }
        pthread_mutex_unlock(&r->lock);
        if (q != NULL) {
            free(q->method);
            free(q->target);
            free(q->headers);
            free(q->body);
            free(q);
        }

        /* The answer's strings are the queue's; they stay until the server stops. */
        int rc = resp_answer(r, c, &a);
        int close_asked = connection != NULL && strcasecmp(connection, "close") == 0;
        free(connection);
        if (rc != RESP_MORE) {
            return rc;
        }
        if (close_asked) {
            return RESP_CLOSED;
        }
    }
}

static int resp_read(resp_conn_t *c)
{
    if (c->cap - c->len < 4096) {
        size_t cap = c->cap ? c->cap * 2 : 16384;
        char *nb = realloc(c->buf, cap);
        if (nb == NULL) {
            abort();
        }
        c->buf = nb;
        c->cap = cap;
    }
    ssize_t n;
    do {
        n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
    } while (n < 0 && errno == EINTR);
    if (n <= 0) {
        return 0;
    }
    c->len += (size_t)n;
    return 1;
}

static void *resp_main(void *arg)
{
    msa_responder_t *r = arg;
    for (;;) {
        struct pollfd pf[2 + RESP_MAX_CONNS];
        int slot[2 + RESP_MAX_CONNS];
        nfds_t n = 0;
        pf[n++] = (struct pollfd){.fd = r->wake[0], .events = POLLIN};
        pf[n++] = (struct pollfd){.fd = r->listen_fd, .events = POLLIN};
        for (int i = 0; i < RESP_MAX_CONNS; i++) {
            if (r->conns[i].fd >= 0) {
                slot[n] = i;
                pf[n++] = (struct pollfd){.fd = r->conns[i].fd, .events = POLLIN};
            }
        }
        if (poll(pf, n, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            break;
        }
        if (pf[0].revents != 0) {
            break;
        }
        if (pf[1].revents & POLLIN) {
            int fd = accept(r->listen_fd, NULL, NULL);
            if (fd >= 0) {
                pthread_mutex_lock(&r->lock);
                r->nconnections++;
                pthread_mutex_unlock(&r->lock);
                int i = 0;
                while (i < RESP_MAX_CONNS && r->conns[i].fd >= 0) {
                    i++;
                }
                if (i < RESP_MAX_CONNS) {
                    r->conns[i].fd = fd;
                    r->conns[i].len = 0;
                } else {
                    close(fd);
                }
            }
        }
        for (nfds_t k = 2; k < n; k++) {
            if (pf[k].revents == 0) {
                continue;
            }
            resp_conn_t *c = &r->conns[slot[k]];
            if (!resp_read(c)) {
                resp_close(c);
                continue;
            }
            int rc = resp_serve(r, c);
            if (rc == RESP_STOP) {
                return NULL;
            }
            if (rc == RESP_CLOSED) {
                resp_close(c);
            }
        }
    }
    return NULL;
}

static apr_status_t resp_cleanup(void *data)
{
    msa_responder_stop(data);
    return APR_SUCCESS;
}

msa_responder_t *msa_responder_start(apr_pool_t *p)
{
    msa_responder_t *r = apr_pcalloc(p, sizeof(*r));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    socklen_t slen = sizeof(sa);

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    r->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (r->listen_fd < 0 || bind(r->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        listen(r->listen_fd, 16) != 0 ||
        getsockname(r->listen_fd, (struct sockaddr *)&sa, &slen) != 0 || pipe(r->wake) != 0) {
        perror("msa_responder_start");
        if (r->listen_fd >= 0) {
            close(r->listen_fd);
        }
        return NULL;
    }
    r->port = ntohs(sa.sin_port);
    for (int i = 0; i < RESP_MAX_CONNS; i++) {
        r->conns[i].fd = -1;
    }
    pthread_mutex_init(&r->lock, NULL);
    if (pthread_create(&r->thread, NULL, resp_main, r) != 0) {
        perror("msa_responder_start: pthread_create");
        close(r->listen_fd);
        close(r->wake[0]);
        close(r->wake[1]);
        pthread_mutex_destroy(&r->lock);
        return NULL;
    }
    r->running = 1;
    apr_pool_cleanup_register(p, r, resp_cleanup, apr_pool_cleanup_null);
    return r;
}

static void resp_free_answer(msa_resp_answer_t *a)
{
    free((char *)a->content_type);
    free((char *)a->headers);
    free((char *)a->body);
    free((char *)a->raw);
}

void msa_responder_stop(msa_responder_t *r)
{
    if (r == NULL || !r->running) {
        return;
    }
    r->running = 0;
    if (write(r->wake[1], "x", 1) != 1) {
        perror("msa_responder_stop");
    }
    pthread_join(r->thread, NULL);
    close(r->wake[0]);
    close(r->wake[1]);
    close(r->listen_fd);
    for (int i = 0; i < RESP_MAX_CONNS; i++) {
        resp_close(&r->conns[i]);
        free(r->conns[i].buf);
        r->conns[i].buf = NULL;
    }
    for (int i = 0; i < r->nrequests; i++) {
        msa_resp_request_t *q = r->requests[i];
        free(q->method);
        free(q->target);
        free(q->headers);
        free(q->body);
        free(q);
        r->requests[i] = NULL;
    }
    r->nrequests = 0;
    /* Answers served were copies; the queue owns every string it ever held. */
    for (int i = 0; i < RESP_MAX_ANSWERS; i++) {
        resp_free_answer(&r->answers[i]);
    }
    pthread_mutex_destroy(&r->lock);
}

void msa_responder_push(msa_responder_t *r, const msa_resp_answer_t *a)
{
    pthread_mutex_lock(&r->lock);
    int next = (r->a_tail + 1) % RESP_MAX_ANSWERS;
    if (next == r->a_head) {
        pthread_mutex_unlock(&r->lock);
        fprintf(stderr, "msa_responder_push: queue full\n");
        abort();
    }
    msa_resp_answer_t *slot = &r->answers[r->a_tail];
    resp_free_answer(slot); /* a slot served long ago */
    *slot = *a;
    slot->content_type = resp_strdup(a->content_type);
    slot->headers = resp_strdup(a->headers);
    slot->raw = resp_strdup(a->raw);
    if (a->body != NULL) {
        slot->body_len = a->body_len ? a->body_len : strlen(a->body);
        slot->body = resp_strndup(a->body, slot->body_len);
    }
    r->a_tail = next;
    pthread_mutex_unlock(&r->lock);
}

void msa_responder_json(msa_responder_t *r, int status, const char *json)
{
    msa_resp_answer_t a = {.status = status, .content_type = "application/json", .body = json};
    msa_responder_push(r, &a);
}

int msa_responder_port(const msa_responder_t *r)
{
    return r->port;
}

const char *msa_responder_url(const msa_responder_t *r, apr_pool_t *p, const char *path)
{
    return apr_psprintf(p, "http://127.0.0.1:%d%s", r->port, path ? path : "");
}

int msa_responder_connections(msa_responder_t *r)
{
    pthread_mutex_lock(&r->lock);
    int n = r->nconnections;
    pthread_mutex_unlock(&r->lock);
    return n;
}

int msa_responder_nrequests(msa_responder_t *r)
{
    pthread_mutex_lock(&r->lock);
    int n = r->nrequests;
    pthread_mutex_unlock(&r->lock);
    return n;
}

const msa_resp_request_t *msa_responder_request(msa_responder_t *r, int i)
{
    pthread_mutex_lock(&r->lock);
    const msa_resp_request_t *q = i >= 0 && i < r->nrequests ? r->requests[i] : NULL;
    pthread_mutex_unlock(&r->lock);
    return q;
}

const char *msa_resp_header(apr_pool_t *p, const msa_resp_request_t *q, const char *name)
{
    if (q == NULL) {
        return NULL;
    }
    char *v = resp_find_header(q->headers, name);
    const char *out = v ? apr_pstrdup(p, v) : NULL;
    free(v);
    return out;
}

static apr_status_t resp_close_fd(void *data)
{
    close((int)(intptr_t)data);
    return APR_SUCCESS;
}

int msa_responder_dead_port(apr_pool_t *p)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    socklen_t slen = sizeof(sa);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &slen) != 0) {
        perror("msa_responder_dead_port");
        if (fd >= 0) {
            close(fd);
        }
        return 0;
    }
    apr_pool_cleanup_register(p, (void *)(intptr_t)fd, resp_close_fd, apr_pool_cleanup_null);
    return ntohs(sa.sin_port);
}
