/*
 * The durable table: small records that must outlive the tokens they speak
 * for (revoked token ids, per-user not-before times, spent ID-token ids), in
 * one block of memory that the caller shares between processes and guards
 * with a lock.
 *
 * A record is a 64-bit keyed hash of (kind, id), an expiry and a 64-bit
 * value. Each hash has two buckets of eight slots; a slot is free when it is
 * empty or its record has expired. Nothing is ever evicted: a write that
 * finds both buckets full of live records answers APR_ENOSPC, and the caller
 * starts a new epoch (every token issued before it is refused) instead of
 * losing a record. The hash is keyed with a random seed, so nobody outside
 * can aim records at one bucket.
 */
#ifndef MSA_DTAB_H
#define MSA_DTAB_H

#include "msa_core.h"

#define MSA_DTAB_SLOTS_PER_BUCKET 8

typedef struct msa_dtab msa_dtab_t;

/* Bytes needed for a table of nbuckets buckets (a power of two, at least 2). */
apr_size_t msa_dtab_size(apr_uint32_t nbuckets);

/*
 * Lays out an empty table in mem (msa_dtab_size(nbuckets) bytes, 8-aligned)
 * with the hash seed and the first epoch (both random, from the caller).
 */
msa_dtab_t *msa_dtab_format(void *mem, apr_uint32_t nbuckets, const unsigned char seed[16],
                            apr_uint64_t epoch);

/* The keyed hash of a record's kind and id (never 0). */
apr_uint64_t msa_dtab_hash(const msa_dtab_t *t, const char *kind, const char *id);

/* 1 with *value when a live record h exists at now (epoch seconds), else 0. */
int msa_dtab_get(const msa_dtab_t *t, apr_uint64_t h, apr_int64_t now, apr_int64_t *value);

/* Writes record h (replacing a live one): APR_SUCCESS, or APR_ENOSPC with nothing lost. */
apr_status_t msa_dtab_put(msa_dtab_t *t, apr_uint64_t h, apr_int64_t expiry, apr_int64_t value,
                          apr_int64_t now);

/* Writes record h only if no live one exists: APR_SUCCESS, APR_EEXIST or APR_ENOSPC. */
apr_status_t msa_dtab_add(msa_dtab_t *t, apr_uint64_t h, apr_int64_t expiry, apr_int64_t value,
                          apr_int64_t now);

/* The current epoch; a new epoch empties the table. */
apr_uint64_t msa_dtab_epoch(const msa_dtab_t *t);
void msa_dtab_new_epoch(msa_dtab_t *t, apr_uint64_t epoch);

/* Live records at now, and the number of slots (for health and sizing). */
apr_uint32_t msa_dtab_live(const msa_dtab_t *t, apr_int64_t now);
apr_uint32_t msa_dtab_slots(const msa_dtab_t *t);

/* SipHash-2-4 of in with a 16-byte key. */
apr_uint64_t msa_siphash(const unsigned char key[16], const void *in, apr_size_t len);

#endif
