# SPDX-License-Identifier: Apache-2.0
"""Receiving: inbound stanzas become POST requests to /_ah/xmpp/... .

A real client (slixmpp, through the private Prosody) writes to the app;
the handler is t/cgi-bin/inbound.cgi (mod_cgi under prefork, mod_cgid
under the threaded MPMs) or t/lua/inbound.lua (mod_lua).  Both write what
they received (variables, raw body) into a dump directory and answer as
the message's command asks (see the scripts), so every test checks both
sides: what the handler got, and what came back to the client.
"""

import base64
import email.parser
import email.policy
import glob
import json
import os
import re
import secrets
import signal
import time
import xml.etree.ElementTree as ET

import pytest

from harness import util
from harness.httpd import Httpd, T_DIR, need_module
from harness.prosody import ProsodyServer
from harness.xmpp import XmppClient

APP = "app@localhost"
APP_FULL = "app@localhost/bot"
# The harness's ServerName: the Host of every injected request.
SERVER_NAME = "127.0.0.1"
INTERNAL_IP = "0.1.0.10"
PREFIX = "/_ah/xmpp/"
CGI = os.path.join(T_DIR, "cgi-bin", "inbound.cgi")
LUA = os.path.join(T_DIR, "lua", "inbound.lua")
ALL_SERVICES = "message error subscribe presence"
INBOUND_PATHS = [
    "message/chat/", "error/",
    "subscription/subscribe/", "subscription/subscribed/",
    "subscription/unsubscribe/", "subscription/unsubscribed/",
    "presence/available/", "presence/unavailable/", "presence/probe/",
]
XML_NS = "{http://www.w3.org/XML/1998/namespace}"
STANZAS_NS = "urn:ietf:params:xml:ns:xmpp-stanzas"

# (mpm, handler): mod_cgi is what the harness loads under prefork,
# mod_cgid under event and worker.
HANDLERS = [("prefork", "cgi"), ("event", "cgid"), ("worker", "cgid"),
            ("prefork", "lua"), ("event", "lua")]
HANDLER_IDS = ["%s-%s" % h for h in HANDLERS]


def token():
    return secrets.token_hex(4)


# ------------------------------------------------------------- the dumps

def parse_multipart(body, content_type):
    """Split a multipart/form-data body strictly (CRLF everywhere, one
    closing delimiter at the very end).  Returns a list of
    (name, content type, value bytes) in order."""
    m = re.fullmatch(r"multipart/form-data; boundary=([A-Za-z0-9'()+_,./:=?-]{1,70})",
                     content_type)
    assert m, "not multipart/form-data with a boundary: %r" % content_type
    delim = b"--" + m.group(1).encode()
    assert body.startswith(delim + b"\r\n"), body[:80]
    assert body.endswith(b"\r\n" + delim + b"--\r\n"), body[-80:]
    inner = body[len(delim) + 2:-(len(delim) + 6)]
    parts = []
    for raw in inner.split(b"\r\n" + delim + b"\r\n"):
        head, sep, value = raw.partition(b"\r\n\r\n")
        assert sep, "part without a blank line: %r" % raw[:80]
        headers = {}
        for line in head.decode("ascii").split("\r\n"):
            key, _, val = line.partition(": ")
            headers[key.lower()] = val
        cd = re.fullmatch(r'form-data; name="([a-z]+)"',
                          headers.get("content-disposition", ""))
        assert cd, "bad Content-Disposition: %r" % headers
        parts.append((cd.group(1), headers.get("content-type"), value))
    # An independent parser (the email package) must read the same.
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    assert msg.is_multipart()
    other = [(p.get_param("name", header="content-disposition"),
              p.get_content_type(), p.get_payload(decode=True))
             for p in msg.iter_parts()]
    assert [(n, v) for n, _, v in parts] == [(n, v) for n, _, v in other]
    return parts


class Dump:
    """One request as the handler saw it."""

    def __init__(self, record):
        self.record = record
        self.env = record["env"]
        self.time = record["time"]
        if "body_b64" in record:
            self.raw = base64.b64decode(record["body_b64"])
            self.handler = "cgi"
        else:
            self.raw = bytes.fromhex(record["body_hex"])
            self.handler = "lua"
        self.uri = self.env.get("REQUEST_URI")
        self.path = (self.uri[len(PREFIX):]
                     if self.uri and self.uri.startswith(PREFIX) else self.uri)
        self._parts = None

    @property
    def parts(self):
        if self._parts is None:
            self._parts = parse_multipart(self.raw, self.env["CONTENT_TYPE"])
        return self._parts

    def names(self):
        return [n for n, _, _ in self.parts]

    def field(self, name):
        """A part's value as text, or None when there is no such part."""
        for n, _, v in self.parts:
            if n == name:
                return v.decode("utf-8")
        return None

    def ctype(self, name):
        for n, t, _ in self.parts:
            if n == name:
                return t
        return None

    def stanza(self):
        return ET.fromstring(self.field("stanza"))

    def __repr__(self):
        return "<Dump %s %s %r>" % (self.handler, self.uri,
                                    {k: v for k, v in self.env.items()
                                     if k.startswith("XMPP_")})


class Dumps:
    """The dump directory of one httpd: created under its ServerRoot and
    given to www-data, the user CGIs and mod_lua handlers run as."""

    def __init__(self, h):
        self.dir = os.path.join(h.directory, "dump")
        os.mkdir(self.dir, 0o755)
        util.chown(self.dir, "www-data")

    def all(self):
        out = []
        for name in glob.glob(os.path.join(self.dir, "*.json")):
            with open(name, encoding="utf-8") as f:
                out.append(Dump(json.load(f)))
        return sorted(out, key=lambda d: d.time)

    def matching(self, predicate):
        return [d for d in self.all() if predicate(d)]

    def with_token(self, tok):
        """Requests whose XMPP_ARG or raw body mention `tok`."""
        return self.matching(lambda d: tok in d.env.get("XMPP_ARG", "")
                             or tok.encode() in d.raw)

    def wait(self, predicate, count=1, timeout=10.0, what="dumps"):
        found = []

        def check():
            found[:] = self.matching(predicate)
            return len(found) >= count
        try:
            util.wait_for(check, timeout, 0.05, what)
        except TimeoutError:
            raise AssertionError("%d of %d %s after %.0fs; all dumps: %r" % (
                len(found), count, what, timeout, self.all())) from None
        return list(found)

    def wait_token(self, tok, count=1, timeout=10.0):
        return self.wait(lambda d: tok in d.env.get("XMPP_ARG", "")
                         or tok.encode() in d.raw, count, timeout,
                         "requests with %r" % tok)


