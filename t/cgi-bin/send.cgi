#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Sends one chat message to alice@localhost with xmpp-send and NO options:
# the queue and the app come from the environment mod_xmpp gives CGI
# scripts (XMPP_QUEUE, XMPP_JID, XMPP_RESOURCE).  xmpp-send is found on
# PATH (the tests set it with SetEnv).  The query string, reduced to
# letters, digits and '-', is appended to the body so that a test can
# recognize its own message.  Prints xmpp-send's output and exit status.
printf 'Content-Type: text/plain; charset=UTF-8\r\n\r\n'
tag=$(printf '%s' "$QUERY_STRING" | tr -cd 'A-Za-z0-9-')
out=$(xmpp-send message alice@localhost -- "hello from a CGI script $tag" 2>&1)
rc=$?
printf '%s\n' "$out"
printf 'exit=%d\n' "$rc"
