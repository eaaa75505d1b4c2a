/*
 * Fuzz target: Microsoft's id_token claims (msa_idtoken_verify).
 *
 * The input is a claim set: it is signed with the fixed RSA key and verified
 * against that key's JWKS, as a login would, with a fixed client id, login
 * host, nonce, clock and a one-tenant app. The input itself is also tried as
 * an (unsigned) token.
 *
 * Invariants, read back with json-c from the input, not from the verifier:
 * an accepted token is a JSON object whose aud is the client id, whose tid
 * is the app's tenant, whose iss is <login host>/<tid>/v2.0, whose exp is
 * past now - skew and whose nbf and iat (when numbers) are before now +
 * skew, whose nonce is the login's and which has an oid; the identity is
 * that oid and tid; every group is a GUID. A refusal names a cause of the
 * contract with a detail. The input as a token is never accepted.
 */
#include <apr_strings.h>
#include <json-c/json.h>

#include "msa_cfg.h"
#include "msa_idtoken.h"

#include "fuzz.h"
#include "fuzz_rsa.h"

#define CLIENT "cid-123"
#define LOGIN  "https://login.microsoftonline.com"
#define TID    "9188040d-6c67-4c5b-b112-36a304b66dad"
#define NONCE  "n-0S6_WzA2Mj"

static char *jwks;
static msa_app_t app;

static apr_status_t lookup(void *ctx, int refresh, const char **json, const char **err)
{
    (void)ctx;
    (void)refresh;
    *json = jwks;
    *err = NULL;
    return APR_SUCCESS;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_init();
    const char *pub = fuzz_rsa_public_jwk(fuzz_root);
    if (pub == NULL) {
        fprintf(stderr, "fuzz_idtoken: no fixed RSA key\n");
        abort();
    }
    jwks = apr_pstrcat(fuzz_root, "{\"keys\":[", pub, "]}", NULL);
    app.tenant = TID;
    app.client_id = CLIENT;
    return 0;
}

static const char *str(json_object *o, const char *name)
{
    json_object *v;
    return json_object_object_get_ex(o, name, &v) && json_object_is_type(v, json_type_string)
               ? json_object_get_string(v)
               : NULL;
}

static int num(json_object *o, const char *name, apr_int64_t *out)
{
    json_object *v;
    if (json_object_object_get_ex(o, name, &v) && json_object_is_type(v, json_type_int)) {
        *out = json_object_get_int64(v);
        return 1;
    }
    return 0;
}

static int eq(const char *a, const char *b)
{
    return a != NULL && b != NULL && strcmp(a, b) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fuzz_begin();
    char *claims = fuzz_cstr(p, data, size);
    msa_idtoken_check_t chk = {CLIENT, LOGIN, NONCE, &app, FUZZ_NOW, FUZZ_SKEW, lookup, NULL};
    msa_identity_t id;
    int overage = 0;
    const char *detail = NULL;

    memset(&id, 0, sizeof(id));
    FUZZ_ASSERT(msa_idtoken_verify(p, claims, &chk, &id, &overage, &detail) != NULL, data, size);

    const char *token = fuzz_rs256_sign(p, FUZZ_RSA_KID, claims);
    if (token != NULL) {
        memset(&id, 0, sizeof(id));
        detail = NULL;
        const char *cause = msa_idtoken_verify(p, token, &chk, &id, &overage, &detail);
        if (cause != NULL) {
            FUZZ_ASSERT(strcmp(cause, "invalid_id_token") == 0 ||
                            strcmp(cause, "tenant_not_allowed") == 0,
                        data, size);
            FUZZ_ASSERT(detail != NULL, data, size);
        } else {
            json_object *o = json_tokener_parse(claims);
            apr_int64_t exp = 0, t = 0;
            FUZZ_ASSERT(o != NULL && json_object_is_type(o, json_type_object), data, size);
            FUZZ_ASSERT(eq(str(o, "aud"), CLIENT), data, size);
            FUZZ_ASSERT(eq(str(o, "tid"), TID), data, size);
            FUZZ_ASSERT(eq(str(o, "iss"), LOGIN "/" TID "/v2.0"), data, size);
            FUZZ_ASSERT(num(o, "exp", &exp) && exp > FUZZ_NOW - FUZZ_SKEW, data, size);
            FUZZ_ASSERT(!num(o, "nbf", &t) || t <= FUZZ_NOW + FUZZ_SKEW, data, size);
            FUZZ_ASSERT(!num(o, "iat", &t) || t <= FUZZ_NOW + FUZZ_SKEW, data, size);
            FUZZ_ASSERT(eq(str(o, "nonce"), NONCE), data, size);
            FUZZ_ASSERT(eq(id.oid, str(o, "oid")) && eq(id.id, id.oid), data, size);
            FUZZ_ASSERT(eq(id.tid, TID), data, size);
            for (int i = 0; id.groups != NULL && i < id.groups->nelts; i++) {
                FUZZ_ASSERT(msa_parse_guid(APR_ARRAY_IDX(id.groups, i, const char *)) == NULL, data,
                            size);
            }
            json_object_put(o);
        }
    }
    fuzz_end();
    return 0;
}
