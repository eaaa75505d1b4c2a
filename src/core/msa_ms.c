/*
 * The Microsoft identity platform as the module uses it: the authorize URL,
 * the code redemption, Graph's /me and transitiveMemberOf, the JWKS.
 *
 * Every answer is outside input: JSON is parsed strictly (json-c, UTF-8
 * checked), strings holding a NUL are refused, and error messages quote
 * only Microsoft's short error code and AADSTS number, never a token, a
 * code, a secret or a free-text description.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include <apr_strings.h>
#include <apr_tables.h>

#include "msa_json.h"
#include "msa_ms.h"
#include "msa_url.h"

#define MS_MAX_ERROR_LEN 64 /* of an error code quoted in a message */

/* ASCII only, whatever the process locale says. */
static int ms_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/*
 * The body as a JSON object, owned by p. Strict: one value, nothing after
 * it but white space, valid UTF-8. NULL with *why set when it is not.
 */
static json_object *ms_parse_object(apr_pool_t *p, const msa_http_response_t *r, const char **why)
{
    msa_json_error_t e;
    json_object *o = msa_json_parse(p, r->body, r->body_len, &e);
    if (o == NULL) {
        static const char *const whys[] = {
            [MSA_JSON_EMPTY] = "an empty body",
            [MSA_JSON_NUL] = "a body holding a NUL byte",
            [MSA_JSON_TRUNCATED] = "truncated JSON",
            [MSA_JSON_INVALID] = "a body that is not JSON",
            [MSA_JSON_TRAILING] = "JSON followed by more data",
            [MSA_JSON_NOMEM] = "out of memory",
        };
        *why = whys[e.fault];
        return NULL;
    }
    if (!json_object_is_type(o, json_type_object)) {
        *why = "JSON that is not an object";
        return NULL;
    }
    return o;
}

/* A short code fit for a log line: [A-Za-z0-9_.-]{1,64}, else NULL. */
static const char *ms_safe_code(const char *s)
{
    if (s == NULL || *s == '\0' || strlen(s) > MS_MAX_ERROR_LEN) {
        return NULL;
    }
    for (const char *c = s; *c; c++) {
        if (!ms_alnum(*c) && *c != '_' && *c != '.' && *c != '-') {
            return NULL;
        }
    }
    return s;
}

/* The content type's media type alone, when it is plain enough to quote. */
static const char *ms_media_type(apr_pool_t *p, const char *ct)
{
    if (ct == NULL) {
        return "no content type";
    }
    apr_size_t n = strcspn(ct, "; ");
    char *m = apr_pstrmemdup(p, ct, n > 64 ? 64 : n);
    for (char *c = m; *c; c++) {
        if (!ms_alnum(*c) && strchr("/+.-_", *c) == NULL) {
            return "an odd content type";
        }
    }
    return m;
}

/*
 * The AADSTS number: the first of error_codes, else the one that starts
 * Microsoft's error_description ("AADSTS70008: ..."). The rest of the
 * description (trace and correlation ids, free text) is left out.
 */
static const char *ms_aadsts(apr_pool_t *p, json_object *o)
{
    json_object *codes = NULL, *desc = NULL;
    if (json_object_object_get_ex(o, "error_codes", &codes) &&
        json_object_is_type(codes, json_type_array) && json_object_array_length(codes) > 0) {
        json_object *c = json_object_array_get_idx(codes, 0);
        if (json_object_is_type(c, json_type_int)) {
            int64_t n = json_object_get_int64(c);
            if (n >= 0) {
                return apr_psprintf(p, "%" APR_INT64_T_FMT, (apr_int64_t)n);
            }
        }
    }
    if (json_object_object_get_ex(o, "error_description", &desc) &&
        json_object_is_type(desc, json_type_string)) {
        const char *d = strstr(json_object_get_string(desc), "AADSTS");
        if (d != NULL) {
            d += 6;
            apr_size_t n = strspn(d, "0123456789");
            if (n > 0 && n <= 10) {
                return apr_pstrmemdup(p, d, n);
            }
        }
    }
    return NULL;
}