# -------------------------------------------------------------- the app

def inbound_conf(dump_dir, handler="cgi", services=ALL_SERVICES, extra=""):
    """Config text mapping every inbound path to the dump handler."""
    lines = ["XMPPInboundServices %s" % services if services else "",
             'SetEnv MX_DUMP_DIR "%s"' % dump_dir]
    if handler == "lua":
        lines.append('LuaMapHandler "^/_ah/xmpp/(.*)$" "%s"' % LUA)
    else:
        lines.append('ScriptAliasMatch "^/_ah/xmpp/(.*)$" "%s"' % CGI)
    lines += ["<Location /_ah/xmpp/>", "    Require xmpp-internal",
              "</Location>", extra]
    return "\n".join(lines) + "\n"


def wait_connected(h, timeout=20.0):
    util.wait_for(lambda: h.status().get("XMPPApp1State") == "connected",
                  timeout, 0.1, "the app to connect")


def start_app(httpd_factory, mpm="event", handler="cgi",
              services=ALL_SERVICES, extra="", log_level="info"):
    """An httpd whose app posts inbound stanzas to the dump handler;
    started and connected.  Returns (httpd, dumps)."""
    h = httpd_factory(mpm=mpm, log_level=log_level)
    dumps = Dumps(h)
    h.write_config(extra_conf=inbound_conf(dumps.dir, handler, services,
                                           extra))
    h.start()
    wait_connected(h)
    return h, dumps


def from_app(m):
    return m["from"] == APP_FULL


def warm_up(client, timeout=15.0):
    """Make sure the app's session is available to its bare JID (its
    initial presence processed by the server): a plain message gets a
    reply.  Returns the index in client.messages after that reply."""
    deadline = time.monotonic() + timeout
    while True:
        tok = "warm-up " + token()
        since = len(client.messages)
        client.send_message(APP, tok)
        try:
            client.wait_message(
                5.0, lambda m: from_app(m) and (tok in (m["body"] or "")
                                                or m["type"] == "error"),
                since=since)
        except TimeoutError:
            pass
        else:
            with client.lock:
                if any(from_app(m) and tok in (m["body"] or "")
                       for m in client.messages[since:]):
                    return len(client.messages)
        if time.monotonic() > deadline:
            raise AssertionError("the app never answered a plain message")
        time.sleep(0.2)


def reply_to(client, text, since=0, timeout=10.0):
    """The app's chat message whose body contains `text`."""
    return client.wait_message(
        timeout, lambda m: from_app(m) and text in (m["body"] or ""),
        since=since)


def access_lines(h, path):
    pattern = re.compile(r'^%s - - \[[^\]]+\] "POST %s HTTP/1\.0" (\d{3}) '
                         % (re.escape(INTERNAL_IP), re.escape(PREFIX + path)),
                         re.M)
    return pattern.findall(h.access_log())


def assert_no_message_from_app(client, since, exclude, settle=0.5):
    """After `settle` seconds, the app sent nothing since index `since`
    but the messages in `exclude` (a list of records)."""
    time.sleep(settle)
    with client.lock:
        extra = [m for m in client.messages[since:]
                 if m["from"].startswith(APP) and m not in exclude]
    assert extra == [], "unexpected messages from the app: %r" % extra


def raw_message(to, body=None, mtype="chat", mid=None, children=""):
    attrs = "to='%s'" % to
    if mtype:
        attrs += " type='%s'" % mtype
    if mid:
        attrs += " id='%s'" % mid
    inner = ("<body>%s</body>" % body if body is not None else "") + children
    return "<message %s>%s</message>" % (attrs, inner)


# ==================================================================== tests

# A body with XML's special characters, non-ASCII text (2-, 3- and 4-byte
# UTF-8), a CDATA terminator, quotes, newlines, surrounding blanks, and
# the multipart boundary mod_xmpp tries first (it must pick another).
TRICKY = ("  Grüße <b>&amp;</b> \"q\" 'a' ]]> €\n😀 line two\t\n"
          "--mod_xmpp-62cb6204391a8b91--\n ")


@pytest.mark.parametrize("mpm,handler", HANDLERS, ids=HANDLER_IDS)
def test_message_reaches_handler_exactly(httpd_factory, xmpp_client, mpm,
                                         handler):
    """A chat message is POSTed to message/chat/ as multipart/form-data
    with exactly what the client typed; the text/plain answer comes back
    as a chat reply; the request is in the access log."""
    h, dumps = start_app(httpd_factory, mpm, "lua" if handler == "lua"
                         else "cgi")
    alice = xmpp_client("alice", resource="inb-" + token())
    since = warm_up(alice)
    tok = token()
    body = TRICKY + tok
    alice.send_message(APP, body)

    (d,) = dumps.wait_token(tok)
    env = d.env
    assert d.handler == ("lua" if handler == "lua" else "cgi")
    assert env["REQUEST_METHOD"] == "POST"
    assert d.uri == PREFIX + "message/chat/"
    assert env["REMOTE_ADDR"] == INTERNAL_IP
    assert env["HTTP_HOST"] == SERVER_NAME
    assert env["SERVER_NAME"] == SERVER_NAME
    assert env["CONTENT_TYPE"].startswith("multipart/form-data; boundary=")
    assert int(env["CONTENT_LENGTH"]) == len(d.raw)
    if d.handler == "cgi":
        assert env["GATEWAY_INTERFACE"] == "CGI/1.1"
    # the variables
    assert env["XMPP_FROM"] == alice.full_jid
    assert env["XMPP_TO"] == APP
    assert env["XMPP_KIND"] == "message"
    assert "XMPP_COMMAND" not in env
    assert env["XMPP_ARG"] == body.strip()
    # the form
    assert d.names() == ["from", "to", "body", "stanza"]
    for name in ("from", "to", "body"):
        assert d.ctype(name) == "text/plain; charset=UTF-8"
    assert d.ctype("stanza") == "text/xml"
    assert d.field("from") == alice.full_jid
    assert d.field("to") == APP
    assert d.field("body") == body
    st = d.stanza()
    assert st.tag.rsplit("}", 1)[-1] == "message"
    assert st.get("from") == alice.full_jid
    assert st.get("to") == APP
    assert st.get("type") == "chat"
    (b,) = [c for c in st if c.tag.rsplit("}", 1)[-1] == "body"]
    assert b.text == body

    # the answer: a chat reply from the address written to (the server
    # stamps the full JID of the app's session)
    prefix = "lua heard: " if handler == "lua" else "heard: "
    m = reply_to(alice, tok, since)
    assert m["body"] == prefix + body.strip()
    assert m["type"] == "chat"
    assert m["to"] == alice.full_jid
    assert m["from"] == APP_FULL

    # the access log, from the internal address
    util.wait_for(lambda: len(access_lines(h, "message/chat/")) >= 2, 5.0,
                  what="the access log")
    assert set(access_lines(h, "message/chat/")) == {"200"}


