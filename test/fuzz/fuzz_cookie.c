/*
 * Fuzz target: the Cookie header (msa_cookie_find, msa_cookie_each,
 * msa_cookie_strip), as the module strips its own cookies (names starting
 * "msauth") before a request goes on to the application.
 *
 * Invariants: the stripped header is exactly what a model of the contract
 * gives (every pair kept byte for byte, in order, joined by "; "); read back
 * by a parser without the 200-pair cap, it holds no cookie named msauth*;
 * every cookie msa_cookie_each sees that is not dropped is seen again, with
 * the same name and value, in the stripped header; find agrees with each.
 */
#include <apr_strings.h>
#include <apr_tables.h>

#include "msa_cookie.h"

#include "fuzz.h"

#define OWN_PREFIX "msauth"

static const char *const find_names[] = {"msauth", "msauth_state_AbCdEfGhIjKl", "session", ""};

typedef struct pair {
    const char *name, *value;
} pair_t;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_init();
    return 0;
}

static int drop_own(void *ctx, const char *name, apr_size_t nlen, const char *value,
                    apr_size_t vlen)
{
    (void)value;
    (void)vlen;
    (void)ctx;
    return nlen >= strlen(OWN_PREFIX) && memcmp(name, OWN_PREFIX, strlen(OWN_PREFIX)) == 0;
}

static int collect(void *ctx, const char *name, const char *value)
{
    (void)value;
    apr_array_header_t *a = ctx;
    pair_t *pr = apr_array_push(a);
    pr->name = name;
    pr->value = value;
    return 0;
}

static apr_array_header_t *pairs_of(apr_pool_t *p, const char *header)
{
    apr_array_header_t *a = apr_array_make(p, 8, sizeof(pair_t));
    msa_cookie_each(p, header, collect, a);
    return a;
}

static int is_ws(char c)
{
    return c == ' ' || c == '\t';
}

/*
 * The model: the header's ';'-separated pieces trimmed of blanks; a piece
 * with '=' is a cookie named by what precedes it (trailing blanks off).
 * Calls fn for each non-empty piece, uncapped.
 */
static void model_pieces(const char *h, void (*fn)(void *, const char *, size_t, const char *),
                         void *ctx, apr_pool_t *p)
{
    while (*h) {
        size_t n = strcspn(h, ";");
        const char *a = h, *b = h + n;
        while (a < b && is_ws(*a)) {
            a++;
        }
        while (b > a && is_ws(b[-1])) {
            b--;
        }
        if (b > a) {
            const char *eq = memchr(a, '=', (size_t)(b - a)), *name = NULL;
            if (eq != NULL) {
                const char *ne = eq;
                while (ne > a && is_ws(ne[-1])) {
                    ne--;
                }
                name = apr_pstrmemdup(p, a, (size_t)(ne - a));
            }
            fn(ctx, a, (size_t)(b - a), name);
        }
        h += n;
        if (*h == ';') {
            h++;
        }
    }
}

typedef struct model_out {
    char *text; /* the expected stripped header: room for 2 * strlen(header) + 1 */
    size_t len;
    int own; /* cookies named msauth* seen */
} model_out_t;

static void model_init(apr_pool_t *p, model_out_t *m, const char *header)
{
    m->text = apr_palloc(p, 2 * strlen(header) + 1);
    m->text[0] = '\0';
    m->len = 0;
    m->own = 0;
}

static void model_keep(void *ctx, const char *piece, size_t len, const char *name)
{
    model_out_t *m = ctx;
    if (name != NULL && fuzz_startswith(name, OWN_PREFIX)) {
        m->own++;
        return;
    }
    if (m->len > 0) {
        memcpy(m->text + m->len, "; ", 2);
        m->len += 2;
    }
    memcpy(m->text + m->len, piece, len);
    m->len += len;
    m->text[m->len] = '\0';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fuzz_begin();
    char *h = fuzz_cstr(p, data, size);

    apr_array_header_t *seen = pairs_of(p, h);
    const pair_t *sp = (const pair_t *)seen->elts;
    FUZZ_ASSERT(seen->nelts <= 200, data, size);

    for (size_t n = 0; n < sizeof(find_names) / sizeof(*find_names); n++) {
        const char *want = NULL, *got = msa_cookie_find(p, h, find_names[n]);
        for (int i = 0; i < seen->nelts && want == NULL; i++) {
            if (strcmp(sp[i].name, find_names[n]) == 0) {
                want = sp[i].value;
            }
        }
        FUZZ_ASSERT(want == NULL ? got == NULL : got != NULL && strcmp(got, want) == 0, data, size);
    }

    const char *out = msa_cookie_strip(p, h, drop_own, NULL);
    model_out_t m;
    model_init(p, &m, h);
    model_pieces(h, model_keep, &m, p);
    FUZZ_ASSERT(*m.text == '\0' ? out == NULL : out != NULL && strcmp(out, m.text) == 0, data,
                size);
    if (out == NULL) {
        out = "";
    }

    /* No cookie of ours left, as an uncapped parser reads the result. */
    model_out_t again;
    model_init(p, &again, out);
    model_pieces(out, model_keep, &again, p);
    FUZZ_ASSERT(again.own == 0 && strcmp(again.text, out) == 0, data, size);

    /* Every cookie seen and not dropped is seen again, unchanged and in order. */
    apr_array_header_t *kept = pairs_of(p, out);
    const pair_t *kp = (const pair_t *)kept->elts;
    int k = 0;
    for (int i = 0; i < seen->nelts; i++) {
        if (fuzz_startswith(sp[i].name, OWN_PREFIX)) {
            continue;
        }
        FUZZ_ASSERT(k < kept->nelts && strcmp(kp[k].name, sp[i].name) == 0 &&
                        strcmp(kp[k].value, sp[i].value) == 0,
                    data, size);
        k++;
    }
    for (int i = 0; i < kept->nelts; i++) {
        FUZZ_ASSERT(!fuzz_startswith(kp[i].name, OWN_PREFIX), data, size);
    }

    fuzz_end();
    return 0;
}
