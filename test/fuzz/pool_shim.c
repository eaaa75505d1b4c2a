/*
 * Pool allocations that AddressSanitizer can see (libFuzzer build only).
 *
 * An APR pool carves its allocations out of 8 KB blocks and keeps cleared
 * blocks for reuse, so an overflow inside a block or a read after the pool
 * was cleared goes unnoticed. This file interposes apr_palloc (apr_pcalloc
 * is a macro over it, and libapr calls it through its PLT): allocations from
 * the tracked pool, the input's pool, are malloc'd one by one and freed
 * after the pool is cleared. Other pools go to APR's own apr_palloc.
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

static palloc_fn real_palloc;
static apr_pool_t *tracked;
static void **blocks;
static size_t nblocks, capblocks;

void fuzz_shim_track(apr_pool_t *p)
{
    tracked = p;
}

void fuzz_shim_release(void)
{
    for (size_t i = 0; i < nblocks; i++) {
        free(blocks[i]);
    }
    nblocks = 0;
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
    if (p != tracked) {
        return real_palloc(p, size);
    }
    if (nblocks == capblocks) {
        capblocks = capblocks ? capblocks * 2 : 1024;
        blocks = realloc(blocks, capblocks * sizeof(*blocks));
        if (blocks == NULL) {
            abort();
        }
    }
    void *m = malloc(size ? size : 1);
    if (m == NULL) {
        abort();
    }
    blocks[nblocks++] = m;
    return m;
}
