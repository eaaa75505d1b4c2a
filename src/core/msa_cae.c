/*
 * Continuous access evaluation: reading a claims challenge (RFC 7235
 * WWW-Authenticate, Microsoft's insufficient_claims) and the claims request
 * of the sign-in that answers it.
 *
 * The header and the claims come from the app, which may echo what a client
 * sent: both are parsed strictly, bounded, and never quoted in a message.
 */
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include <apr_strings.h>
#include <apr_tables.h>

#include "msa_cae.h"
#include "msa_json.h"

#define CAE_MAX_FIELD 16384 /* of a WWW-Authenticate value parsed */

typedef struct cae_param {
    const char *name;
    const char *value;
} cae_param_t;

static int is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int is_token68_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("-._~+/", c) != NULL);
}

static const char *skip_ows(const char *s)
{
    while (*s == ' ' || *s == '\t') {
        s++;
    }
    return s;
}

static const char *token_end(const char *s)
{
    while (is_tchar((unsigned char)*s)) {
        s++;
    }
    return s;
}

/* A quoted-string at s (on its opening quote): its unescaped text, *end past it; NULL if bad. */
static char *quoted_string(apr_pool_t *p, const char *s, const char **end)
{
    apr_size_t n = 0;
    char *out = apr_palloc(p, strlen(s) + 1);
    for (s++; *s != '"'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '\\') {
            c = (unsigned char)*++s;
            if (c == '\0' || (c < 0x20 && c != '\t') || c == 0x7f) {
                return NULL;
            }
        } else if (c == '\0' || (c < 0x20 && c != '\t') || c == 0x7f) {
            return NULL; /* unterminated, or a control character */
        }
        out[n++] = (char)c;
    }
    out[n] = '\0';
    *end = s + 1;
    return out;
}

/*
 * After a scheme and its white space: a token68 (then s points to the end of
 * the list element) or nothing of the kind. 1 when s starts a token68.
 */
static int starts_token68(const char *s)
{
    const char *t = s;
    while (is_token68_char((unsigned char)*t)) {
        t++;
    }
    if (t == s) {
        return 0;
    }
    while (*t == '=') {
        t++;
    }
    t = skip_ows(t);
    return *t == '\0' || *t == ',';
}

/* The value of param name in params (names compare case-insensitively), or NULL. */
static const char *param_get(const apr_array_header_t *params, const char *name)
{
    for (int i = 0; i < params->nelts; i++) {
        const cae_param_t *pr = &APR_ARRAY_IDX(params, i, cae_param_t);
        if (strcasecmp(pr->name, name) == 0) {
            return pr->value;
        }
    }
    return NULL;
}

/*
 * After a ',' that ended an auth-param: 1 when what follows is another
 * auth-param of the same challenge (token BWS "="), 0 when it starts the next
 * challenge or ends the list.
 */
static int next_is_param(const char *s)
{
    while (*s == ',' || *s == ' ' || *s == '\t') {
        s++;
    }
    const char *t = token_end(s);
    if (t == s) {
        return 0;
    }
    t = skip_ows(t);
    return *t == '=';
}

