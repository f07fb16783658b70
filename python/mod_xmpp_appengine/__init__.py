# SPDX-License-Identifier: Apache-2.0
"""App Engine's XMPP API for mod_xmpp (Apache httpd).

Submodules: xmpp (google.appengine.api.xmpp), xmpp_handlers
(google.appengine.ext.webapp.xmpp_handlers), webapp (the small part of
webapp/webapp2 that XMPP handlers use, on WebOb) and transport (how sends
reach mod_xmpp: its queue socket or its HTTP API)."""

from mod_xmpp_appengine.transport import configure  # noqa: F401

__version__ = "0.1.0"
