/*
 * The Microsoft identity platform: authorize URL, code redemption, Graph
 * profile and groups, JWKS fetch.
 */
#ifndef MSA_MS_H
#define MSA_MS_H

#include "msa_core.h"
#include "msa_cred.h"
#include "msa_http.h"

typedef struct msa_ms_client {
    const char *login_host; /* "https://login.microsoftonline.com", no trailing '/' */
    const char *graph_host; /* "https://graph.microsoft.com" */
    const char *tenant;     /* path segment: common, organizations, consumers, GUID, domain */
    const char *client_id;
    const char *client_secret; /* client_secret_post, when there is no credential below */
    msa_cred_t *credential;    /* a certificate or an assertion file: client_assertion */
    const char *redirect_uri;
    const char *scope;
    const char *claims; /* a claims request (JSON) for authorize and token requests, or NULL */
} msa_ms_client_t;

typedef struct msa_ms_tokens {
    const char *access_token;
    const char *id_token;      /* NULL when absent */
    const char *refresh_token; /* NULL when absent (offline_access not granted) */
    const char *scope;         /* granted scopes, may be NULL */
    long expires_in;           /* number or numeric string in the answer; 0 when absent */
    const char *warning;       /* the credential's: an assertion file that could not be re-read */
} msa_ms_tokens_t;

typedef struct msa_ms_profile {
    const char *id;    /* required */
    const char *name;  /* displayName */
    const char *email; /* mail, else userPrincipalName when it holds '@' */
    const char *upn;   /* userPrincipalName */
} msa_ms_profile_t;

/* L/T/oauth2/v2.0/authorize?...; code_challenge and nonce may be NULL. */
char *msa_ms_authorize_url(apr_pool_t *p, const msa_ms_client_t *c, const char *state,
                           const char *code_challenge, const char *nonce);

/* L/T/oauth2/v2.0/logout[?post_logout_redirect_uri=...]. */
char *msa_ms_logout_url(apr_pool_t *p, const msa_ms_client_t *c, const char *post_logout);

/* L/T/oauth2/v2.0/token: also the aud of a certificate's client assertion. */
char *msa_ms_token_url(apr_pool_t *p, const msa_ms_client_t *c);

/* L/T/discovery/v2.0/keys */
char *msa_ms_jwks_url(apr_pool_t *p, const msa_ms_client_t *c);

/*
 * Redeems an authorization code at L/T/oauth2/v2.0/token, authenticated by
 * the client's credential (client_assertion) or else its secret
 * (client_secret_post); MSA_EDENIED when no assertion can be made.
 * code_verifier is NULL for a client-built login. MSA_EUNREACHABLE when
 * Microsoft cannot be reached; MSA_EREFUSED when Microsoft refused the code
 * itself (invalid_grant: made up, expired, used, or another client's), which
 * anyone can cause; MSA_EPROTO for another error answer or one without an
 * access token (err then holds Microsoft's error code and AADSTS number).
 */
apr_status_t msa_ms_redeem_code(msa_http_t *h, apr_pool_t *p, const msa_ms_client_t *c,
                                const char *code, const char *code_verifier, msa_ms_tokens_t *out,
                                const char **err);

/*
 * Redeems a refresh token at L/T/oauth2/v2.0/token (grant_type=refresh_token,
 * the client's scope and claims), authenticated as msa_ms_redeem_code. The answer's
 * refresh_token, when there is one, replaces the one sent. MSA_EREFUSED when
 * Microsoft refused the refresh token (invalid_grant: expired, revoked, or
 * another client's: the user must sign in again); otherwise as
 * msa_ms_redeem_code.
 */
apr_status_t msa_ms_refresh(msa_http_t *h, apr_pool_t *p, const msa_ms_client_t *c,
                            const char *refresh_token, msa_ms_tokens_t *out, const char **err);

/*
 * G/v1.0/me with the access token, mapped as Para does. MSA_EDENIED for a
 * 401/403, MSA_EPROTO for any other bad answer or a missing id,
 * MSA_EUNREACHABLE when Graph cannot be reached.
 */
apr_status_t msa_ms_graph_me(msa_http_t *h, apr_pool_t *p, const char *graph_host,
                             const char *access_token, msa_ms_profile_t *out, const char **err);

/* transitiveMemberOf pages followed at most (at 999 a page, Graph's most). */
#define MSA_MS_MAX_GROUP_PAGES 200

/*
 * G/v1.0/me/transitiveMemberOf?$select=id&$top=999, following every
 * @odata.nextLink. Result: array of const char *, the whole list or a
 * failure, never part of it: MSA_ETOOBIG past max_ids ids or
 * MSA_MS_MAX_GROUP_PAGES pages, MSA_EPROTO for a nextLink off the Graph
 * host (the token would go with it) or a bad page, MSA_EDENIED for a
 * 401/403, MSA_EUNREACHABLE when Graph cannot be reached.
 */
apr_status_t msa_ms_graph_groups(msa_http_t *h, apr_pool_t *p, const char *graph_host,
                                 const char *access_token, int max_ids, apr_array_header_t **ids,
                                 const char **err);

/* Fetches the JWKS document (raw JSON, checked to hold a "keys" array). */
apr_status_t msa_ms_fetch_jwks(msa_http_t *h, apr_pool_t *p, const msa_ms_client_t *c, char **jwks,
                               const char **err);

/*
 * Whether a scope list names Graph's User.Read: any case, with or without the
 * "https://graph.microsoft.com/" prefix.
 */
int msa_ms_scope_has_user_read(const char *scope);

/* Whether s is a tenant segment: common, organizations, consumers, a GUID or a domain. */
int msa_ms_tenant_valid(const char *s);

/* The tenant id of personal Microsoft accounts. */
#define MSA_MS_CONSUMERS_TID "9188040d-6c67-4c5b-b112-36a304b66dad"

/* The user's tenant, as Graph names it. */
typedef struct msa_ms_org {
    const char *tid; /* the tenant id */
    apr_array_header_t
        *domains; /* const char *: its verified domains; empty for personal accounts */
} msa_ms_org_t;

/*
 * The tenant of the user whose access token Graph /me accepted (me_id: the id
 * /me answered). A personal account (an id that is not a GUID) is the
 * consumers tenant without a call; a work/school account's tenant and
 * verified domains come from G/v1.0/organization. APR_NOTFOUND when Graph
 * names no organization (err says why), MSA_EDENIED for a 401,
 * MSA_EUNREACHABLE when Graph cannot be reached.
 */
apr_status_t msa_ms_graph_tenant(msa_http_t *h, apr_pool_t *p, const char *graph_host,
                                 const char *access_token, const char *me_id, msa_ms_org_t *out,
                                 const char **err);

/*
 * Whether the rule admits exactly one organisation: MSAuthTenant a tenant GUID
 * or domain, or a single MSAuthAllowedTenants entry; personal accounts never.
 */
int msa_ms_tenant_single(const char *tenant, const apr_array_header_t *allowed);

/* Whether domain is one of domains (any case). */
int msa_ms_domain_in(const char *domain, const apr_array_header_t *domains);

/* Whether the domain of the address addr (after its last '@') is one of domains. */
int msa_ms_address_in(const char *addr, const apr_array_header_t *domains);

#endif
