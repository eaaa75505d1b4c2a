/*
 * Require ms-user, ms-domain, ms-tenant, ms-group, ms-claim: authorization
 * providers over the session AuthType Microsoft found. Lines are parsed once
 * at config time. A user who fails them gets 403, never a 401 that would
 * loop into a new login.
 */
#include <stddef.h>

#include <apr_strings.h>
#include <http_request.h>
#include <mod_auth.h>

#include "msa_apps.h"
#include "msa_authz.h"
#include "msa_request.h"

typedef enum { REQ_USER, REQ_DOMAIN, REQ_TENANT, REQ_GROUP, REQ_CLAIM } req_kind_t;

typedef struct parsed_req {
    apr_array_header_t *words; /* const char *; for ms-claim: name, value pairs */
} parsed_req_t;

static const char *parse_words(cmd_parms *cmd, const char *line, const void **parsed,
                               req_kind_t kind)
{
    parsed_req_t *pr = apr_pcalloc(cmd->pool, sizeof(*pr));
    pr->words = apr_array_make(cmd->pool, 4, sizeof(const char *));
    const char *w;
    while (*(w = ap_getword_conf(cmd->pool, &line)) != '\0') {
        if (kind == REQ_TENANT || kind == REQ_GROUP) {
            if (msa_parse_guid(w) != NULL) {
                return apr_psprintf(cmd->pool, "Require %s: '%s' is not a GUID",
                                    kind == REQ_TENANT ? "ms-tenant" : "ms-group", w);
            }
        }
        if (kind == REQ_CLAIM) {
            const char *eq = strchr(w, '=');
            if (eq == NULL || eq == w) {
                return apr_psprintf(cmd->pool, "Require ms-claim: '%s' is not name=value", w);
            }
            APR_ARRAY_PUSH(pr->words, const char *) = apr_pstrmemdup(cmd->pool, w, eq - w);
            w = eq + 1;
        }
        APR_ARRAY_PUSH(pr->words, const char *) = w;
    }
    if (pr->words->nelts == 0) {
        return "Require ms-…: needs at least one value";
    }
    *parsed = pr;
    return NULL;
}

#define PARSER(fn, kind)                                                                           \
    static const char *fn(cmd_parms *cmd, const char *line, const void **parsed)                   \
    {                                                                                              \
        return parse_words(cmd, line, parsed, kind);                                               \
    }
PARSER(parse_user, REQ_USER)
PARSER(parse_domain, REQ_DOMAIN)
PARSER(parse_tenant, REQ_TENANT)
PARSER(parse_group, REQ_GROUP)
PARSER(parse_claim, REQ_CLAIM)

int msa_address_trusted(request_rec *r, const msa_token_t *t, const char *which)
{
    const msa_dir_t *dir = msa_dir_get(r);
    if (dir->trust_unverified_email) {
        return 1;
    }
    /* Only the app's one organisation names its users: whatever it says of them holds. */
    const msa_app_t *app = msa_request_app(r);
    if (app == NULL) {
        app = msa_app_lookup(r, msa_srv_get(r->server), dir->app);
    }
    if (app != NULL && msa_ms_tenant_single(app->tenant, app->allowed_tenants) && t->tid != NULL &&
        msa_app_tenant_allowed(app, t->tid)) {
        return 1;
    }
    return msa_word_in(t->verified, which);
}

static int any_equal(const apr_array_header_t *words, const char *v)
{
    for (int i = 0; v != NULL && i < words->nelts; i++) {
        if (strcasecmp(APR_ARRAY_IDX(words, i, const char *), v) == 0) {
            return 1;
        }
    }
    return 0;
}

static const char *domain_of(const char *addr)
{
    const char *at = addr ? strrchr(addr, '@') : NULL;
    return at ? at + 1 : NULL;
}

static const char *claim_value(const msa_token_t *t, const char *name)
{
    static const struct {
        const char *name;
        size_t offset;
    } claims[] = {
        {"sub", offsetof(msa_token_t, sub)},     {"id", offsetof(msa_token_t, sub)},
        {"name", offsetof(msa_token_t, name)},   {"email", offsetof(msa_token_t, email)},
        {"upn", offsetof(msa_token_t, upn)},     {"tid", offsetof(msa_token_t, tid)},
        {"appid", offsetof(msa_token_t, appid)}, {"idp", offsetof(msa_token_t, idp)},
    };
    for (size_t i = 0; i < sizeof(claims) / sizeof(*claims); i++) {
        if (strcmp(claims[i].name, name) == 0) {
            return *(const char *const *)((const char *)t + claims[i].offset);
        }
    }
    return NULL;
}

static authz_status check(request_rec *r, const void *parsed, req_kind_t kind)
{
    if (r->user == NULL) {
        return AUTHZ_DENIED_NO_USER;
    }
    const msa_token_t *t = msa_request_token(r);
    const parsed_req_t *pr = parsed;
    int ok = 0;
    if (t == NULL) {
        return AUTHZ_DENIED;
    }
    switch (kind) {
    case REQ_USER:
        ok = (msa_address_trusted(r, t, "email") && any_equal(pr->words, t->email)) ||
             (msa_address_trusted(r, t, "upn") && any_equal(pr->words, t->upn));
        break;
    case REQ_DOMAIN:
        ok = (msa_address_trusted(r, t, "upn") && any_equal(pr->words, domain_of(t->upn))) ||
             (msa_address_trusted(r, t, "email") && any_equal(pr->words, domain_of(t->email)));
        break;
    case REQ_TENANT:
        ok = any_equal(pr->words, t->tid);
        break;
    case REQ_GROUP:
        for (int i = 0; !ok && t->groups && i < t->groups->nelts; i++) {
            ok = any_equal(pr->words, APR_ARRAY_IDX(t->groups, i, const char *));
        }
        break;
    case REQ_CLAIM:
        for (int i = 0; !ok && i + 1 < pr->words->nelts; i += 2) {
            const char *v = claim_value(t, APR_ARRAY_IDX(pr->words, i, const char *));
            ok = v != NULL && strcmp(v, APR_ARRAY_IDX(pr->words, i + 1, const char *)) == 0;
        }
        break;
    }
    if (!ok) {
        MSA_RLOG(r, APLOG_INFO, "authz_denied", "user %s fails a Require ms- rule for %s", r->user,
                 r->uri);
    }
    return ok ? AUTHZ_GRANTED : AUTHZ_DENIED;
}

#define CHECKER(fn, kind)                                                                          \
    static authz_status fn(request_rec *r, const char *line, const void *parsed)                   \
    {                                                                                              \
        return check(r, parsed, kind);                                                             \
    }
CHECKER(check_user, REQ_USER)
CHECKER(check_domain, REQ_DOMAIN)
CHECKER(check_tenant, REQ_TENANT)
CHECKER(check_group, REQ_GROUP)
CHECKER(check_claim, REQ_CLAIM)

static const authz_provider providers[] = {
    {check_user, parse_user},   {check_domain, parse_domain}, {check_tenant, parse_tenant},
    {check_group, parse_group}, {check_claim, parse_claim},
};
static const char *const names[] = {"ms-user", "ms-domain", "ms-tenant", "ms-group", "ms-claim"};

void msa_authz_register(apr_pool_t *p)
{
    for (size_t i = 0; i < sizeof(names) / sizeof(*names); i++) {
        ap_register_auth_provider(p, AUTHZ_PROVIDER_GROUP, names[i], AUTHZ_PROVIDER_VERSION,
                                  &providers[i], AP_AUTH_INTERNAL_PER_CONF);
    }
}
