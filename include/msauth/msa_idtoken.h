/* Microsoft's id_token verified, and the JWKS record the cache keeps. */
#ifndef MSA_IDTOKEN_H
#define MSA_IDTOKEN_H

#include <apr_pools.h>

#include "msa_cfg.h"
#include "msa_token.h"

/*
 * The JWKS of the login's tenant (refresh: fetch again, the cached document
 * named an unknown kid). MSA_EUNREACHABLE when Microsoft cannot be reached;
 * any other failure refuses the token.
 */
typedef apr_status_t (*msa_jwks_fn)(void *ctx, int refresh, const char **jwks, const char **err);

typedef struct msa_idtoken_check {
    const char *client_id;  /* aud */
    const char *login_host; /* iss = <login_host>/<tid>/v2.0 */
    const char *nonce;      /* the login's, or NULL (a client-built login has none of ours) */
    const msa_app_t *app;   /* its tenant rule (msa_app_tenant_allowed) */
    apr_int64_t now, skew;  /* epoch seconds */
    msa_jwks_fn jwks;
    void *ctx;
} msa_idtoken_check_t;

/*
 * Verifies id_token and fills ident from it (oid, tid, name, email, UPN,
 * groups, what xms_edov vouches for, sid when msa_sid_ok); *overage when the groups are at Graph.
 * NULL, or the login failure cause ("invalid_id_token", "tenant_not_allowed",
 * "idp_unreachable") with *detail set.
 */
const char *msa_idtoken_verify(apr_pool_t *p, const char *id_token, const msa_idtoken_check_t *chk,
                               msa_identity_t *ident, int *overage, const char **detail);

/* "<fetched>|<refreshed>|<document>" (epoch seconds): a JWKS as every server sharing the cache sees
 * it. */
typedef struct msa_jwks_entry {
    apr_int64_t fetched, refreshed;
    const char *json;
} msa_jwks_entry_t;
/* Parses v in place: 1, or 0 for a record of another shape. */
int msa_jwks_entry_parse(char *v, msa_jwks_entry_t *e);
char *msa_jwks_entry_format(apr_pool_t *p, const msa_jwks_entry_t *e);

/* The longest sid taken from an id_token or a front-channel logout. */
#define MSA_SID_MAX 256
/* 1 when sid is a session id the module keeps: 1 to MSA_SID_MAX visible ASCII characters. */
int msa_sid_ok(const char *sid);

/* The verified claim's words for what Microsoft vouched for: "email", "upn", both, or NULL. */
const char *msa_vouched(int email, int upn);

#endif
