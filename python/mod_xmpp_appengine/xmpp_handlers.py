# SPDX-License-Identifier: Apache-2.0
"""App Engine's google.appengine.ext.webapp.xmpp_handlers."""

import logging

from mod_xmpp_appengine import webapp, xmpp

__all__ = ["BaseHandler", "CommandHandlerMixin", "CommandHandler"]


class BaseHandler(webapp.RequestHandler):
    """Parses the inbound POST into self.xmpp_message and calls
    message_received."""

    _error_message = "Oops. Something went wrong."
    xmpp_message = None

    def message_received(self, message):
        pass

    def handle_exception(self, exception, debug_mode):
        # as App Engine's python27 runtime (webapp2): the sender is told
        # first.  Then logged, but answered with an empty 200 rather than
        # App Engine's 500: mod_xmpp tries a 5xx handler again, which would
        # run the command again and send the sender this line once a try
        if self.xmpp_message:
            try:
                self.xmpp_message.reply(self._error_message)
            except xmpp.Error:
                logging.exception("could not send the error reply")
        logging.error("exception in the XMPP handler", exc_info=exception)
        self.response.status = 200
        self.response.clear()

    def post(self):
        try:
            self.xmpp_message = xmpp.Message(self.request.POST)
        except xmpp.InvalidMessageError as e:
            logging.error("Invalid XMPP request: Missing required field %s",
                          e.args[0])
            return
        self.message_received(self.xmpp_message)


class CommandHandlerMixin(object):
    """'/name arg' (or '\\name arg') calls name_command(message)."""

    def message_received(self, message):
        if message.command:
            handler = getattr(self, "%s_command" % (message.command,), None)
            if handler:
                handler(message)
            else:
                self.unhandled_command(message)
        else:
            self.text_message(message)

    def unhandled_command(self, message):
        message.reply("Unknown command")

    def text_message(self, message):
        pass


class CommandHandler(CommandHandlerMixin, BaseHandler):
    pass
