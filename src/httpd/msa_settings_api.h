/* The settings API under <callback>/_settings. */
#ifndef MSA_SETTINGS_API_H
#define MSA_SETTINGS_API_H

#include "msa_module.h"

/* <callback>/_settings[/appid[/key]]; rest is what follows "_settings/". */
int msa_settings_api(request_rec *r, const msa_srv_t *srv, const char *rest);

#endif
