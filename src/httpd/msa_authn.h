/* AuthType Microsoft: the protected request. */
#ifndef MSA_AUTHN_H
#define MSA_AUTHN_H

#include "msa_module.h"

/* Under AuthType Microsoft: client-sent identity headers dropped (post_perdir_config). */
int msa_scrub_request(request_rec *r);
/* Under AuthType Microsoft: the module's cookies and Bearer token hidden from the app (fixups). */
int msa_hide_credentials(request_rec *r);
int msa_check_authn(request_rec *r);
/* Whether the request is under AuthType Microsoft. */
int msa_is_microsoft(request_rec *r);
/* Whether the request is a browser navigation that may be sent to a login page. */
int msa_is_navigation(request_rec *r);
/* insert_filter: a request that reached its handler by mod_dir's or mod_negotiation's fast
 * redirect. */
void msa_before_handler(request_rec *r);
/* log_transaction: the users hidden from an internal redirect into another app, put back. */
int msa_restore_users(request_rec *r);
int msa_note_auth_failure(request_rec *r, const char *auth_type);
void msa_insert_error_filter(request_rec *r);

#endif
