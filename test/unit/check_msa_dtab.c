/* msa_dtab: SipHash's reference vector; records that are never evicted, only refused. */
#include <stdio.h>
#include <string.h>

#include "msa_dtab.h"
#include "msa_test.h"

static const unsigned char SEED[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

static msa_dtab_t *table(apr_uint32_t nbuckets)
{
    void *mem = apr_palloc(pool, msa_dtab_size(nbuckets));
    return msa_dtab_format(mem, nbuckets, SEED, 42);
}

START_TEST(siphash_reference_vectors)
{
    /* The specification's appendix A: key 00..0f, messages 00..(n-1). */
    unsigned char key[16], msg[64];
    for (int i = 0; i < 16; i++) {
        key[i] = (unsigned char)i;
    }
    for (int i = 0; i < 64; i++) {
        msg[i] = (unsigned char)i;
    }
    ck_assert_uint_eq(msa_siphash(key, msg, 15), 0xa129ca6149be45e5ULL);
    ck_assert_uint_eq(msa_siphash(key, msg, 0), 0x726fdb47dd0e0e31ULL);
    ck_assert_uint_eq(msa_siphash(key, msg, 8), 0x93f5f5799a932462ULL);
    ck_assert_uint_eq(msa_siphash(key, msg, 63), 0x958a324ceb064572ULL);
}
END_TEST

START_TEST(format_refuses_sizes_that_are_not_powers_of_two)
{
    void *mem = apr_palloc(pool, msa_dtab_size(8));
    ck_assert_ptr_null(msa_dtab_format(mem, 3, SEED, 1));
    ck_assert_ptr_null(msa_dtab_format(mem, 1, SEED, 1));
    ck_assert_ptr_nonnull(msa_dtab_format(mem, 8, SEED, 1));
}
END_TEST

START_TEST(put_get_add_and_expiry)
{
    msa_dtab_t *t = table(64);
    apr_uint64_t h = msa_dtab_hash(t, "revoked", "jti-1");
    apr_int64_t v = 0;
    ck_assert_int_eq(msa_dtab_get(t, h, 100, &v), 0);
    ck_assert_int_eq(msa_dtab_put(t, h, 200, 7, 100), APR_SUCCESS);
    ck_assert_int_eq(msa_dtab_get(t, h, 100, &v), 1);
    ck_assert_int_eq(v, 7);
    /* A put replaces, an add does not. */
    ck_assert_int_eq(msa_dtab_put(t, h, 300, 8, 100), APR_SUCCESS);
    ck_assert_int_eq(msa_dtab_add(t, h, 300, 9, 100), APR_EEXIST);
    ck_assert_int_eq(msa_dtab_get(t, h, 299, &v), 1);
    ck_assert_int_eq(v, 8);
    ck_assert_uint_eq(msa_dtab_live(t, 100), 1);
    /* Expired at its expiry second, and then free for an add. */
    ck_assert_int_eq(msa_dtab_get(t, h, 300, &v), 0);
    ck_assert_uint_eq(msa_dtab_live(t, 300), 0);
    ck_assert_int_eq(msa_dtab_add(t, h, 400, 1, 300), APR_SUCCESS);
}
END_TEST

START_TEST(kinds_and_ids_do_not_collide)
{
    msa_dtab_t *t = table(64);
    ck_assert_uint_ne(msa_dtab_hash(t, "revoked", "ab"), msa_dtab_hash(t, "revokeda", "b"));
    ck_assert_uint_ne(msa_dtab_hash(t, "revoked", "x"), msa_dtab_hash(t, "idjti", "x"));
    /* Keyed: another seed, another hash. */
    unsigned char other[16] = {0};
    void *mem = apr_palloc(pool, msa_dtab_size(64));
    msa_dtab_t *u = msa_dtab_format(mem, 64, other, 42);
    ck_assert_uint_ne(msa_dtab_hash(t, "revoked", "x"), msa_dtab_hash(u, "revoked", "x"));
    /* Long ids hash too, and differ. */
    char a[400], b[400];
    memset(a, 'a', sizeof(a) - 1);
    a[sizeof(a) - 1] = '\0';
    memcpy(b, a, sizeof(a));
    b[300] = 'b';
    ck_assert_uint_ne(msa_dtab_hash(t, "revoked", a), msa_dtab_hash(t, "revoked", b));
}
END_TEST

START_TEST(full_table_refuses_instead_of_evicting)
{
    /* 4 buckets of 8: at most 32 live records, and every one of them stays. */
    msa_dtab_t *t = table(4);
    char id[32];
    int stored = 0, refused = 0;
    apr_uint64_t hs[200];
    for (int i = 0; i < 200; i++) {
        snprintf(id, sizeof(id), "jti-%d", i);
        hs[i] = msa_dtab_hash(t, "revoked", id);
        apr_status_t rv = msa_dtab_put(t, hs[i], 1000, i, 10);
        if (rv == APR_SUCCESS) {
            stored++;
        } else {
            ck_assert_int_eq(rv, APR_ENOSPC);
            refused++;
            hs[i] = 0;
        }
    }
    ck_assert_int_eq(stored, 32);
    ck_assert_int_eq(refused, 168);
    ck_assert_uint_eq(msa_dtab_live(t, 10), 32);
    for (int i = 0; i < 200; i++) {
        apr_int64_t v;
        if (hs[i] != 0) {
            ck_assert_int_eq(msa_dtab_get(t, hs[i], 10, &v), 1);
            ck_assert_int_eq(v, i);
        }
    }
    /* Once they expire, their slots serve new records. */
    ck_assert_int_eq(msa_dtab_put(t, msa_dtab_hash(t, "revoked", "late"), 2000, 1, 1000),
                     APR_SUCCESS);
}
END_TEST

START_TEST(default_size_holds_a_hundred_thousand)
{
    /* The default local table: 32768 buckets (262,144 slots, 6 MiB). */
    msa_dtab_t *t = table(32768);
    char id[32];
    for (int i = 0; i < 150000; i++) {
        snprintf(id, sizeof(id), "app:user-%d", i);
        ck_assert_int_eq(msa_dtab_put(t, msa_dtab_hash(t, "revoked_user", id), 5000, i, 1),
                         APR_SUCCESS);
    }
    ck_assert_uint_eq(msa_dtab_live(t, 1), 150000);
    ck_assert_uint_eq(msa_dtab_slots(t), 262144);
    ck_assert_uint_le(msa_dtab_size(32768), 6u * 1024 * 1024 + 64);
}
END_TEST

START_TEST(new_epoch_empties_the_table)
{
    msa_dtab_t *t = table(8);
    apr_uint64_t h = msa_dtab_hash(t, "idjti", "x");
    ck_assert_uint_eq(msa_dtab_epoch(t), 42);
    ck_assert_int_eq(msa_dtab_add(t, h, 100, 1, 1), APR_SUCCESS);
    msa_dtab_new_epoch(t, 43);
    ck_assert_uint_eq(msa_dtab_epoch(t), 43);
    ck_assert_uint_eq(msa_dtab_live(t, 1), 0);
    ck_assert_int_eq(msa_dtab_add(t, h, 100, 1, 1), APR_SUCCESS);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("msa_dtab");
    TCase *tc = msa_test_case("dtab");
    tcase_add_test(tc, siphash_reference_vectors);
    tcase_add_test(tc, format_refuses_sizes_that_are_not_powers_of_two);
    tcase_add_test(tc, put_get_add_and_expiry);
    tcase_add_test(tc, kinds_and_ids_do_not_collide);
    tcase_add_test(tc, full_table_refuses_instead_of_evicting);
    tcase_add_test(tc, default_size_holds_a_hundred_thousand);
    tcase_add_test(tc, new_epoch_empties_the_table);
    suite_add_tcase(s, tc);
    return msa_test_run(s);
}
