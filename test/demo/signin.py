#!/usr/bin/python3
"""Signs in through a running demo like a person would, with a script.

    signin.py http://127.0.0.1:8080

Reads the demo page's login button, opens the Microsoft URL it builds, picks
a user on the stand-in's page, follows the redirects to the CGI app and
checks that the app shows the signed-in user. Then does the same through
the module-initiated login. Exit status 0 on success.
"""

import re
import sys
import urllib.parse

import requests


def pick_user(authorize_url, user):
    page = requests.get(authorize_url, timeout=10)
    page.raise_for_status()
    assert 'id="user-%s"' % user in page.text, "no %s on the login page" % user
    parts = urllib.parse.urlsplit(authorize_url)
    fields = {k: v[0] for k, v in urllib.parse.parse_qs(parts.query, keep_blank_values=True).items()}
    fields["user"] = user
    r = requests.post("%s://%s%s" % (parts.scheme, parts.netloc, parts.path), data=fields,
                      allow_redirects=False, timeout=10)
    assert r.status_code == 302, r.status_code
    return r.headers["Location"]


def follow(session, url, origin):
    """Follows redirects on our origin; returns the final response."""
    for _ in range(10):
        r = session.get(url, allow_redirects=False, timeout=20, headers={"Accept": "text/html"})
        if r.status_code not in (301, 302, 303, 307):
            return r
        url = urllib.parse.urljoin(url, r.headers["Location"])
        if not url.startswith(origin):
            return r
    raise AssertionError("redirect loop")


def main(origin):
    origin = origin.rstrip("/")
    home = requests.get(origin + "/", timeout=10).text
    login_host = re.search(r'window.location = "([^"]+)/([^/"]+)/oauth2/v2.0/authorize', home)
    client_id = re.search(r'MICROSOFT_APP_ID = "([^"]+)"', home).group(1)
    appid = re.search(r'APPID = "([^"]*)"', home).group(1)
    # Exactly what the seed's button does.
    url = ("%s/%s/oauth2/v2.0/authorize?response_type=code&client_id=%s"
           "&scope=https%%3A%%2F%%2Fgraph.microsoft.com%%2Fuser.read&state=%s&redirect_uri=%s"
           "/microsoft_auth" % (login_host.group(1), login_host.group(2), client_id, appid, origin))
    s = requests.Session()
    back = pick_user(url, "alice")
    assert back.startswith(origin + "/microsoft_auth?"), back
    page = follow(s, back, origin)
    assert page.status_code == 200, (page.status_code, page.text[:200])
    assert "alice@contoso.example" in page.text and "Alice Example" in page.text, page.text
    print("seed button login: the app shows alice@contoso.example")

    # The module-initiated login: open the app, get sent to Microsoft, come back.
    s = requests.Session()
    r = s.get(origin + "/app/", allow_redirects=False, timeout=10, headers={"Accept": "text/html"})
    assert r.status_code == 302, r.status_code
    back = pick_user(r.headers["Location"], "bob")
    page = follow(s, back, origin)
    assert page.status_code == 200 and "bob@outlook.example" in page.text, page.text[:300]
    print("module-initiated login: the app shows bob@outlook.example")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8080"))
