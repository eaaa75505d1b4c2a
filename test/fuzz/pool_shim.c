/*
 * Pool allocations that AddressSanitizer can see (libFuzzer build only).
 *
 * An APR pool carves its allocations out of 8 KB blocks and keeps cleared
 * blocks for reuse, so an overflow inside a block or a read after the pool
 * was cleared goes unnoticed. This file interposes apr_palloc (apr_pcalloc
 * is a macro over it, and libapr calls it through its PLT): allocations from
 * the tracked pool, the input's pool, are malloc'd one by one and freed
 * after the pool is cleared.
 *
 * Allocations from the kept pool, the process's root pool, are malloc'd too
 * and never freed: Debian's APR takes its blocks from mmap, which
 * LeakSanitizer does not scan, so what is reachable only from pool memory
 * (the responder's buffers, curl's handles) would otherwise be reported as
 * leaked after every input. Other pools go to APR's own apr_palloc.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* RTLD_NEXT */
#endif

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

#include <apr_pools.h>

#include "fuzz.h"

typedef void *(*palloc_fn)(apr_pool_t *, apr_size_t);

typedef struct block_list {
    void **v;
    size_t n, cap;
} block_list_t;

static palloc_fn real_palloc;
static apr_pool_t *tracked, *kept;
static block_list_t input_blocks, kept_blocks;

void fuzz_shim_track(apr_pool_t *p)
{
    tracked = p;
}

void fuzz_shim_keep(apr_pool_t *p)
{
    kept = p;
}

void fuzz_shim_release(void)
{
    for (size_t i = 0; i < input_blocks.n; i++) {
        free(input_blocks.v[i]);
    }
    input_blocks.n = 0;
}

static void *block_alloc(block_list_t *l, apr_size_t size)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 1024;
        l->v = realloc(l->v, l->cap * sizeof(*l->v));
        if (l->v == NULL) {
            abort();
        }
    }
    void *m = malloc(size ? size : 1);
    if (m == NULL) {
        abort();
    }
    l->v[l->n++] = m;
    return m;
}

void *apr_palloc(apr_pool_t *p, apr_size_t size)
{
    if (real_palloc == NULL) {
        real_palloc = (palloc_fn)dlsym(RTLD_NEXT, "apr_palloc");
        if (real_palloc == NULL) {
            fprintf(stderr, "pool_shim: apr_palloc not found\n");
            abort();
        }
    }
    if (p == tracked) {
        return block_alloc(&input_blocks, size);
    }
    if (p == kept) {
        return block_alloc(&kept_blocks, size);
    }
    return real_palloc(p, size);
}
