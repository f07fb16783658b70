# SPDX-License-Identifier: Apache-2.0
"""`import webapp2` for App Engine code: the small part of webapp2 that
XMPP handlers use, from mod_xmpp_appengine.webapp (Debian has no webapp2)."""
import sys

from mod_xmpp_appengine import webapp as _impl

sys.modules[__name__] = _impl
