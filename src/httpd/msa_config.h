/* Apache configuration hooks: per-server and per-directory settings, checks at startup. */
#ifndef MSA_CONFIG_H
#define MSA_CONFIG_H

#include "msa_module.h"

void *msa_create_srv_config(apr_pool_t *p, server_rec *s);
void *msa_merge_srv_config(apr_pool_t *p, void *base, void *add);
void *msa_create_dir_config(apr_pool_t *p, char *dir);
void *msa_merge_dir_config(apr_pool_t *p, void *base, void *add);
int msa_pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp);
int msa_check_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s);
int msa_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s);
void msa_child_init(apr_pool_t *p, server_rec *s);

#endif