/* "<what> answered <status>: <error> (AADSTS<n>)" from an OAuth error object. */
static const char *ms_oauth_error(apr_pool_t *p, const char *what, int status, json_object *o)
{
    json_object *e = NULL;
    const char *code = NULL;
    if (json_object_object_get_ex(o, "error", &e) && json_object_is_type(e, json_type_string)) {
        code = ms_safe_code(json_object_get_string(e));
        if (code == NULL) {
            code = "(unreadable error code)";
        }
    }
    const char *aadsts = ms_aadsts(p, o);
    if (code == NULL) {
        return apr_psprintf(p, "%s answered %d without an access token or an error code", what,
                            status);
    }
    return apr_psprintf(p, "%s answered %d: %s%s%s%s", what, status, code, aadsts ? " (AADSTS" : "",
                        aadsts ? aadsts : "", aadsts ? ")" : "");
}

/* Transport failures keep their status; the message says which call failed. */
static apr_status_t ms_call(msa_http_t *h, apr_pool_t *p, const char *what, const char *url,
                            const char *bearer, const char *form, msa_http_response_t *resp,
                            const char **err)
{
    const char *herr = NULL;
    apr_status_t rv = msa_http_call(h, p, url, bearer, form, NULL, NULL, resp, &herr);
    if (rv != APR_SUCCESS) {
        *err = apr_psprintf(p, "%s: %s", what, herr ? herr : "call failed");
    }
    return rv;
}

static const char *ms_base(apr_pool_t *p, const msa_ms_client_t *c)
{
    return apr_pstrcat(p, c->login_host, "/", msa_url_encode(p, c->tenant), NULL);
}

char *msa_ms_authorize_url(apr_pool_t *p, const msa_ms_client_t *c, const char *state,
                           const char *code_challenge, const char *nonce)
{
    char *url = apr_pstrcat(p, ms_base(p, c),
                            "/oauth2/v2.0/authorize?client_id=", msa_url_encode(p, c->client_id),
                            "&response_type=code&redirect_uri=", msa_url_encode(p, c->redirect_uri),
                            "&response_mode=query&scope=", msa_url_encode(p, c->scope),
                            "&state=", msa_url_encode(p, state), NULL);
    if (code_challenge != NULL) {
        url = apr_pstrcat(p, url, "&code_challenge=", msa_url_encode(p, code_challenge),
                          "&code_challenge_method=S256", NULL);
    }
    if (nonce != NULL) {
        url = apr_pstrcat(p, url, "&nonce=", msa_url_encode(p, nonce), NULL);
    }
    if (c->claims != NULL) {
        url = apr_pstrcat(p, url, "&claims=", msa_url_encode(p, c->claims), NULL);
    }
    return url;
}

char *msa_ms_logout_url(apr_pool_t *p, const msa_ms_client_t *c, const char *post_logout)
{
    char *url = apr_pstrcat(p, ms_base(p, c), "/oauth2/v2.0/logout", NULL);
    if (post_logout != NULL && *post_logout != '\0') {
        url =
            apr_pstrcat(p, url, "?post_logout_redirect_uri=", msa_url_encode(p, post_logout), NULL);
    }
    return url;
}

char *msa_ms_token_url(apr_pool_t *p, const msa_ms_client_t *c)
{
    return apr_pstrcat(p, ms_base(p, c), "/oauth2/v2.0/token", NULL);
}

char *msa_ms_jwks_url(apr_pool_t *p, const msa_ms_client_t *c)
{
    return apr_pstrcat(p, ms_base(p, c), "/discovery/v2.0/keys", NULL);
}

/* expires_in: a number, or a string of digits (seen from Microsoft); 0 otherwise. */
static long ms_expires_in(json_object *o)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(o, "expires_in", &v) || v == NULL) {
        return 0;
    }
    if (json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)) {
        int64_t n = json_object_get_int64(v);
        return n > 0 && n < 100000000 ? (long)n : 0;
    }
    if (json_object_is_type(v, json_type_string)) {
        const char *s = json_object_get_string(v);
        apr_size_t n = strspn(s, "0123456789");
        if (n == 0 || n > 8 || s[n] != '\0') {
            return 0;
        }
        return strtol(s, NULL, 10);
    }
    return 0;
}

