/*
 * Fuzz target: the OAuth state value Microsoft hands back (msa_state_parse),
 * appids (msa_appid_valid), the state cookie name derived from a state, and
 * tenant segments (msa_ms_tenant_valid).
 *
 * Each is checked against a model written from its contract in the headers,
 * with ASCII classes spelled out (the code under test uses <ctype.h>-style
 * helpers, whose answers could follow the locale).
 */
#include <apr_strings.h>

#include "msa_ms.h"
#include "msa_state.h"

#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_init();
    return 0;
}

static int ascii_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static int appid_char(char c)
{
    return ascii_alnum(c) || c == '.' || c == '_' || c == '~' || c == '-';
}

static int b64url_char(char c)
{
    return ascii_alnum(c) || c == '-' || c == '_';
}

static int all_of(const char *s, size_t n, int (*cls)(char))
{
    for (size_t i = 0; i < n; i++) {
        if (!cls(s[i])) {
            return 0;
        }
    }
    return 1;
}

static int all_digits(const char *s)
{
    for (; *s; s++) {
        if (*s < '0' || *s > '9') {
            return 0;
        }
    }
    return 1;
}

/* The contract of msa_state_parse, as a model. */
static apr_status_t model_state(apr_pool_t *p, const char *s, msa_state_ref_t *out)
{
    size_t len = strlen(s);
    const char *bar = strchr(s, '|');
    size_t alen = bar ? (size_t)(bar - s) : len;
    out->appid = "";
    out->random = NULL;
    out->client_built = 0;
    if (len > MSA_MAX_STATE || alen > 64 || !all_of(s, alen, appid_char)) {
        return APR_EINVAL;
    }
    out->appid = apr_pstrmemdup(p, s, alen);
    if (bar == NULL) {
        out->client_built = 1;
        return APR_SUCCESS;
    }
    const char *r = bar + 1;
    if (*r == '\0' || !all_of(r, strlen(r), b64url_char)) {
        return APR_EINVAL;
    }
    out->random = r;
    out->client_built = all_digits(r);
    return APR_SUCCESS;
}

static int model_tenant(const char *s)
{
    size_t len = strlen(s);
    if (strcasecmp(s, "common") == 0 || strcasecmp(s, "organizations") == 0 ||
        strcasecmp(s, "consumers") == 0) {
        return 1;
    }
    if (len == 36) {
        int guid = 1;
        for (size_t i = 0; i < 36; i++) {
            char c = s[i];
            int hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
            guid = guid && (i == 8 || i == 13 || i == 18 || i == 23 ? c == '-' : hex);
        }
        if (guid) {
            return 1;
        }
    }
    /* A host name with at least one dot: labels of 1..63 [A-Za-z0-9-] not starting or ending '-'.
     */
    if (len == 0 || len > 253) {
        return 0;
    }
    int dots = 0;
    const char *label = s;
    for (const char *c = s;; c++) {
        if (*c == '.' || *c == '\0') {
            size_t n = (size_t)(c - label);
            if (n == 0 || n > 63 || label[0] == '-' || c[-1] == '-') {
                return 0;
            }
            if (*c == '\0') {
                break;
            }
            dots++;
            label = c + 1;
        } else if (!ascii_alnum(*c) && *c != '-') {
            return 0;
        }
    }
    return dots > 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fuzz_begin();
    char *s = fuzz_cstr(p, data, size);
    msa_state_ref_t got, want;

    apr_status_t rv = msa_state_parse(p, s, &got);
    FUZZ_ASSERT(rv == model_state(p, s, &want), data, size);
    if (rv == APR_SUCCESS) {
        FUZZ_ASSERT(strcmp(got.appid, want.appid) == 0, data, size);
        FUZZ_ASSERT(got.random == NULL
                        ? want.random == NULL
                        : want.random != NULL && strcmp(got.random, want.random) == 0,
                    data, size);
        FUZZ_ASSERT(got.client_built == want.client_built, data, size);
        /* What the callback does next with it. */
        FUZZ_ASSERT(*got.appid == '\0' || msa_appid_valid(got.appid), data, size);
    }

    size_t len = strlen(s);
    FUZZ_ASSERT(msa_appid_valid(s) == (len >= 1 && len <= 64 && all_of(s, len, appid_char)), data,
                size);

    /* The state cookie's name: a fixed prefix and 12 base64url characters. */
    const char *name = msa_login_state_cookie_name(p, s);
    FUZZ_ASSERT(fuzz_startswith(name, "msauth_state_") && strlen(name) == 13 + 12 &&
                    all_of(name + 13, 12, b64url_char),
                data, size);

    FUZZ_ASSERT(!!msa_ms_tenant_valid(s) == model_tenant(s), data, size);

    fuzz_end();
    return 0;
}
