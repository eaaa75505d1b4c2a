/*
 * MSAuthCAE: when the app behind AuthType Microsoft answers a signed-in
 * browser's page with 401 and a claims challenge (WWW-Authenticate: Bearer
 * error="insufficient_claims", claims="..."), the browser is sent to sign in
 * again with those claims (and cp1) and brought back to the page. Anything
 * else, and any challenge that does not read cleanly, goes to the browser as
 * the app sent it.
 *
 * A loop guard (a MAC'd cookie) remembers the page (its path) last
 * challenged: the same claims for the same page again within the window, or
 * more than MSA_CAE_MAX_PER_PAGE challenges of it, pass the 401 on.
 */
#include <apr_strings.h>
#include <http_core.h>
#include <http_protocol.h>
#include <http_request.h>
#include <util_filter.h>

#include "msa_authn.h"
#include "msa_cae.h"
#include "msa_challenge.h"
#include "msa_cookie.h"
#include "msa_hmac.h"
#include "msa_jose.h"
#include "msa_login.h"
#include "msa_logout.h"
#include "msa_request.h"

typedef struct cae_ctx {
    int replaced;    /* the app's answer was replaced: the rest of its body is dropped */
    int revoke_only; /* no browser navigation: the 401 goes on, a revocation still ends */
} cae_ctx_t;

/* The original request (an ErrorDocument or internal redirect came from it). */
static request_rec *first_request(request_rec *r)
{
    while (r->prev != NULL) {
        r = r->prev;
    }
    return r;
}

/*
 * Whether the client's own request was a GET or HEAD: httpd runs the page a
 * local redirect (a CGI's Location, an ErrorDocument) names as a GET whatever
 * the method the client sent, and the page to come back to is the client's.
 */
static int sent_as_get(request_rec *r)
{
    const char *line = first_request(r)->the_request;
    return line != NULL && (strncmp(line, "GET ", 4) == 0 || strncmp(line, "HEAD ", 5) == 0);
}

void msa_cae_insert_filter(request_rec *r)
{
    if (r->main != NULL || !msa_is_microsoft(r)) {
        return;
    }
    const msa_app_t *app = msa_request_app(r);
    if (app == NULL || !app->cae || msa_request_token(r) == NULL) {
        return;
    }
    /* A client that sends its own Authorization is an API client: it gets the 401 as it is. */
    const msa_req_t *q = msa_request_record(r, 0);
    const char *authz =
        q && q->kept ? q->sent_authorization : apr_table_get(r->headers_in, "Authorization");
    cae_ctx_t *ctx = apr_pcalloc(r->pool, sizeof(*ctx));
    ctx->revoke_only = authz != NULL || !msa_is_navigation(r) || !sent_as_get(r);
    ap_add_output_filter(MSA_CAE_FILTER, ctx, r, r->connection);
}

typedef struct find_ctx {
    apr_pool_t *p;
    const char *claims; /* the first challenge's claims */
    const char *why;    /* the first unreadable field's reason */
} find_ctx_t;

static int find_field(void *data, const char *key, const char *value)
{
    find_ctx_t *fc = data;
    const char *claims, *why;
    (void)key;
    if (fc->claims == NULL) {
        apr_status_t rv = msa_cae_find_challenge(fc->p, value, &claims, &why);
        if (rv == APR_SUCCESS) {
            fc->claims = claims;
        } else if (rv != APR_ENOENT && fc->why == NULL) {
            fc->why = why;
        }
    }
    return 1;
}

/* A 16-character keyed digest of s, bound to what it is and the app. */
static const char *cae_tag(apr_pool_t *p, const msa_app_t *app, const char *what, const char *s)
{
    unsigned char mac[32];
    const msa_key_t *k = &APR_ARRAY_IDX(app->keys, 0, msa_key_t);
    const char *msg = apr_pstrcat(p, "msauth-cae\n", what, "\n", app->appid, "\n", s, NULL);
    msa_hmac_sha256(k->data, k->len, (const unsigned char *)msg, strlen(msg), mac);
    return msa_b64url_encode(p, mac, 12);
}