static void ms_form_add(apr_pool_t *p, char **form, const char *name, const char *value)
{
    if (value != NULL) {
        *form = apr_pstrcat(p, *form, **form ? "&" : "", name, "=", msa_url_encode(p, value), NULL);
    }
}

/*
 * The client authentication of every token request to url: a client
 * assertion when the client has a credential, else the client secret.
 */
static apr_status_t ms_client_auth(apr_pool_t *p, const msa_ms_client_t *c, const char *url,
                                   char **form, const char **warning, const char **err)
{
    ms_form_add(p, form, "client_id", c->client_id);
    if (c->credential == NULL) {
        ms_form_add(p, form, "client_secret", c->client_secret);
        return APR_SUCCESS;
    }
    const char *assertion, *why = NULL;
    apr_status_t rv =
        msa_cred_assertion(c->credential, p, c->client_id, url, apr_time_now(), &assertion, &why);
    if (rv != APR_SUCCESS) {
        *err = why ? why : "no client assertion could be made";
        return MSA_EDENIED;
    }
    *warning = why;
    ms_form_add(p, form, "client_assertion_type", MSA_CRED_ASSERTION_TYPE);
    ms_form_add(p, form, "client_assertion", assertion);
    return APR_SUCCESS;
}

/* The token endpoint's answer to a code or a refresh token: the tokens, or why not. */
static apr_status_t ms_token_answer(apr_pool_t *p, const char *what,
                                    const msa_http_response_t *resp, msa_ms_tokens_t *out,
                                    const char **err)
{
    const char *why;
    json_object *o = ms_parse_object(p, resp, &why);
    if (o == NULL) {
        *err = apr_psprintf(p, "%s answered %d with %s (%s)", what, resp->status, why,
                            ms_media_type(p, resp->content_type));
        return MSA_EPROTO;
    }
    json_object *e = NULL;
    if (resp->status != 200 || (json_object_object_get_ex(o, "error", &e) && e != NULL)) {
        *err = ms_oauth_error(p, what, resp->status, o);
        const char *code = msa_json_str(p, o, "error");
        return code != NULL && strcmp(code, "invalid_grant") == 0 ? MSA_EREFUSED : MSA_EPROTO;
    }
    if (msa_json_string(p, o, "access_token", &out->access_token) != APR_SUCCESS ||
        out->access_token == NULL || *out->access_token == '\0') {
        out->access_token = NULL;
        *err = apr_psprintf(p, "%s answered %d without an access token", what, resp->status);
        return MSA_EPROTO;
    }
    if (msa_json_string(p, o, "id_token", &out->id_token) != APR_SUCCESS) {
        out->access_token = NULL;
        *err = apr_psprintf(p, "%s answered an id_token that is not a string", what);
        return MSA_EPROTO;
    }
    if (out->id_token != NULL && *out->id_token == '\0') {
        out->id_token = NULL;
    }
    if (msa_json_string(p, o, "scope", &out->scope) != APR_SUCCESS) {
        out->scope = NULL; /* only a hint for whether Graph may be called */
    }
    if (msa_json_string(p, o, "refresh_token", &out->refresh_token) != APR_SUCCESS ||
        (out->refresh_token != NULL && *out->refresh_token == '\0')) {
        out->refresh_token = NULL;
    }
    out->expires_in = ms_expires_in(o);
    return APR_SUCCESS;
}

