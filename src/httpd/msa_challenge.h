/* MSAuthCAE: an app's claims challenge turned into a new sign-in. */
#ifndef MSA_CHALLENGE_H
#define MSA_CHALLENGE_H

#include "msa_module.h"

#define MSA_CAE_FILTER "MSAUTH_CAE"
/* A page is sent to sign in again at most this often within MSA_CAE_WINDOW seconds. */
#define MSA_CAE_MAX_PER_PAGE 3
#define MSA_CAE_WINDOW       600

/* insert_filter: a signed-in browser navigation under an app with MSAuthCAE On. */
void msa_cae_insert_filter(request_rec *r);
/* The output filter: a 401 claims challenge becomes the redirect of a new sign-in. */
apr_status_t msa_cae_output_filter(ap_filter_t *f, apr_bucket_brigade *bb);

#endif