typedef struct guard {
    request_rec *r;
    const msa_app_t *app;
    int found;
    apr_int64_t count, since;
    const char *ptag, *ctag;
} guard_t;

/*
 * Cookie: <count>.<since>.<page tag>.<claims tag>.<MAC of the rest>. The first
 * one of this app's MAC wins: another cookie of the name (a narrower path or
 * another domain's, sent before it) is no reason to lose the module's own.
 */
static int open_guard(void *data, const char *name, const char *value)
{
    guard_t *g = data;
    if (strcmp(name, MSA_CAE_COOKIE) != 0 || strlen(value) >= 200) {
        return 0;
    }
    char *v = apr_pstrdup(g->r->pool, value), *last;
    const char *f[5];
    int n = 0;
    for (char *t = apr_strtok(v, ".", &last); t != NULL && n < 5;
         t = apr_strtok(NULL, ".", &last)) {
        f[n++] = t;
    }
    if (n != 5 || apr_strtok(NULL, ".", &last) != NULL) {
        return 0;
    }
    const char *body = apr_pstrcat(g->r->pool, f[0], ".", f[1], ".", f[2], ".", f[3], NULL);
    if (!msa_ct_streq(cae_tag(g->r->pool, g->app, "guard", body), f[4])) {
        return 0;
    }
    g->found = 1;
    g->count = apr_atoi64(f[0]);
    g->since = apr_atoi64(f[1]);
    g->ptag = f[2];
    g->ctag = f[3];
    return 1;
}

/*
 * The loop guard: 1 when this challenge of page may send the browser to sign
 * in, the cookie then updated; 0 (logged) when it must pass.
 */
static int guard_allows(request_rec *r, const msa_srv_t *srv, const msa_app_t *app,
                        const char *page, const char *claims)
{
    apr_int64_t now = apr_time_sec(apr_time_now());
    const char *ptag = cae_tag(r->pool, app, "page", page);
    const char *ctag = cae_tag(r->pool, app, "claims", claims);
    apr_int64_t count = 0, since = now;
    /* The cookies the browser sent (the app never saw them: MSAuthStripCookie). */
    guard_t g = {r, app, 0, 0, 0, NULL, NULL};
    msa_cookie_each(r->pool, msa_sent_cookies(r), open_guard, &g);
    if (g.found && strcmp(g.ptag, ptag) == 0 && g.count > 0 && g.since <= now &&
        now - g.since < MSA_CAE_WINDOW) {
        if (strcmp(g.ctag, ctag) == 0) {
            MSA_RLOG(r, APLOG_INFO, "cae_loop",
                     "appid=%s: the page was sent to sign in with these claims %" APR_INT64_T_FMT
                     "s ago and is challenged again: the 401 goes to the browser",
                     msa_app_token_id(app), now - g.since);
            return 0;
        }
        if (g.count >= MSA_CAE_MAX_PER_PAGE) {
            MSA_RLOG(r, APLOG_INFO, "cae_loop",
                     "appid=%s: the page was challenged %" APR_INT64_T_FMT
                     " times in %" APR_INT64_T_FMT "s: the 401 goes to the browser",
                     msa_app_token_id(app), g.count, now - g.since);
            return 0;
        }
        count = g.count;
        since = g.since;
    }
    const char *body = apr_psprintf(r->pool, "%" APR_INT64_T_FMT ".%" APR_INT64_T_FMT ".%s.%s",
                                    count + 1, since, ptag, ctag);
    msa_cookie_set(r, srv, app, MSA_CAE_COOKIE,
                   apr_pstrcat(r->pool, body, ".", cae_tag(r->pool, app, "guard", body), NULL), "/",
                   MSA_CAE_WINDOW, MSA_SAMESITE_LAX);
    return 1;
}