apr_status_t msa_ms_redeem_code(msa_http_t *h, apr_pool_t *p, const msa_ms_client_t *c,
                                const char *code, const char *code_verifier, msa_ms_tokens_t *out,
                                const char **err)
{
    static const char what[] = "token endpoint";
    const char *dummy;
    msa_http_response_t resp;

    err = err ? err : &dummy;
    *err = NULL;
    memset(out, 0, sizeof(*out));
    if (code == NULL || *code == '\0') {
        *err = "no authorization code to redeem";
        return APR_EINVAL;
    }

    char *form = "";
    ms_form_add(p, &form, "grant_type", "authorization_code");
    ms_form_add(p, &form, "code", code);
    ms_form_add(p, &form, "redirect_uri", c->redirect_uri);
    char *url = msa_ms_token_url(p, c);
    apr_status_t rv = ms_client_auth(p, c, url, &form, &out->warning, err);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    ms_form_add(p, &form, "scope", c->scope);
    ms_form_add(p, &form, "code_verifier", code_verifier);
    ms_form_add(p, &form, "claims", c->claims);

    rv = ms_call(h, p, what, url, NULL, form, &resp, err);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    return ms_token_answer(p, what, &resp, out, err);
}

apr_status_t msa_ms_refresh(msa_http_t *h, apr_pool_t *p, const msa_ms_client_t *c,
                            const char *refresh_token, msa_ms_tokens_t *out, const char **err)
{
    static const char what[] = "token endpoint (refresh)";
    const char *dummy;
    msa_http_response_t resp;

    err = err ? err : &dummy;
    *err = NULL;
    memset(out, 0, sizeof(*out));
    if (refresh_token == NULL || *refresh_token == '\0') {
        *err = "no refresh token";
        return APR_EINVAL;
    }
    char *form = "";
    ms_form_add(p, &form, "grant_type", "refresh_token");
    ms_form_add(p, &form, "refresh_token", refresh_token);
    char *url = msa_ms_token_url(p, c);
    apr_status_t rv = ms_client_auth(p, c, url, &form, &out->warning, err);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    ms_form_add(p, &form, "scope", c->scope);
    /* The capabilities of each token request: a refreshed access token is a CAE one too. */
    ms_form_add(p, &form, "claims", c->claims);
    rv = ms_call(h, p, what, url, NULL, form, &resp, err);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    return ms_token_answer(p, what, &resp, out, err);
}

/* The status of a Graph answer that is not 200. */
static apr_status_t ms_graph_status(apr_pool_t *p, const char *what,
                                    const msa_http_response_t *resp, const char **err)
{
    if (resp->status == 200) {
        return APR_SUCCESS;
    }
    *err = apr_psprintf(p, "%s answered %d", what, resp->status);
    return resp->status == 401 || resp->status == 403 ? MSA_EDENIED : MSA_EPROTO;
}

apr_status_t msa_ms_graph_me(msa_http_t *h, apr_pool_t *p, const char *graph_host,
                             const char *access_token, msa_ms_profile_t *out, const char **err)
{
    static const char what[] = "Graph /me";
    const char *dummy, *why, *mail = NULL;
    msa_http_response_t resp;

    err = err ? err : &dummy;
    *err = NULL;
    memset(out, 0, sizeof(*out));
    if (access_token == NULL || *access_token == '\0') {
        *err = "Graph /me: no access token";
        return APR_EINVAL;
    }
    char *url = apr_pstrcat(p, graph_host, "/v1.0/me", NULL);
    apr_status_t rv = ms_call(h, p, what, url, access_token, NULL, &resp, err);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    rv = ms_graph_status(p, what, &resp, err);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    json_object *o = ms_parse_object(p, &resp, &why);
    if (o == NULL) {
        *err =
            apr_psprintf(p, "%s answered %s (%s)", what, why, ms_media_type(p, resp.content_type));
        return MSA_EPROTO;
    }
    msa_ms_profile_t pr = {0};
    if (msa_json_string(p, o, "id", &pr.id) != APR_SUCCESS || pr.id == NULL || *pr.id == '\0') {
        *err = apr_psprintf(p, "%s answered without a usable id", what);
        return MSA_EPROTO;
    }
    /* Optional fields of the wrong type are dropped rather than failing the login. */
    if (msa_json_string(p, o, "displayName", &pr.name) != APR_SUCCESS) {
        pr.name = NULL;
    }
    if (msa_json_string(p, o, "userPrincipalName", &pr.upn) != APR_SUCCESS) {
        pr.upn = NULL;
    }
    if (msa_json_string(p, o, "mail", &mail) != APR_SUCCESS) {
        mail = NULL;
    }
    if (mail != NULL && *mail != '\0') {
        pr.email = mail;
    } else if (pr.upn != NULL && strchr(pr.upn, '@') != NULL) {
        pr.email = pr.upn;
    }
    *out = pr;
    return APR_SUCCESS;
}

