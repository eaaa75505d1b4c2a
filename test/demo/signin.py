#!/usr/bin/python3
"""Signs in through a running demo like a person would, with a script.

    signin.py http://127.0.0.1:8080

Reads the demo page's login button, opens the Microsoft URL it builds, picks
a user on the stand-in's page, follows the redirects to the CGI app and
checks that the app shows the signed-in user. Then does the same through
the module-initiated login. On the way it checks what a person sees: the home
page names who is signed in and its "Sign out" link signs them out; the app
page says when the session ends as a date (not epoch seconds) and links back
home; the icon is served; a cancelled login lands on a page that says what
happened in a sentence, and every failure cause of the README has a sentence
of its own. Pages load nothing from another site. Exit status 0 on success.
"""

import html
import os
import re
import sys
import time
import urllib.parse

import requests

README = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "README.md")
GENERIC = "Sign-in did not succeed."


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


def cancel(authorize_url):
    """What a person does who changes their mind on the login page."""
    parts = urllib.parse.urlsplit(authorize_url)
    fields = {k: v[0] for k, v in urllib.parse.parse_qs(parts.query, keep_blank_values=True).items()}
    fields["cancel"] = "1"
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


def element(page, id_):
    """The text of the element with this id (tags dropped, entities decoded), or None."""
    m = re.search(r'<(\w+)[^>]*\bid="%s"[^>]*>(.*?)</\1>' % re.escape(id_), page, re.S)
    return html.unescape(re.sub(r"<[^>]+>", "", m.group(2))).strip() if m else None


def href(page, id_):
    m = re.search(r'<a[^>]*\bid="%s"[^>]*\bhref="([^"]*)"|<a[^>]*\bhref="([^"]*)"[^>]*\bid="%s"'
                  % (re.escape(id_), re.escape(id_)), page)
    assert m, "no link %s on the page" % id_
    return html.unescape(m.group(1) or m.group(2))


def local_resources_only(page, what):
    """Stylesheets, scripts, images and icons come from this site: the demo works offline."""
    for tag, url in re.findall(r'<(link|script|img)\b[^>]*\b(?:href|src)="([^"]*)"', page):
        assert url.startswith("/") and not url.startswith("//"), "%s loads %s (%s)" % (what, url, tag)


def check_home_signed_in(s, origin, name, email):
    home = s.get(origin + "/", timeout=10).text
    who = element(home, "signed-in")
    assert who and name in who and email in who, "home page: signed-in indicator %r" % who
    assert element(home, "signed-out") is None, "home page says signed in and signed out"
    local_resources_only(home, "the home page")
    return home


def check_app_page(page, origin):
    local_resources_only(page, "the app page")
    assert href(page, "home") == "/", "the app page has no way back to the home page"
    expires = element(page, "expires")
    assert expires, "the app page does not say when the session ends"
    assert re.search(r"\b\d{1,2} [A-Z][a-z]+ 20\d\d, \d\d:\d\d UTC\b", expires), \
        "the expiry is not a readable date: %r" % expires
    text = html.unescape(re.sub(r"<[^>]+>", " ", re.sub(r"<(script|style)\b.*?</\1>", "", page,
                                                         flags=re.S)))
    now = int(time.time())
    for n in re.findall(r"\b\d{10}\b", text):
        assert abs(int(n) - now) > 10 * 365 * 86400, "the app page shows epoch seconds: %s" % n
    assert element(page, "signed-in"), "the app page does not say who is signed in"


def check_logout(s, origin, home):
    out = href(home, "logout")
    r = s.get(urllib.parse.urljoin(origin + "/", out), allow_redirects=False, timeout=10)
    assert r.status_code == 302, ("sign out", r.status_code)
    assert urllib.parse.urljoin(origin + "/", r.headers["Location"]) == origin + "/", \
        r.headers["Location"]
    home = s.get(origin + "/", timeout=10).text
    assert element(home, "signed-in") is None and element(home, "signed-out"), \
        "after signing out the home page still shows a user: %r" % element(home, "signed-in")
    r = s.get(origin + "/app/", allow_redirects=False, timeout=10, headers={"Accept": "text/html"})
    assert r.status_code == 302 and "/oauth2/v2.0/authorize" in r.headers["Location"], \
        "after signing out the app still lets the user in (%d)" % r.status_code


def readme_causes():
    """The failure causes of the README's table (| `cause` | when |)."""
    with open(README) as f:
        text = f.read()
    table = text[text.index("| cause | when |"):]
    table = table[:table.index("\n\n")]
    causes = re.findall(r"^\| `([a-z_]+)` \|", table, re.M)
    assert len(causes) >= 10, causes
    return causes


def check_failure_page(origin, page, cause):
    sentence = element(page, "failure")
    assert sentence, "no failure notice for %s" % cause
    assert GENERIC not in sentence, "cause %s has no sentence of its own: %r" % (cause, sentence)
    words = sentence.replace("cause: " + cause, "").strip()
    assert len(words.split()) >= 6 and words.endswith("."), "not a sentence: %r" % words
    assert "cause: " + cause in sentence, "the cause code is not in the small print: %r" % sentence


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
    check_app_page(page.text, origin)
    print("app page: says who is signed in, the session's end as %r, links home"
          % element(page.text, "expires"))
    home = check_home_signed_in(s, origin, "Alice Example", "alice@contoso.example")
    print("home page: %r" % element(home, "signed-in"))
    check_logout(s, origin, home)
    print("sign out: the home page shows nobody, the app asks for a login again")

    icon = requests.get(origin + "/favicon.ico", timeout=10)
    assert icon.status_code == 200 and icon.content[:4] == b"\x00\x00\x01\x00", \
        ("favicon", icon.status_code, icon.content[:4])
    assert requests.get(origin + "/demo.css", timeout=10).status_code == 200
    print("favicon.ico: 200, an icon (%d bytes)" % len(icon.content))

    # A person who cancels at Microsoft.
    s = requests.Session()
    r = s.get(origin + "/app/", allow_redirects=False, timeout=10, headers={"Accept": "text/html"})
    assert r.status_code == 302, r.status_code
    back = cancel(r.headers["Location"])
    page = follow(s, back, origin)
    assert page.status_code == 200 and "cause=access_denied" in page.url, (page.status_code,
                                                                           page.url)
    check_failure_page(origin, page.text, "access_denied")
    print("cancelled login: %r" % element(page.text, "failure"))
    for cause in readme_causes():
        check_failure_page(origin, requests.get(origin + "/?cause=" + cause, timeout=10).text,
                           cause)
    print("failure page: a sentence for each of the README's %d causes" % len(readme_causes()))

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
