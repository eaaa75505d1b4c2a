/*
 * Fuzz target: the JWT API (src/core/msa_api.c): msa_api_parse_request on the
 * raw input as a POST body, msa_api_peek_appid on the input as a bearer
 * token, and msa_api_error_json on the message a refused body gets.
 *
 * Invariants: a body is accepted only with provider "microsoft" or
 * "passwordless" and a non-empty token and appid (when given), each the very
 * string the JSON held (its strlen is the JSON string's length, so a \u0000
 * inside one is refused: regression seed corpus/api/regress-nul-in-token.json)
 * and no NUL byte in the body; a refused body gets a message; the error JSON
 * parses back to that message.
 */
#include <apr_strings.h>
#include <json-c/json.h>

#include "msa_api.h"

#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_init();
    return 0;
}

/*
 * Whether field is what member name of the body's JSON object holds: both
 * absent (or null), or a string of the same bytes and length.
 */
static int same_as_json(json_object *o, const char *name, const char *field)
{
    json_object *v;
    if (!json_object_object_get_ex(o, name, &v) || json_object_is_type(v, json_type_null)) {
        return field == NULL;
    }
    return field != NULL && json_object_is_type(v, json_type_string) &&
           strlen(field) == (size_t)json_object_get_string_len(v) &&
           memcmp(field, json_object_get_string(v), strlen(field)) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fuzz_begin();
    char *s = fuzz_cstr(p, data, size);
    msa_api_request_t req;
    const char *err = NULL;

    apr_status_t rv = msa_api_parse_request(p, s, size, &req, &err);
    FUZZ_ASSERT(rv == APR_SUCCESS || rv == APR_EINVAL, data, size);
    if (rv == APR_SUCCESS) {
        FUZZ_ASSERT(err == NULL, data, size);
        FUZZ_ASSERT(req.provider != NULL && (strcmp(req.provider, "microsoft") == 0 ||
                                             strcmp(req.provider, "passwordless") == 0),
                    data, size);
        FUZZ_ASSERT(req.token != NULL && *req.token != '\0', data, size);
        FUZZ_ASSERT(req.appid == NULL || *req.appid != '\0', data, size);
        /* The body parsed again, as a whole: the fields are the JSON's strings, NUL-free. */
        FUZZ_ASSERT(memchr(data, '\0', size) == NULL, data, size);
        json_tokener *tok = json_tokener_new();
        json_object *o = tok ? json_tokener_parse_ex(tok, s, (int)size) : NULL;
        FUZZ_ASSERT(o != NULL && json_object_is_type(o, json_type_object), data, size);
        FUZZ_ASSERT(same_as_json(o, "provider", req.provider), data, size);
        FUZZ_ASSERT(same_as_json(o, "token", req.token), data, size);
        FUZZ_ASSERT(same_as_json(o, "appid", req.appid), data, size);
        json_object_put(o);
        json_tokener_free(tok);
    } else {
        FUZZ_ASSERT(err != NULL, data, size);
        char *json = msa_api_error_json(p, 400, err);
        json_object *o = json_tokener_parse(json), *m;
        FUZZ_ASSERT(o != NULL && json_object_object_get_ex(o, "message", &m) &&
                        strcmp(json_object_get_string(m), err) == 0,
                    data, size);
        json_object_put(o);
    }

    const char *appid = msa_api_peek_appid(p, s);
    FUZZ_ASSERT(appid == NULL || strchr(s, '.') != NULL, data, size);

    fuzz_end();
    return 0;
}
