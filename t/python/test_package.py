# SPDX-License-Identifier: Apache-2.0
"""The App Engine package alone: no httpd.  A fake holder listens on a
queue socket and answers PUTs as mod_xmpp's queue thread does; a fake
xmpp-api answers as mod_xmpp's HTTP API does."""

import http.server
import io
import json
import logging
import socket
import threading
import urllib.parse

import pytest

from google.appengine.api import xmpp
from google.appengine.ext import webapp
from google.appengine.ext.webapp import xmpp_handlers
from mod_xmpp_appengine import transport
import webapp2

APP = "app@localhost"


class FakeHolder(object):
    def __init__(self, path, answer="OK 1", close_after=False):
        self.items = []
        self.answer = answer
        self.close_after = close_after
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(5)
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._conn, args=(c,), daemon=True).start()

    def _conn(self, c):
        buf = b""
        while True:
            while b"\n" not in buf:
                d = c.recv(65536)
                if not d:
                    return
                buf += d
            head, _, buf = buf.partition(b"\n")
            n = int(head.split()[1])
            while len(buf) < n:
                buf += c.recv(65536)
            self.items.append(buf[:n].decode())
            buf = buf[n:]
            c.sendall(self.answer.encode() + b"\n")
            if self.close_after:  # as a holder that restarted
                c.close()
                return


@pytest.fixture
def queue(tmp_path, monkeypatch):
    monkeypatch.setenv("XMPP_QUEUE", str(tmp_path))
    monkeypatch.setenv("XMPP_JID", APP)
    monkeypatch.setenv("XMPP_RESOURCE", "bot")
    monkeypatch.delenv("XMPP_API_URL", raising=False)
    transport._local.conn = None
    h = FakeHolder(str(tmp_path / "queue.sock"))
    yield h
    h.sock.close()


# ------------------------------------------------------------ constants

def test_constants():
    assert (xmpp.NO_ERROR, xmpp.INVALID_JID, xmpp.OTHER_ERROR) == (0, 1, 2)
    assert xmpp.MESSAGE_TYPE_NONE == ""
    assert [xmpp.MESSAGE_TYPE_CHAT, xmpp.MESSAGE_TYPE_ERROR,
            xmpp.MESSAGE_TYPE_GROUPCHAT, xmpp.MESSAGE_TYPE_HEADLINE,
            xmpp.MESSAGE_TYPE_NORMAL] == ["chat", "error", "groupchat",
                                          "headline", "normal"]
    assert xmpp.PRESENCE_TYPE_AVAILABLE == ""
    assert xmpp.PRESENCE_TYPE_UNAVAILABLE == "unavailable"
    assert xmpp.PRESENCE_TYPE_PROBE == "probe"
    assert [xmpp.PRESENCE_SHOW_NONE, xmpp.PRESENCE_SHOW_AWAY,
            xmpp.PRESENCE_SHOW_CHAT, xmpp.PRESENCE_SHOW_DND,
            xmpp.PRESENCE_SHOW_XA] == ["", "away", "chat", "dnd", "xa"]
    assert xmpp.MAX_STATUS_MESSAGE_SIZE == 1024
    for name in ["InvalidJidError", "InvalidTypeError", "InvalidXmlError",
                 "NoBodyError", "InvalidMessageError", "InvalidShowError",
                 "InvalidStatusError", "NondefaultModuleError"]:
        assert issubclass(getattr(xmpp, name), xmpp.Error)
    assert issubclass(xmpp.Error, Exception)


def test_import_paths_are_one_module():
    from mod_xmpp_appengine import xmpp as a, xmpp_handlers as b, webapp as c
    from google.appengine.ext import webapp2 as d
    from google.appengine.ext.webapp.util import run_wsgi_app
    assert xmpp is a and xmpp_handlers is b and webapp2 is c and d is c
    assert webapp.RequestHandler is c.RequestHandler
    assert run_wsgi_app is c.run_wsgi_app


# -------------------------------------------------------------- Message

