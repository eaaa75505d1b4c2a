/* HMAC-SHA256 without heap allocation. */
#ifndef MSA_HMAC_H
#define MSA_HMAC_H

#include <stddef.h>

void msa_hmac_sha256(const unsigned char *key, size_t keylen, const unsigned char *msg, size_t len,
                     unsigned char out[32]);

#endif
