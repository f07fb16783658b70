#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""The ScoreBot example (examples/scorebot.py, unchanged) with a few more
commands for t/test_appengine.py: a handler that raises, and the values
send_message and get_presence return, sent back to the sender."""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(HERE, "..", "..", "python"),
                os.path.join(HERE, "..", "..", "examples")]

from scorebot import (PresenceHandler, ScoreHandler,  # noqa: E402
                      SubscriptionHandler, run_wsgi_app, webapp, xmpp)


class TestBot(ScoreHandler):
    def boom_command(self, message=None):
        raise RuntimeError("the handler failed on purpose")

    def sends_command(self, message=None):
        one = xmpp.send_message(message.sender, "to one JID")
        two = xmpp.send_message([message.sender, "bad@@j"], "to two JIDs")
        try:
            xmpp.send_message([], "")
            nobody = "no error"
        except xmpp.NoBodyError:
            nobody = "NoBodyError"
        message.reply("sends: %r %r %s" % (one, two, nobody))

    def presence_command(self, message=None):
        bare = message.sender.split("/")[0]
        message.reply("presence: %r %r %r" % (
            xmpp.get_presence(bare), xmpp.get_presence(bare, get_show=True),
            xmpp.get_presence([bare, "bad@@j", "nobody@localhost"])))


application = webapp.WSGIApplication([
    ("/_ah/xmpp/message/chat/", TestBot),
    ("/_ah/xmpp/subscription/(.*)/", SubscriptionHandler),
    ("/_ah/xmpp/presence/(.*)/", PresenceHandler),
], debug=True)

if __name__ == "__main__":
    run_wsgi_app(application)
