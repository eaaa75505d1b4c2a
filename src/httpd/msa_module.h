/* The Apache glue's shared declarations: config access, logging, hooks. */
#ifndef MSA_MODULE_H
#define MSA_MODULE_H

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>

#include "msa_cfg.h"
#include "msa_http.h"
#include "msa_ms.h"
#include "msa_token.h"

extern module AP_MODULE_DECLARE_DATA msauth_module;

#if defined(APLOG_USE_MODULE) && !defined(MSA_MODULE_MAIN) /* AP_DECLARE_MODULE declares it there  \
                                                            */
APLOG_USE_MODULE(msauth);
#endif

/* Every line starts "msauth: <tag>:" so it can be grepped and alerted on. */
#define MSA_RLOG(r, level, tag, ...)                                                               \
    ap_log_rerror(APLOG_MARK, (level), 0, (r), "msauth: " tag ": " __VA_ARGS__)
#define MSA_SLOG(s, level, status, tag, ...)                                                       \
    ap_log_error(APLOG_MARK, (level), (status), (s), "msauth: " tag ": " __VA_ARGS__)

/* A directive's use of an app, checked once all apps are known. */
typedef struct msa_app_ref {
    server_rec *s;
    const char *appid;
    const char *where;
} msa_app_ref_t;

extern apr_array_header_t *msa_app_refs;
extern const command_rec msa_cmds[];

static inline msa_srv_t *msa_srv_get(const server_rec *s)
{
    return ap_get_module_config(s->module_config, &msauth_module);
}

static inline msa_dir_t *msa_dir_get(const request_rec *r)
{
    return ap_get_module_config(r->per_dir_config, &msauth_module);
}

#endif