/* Headers of the app's answer that do not belong on a redirect. */
static void drop_answer_headers(request_rec *r)
{
    static const char *const names[] = {
        "WWW-Authenticate", "Location", "Content-Length", "Content-Encoding", "Content-Range",
        "Content-Location", "ETag",     "Last-Modified",  "Expires"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        apr_table_unset(r->headers_out, names[i]);
        apr_table_unset(r->err_headers_out, names[i]);
    }
}

/*
 * Microsoft's challenge after a revocation event (the user disabled, the
 * password reset, the sessions revoked) refuses every token issued before the
 * event (access_token.nbf). The module's session issued before it ends too, on
 * every server sharing MSAuthCache: a user who cannot sign in again is out of
 * every page at once, not only of those that call Graph, and a copy of the
 * cookie is worth nothing. A step-up challenge (acrs) names no such time and
 * leaves the session as it is.
 */
static void end_session_issued_before(request_rec *r, const msa_srv_t *srv, const msa_app_t *app,
                                      const char *json)
{
    const msa_token_t *t = NULL;
    for (request_rec *rr = r; rr != NULL && t == NULL; rr = rr->prev) {
        t = msa_request_token(rr);
    }
    apr_int64_t at;
    if (t == NULL || msa_cae_not_before(r->pool, json, &at) != APR_SUCCESS || t->iat >= at) {
        return;
    }
    /*
     * The event is past when Microsoft challenges for it. A time still to come would end
     * the sessions signed in again after this challenge too, each at its next challenge.
     */
    apr_int64_t now = apr_time_sec(apr_time_now());
    if (at > now + srv->clock_skew) {
        MSA_RLOG(r, APLOG_INFO, "cae_refused",
                 "appid=%s: the revocation the app's claims name is %" APR_INT64_T_FMT
                 "s to come: no session is ended",
                 msa_app_token_id(app), at - now);
        return;
    }
    if (msa_logout_session(r, srv, t) != APR_SUCCESS) {
        /* Every protected request refuses its sessions while the store cannot answer. */
        MSA_RLOG(r, APLOG_ERR, "cache_error",
                 "MSAuthCache %s cannot end the session the app's claims challenge revoked",
                 srv->cache);
        return;
    }
    MSA_RLOG(r, APLOG_INFO, "cae_revoked",
             "appid=%s user=%s: the session was issued %" APR_INT64_T_FMT
             "s before the revocation the app's claims name: ended",
             msa_app_token_id(app), msa_loggable(r, t->sub), at - t->iat);
}

/*
 * A client that is not sent to sign in (an API client, a fetch() call, a POST) gets
 * the app's 401 as it is; the session a revocation challenge names still ends:
 * whoever holds a copy of it chooses how to ask.
 */
static void revoke_if_challenged(request_rec *r)
{
    find_ctx_t fc = {r->pool, NULL, NULL};
    apr_table_do(find_field, &fc, r->headers_out, "WWW-Authenticate", NULL);
    apr_table_do(find_field, &fc, r->err_headers_out, "WWW-Authenticate", NULL);
    const char *json, *why;
    if (fc.claims != NULL && msa_cae_merge(r->pool, fc.claims, &json, &why) == APR_SUCCESS) {
        end_session_issued_before(r, msa_srv_get(r->server), msa_request_app(r), json);
    }
}

/*
 * Whether the app's 401 is a claims challenge the browser is sent to answer:
 * then the login is started (state cookie, Location) and 1 returned.
 */