@pytest.mark.parametrize("mpm,handler", HANDLERS, ids=HANDLER_IDS)
def test_commands(httpd_factory, xmpp_client, mpm, handler):
    """App Engine's command split: /score druidjane, a \\ command, a
    plain body; the text/plain answer to the command is the reply."""
    h, dumps = start_app(httpd_factory, mpm, "lua" if handler == "lua"
                         else "cgi")
    alice = xmpp_client("alice", resource="inb-" + token())
    since = warm_up(alice)

    alice.send_message(APP, "/score druidjane")
    (d,) = dumps.wait(lambda d: d.field("body") == "/score druidjane",
                      what="the /score request")
    assert d.env["XMPP_COMMAND"] == "score"
    assert d.env["XMPP_ARG"] == "druidjane"
    m = reply_to(alice, "druidjane has 42 points", since)
    assert m["body"] == "druidjane has 42 points"
    assert m["from"] == APP_FULL and m["type"] == "chat"

    tok = token()
    alice.send_message(APP, "\\stats")
    alice.send_message(APP, "/score   Druid Jane %s  " % tok)
    alice.send_message(APP, "plain words %s  " % tok)
    (d,) = dumps.wait(lambda d: d.field("body") == "\\stats",
                      what="the \\stats request")
    assert d.env["XMPP_COMMAND"] == "stats"
    assert d.env.get("XMPP_ARG", "") == ""
    (d,) = dumps.wait(lambda d: d.field("body") == "/score   Druid Jane %s  "
                      % tok, what="the spaced /score request")
    assert d.env["XMPP_COMMAND"] == "score"
    assert d.env["XMPP_ARG"] == "Druid Jane %s" % tok
    (d,) = dumps.wait(lambda d: d.field("body") == "plain words %s  " % tok,
                      what="the plain request")
    assert "XMPP_COMMAND" not in d.env
    assert d.env["XMPP_ARG"] == "plain words %s" % tok
    assert reply_to(alice, "Druid Jane %s has 42 points" % tok, since)


@pytest.mark.parametrize("mpm,handler", HANDLERS, ids=HANDLER_IDS)
def test_xmpp_xml_answer_is_sent_as_stanza(httpd_factory, xmpp_client, mpm,
                                           handler):
    """An application/xmpp+xml answer goes out as the stanza it is,
    custom child included."""
    h, dumps = start_app(httpd_factory, mpm, "lua" if handler == "lua"
                         else "cgi")
    alice = xmpp_client("alice", resource="inb-" + token())
    since = warm_up(alice)
    tok = token()
    alice.send_message(APP, "/stanza %s <&>" % tok)
    m = alice.wait_message(10, lambda m: from_app(m) and tok in m["xml"],
                           since=since)
    assert m["type"] == "chat"
    assert m["to"] == alice.full_jid
    assert m["body"].endswith("stanza answer: %s <&>" % tok)
    el = ET.fromstring(m["xml"])
    (child,) = el.findall("{urn:mod_xmpp:test}mx")
    assert child.get("arg") == "%s <&>" % tok
    assert child.text in ("custom child", "lua child")


@pytest.mark.parametrize("mpm,handler", HANDLERS, ids=HANDLER_IDS)
def test_202_204_and_empty_answers_send_nothing(httpd_factory, xmpp_client,
                                                mpm, handler):
    h, dumps = start_app(httpd_factory, mpm, "lua" if handler == "lua"
                         else "cgi")
    alice = xmpp_client("alice", resource="inb-" + token())
    since = warm_up(alice)
    tok = token()
    for body in ("/status 202 %s" % tok, "/status 204 %s" % tok,
                 "/empty %s" % tok):
        alice.send_message(APP, body)
    dumps.wait_token(tok, 3)
    # each finished (logged) before the control message is sent; its
    # answer, if any, would be queued before the control's reply

    def logged():
        codes = access_lines(h, "message/chat/")
        return "202" in codes and "204" in codes and codes.count("200") >= 2
    util.wait_for(logged, 5.0, what="the three requests in the access log")
    control = "control " + token()
    alice.send_message(APP, control)
    m = reply_to(alice, control, since)
    assert_no_message_from_app(alice, since, [m])


@pytest.mark.parametrize("mpm,handler", [("event", "cgi"), ("prefork", "lua")],
                         ids=["event-cgid", "prefork-lua"])
def test_handler_500_gives_error_reply(httpd_factory, xmpp_client, mpm,
                                       handler):
    """With XMPPInboundRetry 1 a 500 is tried once, and the sender gets
    the error at once (retries: t/test_inbound_journal.py)."""
    h, dumps = start_app(httpd_factory, mpm, handler,
                         extra="XMPPInboundRetry 1")
    alice = xmpp_client("alice", resource="inb-" + token())
    since = warm_up(alice)
    failed_before = int(h.status()["XMPPApp1Failed"])
    tok = token()
    mid = "m500-" + tok
    log_at = h.log_size()
    alice.send_raw(raw_message(APP, "/status 500 %s" % tok, mid=mid))
    m = alice.wait_message(10, lambda m: from_app(m) and m["id"] == mid,
                           since=since)
    assert m["type"] == "error"
    assert m["error"]["type"] == "cancel"
    assert m["error"]["condition"] == "internal-server-error"
    assert len(dumps.with_token(tok)) == 1  # not retried
    h.wait_log(r"XMPP0504: app@localhost: the handler of "
               r"/_ah/xmpp/message/chat/ answered 500 to a message from "
               + re.escape(alice.full_jid) + "$", since=log_at)
    assert "500" in access_lines(h, "message/chat/")
    util.wait_for(lambda: int(h.status()["XMPPApp1Failed"]) > failed_before,
                  5.0, what="the failure to be counted")


