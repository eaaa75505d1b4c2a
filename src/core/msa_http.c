/*
 * The one HTTP client: libcurl easy handles that keep their connections
 * between calls, a share handle for the DNS and TLS session caches, and
 * every call bounded in time and size.
 *
 * Why not CURL_LOCK_DATA_CONNECT: a connection cache shared through a share
 * handle is a known libcurl bug when threads use it concurrently (curl
 * KNOWN_BUGS "A shared connection cache is not thread-safe", issues #4915,
 * #9404, #13840; crashes with any lock callbacks). An event or worker MPM
 * calls us from many threads, so each easy handle keeps its own connection
 * cache and idle handles are kept in a small stack: a call borrows one (and
 * its open connections), uses it alone, and gives it back. Connections are
 * thus reused across calls in the process without curl ever seeing two
 * threads on one cache. DNS and TLS sessions, which libcurl does lock
 * correctly, are shared across all handles.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include <curl/curl.h>

#include <apr_strings.h>
#if APR_HAS_THREADS
#include <apr_thread_mutex.h>
#endif

#include "msa_http.h"

#if LIBCURL_VERSION_NUM < 0x073f00
#error "libcurl 7.63 or later is needed (CURLU and CURLOPT_CURLU)"
#endif

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0"
#endif

#define HTTP_USER_AGENT      "mod_msauth/" PACKAGE_VERSION
#define HTTP_DEFAULT_TIMEOUT 10
#define HTTP_DEFAULT_CONNECT 5
#define HTTP_IDLE_MAX        8 /* idle handles kept: about one per busy thread */
#define HTTP_FIRST_BUFFER    4096
#define HTTP_MAX_CAP         ((apr_size_t)1 << 30)

struct msa_http {
    apr_pool_t *pool;
    msa_http_opts_t opts;
    CURLSH *share;
#if APR_HAS_THREADS
    apr_thread_mutex_t *share_locks[CURL_LOCK_DATA_LAST]; /* libcurl asks one lock per kind */
    apr_thread_mutex_t *idle_lock;
#endif
    CURL *idle[HTTP_IDLE_MAX]; /* LIFO: the warmest connections are reused first */
    int nidle;
    pid_t pid;                      /* the process whose connections the idle handles hold */
    CURL *inherited[HTTP_IDLE_MAX]; /* a parent's idle handles, parked unused (http_acquire) */
    int ninherited;
    msa_http_observer_t observe; /* told of every call's duration and outcome */
    void *observe_ctx;
};

void msa_http_set_observer(msa_http_t *h, msa_http_observer_t fn, void *ctx)
{
    h->observe = fn;
    h->observe_ctx = ctx;
}

/* The body as it arrives; malloc'd so that a growing buffer does not pile up in a pool. */
typedef struct http_sink {
    char *buf;
    apr_size_t len, cap, max;
    int too_big, no_memory;
} http_sink_t;

static int http_global_done;

apr_status_t msa_http_global_init(void)
{
    if (http_global_done) {
        return APR_SUCCESS;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        return APR_EGENERAL;
    }
    http_global_done = 1;
    return APR_SUCCESS;
}

static void http_lock(CURL *e, curl_lock_data data, curl_lock_access access, void *ud)
{
    (void)e;
    (void)access;
#if APR_HAS_THREADS
    msa_http_t *h = ud;
    if ((unsigned)data < CURL_LOCK_DATA_LAST && h->share_locks[data] != NULL) {
        apr_thread_mutex_lock(h->share_locks[data]);
    }
#else
    (void)data;
    (void)ud;
#endif
}

static void http_unlock(CURL *e, curl_lock_data data, void *ud)
{
    (void)e;
#if APR_HAS_THREADS
    msa_http_t *h = ud;
    if ((unsigned)data < CURL_LOCK_DATA_LAST && h->share_locks[data] != NULL) {
        apr_thread_mutex_unlock(h->share_locks[data]);
    }
#else
    (void)data;
    (void)ud;
#endif
}

/*
 * In a child of the process that made the idle handles (httpd forks after
 * post_config), their connections are the parent's too: they are put aside
 * unused. Not cleaned up either, as that would end TLS sessions the parent
 * is still using. A child (and its child) parks at most HTTP_IDLE_MAX.
 */
