/*
 * The callback, GET <callback>?code&state (INTERFACE.md 4.2): the state and
 * its cookie, the code redeemed once, Microsoft's id_token verified against
 * the tenant's keys, the profile and groups from Graph, then the session.
 */
#include <apr_lib.h>
#include <apr_strings.h>
#include <http_core.h>
#include <http_protocol.h>
#include <http_request.h>

#include "msa_apps.h"
#include "msa_cache.h"
#include "msa_callback.h"
#include "msa_idtoken.h"
#include "msa_login.h"
#include "msa_metrics.h"
#include "msa_mstokens.h"
#include "msa_request.h"
#include "msa_state.h"
#include "msa_url.h"

#define MAX_GROUPS 1500 /* a longer list fails the login (and would not fit the cache) */

/* Checks a module-initiated state against its cookie, clearing the cookie. */
static const char *check_state_cookie(request_rec *r, const msa_srv_t *srv, const msa_app_t *app,
                                      const char *state, msa_login_state_t *ls)
{
    const char *name = msa_login_state_cookie_name(r->pool, state);
    const char *value = msa_cookie_get(r, name);
    const char *err = NULL;
    if (value == NULL) {
        return "no state cookie for this state (another browser, expired or already used)";
    }
    msa_cookie_set(r, srv, app, name, "", "/", 0, MSA_SAMESITE_LAX);
    for (int i = 0; i < app->keys->nelts; i++) {
        const msa_key_t *k = &APR_ARRAY_IDX(app->keys, i, msa_key_t);
        if (msa_login_state_open(r->pool, value, k->data, k->len, ls, &err) == APR_SUCCESS) {
            break;
        }
        ls->state = NULL;
    }
    if (ls->state == NULL) {
        return "state cookie does not decrypt";
    }
    if (!msa_ct_streq(ls->state, state) || strcmp(ls->appid, app->appid) != 0) {
        return "state does not match its cookie";
    }
    apr_int64_t now = apr_time_sec(apr_time_now());
    if (ls->created > now + srv->clock_skew || now - ls->created > MSA_STATE_TTL) {
        return "state cookie expired";
    }
    return NULL;
}

