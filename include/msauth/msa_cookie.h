/* Cookie header parsing and Set-Cookie building. */
#ifndef MSA_COOKIE_H
#define MSA_COOKIE_H

#include "msa_core.h"

/* The value of the first cookie called name in a Cookie header; NULL when absent. */
const char *msa_cookie_find(apr_pool_t *p, const char *header, const char *name);

/*
 * Calls fn(ctx, name, value) for each cookie in the header, in order, until
 * fn returns non-zero. Malformed pairs (no '=') are skipped. At most 200 pairs.
 */
void msa_cookie_each(apr_pool_t *p, const char *header,
                     int (*fn)(void *ctx, const char *name, const char *value), void *ctx);

/*
 * Whether a cookie is to be dropped: its name and its value as they stand in the
 * header (value quotes and all), neither NUL-terminated.
 */
typedef int (*msa_cookie_drop_fn)(void *ctx, const char *name, apr_size_t name_len,
                                  const char *value, apr_size_t value_len);

/*
 * The Cookie header without the cookies for which drop is true; NULL when
 * nothing is left. The header itself (the same pointer) when the result is
 * byte for byte the header; its tail (a pointer into it) when only cookies at
 * its start were dropped. Never a copy the caller may not keep as long as the header.
 */
const char *msa_cookie_strip(apr_pool_t *p, const char *header, msa_cookie_drop_fn drop, void *ctx);

typedef struct msa_cookie_attrs {
    const char *path;     /* required */
    const char *domain;   /* NULL = host-only */
    apr_int64_t max_age;  /* 0 = delete now */
    const char *samesite; /* "Lax", "Strict", "None" */
    int secure;
} msa_cookie_attrs_t;

/* A Set-Cookie value: name=value; Path; [Domain;] Max-Age; HttpOnly; SameSite; [Secure]. */
char *msa_cookie_format(apr_pool_t *p, const char *name, const char *value,
                        const msa_cookie_attrs_t *a);

#endif
