/*
 * mod_msauth: "Sign in with Microsoft" for Apache httpd.
 *
 * This file is the table of contents: the module struct and the hooks. The
 * protocol lives in src/core, the glue in src/httpd.
 */
#define MSA_MODULE_MAIN
#include <httpd.h>
#include <http_config.h>
#include <http_protocol.h>
#include <http_request.h>
#include <mod_auth.h>

#include "msa_authn.h"
#include "msa_authz.h"
#include "msa_challenge.h"
#include "msa_config.h"
#include "msa_dispatch.h"
#include "msa_health.h"
#include "msa_metrics.h"
#include "msa_module.h"
#include "msa_mstokens.h"
#include "msa_redact.h"

static void msa_register_hooks(apr_pool_t *p)
{
    ap_hook_pre_config(msa_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_check_config(msa_check_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(msa_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(msa_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    /* First, so nothing logs the request line before its codes and tokens are hidden. */
    ap_hook_post_read_request(msa_redact_request_line, NULL, NULL, APR_HOOK_REALLY_FIRST);
    /* Every request: client-sent X-MS-TOKEN-* headers go before anything reads them... */
    ap_hook_post_perdir_config(msa_mstokens_strip, NULL, NULL, APR_HOOK_REALLY_FIRST);
    /* AuthType Microsoft: client-sent identity headers go before any access check... */
    ap_hook_post_perdir_config(msa_scrub_request, NULL, NULL, APR_HOOK_REALLY_FIRST);
    /* ...and the module's cookies and Bearer token before the handler, Require met or not. */
    ap_hook_fixups(msa_hide_credentials, NULL, NULL, APR_HOOK_FIRST);
    /* ...and again for a request that got its configuration from a subrequest (DirectoryIndex);
     * then, on every request, Microsoft tokens not set for this one are removed. */
    ap_hook_insert_filter(msa_before_handler, NULL, NULL, APR_HOOK_REALLY_FIRST);
    /* MSAuthCAE: after the handler's own filters are set, before any content-set one (deflate). */
    ap_hook_insert_filter(msa_cae_insert_filter, NULL, NULL, APR_HOOK_MIDDLE);
    ap_register_output_filter(MSA_CAE_FILTER, msa_cae_output_filter, NULL, AP_FTYPE_RESOURCE);
    /* The access log still names the user an ErrorDocument into another app did not see. */
    ap_hook_log_transaction(msa_restore_users, NULL, NULL, APR_HOOK_REALLY_FIRST);
    /* AuthType Microsoft: only when this location asks for it. */
    ap_hook_check_authn(msa_check_authn, NULL, NULL, APR_HOOK_MIDDLE, AP_AUTH_INTERNAL_PER_CONF);
    /* <callback>/metrics goes through Apache's access checks like any content. */
    ap_hook_handler(msa_metrics_handler, NULL, NULL, APR_HOOK_FIRST);
    ap_hook_handler(msa_health_handler, NULL, NULL, APR_HOOK_FIRST);
    /* A signed-in user who fails a Require rule gets 403, not 401. */
    ap_hook_note_auth_failure(msa_note_auth_failure, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_insert_error_filter(msa_insert_error_filter, NULL, NULL, APR_HOOK_MIDDLE);
    /* Require ms-user, ms-domain, ms-tenant, ms-group, ms-claim. */
    msa_authz_register(p);
    /* Before other quick handlers (mod_cache): the callback must never come from a cache. */
    ap_hook_quick_handler(msa_quick_handler, NULL, NULL, APR_HOOK_FIRST);
}

AP_DECLARE_MODULE(msauth) = {
    STANDARD20_MODULE_STUFF,     msa_create_dir_config, msa_merge_dir_config,
    msa_create_srv_config,       msa_merge_srv_config,  msa_cmds,
    msa_register_hooks,
#ifdef AP_MODULE_FLAG_ALWAYS_MERGE
    AP_MODULE_FLAG_ALWAYS_MERGE,
#endif
};