# (KIND of the handlers' /bad command, the answer's type, what the error
# text and the log say)
BAD_ANSWERS = [
    ("utf8", "text/plain", "is not valid UTF-8"),
    ("ctrl", "text/plain", "is U+0007, a character XML does not allow"),
    ("two", "application/xmpp+xml",
     "there is more than one element, or text after the stanza"),
    ("malformed", "application/xmpp+xml", "the XML is not well-formed"),
]


@pytest.mark.parametrize("mpm,handler", [("event", "cgi"), ("prefork", "lua")],
                         ids=["event-cgid", "prefork-lua"])
def test_answer_that_cannot_be_sent_gets_error_reply(httpd_factory,
                                                     xmpp_client, mpm,
                                                     handler):
    """An answer the server would close the stream on (invalid UTF-8, a
    control character, two stanzas, malformed XML) is not sent: the
    sender gets an error, the log says what to fix (once), the failure is
    counted, the app stays connected, the message is not posted again,
    and the next message is answered as usual."""
    h, dumps = start_app(httpd_factory, mpm, handler)
    alice = xmpp_client("alice", resource="inb-" + token())
    since = warm_up(alice)
    before = h.status()
    log_at = h.log_size()
    toks = []
    for kind, ctype, why in BAD_ANSWERS:
        tok = token()
        toks.append(tok)
        mid = "bad-%s-%s" % (kind, tok)
        alice.send_raw(raw_message(APP, "/bad %s %s" % (kind, tok), mid=mid))
        m = alice.wait_message(10, lambda m: from_app(m) and m["id"] == mid,
                               since=since)
        assert m["type"] == "error", m
        assert m["error"]["type"] == "cancel"
        assert m["error"]["condition"] == "internal-server-error"
        assert why in m["error"]["text"]
        h.wait_log(r"XMPP0508: app@localhost: the %s answer of "
                   r"/_ah/xmpp/message/chat/ to a message from %s cannot be "
                   r"sent: .*%s; the sender gets an error\. Such an answer "
                   r"must be " % (re.escape(ctype), re.escape(alice.full_jid),
                                 re.escape(why)), since=log_at)
        # the next message is answered as usual
        good = "good " + token()
        alice.send_message(APP, good)
        assert reply_to(alice, good, since).get("type") == "chat"
    after = h.status()
    assert after["XMPPApp1State"] == "connected"
    assert after["XMPPApp1Reconnects"] == before["XMPPApp1Reconnects"]
    assert (int(after["XMPPApp1Failed"])
            == int(before["XMPPApp1Failed"]) + len(BAD_ANSWERS))
    # posted once each (handled, so not delivered again), logged once each
    for tok in toks:
        assert len(dumps.with_token(tok)) == 1
    log = h.error_log()[log_at:]
    assert len(re.findall(r"XMPP0508: ", log)) == len(BAD_ANSWERS)


@pytest.mark.parametrize("mpm", ["event", "prefork"])
def test_large_body_reaches_cgi_handler(httpd_factory, xmpp_client, mpm):
    """A 200 KiB body (above Linux's 128 KiB limit for one environment
    string) still runs the CGI: XMPP_ARG is cut at a character boundary
    and XMPP_TRUNCATED says so; the form part has the whole body.  Both
    mod_cgid (event) and mod_cgi (prefork) failed on the whole body."""
    h, dumps = start_app(httpd_factory, mpm, "cgi")
    alice = xmpp_client("alice", resource="inb-" + token())
    since = warm_up(alice)
    tok = token()
    # 65536 falls inside an "é" (9 + 2k bytes before it)
    body = tok + " " + "\u00e9" * (100 * 1024)
    alice.send_message(APP, body)
    (d,) = dumps.wait_token(tok, timeout=30)
    assert d.field("body") == body
    assert d.env["XMPP_TRUNCATED"] == "XMPP_ARG"
    arg = d.env["XMPP_ARG"]
    assert len(arg.encode()) == 65535 and body.startswith(arg)
    assert d.env["XMPP_FROM"] == alice.full_jid
    m = reply_to(alice, "heard: " + tok, since, timeout=30)
    assert m["body"] == "heard: " + arg


def test_handler_503_is_retried_then_error_reply(httpd_factory, xmpp_client):
    """XMPPInboundRetry 4 7: tried 4 times (waits of 1, 2 and 4 s), each
    try told its number, with the same stanza id; then the error."""
    h, dumps = start_app(httpd_factory, "event",
                         extra="XMPPInboundRetry 4 7")
    alice = xmpp_client("alice", resource="inb-" + token())
    since = warm_up(alice)
    tok = token()
    mid = "m503-" + tok
    log_at = h.log_size()
    alice.send_raw(raw_message(APP, "/status 503 %s" % tok, mid=mid))
    m = alice.wait_message(30, lambda m: from_app(m) and m["id"] == mid,
                           since=since)
    attempts = dumps.with_token(tok)
    assert len(attempts) == 4, attempts  # the request and 3 retries
    assert [d.env["XMPP_ATTEMPT"] for d in attempts] == ["1", "2", "3", "4"]
    assert [d.env["XMPP_STANZA_ID"] for d in attempts] == [mid] * 4
    assert [d.env["HTTP_X_XMPP_ATTEMPT"] for d in attempts] == [
        "1", "2", "3", "4"]
    assert m["type"] == "error"
    assert m["error"]["type"] == "wait"
    assert m["error"]["condition"] == "service-unavailable"
    h.wait_log(r"XMPP0504: .* answered 503 to a message from "
               + re.escape(alice.full_jid) + r" \(after retries\)",
               since=log_at)
    assert access_lines(h, "message/chat/").count("503") == 4