@pytest.mark.parametrize("body,command,arg", [
    ("/score druidjane", "score", "druidjane"),
    ("\\stats", "stats", ""),
    ("/score   druidjane  x  ", "score", "druidjane  x"),
    ("  hello there  ", None, "hello there"),
    ("/", "", ""),
    ("\\a b", "a", "b"),
    (" /notacommand", None, "/notacommand"),
])
def test_message_command_arg(body, command, arg):
    m = xmpp.Message({"from": "u@x/r", "to": APP, "body": body})
    assert (m.command, m.arg, m.body, m.sender, m.to) == (
        command, arg, body, "u@x/r", APP)


@pytest.mark.parametrize("missing", ["from", "to", "body"])
def test_message_missing_field(missing):
    v = {"from": "u@x/r", "to": APP, "body": "b"}
    del v[missing]
    with pytest.raises(xmpp.InvalidMessageError) as e:
        xmpp.Message(v)
    assert e.value.args[0] == missing


def test_reply_goes_to_full_sender_from_address_written_to(queue):
    m = xmpp.Message({"from": "u@x/r", "to": APP, "body": "hi"})
    assert m.reply("a & b") == [0]
    item = queue.items[-1]
    assert item.startswith("MX1 stanza\n<message xmlns=\"jabber:client\" "
                           "from=\"app@localhost\" to=\"u@x/r\" type=\"chat\"")
    assert "<body>a &amp; b</body>" in item


# ---------------------------------------------------------- send_message

def test_send_message_one_jid_returns_int(queue):
    assert xmpp.send_message("a@x", "hello") == 0
    assert 'from="app@localhost/bot" to="a@x"' in queue.items[-1]


def test_send_message_list_returns_list(queue):
    assert xmpp.send_message(["a@x", "bad@@j"], "hello") == [0, 1]
    assert len(queue.items) == 1


def test_no_body_before_jids(queue):
    for jids in ("a@x", [], None, ["bad@@j"]):
        with pytest.raises(xmpp.NoBodyError):
            xmpp.send_message(jids, "")
    assert queue.items == []


def test_invalid_jid_only_when_none_valid(queue):
    with pytest.raises(xmpp.InvalidJidError):
        xmpp.send_message("bad@@j", "x")
    with pytest.raises(xmpp.InvalidJidError):
        xmpp.send_message(["bad@@j", "a b@x"], "x")
    with pytest.raises(xmpp.InvalidJidError):
        xmpp.send_message([], "x")
    with pytest.raises(xmpp.InvalidJidError):
        xmpp.send_message("a@x", "x", from_jid="other@localhost")
    assert queue.items == []


def test_message_types(queue):
    with pytest.raises(xmpp.InvalidTypeError):
        xmpp.send_message("a@x", "x", message_type="shout")
    assert xmpp.send_message("a@x", "x", message_type="") == 0
    assert "type=" not in queue.items[-1].split(">")[0]
    assert xmpp.send_message("a@x", "x", message_type="headline") == 0
    assert 'type="headline"' in queue.items[-1]


def test_raw_xml(queue):
    with pytest.raises(xmpp.InvalidXmlError):
        xmpp.send_message("a@x", "<body>x", raw_xml=True)
    assert xmpp.send_message("a@x", "<body>x</body><b/>", raw_xml=True) == 0
    assert "><body>x</body><b/><origin-id" in queue.items[-1]


def test_refused_by_holder_is_other_error(queue):
    queue.answer = "BAD not a valid stanza"
    assert xmpp.send_message(["a@x", "bad@@j"], "x") == [2, 1]


# ------------------------------------------------------ invite, presence

def test_send_invite(queue):
    assert xmpp.send_invite("a@x") is None
    assert 'to="a@x" type="subscribe"' in queue.items[-1]
    with pytest.raises(xmpp.InvalidJidError):
        xmpp.send_invite("")
    with pytest.raises(xmpp.InvalidJidError):
        xmpp.send_invite("bad@@j")


