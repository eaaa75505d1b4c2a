/* The durable table (msa_dtab.h): two-choice buckets of eight slots, no eviction. */
#include <string.h>

#include "msa_dtab.h"

#define MAGIC   0x6d7361647461623aULL /* "msadtab:" */
#define VERSION 1

typedef struct slot {
    apr_uint64_t h; /* 0: never used */
    apr_int64_t expiry;
    apr_int64_t value;
} slot_t;

struct msa_dtab {
    apr_uint64_t magic;
    apr_uint32_t version;
    apr_uint32_t nbuckets;
    unsigned char seed[16];
    apr_uint64_t epoch;
    slot_t slots[]; /* nbuckets * MSA_DTAB_SLOTS_PER_BUCKET */
};

/* SipHash-2-4 (Aumasson and Bernstein), from its specification. */
#define ROTL(x, b) (apr_uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                   \
    do {                                                                                           \
        v0 += v1;                                                                                  \
        v1 = ROTL(v1, 13);                                                                         \
        v1 ^= v0;                                                                                  \
        v0 = ROTL(v0, 32);                                                                         \
        v2 += v3;                                                                                  \
        v3 = ROTL(v3, 16);                                                                         \
        v3 ^= v2;                                                                                  \
        v0 += v3;                                                                                  \
        v3 = ROTL(v3, 21);                                                                         \
        v3 ^= v0;                                                                                  \
        v2 += v1;                                                                                  \
        v1 = ROTL(v1, 17);                                                                         \
        v1 ^= v2;                                                                                  \
        v2 = ROTL(v2, 32);                                                                         \
    } while (0)