static void http_park_inherited(msa_http_t *h)
{
    for (int i = 0; i < h->nidle && h->ninherited < HTTP_IDLE_MAX; i++) {
        h->inherited[h->ninherited++] = h->idle[i];
    }
    h->nidle = 0;
    h->pid = getpid();
}

/*
 * Runs before the mutexes' own cleanups (registered later, so run earlier):
 * curl takes the share lock while handles detach and the share goes away.
 */
static apr_status_t http_cleanup(void *data)
{
    msa_http_t *h = data;
    if (h->pid != getpid()) {
        /* The parked handles keep the share in use; curl then leaves it be. */
        http_park_inherited(h);
    }
    while (h->nidle > 0) {
        curl_easy_cleanup(h->idle[--h->nidle]);
    }
    if (h->share != NULL) {
        curl_share_cleanup(h->share);
        h->share = NULL;
    }
    return APR_SUCCESS;
}

apr_status_t msa_http_create(msa_http_t **ph, apr_pool_t *p, const msa_http_opts_t *opts)
{
    msa_http_t *h = apr_pcalloc(p, sizeof(*h));
    h->pool = p;
    h->pid = getpid();
    if (opts != NULL) {
        h->opts = *opts;
    }
    /* Copied: the caller's strings may live in a shorter pool. */
    h->opts.ca_file = h->opts.ca_file ? apr_pstrdup(p, h->opts.ca_file) : NULL;
    h->opts.proxy = h->opts.proxy && *h->opts.proxy ? apr_pstrdup(p, h->opts.proxy) : NULL;
    if (h->opts.timeout <= 0) {
        h->opts.timeout = HTTP_DEFAULT_TIMEOUT;
    }
    if (h->opts.connect_timeout <= 0) {
        h->opts.connect_timeout = HTTP_DEFAULT_CONNECT;
    }
    if (h->opts.max_response == 0) {
        h->opts.max_response = MSA_MAX_RESPONSE;
    }
    /* No answer from Microsoft comes near this; it keeps http_write's sums from overflowing. */
    if (h->opts.max_response > HTTP_MAX_CAP) {
        h->opts.max_response = HTTP_MAX_CAP;
    }

#if APR_HAS_THREADS
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++) {
        apr_status_t rv = apr_thread_mutex_create(&h->share_locks[i], APR_THREAD_MUTEX_DEFAULT, p);
        if (rv != APR_SUCCESS) {
            return rv;
        }
    }
    apr_status_t rv = apr_thread_mutex_create(&h->idle_lock, APR_THREAD_MUTEX_DEFAULT, p);
    if (rv != APR_SUCCESS) {
        return rv;
    }
#endif

    h->share = curl_share_init();
    if (h->share == NULL) {
        return APR_ENOMEM;
    }
    apr_pool_cleanup_register(p, h, http_cleanup, apr_pool_cleanup_null);
    if (curl_share_setopt(h->share, CURLSHOPT_LOCKFUNC, http_lock) != CURLSHE_OK ||
        curl_share_setopt(h->share, CURLSHOPT_UNLOCKFUNC, http_unlock) != CURLSHE_OK ||
        curl_share_setopt(h->share, CURLSHOPT_USERDATA, h) != CURLSHE_OK ||
        curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK ||
        curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK) {
        return APR_EGENERAL;
    }
    *ph = h;
    return APR_SUCCESS;
}

/* An idle handle with its open connections, or a new one. */
static CURL *http_acquire(msa_http_t *h)
{
    CURL *e = NULL;
#if APR_HAS_THREADS
    apr_thread_mutex_lock(h->idle_lock);
#endif
    if (h->pid != getpid()) {
        http_park_inherited(h);
    }
    if (h->nidle > 0) {
        e = h->idle[--h->nidle];
    }
#if APR_HAS_THREADS
    apr_thread_mutex_unlock(h->idle_lock);
#endif
    if (e != NULL) {
        return e;
    }
    e = curl_easy_init();
    if (e != NULL && curl_easy_setopt(e, CURLOPT_SHARE, h->share) != CURLE_OK) {
        curl_easy_cleanup(e);
        e = NULL;
    }
    return e;
}