apr_status_t msa_ms_graph_groups(msa_http_t *h, apr_pool_t *p, const char *graph_host,
                                 const char *access_token, int max_ids, apr_array_header_t **ids,
                                 const char **err)
{
    static const char what[] = "Graph transitiveMemberOf";
    const char *dummy, *why;
    const char *same_host = apr_pstrcat(p, graph_host, "/", NULL);
    apr_size_t same_len = strlen(same_host);

    err = err ? err : &dummy;
    *err = NULL;
    *ids = apr_array_make(p, 16, sizeof(const char *));
    if (access_token == NULL || *access_token == '\0') {
        *err = "Graph transitiveMemberOf: no access token";
        return APR_EINVAL;
    }
    /* 999 a page is Graph's most; it may still answer fewer, so every nextLink is followed. */
    const char *url =
        apr_pstrcat(p, graph_host, "/v1.0/me/transitiveMemberOf?$select=id&$top=999", NULL);
    for (int page = 0; url != NULL; page++) {
        if (page == MSA_MS_MAX_GROUP_PAGES) {
            *err = apr_psprintf(p, "%s: more than %d pages (the bound): no partial list", what,
                                MSA_MS_MAX_GROUP_PAGES);
            return MSA_ETOOBIG;
        }
        msa_http_response_t resp;
        apr_status_t rv = ms_call(h, p, what, url, access_token, NULL, &resp, err);
        if (rv == APR_EINVAL && page > 0) {
            /* A nextLink curl will not take is Graph's fault, not the configuration's. */
            return MSA_EPROTO;
        }
        if (rv != APR_SUCCESS) {
            return rv;
        }
        rv = ms_graph_status(p, what, &resp, err);
        if (rv != APR_SUCCESS) {
            return rv;
        }
        json_object *o = ms_parse_object(p, &resp, &why), *value = NULL, *next = NULL;
        if (o == NULL) {
            *err = apr_psprintf(p, "%s answered %s (%s)", what, why,
                                ms_media_type(p, resp.content_type));
            return MSA_EPROTO;
        }
        if (!json_object_object_get_ex(o, "value", &value) ||
            !json_object_is_type(value, json_type_array)) {
            *err = apr_psprintf(p, "%s answered without a value array", what);
            return MSA_EPROTO;
        }
        size_t n = json_object_array_length(value);
        for (size_t i = 0; i < n; i++) {
            if ((*ids)->nelts == max_ids) {
                *err = apr_psprintf(p, "%s: more than %d groups (the bound): no partial list", what,
                                    max_ids);
                return MSA_ETOOBIG;
            }
            json_object *item = json_object_array_get_idx(value, i);
            const char *id = NULL;
            if (!json_object_is_type(item, json_type_object) ||
                msa_json_string(p, item, "id", &id) != APR_SUCCESS || id == NULL || *id == '\0') {
                *err = apr_psprintf(p, "%s answered an entry without a string id", what);
                return MSA_EPROTO;
            }
            APR_ARRAY_PUSH(*ids, const char *) = id;
        }
        /*
         * Only links back to Graph itself are followed: the access token goes
         * with the request, so a foreign nextLink would hand it to a stranger.
         * Not following one leaves the list incomplete, so that fails too.
         */
        url = NULL;
        if (json_object_object_get_ex(o, "@odata.nextLink", &next) &&
            !json_object_is_type(next, json_type_null)) {
            const char *link =
                json_object_is_type(next, json_type_string) ? json_object_get_string(next) : "";
            if (strncmp(link, same_host, same_len) != 0 ||
                (size_t)json_object_get_string_len(next) != strlen(link)) {
                *err = apr_psprintf(p, "%s answered a nextLink off the Graph host: no partial list",
                                    what);
                return MSA_EPROTO;
            }
            url = apr_pstrdup(p, link);
        }
    }
    return APR_SUCCESS;
}

