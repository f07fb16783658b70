#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""ScoreBot: an App Engine XMPP app in the style of the book chapter this
project follows, ported with only its import lines changed (and Python 3
syntax).  Runs under mod_wsgi (this module's `application`) and as a CGI
script (run as a program: run_wsgi_app).  See scorebot.conf."""

import logging

logging.getLogger().setLevel(logging.INFO)

# the App Engine import lines, unchanged: mod_xmpp_appengine provides them
from google.appengine.api import xmpp
from google.appengine.ext import webapp
from google.appengine.ext.webapp import xmpp_handlers
from google.appengine.ext.webapp.util import run_wsgi_app


def get_score(user):
    # a real app would look this up in its datastore
    return sum(ord(c) for c in user) % 100


class ScoreHandler(xmpp_handlers.CommandHandler):
    def score_command(self, message=None):
        user = message.arg
        message.reply('Score for user %s: %d' % (user, get_score(user)))

    def stats_command(self, message=None):
        message.reply('The latest stats: 3 games, 7 players')

    def invite_command(self, message=None):
        xmpp.send_invite(message.arg)
        message.reply('Invited %s' % message.arg)


class SubscriptionHandler(webapp.RequestHandler):
    def post(self, command):
        user = self.request.POST.get('from')
        if command == 'subscribe':
            logging.info('ScoreBot: %s subscribed to the bot (subscribe)',
                         user)
        elif command == 'subscribed':
            logging.info('ScoreBot: %s accepted our invitation (subscribed)',
                         user)
        elif command == 'unsubscribe':
            logging.info('ScoreBot: %s unsubscribed (unsubscribe)', user)
        elif command == 'unsubscribed':
            logging.info('ScoreBot: %s removed us (unsubscribed)', user)


class PresenceHandler(webapp.RequestHandler):
    def post(self, command):
        user = self.request.POST.get('from')
        if command == 'probe':
            xmpp.send_presence(user, status='Ready to keep score',
                               presence_show=xmpp.PRESENCE_SHOW_CHAT)
        else:
            logging.info('ScoreBot: %s is %s (%s)', user, command,
                         self.request.POST.get('show', ''))


application = webapp.WSGIApplication([
    ('/_ah/xmpp/message/chat/', ScoreHandler),
    ('/_ah/xmpp/subscription/(.*)/', SubscriptionHandler),
    ('/_ah/xmpp/presence/(.*)/', PresenceHandler),
], debug=True)


def main():
    run_wsgi_app(application)


if __name__ == '__main__':
    main()
