#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# env.cgi, slowly for a body that starts with "slow": keeps a request
# running while a test stops the server.
case "$XMPP_ARG" in
    slow*) sleep 1.5 ;;
esac
exec "$(dirname "$0")/env.cgi"
