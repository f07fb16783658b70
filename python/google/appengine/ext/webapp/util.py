# SPDX-License-Identifier: Apache-2.0
"""google.appengine.ext.webapp.util: run_wsgi_app (a CGI entry point)."""
from mod_xmpp_appengine.webapp import run_wsgi_app  # noqa: F401
