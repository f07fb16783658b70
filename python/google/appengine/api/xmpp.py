# SPDX-License-Identifier: Apache-2.0
"""google.appengine.api.xmpp for App Engine code on mod_xmpp: the same
module as mod_xmpp_appengine.xmpp (one set of exception classes)."""
import sys

from mod_xmpp_appengine import xmpp as _impl

sys.modules[__name__] = _impl
