# SPDX-License-Identifier: Apache-2.0
"""The part of App Engine's webapp / webapp2 that XMPP handlers use, on
WebOb (Debian has python3-webob but no webapp2): RequestHandler,
WSGIApplication with regex routes, and run_wsgi_app for CGI."""

import logging
import re
import threading
import traceback

import webob

__all__ = ["Request", "Response", "RequestHandler", "WSGIApplication",
           "run_wsgi_app", "current_environ"]

_local = threading.local()


def current_environ():
    """The WSGI environ of the request this thread is serving, or None.
    Under mod_wsgi mod_xmpp's variables (XMPP_QUEUE, XMPP_JID...) are in
    the environ of each request, not in os.environ."""
    return getattr(_local, "environ", None)


class Request(webob.Request):
    def get(self, argument_name, default_value="", allow_multiple=False):
        # webapp's get: query and form together, '' when absent
        values = self.params.getall(argument_name)
        if allow_multiple:
            return [_text(v) for v in values]
        if not values:
            return default_value
        return _text(values[0])

    def get_all(self, argument_name, default_value=None):
        values = self.params.getall(argument_name)
        if not values:
            return [] if default_value is None else default_value
        return [_text(v) for v in values]

    def arguments(self):
        return list(dict.fromkeys(self.params.keys()))


def _text(v):
    # a multipart part with a filename comes as a FieldStorage
    return v if isinstance(v, str) else getattr(v, "value", v)


class Response(webob.Response):
    """webapp's response: writes through .out (webapp) or .write
    (webapp2). Starts empty, so a handler that writes nothing answers an
    empty 200, which mod_xmpp takes as 'no reply'."""

    default_content_type = "text/html"
    default_charset = "utf-8"

    @property
    def out(self):
        return self

    def clear(self):
        self.body = b""

    def set_status(self, code, message=None):
        self.status = "%d %s" % (code, message) if message else code


class RequestHandler(object):
    def __init__(self, request=None, response=None):
        self.request = request
        self.response = response
        self.app = None

    def initialize(self, request, response):
        self.request = request
        self.response = response

    def error(self, code):
        self.response.status = code
        self.response.clear()

    def redirect(self, uri, permanent=False):
        self.response.status = 301 if permanent else 302
        self.response.location = uri
        self.response.clear()

    def handle_exception(self, exception, debug_mode):
        # webapp's default: log, answer 500, the traceback only in debug
        self.error(500)
        logging.exception(exception)
        if debug_mode:
            self.response.content_type = "text/plain"
            self.response.write(traceback.format_exc())


class WSGIApplication(object):
    """routes: (regex, RequestHandler subclass) pairs, tried in order; the
    regex must match the whole path; its groups become the arguments of
    get/post/..., as in webapp."""

    def __init__(self, url_mapping, debug=False, config=None):
        self.debug = debug
        self.config = config or {}
        self._routes = []
        for route in url_mapping:
            regex, handler = route[0], route[1]
            if not regex.startswith("^"):
                regex = "^" + regex
            if not regex.endswith("$"):
                regex += "$"
            self._routes.append((re.compile(regex), handler))

    def __call__(self, environ, start_response):
        # a CGI whose whole path is its SCRIPT_NAME gets no PATH_INFO
        environ.setdefault("PATH_INFO", "")
        request = Request(environ)
        response = Response()
        response.body = b""
        _local.environ = environ
        try:
            self._dispatch(request, response)
        finally:
            _local.environ = None
        return response(environ, start_response)

    def _dispatch(self, request, response):
        for regex, cls in self._routes:
            # the whole path, as App Engine matched it (SCRIPT_NAME too)
            m = regex.match(request.path or "/")
            if m:
                break
        else:
            response.status = 404
            return
        handler = cls()
        handler.initialize(request, response)
        handler.app = self
        method = request.method.lower()
        fn = getattr(handler, method, None) if method in (
            "get", "post", "head", "options", "put", "delete",
            "trace", "patch") else None
        if fn is None:
            response.status = 405
            return
        groups = m.groups()
        try:
            fn(*groups)
        except Exception as e:  # the handler decides what the user sees
            handler.handle_exception(e, self.debug)


def run_wsgi_app(application):
    """Serve one request as a CGI script (webapp.util.run_wsgi_app)."""
    from wsgiref.handlers import CGIHandler
    CGIHandler().run(application)


