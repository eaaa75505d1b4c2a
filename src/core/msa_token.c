/* The module's session and ID tokens: claims sets, JSON, HS256. */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include <apr_atomic.h>
#include <apr_lib.h>
#include <apr_strings.h>
#if APR_HAS_THREADS
#include <apr_thread_mutex.h>
#endif
#include <json-c/json.h>

#include "msa_json.h"
#include "msa_token.h"

/* Fields common to both kinds of token. */
static apr_status_t token_base(apr_pool_t *p, const msa_identity_t *ident, const char *appid,
                               apr_int64_t now, msa_token_t *t)
{
    memset(t, 0, sizeof(*t));
    if (ident->id == NULL || *ident->id == '\0') {
        return APR_EINVAL;
    }
    t->jti = msa_random_b64url(p, 16);
    if (t->jti == NULL) {
        return APR_EGENERAL;
    }
    t->sub = ident->id;
    t->identifier = apr_pstrcat(p, "ms:", ident->id, NULL);
    t->appid = (appid && *appid) ? appid : MSA_ROOT_APPID;
    t->name = ident->name;
    t->email = ident->email;
    /* What the login learnt of the tenant travels with both kinds of token. */
    t->upn = ident->upn;
    t->tid = ident->tid;
    t->oid = ident->oid;
    t->verified = ident->verified;
    /* The Microsoft session a front-channel logout may end, in both kinds of token. */
    t->sid = ident->sid;
    t->iat = t->nbf = now;
    return APR_SUCCESS;
}

apr_status_t msa_token_session(apr_pool_t *p, const msa_identity_t *ident, const char *appid,
                               apr_int64_t now, apr_int64_t timeout, apr_int64_t refresh_interval,
                               msa_token_t *t)
{
    apr_status_t rv = token_base(p, ident, appid, now, t);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    t->idp = MSA_IDP;
    t->groups = ident->groups;
    t->exp = now + timeout;
    t->refresh = (now + refresh_interval) * 1000;
    t->token_use = MSA_USE_SESSION;
    return APR_SUCCESS;
}

apr_status_t msa_token_id(apr_pool_t *p, const msa_identity_t *ident, const char *appid,
                          apr_int64_t now, apr_int64_t ttl, msa_token_t *t)
{
    apr_status_t rv = token_base(p, ident, appid, now, t);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    t->picture = ident->picture;
    t->exp = now + ttl;
    t->token_use = MSA_USE_ID;
    return APR_SUCCESS;
}

/* The string claims, in the order they are written (sid: the Microsoft session, when known). */
#define TOKEN_STRINGS(X) TOKEN_PROFILE(X) X(sid) X(sid_epoch)
#define TOKEN_PROFILE(X)                                                                           \
    X(sub)                                                                                         \
    X(identifier)                                                                                  \
    X(appid)                                                                                       \
    X(aud)                                                                                         \
    X(idp) X(name) X(email) X(upn) X(tid) X(oid) X(picture) X(verified) X(jti) X(token_use) X(epoch)
#define TOKEN_NUMBERS(X) X(iat) X(nbf) X(exp) X(refresh)

/*
 * The claims as JSON, byte for byte what json-c writes with JSON_C_TO_STRING_PLAIN (members
 * in this order, '/' escaped, control characters as \u00xx, other bytes as they are), without
 * building json-c objects: a token is written at every login and every refresh.
 */
typedef struct jout {
    char *o;     /* the next byte (writing), NULL when only counting */
    size_t need; /* bytes so far */
} jout_t;

static void jout_raw(jout_t *w, const char *s, size_t n)
{
    if (w->o != NULL) {
        memcpy(w->o, s, n);
        w->o += n;
    }
    w->need += n;
}

static void jout_string(jout_t *w, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    jout_raw(w, "\"", 1);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        const unsigned char *run = c;
        while (*c >= 0x20 && *c != '"' && *c != '\\' && *c != '/') {
            c++;
        }
        jout_raw(w, (const char *)run, (size_t)(c - run));
        if (*c == '\0') {
            break;
        }
        char esc[6] = {'\\', 0, 0, 0, 0, 0};
        size_t n = 2;
        switch (*c) {
        case '\b':
            esc[1] = 'b';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        case '"':
        case '\\':
        case '/':
            esc[1] = (char)*c;
            break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[*c >> 4];
            esc[5] = hex[*c & 0xf];
            n = 6;
        }
        jout_raw(w, esc, n);
    }
    jout_raw(w, "\"", 1);
}

