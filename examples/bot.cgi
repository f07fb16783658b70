#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# An example mod_xmpp bot, as a plain CGI script.
#
# mod_xmpp posts every chat message to /_ah/xmpp/message/chat/; the
# configuration maps that path to this script. It answers through its
# output: a text/plain body goes back to the sender as a chat reply.
# App Engine's command split is in XMPP_COMMAND and XMPP_ARG.
#
#   /help            what the bot knows
#   /echo TEXT       TEXT back
#   /time            the server's time
#   /shout TEXT      TEXT to everyone subscribed to the bot (xmpp-send)
#   anything else    an echo
reply() {
    printf 'Content-Type: text/plain; charset=UTF-8\n\n%s' "$1"
}

case "$XMPP_COMMAND" in
help)
    reply "I know /help, /echo TEXT, /time and /shout TEXT." ;;
echo)
    reply "$XMPP_ARG" ;;
time)
    reply "It is $(date -u '+%H:%M:%S') UTC here." ;;
shout)
    # xmpp-send needs no options inside a CGI: mod_xmpp sets XMPP_QUEUE
    # and XMPP_JID. Presence with a status reaches every subscriber.
    xmpp-send presence --status "$XMPP_ARG" subscribers >/dev/null
    reply "Shouted to every subscriber: $XMPP_ARG" ;;
"")
    reply "You said: $XMPP_ARG" ;;
*)
    reply "I do not know /$XMPP_COMMAND; try /help." ;;
esac
