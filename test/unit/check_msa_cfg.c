/* Unit tests of src/core/msa_cfg.c: defaults, merges by set marks, resolution, parsers. */
#include <stdlib.h>
#include <string.h>

#include <apr_file_io.h>
#include <apr_hash.h>
#include <apr_strings.h>

#include "msa_cfg.h"
#include "msa_test.h"

/* ---- defaults (INTERFACE.md section 2) ---- */

#define ASSERT_UNSET(type, field, directive)                                                       \
    ck_assert_msg(!x->field##_set, "%s (" #field ") marked set at create", directive);

START_TEST(app_defaults)
{
    msa_app_t *x = msa_app_create(pool, "myapp");
    ck_assert_str_eq(x->appid, "myapp");
    ck_assert_ptr_null(x->client_id);
    ck_assert_ptr_null(x->client_secret);
    ck_assert_str_eq(x->tenant, "common");
    ck_assert_ptr_null(x->allowed_tenants);
    ck_assert_str_eq(x->signin_success, "/");
    ck_assert_str_eq(x->signin_failure, "/?error");
    ck_assert_ptr_null(x->keys);
    ck_assert_str_eq(x->scope, "openid profile email User.Read");
    ck_assert_ptr_null(x->redirect_uri);
    ck_assert_int_eq(x->session_timeout, 86400);
    ck_assert_int_eq(x->refresh_interval, 3600);
    ck_assert_int_eq(x->id_token_ttl, 60);
    ck_assert_ptr_null(x->cookie_domain);
    ck_assert_str_eq(x->cookie_path, "/");
    ck_assert_int_eq(x->cookie_samesite, MSA_SAMESITE_LAX);
    ck_assert_int_eq(x->cookie_secure, MSA_SECURE_AUTO);
    ck_assert_int_eq(x->legacy_state, 0);
    ck_assert_int_eq(x->passwordless_get, 0);
    ck_assert_int_eq(x->groups, MSA_GROUPS_OFF);
    ck_assert_ptr_null(x->redirect_allow);
    MSA_APP_FIELDS(ASSERT_UNSET)
    ck_assert_str_eq(msa_app_create(pool, NULL)->appid, "");
    ck_assert_str_eq(msa_app_token_id(x), "myapp");
    ck_assert_str_eq(msa_app_token_id(msa_app_create(pool, "")), "default");
}
END_TEST

START_TEST(srv_defaults)
{
    msa_srv_t *x = msa_srv_create(pool);
    ck_assert_str_eq(x->callback_path, "/microsoft_auth");
    ck_assert_str_eq(x->jwt_path, "/jwt_auth");
    ck_assert_str_eq(x->login_host, "https://login.microsoftonline.com");
    ck_assert_str_eq(x->graph_host, "https://graph.microsoft.com");
    ck_assert_str_eq(x->cache, "shmcb");
    ck_assert_int_eq(x->http_timeout, 10);
    ck_assert_int_eq(x->http_connect_timeout, 5);
    ck_assert_ptr_null(x->ca_file);
    ck_assert_ptr_null(x->http_proxy);
    ck_assert_int_eq(x->clock_skew, 60);
    ck_assert_int_eq(x->trust_forwarded, 0);
    ck_assert_ptr_null(x->settings_file);
    ck_assert_ptr_null(x->admin_key);
    ck_assert_ptr_null(x->cors_origins);
    ck_assert_int_eq(x->metrics, 0);
    MSA_SRV_FIELDS(ASSERT_UNSET)
    ck_assert_ptr_nonnull(x->root);
    ck_assert_str_eq(x->root->appid, "");
    ck_assert_str_eq(x->root->tenant, "common");
    ck_assert_ptr_nonnull(x->apps);
    ck_assert_int_eq(apr_hash_count(x->apps), 0);
    /* Nothing resolved yet: no app, no endpoints. */
    ck_assert_ptr_null(msa_srv_app(x, ""));
    ck_assert_int_eq(msa_srv_has_apps(x), 0);
}
END_TEST

START_TEST(dir_defaults)
{
    msa_dir_t *x = msa_dir_create(pool);
    ck_assert_ptr_nonnull(x->app);
    ck_assert_str_eq(x->app, ""); /* the root app */
    ck_assert_int_eq(x->unauth_action, MSA_UNAUTH_AUTO);
    ck_assert_int_eq(x->remote_user_claim, MSA_CLAIM_EMAIL);
    ck_assert_int_eq(x->pass_claims, MSA_PASS_ENV);
    ck_assert_int_eq(x->easy_auth, 0);
    ck_assert_int_eq(x->accept_bearer, 1);
    ck_assert_int_eq(x->strip_cookie, 1);
    MSA_DIR_FIELDS(ASSERT_UNSET)
}
END_TEST

#undef ASSERT_UNSET

/* ---- merges ---- */

static apr_array_header_t *keys_of(const char *k)
{
    apr_array_header_t *a = apr_array_make(pool, 1, sizeof(msa_key_t));
    msa_key_t key = {(const unsigned char *)k, strlen(k)};
    APR_ARRAY_PUSH(a, msa_key_t) = key;
    return a;
}

/* Not inside MSA_CFG_SET, which evaluates its first argument twice. */
static msa_app_t *add_app(msa_srv_t *s, const char *appid)
{
    msa_app_t *a = msa_app_create(pool, appid);
    apr_hash_set(s->apps, a->appid, APR_HASH_KEY_STRING, a);
    return a;
}

/*
 * httpd.conf:
 *   MSAuthClientID main-client / MSAuthClientSecret main-secret / MSAuthSecretKey K /
 *   MSAuthTenant main.example.com / MSAuthCallbackPath /auth / MSAuthLegacyState On
 *   <MSAuthApp a> MSAuthSigninSuccess https://a.example/ok </MSAuthApp>
 *   <VirtualHost>
 *     MSAuthTenant organizations / MSAuthLegacyState Off / MSAuthClockSkew 120
 *     <MSAuthApp a> MSAuthSigninFailure https://a.example/fail </MSAuthApp>
 *     <MSAuthApp b> MSAuthScope openid </MSAuthApp>
 *   </VirtualHost>
 */
typedef struct nested {
    msa_srv_t *main, *vhost, *merged;
} nested_t;

static nested_t nested_config(void)
{
    nested_t n;
    n.main = msa_srv_create(pool);
    MSA_CFG_SET(n.main->root, client_id, "main-client");
    MSA_CFG_SET(n.main->root, client_secret, "main-secret");
    MSA_CFG_SET(n.main->root, keys, keys_of("main-key-0123456789abcdef0123456789"));
    MSA_CFG_SET(n.main->root, tenant, "main.example.com");
    MSA_CFG_SET(n.main->root, legacy_state, 1);
    MSA_CFG_SET(n.main, callback_path, "/auth");
    {
        msa_app_t *app_a = add_app(n.main, "a");
        MSA_CFG_SET(app_a, signin_success, "https://a.example/ok");
    }

    n.vhost = msa_srv_create(pool);
    MSA_CFG_SET(n.vhost->root, tenant, "organizations");
    MSA_CFG_SET(n.vhost->root, legacy_state, 0);
    MSA_CFG_SET(n.vhost, clock_skew, 120);
    {
        msa_app_t *app_a = add_app(n.vhost, "a");
        MSA_CFG_SET(app_a, signin_failure, "https://a.example/fail");
    }
    {
        msa_app_t *app_b = add_app(n.vhost, "b");
        MSA_CFG_SET(app_b, scope, "openid");
    }

    n.merged = msa_srv_merge(pool, n.main, n.vhost);
    msa_srv_resolve(pool, n.merged);
    msa_srv_resolve(pool, n.main);
    return n;
}

START_TEST(nested_vhost_app_a)
{
    nested_t n = nested_config();
    const msa_app_t *a = msa_srv_app(n.merged, "a");
    ck_assert_ptr_nonnull(a);
    ck_assert_str_eq(a->appid, "a");
    ck_assert_str_eq(a->client_id, "main-client");                 /* main root */
    ck_assert_str_eq(a->client_secret, "main-secret");             /* main root */
    ck_assert_str_eq(a->tenant, "organizations");                  /* vhost root */
    ck_assert_str_eq(a->signin_success, "https://a.example/ok");   /* main's <MSAuthApp a> */
    ck_assert_str_eq(a->signin_failure, "https://a.example/fail"); /* vhost's <MSAuthApp a> */
    ck_assert_str_eq(a->scope, "openid profile email User.Read");  /* default */
    ck_assert_int_eq(a->legacy_state, 0);                          /* vhost root's Off */
    ck_assert_str_eq(a->cookie_name, "msauth-a");
    ck_assert_ptr_nonnull(a->keys);
    ck_assert_int_eq(a->keys->nelts, 1);
    ck_assert_ptr_null(msa_app_incomplete(a));
    ck_assert_str_eq(msa_app_token_id(a), "a");
}
END_TEST

START_TEST(nested_vhost_app_b_and_root)
{
    nested_t n = nested_config();
    const msa_app_t *b = msa_srv_app(n.merged, "b"), *root = msa_srv_app(n.merged, "");
    ck_assert_ptr_nonnull(b);
    ck_assert_str_eq(b->client_id, "main-client");
    ck_assert_str_eq(b->tenant, "organizations");
    ck_assert_str_eq(b->scope, "openid");
    ck_assert_str_eq(b->signin_success, "/");
    ck_assert_str_eq(b->signin_failure, "/?error");
    ck_assert_str_eq(b->cookie_name, "msauth-b");
    ck_assert_int_eq(b->legacy_state, 0);

    ck_assert_ptr_nonnull(root);
    ck_assert_str_eq(root->client_id, "main-client");
    ck_assert_str_eq(root->tenant, "organizations");
    ck_assert_str_eq(root->cookie_name, "msauth");
    ck_assert_int_eq(root->legacy_state, 0);
    ck_assert_str_eq(msa_app_token_id(root), "default");
    ck_assert_ptr_eq(msa_srv_app(n.merged, "default"), root);
    ck_assert_ptr_null(msa_srv_app(n.merged, "c"));
    ck_assert_ptr_null(msa_srv_app(n.merged, "A")); /* appids are case-sensitive */
    ck_assert_int_eq(msa_srv_has_apps(n.merged), 1);

    /* Server settings: the vhost's where set, the main server's otherwise. */
    ck_assert_str_eq(n.merged->callback_path, "/auth");
    ck_assert_int_eq(n.merged->clock_skew, 120);
    ck_assert_str_eq(n.merged->jwt_path, "/jwt_auth");
}
END_TEST

START_TEST(nested_main_server_untouched)
{
    /* Merging a vhost must not leak its settings into the main server. */
    nested_t n = nested_config();
    const msa_app_t *a = msa_srv_app(n.main, "a"), *root = msa_srv_app(n.main, "");
    ck_assert_ptr_nonnull(a);
    ck_assert_str_eq(a->tenant, "main.example.com");
    ck_assert_str_eq(a->signin_success, "https://a.example/ok");
    ck_assert_str_eq(a->signin_failure, "/?error");
    ck_assert_int_eq(a->legacy_state, 1);
    ck_assert_ptr_null(msa_srv_app(n.main, "b"));
    ck_assert_ptr_nonnull(root);
    ck_assert_str_eq(root->tenant, "main.example.com");
    ck_assert_int_eq(root->legacy_state, 1);
    ck_assert_int_eq(n.main->clock_skew, 60);
    ck_assert_int_eq(apr_hash_count(n.main->apps), 1);
    ck_assert_int_eq(apr_hash_count(n.vhost->apps), 2);
}
END_TEST

START_TEST(flag_off_undoes_on)
{
    /* mod_auth_mellon's trap: a child's explicit Off must win over a parent's On. */
    msa_srv_t *main = msa_srv_create(pool), *vhost = msa_srv_create(pool);
    MSA_CFG_SET(main->root, client_id, "c");
    MSA_CFG_SET(main->root, legacy_state, 1);
    MSA_CFG_SET(main->root, groups, MSA_GROUPS_GRAPH);
    MSA_CFG_SET(main->root, cookie_secure, MSA_SECURE_ON);
    MSA_CFG_SET(main, trust_forwarded, 1);
    MSA_CFG_SET(main, metrics, 1);
    MSA_CFG_SET(vhost->root, legacy_state, 0);
    MSA_CFG_SET(vhost->root, groups, MSA_GROUPS_OFF);
    MSA_CFG_SET(vhost->root, cookie_secure, MSA_SECURE_AUTO);
    MSA_CFG_SET(vhost, trust_forwarded, 0);
    MSA_CFG_SET(vhost, metrics, 0);
    msa_srv_t *m = msa_srv_merge(pool, main, vhost);
    msa_srv_resolve(pool, m);
    const msa_app_t *root = msa_srv_app(m, "");
    ck_assert_ptr_nonnull(root);
    ck_assert_int_eq(root->legacy_state, 0);
    ck_assert_int_eq(root->groups, MSA_GROUPS_OFF);
    ck_assert_int_eq(root->cookie_secure, MSA_SECURE_AUTO);
    ck_assert_int_eq(m->trust_forwarded, 0);
    ck_assert_int_eq(m->metrics, 0);

    /* And a child that says nothing inherits the On. */
    m = msa_srv_merge(pool, main, msa_srv_create(pool));
    msa_srv_resolve(pool, m);
    root = msa_srv_app(m, "");
    ck_assert_int_eq(root->legacy_state, 1);
    ck_assert_int_eq(root->groups, MSA_GROUPS_GRAPH);
    ck_assert_int_eq(root->cookie_secure, MSA_SECURE_ON);
    ck_assert_int_eq(m->trust_forwarded, 1);
    ck_assert_int_eq(m->metrics, 1);

    /* A child that sets the default value explicitly over a parent's other value. */
    msa_app_t *base = msa_app_create(pool, ""), *add = msa_app_create(pool, "");
    MSA_CFG_SET(base, tenant, "organizations");
    MSA_CFG_SET(add, tenant, "common");
    MSA_CFG_SET(base, session_timeout, 600);
    MSA_CFG_SET(add, session_timeout, 86400);
    msa_app_t *am = msa_app_merge(pool, base, add);
    ck_assert_str_eq(am->tenant, "common");
    ck_assert_int_eq(am->session_timeout, 86400);
    ck_assert(am->tenant_set);
}
END_TEST

START_TEST(named_app_flag_over_root)
{
    /* Within one server: root Off, app On; and root On, app Off. */
    msa_srv_t *s = msa_srv_create(pool);
    MSA_CFG_SET(s->root, client_id, "c");
    MSA_CFG_SET(s->root, legacy_state, 1);
    {
        msa_app_t *app_off = add_app(s, "off");
        MSA_CFG_SET(app_off, legacy_state, 0);
    }
    add_app(s, "inherit");
    msa_srv_resolve(pool, s);
    ck_assert_int_eq(msa_srv_app(s, "off")->legacy_state, 0);
    ck_assert_int_eq(msa_srv_app(s, "inherit")->legacy_state, 1);
    ck_assert_int_eq(msa_srv_app(s, "")->legacy_state, 1);
}
END_TEST

START_TEST(cookie_names)
{
    msa_srv_t *s = msa_srv_create(pool);
    MSA_CFG_SET(s->root, client_id, "c");
    MSA_CFG_SET(s->root, cookie_name, "corp_session");
    add_app(s, "a");
    {
        msa_app_t *app_b = add_app(s, "b");
        MSA_CFG_SET(app_b, cookie_name, "b_cookie");
    }
    msa_srv_resolve(pool, s);
    ck_assert_str_eq(msa_srv_app(s, "")->cookie_name, "corp_session");
    /* The root's MSAuthCookieName is not inherited: two apps never share a cookie. */
    ck_assert_str_eq(msa_srv_app(s, "a")->cookie_name, "msauth-a");
    ck_assert_str_eq(msa_srv_app(s, "b")->cookie_name, "b_cookie");

    /* Same through a vhost merge: the vhost's app inherits neither root's name. */
    msa_srv_t *v = msa_srv_create(pool);
    MSA_CFG_SET(v->root, cookie_name, "vhost_session");
    add_app(v, "c");
    msa_srv_t *m = msa_srv_merge(pool, s, v);
    msa_srv_resolve(pool, m);
    ck_assert_str_eq(msa_srv_app(m, "")->cookie_name, "vhost_session");
    ck_assert_str_eq(msa_srv_app(m, "a")->cookie_name, "msauth-a");
    ck_assert_str_eq(msa_srv_app(m, "b")->cookie_name, "b_cookie");
    ck_assert_str_eq(msa_srv_app(m, "c")->cookie_name, "msauth-c");

    /* No name anywhere: the documented defaults. */
    msa_srv_t *d = msa_srv_create(pool);
    MSA_CFG_SET(d->root, client_id, "c");
    add_app(d, "x");
    msa_srv_resolve(pool, d);
    ck_assert_str_eq(msa_srv_app(d, "")->cookie_name, "msauth");
    ck_assert_str_eq(msa_srv_app(d, "x")->cookie_name, "msauth-x");
}
END_TEST

START_TEST(vhost_named_apps_only)
{
    /* Neither the main server nor the vhost has a root client id. */
    msa_srv_t *main = msa_srv_create(pool), *v = msa_srv_create(pool);
    MSA_CFG_SET(v->root, client_secret, "shared-secret");
    MSA_CFG_SET(v->root, keys, keys_of("vhost-key-0123456789abcdef0123456789"));
    msa_app_t *x = add_app(v, "x");
    MSA_CFG_SET(x, client_id, "x-client");
    msa_app_t *y = add_app(v, "y");
    MSA_CFG_SET(y, signin_success, "/y");
    msa_srv_t *m = msa_srv_merge(pool, main, v);
    msa_srv_resolve(pool, m);
    ck_assert_ptr_null(msa_srv_app(m, ""));
    ck_assert_ptr_null(msa_srv_app(m, "default"));
    const msa_app_t *rx = msa_srv_app(m, "x");
    ck_assert_ptr_nonnull(rx);
    ck_assert_str_eq(rx->client_id, "x-client");
    ck_assert_str_eq(rx->client_secret, "shared-secret");
    ck_assert_ptr_null(msa_app_incomplete(rx));
    ck_assert_int_eq(msa_srv_has_apps(m), 1);
    /* y names no client id anywhere: known, but not usable for a login. */
    const msa_app_t *ry = msa_srv_app(m, "y");
    ck_assert_ptr_nonnull(ry);
    ck_assert_str_eq(msa_app_incomplete(ry), "MSAuthClientID");
}
END_TEST

START_TEST(no_apps_at_all)
{
    msa_srv_t *main = msa_srv_create(pool);
    MSA_CFG_SET(main, callback_path, "/x");
    msa_srv_t *m = msa_srv_merge(pool, main, msa_srv_create(pool));
    msa_srv_resolve(pool, m);
    ck_assert_int_eq(msa_srv_has_apps(m), 0);
    ck_assert_ptr_null(msa_srv_app(m, ""));
    /* A secret without a client id does not make a root app. */
    MSA_CFG_SET(m->root, client_secret, "s");
    msa_srv_resolve(pool, m);
    ck_assert_int_eq(msa_srv_has_apps(m), 0);
}
END_TEST

START_TEST(dir_three_levels)
{
    msa_dir_t *l1 = msa_dir_create(pool), *l2 = msa_dir_create(pool), *l3 = msa_dir_create(pool);
    /* <Location /> */
    MSA_CFG_SET(l1, app, "x");
    MSA_CFG_SET(l1, easy_auth, 1);
    MSA_CFG_SET(l1, pass_claims, MSA_PASS_BOTH);
    /* <Location /a> */
    MSA_CFG_SET(l2, unauth_action, MSA_UNAUTH_401);
    MSA_CFG_SET(l2, easy_auth, 0);
    /* <Location /a/b> */
    MSA_CFG_SET(l3, strip_cookie, 0);
    msa_dir_t *a = msa_dir_merge(pool, l1, l2);
    msa_dir_t *b = msa_dir_merge(pool, a, l3);

    ck_assert_str_eq(b->app, "x");
    ck_assert_int_eq(b->unauth_action, MSA_UNAUTH_401);
    ck_assert_int_eq(b->strip_cookie, 0);
    ck_assert_int_eq(b->accept_bearer, 1); /* default, never set */
    ck_assert_int_eq(b->easy_auth, 0);     /* /a's Off beats /'s On */
    ck_assert_int_eq(b->pass_claims, MSA_PASS_BOTH);
    ck_assert_int_eq(b->remote_user_claim, MSA_CLAIM_EMAIL);
    /* Set marks travel, so a fourth level would still see them as set. */
    ck_assert(b->app_set);
    ck_assert(b->unauth_action_set);
    ck_assert(b->strip_cookie_set);
    ck_assert(!b->accept_bearer_set);

    /* /a itself: strip still on. */
    ck_assert_int_eq(a->strip_cookie, 1);
    ck_assert_int_eq(a->unauth_action, MSA_UNAUTH_401);

    /* A sibling of /a under / sees only /. */
    msa_dir_t *sib = msa_dir_merge(pool, l1, msa_dir_create(pool));
    ck_assert_str_eq(sib->app, "x");
    ck_assert_int_eq(sib->unauth_action, MSA_UNAUTH_AUTO);
    ck_assert_int_eq(sib->easy_auth, 1);

    /* A deeper level sets the root app back explicitly. */
    msa_dir_t *l4 = msa_dir_create(pool);
    MSA_CFG_SET(l4, app, "");
    MSA_CFG_SET(l4, accept_bearer, 0);
    msa_dir_t *c = msa_dir_merge(pool, b, l4);
    ck_assert_str_eq(c->app, "");
    ck_assert_int_eq(c->accept_bearer, 0);
    ck_assert_int_eq(c->strip_cookie, 0);
}
END_TEST

START_TEST(app_incomplete)
{
    msa_app_t *a = msa_app_create(pool, "a");
    ck_assert_str_eq(msa_app_incomplete(a), "MSAuthClientID");
    MSA_CFG_SET(a, client_id, "c");
    ck_assert_str_eq(msa_app_incomplete(a), "MSAuthClientSecret");
    MSA_CFG_SET(a, client_secret, "s");
    ck_assert_str_eq(msa_app_incomplete(a), "MSAuthSecretKey");
    MSA_CFG_SET(a, keys, apr_array_make(pool, 1, sizeof(msa_key_t)));
    ck_assert_str_eq(msa_app_incomplete(a), "MSAuthSecretKey");
    MSA_CFG_SET(a, keys, keys_of("k-0123456789abcdef0123456789abcdef"));
    ck_assert_ptr_null(msa_app_incomplete(a));

    /* A named app made whole by the root it inherits from. */
    msa_srv_t *s = msa_srv_create(pool);
    MSA_CFG_SET(s->root, client_id, "c");
    MSA_CFG_SET(s->root, client_secret, "s");
    add_app(s, "n");
    msa_srv_resolve(pool, s);
    ck_assert_str_eq(msa_app_incomplete(msa_srv_app(s, "n")), "MSAuthSecretKey");
    MSA_CFG_SET(s->root, keys, keys_of("k-0123456789abcdef0123456789abcdef"));
    msa_srv_resolve(pool, s);
    ck_assert_ptr_null(msa_app_incomplete(msa_srv_app(s, "n")));
}
END_TEST

/* One credential per app: a level that sets one inherits none of the other kinds. */
START_TEST(credential_one_per_app)
{
    msa_cred_t *cert = (msa_cred_t *)"a certificate", *file = (msa_cred_t *)"a file";
    msa_srv_t *s = msa_srv_create(pool);
    MSA_CFG_SET(s->root, client_id, "c");
    MSA_CFG_SET(s->root, client_secret, "s");
    MSA_CFG_SET(s->root, keys, keys_of("k-0123456789abcdef0123456789abcdef"));
    msa_app_t *a = add_app(s, "cert");
    MSA_CFG_SET(a, client_cert, cert);
    msa_app_t *b = add_app(s, "file");
    MSA_CFG_SET(b, assertion_file, file);
    add_app(s, "plain");
    msa_srv_resolve(pool, s);
    const msa_app_t *ra = msa_srv_app(s, "cert"), *rb = msa_srv_app(s, "file");
    ck_assert_ptr_null(ra->client_secret);
    ck_assert_ptr_eq(msa_app_credential(ra), cert);
    ck_assert_ptr_null(msa_app_credential_clash(pool, ra));
    ck_assert_ptr_null(msa_app_incomplete(ra));
    ck_assert_ptr_null(rb->client_secret);
    ck_assert_ptr_eq(msa_app_credential(rb), file);
    ck_assert_ptr_null(msa_app_incomplete(rb));
    ck_assert_str_eq(msa_srv_app(s, "plain")->client_secret, "s");
    ck_assert_ptr_null(msa_app_credential(msa_srv_app(s, "plain")));

    /* a vhost's credential replaces the main server's */
    msa_srv_t *v = msa_srv_create(pool);
    MSA_CFG_SET(v->root, client_cert, cert);
    msa_srv_t *m = msa_srv_merge(pool, s, v);
    ck_assert_ptr_null(m->root->client_secret);
    ck_assert_ptr_eq(msa_app_credential(m->root), cert);
    ck_assert_ptr_null(msa_app_credential_clash(pool, m->root));

    /* two in one block clash, and the message names them */
    MSA_CFG_SET(a, client_secret, "s2");
    ck_assert_str_eq(msa_app_credential_clash(pool, a),
                     "MSAuthClientCertificate and MSAuthClientSecret");
    MSA_CFG_SET(a, assertion_file, file);
    ck_assert_str_eq(msa_app_credential_clash(pool, a),
                     "MSAuthClientCertificate, MSAuthClientAssertionFile and MSAuthClientSecret");
    ck_assert_ptr_null(msa_app_credential_clash(pool, b));

    /* no credential at all is still reported as the missing secret */
    msa_app_t *n = msa_app_create(pool, "n");
    MSA_CFG_SET(n, client_id, "c");
    ck_assert_str_eq(msa_app_incomplete(n), "MSAuthClientSecret");
    MSA_CFG_SET(n, assertion_file, file);
    ck_assert_str_eq(msa_app_incomplete(n), "MSAuthSecretKey");
}
END_TEST

/* ---- parsers ---- */

static apr_status_t remove_file(void *path)
{
    apr_file_remove(path, NULL);
    return APR_SUCCESS;
}

/* A temporary file holding content, removed with the pool. */
static const char *temp_file(const char *content, apr_size_t len)
{
    apr_file_t *f;
    char *tmpl = apr_pstrdup(pool, "/tmp/msa_cfg_secret_XXXXXX");
    ck_assert_int_eq(
        apr_file_mktemp(&f, tmpl,
                        APR_FOPEN_CREATE | APR_FOPEN_READ | APR_FOPEN_WRITE | APR_FOPEN_EXCL, pool),
        APR_SUCCESS);
    apr_pool_cleanup_register(pool, tmpl, remove_file, apr_pool_cleanup_null);
    apr_size_t n = len;
    ck_assert_int_eq(apr_file_write_full(f, content, len, &n), APR_SUCCESS);
    apr_file_close(f);
    return tmpl;
}

START_TEST(parse_secret_literal)
{
    const char *out = NULL;
    ck_assert_ptr_null(msa_parse_secret(pool, "s3cr3t value", &out));
    ck_assert_str_eq(out, "s3cr3t value");
    out = NULL;
    ck_assert_ptr_nonnull(msa_parse_secret(pool, "", &out));
    ck_assert_ptr_null(out);
}
END_TEST

START_TEST(parse_secret_file)
{
    const char *out = NULL, *msg;
    const char *path = temp_file("first-line-secret\r\nsecond line\n", 31);
    ck_assert_ptr_null(msa_parse_secret(pool, apr_pstrcat(pool, "file:", path, NULL), &out));
    ck_assert_str_eq(out, "first-line-secret");

    path = temp_file("lf-only\nx", 9);
    ck_assert_ptr_null(msa_parse_secret(pool, apr_pstrcat(pool, "file:", path, NULL), &out));
    ck_assert_str_eq(out, "lf-only");

    path = temp_file("no-newline", 10);
    ck_assert_ptr_null(msa_parse_secret(pool, apr_pstrcat(pool, "file:", path, NULL), &out));
    ck_assert_str_eq(out, "no-newline");

    /* Missing file: the message names it. */
    out = NULL;
    msg = msa_parse_secret(pool, "file:/nonexistent/msa/secret", &out);
    ck_assert_ptr_nonnull(msg);
    ck_assert_msg(strstr(msg, "/nonexistent/msa/secret") != NULL, "%s", msg);
    ck_assert_ptr_null(out);

    /* Empty file, empty first line. */
    path = temp_file("", 0);
    msg = msa_parse_secret(pool, apr_pstrcat(pool, "file:", path, NULL), &out);
    ck_assert_ptr_nonnull(msg);
    ck_assert_ptr_null(out);
    path = temp_file("\nsecond-line", 12);
    ck_assert_ptr_nonnull(msa_parse_secret(pool, apr_pstrcat(pool, "file:", path, NULL), &out));
    ck_assert_ptr_null(out);
    path = temp_file("\r\n", 2);
    ck_assert_ptr_nonnull(msa_parse_secret(pool, apr_pstrcat(pool, "file:", path, NULL), &out));
    ck_assert_ptr_null(out);
    /* The secret file's content never reaches the message. */
    path = temp_file("\ntop-secret-content", 19);
    msg = msa_parse_secret(pool, apr_pstrcat(pool, "file:", path, NULL), &out);
    ck_assert_ptr_nonnull(msg);
    ck_assert_ptr_null(strstr(msg, "top-secret"));
}
END_TEST

START_TEST(parse_secret_env)
{
    const char *out = NULL, *msg;
    setenv("MSA_TEST_SECRET_SET", "from-the-env", 1);
    unsetenv("MSA_TEST_SECRET_UNSET");
    setenv("MSA_TEST_SECRET_EMPTY", "", 1);
    ck_assert_ptr_null(msa_parse_secret(pool, "env:MSA_TEST_SECRET_SET", &out));
    ck_assert_str_eq(out, "from-the-env");
    out = NULL;
    msg = msa_parse_secret(pool, "env:MSA_TEST_SECRET_UNSET", &out);
    ck_assert_ptr_nonnull(msg);
    ck_assert_msg(strstr(msg, "MSA_TEST_SECRET_UNSET") != NULL, "%s", msg);
    ck_assert_ptr_null(out);
    ck_assert_ptr_nonnull(msa_parse_secret(pool, "env:MSA_TEST_SECRET_EMPTY", &out));
    ck_assert_ptr_nonnull(msa_parse_secret(pool, "env:", &out));
    ck_assert_ptr_null(out);
}
END_TEST

START_TEST(parse_key)
{
    msa_key_t *k = NULL;
    const char *k31 = "0123456789abcdef0123456789abcde";
    const char *k32 = "0123456789abcdef0123456789abcdef";
    ck_assert_ptr_nonnull(msa_parse_key(pool, k31, &k));
    ck_assert_ptr_null(k);
    ck_assert_ptr_nonnull(msa_parse_key(pool, "", &k));
    ck_assert_ptr_null(msa_parse_key(pool, k32, &k));
    ck_assert_ptr_nonnull(k);
    ck_assert_uint_eq(k->len, 32);
    ck_assert_mem_eq(k->data, k32, 32);

    /* From a file: the CRLF is not part of the key, so 31 + CRLF is still too short. */
    k = NULL;
    const char *path = temp_file("0123456789abcdef0123456789abcde\r\n", 33);
    ck_assert_ptr_nonnull(msa_parse_key(pool, apr_pstrcat(pool, "file:", path, NULL), &k));
    ck_assert_ptr_null(k);
    path = temp_file("0123456789abcdef0123456789abcdefXY\r\n", 36);
    ck_assert_ptr_null(msa_parse_key(pool, apr_pstrcat(pool, "file:", path, NULL), &k));
    ck_assert_uint_eq(k->len, 34);
    ck_assert_mem_eq(k->data, "0123456789abcdef0123456789abcdefXY", 34);

    /* From the environment. */
    setenv("MSA_TEST_KEY", k32, 1);
    k = NULL;
    ck_assert_ptr_null(msa_parse_key(pool, "env:MSA_TEST_KEY", &k));
    ck_assert_uint_eq(k->len, 32);
    ck_assert_ptr_nonnull(msa_parse_key(pool, "env:MSA_TEST_KEY_UNSET_X", &k));
}
END_TEST

START_TEST(parse_seconds)
{
    apr_int64_t v = 12345;
    ck_assert_ptr_null(msa_parse_seconds("60", 0, 86400, &v));
    ck_assert_int_eq(v, 60);
    ck_assert_ptr_null(msa_parse_seconds("0", 0, 10, &v));
    ck_assert_int_eq(v, 0);
    ck_assert_ptr_null(msa_parse_seconds("007", 0, 10, &v));
    ck_assert_int_eq(v, 7);
    ck_assert_ptr_null(msa_parse_seconds("31536000", 1, 31536000, &v));
    ck_assert_int_eq(v, 31536000);

    static const char *const bad[] = {"-1",
                                      "1e3",
                                      "",
                                      " 60",
                                      "60 ",
                                      "+60",
                                      "0x10",
                                      "6 0",
                                      "60s",
                                      "1.5",
                                      "abc",
                                      "--1",
                                      "99999999999999999999",
                                      "-99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        v = 12345;
        ck_assert_msg(msa_parse_seconds(bad[i], 0, APR_INT64_MAX, &v) != NULL, "accepted \"%s\"",
                      bad[i]);
        ck_assert_int_eq(v, 12345);
    }
    /* Out of range, on both sides, and the bounds themselves. */
    ck_assert_ptr_nonnull(msa_parse_seconds("101", 1, 100, &v));
    ck_assert_ptr_nonnull(msa_parse_seconds("0", 1, 100, &v));
    ck_assert_int_eq(v, 12345);
    ck_assert_ptr_null(msa_parse_seconds("1", 1, 100, &v));
    ck_assert_int_eq(v, 1);
    ck_assert_ptr_null(msa_parse_seconds("100", 1, 100, &v));
    ck_assert_int_eq(v, 100);
    /* A failed overflow does not poison the next parse (errno). */
    ck_assert_ptr_nonnull(msa_parse_seconds("99999999999999999999", 0, 100, &v));
    ck_assert_ptr_null(msa_parse_seconds("42", 0, 100, &v));
    ck_assert_int_eq(v, 42);
}
END_TEST

START_TEST(parse_enum_and_flag)
{
    static const char *const samesite[] = {"Lax", "Strict", "None", NULL};
    int v = -1;
    ck_assert_ptr_null(msa_parse_enum("lax", samesite, &v));
    ck_assert_int_eq(v, 0);
    ck_assert_ptr_null(msa_parse_enum("STRICT", samesite, &v));
    ck_assert_int_eq(v, 1);
    ck_assert_ptr_null(msa_parse_enum("nOnE", samesite, &v));
    ck_assert_int_eq(v, 2);
    v = -1;
    ck_assert_ptr_nonnull(msa_parse_enum("Lax ", samesite, &v));
    ck_assert_ptr_nonnull(msa_parse_enum("", samesite, &v));
    ck_assert_ptr_nonnull(msa_parse_enum("La", samesite, &v));
    ck_assert_ptr_nonnull(msa_parse_enum("Laxx", samesite, &v));
    ck_assert_int_eq(v, -1);
}
END_TEST

START_TEST(parse_path)
{
    static const char *const good[] = {"/x", "/", "/microsoft_auth", "/a/b-c_d.e~f", "/A9"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        ck_assert_msg(msa_parse_path(good[i]) == NULL, "refused %s", good[i]);
    }
    static const char *const bad[] = {"x",         "",      "//x",  "/x/", "/a b", "/a?b",
                                      "/a#b",      "/a%20", "/a\n", "//",  "/a;b", "/caf\xC3\xA9",
                                      "http://x/y"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ck_assert_msg(msa_parse_path(bad[i]) != NULL, "accepted \"%s\"", bad[i]);
    }
    char longp[300];
    longp[0] = '/';
    memset(longp + 1, 'a', 256);
    longp[257] = '\0';
    ck_assert_ptr_nonnull(msa_parse_path(longp));
    longp[256] = '\0';
    ck_assert_ptr_null(msa_parse_path(longp));
}
END_TEST

START_TEST(parse_tenant)
{
    static const char *const good[] = {"common",
                                       "organizations",
                                       "consumers",
                                       "72f988bf-86f1-41af-91ab-2d7cd011db47",
                                       "72F988BF-86F1-41AF-91AB-2D7CD011DB47",
                                       "contoso.onmicrosoft.com",
                                       "example.com"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        ck_assert_msg(msa_parse_tenant(good[i]) == NULL, "refused %s", good[i]);
    }
    static const char *const bad[] = {
        "",       "contoso", "a b",    "../common", "common/oauth2", "https://login.example.com",
        "-a.com", "a-.com",  "a..com", ".com",      "com.",          "tenant?x=1",
        "%2e%2e",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ck_assert_msg(msa_parse_tenant(bad[i]) != NULL, "accepted \"%s\"", bad[i]);
    }
}
END_TEST

START_TEST(parse_guid)
{
    ck_assert_ptr_null(msa_parse_guid("72f988bf-86f1-41af-91ab-2d7cd011db47"));
    ck_assert_ptr_null(msa_parse_guid("72F988BF-86F1-41AF-91AB-2D7CD011DB47"));
    ck_assert_ptr_null(msa_parse_guid("00000000-0000-0000-0000-000000000000"));
    static const char *const bad[] = {
        "",
        "common",
        "72f988bf86f141af91ab2d7cd011db47",
        "{72f988bf-86f1-41af-91ab-2d7cd011db47}",
        "72f988bf-86f1-41af-91ab-2d7cd011db4",
        "72f988bf-86f1-41af-91ab-2d7cd011db477",
        "72f988bg-86f1-41af-91ab-2d7cd011db47",
        "72f988bf-86f1-41af-91ab_2d7cd011db47",
        "72f988b-f86f1-41af-91ab-2d7cd011db47",
        " 72f988bf-86f1-41af-91ab-2d7cd011db4",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ck_assert_msg(msa_parse_guid(bad[i]) != NULL, "accepted \"%s\"", bad[i]);
    }
}
END_TEST

/* ---- binding: audience and tenant rule ---- */

START_TEST(app_audience)
{
    msa_app_t *root = msa_app_create(pool, NULL), *named = msa_app_create(pool, "shop");
    root->client_id = named->client_id = "11111111-2222-3333-4444-555555555555";
    ck_assert_str_eq(msa_app_audience(pool, root, "a.example"),
                     "11111111-2222-3333-4444-555555555555:default@a.example");
    ck_assert_str_eq(msa_app_audience(pool, named, "b.example"),
                     "11111111-2222-3333-4444-555555555555:shop@b.example");
}
END_TEST

#define CONTOSO   "72f988bf-86f1-41af-91ab-2d7cd011db47"
#define FABRIKAM  "a1b2c3d4-0000-4000-8000-000000000001"
#define CONSUMERS "9188040d-6c67-4c5b-b112-36a304b66dad"

START_TEST(tenant_rule)
{
    msa_app_t *a = msa_app_create(pool, "x");
    /* common: anyone, even an unknown tenant. */
    ck_assert(!msa_app_restricts_tenants(a));
    ck_assert(msa_app_tenant_allowed(a, CONTOSO));
    ck_assert(msa_app_tenant_allowed(a, CONSUMERS));
    ck_assert(msa_app_tenant_allowed(a, NULL));
    /* A GUID: that tenant only, whatever the case. */
    a->tenant = CONTOSO;
    ck_assert(msa_app_restricts_tenants(a));
    ck_assert(msa_app_tenant_allowed(a, "72F988BF-86F1-41AF-91AB-2D7CD011DB47"));
    ck_assert(!msa_app_tenant_allowed(a, FABRIKAM));
    ck_assert(!msa_app_tenant_allowed(a, NULL));
    ck_assert(!msa_app_tenant_allowed(a, ""));
    /* organizations: any but personal accounts; consumers: personal accounts only. */
    a->tenant = "organizations";
    ck_assert(msa_app_tenant_allowed(a, FABRIKAM));
    ck_assert(!msa_app_tenant_allowed(a, CONSUMERS));
    ck_assert(!msa_app_tenant_allowed(a, NULL));
    a->tenant = "consumers";
    ck_assert(msa_app_tenant_allowed(a, CONSUMERS));
    ck_assert(!msa_app_tenant_allowed(a, CONTOSO));
    /* MSAuthAllowedTenants narrows any of them. */
    a->tenant = "common";
    a->allowed_tenants = apr_array_make(pool, 1, sizeof(const char *));
    APR_ARRAY_PUSH(a->allowed_tenants, const char *) = FABRIKAM;
    ck_assert(msa_app_restricts_tenants(a));
    ck_assert(msa_app_tenant_allowed(a, FABRIKAM));
    ck_assert(!msa_app_tenant_allowed(a, CONTOSO));
    ck_assert(!msa_app_tenant_allowed(a, NULL));
}
END_TEST

static Suite *cfg_suite(void)
{
    Suite *s = suite_create("msa_cfg");
    TCase *tc;

    tc = msa_test_case("defaults");
    tcase_add_test(tc, app_defaults);
    tcase_add_test(tc, srv_defaults);
    tcase_add_test(tc, dir_defaults);
    suite_add_tcase(s, tc);

    tc = msa_test_case("merge");
    tcase_add_test(tc, nested_vhost_app_a);
    tcase_add_test(tc, nested_vhost_app_b_and_root);
    tcase_add_test(tc, nested_main_server_untouched);
    tcase_add_test(tc, flag_off_undoes_on);
    tcase_add_test(tc, named_app_flag_over_root);
    tcase_add_test(tc, cookie_names);
    tcase_add_test(tc, vhost_named_apps_only);
    tcase_add_test(tc, no_apps_at_all);
    tcase_add_test(tc, dir_three_levels);
    tcase_add_test(tc, app_incomplete);
    tcase_add_test(tc, credential_one_per_app);
    suite_add_tcase(s, tc);

    tc = msa_test_case("parse");
    tcase_add_test(tc, parse_secret_literal);
    tcase_add_test(tc, parse_secret_file);
    tcase_add_test(tc, parse_secret_env);
    tcase_add_test(tc, parse_key);
    tcase_add_test(tc, parse_seconds);
    tcase_add_test(tc, parse_enum_and_flag);
    tcase_add_test(tc, parse_path);
    tcase_add_test(tc, parse_tenant);
    tcase_add_test(tc, parse_guid);
    suite_add_tcase(s, tc);

    tc = msa_test_case("binding");
    tcase_add_test(tc, app_audience);
    tcase_add_test(tc, tenant_rule);
    suite_add_tcase(s, tc);

    return s;
}

int main(void)
{
    return msa_test_run(cfg_suite());
}