/*
 * Resets the options first: they point into the caller's pool (error buffer,
 * headers, URL), which is gone by the time the idle handle is used again or
 * closes its connections. The reset keeps the connections and the share.
 */
static void http_release(msa_http_t *h, CURL *e)
{
    curl_easy_reset(e);
#if APR_HAS_THREADS
    apr_thread_mutex_lock(h->idle_lock);
#endif
    if (h->nidle < HTTP_IDLE_MAX) {
        h->idle[h->nidle++] = e;
        e = NULL;
    }
#if APR_HAS_THREADS
    apr_thread_mutex_unlock(h->idle_lock);
#endif
    if (e != NULL) {
        curl_easy_cleanup(e);
    }
}

static char *http_url_part(apr_pool_t *p, CURLU *u, CURLUPart what)
{
    char *s = NULL, *r = NULL;
    if (curl_url_get(u, what, &s, 0) == CURLUE_OK && s != NULL) {
        r = apr_pstrdup(p, s);
    }
    curl_free(s);
    return r;
}

/*
 * https anywhere, http only to a loopback host. The URL is judged as curl
 * itself parses it and the same parsed handle is what curl then fetches,
 * so no parser difference can send a request somewhere the check did not
 * see. *shown is the URL without userinfo, query or fragment, fit for a log.
 */
static apr_status_t http_url_allowed(apr_pool_t *p, const char *url, CURLU **pu, const char **shown,
                                     const char **err)
{
    CURLU *u = curl_url();
    *pu = NULL;
    *shown = "(URL)";
    if (u == NULL) {
        *err = "out of memory";
        return APR_ENOMEM;
    }
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK) {
        curl_url_cleanup(u);
        *err = "refusing a malformed URL";
        return APR_EINVAL;
    }
    char *scheme = http_url_part(p, u, CURLUPART_SCHEME);
    char *host = http_url_part(p, u, CURLUPART_HOST);
    char *port = http_url_part(p, u, CURLUPART_PORT);
    char *path = http_url_part(p, u, CURLUPART_PATH);
    char *user = http_url_part(p, u, CURLUPART_USER);
    if (scheme == NULL || host == NULL || *host == '\0') {
        curl_url_cleanup(u);
        *err = "refusing a URL without a scheme or host";
        return APR_EINVAL;
    }
    *shown = apr_pstrcat(p, scheme, "://", host, port ? ":" : "", port ? port : "",
                         path ? path : "", NULL);
    if (user != NULL) {
        curl_url_cleanup(u);
        *err = apr_psprintf(p, "refusing %s: credentials in a URL", *shown);
        return APR_EINVAL;
    }
    if (strcmp(scheme, "https") != 0 &&
        !(strcmp(scheme, "http") == 0 && msa_host_loopback(host, strlen(host)))) {
        curl_url_cleanup(u);
        *err = apr_psprintf(p, "refusing %s: only https, or http to a loopback host", *shown);
        return APR_EINVAL;
    }
    *pu = u;
    return APR_SUCCESS;
}

/*
 * curl's error text, with anything after a '?' up to the next space cut out
 * (a query string can hold a code) and control characters replaced.
 */
static const char *http_scrub(apr_pool_t *p, const char *text)
{
    char *out = apr_palloc(p, strlen(text) + 1), *o = out;
    for (const char *s = text; *s != '\0'; s++) {
        if (*s == '?') {
            while (s[1] != '\0' && s[1] != ' ') {
                s++;
            }
            continue;
        }
        *o++ = ((unsigned char)*s < 0x20 || *s == 0x7f) ? ' ' : *s;
    }
    while (o > out && o[-1] == ' ') {
        o--;
    }
    *o = '\0';
    return out;
}

static size_t http_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
    http_sink_t *s = ud;
    apr_size_t add = size * nmemb;

    if (add > s->max - s->len) {
        s->too_big = 1;
        return 0;
    }
    if (s->len + add + 1 > s->cap) {
        apr_size_t cap = s->cap ? s->cap : HTTP_FIRST_BUFFER;
        while (cap < s->len + add + 1) {
            cap *= 2;
        }
        if (cap > s->max + 1) {
            cap = s->max + 1;
        }
        char *nb = realloc(s->buf, cap);
        if (nb == NULL) {
            s->no_memory = 1;
            return 0;
        }
        s->buf = nb;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, ptr, add);
    s->len += add;
    return add;
}

