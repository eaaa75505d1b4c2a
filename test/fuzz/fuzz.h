/*
 * Shared scaffolding of the fuzz targets (see README.md): one APR pool for the
 * process, a subpool cleared after every input, the input as a C string, and
 * the fixed keys the targets and the seed generator agree on.
 *
 * Every target is built twice: by scripts/fuzz with clang and libFuzzer, and
 * by make check with replay_main.c, which feeds it the seed corpus. Failed
 * invariants call fuzz_fail(), which aborts: a crash in both builds.
 */
#ifndef MSA_FUZZ_H
#define MSA_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_pools.h>

#include "msa_core.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Provided by pool_shim.c in the libFuzzer build only: allocations from the
 * tracked pool are malloc'd one by one, so AddressSanitizer sees their exact
 * bounds and their use after the pool is cleared; those of the kept pool
 * are malloc'd so that LeakSanitizer sees what they point to.
 */
void fuzz_shim_track(apr_pool_t *p) __attribute__((weak));
void fuzz_shim_keep(apr_pool_t *p) __attribute__((weak));
void fuzz_shim_release(void) __attribute__((weak));

/* The epoch the tokens of the seed corpus were made at. */
#define FUZZ_NOW  ((apr_int64_t)1767225600) /* 2026-01-01T00:00:00Z */
#define FUZZ_SKEW ((apr_int64_t)60)

/* Session key list: the current key first, the previous one second (rotation). */
#define FUZZ_HS_KEY1   "fuzz session key, current: 0123456789abcdef"
#define FUZZ_HS_KEY2   "fuzz session key, previous: fedcba9876543210"
#define FUZZ_APPID     "default"
#define FUZZ_AUD       "11111111-2222-3333-4444-555555555555:default@app.example.com"
#define FUZZ_JWE_KEY   "fuzz JWE key, exactly 32 bytes.."
#define FUZZ_STATE_KEY "fuzz state-cookie secret, any length will do"
/* msa_state.c's HKDF info: the state cookie's wire contract. */
#define FUZZ_STATE_INFO "mod_msauth state cookie v1"

/* An RSA key (2048 bits) for the RS256 id_tokens of the seeds, as a private JWK. */
#define FUZZ_RSA_KID "fuzz-rsa-1"
#define FUZZ_RSA_JWK                                                                               \
    "{\"kty\":\"RSA\",\"kid\":\"fuzz-rsa-1\",\"e\":\"AQAB\",\"n\":"                                \
    "\"xZQ92GYQCnmHQGpkughAa28xd2K8V23kRZfGEp3p"                                                   \
    "fZTIcqtJSw4AFb0VpcIZ4yG0baviV5Rae-dZb0SAyed9mQX2F-m-kxoW01xnQig3mdJEIxx9eRBoLxbSNzdZHx1Y"     \
    "c9wWtUWN0dgjkDMSSj518FA4Wg5GlLp3D9ZEBOQsdqy0XEglyoFnoqd3B-nCglZ1ShxjRQmz6DIv_y78rSMQ3wts"     \
    "0JUMoFZOs3bzkfm1CkunAtPP7jYFm4InvD3y1UaLye5rADCycjF2eTMupD-T-5d_3FbC0afGZY6EfK7aM6GXOiTB"     \
    "AEe-ftd0v58BZbiqSH08yrwiWK9PfxJS15fdyQ\",\"d\":\"FwiBv7ghQ1lY0kJ8-N-EpAmn0IFJD9-yoobPq2Svn0l" \
    "gp1aO0jJBAgfDrenfgvYvTrBAsCFOPZ7SMymfInqLTrMuVeoU4pkCY3REoOanmbX0pcu42GvYW3H7gn6gNAODp-k"     \
    "W2B3SS035UmKTzaYzsVbmxN_gbE8DGYxq7E-N2-0wgEow0dSnW8Hs1LcRlMMM5oTZiwK3SEaakpiuucA6AotDJEQ"     \
    "23nBvRjXDa_83ERULbW4l3aqrx8usQSyruUW1SLXaapMvbiADtLvfNoXWvLBA_mDT4utztA3u-b3zSL8kK3F-UnF"     \
    "MYnLCYc-PEOOZJ8yrcjl-_c4VE7FMBLDtcQ\",\"p\":\"8Kcn2y-GzWF7JBm_bmmGGtW_3qhFZwGJBwHYUZQmr99Vh3" \
    "wzBG4fphsroamH9E1InIDkpT4FOqVB3Kcp058hGFvsz_Wn7jBVxJ1a87Bxgn5gv3KJqPuAzwoiS7JuglrtYhdVSO"     \
    "FUNWpu33uO_Rw7o8deDLUUo1AFcIZpfIobsRE\",\"q\":\"0i3fJTb29e78qkvCQNX94VCfJSz5O2xM09L21cV5hRtC" \
    "2-iuxqWCpnIRyrfd4g0nR2QjuK6BcDRN1kF_zRH8XnpR3j4Ru1RpF8aF5F1Y17nNw0-51W-GViLyHsYsn4uoCN63"     \
    "1nI0XYZHPZiJVYXou6-daPVZ2kF6Ft56UEP2YTk\",\"dp\":\"nkVxQwho4d6AvGdqrVUda7y0qd2Fd49c7YzbFhwXr" \
    "Yd2mtqmOv2qNvabpYD390Z0wOlMdxjpG37gaBxQt-tqOrkKcGMiBNcpMVxEGw0qOiafvom327k9J-2ETMCXSYg_o"     \
    "0mxP3NijJbpQHXkvra4yqguRLE7V4UjbrQX4F58g-E\",\"dq\":\"itkxBGXGSnxCQMJhpvF3kgTvzeBjGgWWz40b8e" \
    "dOO0fiKGMUKzkmEY1kAZbsJyznWPtnudbWvehfz35fznrmTQfj070Pe8Ds2H8W7uFYEtO1giTGMKFHjtnxN7FVw2"     \
    "TAcnOn4Sx7OZm-sIt3lp8rO-ptQ-xqGoyM-lSpWyM6vck\",\"qi\":\"dnPWjNfP9iXAVANmR0A9L9iDBaiM-HGhean" \
    "4mJ183yPspVXjU4nmU_KXGxjg4hgBv7pq5U6iAbS5NcRoOWaBgvS4IpqF_yCw218nLaCiVpCkg3fXIjsWBRpmmaH"     \
    "sRwkmtvdz4Z7m_QyUe_s0e4y0yRhwZ5i4vRMfq3boS9XpKUE\"}"

