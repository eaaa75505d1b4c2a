#!/usr/bin/python3
"""Signs in to a bench server through fakems and prints its session cookie.

bench/login.py ORIGIN FAKEMS_BASE [CLIENT_ID [USER [SCOPE]]]: the seed's client-built login
(MSAuthLegacyState On) for the root app, as USER (default alice), and prints "name=value" of
the session cookie the callback sets. Session tokens carry the epoch of the
server's MSAuthCache, so a benchmark signs in for real rather than minting one.
"""

import http.client
import sys
import urllib.parse

origin, fakems = sys.argv[1], sys.argv[2]
client_id = sys.argv[3] if len(sys.argv) > 3 else "11111111-2222-3333-4444-555555555555"
user = sys.argv[4] if len(sys.argv) > 4 else "alice"
# The seed's login asks for Graph's user.read alone (no id_token); with openid in the
# scope the id_token's claims (groups with MSAuthGroups Token) reach the session too.
scope = sys.argv[5] if len(sys.argv) > 5 else "https://graph.microsoft.com/user.read"


def request(method, url, body=None, headers=None):
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
    try:
        conn.request(method, u.path + ("?" + u.query if u.query else ""), body=body,
                     headers=headers or {})
        resp = conn.getresponse()
        resp.read()
        return resp
    finally:
        conn.close()


fields = {"response_type": "code", "client_id": client_id,
          "scope": scope,
          "redirect_uri": origin + "/microsoft_auth", "user": user}
path = fakems + "/common/oauth2/v2.0/authorize"
resp = request("POST", path, urllib.parse.urlencode(fields),
               {"Content-Type": "application/x-www-form-urlencoded"})
if resp.status != 302:
    sys.exit("fakems answered %d to the login" % resp.status)
resp = request("GET", resp.getheader("Location"))
for name, value in resp.getheaders():
    if name.lower() == "set-cookie" and value.startswith("msauth="):
        print(value.split(";", 1)[0])
        sys.exit(0)
sys.exit("the callback answered %d without a session cookie" % resp.status)
