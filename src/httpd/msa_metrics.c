/*
 * MSAuthMetrics: counters in shared memory made before the children fork, so
 * every child adds to the same numbers; Prometheus text at <callback>/metrics,
 * served by the normal handler so Apache's own Require guards it.
 */
#include <apr_atomic.h>
#include <apr_shm.h>
#include <apr_strings.h>
#include <http_core.h>
#include <http_protocol.h>
#include <http_request.h>

#include "msa_metrics.h"
#include "msa_request.h"

static const char *const causes[] = {
    "access_denied",      "invalid_request",       "invalid_state",    "unsolicited_login",
    "unknown_app",        "token_exchange_failed", "invalid_id_token", "profile_failed",
    "tenant_not_allowed", "idp_unreachable",       "invalid_token",    "other",
};
#define NCAUSES (sizeof(causes) / sizeof(*causes))

static const char *const refusals[] = {"invalid", "expired", "revoked", "spent", "stale"};
#define NREFUSALS (sizeof(refusals) / sizeof(*refusals))

/* Upper bounds of the outgoing-call latency histogram, in milliseconds. */
static const int buckets_ms[] = {25, 50, 100, 250, 500, 1000, 2500, 5000, 10000};
#define NBUCKETS (sizeof(buckets_ms) / sizeof(*buckets_ms))

typedef struct msa_counters {
    apr_uint64_t logins_started, logins_ok;
    apr_uint64_t logins_failed[NCAUSES];
    apr_uint64_t tokens_issued;
    apr_uint64_t tokens_refused[NREFUSALS];
    apr_uint64_t jwks_fetches, cache_errors, cache_epochs;
    apr_uint64_t calls, calls_failed, call_usec_sum;
    apr_uint64_t call_buckets[NBUCKETS + 1]; /* cumulative at output; last is +Inf */
} msa_counters_t;

static msa_counters_t *counters;
static apr_shm_t *shm;

static apr_status_t shm_gone(void *data)
{
    counters = NULL;
    shm = NULL;
    return APR_SUCCESS;
}