def test_slow_handler_does_not_delay_others(httpd_factory, xmpp_client):
    """A handler sleeping 5 s holds up only its own sender: the reply to
    a message another sender sends right after it arrives while it still
    sleeps.  (The same sender's next message waits: posted in order.)"""
    h, dumps = start_app(httpd_factory, "event")
    slow_client = xmpp_client("bob", resource="inb-" + token())
    alice = xmpp_client("alice", resource="inb-" + token())
    warm_up(slow_client)
    since = warm_up(alice)
    # the client records monotonic times, the dumps wall-clock times
    offset = time.time() - time.monotonic()
    slow, fast = "slow-" + token(), "fast-" + token()
    t0 = time.monotonic()
    bob_since = len(slow_client.messages)
    slow_client.send_message(APP, "/sleep 5 %s" % slow)
    dumps.wait_token(slow)
    alice.send_message(APP, fast)
    fast_reply = reply_to(alice, fast, since, timeout=20)
    slow_reply = reply_to(slow_client, slow, bob_since, timeout=30)
    (slow_dump,) = dumps.wait_token(slow)
    # the slow handler had started (its dump is written before it sleeps)
    # and was still asleep when the fast reply arrived
    assert fast_reply["time"] + offset < slow_dump.time + 5.0, (
        "the fast reply came %.2fs after the slow handler started" % (
            fast_reply["time"] + offset - slow_dump.time))
    assert slow_reply["time"] - t0 >= 5.0
    assert slow_reply["time"] - fast_reply["time"] > 1.0
    print("fast reply after %.2fs, slow reply after %.2fs" % (
        fast_reply["time"] - t0, slow_reply["time"] - t0))


def test_message_in_flight_when_holder_is_killed_is_not_lost(httpd_factory,
                                                             xmpp_client):
    """The server is told a stanza was handled (XEP-0198 h) only once its
    request is over and its answer is in the journal. A message whose
    handler still runs when the holding child is killed (kill -9) is
    therefore still the server's when the session dies: Prosody keeps it
    offline (its default; without offline storage it would bounce it to
    the sender) and delivers it to the next session, so the handler gets
    it again and the sender gets one answer. The message handled just
    before it is not delivered again."""
    h, dumps = start_app(httpd_factory, "event")
    alice = xmpp_client("alice", resource="inb-" + token())
    since = warm_up(alice)
    done, slow = "done-" + token(), "slow-" + token()
    alice.send_raw(raw_message(APP, done, mid="m-" + done))
    reply_to(alice, done, since)
    alice.send_raw(raw_message(APP, "/sleep 6 " + slow, mid="m-" + slow))
    dumps.wait_token(slow)             # its handler runs (dump, then sleep)
    time.sleep(1.0)                    # the server's <r/> is answered
    holder = int(h.status()["XMPPApp1HolderPID"])
    os.kill(holder, signal.SIGKILL)
    # posted again, by another child, once it holds the connection
    dumps.wait_token(slow, 2, 40)
    answer = reply_to(alice, slow, since, timeout=30)
    assert int(h.status()["XMPPApp1HolderPID"]) != holder
    time.sleep(1.0)
    with alice.lock:
        got = [m for m in alice.messages[since:] if from_app(m)]
    assert [m for m in got if slow in (m["body"] or "")] == [answer]
    assert [m for m in got if m["type"] == "error"] == []
    assert len(dumps.with_token(done)) == 1


@pytest.fixture
def prosody_without_offline():
    """A private Prosody without offline storage (its default module
    `offline` disabled): a stanza it cannot deliver bounces."""
    server = ProsodyServer(disabled=("offline",))
    try:
        server.start()
        yield server
    finally:
        server.stop()
        server.cleanup()


def test_message_in_flight_is_kept_without_offline_storage(
        prosody_without_offline):
    """The same kill -9 with a server that keeps nothing offline: the
    message was kept in the inbound journal before the server was told
    it was handled, so the next holder posts it again (XMPP_ATTEMPT 2,
    the same stanza id) and the sender gets its answer, no bounce."""
    need_module()
    p = prosody_without_offline
    h = Httpd(prosody=p, mpm="event")
    alice = None
    try:
        dumps = Dumps(h)
        h.write_config(extra_conf=inbound_conf(dumps.dir, "cgi"))
        h.start()
        wait_connected(h)
        alice = XmppClient(p.jid("alice") + "/inb-" + token(),
                           p.password("alice"), p.port, p.ca_file)
        since = warm_up(alice)
        slow = "slow-" + token()
        alice.send_raw(raw_message(APP, "/sleep 6 " + slow, mid="m-" + slow))
        dumps.wait_token(slow)
        time.sleep(1.0)
        os.kill(int(h.status()["XMPPApp1HolderPID"]), signal.SIGKILL)
        first, again = dumps.wait_token(slow, 2, 40)
        assert first.env["XMPP_ATTEMPT"] == "1"
        assert again.env["XMPP_ATTEMPT"] == "2"
        assert again.env["XMPP_STANZA_ID"] == first.env["XMPP_STANZA_ID"] \
            == "m-" + slow
        reply_to(alice, slow, since, timeout=30)
        with alice.lock:
            assert [m for m in alice.messages[since:]
                    if m["type"] == "error"] == []
    finally:
        if alice:
            alice.disconnect()
        h.stop()
        h.cleanup()


def test_message_handled_late_is_acknowledged(httpd_factory, xmpp_client):
    """The server asks for an acknowledgement right after it delivers a
    message, while its handler still runs: mod_xmpp answers with fewer
    and says the rest, unasked, once the answer is in the journal. So a
    message answered before the holder is killed is not delivered again
    to the next one."""
    h, dumps = start_app(httpd_factory, "event")
    alice = xmpp_client("alice", resource="inb-" + token())
    since = warm_up(alice)
    slow = "late-" + token()
    alice.send_message(APP, "/sleep 2 " + slow)
    reply_to(alice, slow, since, timeout=20)
    time.sleep(1.0)
    holder = int(h.status()["XMPPApp1HolderPID"])
    os.kill(holder, signal.SIGKILL)
    util.wait_for(lambda: h.status().get("XMPPApp1HolderPID", "0")
                  not in ("0", str(holder))
                  and h.status().get("XMPPApp1State") == "connected",
                  30, 0.2, "another child to hold the connection")
    after = "after-" + token()
    alice.send_message(APP, after)
    reply_to(alice, after, since, timeout=20)
    assert len(dumps.with_token(slow)) == 1, dumps.with_token(slow)


