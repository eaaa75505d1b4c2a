/* msa_hmac: HMAC-SHA256 against RFC 4231's test vectors. */
#include <stdio.h>
#include <string.h>

#include "msa_hmac.h"
#include "msa_test.h"

static void hex(const unsigned char *d, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        sprintf(out + 2 * i, "%02x", d[i]);
    }
}

static void check(const unsigned char *key, size_t keylen, const char *msg, const char *want)
{
    unsigned char mac[32];
    char got[65];
    msa_hmac_sha256(key, keylen, (const unsigned char *)msg, strlen(msg), mac);
    hex(mac, sizeof(mac), got);
    ck_assert_str_eq(got, want);
}

START_TEST(rfc4231_case1)
{
    unsigned char key[20];
    memset(key, 0x0b, sizeof(key));
    check(key, sizeof(key), "Hi There",
          "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
}
END_TEST

START_TEST(rfc4231_case2)
{
    check((const unsigned char *)"Jefe", 4, "what do ya want for nothing?",
          "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}
END_TEST

START_TEST(rfc4231_case6_long_key)
{
    unsigned char key[131];
    memset(key, 0xaa, sizeof(key));
    check(key, sizeof(key), "Test Using Larger Than Block-Size Key - Hash Key First",
          "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}
END_TEST

START_TEST(rfc4231_case7_long_key_and_data)
{
    unsigned char key[131];
    memset(key, 0xaa, sizeof(key));
    check(key, sizeof(key),
          "This is a test using a larger than block-size key and a larger than block-size "
          "data. The key needs to be hashed before being used by the HMAC algorithm.",
          "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
}
END_TEST

/* Keys of 0x00, 0x01, ... around SHA-256's 64-byte block: RFC 2104 uses a key of up to one
 * block as is and hashes a longer one. The expected MACs are Python's hmac module's and
 * `openssl dgst -sha256 -mac HMAC` agrees:
 *   hmac.new(bytes(range(n)), b"Test With Block-Size Key", hashlib.sha256).hexdigest() */
static void check_counting_key(size_t keylen, const char *want)
{
    unsigned char key[65];
    for (size_t i = 0; i < keylen; i++) {
        key[i] = (unsigned char)i;
    }
    check(key, keylen, "Test With Block-Size Key", want);
}

START_TEST(key_of_exactly_one_block)
{
    /* 64 bytes: used as is, not hashed first. */
    check_counting_key(64, "1738225f3170738a07e9687d7bb2eeab13875f0e2c7443d5ba60afa9a46dcba9");
}
END_TEST

START_TEST(keys_either_side_of_one_block)
{
    check_counting_key(63, "bba12d417502831d340eca019c6c00258cbc0b30a032d3ee20f6b70a4341db0f");
    check_counting_key(65, "e6fa69ded288faf937967be693b717bd59b0922ece601d1b854412ab1edb8045");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("msa_hmac");
    TCase *tc = msa_test_case("rfc4231");
    tcase_add_test(tc, rfc4231_case1);
    tcase_add_test(tc, rfc4231_case2);
    tcase_add_test(tc, rfc4231_case6_long_key);
    tcase_add_test(tc, rfc4231_case7_long_key_and_data);
    tcase_add_test(tc, key_of_exactly_one_block);
    tcase_add_test(tc, keys_either_side_of_one_block);
    suite_add_tcase(s, tc);
    return msa_test_run(s);
}
