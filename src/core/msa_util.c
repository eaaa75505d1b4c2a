/* Small helpers shared by the core files. */
#include <string.h>
#include <strings.h>

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

int msa_word_in(const char *list, const char *word)
{
    size_t n = strlen(word);
    for (const char *w = list; w != NULL && *w != '\0';) {
        w += strspn(w, " \t");
        size_t len = strcspn(w, " \t");
        if (len == n && n > 0 && strncasecmp(w, word, n) == 0) {
            return 1;
        }
        w += len;
    }
    return 0;
}