static int start_challenged_login(request_rec *r)
{
    find_ctx_t fc = {r->pool, NULL, NULL};
    apr_table_do(find_field, &fc, r->headers_out, "WWW-Authenticate", NULL);
    apr_table_do(find_field, &fc, r->err_headers_out, "WWW-Authenticate", NULL);
    const msa_app_t *app = msa_request_app(r);
    if (fc.claims == NULL) {
        if (fc.why != NULL) {
            MSA_RLOG(r, APLOG_INFO, "cae_refused", "appid=%s: %s: the 401 goes to the browser",
                     msa_app_token_id(app), fc.why);
        }
        return 0;
    }
    const char *json, *why;
    if (msa_cae_merge(r->pool, fc.claims, &json, &why) != APR_SUCCESS) {
        MSA_RLOG(r, APLOG_INFO, "cae_refused",
                 "appid=%s: %s (%" APR_SIZE_T_FMT " characters): the 401 goes to the browser",
                 msa_app_token_id(app), why, strlen(fc.claims));
        return 0;
    }
    const msa_srv_t *srv = msa_srv_get(r->server);
    /* Back to the page as asked for; the guard counts by its path, whatever its query. */
    request_rec *first = first_request(r);
    const char *target = msa_return_target(r, srv, app, first->unparsed_uri);
    const char *path = first->parsed_uri.path ? first->parsed_uri.path : first->uri;
    if (target == NULL || !guard_allows(r, srv, app, path, json)) {
        return 0;
    }
    apr_table_unset(r->headers_out, "Location");
    apr_table_unset(r->err_headers_out, "Location");
    int rc = msa_start_login_claims(r, srv, app, target, json);
    if (rc != HTTP_MOVED_TEMPORARILY) {
        return 0; /* logged: the store cannot keep a login's state */
    }
    end_session_issued_before(r, srv, app, json);
    MSA_RLOG(r, APLOG_INFO, "cae_challenge",
             "appid=%s: the app asked for claims (%" APR_SIZE_T_FMT
             " characters): signing in again",
             msa_app_token_id(app), strlen(fc.claims));
    return 1;
}

apr_status_t msa_cae_output_filter(ap_filter_t *f, apr_bucket_brigade *bb)
{
    request_rec *r = f->r;
    cae_ctx_t *ctx = f->ctx;
    if (ctx != NULL && ctx->replaced) {
        apr_brigade_cleanup(bb); /* the rest of the app's 401 body */
        return APR_SUCCESS;
    }
    if (r->status == HTTP_UNAUTHORIZED && ctx != NULL && ctx->revoke_only) {
        revoke_if_challenged(r);
    }
    if (r->status != HTTP_UNAUTHORIZED || (ctx != NULL && ctx->revoke_only) ||
        !start_challenged_login(r)) {
        ap_remove_output_filter(f);
        return ap_pass_brigade(f->next, bb);
    }
    if (ctx == NULL) {
        f->ctx = ctx = apr_pcalloc(r->pool, sizeof(*ctx));
    }
    ctx->replaced = 1;
    const char *location = apr_table_get(r->headers_out, "Location");
    drop_answer_headers(r);
    apr_table_setn(r->headers_out, "Location", location);
    r->status = HTTP_MOVED_TEMPORARILY;
    r->status_line = NULL;
    ap_set_content_type(r, "text/html; charset=utf-8");
    const char *page = apr_pstrcat(r->pool,
                                   "<!DOCTYPE html><html><head><title>Sign in again</title></head>"
                                   "<body><p>This page asks you to <a href=\"",
                                   ap_escape_html(r->pool, location),
                                   "\">sign in again</a>.</p></body></html>\n", NULL);
    apr_brigade_cleanup(bb);
    apr_bucket_brigade *out = apr_brigade_create(r->pool, f->c->bucket_alloc);
    APR_BRIGADE_INSERT_TAIL(
        out, apr_bucket_pool_create(page, strlen(page), r->pool, f->c->bucket_alloc));
    APR_BRIGADE_INSERT_TAIL(out, apr_bucket_eos_create(f->c->bucket_alloc));
    ap_set_content_length(r, (apr_off_t)strlen(page));
    return ap_pass_brigade(f->next, out);
}
