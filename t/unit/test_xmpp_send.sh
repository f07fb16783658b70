#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The xmpp-send command: exit codes, output lines, errors, queue items.
# Run by "make check" from the build directory; XMPP_SEND may name the
# binary to test.
set -u

BIN=${XMPP_SEND:-./xmpp-send}
T=$(mktemp -d "${TMPDIR:-/tmp}/xmpp-send-test.XXXXXX") || exit 99
trap 'rm -rf "$T"' EXIT
Q=$T/queue
mkdir -m 700 "$Q"

passed=0
failed=0
ok() { passed=$((passed + 1)); }
not_ok() { failed=$((failed + 1)); echo "FAIL: $*" >&2; }

# run EXPECTED_EXIT CMD...: runs with the app's environment; output in
# $T/out and $T/err
run() {
    want=$1
    shift
    XMPP_QUEUE=$Q XMPP_JID=app@example.org XMPP_RESOURCE=bot \
        "$BIN" "$@" >"$T/out" 2>"$T/err" </dev/null
    got=$?
    if [ "$got" = "$want" ]; then ok; else
        not_ok "xmpp-send $* exited $got, not $want: $(cat "$T/err")"; fi
}
out_is() {
    if [ "$(cat "$T/out")" = "$1" ]; then ok; else
        not_ok "output '$(cat "$T/out")', not '$1'"; fi
}
err_has() {
    if grep -qF -- "$1" "$T/err"; then ok; else
        not_ok "stderr '$(cat "$T/err")' lacks '$1'"; fi
}
items() { ls "$Q/new" 2>/dev/null | wc -l | tr -d ' '; }
items_are() {
    if [ "$(items)" = "$1" ]; then ok; else not_ok "$(items) items, not $1"; fi
}
last_item() { ls "$Q/new" | sort | tail -n 1; }

# --help
run 0 --help
grep -q '^usage: xmpp-send message' "$T/out" && ok || not_ok "--help"
run 0 -h
run 2
err_has "no command"
run 2 frobnicate x@example.org
err_has "unknown command"

# message: one item per recipient, in argument order
run 0 message u@example.org v@example.org -- hello world
out_is "u@example.org NO_ERROR
v@example.org NO_ERROR"
items_are 2
f=$(last_item)
head -n 1 "$Q/new/$f" | grep -qx 'MX1 stanza' && ok || not_ok "item header"
grep -qF 'to="v@example.org"' "$Q/new/$f" && ok || not_ok "item recipient"
grep -qF '<body>hello world</body>' "$Q/new/$f" && ok || not_ok "item body"
grep -qF 'from="app@example.org/bot"' "$Q/new/$f" && ok || not_ok "item from"

# body from standard input, less one newline, escaped
printf 'a <b> & c\n' | XMPP_QUEUE=$Q XMPP_JID=app@example.org "$BIN" \
    message --type headline u@example.org >"$T/out" 2>"$T/err"
[ $? = 0 ] && ok || not_ok "stdin body: $(cat "$T/err")"
f=$(last_item)
grep -qF '<body>a &lt;b&gt; &amp; c</body>' "$Q/new/$f" && ok || not_ok "stdin body text"
grep -qF 'type="headline"' "$Q/new/$f" && ok || not_ok "type"

# some recipients invalid: statuses, exit 1; all invalid: InvalidJidError
run 1 message u@example.org 'bad@' v@example.org -- hi
out_is "u@example.org NO_ERROR
bad@ INVALID_JID
v@example.org NO_ERROR"
run 2 message 'bad@' 'a b@example.org' -- hi
err_has "InvalidJidError"
out_is ""

# validation errors name App Engine's exception
n=$(items)
run 2 message --type foo u@example.org -- hi
err_has "xmpp-send: InvalidTypeError: message type 'foo' is not one of chat, error, groupchat, headline, normal"
run 2 message u@example.org -- ""
err_has "NoBodyError"
run 2 message u@example.org
err_has "NoBodyError"
run 2 message --raw-xml u@example.org -- "<body>hi"
err_has "InvalidXmlError"
run 2 message --raw-xml u@example.org -- "<!DOCTYPE x><body/>"
err_has "InvalidXmlError"
run 2 message --from other@example.org u@example.org -- hi
err_has "InvalidJidError"
run 2 message --from app@example.org/elsewhere u@example.org -- hi
err_has "InvalidJidError"
run 2 presence --show busy u@example.org
err_has "InvalidShowError"
run 2 presence --type gone u@example.org
err_has "InvalidTypeError"
run 2 presence --status "$(head -c 1025 /dev/zero | tr '\0' x)" u@example.org
err_has "InvalidStatusError"
run 2 invite 'bad@'
err_has "InvalidJidError"
if [ "$(items)" = "$n" ]; then ok; else not_ok "a refused send queued something"; fi

