/*
 * Microsoft's id_token (INTERFACE.md 4.2 step 4): RS256 with a key of the
 * tenant's JWKS (looked up again once for an unknown kid), aud, the issuer of
 * its own tenant, the tenant rule, exp/nbf/iat, nonce; then the identity it
 * vouches for (with its sid, when Microsoft sends one). And the JWKS record format the cache keeps.
 */
#include <string.h>
#include <strings.h>

#include <apr_strings.h>

#include "msa_core.h"
#include "msa_idtoken.h"
#include "msa_jose.h"
#include "msa_json.h"

int msa_jwks_entry_parse(char *v, msa_jwks_entry_t *e)
{
    char *bar1 = strchr(v, '|'), *bar2 = bar1 ? strchr(bar1 + 1, '|') : NULL;
    if (bar2 == NULL) {
        return 0;
    }
    e->fetched = apr_atoi64(v);
    e->refreshed = apr_atoi64(bar1 + 1);
    e->json = bar2 + 1;
    return 1;
}

char *msa_jwks_entry_format(apr_pool_t *p, const msa_jwks_entry_t *e)
{
    return apr_psprintf(p, "%" APR_INT64_T_FMT "|%" APR_INT64_T_FMT "|%s", e->fetched, e->refreshed,
                        e->json);
}

const char *msa_vouched(int email, int upn)
{
    return email && upn ? "email upn" : email ? "email" : upn ? "upn" : NULL;
}

int msa_sid_ok(const char *sid)
{
    /* OpenID's syntax for it is a client id's (visible ASCII); keys and logs need no more. */
    size_t n = sid ? strlen(sid) : 0;
    if (n == 0 || n > MSA_SID_MAX) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (sid[i] < 0x21 || sid[i] > 0x7e) {
            return 0;
        }
    }
    return 1;
}

const char *msa_idtoken_verify(apr_pool_t *p, const char *id_token, const msa_idtoken_check_t *chk,
                               msa_identity_t *ident, int *overage, const char **detail)
{
    const char *jwks = NULL;
    char *payload = NULL;
    apr_status_t rv = chk->jwks(chk->ctx, 0, &jwks, detail);
    if (rv == APR_SUCCESS) {
        rv = msa_jws_rs256_verify(p, id_token, jwks, &payload, detail);
        if (rv == MSA_ENOKEY) {
            /* Keys roll over: an unknown kid is worth one more look at the JWKS. */
            rv = chk->jwks(chk->ctx, 1, &jwks, detail);
            if (rv == APR_SUCCESS) {
                rv = msa_jws_rs256_verify(p, id_token, jwks, &payload, detail);
            }
        }
    }
    if (rv == MSA_EUNREACHABLE) {
        return "idp_unreachable";
    }
    if (rv != APR_SUCCESS) {
        return "invalid_id_token";
    }
    json_object *o = msa_json_parse_object(p, payload, strlen(payload));
    const char *cause = "invalid_id_token";
    apr_int64_t now = chk->now, exp = 0, nbf = 0, iat = 0;
    if (o == NULL) {
        *detail = "id_token claims are not a JSON object";
        goto out;
    }
    const char *aud = msa_json_str(p, o, "aud"), *iss = msa_json_str(p, o, "iss");
    const char *tid = msa_json_str(p, o, "tid"), *tok_nonce = msa_json_str(p, o, "nonce");
    if (aud == NULL || strcmp(aud, chk->client_id) != 0) {
        *detail = "id_token aud is not our client id";
        goto out;
    }
    if (tid == NULL || msa_parse_guid(tid) != NULL) {
        *detail = "id_token has no tenant id";
        goto out;
    }
    if (iss == NULL || strcmp(iss, apr_pstrcat(p, chk->login_host, "/", tid, "/v2.0", NULL)) != 0) {
        *detail = "id_token iss does not match its tenant";
        goto out;
    }
    if (!msa_json_int(o, "exp", &exp) || exp <= now - chk->skew) {
        *detail = "id_token expired";
        goto out;
    }
    if ((msa_json_int(o, "nbf", &nbf) && nbf > now + chk->skew) ||
        (msa_json_int(o, "iat", &iat) && iat > now + chk->skew)) {
        *detail = "id_token not yet valid";
        goto out;
    }
    if (chk->nonce != NULL && (tok_nonce == NULL || !msa_ct_streq(tok_nonce, chk->nonce))) {
        *detail = "id_token nonce does not match the login";
        goto out;
    }
    ident->id = msa_json_str(p, o, "oid");
    if (ident->id == NULL) {
        *detail = "id_token has no oid";
        goto out;
    }
    if (!msa_app_tenant_allowed(chk->app, tid)) {
        *detail = apr_psprintf(p, "tenant %s is not allowed", tid);
        cause = "tenant_not_allowed";
        goto out;
    }
    ident->tid = tid;
    ident->name = msa_json_str(p, o, "name");
    ident->upn = msa_json_str(p, o, "preferred_username");
    ident->email = msa_json_str(p, o, "email");
    /* xms_edov: Microsoft says the email claim's domain belongs to the user's tenant. */
    json_object *edov;
    int verified = ident->email != NULL && json_object_object_get_ex(o, "xms_edov", &edov) &&
                   (json_object_is_type(edov, json_type_boolean)
                        ? json_object_get_boolean(edov)
                        : json_object_is_type(edov, json_type_string) &&
                              (strcasecmp(json_object_get_string(edov), "true") == 0 ||
                               strcmp(json_object_get_string(edov), "1") == 0));
    ident->verified = msa_vouched(verified, 0);
    if (ident->email == NULL && ident->upn != NULL && strchr(ident->upn, '@') != NULL) {
        ident->email = ident->upn;
    }
    ident->oid = ident->id;
    /* sid (optional claim): the Microsoft session its front-channel logout will name. */
    ident->sid = msa_json_str(p, o, "sid");
    if (!msa_sid_ok(ident->sid)) {
        ident->sid = NULL; /* none, or not one a logout could name: the login has no sid */
    }
    json_object *v;
    if (json_object_object_get_ex(o, "groups", &v) && json_object_is_type(v, json_type_array)) {
        size_t n = json_object_array_length(v);
        ident->groups = apr_array_make(p, (int)n, sizeof(const char *));
        for (size_t i = 0; i < n; i++) {
            json_object *g = json_object_array_get_idx(v, i);
            if (json_object_is_type(g, json_type_string) &&
                msa_parse_guid(json_object_get_string(g)) == NULL) {
                APR_ARRAY_PUSH(ident->groups, const char *) =
                    apr_pstrdup(p, json_object_get_string(g));
            }
        }
    }
    /* Over 200 groups Microsoft sends a pointer to Graph instead: the "overage". */
    json_object *names, *g;
    *overage = json_object_object_get_ex(o, "_claim_names", &names) &&
               json_object_is_type(names, json_type_object) &&
               json_object_object_get_ex(names, "groups", &g);
    cause = NULL;
out:
    return cause;
}
