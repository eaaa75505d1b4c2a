/* JSON as the module reads it: one strict parser, typed member getters. */
#ifndef MSA_JSON_H
#define MSA_JSON_H

#include <apr_pools.h>
#include <apr_tables.h>
#include <json-c/json.h>

typedef enum msa_json_fault {
    MSA_JSON_OK,
    MSA_JSON_EMPTY,     /* no text */
    MSA_JSON_NUL,       /* a NUL byte in the text */
    MSA_JSON_TRUNCATED, /* the document ends early */
    MSA_JSON_INVALID,   /* not JSON (or not UTF-8) */
    MSA_JSON_TRAILING,  /* something other than white space after the document */
    MSA_JSON_NOMEM,
} msa_json_fault_t;

typedef struct msa_json_error {
    msa_json_fault_t fault;
    apr_size_t end;   /* where parsing stopped */
    const char *desc; /* json-c's words for an invalid document, else NULL */
} msa_json_error_t;

/*
 * Parses text (len bytes) strictly: one JSON value (RFC 8259, valid UTF-8),
 * nothing after it but white space, no NUL byte. The value is owned by p (put
 * when p is cleared); NULL with *e set otherwise (e may be NULL).
 */
json_object *msa_json_parse(apr_pool_t *p, const char *text, apr_size_t len, msa_json_error_t *e);
/* msa_json_parse, and the value must be an object; NULL otherwise. */
json_object *msa_json_parse_object(apr_pool_t *p, const char *text, apr_size_t len);

/*
 * A string member, copied into p: APR_SUCCESS with *out NULL when absent or
 * null; APR_EINVAL when it is another type or holds a NUL byte.
 */
apr_status_t msa_json_string(apr_pool_t *p, json_object *o, const char *name, const char **out);
/* The string member, or NULL for anything else (absent, null, another type, a NUL byte). */
const char *msa_json_str(apr_pool_t *p, json_object *o, const char *name);
/* An integer member: 1 with *out, 0 when absent or not an integer. */
int msa_json_int(json_object *o, const char *name, apr_int64_t *out);
/* A new JSON array of the strings of arr (const char *). */
json_object *msa_json_strings(const apr_array_header_t *arr);

#endif
