/* The Para-compatible JWT API: request bodies and answers. */
#include <string.h>

#include <apr_strings.h>
#include <json-c/json.h>

#include "msa_api.h"
#include "msa_json.h"
#include "msa_jose.h"

static const char *member(apr_pool_t *p, json_object *o, const char *name, int required,
                          const char **err)
{
    json_object *v;
    if (!json_object_object_get_ex(o, name, &v) || json_object_is_type(v, json_type_null)) {
        if (required) {
            *err = apr_psprintf(p, "missing field '%s'", name);
        }
        return NULL;
    }
    if (!json_object_is_type(v, json_type_string) || json_object_get_string_len(v) == 0 ||
        strlen(json_object_get_string(v)) != (size_t)json_object_get_string_len(v)) {
        *err = apr_psprintf(p, "field '%s' must be a non-empty string", name);
        return NULL;
    }
    return apr_pstrmemdup(p, json_object_get_string(v), (apr_size_t)json_object_get_string_len(v));
}

apr_status_t msa_api_parse_request(apr_pool_t *p, const char *body, apr_size_t len,
                                   msa_api_request_t *out, const char **err)
{
    memset(out, 0, sizeof(*out));
    *err = NULL;
    /* The whole body must be one JSON value. */
    json_object *o = msa_json_parse(p, body, len, NULL);
    if (o == NULL) {
        *err = "the body is not JSON";
        return APR_EINVAL;
    }
    if (!json_object_is_type(o, json_type_object)) {
        *err = "the body is not a JSON object";
        return APR_EINVAL;
    }
    out->provider = member(p, o, "provider", 1, err);
    if (*err == NULL) {
        out->token = member(p, o, "token", 1, err);
    }
    if (*err == NULL) {
        out->appid = member(p, o, "appid", 0, err);
    }
    if (*err != NULL) {
        return APR_EINVAL;
    }
    if (strcmp(out->provider, "microsoft") != 0 && strcmp(out->provider, "passwordless") != 0) {
        *err = "unknown provider (microsoft or passwordless)";
        return APR_EINVAL;
    }
    return APR_SUCCESS;
}

static void put_str(json_object *o, const char *name, const char *v)
{
    json_object_object_add(o, name, v ? json_object_new_string(v) : NULL);
}

char *msa_api_token_json(apr_pool_t *p, const char *jwt, const msa_token_t *t)
{
    json_object *o = json_object_new_object();
    json_object *j = json_object_new_object();
    json_object *u = json_object_new_object();
    put_str(j, "access_token", jwt);
    json_object_object_add(j, "refresh", json_object_new_int64(t->refresh));
    json_object_object_add(j, "expires", json_object_new_int64(t->exp * 1000));
    put_str(u, "id", t->sub);
    put_str(u, "identifier", t->identifier);
    put_str(u, "name", t->name);
    put_str(u, "email", t->email);
    put_str(u, "appid", t->appid);
    json_object_object_add(o, "jwt", j);
    json_object_object_add(o, "user", u);
    char *s = apr_pstrdup(p, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    return s;
}

char *msa_api_error_json(apr_pool_t *p, int code, const char *message)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "code", json_object_new_int(code));
    json_object_object_add(o, "message", json_object_new_string(message));
    char *s = apr_pstrdup(p, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    return s;
}

const char *msa_api_peek_appid(apr_pool_t *p, const char *jwt)
{
    const char *dot1 = strchr(jwt, '.'), *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
    unsigned char *raw;
    apr_size_t len;
    if (dot2 == NULL || dot2 - dot1 - 1 > MSA_MAX_TOKEN ||
        msa_b64url_decode(p, dot1 + 1, (apr_size_t)(dot2 - dot1 - 1), &raw, &len) != APR_SUCCESS) {
        return NULL;
    }
    json_object *o = msa_json_parse_object(p, (const char *)raw, len);
    return o != NULL ? msa_json_str(p, o, "appid") : NULL;
}