apr_status_t msa_ms_fetch_jwks(msa_http_t *h, apr_pool_t *p, const msa_ms_client_t *c, char **jwks,
                               const char **err)
{
    static const char what[] = "JWKS endpoint";
    const char *dummy, *why;
    msa_http_response_t resp;

    err = err ? err : &dummy;
    *err = NULL;
    *jwks = NULL;
    apr_status_t rv = ms_call(h, p, what, msa_ms_jwks_url(p, c), NULL, NULL, &resp, err);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    if (resp.status != 200) {
        *err = apr_psprintf(p, "%s answered %d", what, resp.status);
        return MSA_EPROTO;
    }
    json_object *o = ms_parse_object(p, &resp, &why), *keys = NULL;
    if (o == NULL) {
        *err =
            apr_psprintf(p, "%s answered %s (%s)", what, why, ms_media_type(p, resp.content_type));
        return MSA_EPROTO;
    }
    if (!json_object_object_get_ex(o, "keys", &keys) ||
        !json_object_is_type(keys, json_type_array)) {
        *err = apr_psprintf(p, "%s answered without a keys array", what);
        return MSA_EPROTO;
    }
    *jwks = resp.body;
    return APR_SUCCESS;
}

int msa_ms_scope_has_user_read(const char *scope)
{
    static const char prefix[] = "https://graph.microsoft.com/";
    static const char user_read[] = "User.Read";
    const apr_size_t plen = sizeof(prefix) - 1, ulen = sizeof(user_read) - 1;

    if (scope == NULL) {
        return 0;
    }
    const char *s = scope;
    while (*s != '\0') {
        s += strspn(s, " \t");
        apr_size_t n = strcspn(s, " \t");
        const char *w = s;
        s += n;
        if (n > plen && strncasecmp(w, prefix, plen) == 0) {
            w += plen;
            n -= plen;
        }
        if (n == ulen && strncasecmp(w, user_read, ulen) == 0) {
            return 1;
        }
    }
    return 0;
}

static int ms_domain(const char *s)
{
    if (strchr(s, '.') == NULL) {
        return 0; /* one label: no host name (what the loop below finds too, at more cost) */
    }
    apr_size_t len = strlen(s), label = 0;
    int dots = 0;
    if (len == 0 || len > 253) {
        return 0;
    }
    for (apr_size_t i = 0; i <= len; i++) {
        char ch = s[i];
        if (ch == '.' || ch == '\0') {
            /* Empty labels and labels with a '-' at either end are not host names. */
            if (label == 0 || label > 63 || s[i - 1] == '-' || s[i - label] == '-') {
                return 0;
            }
            dots += ch == '.';
            label = 0;
        } else if (ms_alnum(ch) || ch == '-') {
            label++;
        } else {
            return 0;
        }
    }
    return dots > 0;
}

int msa_ms_tenant_valid(const char *s)
{
    if (s == NULL || *s == '\0') {
        return 0;
    }
    if (strcasecmp(s, "common") == 0 || strcasecmp(s, "organizations") == 0 ||
        strcasecmp(s, "consumers") == 0) {
        return 1;
    }
    return msa_is_guid(s) || ms_domain(s);
}

/* Tenant rules ------------------------------------------------------------------- */

static int ms_segment(const char *t, const char *name)
{
    return t != NULL && strcasecmp(t, name) == 0;
}

