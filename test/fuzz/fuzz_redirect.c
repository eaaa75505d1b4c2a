/*
 * Fuzz target: return_to validation (msa_redirect_target), the open-redirect
 * guard, with self origin https://app.example.com and the allow list
 * {https://partner.example.com/apps}.
 *
 * Invariant on an accepted target: it is exactly "/", or a '/' followed by
 * a character other than '/' and '\'; or "https://app.example.com" followed
 * by '/', '?', '#' or its end; or "https://partner.example.com/apps" followed
 * by the same. Scheme and host compare without case, and the origin may spell
 * its default port (":443", with leading zeros too: the same origin to a
 * browser). It never holds a control character (C0, DEL, C1), a space or a
 * backslash, never starts with an encoded '/' or '\', and is at most 2048
 * bytes. Without a self origin and allow list, only the path form passes.
 */
#include <strings.h>

#include <apr_tables.h>

#include "msa_url.h"

#include "fuzz.h"

#define SELF_ORIGIN "https://app.example.com"
#define ALLOW       "https://partner.example.com/apps"

static apr_array_header_t *allow;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_init();
    allow = apr_array_make(fuzz_root, 1, sizeof(const char *));
    APR_ARRAY_PUSH(allow, const char *) = ALLOW;
    return 0;
}

static int boundary(char c)
{
    return c == '/' || c == '?' || c == '#' || c == '\0';
}

/*
 * Past "https://<host>" (any case) and an optional port that means 443, the
 * rest of t; NULL when t does not start with that origin.
 */
static const char *after_origin(const char *t, const char *host)
{
    size_t hlen = strlen(host);
    if (strncasecmp(t, "https://", 8) != 0 || strncasecmp(t + 8, host, hlen) != 0) {
        return NULL;
    }
    const char *r = t + 8 + hlen;
    if (*r == ':') {
        unsigned long port = 0;
        const char *d = r + 1;
        while (*d >= '0' && *d <= '9' && port <= 65535) {
            port = port * 10 + (unsigned long)(*d - '0');
            d++;
        }
        if (d == r + 1 || port != 443) {
            return NULL;
        }
        r = d;
    }
    return r;
}

static int path_form(const char *t)
{
    return t[0] == '/' && (t[1] == '\0' || (t[1] != '/' && t[1] != '\\'));
}

static int clean(const char *t)
{
    const unsigned char *u = (const unsigned char *)t;
    for (size_t i = 0; u[i]; i++) {
        if (u[i] <= 0x20 || u[i] == 0x7F || u[i] == '\\') {
            return 0;
        }
        /* C1 controls, U+0080..U+009F, as UTF-8 */
        if (u[i] == 0xC2 && u[i + 1] >= 0x80 && u[i + 1] <= 0x9F) {
            return 0;
        }
    }
    return 1;
}

static int encoded_slash_first(const char *t)
{
    const char *e = t[0] == '/' ? t + 1 : t;
    return strncasecmp(e, "%2f", 3) == 0 || strncasecmp(e, "%5c", 3) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fuzz_begin();
    char *t = fuzz_cstr(p, data, size);

    const char *got = msa_redirect_target(p, t, SELF_ORIGIN, allow);
    if (got != NULL) {
        FUZZ_ASSERT(got == t, data, size);
        const char *self_rest = after_origin(t, "app.example.com");
        const char *allow_rest = after_origin(t, "partner.example.com");
        int ok =
            path_form(t) || (self_rest != NULL && boundary(*self_rest)) ||
            (allow_rest != NULL && strncmp(allow_rest, "/apps", 5) == 0 && boundary(allow_rest[5]));
        FUZZ_ASSERT(ok, data, size);
        FUZZ_ASSERT(clean(t), data, size);
        FUZZ_ASSERT(!encoded_slash_first(t), data, size);
        FUZZ_ASSERT(strlen(t) <= 2048 && msa_utf8_valid(t, strlen(t)), data, size);
    }

    got = msa_redirect_target(p, t, NULL, NULL);
    if (got != NULL) {
        FUZZ_ASSERT(path_form(t) && clean(t) && !encoded_slash_first(t), data, size);
    }

    fuzz_end();
    return 0;
}
