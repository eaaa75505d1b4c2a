/*
 * The settings store (INTERFACE.md section 7): apps added at run time, kept in
 * one JSON file {"apps":{"<appid>":{"ms_app_id":…,…}}}, written atomically
 * under a cross-process lock. Keys are Para's.
 */
#ifndef MSA_SETTINGS_H
#define MSA_SETTINGS_H

#include <apr_file_info.h>
#include <apr_hash.h>

#include "msa_cfg.h"
#include "msa_core.h"

typedef struct msa_store {
    apr_hash_t *apps;  /* appid -> msa_app_t * (only what the store sets) */
    apr_hash_t *docs;  /* appid -> JSON text of the app as stored */
    apr_finfo_t finfo; /* of the file this was read from (mtime, size, inode) */
} msa_store_t;

/* The keys a stored app may have. */
extern const char *const msa_settings_keys[];

/* Whether a key holds a secret (read back as "********"). */
int msa_settings_key_secret(const char *key);

/*
 * Parses a store's text. APR_EINVAL with err naming the position of a JSON
 * error ("line L, column C") or the app and key of a bad value.
 */
apr_status_t msa_settings_parse(apr_pool_t *p, const char *text, apr_size_t len, msa_store_t **out,
                                const char **err);

/* Reads and parses the file; a missing file is an empty store. */
apr_status_t msa_settings_load(apr_pool_t *p, const char *path, msa_store_t **out,
                               const char **err);

/*
 * Whether the file differs from what s was read from (mtime, size or inode);
 * 1 on a stat failure too, so the caller rereads and reports.
 */
int msa_settings_changed(apr_pool_t *p, const char *path, const msa_store_t *s);

/* One app's stored JSON, secrets masked when masked is set; NULL when absent. */
char *msa_settings_app_json(apr_pool_t *p, const msa_store_t *s, const char *appid, int masked);

/* {"value":…} of one key, masked for secrets; NULL when app or key is absent. */
char *msa_settings_key_json(apr_pool_t *p, const msa_store_t *s, const char *appid,
                            const char *key);

/* {"apps":["a","b"]}, sorted. */
char *msa_settings_list_json(apr_pool_t *p, const msa_store_t *s);

typedef enum {
    MSA_SETTINGS_PUT_APP,
    MSA_SETTINGS_DELETE_APP,
    MSA_SETTINGS_PUT_KEY,
    MSA_SETTINGS_DELETE_KEY,
} msa_settings_op_t;

/*
 * Changes the store at path under its lock: reads the file as it is now,
 * applies op (body: the app's JSON object for PUT_APP, {"value":…} for
 * PUT_KEY), checks the result (every value; the app merged over root must be
 * complete), writes a temporary file in the same directory (mode 0600),
 * fsyncs it, renames it over the store and fsyncs the directory.
 * APR_ENOENT: app or key absent; APR_EINVAL: a bad request (err names the key);
 * APR_EGENERAL: the file is corrupt or cannot be written (err says which).
 */
apr_status_t msa_settings_update(apr_pool_t *p, const char *path, msa_settings_op_t op,
                                 const char *appid, const char *key, const char *body,
                                 apr_size_t body_len, const msa_app_t *root, msa_store_t **out,
                                 const char **err);

#endif
