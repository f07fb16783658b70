# SPDX-License-Identifier: Apache-2.0
"""google.appengine.ext.webapp for App Engine code on mod_xmpp: the small
part of webapp that XMPP handlers use (mod_xmpp_appengine.webapp)."""
from mod_xmpp_appengine.webapp import *  # noqa: F401,F403
from mod_xmpp_appengine.webapp import __all__  # noqa: F401
