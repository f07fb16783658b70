# SPDX-License-Identifier: Apache-2.0
"""google.appengine.ext.webapp2: the same as the top-level webapp2."""
import sys

from mod_xmpp_appengine import webapp as _impl

sys.modules[__name__] = _impl
