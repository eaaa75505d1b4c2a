/* URL building, percent-encoding, query parsing and redirect-target validation. */
#ifndef MSA_URL_H
#define MSA_URL_H

#include "msa_core.h"

/* Percent-encodes all but RFC 3986 unreserved characters. */
char *msa_url_encode(apr_pool_t *p, const char *s);

/*
 * Decodes a form/query component: '+' is a space, %XX a byte. Fails with
 * APR_EINVAL on a broken escape, an encoded NUL or bytes that are not UTF-8.
 * Other control characters are kept (Microsoft's error_description holds CR LF):
 * callers check the characters of what they use.
 */
apr_status_t msa_url_decode(apr_pool_t *p, const char *s, apr_size_t len, char **out);

/* Whether s[0..len) is well-formed UTF-8 without control characters (C0, DEL, C1) but TAB. */
int msa_utf8_valid(const char *s, apr_size_t len);

/*
 * Parses a query string (or an x-www-form-urlencoded body) into a table;
 * repeated names are kept as repeated entries. APR_EINVAL when any
 * component is malformed (see msa_url_decode) or past 100 parameters.
 */
apr_status_t msa_query_parse(apr_pool_t *p, const char *query, apr_table_t **out);

/* The value of a parameter given exactly once: APR_ENOENT absent, APR_EINVAL repeated. */
apr_status_t msa_query_get1(const apr_table_t *t, const char *name, const char **val);

/*
 * Replaces the first `param=placeholder` of url's query (Para's "jwt=id",
 * "jwt=?", "cause=?") with `param=<encoded value>`. Returns url unchanged
 * when the placeholder is absent.
 */
const char *msa_url_fill(apr_pool_t *p, const char *url, const char *param, const char *placeholder,
                         const char *value);

/*
 * Checks a URL given in configuration. absolute_only: must be http(s)://host...
 * otherwise a path starting with '/' is also accepted. NULL when good, else
 * a message saying what is wrong.
 */
const char *msa_url_check(apr_pool_t *p, const char *url, int absolute_only);

/* Whether an outgoing URL is allowed: https, or http to a loopback host. */
int msa_url_outgoing_allowed(const char *url);

/*
 * Validates a return_to target. Accepted: a path on this origin ("/x", not
 * "//x" nor "/\x"), an absolute URL on self_origin ("https://host[:port]"),
 * or an absolute URL starting with one of allow (url prefixes). Control
 * characters, backslashes, encoded slashes at the start, other schemes and
 * userinfo are refused. Returns the target to use, or NULL when refused.
 */
const char *msa_redirect_target(apr_pool_t *p, const char *target, const char *self_origin,
                                const apr_array_header_t *allow);

#endif