int msa_ms_tenant_single(const char *tenant, const apr_array_header_t *allowed)
{
    if (tenant != NULL && (msa_is_guid(tenant) || ms_domain(tenant))) {
        return strcasecmp(tenant, MSA_MS_CONSUMERS_TID) != 0;
    }
    /* Personal accounts share one tenant id but no administrator: never "one tenant". */
    return allowed != NULL && allowed->nelts == 1 && !ms_segment(tenant, "consumers") &&
           strcasecmp(APR_ARRAY_IDX(allowed, 0, const char *), MSA_MS_CONSUMERS_TID) != 0;
}

static int ms_listed(const apr_array_header_t *list, const char *s)
{
    for (int i = 0; list != NULL && i < list->nelts; i++) {
        if (strcasecmp(APR_ARRAY_IDX(list, i, const char *), s) == 0) {
            return 1;
        }
    }
    return 0;
}

int msa_ms_domain_in(const char *domain, const apr_array_header_t *domains)
{
    return domain != NULL && *domain != '\0' && ms_listed(domains, domain);
}

int msa_ms_address_in(const char *addr, const apr_array_header_t *domains)
{
    const char *at = addr != NULL ? strrchr(addr, '@') : NULL;
    return at != NULL && msa_ms_domain_in(at + 1, domains);
}

apr_status_t msa_ms_graph_tenant(msa_http_t *h, apr_pool_t *p, const char *graph_host,
                                 const char *access_token, const char *me_id, msa_ms_org_t *out,
                                 const char **err)
{
    static const char what[] = "Graph /organization";
    const char *dummy, *why, *tid = NULL;
    msa_http_response_t resp;

    err = err ? err : &dummy;
    *err = NULL;
    out->tid = NULL;
    out->domains = apr_array_make(p, 4, sizeof(const char *));
    if (me_id != NULL && *me_id != '\0' && !msa_is_guid(me_id)) {
        /* Graph calls work/school users by their object id, personal accounts by 16 hex digits. */
        out->tid = MSA_MS_CONSUMERS_TID;
        return APR_SUCCESS;
    }
    if (access_token == NULL || *access_token == '\0') {
        *err = "Graph /organization: no access token";
        return APR_EINVAL;
    }
    char *url = apr_pstrcat(p, graph_host, "/v1.0/organization?$select=id,verifiedDomains", NULL);
    apr_status_t rv = ms_call(h, p, what, url, access_token, NULL, &resp, err);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    rv = ms_graph_status(p, what, &resp, err);
    if (rv == MSA_EDENIED && resp.status == 403) {
        return APR_NOTFOUND; /* not for this user: no organization to name */
    }
    if (rv != APR_SUCCESS) {
        return rv == MSA_EPROTO ? APR_NOTFOUND : rv;
    }
    json_object *o = ms_parse_object(p, &resp, &why), *value = NULL, *org, *doms = NULL;
    if (o == NULL) {
        *err =
            apr_psprintf(p, "%s answered %s (%s)", what, why, ms_media_type(p, resp.content_type));
        return APR_NOTFOUND;
    }
    if (!json_object_object_get_ex(o, "value", &value) ||
        !json_object_is_type(value, json_type_array) || json_object_array_length(value) != 1 ||
        !json_object_is_type(org = json_object_array_get_idx(value, 0), json_type_object) ||
        msa_json_string(p, org, "id", &tid) != APR_SUCCESS || tid == NULL || !msa_is_guid(tid)) {
        *err = apr_psprintf(p, "%s named no single organization with a tenant id", what);
        return APR_NOTFOUND;
    }
    if (json_object_object_get_ex(org, "verifiedDomains", &doms) &&
        json_object_is_type(doms, json_type_array)) {
        size_t n = json_object_array_length(doms);
        for (size_t i = 0; i < n && i < 5000; i++) {
            json_object *d = json_object_array_get_idx(doms, i);
            const char *name = NULL;
            if (json_object_is_type(d, json_type_object) &&
                msa_json_string(p, d, "name", &name) == APR_SUCCESS && name != NULL &&
                ms_domain(name)) {
                APR_ARRAY_PUSH(out->domains, const char *) = name;
            }
        }
    }
    out->tid = tid;
    return APR_SUCCESS;
}