apr_status_t msa_cae_find_challenge(apr_pool_t *p, const char *field, const char **claims,
                                    const char **why)
{
    *claims = NULL;
    *why = NULL;
    if (field == NULL) {
        return APR_ENOENT;
    }
    if (strlen(field) > CAE_MAX_FIELD) {
        *why = "WWW-Authenticate is too long to read";
        return APR_EINVAL;
    }
    const char *found = NULL;
    const char *s = field;
    for (;;) {
        while (*s == ',' || *s == ' ' || *s == '\t') {
            s++; /* empty list elements are allowed (RFC 7230 7) */
        }
        if (*s == '\0') {
            break;
        }
        const char *scheme = s;
        s = token_end(s);
        if (s == scheme) {
            *why = "WWW-Authenticate holds a challenge without a scheme";
            return APR_EINVAL;
        }
        apr_size_t scheme_len = (apr_size_t)(s - scheme);
        apr_array_header_t *params = apr_array_make(p, 4, sizeof(cae_param_t));
        if (*s == ' ') {
            while (*s == ' ') {
                s++;
            }
            if (starts_token68(s)) {
                while (is_token68_char((unsigned char)*s) || *s == '=') {
                    s++;
                }
                s = skip_ows(s);
            } else {
                for (;;) {
                    const char *name = s;
                    s = token_end(s);
                    if (s == name) {
                        *why = "WWW-Authenticate holds a parameter without a name";
                        return APR_EINVAL;
                    }
                    const char *name_end = s;
                    s = skip_ows(s);
                    if (*s != '=') {
                        *why = "WWW-Authenticate holds a parameter without a value";
                        return APR_EINVAL;
                    }
                    s = skip_ows(s + 1);
                    const char *value;
                    if (*s == '"') {
                        value = quoted_string(p, s, &s);
                        if (value == NULL) {
                            *why = "WWW-Authenticate holds a malformed quoted string";
                            return APR_EINVAL;
                        }
                    } else {
                        const char *v = s;
                        s = token_end(s);
                        if (s == v) {
                            *why = "WWW-Authenticate holds a parameter without a value";
                            return APR_EINVAL;
                        }
                        value = apr_pstrmemdup(p, v, (apr_size_t)(s - v));
                    }
                    char *pname = apr_pstrmemdup(p, name, (apr_size_t)(name_end - name));
                    if (param_get(params, pname) != NULL) {
                        *why = "WWW-Authenticate repeats a parameter in one challenge";
                        return APR_EINVAL;
                    }
                    cae_param_t *pr = apr_array_push(params);
                    pr->name = pname;
                    pr->value = value;
                    s = skip_ows(s);
                    if (*s == ',' && next_is_param(s)) {
                        while (*s == ',' || *s == ' ' || *s == '\t') {
                            s++;
                        }
                        continue;
                    }
                    break;
                }
            }
        }
        if (*s != '\0' && *s != ',') {
            *why = "WWW-Authenticate does not parse as a list of challenges";
            return APR_EINVAL;
        }
        const char *error = param_get(params, "error");
        if (found == NULL && scheme_len == 6 && strncasecmp(scheme, "Bearer", 6) == 0 &&
            error != NULL && strcmp(error, "insufficient_claims") == 0) {
            found = param_get(params, "claims");
            if (found == NULL || *found == '\0') {
                *why = "an insufficient_claims challenge without its claims";
                return APR_EINVAL;
            }
        }
    }
    if (found == NULL) {
        return APR_ENOENT;
    }
    *claims = found;
    return APR_SUCCESS;
}

static int b64_value(unsigned char c, int url)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == (url ? '-' : '+')) {
        return 62;
    }
    if (c == (url ? '_' : '/')) {
        return 63;
    }
    return -1;
}

/*
 * Base64 of either alphabet (not both), padded to a multiple of four or not
 * padded at all; no white space. The bytes NUL-terminated, or NULL.
 */
static unsigned char *b64_decode(apr_pool_t *p, const char *s, apr_size_t *outlen)
{
    apr_size_t len = strlen(s);
    int url = strpbrk(s, "-_") != NULL;
    if (url && strpbrk(s, "+/") != NULL) {
        return NULL;
    }
    apr_size_t pad = 0;
    while (pad < len && s[len - 1 - pad] == '=') {
        pad++;
    }
    if (pad > 2 || (pad > 0 && len % 4 != 0)) {
        return NULL;
    }
    len -= pad;
    if (len % 4 == 1) {
        return NULL;
    }
    unsigned char *out = apr_palloc(p, len / 4 * 3 + 3);
    apr_size_t n = 0;
    unsigned int acc = 0;
    int bits = 0;
    for (apr_size_t i = 0; i < len; i++) {
        int v = b64_value((unsigned char)s[i], url);
        if (v < 0) {
            return NULL;
        }
        acc = (acc << 6) | (unsigned int)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0) {
        return NULL; /* the unused bits of the last character must be zero */
    }
    out[n] = '\0';
    *outlen = n;
    return out;
}

/* The object member name of o, made an empty object when absent; NULL when it is no object. */
static json_object *member_object(json_object *o, const char *name)
{
    json_object *m = NULL;
    if (!json_object_object_get_ex(o, name, &m) || m == NULL) {
        m = json_object_new_object();
        if (m == NULL || json_object_object_add(o, name, m) != 0) {
            return NULL;
        }
        return m;
    }
    return json_object_is_type(m, json_type_object) ? m : NULL;
}