#define HTTP_TRY(x)                                                                                \
    do {                                                                                           \
        CURLcode rc_ = (x);                                                                        \
        if (rc_ != CURLE_OK) {                                                                     \
            return rc_;                                                                            \
        }                                                                                          \
    } while (0)

static CURLcode http_setup(msa_http_t *h, CURL *e, CURLU *u, struct curl_slist *hdrs,
                           const char *form_body, const char *basic_user, const char *basic_pass,
                           http_sink_t *sink, char *errbuf)
{
    const msa_http_opts_t *o = &h->opts;

    HTTP_TRY(curl_easy_setopt(e, CURLOPT_CURLU, u));
    HTTP_TRY(curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf));
    HTTP_TRY(curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L));
#if LIBCURL_VERSION_NUM >= 0x075500
    HTTP_TRY(curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https"));
#else
    HTTP_TRY(curl_easy_setopt(e, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS)));
#endif
    /* A redirect from Microsoft is an answer to report, never a hop to take. */
    HTTP_TRY(curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L));
    HTTP_TRY(curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)o->timeout * 1000L));
    HTTP_TRY(curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)o->connect_timeout * 1000L));
    HTTP_TRY(curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L));
    HTTP_TRY(curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L));
    if (o->ca_file != NULL) {
        HTTP_TRY(curl_easy_setopt(e, CURLOPT_CAINFO, o->ca_file));
        /* Without this the built-in CA directory would still be trusted. */
        HTTP_TRY(curl_easy_setopt(e, CURLOPT_CAPATH, NULL));
    }
    if (o->proxy != NULL) {
        HTTP_TRY(curl_easy_setopt(e, CURLOPT_PROXY, o->proxy));
        /* Loopback stand-ins for Microsoft are reached directly, not via the proxy. */
#if LIBCURL_VERSION_NUM >= 0x075600
        HTTP_TRY(curl_easy_setopt(e, CURLOPT_NOPROXY, "localhost,127.0.0.0/8,::1"));
#else
        HTTP_TRY(curl_easy_setopt(e, CURLOPT_NOPROXY, "localhost,127.0.0.1,::1"));
#endif
    } else {
        /* "" rather than unset: http_proxy and friends in httpd's environment are ignored. */
        HTTP_TRY(curl_easy_setopt(e, CURLOPT_PROXY, ""));
    }
    HTTP_TRY(curl_easy_setopt(e, CURLOPT_USERAGENT, HTTP_USER_AGENT));
    HTTP_TRY(curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs));
    if (form_body != NULL) {
        HTTP_TRY(curl_easy_setopt(e, CURLOPT_POST, 1L));
        HTTP_TRY(curl_easy_setopt(e, CURLOPT_POSTFIELDS, form_body));
        HTTP_TRY(curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(form_body)));
    } else {
        HTTP_TRY(curl_easy_setopt(e, CURLOPT_HTTPGET, 1L));
    }
    if (basic_user != NULL) {
        HTTP_TRY(curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC));
        HTTP_TRY(curl_easy_setopt(e, CURLOPT_USERNAME, basic_user));
        HTTP_TRY(curl_easy_setopt(e, CURLOPT_PASSWORD, basic_pass ? basic_pass : ""));
    }
    /* Refuses early when Content-Length is already over the cap. */
    HTTP_TRY(curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)sink->max));
    HTTP_TRY(curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, http_write));
    HTTP_TRY(curl_easy_setopt(e, CURLOPT_WRITEDATA, sink));
    return CURLE_OK;
}

static int http_add_header(struct curl_slist **list, const char *line)
{
    struct curl_slist *n = curl_slist_append(*list, line);
    if (n == NULL) {
        return 0;
    }
    *list = n;
    return 1;
}

static int http_has_line_break(const char *s)
{
    return s != NULL && strpbrk(s, "\r\n") != NULL;
}

