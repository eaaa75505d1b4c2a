/* Shared counters (MSAuthMetrics) and <callback>/metrics. */
#ifndef MSA_METRICS_H
#define MSA_METRICS_H

#include "msa_module.h"

int msa_metrics_post_config(apr_pool_t *pconf, server_rec *s);
int msa_metrics_handler(request_rec *r);
void msa_metric_login_started(void);
void msa_metric_login_ok(void);
void msa_metric_login_failed(const char *cause);
void msa_metric_token_issued(void);
void msa_metric_token_refused(const char *reason);
void msa_metric_jwks_fetch(void);
void msa_metric_cache_error(void);
void msa_metric_cache_epoch(void);
void msa_metric_call(void *ctx, apr_interval_time_t elapsed, int answered);

#endif
