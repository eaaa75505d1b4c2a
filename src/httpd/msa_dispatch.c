/*
 * The module's endpoints (INTERFACE.md section 7) by path and method. They run
 * as a quick handler so that a site protecting "/" with AuthType Microsoft
 * still lets a login finish.
 */
#include <apr_strings.h>
#include <http_core.h>
#include <http_protocol.h>
#include <http_request.h>

#include "msa_callback.h"
#include "msa_dispatch.h"
#include "msa_jwt_api.h"
#include "msa_login.h"
#include "msa_logout.h"
#include "msa_mstokens.h"
#include "msa_passwordless.h"
#include "msa_request.h"
#include "msa_settings_api.h"

/* 405 naming the endpoint's own methods (Apache's would add OPTIONS and TRACE). */
static int not_allowed(request_rec *r, const char *allow)
{
    apr_table_setn(r->err_headers_out, "Allow", allow);
    return msa_answer_error(r, HTTP_METHOD_NOT_ALLOWED, "method not allowed");
}

int msa_quick_handler(request_rec *r, int lookup_uri)
{
    if (lookup_uri || r->main != NULL || r->parsed_uri.path == NULL) {
        return DECLINED;
    }
    const msa_srv_t *srv = msa_srv_get(r->server);
    if (!msa_srv_has_apps(srv)) {
        return DECLINED;
    }
    if (strcmp(r->parsed_uri.path, srv->jwt_path) == 0) {
        return msa_jwt_api(r, srv);
    }
    const char *ep = msa_endpoint(r->parsed_uri.path, srv->callback_path);
    if (ep == NULL) {
        return DECLINED;
    }
    if (strcmp(ep, "") == 0 || strcmp(ep, "login") == 0) {
        if (r->method_number != M_GET) {
            return not_allowed(r, "GET, HEAD");
        }
        return *ep ? msa_login_handler(r, srv) : msa_callback_handler(r, srv);
    }
    if (strcmp(ep, "logout") == 0) {
        if (r->method_number != M_GET && r->method_number != M_POST) {
            return not_allowed(r, "GET, HEAD, POST");
        }
        return msa_logout_handler(r, srv);
    }
    if (strcmp(ep, "logout/frontchannel") == 0) {
        if (r->method_number != M_GET) {
            return not_allowed(r, "GET, HEAD");
        }
        return msa_frontchannel_handler(r, srv);
    }
    if (strcmp(ep, "_settings") == 0 || strncmp(ep, "_settings/", 10) == 0) {
        return msa_settings_api(r, srv, ep[9] ? ep + 10 : "");
    }
    if (strcmp(ep, "passwordless") == 0) {
        if (r->method_number != M_GET && r->method_number != M_POST) {
            return not_allowed(r, "POST");
        }
        return msa_passwordless_handler(r, srv);
    }
    if (strcmp(ep, "refresh") == 0) {
        if (r->method_number != M_POST) {
            return not_allowed(r, "POST");
        }
        return msa_mstokens_refresh_handler(r, srv);
    }
    if (strcmp(ep, "me") == 0) {
        if (r->method_number != M_GET) {
            return not_allowed(r, "GET, HEAD");
        }
        return msa_me_handler(r, srv);
    }
    return DECLINED;
}