/*
 * The process's pool and the input's subpool. Weak definitions, so that the
 * target and replay_main.c (which destroys the pool at the end) share them.
 */
__attribute__((weak)) apr_pool_t *fuzz_root;
__attribute__((weak)) apr_pool_t *fuzz_sub;

static inline void fuzz_fail(const char *what, const uint8_t *data, size_t size)
{
    fprintf(stderr, "fuzz invariant violated: %s (input of %zu bytes)\n", what, size);
    (void)data;
    abort();
}

#define FUZZ_ASSERT(cond, data, size)                                                              \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fuzz_fail(#cond, (data), (size));                                                      \
        }                                                                                          \
    } while (0)

/* Once per process, from LLVMFuzzerInitialize. */
static inline void fuzz_init(void)
{
    if (fuzz_root != NULL) {
        return;
    }
    if (apr_initialize() != APR_SUCCESS || apr_pool_create(&fuzz_root, NULL) != APR_SUCCESS ||
        apr_pool_create(&fuzz_sub, fuzz_root) != APR_SUCCESS) {
        fprintf(stderr, "fuzz: APR initialisation failed\n");
        abort();
    }
    if (fuzz_shim_keep != NULL) {
        fuzz_shim_keep(fuzz_root);
    }
}

/* At the end of a replay: the root pool's cleanups free what the targets set up. */
static inline void fuzz_teardown(void)
{
    if (fuzz_root != NULL) {
        apr_pool_destroy(fuzz_root);
        fuzz_root = fuzz_sub = NULL;
        apr_terminate();
    }
}

/* The pool of one input. */
static inline apr_pool_t *fuzz_begin(void)
{
    if (fuzz_shim_track != NULL) {
        fuzz_shim_track(fuzz_sub);
    }
    return fuzz_sub;
}

/* Ends one input: its pool is cleared (cleanups run), then its tracked blocks freed. */
static inline void fuzz_end(void)
{
    apr_pool_clear(fuzz_sub);
    if (fuzz_shim_release != NULL) {
        fuzz_shim_release();
    }
}

/* The input as a NUL-terminated string (cut at its first NUL, as C code would). */
static inline char *fuzz_cstr(apr_pool_t *p, const uint8_t *data, size_t size)
{
    char *s = apr_palloc(p, size + 1);
    if (size > 0) {
        memcpy(s, data, size);
    }
    s[size] = '\0';
    return s;
}

static inline int fuzz_startswith(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

#endif