def test_message_during_graceful_restart_is_not_lost(httpd_factory,
                                                     xmpp_client):
    """On a graceful restart the holder waits (2 s at most) for the
    requests in flight and does not post what arrives meanwhile; it keeps
    it in the inbound journal, and the next generation's holder posts it:
    the message sent during the stop is answered, and so, once more, is
    the one whose handler outlived it."""
    h, dumps = start_app(httpd_factory, "event")
    alice = xmpp_client("alice", resource="inb-" + token())
    since = warm_up(alice)
    slow, during = "slow-" + token(), "during-" + token()
    alice.send_message(APP, "/sleep 4 " + slow)
    dumps.wait_token(slow)
    h.graceful(wait=False)
    time.sleep(0.7)  # the old holder waits for the sleeping handler
    alice.send_message(APP, during)
    reply_to(alice, during, since, timeout=40)
    dumps.wait_token(slow, 2, 40)
    assert len(dumps.with_token(during)) == 1


def test_full_inbound_queue_gives_resource_constraint(httpd_factory,
                                                      xmpp_client):
    """XMPPInboundQueueLimit 10: while one message's handler sleeps, 9
    more from the same sender wait on disk (posted in order, after it);
    beyond that the sender gets resource-constraint at once, the log says
    why, and nothing kept is lost."""
    h, dumps = start_app(httpd_factory, "event", "lua", services="message",
                         extra="XMPPInboundQueueLimit 10")
    alice = xmpp_client("alice", resource="inb-" + token())
    since = warm_up(alice)
    tok = token()
    alice.send_message(APP, "/sleep 4 %s sleeper" % tok)
    dumps.wait_token(tok)
    log_at = h.log_size()
    for i in range(11):
        alice.send_raw(raw_message(APP, "queued %s n%02d" % (tok, i),
                                   mid="q-%s-%02d" % (tok, i)))
    alice.sync()
    errors = alice.wait_messages(
        2, 10.0, lambda m: from_app(m) and m["type"] == "error", since=since)
    assert sorted(m["id"] for m in errors) == ["q-%s-09" % tok,
                                               "q-%s-10" % tok]
    for m in errors:
        assert m["error"]["condition"] == "resource-constraint"
        assert m["error"]["type"] == "wait"
    h.wait_log(r"XMPP0571: app@localhost: 10 inbound stanzas are waiting",
               since=log_at)
    replies = alice.wait_messages(
        1 + 9, 40.0, lambda m: from_app(m) and m["type"] == "chat"
        and tok in (m["body"] or ""), since=since)
    assert [m["body"] for m in replies] == (
        ["lua slept: 4 %s sleeper" % tok]
        + ["lua heard: queued %s n%02d" % (tok, i) for i in range(9)])
    assert len(alice.wait_messages(2, 1.0, lambda m: from_app(m) and
                                   m["type"] == "error", since=since)) == 2


def test_stanza_part_is_the_stanza_as_received(httpd_factory, xmpp_client):
    """The `stanza` part is the whole stanza: its attributes (xml:lang
    included), the escaped body and foreign children."""
    h, dumps = start_app(httpd_factory, "event")
    alice = xmpp_client("alice", resource="inb-" + token())
    warm_up(alice)
    tok = token()
    mid = "st-" + tok
    alice.send_raw(
        "<message to='%s' type='chat' id='%s' xml:lang='de'>"
        "<body>%s &lt;x a=&quot;1&quot;&gt; &amp;amp; ü</body>"
        "<thing xmlns='urn:example:thing' n='&lt;1&gt;'><sub>deep</sub></thing>"
        "</message>" % (APP, mid, tok))
    (d,) = dumps.wait_token(tok)
    assert d.field("body") == '%s <x a="1"> &amp; ü' % tok
    st = d.stanza()
    assert st.get("id") == mid
    assert st.get("type") == "chat"
    assert st.get("to") == APP
    assert st.get("from") == alice.full_jid
    (b,) = [c for c in st if c.tag.rsplit("}", 1)[-1] == "body"]
    assert b.text == '%s <x a="1"> &amp; ü' % tok
    (thing,) = st.findall("{urn:example:thing}thing")
    assert thing.get("n") == "<1>"
    assert thing.find("{urn:example:thing}sub").text == "deep"
    assert st.get(XML_NS + "lang") == "de", (
        "xml:lang lost: the stanza part is %r" % d.field("stanza"))


def test_error_stanzas_are_posted_never_answered(httpd_factory, xmpp_client):
    """A message of type error goes to error/ (XMPP_KIND=error); neither
    the handler's text/plain answer nor its 500 produce anything back."""
    h, dumps = start_app(httpd_factory, "event",
                         extra="XMPPInboundRetry 4 3")
    alice = xmpp_client("alice", resource="inb-" + token())
    since = warm_up(alice)
    tok = token()
    err = ("<error type='cancel'><item-not-found xmlns='%s'/></error>"
           % STANZAS_NS)
    alice.send_raw(raw_message(APP_FULL, "bounced %s" % tok, mtype="error",
                               mid="e1-" + tok, children=err))
    alice.send_raw(raw_message(APP_FULL, "/status 500 %s" % tok,
                               mtype="error", mid="e2-" + tok, children=err))
    alice.send_raw(raw_message(APP_FULL, "/status 503 %s" % tok,
                               mtype="error", mid="e3-" + tok, children=err))
    found = dumps.wait_token(tok, 3, timeout=15)
    plain = [d for d in found if "bounced" in d.env.get("XMPP_ARG", "")]
    assert len(plain) == 1
    d = plain[0]
    assert d.uri == PREFIX + "error/"
    assert d.env["XMPP_KIND"] == "error"
    assert d.env["XMPP_FROM"] == alice.full_jid
    assert d.env["XMPP_TO"] == APP_FULL
    assert d.field("body") == "bounced %s" % tok
    st = d.stanza()
    assert st.get("type") == "error"
    assert st.get("id") == "e1-" + tok
    (e,) = [c for c in st if c.tag.rsplit("}", 1)[-1] == "error"]
    assert e.find("{%s}item-not-found" % STANZAS_NS) is not None
    # the 500 and the 503 are retried like any other (one after the
    # other: the same sender); wait until all tries ran
    dumps.wait(lambda d: "/status 503 %s" % tok == d.field("body"), 4, 30,
               "the retries of the 503 error stanza")
    util.wait_for(lambda: access_lines(h, "error/").count("503") == 4, 5.0,
                  what="the last retry to finish")
    control = "control " + token()
    alice.send_message(APP, control)
    m = reply_to(alice, control, since)
    assert_no_message_from_app(alice, since, [m])


