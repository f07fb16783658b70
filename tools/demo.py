# SPDX-License-Identifier: Apache-2.0
"""The mod_xmpp demo (run through tools/demo, which builds first).

Starts a private Prosody and an httpd with mod_xmpp and the example bot,
all on loopback, then logs a real XMPP client (slixmpp) in as "you" and
has a short conversation with the bot. With --stay, everything keeps
running until Ctrl-C.
"""

import argparse
import os
import sys
import time
import urllib.parse

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "t"))

from harness.httpd import Httpd  # noqa: E402
from harness.prosody import ProsodyServer  # noqa: E402
from harness.xmpp import XmppClient  # noqa: E402

EXAMPLES = os.path.join(TOP, "examples")


def say(text):
    print(text, flush=True)


def bot_conf():
    with open(os.path.join(EXAMPLES, "bot.conf")) as f:
        conf = f.read().replace("@EXAMPLES@", EXAMPLES)
    # the built xmpp-send, for the bot's /shout, before any installed one
    return conf + '\nSetEnv PATH "%s:/usr/local/bin:/usr/bin:/bin"\n' % TOP


def wait_connected(httpd, timeout=20):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if httpd.status().get("XMPPApp1State") == "connected":
            return True
        time.sleep(0.2)
    return False


def converse(httpd, you):
    say("\n== you subscribe to the bot; it accepts and asks back")
    you.subscribe("app@localhost")
    you.wait_available("app@localhost", timeout=10)
    say("   the bot is online: %s" % you.available_resources("app@localhost"))
    for line in ("/help", "/echo Hello <world> & all", "/time",
                 "/shout lunch is ready", "how are you?"):
        since = len(you.messages)
        you.send_message("app@localhost", line)
        msg = you.wait_message(timeout=10, since=since)
        say("   you: %-28s bot: %s" % (line, msg["body"]))
    say("\n== the app sends over HTTP (POST /xmpp-api/send_message)")
    since = len(you.messages)
    status, _, body = httpd.post("/xmpp-api/send_message", data=urllib.parse
                                 .urlencode({"jid": "you@localhost",
                                             "body": "Hi from the web app"})
                                 .encode())
    say("   HTTP %s %s" % (status, body.decode().strip()))
    msg = you.wait_message(timeout=10, since=since)
    say("   you received: %s" % msg["body"])


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--stay", action="store_true",
                    help="keep running until Ctrl-C")
    args = ap.parse_args()
    prosody = ProsodyServer(users=("app", "you"))
    httpd = None
    you = None
    try:
        prosody.start()
        # the bot answers chat messages: XMPPInboundServices stays at its
        # default, message (with a kind enabled and no handler mapped for
        # it, each such stanza would be logged as an error)
        httpd = Httpd(prosody=prosody, mpm="event", extra_conf=bot_conf())
        httpd.start()
        say("== httpd %s with mod_xmpp, Prosody on 127.0.0.1:%d"
            % (httpd.url("/"), prosody.port))
        if not wait_connected(httpd):
            say("the app did not connect; see %s" % httpd.error_log_file)
            return 1
        st = httpd.status()
        say("   app %s is %s (holder pid %s)"
            % (st["XMPPApp1JID"], st["XMPPApp1State"],
               st["XMPPApp1HolderPID"]))
        you = XmppClient("you@localhost", prosody.password("you"),
                         prosody.port, prosody.ca_file)
        converse(httpd, you)
        say("\n== status: %s" % httpd.url("/server-status"))
        for k, v in sorted(httpd.status().items()):
            if k.startswith("XMPPApp1"):
                say("   %s: %s" % (k, v))
        if args.stay:
            say("\nLog in with any XMPP client: you@localhost, password %s,"
                " server 127.0.0.1 port %d, CA %s (or accept the"
                " certificate). Ctrl-C stops everything."
                % (prosody.password("you"), prosody.port, prosody.ca_file))
            you.disconnect()
            you = None
            while True:
                time.sleep(3600)
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        if you:
            you.disconnect()
        if httpd:
            httpd.stop()
            httpd.cleanup()
        prosody.stop()
        prosody.cleanup()


if __name__ == "__main__":
    sys.exit(main())