int msa_callback_handler(request_rec *r, const msa_srv_t *srv)
{
    apr_table_t *q;
    const char *state = NULL, *code = NULL, *error = NULL, *detail = NULL;
    msa_state_ref_t ref;
    msa_login_state_t ls = {0};
    int module_initiated = 0;

    if (msa_query_parse(r->pool, r->args, &q) != APR_SUCCESS) {
        return msa_login_fail(r, srv, NULL, "invalid_request", APLOG_INFO,
                              "malformed query string (broken escape or not UTF-8)");
    }
    if (msa_query_get1(q, "state", &state) == APR_EINVAL) {
        return msa_login_fail(r, srv, NULL, "invalid_state", APLOG_INFO,
                              "state given more than once");
    }
    if (msa_state_parse(r->pool, state, &ref) != APR_SUCCESS) {
        return msa_login_fail(
            r, srv, NULL, "invalid_state", APLOG_INFO,
            apr_psprintf(r->pool, "malformed state (%" APR_SIZE_T_FMT " bytes)", strlen(state)));
    }
    const msa_app_t *app = msa_app_lookup(r, srv, ref.appid);
    if (app == NULL) {
        return msa_login_fail(r, srv, NULL, "unknown_app", APLOG_INFO,
                              apr_psprintf(r->pool, "no app '%s'", ref.appid));
    }
    if (!ref.client_built) {
        const char *why = check_state_cookie(r, srv, app, state, &ls);
        if (why != NULL) {
            return msa_login_fail(r, srv, app, "invalid_state", APLOG_INFO, why);
        }
        /* Single use, even if the cookie and the state are replayed together. */
        apr_status_t used = msa_cache_claim(r, srv, MSA_REC_STATE, state, state,
                                            apr_time_from_sec(ls.created + MSA_STATE_TTL + 60));
        if (used == APR_EEXIST) {
            return msa_login_fail(r, srv, app, "invalid_state", APLOG_INFO, "state used already");
        }
        if (used != APR_SUCCESS) {
            MSA_RLOG(r, APLOG_ERR, "cache_error", "MSAuthCache %s cannot record the login state",
                     srv->cache);
            return HTTP_SERVICE_UNAVAILABLE;
        }
        /* Read after the claim: a store that lost its spent states shows a new epoch by now. */
        const char *epoch = NULL;
        if (msa_cache_state_epoch(r, srv, state, &epoch) != APR_SUCCESS) {
            MSA_RLOG(r, APLOG_ERR, "cache_error", "MSAuthCache %s cannot answer for the state",
                     srv->cache);
            return HTTP_SERVICE_UNAVAILABLE;
        }
        if (ls.epoch == NULL || strcmp(ls.epoch, epoch) != 0) {
            return msa_login_fail(
                r, srv, app, "invalid_state", APLOG_INFO,
                "state from before MSAuthCache's current epoch (it may have been spent)");
        }
        module_initiated = 1;
    } else if (!app->legacy_state) {
        return msa_login_fail(r, srv, app, "unsolicited_login", APLOG_INFO,
                              "a client-built state and MSAuthLegacyState is Off");
    }
    if (apr_table_get(q, "error") != NULL) {
        msa_query_get1(q, "error", &error);
        return msa_login_fail(
            r, srv, app, "access_denied", APLOG_INFO,
            apr_psprintf(r->pool, "Microsoft answered error=%s", msa_loggable(r, error)));
    }
    apr_status_t rv = msa_query_get1(q, "code", &code);
    if (rv != APR_SUCCESS || *code == '\0' || strlen(code) > 8192) {
        return msa_login_fail(r, srv, app, "invalid_request", APLOG_INFO,
                              rv == APR_EINVAL ? "code given more than once" : "no code");
    }

    /*
     * A code is redeemed once, whatever Microsoft does with a second try: a client-built
     * login has no state of ours to spend, and this covers it too.
     */
    apr_status_t spent = msa_cache_claim(r, srv, MSA_REC_CODE, code, code,
                                         apr_time_now() + apr_time_from_sec(MSA_STATE_TTL + 60));
    if (spent == APR_EEXIST) {
        return msa_login_fail(r, srv, app, "token_exchange_failed", APLOG_INFO,
                              "code used already");
    }
    if (spent != APR_SUCCESS) {
        MSA_RLOG(r, APLOG_ERR, "cache_error", "MSAuthCache %s cannot record the code", srv->cache);
        return HTTP_SERVICE_UNAVAILABLE;
    }

    msa_ms_client_t c;
    msa_ms_tokens_t tokens;
    msa_login_client(r, srv, app, &c);
    rv = msa_ms_redeem_code(srv->http, r->pool, &c, code, module_initiated ? ls.verifier : NULL,
                            &tokens, &detail);
    if (tokens.warning != NULL) {
        MSA_RLOG(r, APLOG_WARNING, "credential", "appid=%s: %s", msa_app_token_id(app),
                 tokens.warning);
    }
    if (rv == MSA_EUNREACHABLE) {
        return msa_login_fail(r, srv, app, "idp_unreachable", APLOG_WARNING, detail);
    }
    if (rv != APR_SUCCESS) {
        /* A code Microsoft refuses is anyone's to send: INFO, so it cannot flood the log. */
        return msa_login_fail(r, srv, app, "token_exchange_failed",
                              rv == MSA_EREFUSED ? APLOG_INFO : APLOG_WARNING, detail);
    }

    msa_identity_t ident = {0};
    int overage = 0;
    if (tokens.id_token != NULL) {
        const char *cause = msa_login_verify_id_token(r, srv, app, &c, tokens.id_token,
                                                      module_initiated ? ls.nonce : NULL, &ident,
                                                      &overage, &detail);
        if (cause != NULL) {
            return msa_login_fail(r, srv, app, cause, APLOG_WARNING, detail);
        }
    } else if (module_initiated && msa_word_in(c.scope, "openid")) {
        /* We asked for an id_token (and its nonce): a scope edited on the way is no login. */
        return msa_login_fail(r, srv, app, "invalid_id_token", APLOG_INFO,
                              "the login asked for openid and the token answer has no id_token");
    }
    const char *granted = tokens.scope ? tokens.scope : app->scope;
    if (tokens.id_token == NULL || msa_ms_scope_has_user_read(granted)) {
        msa_ms_profile_t prof;
        rv = msa_ms_graph_me(srv->http, r->pool, srv->graph_host, tokens.access_token, &prof,
                             &detail);
        if (rv == MSA_EUNREACHABLE) {
            return msa_login_fail(r, srv, app, "idp_unreachable", APLOG_WARNING, detail);
        }
        if (rv != APR_SUCCESS) {
            return msa_login_fail(r, srv, app, "profile_failed", APLOG_WARNING, detail);
        }
        if (ident.email == NULL || prof.email == NULL || strcasecmp(ident.email, prof.email) != 0) {
            ident.verified = NULL; /* xms_edov spoke of the id_token's address only */
        }
        ident.id = prof.id;
        ident.name = prof.name;
        ident.email = prof.email;
        ident.upn = prof.upn;
        /* Without an id_token the tenant comes from Graph, and passes the same rule. */
        const char *cause =
            msa_graph_tenant(r, srv, app, tokens.access_token, &prof, 1, &ident, &detail);
        if (cause != NULL) {
            return msa_login_fail(r, srv, app, cause, APLOG_WARNING, detail);
        }
    }
    if (app->groups == MSA_GROUPS_GRAPH || (app->groups == MSA_GROUPS_TOKEN && overage)) {
        rv = msa_ms_graph_groups(srv->http, r->pool, srv->graph_host, tokens.access_token,
                                 MAX_GROUPS, &ident.groups, &detail);
        if (rv != APR_SUCCESS) {
            return msa_login_fail(r, srv, app,
                                  rv == MSA_EUNREACHABLE ? "idp_unreachable" : "profile_failed",
                                  APLOG_WARNING, apr_pstrcat(r->pool, "groups: ", detail, NULL));
        }
    } else if (app->groups == MSA_GROUPS_OFF) {
        ident.groups = NULL;
    }

    int done = msa_finish_login(r, srv, app, &ident, module_initiated ? ls.return_to : NULL);
    const msa_req_t *issued = msa_request_record(r, 0);
    if (issued != NULL && issued->issued != NULL) {
        /* What MSAuthPassTokens hands the app, kept for the session just issued. */
        msa_mstokens_keep(r, srv, app, issued->issued, &tokens);
    }
    return done;
}
