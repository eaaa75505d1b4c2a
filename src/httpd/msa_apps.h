/* The app registry: configured apps and the settings store. */
#ifndef MSA_APPS_H
#define MSA_APPS_H

#include "msa_module.h"
#include "msa_settings.h"

int msa_apps_post_config(apr_pool_t *pconf, apr_pool_t *ptemp, server_rec *s);
/* The effective app for appid: a stored app first (settings store), else the configured one. */
const msa_app_t *msa_app_lookup(request_rec *r, const msa_srv_t *srv, const char *appid);
/*
 * Whether a cookie (name nlen bytes, value vlen bytes, neither NUL-terminated) is
 * one of the server's: the session cookie name of an app configured in any virtual
 * host or set by a settings store, or whatever its name a token of one of those apps
 * (a renamed cookie, another port's).
 */
int msa_apps_own_cookie(request_rec *r, const char *name, apr_size_t nlen, const char *value,
                        apr_size_t vlen);
/* Starts the thread that looks at each settings file five times a second. */
void msa_apps_child_init(apr_pool_t *p, server_rec *s);
/* The settings store as this request sees it (the file as of a second ago at most), or NULL. */
msa_store_t *msa_apps_store(request_rec *r, const msa_srv_t *srv);
/*
 * The settings file as this process serves it: "ok", "damaged" (a change could
 * not be read: the last good settings serve), "unreadable" (never read), or
 * NULL without MSAuthSettingsFile.
 */
const char *msa_apps_settings_state(request_rec *r, const msa_srv_t *srv);
/* Whether name (len bytes) is the session cookie of a configured app, in any virtual host. */
int msa_apps_cookie_name(const char *name, apr_size_t len);

#endif
