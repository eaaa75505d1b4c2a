/*
 * HMAC-SHA256 on the stack: the MAC of every protected request, without the
 * heap allocations of OpenSSL's EVP_MAC or cjose. The SHA-256 primitives are
 * OpenSSL's; only the RFC 2104 construction is here.
 */
#define OPENSSL_API_COMPAT                                                                         \
    0x10101000L /* SHA256_Init & co: allocation-free, not deprecated here                          \
                 */

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "msa_hmac.h"

void msa_hmac_sha256(const unsigned char *key, size_t keylen, const unsigned char *msg, size_t len,
                     unsigned char out[32])
{
    unsigned char k[SHA256_CBLOCK] = {0}, pad[SHA256_CBLOCK], inner[SHA256_DIGEST_LENGTH];
    SHA256_CTX c;
    if (keylen > SHA256_CBLOCK) {
        SHA256(key, keylen, k);
    } else {
        memcpy(k, key, keylen);
    }
    for (size_t i = 0; i < SHA256_CBLOCK; i++) {
        pad[i] = k[i] ^ 0x36;
    }
    SHA256_Init(&c);
    SHA256_Update(&c, pad, sizeof(pad));
    SHA256_Update(&c, msg, len);
    SHA256_Final(inner, &c);
    for (size_t i = 0; i < SHA256_CBLOCK; i++) {
        pad[i] = k[i] ^ 0x5c;
    }
    SHA256_Init(&c);
    SHA256_Update(&c, pad, sizeof(pad));
    SHA256_Update(&c, inner, sizeof(inner));
    SHA256_Final(out, &c);
    OPENSSL_cleanse(k, sizeof(k));
    OPENSSL_cleanse(pad, sizeof(pad));
    OPENSSL_cleanse(&c, sizeof(c));
}
