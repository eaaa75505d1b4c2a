/*
 * mod_msauth — common definitions of the protocol library (src/core).
 *
 * The library never sees a request_rec: functions take a pool and plain
 * structs, return an apr_status_t and, on failure, a one-line message the
 * caller can log. Messages never carry a token, a code or a secret.
 */
#ifndef MSA_CORE_H
#define MSA_CORE_H

#include <apr_errno.h>
#include <apr_pools.h>
#include <apr_tables.h>

/* Status codes beyond APR's own. */
#define MSA_EUNREACHABLE (APR_OS_START_USERERR + 101) /* network, DNS, TLS or timeout */
#define MSA_EPROTO       (APR_OS_START_USERERR + 102) /* the peer answered, but not usefully */
#define MSA_ETOOBIG      (APR_OS_START_USERERR + 103) /* response or input over its cap */
#define MSA_ENOKEY       (APR_OS_START_USERERR + 104) /* JWS kid not in the key set */
#define MSA_EDENIED      (APR_OS_START_USERERR + 105) /* the peer refused our credentials */
#define MSA_EEXPIRED     (APR_OS_START_USERERR + 106) /* a token outside its time window */
#define MSA_EREFUSED                                                                               \
    (APR_OS_START_USERERR + 107) /* the peer refused what a client sent (invalid_grant) */

/* Caps on outside input. */
#define MSA_MAX_RESPONSE (1024 * 1024) /* Microsoft's answers */
#define MSA_MAX_BODY     (64 * 1024)   /* request bodies */
#define MSA_MAX_STATE    512           /* the OAuth state parameter */
#define MSA_MAX_TOKEN    (16 * 1024)   /* a JWT we are asked to parse */

/* Constant-time equality of two NUL-terminated strings (length may leak). */
int msa_ct_streq(const char *a, const char *b);

/* Whether the space- or tab-separated list holds word, in any case (a scope, a claim list). */
int msa_word_in(const char *list, const char *word);

/* Whether s is a GUID: 8-4-4-4-12 hexadecimal digits, either case. */
int msa_is_guid(const char *s);

/* The value of a hexadecimal digit, or -1. */
int msa_hex_digit(int c);

/*
 * Whether a URL's host (len bytes, as written in it) is this machine:
 * "localhost", an IPv4 address in 127/8, or a bracketed IPv6 loopback.
 */
int msa_host_loopback(const char *host, apr_size_t len);

#endif
