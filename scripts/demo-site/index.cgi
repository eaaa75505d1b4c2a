#!/bin/sh
# A legacy CGI app: it only reads the environment Apache gives it.
esc() { printf '%s' "$1" | sed -e 's/&/\&amp;/g' -e 's/</\&lt;/g' -e 's/>/\&gt;/g' -e 's/"/\&quot;/g'; }

# MSAUTH_EXPIRES is epoch seconds: shown as a date and as the time left.
expires="unknown"
left=""
case "${MSAUTH_EXPIRES:-}" in
    ''|*[!0-9]*) ;;
    *)
        expires=$(date -u -d "@$MSAUTH_EXPIRES" '+%A %-d %B %Y, %H:%M UTC')
        secs=$((MSAUTH_EXPIRES - $(date +%s)))
        if [ "$secs" -ge 7200 ]; then left="in $((secs / 3600)) hours"
        elif [ "$secs" -ge 120 ]; then left="in $((secs / 60)) minutes"
        elif [ "$secs" -gt 0 ]; then left="in a minute"
        else left="already"; fi
        ;;
esac

printf 'Content-Type: text/html; charset=utf-8\r\n\r\n'
cat <<HTML
<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Legacy app</title>
<link rel="icon" href="/favicon.ico"><link rel="stylesheet" href="/demo.css">
</head>
<body>
<header>
<a class="brand" id="home" href="/"><img src="/favicon.ico" alt="">&larr; mod_msauth demo</a>
<div class="who" id="signed-in">Signed in as <strong>$(esc "${MSAUTH_NAME:-$REMOTE_USER}")</strong> ($(esc "$REMOTE_USER"))<a class="signout" id="logout" href="/microsoft_auth/logout?return_to=/">Sign out</a></div>
</header>
<main>
<div class="card">
<h1>Hello, $(esc "${MSAUTH_NAME:-stranger}")</h1>
<p id="user">Signed in as <strong>$(esc "$REMOTE_USER")</strong> (AUTH_TYPE $(esc "$AUTH_TYPE"))</p>
<p class="expires">Your session ends <strong id="expires">$(esc "$expires")</strong>$( [ -n "$left" ] && printf ' (%s)' "$(esc "$left")").</p>
<p class="small">This page is a shell CGI script: what it knows of you is the environment Apache gives it.</p>
<table>
<tr><th>REMOTE_USER</th><td>$(esc "$REMOTE_USER")</td></tr>
<tr><th>MSAUTH_NAME</th><td>$(esc "$MSAUTH_NAME")</td></tr>
<tr><th>MSAUTH_EMAIL</th><td>$(esc "$MSAUTH_EMAIL")</td></tr>
<tr><th>MSAUTH_UPN</th><td>$(esc "$MSAUTH_UPN")</td></tr>
<tr><th>MSAUTH_ID</th><td>$(esc "$MSAUTH_ID")</td></tr>
<tr><th>MSAUTH_TID</th><td>$(esc "$MSAUTH_TID")</td></tr>
<tr><th>MSAUTH_APPID</th><td>$(esc "$MSAUTH_APPID")</td></tr>
<tr><th>MSAUTH_EXPIRES</th><td>$(esc "$expires")</td></tr>
</table>
<div class="actions"><a class="button secondary" href="/">Back to the home page</a>
<a class="button secondary" href="/microsoft_auth/logout?return_to=/">Sign out</a></div>
</div>
</main>
</body>
</html>
HTML