static apr_uint64_t le64(const unsigned char *p)
{
    apr_uint64_t v = 0;
    for (int i = 7; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

apr_uint64_t msa_siphash(const unsigned char key[16], const void *in, apr_size_t len)
{
    const unsigned char *m = in;
    apr_uint64_t k0 = le64(key), k1 = le64(key + 8);
    apr_uint64_t v0 = 0x736f6d6570736575ULL ^ k0;
    apr_uint64_t v1 = 0x646f72616e646f6dULL ^ k1;
    apr_uint64_t v2 = 0x6c7967656e657261ULL ^ k0;
    apr_uint64_t v3 = 0x7465646279746573ULL ^ k1;
    apr_size_t full = len - len % 8;
    for (apr_size_t i = 0; i < full; i += 8) {
        apr_uint64_t w = le64(m + i);
        v3 ^= w;
        SIPROUND;
        SIPROUND;
        v0 ^= w;
    }
    apr_uint64_t b = (apr_uint64_t)len << 56;
    for (apr_size_t i = 0; i < len % 8; i++) {
        b |= (apr_uint64_t)m[full + i] << (8 * i);
    }
    v3 ^= b;
    SIPROUND;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

apr_size_t msa_dtab_size(apr_uint32_t nbuckets)
{
    return sizeof(msa_dtab_t) + (apr_size_t)nbuckets * MSA_DTAB_SLOTS_PER_BUCKET * sizeof(slot_t);
}

msa_dtab_t *msa_dtab_format(void *mem, apr_uint32_t nbuckets, const unsigned char seed[16],
                            apr_uint64_t epoch)
{
    if (nbuckets < 2 || (nbuckets & (nbuckets - 1)) != 0) {
        return NULL;
    }
    msa_dtab_t *t = mem;
    memset(t, 0, msa_dtab_size(nbuckets));
    t->magic = MAGIC;
    t->version = VERSION;
    t->nbuckets = nbuckets;
    memcpy(t->seed, seed, sizeof(t->seed));
    t->epoch = epoch;
    return t;
}

apr_uint64_t msa_dtab_hash(const msa_dtab_t *t, const char *kind, const char *id)
{
    /* kind NUL id: no two (kind, id) pairs give the same input. */
    size_t kl = strlen(kind), il = strlen(id);
    unsigned char stack[256];
    unsigned char *in = stack;
    apr_uint64_t h;
    if (kl + 1 + il > sizeof(stack)) {
        /* Long ids are hashed in two steps: the id first, then kind NUL digest. */
        apr_uint64_t d = msa_siphash(t->seed, id, il);
        if (kl + 1 + sizeof(d) > sizeof(stack)) {
            kl = sizeof(stack) - 1 - sizeof(d);
        }
        memcpy(in, kind, kl);
        in[kl] = '\0';
        memcpy(in + kl + 1, &d, sizeof(d));
        h = msa_siphash(t->seed, in, kl + 1 + sizeof(d)) ^ 0x1ULL;
    } else {
        memcpy(in, kind, kl);
        in[kl] = '\0';
        memcpy(in + kl + 1, id, il);
        h = msa_siphash(t->seed, in, kl + 1 + il);
    }
    return h ? h : 1;
}

/* The two buckets of h: the low bits, and the high half mixed (never the same bucket). */
static slot_t *bucket(const msa_dtab_t *t, apr_uint64_t h, int which)
{
    apr_uint32_t mask = t->nbuckets - 1;
    apr_uint32_t b1 = (apr_uint32_t)h & mask;
    apr_uint32_t b = b1;
    if (which) {
        b = (apr_uint32_t)((h >> 32) * 0x9e3779b1U) & mask;
        if (b == b1) {
            b ^= 1;
        }
    }
    return (slot_t *)&t->slots[(apr_size_t)b * MSA_DTAB_SLOTS_PER_BUCKET];
}

static slot_t *find(const msa_dtab_t *t, apr_uint64_t h, apr_int64_t now)
{
    for (int w = 0; w < 2; w++) {
        slot_t *s = bucket(t, h, w);
        for (int i = 0; i < MSA_DTAB_SLOTS_PER_BUCKET; i++) {
            if (s[i].h == h && s[i].expiry > now) {
                return &s[i];
            }
        }
    }
    return NULL;
}

/* A free slot in the emptier of h's two buckets (two choices keep buckets even). */
static slot_t *free_slot(msa_dtab_t *t, apr_uint64_t h, apr_int64_t now)
{
    slot_t *best = NULL;
    int best_free = 0;
    for (int w = 0; w < 2; w++) {
        slot_t *s = bucket(t, h, w), *first = NULL;
        int nfree = 0;
        for (int i = 0; i < MSA_DTAB_SLOTS_PER_BUCKET; i++) {
            if (s[i].h == 0 || s[i].expiry <= now) {
                nfree++;
                first = first ? first : &s[i];
            }
        }
        if (nfree > best_free) {
            best = first;
            best_free = nfree;
        }
    }
    return best;
}

int msa_dtab_get(const msa_dtab_t *t, apr_uint64_t h, apr_int64_t now, apr_int64_t *value)
{
    const slot_t *s = find(t, h, now);
    if (s == NULL) {
        return 0;
    }
    *value = s->value;
    return 1;
}

static apr_status_t dtab_write(msa_dtab_t *t, apr_uint64_t h, apr_int64_t expiry, apr_int64_t value,
                               apr_int64_t now, int only_new)
{
    slot_t *s = find(t, h, now);
    if (s != NULL && only_new) {
        return APR_EEXIST;
    }
    if (s == NULL) {
        s = free_slot(t, h, now);
    }
    if (s == NULL) {
        return APR_ENOSPC;
    }
    s->h = h;
    s->expiry = expiry;
    s->value = value;
    return APR_SUCCESS;
}

apr_status_t msa_dtab_put(msa_dtab_t *t, apr_uint64_t h, apr_int64_t expiry, apr_int64_t value,
                          apr_int64_t now)
{
    return dtab_write(t, h, expiry, value, now, 0);
}

apr_status_t msa_dtab_add(msa_dtab_t *t, apr_uint64_t h, apr_int64_t expiry, apr_int64_t value,
                          apr_int64_t now)
{
    return dtab_write(t, h, expiry, value, now, 1);
}

apr_uint64_t msa_dtab_epoch(const msa_dtab_t *t)
{
    return t->epoch;
}

void msa_dtab_new_epoch(msa_dtab_t *t, apr_uint64_t epoch)
{
    memset(t->slots, 0, (apr_size_t)t->nbuckets * MSA_DTAB_SLOTS_PER_BUCKET * sizeof(slot_t));
    t->epoch = epoch;
}

apr_uint32_t msa_dtab_live(const msa_dtab_t *t, apr_int64_t now)
{
    apr_uint32_t n = 0;
    for (apr_size_t i = 0; i < msa_dtab_slots(t); i++) {
        n += t->slots[i].h != 0 && t->slots[i].expiry > now;
    }
    return n;
}

apr_uint32_t msa_dtab_slots(const msa_dtab_t *t)
{
    return t->nbuckets * MSA_DTAB_SLOTS_PER_BUCKET;
}
