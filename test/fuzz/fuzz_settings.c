/*
 * Fuzz target: the settings store's text (msa_settings_parse), which the
 * module reads from MSAuthSettingsFile and the settings API writes, and what
 * is read back from a parsed store (list, app and key JSON, masked or not).
 *
 * Invariants: every app of a parsed store has a valid appid other than
 * "default" and values the directive parsers accept; its stored JSON, put
 * back into a store, parses to the same apps; masked answers never show a
 * secret (ms_secret, app_secret_key) but as "********".
 */
#include <apr_file_info.h> /* msa_settings.h uses apr_finfo_t without including it */
#include <apr_hash.h>
#include <apr_strings.h>
#include <json-c/json.h>

#include "msa_cfg.h"
#include "msa_settings.h"
#include "msa_state.h"
#include "msa_url.h"

#include "fuzz.h"

#define MASK "********"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_init();
    return 0;
}

/* Whether every secret member of an app's JSON is the mask. */
static int secrets_masked(const char *json)
{
    json_object *o = json_tokener_parse(json);
    int ok = o != NULL && json_object_is_type(o, json_type_object);
    if (ok) {
        json_object_object_foreach(o, key, v)
        {
            if (msa_settings_key_secret(key)) {
                ok = ok && json_object_is_type(v, json_type_string) &&
                     strcmp(json_object_get_string(v), MASK) == 0;
            }
        }
    }
    json_object_put(o);
    return ok;
}

static void check_app(apr_pool_t *p, const msa_store_t *st, const char *appid, const msa_app_t *a,
                      const uint8_t *data, size_t size)
{
    apr_int64_t n;
    FUZZ_ASSERT(msa_appid_valid(appid) && strcmp(appid, "default") != 0, data, size);
    FUZZ_ASSERT(!a->client_id_set || msa_parse_client_id(a->client_id) == NULL, data, size);
    FUZZ_ASSERT(!a->tenant_set || msa_parse_tenant(a->tenant) == NULL, data, size);
    FUZZ_ASSERT(!a->signin_success_set || msa_url_check(p, a->signin_success, 0) == NULL, data,
                size);
    FUZZ_ASSERT(!a->signin_failure_set || msa_url_check(p, a->signin_failure, 0) == NULL, data,
                size);
    FUZZ_ASSERT(!a->cookie_name_set || msa_parse_cookie_name(a->cookie_name) == NULL, data, size);
    FUZZ_ASSERT(!a->session_timeout_set ||
                    msa_parse_seconds(apr_psprintf(p, "%" APR_INT64_T_FMT, a->session_timeout), 60,
                                      400LL * 86400, &n) == NULL,
                data, size);
    FUZZ_ASSERT(!a->keys_set ||
                    (a->keys->nelts == 1 && APR_ARRAY_IDX(a->keys, 0, msa_key_t).len >= 32),
                data, size);

    char *masked = msa_settings_app_json(p, st, appid, 1);
    FUZZ_ASSERT(masked != NULL && secrets_masked(masked), data, size);
    FUZZ_ASSERT(msa_settings_app_json(p, st, appid, 0) != NULL, data, size);
    for (int i = 0; msa_settings_keys[i] != NULL; i++) {
        const char *key = msa_settings_keys[i];
        char *kj = msa_settings_key_json(p, st, appid, key);
        if (kj != NULL && msa_settings_key_secret(key)) {
            FUZZ_ASSERT(strcmp(kj, "{\"value\":\"" MASK "\"}") == 0, data, size);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fuzz_begin();
    char *s = fuzz_cstr(p, data, size);
    msa_store_t *st = NULL, *again = NULL;
    const char *err = NULL;

    apr_status_t rv = msa_settings_parse(p, s, size, &st, &err);
    FUZZ_ASSERT(rv == APR_SUCCESS || rv == APR_EINVAL, data, size);
    if (rv != APR_SUCCESS) {
        FUZZ_ASSERT(err != NULL, data, size);
        fuzz_end();
        return 0;
    }
    FUZZ_ASSERT(apr_hash_count(st->apps) == apr_hash_count(st->docs), data, size);
    FUZZ_ASSERT(msa_settings_list_json(p, st) != NULL, data, size);

    /* Each app checked, and the stored documents put back together. */
    char *text = "{\"apps\":{";
    int first = 1;
    for (apr_hash_index_t *hi = apr_hash_first(p, st->apps); hi; hi = apr_hash_next(hi)) {
        const void *k;
        void *v;
        apr_hash_this(hi, &k, NULL, &v);
        check_app(p, st, k, v, data, size);
        const char *doc = apr_hash_get(st->docs, k, APR_HASH_KEY_STRING);
        FUZZ_ASSERT(doc != NULL, data, size);
        text = apr_pstrcat(p, text, first ? "" : ",", "\"", (const char *)k, "\":", doc, NULL);
        first = 0;
    }
    text = apr_pstrcat(p, text, "}}", NULL);
    FUZZ_ASSERT(msa_settings_parse(p, text, strlen(text), &again, &err) == APR_SUCCESS, data, size);
    FUZZ_ASSERT(apr_hash_count(again->apps) == apr_hash_count(st->apps), data, size);
    for (apr_hash_index_t *hi = apr_hash_first(p, st->docs); hi; hi = apr_hash_next(hi)) {
        const void *k;
        void *v;
        apr_hash_this(hi, &k, NULL, &v);
        const char *doc2 = apr_hash_get(again->docs, k, APR_HASH_KEY_STRING);
        FUZZ_ASSERT(doc2 != NULL && strcmp(doc2, v) == 0, data, size);
    }

    fuzz_end();
    return 0;
}
