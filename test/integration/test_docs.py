"""The documentation matches the code: every directive of the module's table is in the
README's reference and the other way round; every MSAuth name the README, the examples
and the Debian package's msauth.conf mention exists; msauth.conf lists every
server-level directive and passes configtest with all of it switched on."""

import glob
import os
import re
import subprocess

from msauth import ROOT, Httpd

CMDS = os.path.join(ROOT, "src", "httpd", "msa_cmds.c")
README = os.path.join(ROOT, "README.md")
MSAUTH_CONF = os.path.join(ROOT, "debian", "msauth.conf")


def read(path):
    with open(path) as f:
        return f.read()


def code_directives():
    """{name: context} from the command table: 'S' (server, app) or 'D' (directory)."""
    table = read(CMDS)
    found = re.findall(r'AP_INIT_\w+\(\s*"<?(MSAuth\w+)"\s*,\s*\w+\s*,\s*\w+\s*,\s*(S_|D_)', table)
    assert len(found) > 30, "the directive table was not found in %s" % CMDS
    out = {}
    for name, ctx in found:
        out.setdefault(name, set()).add(ctx[0])
    return out


def reference_section():
    text = read(README)
    start = text.index("\n## Directive reference\n")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def test_every_directive_in_the_code_is_in_the_reference_and_back():
    code = set(code_directives())
    ref = reference_section()
    rows = set(re.findall(r"^\| `(MSAuth\w+)", ref, re.M))
    rows |= set(re.findall(r"`<(MSAuth\w+) ", ref))
    assert code - rows == set(), "in the code, not in the README's reference: %s" % sorted(code - rows)
    assert rows - code == set(), "in the README's reference, not in the code: %s" % sorted(rows - code)


def test_every_msauth_name_the_docs_mention_exists():
    code = set(code_directives())
    for path in [README, MSAUTH_CONF] + sorted(glob.glob(os.path.join(ROOT, "conf-examples", "*"))):
        named = set(re.findall(r"\b(MSAuth[A-Z]\w*)", read(path)))
        unknown = named - code
        assert not unknown, "%s names directives the module does not have: %s" % (
            os.path.relpath(path, ROOT), sorted(unknown))


def test_the_migration_tables_map_to_directives():
    text = read(README)
    start = text.index("\n## Migrating from mod_auth_openidc")
    section = text[start:text.index("\n## ", start + 1)]
    for origin in ("### From mod_auth_openidc", "### From Para", "### From Easy Auth"):
        assert origin in section, origin
    oidc = set(re.findall(r"`(OIDC\w+)", section))
    # What an Entra user of mod_auth_openidc sets, each with its answer.
    for d in ("OIDCProviderMetadataURL", "OIDCProviderIssuer", "OIDCClientID", "OIDCClientSecret",
              "OIDCRedirectURI", "OIDCCryptoPassphrase", "OIDCScope", "OIDCRemoteUserClaim",
              "OIDCPassClaimsAs", "OIDCSessionInactivityTimeout", "OIDCCacheType",
              "OIDCCookieDomain", "OIDCXForwardedHeaders", "OIDCUnAuthAction"):
        assert d in oidc, "the mod_auth_openidc table lacks %s" % d
    for row in re.findall(r"^\| `OIDC.*$", section, re.M):
        answer = row.split(" | ", 1)[1]
        assert "MSAuth" in answer or "not needed" in answer or "none" in answer \
            or "no equivalent" in answer, row
    for key in ("ms_app_id", "ms_secret", "ms_tenant_id", "signin_success", "signin_failure",
                "session_timeout", "auth_cookie", "app_secret_key"):
        assert "`%s`" % key in section, "the Para table lacks %s" % key
    for header in ("X-MS-CLIENT-PRINCIPAL-NAME", "X-MS-CLIENT-PRINCIPAL-ID", "/.auth/me",
                   "/.auth/login/aad", "/.auth/logout"):
        assert header in section, "the Easy Auth table lacks %s" % header


def test_msauth_conf_lists_every_server_directive():
    code = code_directives()
    server = {n for n, ctx in code.items() if "S" in ctx and n != "MSAuthApp"}
    listed = set(re.findall(r"^#(MSAuth\w+) ", read(MSAUTH_CONF), re.M))
    assert server - listed == set(), "msauth.conf lacks %s" % sorted(server - listed)
    assert listed - server == set(), "msauth.conf lists non-server %s" % sorted(listed - server)


def test_msauth_conf_switched_on_passes_configtest(tmp_path):
    """Every commented directive of msauth.conf, uncommented, is a valid configuration."""
    text = read(MSAUTH_CONF)
    for name in ("client-secret", "signing-key", "old-signing-key", "admin-key"):
        (tmp_path / name).write_text("example-%s-0123456789-0123456789-abcdef\n" % name)
    settings = tmp_path / "settings"
    settings.mkdir()
    os.chmod(tmp_path, 0o755)
    os.chmod(settings, 0o777)
    text = text.replace("/etc/apache2/msauth/", str(tmp_path) + "/")
    text = text.replace("/var/lib/apache2/msauth/", str(settings) + "/")
    # The credentials are alternatives (one per app): each of them, with all the rest on.
    subprocess.run(["/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                    "-keyout", str(tmp_path / "client.key"), "-out", str(tmp_path / "client.crt"),
                    "-days", "2", "-subj", "/CN=msauth.conf"], check=True, capture_output=True)
    (tmp_path / "azure-identity-token").write_text("eyJhbGciOiJSUzI1NiJ9.e30.c2ln\n")
    text = text.replace("/var/run/secrets/azure/tokens/", str(tmp_path) + "/")
    on = re.sub(r"^#(MSAuth\w+ )", r"\1", text, flags=re.M)
    assert on.count("\nMSAuth") >= len([n for n, c in code_directives().items() if "S" in c]) - 1
    credentials = ("MSAuthClientSecret", "MSAuthClientCertificate", "MSAuthClientAssertionFile")
    for keep in credentials:
        conf = "\n".join(l for l in on.splitlines()
                         if not l.startswith(credentials) or l.startswith(keep + " "))
        h = Httpd(conf, None, name="msauthconf")
        try:
            rc, out = h.configtest()
        finally:
            h.cleanup()
        assert rc == 0 and "Syntax OK" in out, (keep, out)


def test_msauth_load_names_the_installed_module_and_its_dependency():
    load = read(os.path.join(ROOT, "debian", "msauth.load"))
    assert "# Depends: socache_shmcb" in load
    assert "LoadModule msauth_module /usr/lib/apache2/modules/mod_msauth.so" in load
