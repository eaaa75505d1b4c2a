/* JSON as the module reads it: one strict parser, typed member getters. */
#include <string.h>

#include <apr_strings.h>

#include "msa_json.h"

static apr_status_t put_json(void *o)
{
    json_object_put(o);
    return APR_SUCCESS;
}

static json_object *fault(msa_json_error_t *e, msa_json_fault_t f, apr_size_t end, const char *desc)
{
    if (e != NULL) {
        e->fault = f;
        e->end = end;
        e->desc = desc;
    }
    return NULL;
}

json_object *msa_json_parse(apr_pool_t *p, const char *text, apr_size_t len, msa_json_error_t *e)
{
    if (text == NULL || len == 0) {
        return fault(e, MSA_JSON_EMPTY, 0, NULL);
    }
    if (memchr(text, '\0', len) != NULL) {
        return fault(e, MSA_JSON_NUL, 0, NULL);
    }
    json_tokener *tok = json_tokener_new();
    if (tok == NULL) {
        return fault(e, MSA_JSON_NOMEM, 0, NULL);
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    json_object *o = json_tokener_parse_ex(tok, text, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    apr_size_t end = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (o == NULL || jerr != json_tokener_success) {
        json_object_put(o);
        if (jerr == json_tokener_continue) {
            return fault(e, MSA_JSON_TRUNCATED, end,
                         json_tokener_error_desc(json_tokener_error_parse_eof));
        }
        return fault(e, MSA_JSON_INVALID, end,
                     json_tokener_error_desc(
                         jerr == json_tokener_success ? json_tokener_error_parse_eof : jerr));
    }
    while (end < len && strchr(" \t\r\n", text[end]) != NULL) {
        end++;
    }
    if (end < len) {
        json_object_put(o);
        return fault(e, MSA_JSON_TRAILING, end, NULL);
    }
    apr_pool_cleanup_register(p, o, put_json, apr_pool_cleanup_null);
    if (e != NULL) {
        e->fault = MSA_JSON_OK;
        e->end = end;
        e->desc = NULL;
    }
    return o;
}

json_object *msa_json_parse_object(apr_pool_t *p, const char *text, apr_size_t len)
{
    json_object *o = msa_json_parse(p, text, len, NULL);
    return o != NULL && json_object_is_type(o, json_type_object) ? o : NULL;
}

apr_status_t msa_json_string(apr_pool_t *p, json_object *o, const char *name, const char **out)
{
    json_object *v = NULL;
    *out = NULL;
    if (!json_object_object_get_ex(o, name, &v) || v == NULL) {
        return APR_SUCCESS;
    }
    if (!json_object_is_type(v, json_type_string)) {
        return APR_EINVAL;
    }
    const char *s = json_object_get_string(v);
    apr_size_t n = (apr_size_t)json_object_get_string_len(v);
    if (strlen(s) != n) {
        return APR_EINVAL;
    }
    *out = apr_pstrmemdup(p, s, n);
    return APR_SUCCESS;
}

const char *msa_json_str(apr_pool_t *p, json_object *o, const char *name)
{
    const char *s = NULL;
    return msa_json_string(p, o, name, &s) == APR_SUCCESS ? s : NULL;
}

int msa_json_int(json_object *o, const char *name, apr_int64_t *out)
{
    json_object *v;
    if (json_object_object_get_ex(o, name, &v) && json_object_is_type(v, json_type_int)) {
        *out = json_object_get_int64(v);
        return 1;
    }
    return 0;
}

json_object *msa_json_strings(const apr_array_header_t *arr)
{
    json_object *a = json_object_new_array();
    for (int i = 0; arr != NULL && i < arr->nelts; i++) {
        json_object_array_add(a, json_object_new_string(APR_ARRAY_IDX(arr, i, const char *)));
    }
    return a;
}