def test_error_stanzas_not_posted_unless_enabled(httpd_factory, xmpp_client):
    h, dumps = start_app(httpd_factory, "event", services="message")
    alice = xmpp_client("alice", resource="inb-" + token())
    since = warm_up(alice)
    tok = token()
    alice.send_raw(raw_message(APP_FULL, "bounced %s" % tok, mtype="error",
                               children="<error type='cancel'><gone xmlns="
                               "'%s'/></error>" % STANZAS_NS))
    control = "control " + token()
    alice.send_message(APP, control)
    m = reply_to(alice, control, since)
    assert dumps.with_token(tok) == []
    assert_no_message_from_app(alice, since, [m])
    assert access_lines(h, "error/") == []


def test_messages_without_body_and_other_types(httpd_factory, xmpp_client):
    """Chat states, empty bodies, headline and groupchat messages are not
    posted; normal and untyped messages with a body are."""
    h, dumps = start_app(httpd_factory, "event")
    alice = xmpp_client("alice", resource="inb-" + token())
    since = warm_up(alice)
    tok = token()
    chatstate = ("<active xmlns='http://jabber.org/protocol/chatstates'/>")
    alice.send_raw(raw_message(APP, None, children=chatstate))
    alice.send_raw(raw_message(APP_FULL, None, mid="cs-" + tok,
                               children=chatstate))
    alice.send_raw(raw_message(APP, "", mid="empty-" + tok))
    alice.send_raw(raw_message(APP_FULL, "headline %s" % tok,
                               mtype="headline"))
    alice.send_raw(raw_message(APP_FULL, "groupchat %s" % tok,
                               mtype="groupchat"))
    alice.send_raw(raw_message(APP, "normal %s" % tok, mtype="normal"))
    alice.send_raw(raw_message(APP, "untyped %s" % tok, mtype=None))
    normal = reply_to(alice, "heard: normal %s" % tok, since)
    untyped = reply_to(alice, "heard: untyped %s" % tok, since)
    # replies are chat messages
    assert normal["type"] == "chat" and untyped["type"] == "chat"
    control = "control " + token()
    alice.send_message(APP, control)
    m = reply_to(alice, control, since)
    posted = [d for d in dumps.all() if tok in d.raw.decode("utf-8")
              or d.env.get("XMPP_ARG") == ""]
    assert sorted(d.field("body") for d in posted) == [
        "normal %s" % tok, "untyped %s" % tok]
    for d in posted:
        assert d.uri == PREFIX + "message/chat/"
    assert_no_message_from_app(alice, since, [normal, untyped, m])


@pytest.mark.parametrize("mpm", ["event", "prefork"])
def test_outside_requests_get_403(httpd_factory, xmpp_client, mpm):
    """No header, address, Host, body or query string lets an outside
    request through Require xmpp-internal, on any inbound path."""
    h, dumps = start_app(httpd_factory, mpm)
    alice = xmpp_client("alice", resource="inb-" + token())
    warm_up(alice)  # the mapping works for mod_xmpp's own requests

    def outside():
        # handler runs for requests that mod_xmpp did not inject (injected
        # ones, e.g. contacts' presence arriving meanwhile, come from
        # INTERNAL_IP)
        return [d for d in dumps.all()
                if d.env.get("REMOTE_ADDR") != INTERNAL_IP]
    before = len(outside())
    boundary = "mod_xmpp-62cb6204391a8b91"
    fake = ("--{b}\r\nContent-Disposition: form-data; name=\"from\"\r\n"
            "Content-Type: text/plain; charset=UTF-8\r\n\r\nalice@localhost/x"
            "\r\n--{b}\r\nContent-Disposition: form-data; name=\"body\"\r\n"
            "Content-Type: text/plain; charset=UTF-8\r\n\r\n/score forged\r\n"
            "--{b}--\r\n").format(b=boundary).encode()
    forged_headers = [
        {},
        {"X-Forwarded-For": INTERNAL_IP},
        {"X-Real-IP": INTERNAL_IP, "Forwarded": "for=%s" % INTERNAL_IP},
        {"Host": SERVER_NAME, "User-Agent": "mod_xmpp"},
        {"Host": "localhost"},
        {"Content-Type": "multipart/form-data; boundary=" + boundary,
         "X-Forwarded-For": INTERNAL_IP, "User-Agent": "mod_xmpp",
         "X-XMPP-From": "alice@localhost", "XMPP_KIND": "message"},
    ]
    for path in INBOUND_PATHS:
        for query in ("", "?from=alice@localhost&XMPP_KIND=message"):
            for headers in forged_headers:
                r = h.post(PREFIX + path + query, data=fake,
                           headers=dict(headers))
                assert r.status == 403, (path, query, headers, r)
        assert h.get(PREFIX + path).status == 403
    assert h.post(PREFIX + "message/chat", data=fake).status == 403
    assert len(outside()) == before, "a handler ran for an outside request"
    # the same script outside the protected path does run (no XMPP_KIND:
    # it answers 204)
    assert h.post("/cgi-bin/inbound.cgi", data=b"x").status == 204
    assert len(outside()) == before + 1