static void jout_name(jout_t *w, const char *name)
{
    jout_raw(w, w->need > 1 ? ",\"" : "\"", w->need > 1 ? 2 : 1);
    jout_raw(w, name, strlen(name));
    jout_raw(w, "\":", 2);
}

static void token_write(jout_t *w, const msa_token_t *t)
{
    jout_raw(w, "{", 1);
#define PUT_STRING(f)                                                                              \
    if (t->f != NULL) {                                                                            \
        jout_name(w, #f);                                                                          \
        jout_string(w, t->f);                                                                      \
    }
#define PUT_NUMBER(f)                                                                              \
    if (t->f != 0) {                                                                               \
        char num[24];                                                                              \
        jout_name(w, #f);                                                                          \
        jout_raw(w, num, (size_t)apr_snprintf(num, sizeof(num), "%" APR_INT64_T_FMT, t->f));       \
    }
    TOKEN_STRINGS(PUT_STRING)
    TOKEN_NUMBERS(PUT_NUMBER)
#undef PUT_STRING
#undef PUT_NUMBER
    if (t->groups != NULL) {
        jout_name(w, "groups");
        jout_raw(w, "[", 1);
        for (int i = 0; i < t->groups->nelts; i++) {
            if (i > 0) {
                jout_raw(w, ",", 1);
            }
            jout_string(w, APR_ARRAY_IDX(t->groups, i, const char *));
        }
        jout_raw(w, "]", 1);
    }
    if (t->groups_cached) {
        jout_name(w, "groups_cached");
        jout_raw(w, "true", 4);
    }
    jout_raw(w, "}", 1);
}

char *msa_token_to_json(apr_pool_t *p, const msa_token_t *t)
{
    jout_t count = {NULL, 0};
    token_write(&count, t);
    char *s = apr_palloc(p, count.need + 1);
    jout_t w = {s, 0};
    token_write(&w, t);
    s[w.need] = '\0';
    return s;
}

/*
 * A reader for the claims of the module's own tokens (after their MAC
 * verified), allocating only from the pool: flat objects of strings, integers,
 * booleans, null and arrays of strings, as json-c wrote them. Anything else
 * returns 0 and the general json-c reader decides.
 */
typedef struct jscan {
    apr_pool_t *p;
    const char *s;
} jscan_t;

static void skip_blank(jscan_t *j)
{
    while (*j->s == ' ' || *j->s == '\t' || *j->s == '\n' || *j->s == '\r') {
        j->s++;
    }
}

/* Appends code point u (not a surrogate, not NUL) as UTF-8. */
static char *put_utf8(char *o, unsigned u)
{
    if (u < 0x80) {
        *o++ = (char)u;
    } else if (u < 0x800) {
        *o++ = (char)(0xC0 | u >> 6);
        *o++ = (char)(0x80 | (u & 0x3F));
    } else {
        *o++ = (char)(0xE0 | u >> 12);
        *o++ = (char)(0x80 | (u >> 6 & 0x3F));
        *o++ = (char)(0x80 | (u & 0x3F));
    }
    return o;
}

/* A JSON string at j->s; NULL when it is not one this reader takes. */
static const char *scan_string(jscan_t *j)
{
    if (*j->s != '"') {
        return NULL;
    }
    const char *start = ++j->s;
    size_t n = 0;
    int escaped = 0;
    for (; j->s[n] != '"'; n++) {
        /* Control characters are no JSON; bytes past ASCII are left to json-c to validate. */
        if (j->s[n] == '\0' || (unsigned char)j->s[n] < 0x20 || (unsigned char)j->s[n] >= 0x80) {
            return NULL;
        }
        if (j->s[n] == '\\') {
            escaped = 1;
            if (j->s[++n] == '\0') {
                return NULL;
            }
        }
    }
    j->s += n + 1;
    if (!escaped) {
        return apr_pstrmemdup(j->p, start, n);
    }
    char *out = apr_palloc(j->p, n + 1), *o = out;
    static const char plain[] = "\"\\/bfnrt", meant[] = "\"\\/\b\f\n\r\t";
    for (const char *c = start; c < start + n; c++) {
        if (*c != '\\') {
            *o++ = *c;
            continue;
        }
        c++;
        const char *e = strchr(plain, *c);
        if (*c != '\0' && e != NULL) {
            *o++ = meant[e - plain];
            continue;
        }
        if (*c != 'u' || c + 4 >= start + n) {
            return NULL;
        }
        unsigned u = 0;
        for (int k = 1; k <= 4; k++) {
            int h = msa_hex_digit((unsigned char)c[k]);
            if (h < 0) {
                return NULL;
            }
            u = u << 4 | (unsigned)h;
        }
        c += 4;
        /* NUL and surrogates are left to json-c. */
        if (u == 0 || (u >= 0xD800 && u <= 0xDFFF)) {
            return NULL;
        }
        o = put_utf8(o, u);
    }
    *o = '\0';
    return out;
}

/* Where each claim goes, found by its first letter before any strcmp. */
static const struct claim_slot {
    const char *name;
    size_t offset;
    int number; /* apr_int64_t, else const char * */
} claim_slots[] = {
#define SLOT_STR(f) {#f, offsetof(msa_token_t, f), 0},
#define SLOT_NUM(f) {#f, offsetof(msa_token_t, f), 1},
    TOKEN_STRINGS(SLOT_STR) TOKEN_NUMBERS(SLOT_NUM)
#undef SLOT_STR
#undef SLOT_NUM
};

/* One member's value into t; 0 when the reader does not take it. */
static int scan_value(jscan_t *j, const char *name, msa_token_t *t)
{
    const char **str = NULL;
    apr_int64_t *num = NULL;
    for (size_t i = 0; i < sizeof(claim_slots) / sizeof(*claim_slots); i++) {
        if (claim_slots[i].name[0] == name[0] && strcmp(claim_slots[i].name, name) == 0) {
            void *field = (char *)t + claim_slots[i].offset;
            if (claim_slots[i].number) {
                num = field;
            } else {
                str = field;
            }
            break;
        }
    }
    int groups = strcmp(name, "groups") == 0, cached = strcmp(name, "groups_cached") == 0;
    if (*j->s == '"') {
        const char *v = scan_string(j);
        if (v == NULL || num != NULL || groups || cached) {
            return 0;
        }
        if (str != NULL) {
            *str = v;
        }
        return 1;
    }
    if (*j->s == '-' || apr_isdigit(*j->s)) {
        const char *d = j->s + (*j->s == '-');
        if (!apr_isdigit(*d) || (d[0] == '0' && apr_isdigit(d[1]))) {
            return 0; /* JSON has no leading zeros */
        }
        char *end;
        errno = 0;
        apr_int64_t v = apr_strtoi64(j->s, &end, 10);
        if (errno != 0 || end == j->s || *end == '.' || *end == 'e' || *end == 'E' || str != NULL ||
            groups || cached) {
            return 0;
        }
        j->s = end;
        if (num != NULL) {
            *num = v;
        }
        return 1;
    }
    if (strncmp(j->s, "true", 4) == 0 || strncmp(j->s, "false", 5) == 0) {
        int v = *j->s == 't';
        j->s += v ? 4 : 5;
        if (str != NULL || num != NULL || groups) {
            return 0;
        }
        if (cached) {
            t->groups_cached = v;
        }
        return 1;
    }
    if (strncmp(j->s, "null", 4) == 0) {
        j->s += 4;
        return num == NULL && !cached && !groups;
    }
    if (*j->s != '[' || !groups) {
        return 0;
    }
    j->s++;
    t->groups = apr_array_make(j->p, 8, sizeof(const char *));
    skip_blank(j);
    if (*j->s == ']') {
        j->s++;
        return 1;
    }
    for (;;) {
        skip_blank(j);
        const char *g = scan_string(j);
        if (g == NULL) {
            return 0;
        }
        APR_ARRAY_PUSH(t->groups, const char *) = g;
        skip_blank(j);
        if (*j->s == ',') {
            j->s++;
            continue;
        }
        return *j->s++ == ']';
    }
}

static int claims_fast(apr_pool_t *p, const char *json, msa_token_t *t)
{
    jscan_t j = {p, json};
    skip_blank(&j);
    if (*j.s++ != '{') {
        return 0;
    }
    skip_blank(&j);
    if (*j.s == '}') {
        j.s++;
    } else {
        for (;;) {
            skip_blank(&j);
            const char *name = scan_string(&j);
            if (name == NULL) {
                return 0;
            }
            skip_blank(&j);
            if (*j.s++ != ':') {
                return 0;
            }
            skip_blank(&j);
            if (!scan_value(&j, name, t)) {
                return 0;
            }
            skip_blank(&j);
            if (*j.s == ',') {
                j.s++;
                continue;
            }
            if (*j.s++ != '}') {
                return 0;
            }
            break;
        }
    }
    skip_blank(&j);
    return *j.s == '\0';
}

apr_status_t msa_token_claims_json(apr_pool_t *p, const char *json, msa_token_t *t,
                                   const char **err)
{
    memset(t, 0, sizeof(*t));
    json_object *v;
    /* One document, nothing but blanks after it. */
    json_object *o = msa_json_parse_object(p, json, strlen(json));
    apr_status_t rv = APR_EINVAL;
    if (o == NULL) {
        *err = "token claims are not a JSON object";
        goto out;
    }
#define GET_STRING(f)                                                                              \
    if (json_object_object_get_ex(o, #f, &v) && !json_object_is_type(v, json_type_null)) {         \
        if (!json_object_is_type(v, json_type_string)) {                                           \
            *err = "token claim " #f " is not a string";                                           \
            goto out;                                                                              \
        }                                                                                          \
        t->f = apr_pstrdup(p, json_object_get_string(v));                                          \
    }
#define GET_NUMBER(f)                                                                              \
    if (json_object_object_get_ex(o, #f, &v)) {                                                    \
        if (!json_object_is_type(v, json_type_int)) {                                              \
            *err = "token claim " #f " is not an integer";                                         \
            goto out;                                                                              \
        }                                                                                          \
        t->f = json_object_get_int64(v);                                                           \
    }
    TOKEN_STRINGS(GET_STRING)
    TOKEN_NUMBERS(GET_NUMBER)
#undef GET_STRING
#undef GET_NUMBER
    if (json_object_object_get_ex(o, "groups", &v)) {
        if (!json_object_is_type(v, json_type_array)) {
            *err = "token claim groups is not an array";
            goto out;
        }
        size_t n = json_object_array_length(v);
        t->groups = apr_array_make(p, (int)n, sizeof(const char *));
        for (size_t i = 0; i < n; i++) {
            json_object *g = json_object_array_get_idx(v, i);
            if (!json_object_is_type(g, json_type_string)) {
                *err = "token claim groups holds a non-string";
                goto out;
            }
            APR_ARRAY_PUSH(t->groups, const char *) = apr_pstrdup(p, json_object_get_string(g));
        }
    }
    if (json_object_object_get_ex(o, "groups_cached", &v)) {
        if (!json_object_is_type(v, json_type_boolean)) {
            *err = "token claim groups_cached is not a boolean";
            goto out;
        }
        t->groups_cached = json_object_get_boolean(v);
    }
    rv = APR_SUCCESS;
out:
    return rv;
}

apr_status_t msa_token_from_json(apr_pool_t *p, const char *json, msa_token_t *t, const char **err)
{
    memset(t, 0, sizeof(*t));
    if (claims_fast(p, json, t)) {
        return APR_SUCCESS;
    }
    return msa_token_claims_json(p, json, t, err);
}

apr_status_t msa_token_sign(apr_pool_t *p, const msa_token_t *t, const msa_key_t *key, char **jwt,
                            const char **err)
{
    return msa_jws_hs256_sign(p, key, msa_token_to_json(p, t), jwt, err);
}

/* The memory of verified tokens ---------------------------------------------------------- */

#define MEMORY_STRIPES 64
#define MEMORY_BYTES   8192 /* a slot's token text and claims: a cookie's 4,000 bytes fit */
#define MAC_CHARS      43   /* an HS256 MAC in base64url */
#define KEYS_BYTES     264  /* the keys of a slot, keys_join */

/*
 * Every string claim, so that a copy out of a slot points into the caller's pool: the list
 * the JSON is written from, so that no claim added there is left pointing into the pool of
 * the request that verified the token.
 */
static const size_t string_claims[] = {
#define CLAIM_OFFSET(f) offsetof(msa_token_t, f),
    TOKEN_STRINGS(CLAIM_OFFSET)
#undef CLAIM_OFFSET
};
#define STRING_CLAIMS (sizeof(string_claims) / sizeof(string_claims[0]))

typedef struct memory_slot {
    apr_uint32_t version; /* changes whenever the slot is filled */
    apr_size_t keys_len;  /* the keys that verified the token, keys_join */
    unsigned char keys[KEYS_BYTES];
    apr_uint64_t stamp; /* the caller's, msa_token_memo_set */
    apr_size_t token_len, used;
    int ngroups;
    msa_token_t claims; /* strings as offsets into bytes + 1 (0: absent) */
    char bytes[MEMORY_BYTES];
} memory_slot_t;

static struct {
    unsigned nslots;
    memory_slot_t *slots;
#if APR_HAS_THREADS
    apr_thread_mutex_t *locks[MEMORY_STRIPES];
#endif
} memory;

apr_status_t msa_token_memory_init(apr_pool_t *p, unsigned slots)
{
    memory.nslots = 0;
    if (slots == 0) {
        return APR_SUCCESS;
    }
    apr_status_t rv = APR_SUCCESS;
#if APR_HAS_THREADS
    for (int i = 0; i < MEMORY_STRIPES; i++) {
        rv = apr_thread_mutex_create(&memory.locks[i], APR_THREAD_MUTEX_DEFAULT, p);
        if (rv != APR_SUCCESS) {
            return rv;
        }
    }
#endif
    memory.slots = apr_pcalloc(p, sizeof(memory_slot_t) * slots);
    memory.nslots = slots;
    return APR_SUCCESS;
}

static void memory_lock(unsigned slot)
{
#if APR_HAS_THREADS
    apr_thread_mutex_lock(memory.locks[slot % MEMORY_STRIPES]);
#else
    (void)slot;
#endif
}

static void memory_unlock(unsigned slot)
{
#if APR_HAS_THREADS
    apr_thread_mutex_unlock(memory.locks[slot % MEMORY_STRIPES]);
#else
    (void)slot;
#endif
}

/*
 * The keys a token was verified with, as one string of bytes: length and bytes
 * of each; 0 when they do not fit in a slot (the token is then not kept).
 */
static apr_size_t keys_join(const msa_key_t *keys, int nkeys, unsigned char *out)
{
    apr_size_t n = 0;
    for (int i = 0; i < nkeys; i++) {
        if (keys[i].len > 255 || n + 1 + keys[i].len > KEYS_BYTES) {
            return 0;
        }
        out[n++] = (unsigned char)keys[i].len;
        memcpy(out + n, keys[i].data, keys[i].len);
        n += keys[i].len;
    }
    return n;
}

/* Whether a and b hold the same n bytes, in a time that depends on n alone. */
static int same_bytes(const void *a, const void *b, apr_size_t n)
{
    const unsigned char *x = a, *y = b;
    apr_uint64_t diff = 0;
    apr_size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        apr_uint64_t u, v;
        memcpy(&u, x + i, 8);
        memcpy(&v, y + i, 8);
        diff |= u ^ v;
    }
    for (; i < n; i++) {
        diff |= (apr_uint64_t)(x[i] ^ y[i]);
    }
    return diff == 0;
}

/* Whether keys are the keys joined in out[0..n) (in constant time: they are secrets). */
static int keys_same(const msa_key_t *keys, int nkeys, const unsigned char *joined, apr_size_t n)
{
    apr_size_t at = 0;
    int diff = 0;
    for (int i = 0; i < nkeys; i++) {
        if (at >= n || joined[at] != keys[i].len || at + 1 + keys[i].len > n) {
            return 0;
        }
        diff |= !same_bytes(joined + at + 1, keys[i].data, keys[i].len);
        at += 1 + keys[i].len;
    }
    return at == n && diff == 0;
}

/* The slot of a token, by its MAC: what no one can aim at without the key. */
static unsigned memory_slot_of(const char *jwt, apr_size_t len)
{
    apr_uint32_t h = 2166136261u;
    for (apr_size_t i = len - 16; i < len; i++) {
        h = (h ^ (unsigned char)jwt[i]) * 16777619u;
    }
    return h % memory.nslots;
}

static int memory_holds(const memory_slot_t *m, const char *jwt, apr_size_t len,
                        const msa_key_t *keys, int nkeys)
{
    return m->version != 0 && m->token_len == len &&
           same_bytes(m->bytes + len - MAC_CHARS, jwt + len - MAC_CHARS, MAC_CHARS) &&
           memcmp(m->bytes, jwt, len - MAC_CHARS) == 0 &&
           keys_same(keys, nkeys, m->keys, m->keys_len);
}

/* The slot's claims, copied into p. */
static void memory_copy_out(apr_pool_t *p, const memory_slot_t *m, msa_token_t *t)
{
    apr_size_t n = m->used - m->token_len;
    char *block = apr_pmemdup(p, m->bytes + m->token_len, n);
    *t = m->claims;
    for (size_t i = 0; i < STRING_CLAIMS; i++) {
        const char **f = (const char **)((char *)t + string_claims[i]);
        apr_size_t off = (apr_size_t)(apr_uintptr_t)*f;
        *f = off == 0 ? NULL : block + (off - 1 - m->token_len);
    }
    t->groups = NULL;
    if (m->ngroups >= 0) {
        t->groups = apr_array_make(p, m->ngroups > 0 ? m->ngroups : 1, sizeof(const char *));
        const char *g = block + ((apr_size_t)(apr_uintptr_t)m->claims.groups - 1 - m->token_len);
        for (int i = 0; i < m->ngroups; i++) {
            APR_ARRAY_PUSH(t->groups, const char *) = g;
            g += strlen(g) + 1;
        }
    }
}

/* Appends s to the slot: its offset + 1, 0 for NULL; -1 when the slot is full. */
static apr_ssize_t memory_put(memory_slot_t *m, const char *s)
{
    if (s == NULL) {
        return 0;
    }
    apr_size_t n = strlen(s) + 1;
    if (m->used + n > MEMORY_BYTES) {
        return -1;
    }
    memcpy(m->bytes + m->used, s, n);
    m->used += n;
    return (apr_ssize_t)(m->used - n + 1);
}

/* Whether n bytes of NUL-separated strings hold no control character but their NULs. */
static int plain_block(const char *b, apr_size_t n)
{
    for (apr_size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)b[i];
        if ((c < 0x20 && c != '\0') || c == 0x7f) {
            return 0;
        }
    }
    return 1;
}

/* Fills the slot with a verified token and its claims (nothing when they do not fit). */
static void memory_keep(memory_slot_t *m, const char *jwt, apr_size_t len, const msa_key_t *keys,
                        int nkeys, const msa_token_t *t)
{
    m->version = 0; /* empty until complete */
    m->keys_len = keys_join(keys, nkeys, m->keys);
    if (len >= MEMORY_BYTES || m->keys_len == 0) {
        return;
    }
    memcpy(m->bytes, jwt, len);
    m->token_len = m->used = len;
    m->claims = *t;
    for (size_t i = 0; i < STRING_CLAIMS; i++) {
        const char *const *from = (const char *const *)((const char *)t + string_claims[i]);
        apr_ssize_t off = memory_put(m, *from);
        if (off < 0) {
            return;
        }
        *(const char **)((char *)&m->claims + string_claims[i]) = (const char *)(apr_uintptr_t)off;
    }
    m->ngroups = -1;
    m->claims.groups = NULL;
    if (t->groups != NULL) {
        m->ngroups = t->groups->nelts;
        m->claims.groups = (apr_array_header_t *)(apr_uintptr_t)(m->used + 1);
        for (int i = 0; i < t->groups->nelts; i++) {
            if (memory_put(m, APR_ARRAY_IDX(t->groups, i, const char *)) < 0) {
                return;
            }
        }
    }
    m->claims.plain = plain_block(m->bytes + len, m->used - len) ? MSA_PLAIN_CLAIMS : 0;
    if (m->ngroups >= 0 && (m->claims.plain & MSA_PLAIN_CLAIMS)) {
        m->claims.plain |= MSA_PLAIN_GROUPS; /* the groups are in the same block */
    }
    static volatile apr_uint32_t fills;
    apr_uint32_t version = apr_atomic_inc32(&fills) + 1;
    m->stamp = 0;
    m->version = version != 0 ? version : apr_atomic_inc32(&fills) + 1;
}

void msa_token_memo_set(const msa_token_memo_t *memo, apr_uint64_t stamp)
{
    if (memo == NULL || memo->version == 0 || memo->slot >= memory.nslots) {
        return;
    }
    memory_lock(memo->slot);
    memory_slot_t *m = &memory.slots[memo->slot];
    if (m->version == memo->version) {
        m->stamp = stamp;
    }
    memory_unlock(memo->slot);
}

/* The signature and the claims: from the memory, else verified and parsed (and kept). */
static apr_status_t verified_claims(apr_pool_t *p, const char *jwt, const msa_key_t *keys,
                                    int nkeys, msa_token_t *t, msa_token_memo_t *memo,
                                    const char **err)
{
    apr_size_t len = strlen(jwt);
    int kept = memory.nslots > 0 && len > MAC_CHARS;
    unsigned slot = 0;
    if (kept) {
        slot = memory_slot_of(jwt, len);
        memory_lock(slot);
        memory_slot_t *m = &memory.slots[slot];
        if (memory_holds(m, jwt, len, keys, nkeys)) {
            memory_copy_out(p, m, t);
            if (memo != NULL) {
                memo->stamp = m->stamp;
                memo->slot = slot;
                memo->version = m->version;
            }
            memory_unlock(slot);
            return APR_SUCCESS;
        }
        memory_unlock(slot);
    }
    char *payload = NULL;
    apr_status_t rv = msa_jws_hs256_verify(p, jwt, keys, nkeys, &payload, err);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    rv = msa_token_from_json(p, payload, t, err);
    if (rv != APR_SUCCESS || !kept) {
        return rv;
    }
    memory_lock(slot);
    memory_slot_t *m = &memory.slots[slot];
    memory_keep(m, jwt, len, keys, nkeys, t);
    if (memo != NULL) {
        memo->slot = slot;
        memo->version = m->version;
    }
    memory_unlock(slot);
    return APR_SUCCESS;
}

apr_status_t msa_token_verify(apr_pool_t *p, const char *jwt, const msa_key_t *keys, int nkeys,
                              const char *use, const char *appid, const char *aud, apr_int64_t now,
                              apr_int64_t skew, msa_token_t *t, const char **err)
{
    return msa_token_verify_memo(p, jwt, keys, nkeys, use, appid, aud, now, skew, t, NULL, err);
}

apr_status_t msa_token_verify_memo(apr_pool_t *p, const char *jwt, const msa_key_t *keys, int nkeys,
                                   const char *use, const char *appid, const char *aud,
                                   apr_int64_t now, apr_int64_t skew, msa_token_t *t,
                                   msa_token_memo_t *memo, const char **err)
{
    const char *parts[] = {aud, NULL};
    return msa_token_verify_memo_parts(p, jwt, keys, nkeys, use, appid, aud ? parts : NULL, now,
                                       skew, t, memo, err);
}

/* Whether s is the concatenation of parts. */
static int joined_is(const char *s, const char *const *parts)
{
    for (; *parts != NULL; parts++) {
        apr_size_t n = strlen(*parts);
        if (strncmp(s, *parts, n) != 0) {
            return 0;
        }
        s += n;
    }
    return *s == '\0';
}

apr_status_t msa_token_verify_memo_parts(apr_pool_t *p, const char *jwt, const msa_key_t *keys,
                                         int nkeys, const char *use, const char *appid,
                                         const char *const *aud_parts, apr_int64_t now,
                                         apr_int64_t skew, msa_token_t *t, msa_token_memo_t *memo,
                                         const char **err)
{
    if (memo != NULL) {
        memset(memo, 0, sizeof(*memo));
    }
    apr_status_t rv = verified_claims(p, jwt, keys, nkeys, t, memo, err);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    if (t->sub == NULL || *t->sub == '\0' || t->jti == NULL || *t->jti == '\0') {
        *err = "token lacks sub or jti";
        return APR_EINVAL;
    }
    if (t->token_use == NULL || strcmp(t->token_use, use) != 0) {
        *err = apr_psprintf(p, "token_use is not %s", use);
        return APR_EINVAL;
    }
    if (appid != NULL && (t->appid == NULL || strcmp(t->appid, appid) != 0)) {
        *err = "token is for another app";
        return APR_EINVAL;
    }
    if (aud_parts != NULL && (t->aud == NULL || !joined_is(t->aud, aud_parts))) {
        *err = t->aud == NULL ? "token has no aud" : "token aud is another app's";
        return APR_EINVAL;
    }
    if (t->exp == 0 || t->exp <= now - skew) {
        *err = "token expired";
        return MSA_EEXPIRED;
    }
    if (t->nbf > now + skew || t->iat > now + skew) {
        *err = "token not yet valid";
        return MSA_EEXPIRED;
    }
    return APR_SUCCESS;
}