def test_send_presence(queue):
    xmpp.send_presence("a@x", status="busy < 1", presence_show="dnd")
    assert queue.items[-1].endswith(
        "><show>dnd</show><status>busy &lt; 1</status></presence>")
    xmpp.send_presence("a@x", presence_type=xmpp.PRESENCE_TYPE_PROBE,
                       status="x")
    assert 'type="probe"' in queue.items[-1] and "status" not in \
        queue.items[-1]
    xmpp.send_presence("subscribers", status="hi")
    assert queue.items[-1].startswith("MX1 subscribers\n")
    assert " to=" not in queue.items[-1]
    with pytest.raises(xmpp.InvalidTypeError):
        xmpp.send_presence("a@x", presence_type="away")
    with pytest.raises(xmpp.InvalidShowError):
        xmpp.send_presence("a@x", presence_show="busy")
    with pytest.raises(xmpp.InvalidStatusError):
        xmpp.send_presence("a@x", status="x" * 1025)
    xmpp.send_presence("a@x", status="é" * 1024)
    with pytest.raises(xmpp.InvalidJidError):
        xmpp.send_presence("bad@@j")


@pytest.mark.parametrize("jid,ok", [
    ("a@x", True), ("x", True), ("a@x/r r", True), ("jürgen@müller.example",
                                                    True),
    ("u@[2001:db8::1]", True), ("bad@@j", False), ("a b@x", False),
    ("a@x/", False), ("@x", False), ("a@", False), ("a@x y", False),
    ("a:b@x", False), ("a@" + "l" * 64 + ".x", False), ("a@x\n", False),
])
def test_jid_rules(jid, ok):
    assert transport.valid_jid(jid) is ok


# ------------------------------------------------------------ HTTP API

class FakeApi(http.server.BaseHTTPRequestHandler):
    presence = {"a@x": (True, "away"), "b@x": (False, "")}
    calls = []

    def log_message(self, *a):
        pass

    def _answer(self, code, obj):
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _params(self, query):
        return urllib.parse.parse_qs(query, keep_blank_values=True)

    def do_GET(self):
        path, _, q = self.path.partition("?")
        p = self._params(q)
        FakeApi.calls.append((path, p))
        jids = p["jid"]
        out = []
        for j in jids:
            valid = transport.valid_jid(j)
            av, show = self.presence.get(j, (False, ""))
            out.append({"jid": j, "valid": valid, "available": av,
                        "show": show})
        if len(jids) == 1:
            if not out[0]["valid"]:
                return self._answer(400, {"error": "InvalidJidError",
                                          "message": "bad"})
            return self._answer(200, out[0])
        self._answer(200, {"presences": out})

    def do_POST(self):
        n = int(self.headers["Content-Length"])
        p = self._params(self.rfile.read(n).decode())
        FakeApi.calls.append((self.path, p))
        if not p.get("body", [""])[0] and self.path.endswith("send_message"):
            return self._answer(400, {"error": "NoBodyError", "message": ""})
        jids = p["jid"]
        st = ["NO_ERROR" if transport.valid_jid(j) else "INVALID_JID"
              for j in jids]
        if all(s == "INVALID_JID" for s in st):
            return self._answer(400, {"error": "InvalidJidError",
                                      "message": "bad"})
        self._answer(200, {"jids": jids, "statuses": st})


@pytest.fixture
def api(monkeypatch):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeApi)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    monkeypatch.delenv("XMPP_QUEUE", raising=False)
    monkeypatch.setenv("XMPP_API_URL",
                       "http://127.0.0.1:%d/xmpp-api" % srv.server_port)
    FakeApi.calls = []
    yield FakeApi
    srv.shutdown()
    srv.server_close()


def test_http_send_message(api):
    assert xmpp.send_message("a@x", "hi") == 0
    assert xmpp.send_message(["a@x", "bad@@j"], "hi") == [0, 1]
    with pytest.raises(xmpp.InvalidJidError):
        xmpp.send_message("bad@@j", "hi")
    path, p = api.calls[1]
    assert path == "/xmpp-api/send_message"
    assert p["jid"] == ["a@x", "bad@@j"] and p["message_type"] == ["chat"]


def test_http_get_presence(api):
    assert xmpp.get_presence("a@x") is True
    assert xmpp.get_presence("a@x", get_show=True) == (True, "away")
    assert xmpp.get_presence("b@x", get_show=True) == (False, "")
    assert xmpp.get_presence(["a@x", "b@x", "bad@@j"]) == [
        (True, "away", True), (False, "", True), (False, "", False)]
    assert xmpp.get_presence(["bad@@j"]) == [(False, "", False)]
    with pytest.raises(xmpp.InvalidJidError):
        xmpp.get_presence("bad@@j")
    with pytest.raises(xmpp.InvalidJidError):
        xmpp.get_presence("")


