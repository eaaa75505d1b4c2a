/*
 * <callback>/passwordless: Para's jwt=id ID token traded for the session
 * cookie, by a same-origin POST (or Para's GET where the app opts in).
 */
#include <apr_lib.h>
#include <apr_strings.h>
#include <http_core.h>
#include <http_protocol.h>
#include <http_request.h>

#include "msa_api.h"
#include "msa_apps.h"
#include "msa_login.h"
#include "msa_passwordless.h"
#include "msa_request.h"
#include "msa_session.h"
#include "msa_url.h"

/* The token (and returnto) of a POST form, or NULL with the failure answered in *rc. */
static const char *passwordless_form(request_rec *r, const msa_srv_t *srv, const char **returnto,
                                     int *rc)
{
    const char *ct = apr_table_get(r->headers_in, "Content-Type");
    static const char form[] = "application/x-www-form-urlencoded";
    char *body = NULL;
    apr_size_t len = 0;
    apr_table_t *q;
    const char *token = NULL, *why = NULL;
    if (ct == NULL || strncasecmp(ct, form, sizeof(form) - 1) != 0 ||
        strchr("; ", ct[sizeof(form) - 1]) == NULL) {
        why = "POST /passwordless takes an application/x-www-form-urlencoded form";
    } else if (msa_read_body(r, &body, &len) != OK) {
        why = "POST /passwordless: the form is over 64 KiB or could not be read";
    } else if (msa_query_parse(r->pool, body, &q) != APR_SUCCESS ||
               msa_query_get1(q, "token", &token) != APR_SUCCESS ||
               msa_query_get1(q, "returnto", returnto) == APR_EINVAL) {
        why = "POST /passwordless needs one token and at most one returnto";
    }
    if (why != NULL) {
        *rc = msa_login_fail(r, srv, NULL, "invalid_request", APLOG_INFO, why);
        return NULL;
    }
    /* The app's own failure URL, when the token names one. */
    const char *appid = msa_api_peek_appid(r->pool, token);
    const msa_app_t *app = msa_app_lookup(r, srv, appid ? appid : "");
    if ((why = msa_foreign_post(r, srv)) != NULL) {
        *rc = msa_login_fail(r, srv, app, "invalid_request", APLOG_INFO,
                             apr_pstrcat(r->pool, "POST /passwordless refused: ", why, NULL));
        return NULL;
    }
    return token;
}

/*
 * <callback>/passwordless: an ID token (jwt=id) for the session cookie.
 * POST token&returnto from a page of this origin; Para's GET ?token&returnto
 * only for an app with MSAuthPasswordlessGET On, since a link then signs in
 * whoever follows it as the token's owner.
 */
int msa_passwordless_handler(request_rec *r, const msa_srv_t *srv)
{
    apr_table_t *q;
    const char *token = NULL, *returnto = NULL;
    if (r->method_number == M_POST) {
        int rc = OK;
        if ((token = passwordless_form(r, srv, &returnto, &rc)) == NULL) {
            return rc;
        }
    } else {
        const msa_app_t *app = NULL;
        if (msa_query_parse(r->pool, r->args, &q) == APR_SUCCESS &&
            msa_query_get1(q, "token", &token) == APR_SUCCESS &&
            msa_query_get1(q, "returnto", &returnto) != APR_EINVAL) {
            const char *appid = msa_api_peek_appid(r->pool, token);
            app = msa_app_lookup(r, srv, appid ? appid : "");
        }
        if (app == NULL || !app->passwordless_get) {
            MSA_RLOG(r, APLOG_INFO, "passwordless_refused",
                     "GET refused: POST the form, or set MSAuthPasswordlessGET On for the app");
            apr_table_setn(r->err_headers_out, "Allow", "POST");
            return msa_answer_error(r, HTTP_METHOD_NOT_ALLOWED,
                                    "POST token and returnto from a page of this site");
        }
    }
    const msa_app_t *app = NULL;
    msa_identity_t ident;
    int rc = msa_spend_id_token(r, srv, NULL, token, &app, &ident);
    if (rc == HTTP_SERVICE_UNAVAILABLE) {
        return rc;
    }
    if (rc != OK) {
        return msa_login_fail(r, srv, app, "invalid_token", APLOG_INFO, "ID token refused");
    }
    return msa_finish_login(r, srv, app, &ident, msa_return_target(r, srv, app, returnto));
}
