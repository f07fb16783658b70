# SPDX-License-Identifier: Apache-2.0
"""google.appengine.ext.webapp.xmpp_handlers on mod_xmpp."""
import sys

from mod_xmpp_appengine import xmpp_handlers as _impl

sys.modules[__name__] = _impl