def test_http_presence_type_available(api):
    xmpp.send_presence("a@x")
    assert api.calls[-1][1]["presence_type"] == ["available"]


def test_no_transport(monkeypatch):
    monkeypatch.delenv("XMPP_QUEUE", raising=False)
    monkeypatch.delenv("XMPP_API_URL", raising=False)
    with pytest.raises(xmpp.Error):
        xmpp.send_message("a@x", "hi")


# -------------------------------------------------- webapp and handlers

def call(app, path, fields=None, method="POST"):
    body = urllib.parse.urlencode(fields or {}).encode()
    env = {"REQUEST_METHOD": method, "PATH_INFO": path, "SERVER_NAME": "h",
           "SERVER_PORT": "80", "wsgi.url_scheme": "http",
           "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body)),
           "CONTENT_TYPE": "application/x-www-form-urlencoded",
           "QUERY_STRING": ""}
    out = {}

    def start(status, headers):
        out["status"] = status
    data = b"".join(app(env, start))
    return out["status"], data


def test_routes_groups_become_arguments():
    seen = []

    class Sub(webapp.RequestHandler):
        def post(self, command):
            seen.append((command, self.request.get("from"),
                         self.request.get("nothing")))
            self.response.out.write("ok")

    app = webapp2.WSGIApplication(
        [("/_ah/xmpp/subscription/(.*)/", Sub)], debug=True)
    assert call(app, "/_ah/xmpp/subscription/subscribe/",
                {"from": "u@x"}) == ("200 OK", b"ok")
    assert seen == [("subscribe", "u@x", "")]
    assert call(app, "/other")[0].startswith("404")
    assert call(app, "/_ah/xmpp/subscription/x/", method="GET")[0] \
        .startswith("405")


def test_error_and_empty_answer():
    class H(webapp.RequestHandler):
        def post(self):
            self.response.out.write("x")
            self.error(403)
    app = webapp.WSGIApplication([("/", H)])
    assert call(app, "/") == ("403 Forbidden", b"")


class ScoreBot(xmpp_handlers.CommandHandler):
    def score_command(self, message=None):
        message.reply("Score for user %s: 3" % message.arg)

    def stats_command(self, message=None):
        message.reply("The latest stats: ok")

    def boom_command(self, message=None):
        raise RuntimeError("boom")


def test_command_handler(queue):
    app = webapp.WSGIApplication([("/_ah/xmpp/message/chat/", ScoreBot)])
    path = "/_ah/xmpp/message/chat/"
    f = {"from": "u@x/r", "to": APP}
    for body, reply in [("/score druidjane",
                         "Score for user druidjane: 3"),
                        ("\\stats", "The latest stats: ok"),
                        ("/unknown", "Unknown command"),
                        ("/boom", "Oops. Something went wrong.")]:
        assert call(app, path, dict(f, body=body)) == ("200 OK", b"")
        assert "<body>%s</body>" % reply in queue.items[-1]
    n = len(queue.items)
    assert call(app, path, dict(f, body="plain text")) == ("200 OK", b"")
    assert len(queue.items) == n


def test_missing_field_logged_empty_200(queue, caplog):
    app = webapp.WSGIApplication([("/m", ScoreBot)])
    with caplog.at_level(logging.ERROR):
        assert call(app, "/m", {"from": "u@x", "body": "/score a"}) == \
            ("200 OK", b"")
    assert "Invalid XMPP request: Missing required field to" in caplog.text
    assert queue.items == []