@pytest.mark.parametrize("script", ["bot.cgi", "bot.lua"])
def test_example_bots(httpd_factory, xmpp_client, script):
    """The shipped examples answer through a real client: bot.cgi from
    the variables, bot.lua from r:parsebody() of the multipart body."""
    examples = os.path.join(os.path.dirname(T_DIR), "examples")
    path = os.path.join(examples, script)
    if script.endswith(".lua"):
        mapping = 'LuaMapHandler "^/_ah/xmpp/message/chat/$" "%s"' % path
        mpm = "prefork"
    else:
        mapping = ('ScriptAliasMatch "^/_ah/xmpp/message/chat/$" "%s"\n'
                   '<Directory "%s">\n  Options +ExecCGI\n'
                   '  Require all granted\n</Directory>' % (path, examples))
        mpm = "event"
    h = httpd_factory(mpm=mpm, extra_conf=mapping + "\n<Location /_ah/xmpp/>"
                      "\n  Require xmpp-internal\n</Location>\n")
    h.start()
    wait_connected(h)
    alice = xmpp_client("alice", resource="inb-" + token())
    tok = token()
    body = "Grüße <&> \"%s\"" % tok
    if script == "bot.cgi":
        expected = [("/echo " + body, body),
                    ("  " + body + "  ", "You said: " + body)]
    else:
        expected = [("/reverse abc" + tok, ("abc" + tok)[::-1]),
                    ("/reverse caf\u00e9", "\u00e9fac"),
                    (body, "Lua heard %s: %s" % (alice.full_jid, body))]
    deadline = time.monotonic() + 15
    for sent, want in expected:
        since = len(alice.messages)
        alice.send_message(APP, sent)
        while True:
            try:
                m = alice.wait_message(5, lambda m: from_app(m), since=since)
                break
            except TimeoutError:
                # the app's presence not processed yet: try once more
                if time.monotonic() > deadline:
                    raise
                since = len(alice.messages)
                alice.send_message(APP, sent)
        assert m["body"] == want
        assert m["type"] == "chat"


# ------------------------------------------------ presence and subscriptions

def fresh_user(prosody, xmpp_client, prefix="inb"):
    """A new account (no roster history), logged in."""
    name = "%s%s" % (prefix, token())
    prosody.add_user(name)
    return xmpp_client(name)


def befriend(client, timeout=10.0):
    """Subscribe `client` to the app; the app accepts and asks back, the
    client (auto_authorize) accepts: subscription both ways."""
    client.subscribe(APP)
    util.wait_for(lambda: client.subscription(APP) == "both", timeout, 0.1,
                  "%s and the app to be subscribed both ways" % client.jid)


def test_presence_is_posted(httpd_factory, xmpp_client, prosody):
    """Presence from a contact: available (with show and status) and
    unavailable are posted to presence/<type>/."""
    h, dumps = start_app(httpd_factory, "event")
    carol = fresh_user(prosody, xmpp_client)
    befriend(carol)
    status = "out <to> lunch & back ü 😀"
    carol.set_presence("away", status)
    d = dumps.wait(lambda d: d.path == "presence/available/"
                   and d.field("show") == "away", 1, 10,
                   "carol's away presence")[-1]
    assert d.env["XMPP_KIND"] == "presence"
    assert d.env["XMPP_FROM"] == carol.full_jid
    assert d.env["XMPP_TO"] == APP
    assert "XMPP_COMMAND" not in d.env
    assert d.names() == ["from", "to", "show", "status", "stanza"]
    assert d.field("status") == status
    assert d.env["REMOTE_ADDR"] == INTERNAL_IP
    st = d.stanza()
    assert st.tag.rsplit("}", 1)[-1] == "presence"
    assert st.get("type") is None
    carol.send_raw("<presence to='%s' type='unavailable'><status>gone %s"
                   "</status></presence>" % (APP, status.replace("&", "&amp;")
                                             .replace("<", "&lt;")))
    (d,) = dumps.wait(lambda d: d.path == "presence/unavailable/"
                      and d.env["XMPP_FROM"] == carol.full_jid, 1, 10,
                      "carol's unavailable presence")
    assert d.env["XMPP_KIND"] == "presence"
    assert d.env["XMPP_TO"] == APP
    assert d.names() == ["from", "to", "status", "stanza"]
    assert d.field("status") == "gone " + status
    assert d.stanza().get("type") == "unavailable"
    assert d.field("show") is None


def test_presence_error_is_posted_to_error(httpd_factory, xmpp_client):
    h, dumps = start_app(httpd_factory, "event")
    alice = xmpp_client("alice", resource="inb-" + token())
    since = warm_up(alice)
    tok = token()
    alice.send_raw("<presence to='%s' type='error' id='pe-%s'><error "
                   "type='cancel'><remote-server-not-found xmlns='%s'/>"
                   "</error></presence>" % (APP_FULL, tok, STANZAS_NS))
    (d,) = dumps.wait(lambda d: d.path == "error/" and
                      d.stanza().get("id") == "pe-" + tok, 1, 10,
                      "the presence error")
    assert d.env["XMPP_KIND"] == "error"
    assert d.field("body") is None
    control = "control " + token()
    alice.send_message(APP, control)
    m = reply_to(alice, control, since)
    assert_no_message_from_app(alice, since, [m])


def test_subscription_kinds_are_posted(httpd_factory, xmpp_client, prosody):
    """subscribe, subscribed, unsubscribe and unsubscribed reach
    subscription/<type>/ with XMPP_KIND=subscribe."""
    h, dumps = start_app(httpd_factory, "event")
    carol = fresh_user(prosody, xmpp_client)
    bare = carol.jid
    carol.subscribe(APP)
    # the app accepts and asks back; carol's client accepts (subscribed)
    util.wait_for(lambda: carol.subscription(APP) == "both", 10, 0.1,
                  "subscription both ways")

    def posted(kind):
        return dumps.wait(lambda d: d.path == "subscription/%s/" % kind
                          and d.env.get("XMPP_FROM", "").startswith(bare),
                          1, 10, "subscription/%s/" % kind)[-1]
    d = posted("subscribe")
    assert d.env["XMPP_KIND"] == "subscribe"
    assert d.env["XMPP_FROM"] == bare
    assert d.env["XMPP_TO"] == APP
    assert d.names() == ["from", "to", "stanza"]
    assert d.stanza().get("type") == "subscribe"
    d = posted("subscribed")
    assert d.env["XMPP_KIND"] == "subscribe"
    assert d.stanza().get("type") == "subscribed"
    carol.unsubscribe(APP)
    d = posted("unsubscribe")
    assert d.stanza().get("type") == "unsubscribe"
    carol.send_raw("<presence to='%s' type='unsubscribed'/>" % APP)
    d = posted("unsubscribed")
    assert d.stanza().get("type") == "unsubscribed"
    assert sorted(set(access_lines(h, "subscription/subscribe/"))) == ["204"]