# raw XML goes in as children of <message>
run 0 message --raw-xml --from app@example.org u@example.org -- "<body>x</body><b xmlns='urn:x'/>"
f=$(last_item)
grep -qF "<body>x</body><b xmlns='urn:x'/><origin-id" "$Q/new/$f" && ok || not_ok "raw xml"
grep -qF 'from="app@example.org"' "$Q/new/$f" && ok || not_ok "--from"

# usage errors
run 2 message --bogus u@example.org -- hi
err_has "unknown option"
run 2 invite --type chat u@example.org
run 2 invite a@example.org b@example.org
run 2 message -- hi
err_has "needs a JID"
XMPP_JID=app@example.org "$BIN" message u@example.org -- hi >"$T/out" 2>"$T/err" </dev/null
[ $? = 2 ] && ok || not_ok "no queue"
err_has "XMPP_QUEUE"

# invite and presence
run 0 invite u@example.org
out_is "u@example.org NO_ERROR"
f=$(last_item)
grep -qF 'from="app@example.org" to="u@example.org" type="subscribe"' "$Q/new/$f" \
    && ok || not_ok "invite stanza"
run 0 presence --show away --status "out <to> lunch" u@example.org
out_is "u@example.org NO_ERROR"
f=$(last_item)
grep -qF '<show>away</show><status>out &lt;to&gt; lunch</status>' "$Q/new/$f" \
    && ok || not_ok "presence stanza"
run 0 presence --type unavailable subscribers
out_is "subscribers NO_ERROR"
f=$(last_item)
head -n 1 "$Q/new/$f" | grep -qx 'MX1 subscribers' && ok || not_ok "subscribers header"
grep -qF ' to=' "$Q/new/$f" && not_ok "subscribers item has a to" || ok

# options override the environment
mkdir -m 700 "$T/other"
run 0 --queue "$T/other" --jid=bot@example.net --resource r1 message u@example.org -- hi
f=$(ls "$T/other/new")
grep -qF 'from="bot@example.net/r1"' "$T/other/new/$f" && ok || not_ok "--jid/--resource"

# a full queue: OTHER_ERROR, reason on stderr, exit 1
touch "$Q/FULL"
run 1 message u@example.org -- hi
out_is "u@example.org OTHER_ERROR"
err_has "the outbound queue is full"
rm "$Q/FULL"

# get-presence
run 0 get-presence u@example.org
out_is "u@example.org unavailable"
mkdir -p "$Q/presence"
printf 'available\naway\nat lunch' >"$Q/presence/u@example.org"
run 0 get-presence U@Example.org/phone
out_is "U@Example.org/phone available away"
printf 'available\n\n' >"$Q/presence/u@example.org"
run 0 get-presence u@example.org
out_is "u@example.org available"
printf 'unavailable\n\n' >"$Q/presence/u@example.org"
run 0 get-presence u@example.org
out_is "u@example.org unavailable"
run 2 get-presence 'bad@'
err_has "InvalidJidError"
# several JIDs (App Engine's get_presence with a list): a line each, in
# order; an invalid one INVALID_JID and exit 1, the others still answered
printf 'available\ndnd\n' >"$Q/presence/u@example.org"
run 0 get-presence u@example.org w@example.org
out_is "u@example.org available dnd
w@example.org unavailable"
run 1 get-presence 'bad@' u@example.org
out_is "bad@ INVALID_JID
u@example.org available dnd"
# a component keeps its contacts' presence per address: of --from, else
# of the domain (what mx_op_get_presence reads for the HTTP API)
mkdir -p "$Q/addresses/bots.example.org/presence" \
         "$Q/addresses/score@bots.example.org/presence"
printf 'available\nxa\n' >"$Q/addresses/bots.example.org/presence/u@example.org"
printf 'available\nchat\n' >"$Q/addresses/score@bots.example.org/presence/u@example.org"
comp() {
    want=$1
    shift
    XMPP_QUEUE=$Q XMPP_JID=bots.example.org "$BIN" "$@" >"$T/out" 2>"$T/err" </dev/null
    got=$?
    if [ "$got" = "$want" ]; then ok; else
        not_ok "xmpp-send $* (component) exited $got, not $want: $(cat "$T/err")"; fi
}
comp 0 get-presence u@example.org
out_is "u@example.org available xa"
comp 0 get-presence --from Score@bots.example.org u@example.org w@example.org
out_is "u@example.org available chat
w@example.org unavailable"
comp 2 get-presence --from score@other.example.org u@example.org
err_has "InvalidJidError"

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