def test_queue_from_request_environ(tmp_path, monkeypatch):
    # under mod_wsgi XMPP_QUEUE comes in the request's environ
    monkeypatch.delenv("XMPP_QUEUE", raising=False)
    monkeypatch.delenv("XMPP_API_URL", raising=False)
    transport._local.conn = None
    h = FakeHolder(str(tmp_path / "queue.sock"))
    app = webapp.WSGIApplication([("/m", ScoreBot)])
    env_extra = {"XMPP_QUEUE": str(tmp_path), "XMPP_JID": APP,
                 "XMPP_RESOURCE": "bot"}
    orig = app.__call__

    def wrapped(env, start):
        env.update(env_extra)
        return orig(env, start)
    assert call(wrapped, "/m", {"from": "u@x", "to": APP,
                                "body": "/stats"})[0] == "200 OK"
    assert "The latest stats" in h.items[-1]
    h.sock.close()


FAKE_XMPP_SEND = r"""#!/bin/sh
# records its arguments and standard input; answers as xmpp-send does
echo "$*" >> "$LOG"
if [ "$1" = get-presence ]; then
    shift
    for j in "$@"; do
        case "$j" in
            a@x) echo "$j available away" ;;
            *) echo "$j unavailable" ;;
        esac
    done
    exit 0
fi
cat >> "$LOG"; echo >> "$LOG"
for last; do :; done
echo "$last NO_ERROR"
"""


@pytest.fixture
def no_holder(tmp_path, monkeypatch):
    """A queue directory where no holder listens, and a fake xmpp-send."""
    exe = tmp_path / "xmpp-send"
    exe.write_text(FAKE_XMPP_SEND)
    exe.chmod(0o755)
    monkeypatch.setenv("XMPP_QUEUE", str(tmp_path / "q"))
    monkeypatch.setenv("XMPP_JID", APP)
    monkeypatch.setenv("XMPP_SEND", str(exe))
    monkeypatch.setenv("LOG", str(tmp_path / "log"))
    monkeypatch.delenv("XMPP_API_URL", raising=False)
    transport._local.conn = None
    return tmp_path / "log"


def test_no_holder_falls_back_to_xmpp_send(no_holder):
    assert xmpp.send_message(["a@x", "bad@@j"], "hi there",
                             message_type="headline") == [0, 1]
    xmpp.send_presence("a@x", status="s", presence_show="away")
    log = no_holder.read_text()
    assert "message --type headline a@x\nhi there\n" in log
    assert "presence --type available --show away --status s a@x" in log
    assert "bad@@j" not in log


def test_get_presence_through_xmpp_send(no_holder):
    assert xmpp.get_presence("a@x", get_show=True) == (True, "away")
    assert xmpp.get_presence("b@x") is False
    assert xmpp.get_presence(["a@x", "bad@@j", "b@x"]) == [
        (True, "away", True), (False, "", False), (False, "", True)]
    assert "get-presence a@x b@x" in no_holder.read_text()


def test_kept_connection_closed_by_holder(queue):
    queue.close_after = True
    assert xmpp.send_message("a@x", "one") == 0
    assert xmpp.send_message("a@x", "two") == 0
    assert [i.count("<body>") for i in queue.items] == [1, 1]
    assert "<body>two</body>" in queue.items[-1]


def test_full_queue_is_other_error(queue):
    queue.answer = "FULL 100000 100000"
    assert xmpp.send_message(["a@x", "b@x"], "x") == [2, 2]


def test_component_from_addresses(queue, monkeypatch):
    monkeypatch.setenv("XMPP_JID", "bots.localhost")
    m = xmpp.Message({"from": "u@x/r", "to": "score@bots.localhost",
                      "body": "/x"})
    assert m.reply("hi") == [0]
    assert 'from="score@bots.localhost/bot" to="u@x/r"' in queue.items[-1]
    assert xmpp.send_message("u@x", "hi", from_jid="bots.localhost") == 0
    assert 'from="bots.localhost/bot"' in queue.items[-1]
    with pytest.raises(xmpp.InvalidJidError):
        xmpp.send_message("u@x", "hi", from_jid="score@other.localhost")


def test_client_from_addresses(queue):
    assert xmpp.send_message("u@x", "hi", from_jid="APP@localhost") == 0
    assert xmpp.send_message("u@x", "hi", from_jid=APP + "/bot") == 0
    with pytest.raises(xmpp.InvalidJidError):
        xmpp.send_message("u@x", "hi", from_jid=APP + "/other")
