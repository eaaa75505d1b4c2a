/* Small helpers shared by the core files. */
#include <string.h>
#include <strings.h>

#include <arpa/inet.h>
#include <netinet/in.h>

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

int msa_hex_digit(int c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

int msa_is_guid(const char *s)
{
    if (s == NULL || strlen(s) != 36) {
        return 0;
    }
    for (int i = 0; i < 36; i++) {
        int dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : msa_hex_digit((unsigned char)s[i]) < 0) {
            return 0;
        }
    }
    return 1;
}

int msa_host_loopback(const char *host, apr_size_t len)
{
    char buf[INET6_ADDRSTRLEN + 1];
    struct in_addr a4;
    struct in6_addr a6;
    if (len == 9 && strncasecmp(host, "localhost", 9) == 0) {
        return 1; /* curl resolves it to loopback itself, never through DNS */
    }
    if (len > 2 && host[0] == '[' && host[len - 1] == ']') {
        if (len - 2 >= sizeof(buf)) {
            return 0;
        }
        memcpy(buf, host + 1, len - 2);
        buf[len - 2] = '\0';
        return inet_pton(AF_INET6, buf, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
    }
    if (len >= sizeof(buf)) {
        return 0;
    }
    memcpy(buf, host, len);
    buf[len] = '\0';
    return inet_pton(AF_INET, buf, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127;
}