int msa_metrics_post_config(apr_pool_t *pconf, server_rec *s)
{
    int wanted = 0;
    for (server_rec *vs = s; vs; vs = vs->next) {
        wanted |= msa_srv_get(vs)->metrics;
    }
    if (!wanted) {
        return OK;
    }
    /* Anonymous shared memory: inherited by every child, gone with the configuration. */
    apr_status_t rv = apr_shm_create(&shm, sizeof(msa_counters_t), NULL, pconf);
    if (rv != APR_SUCCESS) {
        MSA_SLOG(s, APLOG_CRIT, rv, "metrics", "MSAuthMetrics: no shared memory for counters");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    counters = apr_shm_baseaddr_get(shm);
    memset(counters, 0, sizeof(*counters));
    apr_pool_cleanup_register(pconf, NULL, shm_gone, apr_pool_cleanup_null);
    return OK;
}

#define INC(field)                                                                                 \
    do {                                                                                           \
        if (counters != NULL) {                                                                    \
            apr_atomic_inc64(&counters->field);                                                    \
        }                                                                                          \
    } while (0)

void msa_metric_login_started(void)
{
    INC(logins_started);
}

void msa_metric_login_ok(void)
{
    INC(logins_ok);
}

void msa_metric_login_failed(const char *cause)
{
    size_t i = 0;
    while (i < NCAUSES - 1 && strcmp(causes[i], cause) != 0) {
        i++;
    }
    INC(logins_failed[i]);
}

void msa_metric_token_issued(void)
{
    INC(tokens_issued);
}

void msa_metric_token_refused(const char *reason)
{
    size_t i = 0;
    while (i < NREFUSALS - 1 && strcmp(refusals[i], reason) != 0) {
        i++;
    }
    /* Unknown reasons count as "invalid", the first. */
    INC(tokens_refused[i < NREFUSALS && strcmp(refusals[i], reason) == 0 ? i : 0]);
}

void msa_metric_jwks_fetch(void)
{
    INC(jwks_fetches);
}

void msa_metric_cache_error(void)
{
    INC(cache_errors);
}

void msa_metric_cache_epoch(void)
{
    INC(cache_epochs);
}

void msa_metric_call(void *ctx, apr_interval_time_t elapsed, int answered)
{
    if (counters == NULL) {
        return;
    }
    apr_atomic_inc64(&counters->calls);
    if (!answered) {
        apr_atomic_inc64(&counters->calls_failed);
    }
    apr_atomic_add64(&counters->call_usec_sum, (apr_uint64_t)elapsed);
    size_t b = 0;
    while (b < NBUCKETS && elapsed > (apr_interval_time_t)buckets_ms[b] * 1000) {
        b++;
    }
    apr_atomic_inc64(&counters->call_buckets[b]);
}

static apr_uint64_t get(apr_uint64_t *v)
{
    return apr_atomic_read64(v);
}

int msa_metrics_handler(request_rec *r)
{
    const msa_srv_t *srv = msa_srv_get(r->server);
    if (!srv->metrics || counters == NULL || r->uri == NULL ||
        strcmp(r->uri, apr_pstrcat(r->pool, srv->callback_path, "/metrics", NULL)) != 0) {
        return DECLINED;
    }
    if (r->method_number != M_GET) {
        r->allowed = AP_METHOD_BIT << M_GET;
        return HTTP_METHOD_NOT_ALLOWED;
    }
    ap_set_content_type(r, "text/plain; version=0.0.4; charset=utf-8");
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    if (r->header_only) {
        return OK;
    }
    msa_counters_t *c = counters;
    ap_rputs("# HELP msauth_logins_started_total Logins sent to Microsoft by the module.\n"
             "# TYPE msauth_logins_started_total counter\n",
             r);
    ap_rprintf(r, "msauth_logins_started_total %" APR_UINT64_T_FMT "\n", get(&c->logins_started));
    ap_rputs("# HELP msauth_logins_total Logins that came back, by result and cause.\n"
             "# TYPE msauth_logins_total counter\n",
             r);
    ap_rprintf(r, "msauth_logins_total{result=\"ok\"} %" APR_UINT64_T_FMT "\n", get(&c->logins_ok));
    for (size_t i = 0; i < NCAUSES; i++) {
        ap_rprintf(r, "msauth_logins_total{result=\"failed\",cause=\"%s\"} %" APR_UINT64_T_FMT "\n",
                   causes[i], get(&c->logins_failed[i]));
    }
    ap_rputs("# HELP msauth_tokens_issued_total Session tokens issued.\n"
             "# TYPE msauth_tokens_issued_total counter\n",
             r);
    ap_rprintf(r, "msauth_tokens_issued_total %" APR_UINT64_T_FMT "\n", get(&c->tokens_issued));
    ap_rputs("# HELP msauth_tokens_refused_total Tokens refused, by reason.\n"
             "# TYPE msauth_tokens_refused_total counter\n",
             r);
    for (size_t i = 0; i < NREFUSALS; i++) {
        ap_rprintf(r, "msauth_tokens_refused_total{reason=\"%s\"} %" APR_UINT64_T_FMT "\n",
                   refusals[i], get(&c->tokens_refused[i]));
    }
    ap_rputs("# HELP msauth_jwks_fetches_total Fetches of Microsoft's signing keys.\n"
             "# TYPE msauth_jwks_fetches_total counter\n",
             r);
    ap_rprintf(r, "msauth_jwks_fetches_total %" APR_UINT64_T_FMT "\n", get(&c->jwks_fetches));
    ap_rputs("# HELP msauth_cache_errors_total MSAuthCache operations that failed.\n"
             "# TYPE msauth_cache_errors_total counter\n",
             r);
    ap_rprintf(r, "msauth_cache_errors_total %" APR_UINT64_T_FMT "\n", get(&c->cache_errors));
    ap_rputs("# HELP msauth_cache_epochs_total New MSAuthCache epochs begun here (the store lost "
             "its state or was full: older tokens are refused).\n"
             "# TYPE msauth_cache_epochs_total counter\n",
             r);
    ap_rprintf(r, "msauth_cache_epochs_total %" APR_UINT64_T_FMT "\n", get(&c->cache_epochs));
    ap_rputs("# HELP msauth_outgoing_call_seconds Calls to Microsoft, by duration.\n"
             "# TYPE msauth_outgoing_call_seconds histogram\n",
             r);
    apr_uint64_t cumulative = 0;
    for (size_t b = 0; b <= NBUCKETS; b++) {
        cumulative += get(&c->call_buckets[b]);
        if (b < NBUCKETS) {
            ap_rprintf(r, "msauth_outgoing_call_seconds_bucket{le=\"%g\"} %" APR_UINT64_T_FMT "\n",
                       buckets_ms[b] / 1000.0, cumulative);
        } else {
            ap_rprintf(r,
                       "msauth_outgoing_call_seconds_bucket{le=\"+Inf\"} %" APR_UINT64_T_FMT "\n",
                       cumulative);
        }
    }
    ap_rprintf(r, "msauth_outgoing_call_seconds_sum %.6f\n", get(&c->call_usec_sum) / 1e6);
    ap_rprintf(r, "msauth_outgoing_call_seconds_count %" APR_UINT64_T_FMT "\n", get(&c->calls));
    ap_rputs("# HELP msauth_outgoing_calls_failed_total Calls to Microsoft without an answer.\n"
             "# TYPE msauth_outgoing_calls_failed_total counter\n",
             r);
    ap_rprintf(r, "msauth_outgoing_calls_failed_total %" APR_UINT64_T_FMT "\n",
               get(&c->calls_failed));
    return OK;
}