apr_status_t msa_http_call(msa_http_t *h, apr_pool_t *p, const char *url, const char *bearer,
                           const char *form_body, const char *basic_user, const char *basic_pass,
                           msa_http_response_t *resp, const char **err)
{
    const char *dummy, *shown;
    CURLU *u;
    apr_status_t rv;

    err = err ? err : &dummy;
    *err = NULL;
    if (resp != NULL) {
        memset(resp, 0, sizeof(*resp));
    }
    if (h == NULL || p == NULL || url == NULL || resp == NULL) {
        *err = "msa_http_call: missing argument";
        return APR_EINVAL;
    }
    if (bearer != NULL && basic_user != NULL) {
        *err = "msa_http_call: both a bearer token and basic credentials";
        return APR_EINVAL;
    }
    if (http_has_line_break(bearer)) {
        /* It would split into a header of the caller's choosing. */
        *err = "msa_http_call: a line break in the bearer token";
        return APR_EINVAL;
    }
    rv = http_url_allowed(p, url, &u, &shown, err);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    const char *method = form_body != NULL ? "POST" : "GET";

    struct curl_slist *hdrs = NULL;
    int ok = http_add_header(&hdrs, "Accept: application/json") &&
             /* curl would otherwise wait up to 1 s for "100 Continue" on a large body. */
             http_add_header(&hdrs, "Expect:") &&
             (form_body == NULL ||
              http_add_header(&hdrs, "Content-Type: application/x-www-form-urlencoded")) &&
             (bearer == NULL ||
              http_add_header(&hdrs, apr_pstrcat(p, "Authorization: Bearer ", bearer, NULL)));
    CURL *e = ok ? http_acquire(h) : NULL;
    if (e == NULL) {
        curl_slist_free_all(hdrs);
        curl_url_cleanup(u);
        *err = "out of memory";
        return APR_ENOMEM;
    }

    http_sink_t sink = {.max = h->opts.max_response};
    char *errbuf = apr_pcalloc(p, CURL_ERROR_SIZE);
    CURLcode rc = http_setup(h, e, u, hdrs, form_body, basic_user, basic_pass, &sink, errbuf);
    if (rc != CURLE_OK) {
        *err = apr_psprintf(p, "%s %s: curl refused an option: %s", method, shown,
                            curl_easy_strerror(rc));
        rv = APR_EGENERAL;
    } else {
        apr_time_t started = apr_time_now();
        rc = curl_easy_perform(e);
        if (h->observe != NULL) {
            h->observe(h->observe_ctx, apr_time_now() - started, rc == CURLE_OK);
        }
        if (rc == CURLE_OK) {
            long status = 0;
            char *ct = NULL;
            curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
            curl_easy_getinfo(e, CURLINFO_CONTENT_TYPE, &ct);
            resp->status = (int)status;
            resp->content_type = ct ? apr_pstrdup(p, ct) : NULL;
            resp->body = apr_palloc(p, sink.len + 1);
            if (sink.len > 0) {
                memcpy(resp->body, sink.buf, sink.len);
            }
            resp->body[sink.len] = '\0';
            resp->body_len = sink.len;
            rv = APR_SUCCESS;
        } else if (sink.too_big || rc == CURLE_FILESIZE_EXCEEDED) {
            *err = apr_psprintf(p, "%s %s: the answer exceeds %" APR_SIZE_T_FMT " bytes", method,
                                shown, h->opts.max_response);
            rv = MSA_ETOOBIG;
        } else if (sink.no_memory || rc == CURLE_OUT_OF_MEMORY) {
            *err = apr_psprintf(p, "%s %s: out of memory", method, shown);
            rv = APR_ENOMEM;
        } else {
            /*
             * Timeouts, refused connections, DNS, TLS, a reset, an empty or
             * garbled answer: all mean "Microsoft could not be talked to".
             */
            *err = apr_psprintf(p, "%s %s: %s", method, shown,
                                http_scrub(p, *errbuf ? errbuf : curl_easy_strerror(rc)));
            rv = MSA_EUNREACHABLE;
        }
    }

    http_release(h, e);
    curl_slist_free_all(hdrs);
    curl_url_cleanup(u);
    free(sink.buf);
    return rv;
}
