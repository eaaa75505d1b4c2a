/* Identity in the forms apps expect. */
#include <string.h>

#include <apr_base64.h>
#include <apr_strings.h>
#include <json-c/json.h>

#include "msa_claims.h"
#include "msa_json.h"

static void add_claim(json_object *claims, const char *typ, const char *val)
{
    if (val == NULL) {
        return;
    }
    json_object *c = json_object_new_object();
    json_object_object_add(c, "typ", json_object_new_string(typ));
    json_object_object_add(c, "val", json_object_new_string(val));
    json_object_array_add(claims, c);
}

char *msa_claims_easyauth_principal(apr_pool_t *p, const msa_token_t *t)
{
    json_object *o = json_object_new_object();
    json_object *claims = json_object_new_array();
    json_object_object_add(o, "auth_typ", json_object_new_string("aad"));
    add_claim(claims, "name", t->name);
    add_claim(claims, "preferred_username", t->upn);
    add_claim(claims, "email", t->email);
    add_claim(claims, "oid", t->oid ? t->oid : t->sub);
    add_claim(claims, "tid", t->tid);
    for (int i = 0; t->groups && i < t->groups->nelts; i++) {
        add_claim(claims, "groups", APR_ARRAY_IDX(t->groups, i, const char *));
    }
    json_object_object_add(o, "claims", claims);
    json_object_object_add(o, "name_typ", json_object_new_string("name"));
    json_object_object_add(o, "role_typ", json_object_new_string("roles"));
    const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    int len = (int)strlen(text);
    char *out = apr_palloc(p, (apr_size_t)apr_base64_encode_len(len));
    apr_base64_encode(out, text, len);
    json_object_put(o);
    return out;
}

const char *msa_claims_principal_name(const msa_token_t *t)
{
    return t->email ? t->email : t->upn ? t->upn : t->sub;
}

const char *msa_claims_principal_id(const msa_token_t *t)
{
    return t->oid ? t->oid : t->sub;
}

char *msa_claims_me_json(apr_pool_t *p, const msa_token_t *t)
{
    json_object *o = json_object_new_object();
#define PUT(name, v)                                                                               \
    if ((v) != NULL) {                                                                             \
        json_object_object_add(o, name, json_object_new_string(v));                                \
    }
    PUT("id", t->sub)
    PUT("identifier", t->identifier)
    PUT("name", t->name)
    PUT("email", t->email)
    PUT("upn", t->upn)
    PUT("tid", t->tid)
    PUT("appid", t->appid)
#undef PUT
    json_object_object_add(o, "expires", json_object_new_int64(t->exp));
    if (t->groups != NULL) {
        json_object_object_add(o, "groups", msa_json_strings(t->groups));
    }
    char *s = apr_pstrdup(p, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    return s;
}