apr_status_t msa_cae_merge(apr_pool_t *p, const char *claims, const char **json, const char **why)
{
    *json = NULL;
    *why = NULL;
    if (claims == NULL || *claims == '\0') {
        *why = "the claims are empty";
        return APR_EINVAL;
    }
    if (strlen(claims) > MSA_CAE_MAX_CLAIMS) {
        *why = "the claims are longer than 4096 characters";
        return APR_EINVAL;
    }
    apr_size_t len;
    unsigned char *raw = b64_decode(p, claims, &len);
    if (raw == NULL) {
        *why = "the claims are not base64";
        return APR_EINVAL;
    }
    json_object *o = msa_json_parse(p, (const char *)raw, len, NULL);
    if (o == NULL || !json_object_is_type(o, json_type_object)) {
        *why = "the claims are not a JSON object";
        return APR_EINVAL;
    }
    json_object *at = member_object(o, "access_token");
    json_object *cc = at ? member_object(at, "xms_cc") : NULL;
    if (cc == NULL) {
        *why = "the claims' access_token or its xms_cc is not an object";
        return APR_EINVAL;
    }
    json_object *values = NULL;
    json_object *merged = json_object_new_array();
    if (merged == NULL) {
        *why = "out of memory";
        return APR_ENOMEM;
    }
    int has_cp1 = 0;
    if (json_object_object_get_ex(cc, "values", &values) && values != NULL) {
        if (!json_object_is_type(values, json_type_array)) {
            json_object_put(merged);
            *why = "the claims' xms_cc values are not an array";
            return APR_EINVAL;
        }
        apr_size_t n = json_object_array_length(values);
        for (apr_size_t i = 0; i < n; i++) {
            json_object *v = json_object_array_get_idx(values, i);
            if (!json_object_is_type(v, json_type_string)) {
                json_object_put(merged);
                *why = "the claims' xms_cc values are not strings";
                return APR_EINVAL;
            }
            const char *sv = json_object_get_string(v);
            int seen = 0;
            for (apr_size_t j = 0; j < json_object_array_length(merged); j++) {
                seen |=
                    strcmp(json_object_get_string(json_object_array_get_idx(merged, j)), sv) == 0;
            }
            if (!seen) {
                json_object_array_add(merged, json_object_new_string(sv));
            }
            has_cp1 |= strcmp(sv, "cp1") == 0;
        }
    }
    if (!has_cp1) {
        json_object_array_add(merged, json_object_new_string("cp1"));
    }
    json_object_object_add(cc, "values", merged); /* frees the old array */
    const char *text =
        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    if (text == NULL) {
        *why = "out of memory";
        return APR_ENOMEM;
    }
    *json = apr_pstrdup(p, text);
    return APR_SUCCESS;
}

apr_status_t msa_cae_not_before(apr_pool_t *p, const char *json, apr_int64_t *at)
{
    *at = 0;
    json_object *o = json ? msa_json_parse_object(p, json, strlen(json)) : NULL;
    json_object *token = NULL, *nbf = NULL, *value = NULL;
    if (o == NULL || !json_object_object_get_ex(o, "access_token", &token) ||
        !json_object_is_type(token, json_type_object) ||
        !json_object_object_get_ex(token, "nbf", &nbf) ||
        !json_object_is_type(nbf, json_type_object) ||
        !json_object_object_get_ex(nbf, "value", &value)) {
        return APR_ENOENT;
    }
    apr_int64_t t = 0;
    if (json_object_is_type(value, json_type_int)) {
        t = json_object_get_int64(value);
    } else if (json_object_is_type(value, json_type_string)) {
        const char *s = json_object_get_string(value);
        apr_size_t n = (apr_size_t)json_object_get_string_len(value);
        /* Seconds since 1970, as Microsoft writes them: 1 to 12 digits, nothing else. */
        if (n == 0 || n > 12 || strspn(s, "0123456789") != n) {
            return APR_ENOENT;
        }
        for (apr_size_t i = 0; i < n; i++) {
            t = t * 10 + (s[i] - '0');
        }
    } else {
        return APR_ENOENT;
    }
    if (t <= 0) {
        return APR_ENOENT;
    }
    *at = t;
    return APR_SUCCESS;
}
