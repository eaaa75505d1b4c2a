/* Small helpers shared by the core files. */
#include <string.h>

#include <openssl/crypto.h>

#include "msa_core.h"

int msa_ct_streq(const char *a, const char *b)
{
    if (a == NULL || b == NULL) {
        return 0;
    }
    size_t la = strlen(a), lb = strlen(b);
    if (la != lb) {
        return 0;
    }
    return CRYPTO_memcmp(a, b, la) == 0;
}
