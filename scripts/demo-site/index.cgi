#!/bin/sh
# A legacy CGI app: it only reads the environment Apache gives it.
esc() { printf '%s' "$1" | sed -e 's/&/\&amp;/g' -e 's/</\&lt;/g' -e 's/>/\&gt;/g' -e 's/"/\&quot;/g'; }
printf 'Content-Type: text/html; charset=utf-8\r\n\r\n'
cat <<HTML
<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Legacy app</title></head>
<body>
<h1>Hello, $(esc "${MSAUTH_NAME:-stranger}")</h1>
<p id="user">Signed in as <strong>$(esc "$REMOTE_USER")</strong> (AUTH_TYPE $(esc "$AUTH_TYPE"))</p>
<table>
<tr><th>MSAUTH_ID</th><td>$(esc "$MSAUTH_ID")</td></tr>
<tr><th>MSAUTH_EMAIL</th><td>$(esc "$MSAUTH_EMAIL")</td></tr>
<tr><th>MSAUTH_UPN</th><td>$(esc "$MSAUTH_UPN")</td></tr>
<tr><th>MSAUTH_TID</th><td>$(esc "$MSAUTH_TID")</td></tr>
<tr><th>MSAUTH_APPID</th><td>$(esc "$MSAUTH_APPID")</td></tr>
<tr><th>MSAUTH_EXPIRES</th><td>$(esc "$MSAUTH_EXPIRES")</td></tr>
</table>
</body></html>
HTML
