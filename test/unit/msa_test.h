/* Shared scaffolding of the Check unit tests: one APR pool per test. */
#ifndef MSA_TEST_H
#define MSA_TEST_H

#include <check.h>
#include <stdlib.h>

#include <apr_general.h>
#include <apr_pools.h>

static apr_pool_t *pool;

static void msa_test_setup(void)
{
    apr_initialize();
    apr_pool_create(&pool, NULL);
}

static void msa_test_teardown(void)
{
    apr_pool_destroy(pool);
    apr_terminate();
}

/* Runs one suite; the exit status is the number of failures. */
static int msa_test_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* A TCase with the pool fixture. */
static TCase *msa_test_case(const char *name)
{
    TCase *tc = tcase_create(name);
    tcase_add_checked_fixture(tc, msa_test_setup, msa_test_teardown);
    tcase_set_timeout(tc, 30);
    return tc;
}

#endif
