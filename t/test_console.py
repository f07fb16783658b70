# SPDX-License-Identifier: Apache-2.0
"""SetHandler xmpp-console: the app's state, recent traffic, contacts, and
simulated inbound stanzas posted to the app's handlers."""

import fcntl
import html.parser
import os
import re
import signal
import urllib.parse

from harness import util

CGI = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cgi-bin",
                   "env.cgi")

CONSOLE = """
<Location /console>
    SetHandler xmpp-console
    Require local
</Location>
ScriptAliasMatch "^/_ah/xmpp/message/chat/$" "%s"
<Location /_ah/xmpp/>
    Require xmpp-internal
</Location>
""" % CGI


def wait_connected(h, timeout=20):
    import time
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if h.status().get("XMPPApp1State") == "connected":
            return
        time.sleep(0.2)
    raise AssertionError("not connected: %s" % h.status())


def form_token(h):
    """The token of the console's forms, as a browser would send it."""
    m = re.search(r'<input type="hidden" name="token" value="([^"]+)">',
                  h.get("/console").text)
    assert m, "no token in the console's forms"
    return m.group(1)


def post_form(h, fields):
    fields = dict(fields, token=form_token(h))
    return h.post("/console", data=urllib.parse.urlencode(fields).encode(),
                  headers={"Content-Type":
                           "application/x-www-form-urlencoded"})


def test_console_shows_state_and_simulates_a_message(httpd_factory,
                                                     xmpp_client):
    h = httpd_factory(extra_conf=CONSOLE, start=True)
    wait_connected(h)
    status, headers, body = h.get("/console")
    page = body.decode()
    assert status == 200 and "text/html" in headers["Content-Type"]
    assert "mod_xmpp console: app@localhost" in page
    assert re.search(r"<th>State</th><td>connected</td>", page), page

    # a simulated message goes through the handler like a real one
    status, _, body = post_form(h, {"kind": "message",
                                    "from": "alice@localhost/console",
                                    "body": "/score druidjane"})
    page = body.decode()
    assert status == 200
    assert "<th>Posted to</th><td>/_ah/xmpp/message/chat/</td>" in page
    assert "<th>Status</th><td>200</td>" in page
    assert "XMPP_COMMAND=score" in page and "XMPP_ARG=druidjane" in page
    assert "XMPP_FROM=alice@localhost/console" in page
    # the request is in the access log, from App Engine's address
    assert re.search(r"^0\.1\.0\.10 .*POST /_ah/xmpp/message/chat/ ",
                     h.access_log(), re.M)


def test_console_reply_is_sent_and_shown_as_traffic(httpd_factory,
                                                     xmpp_client):
    alice = xmpp_client("alice")
    h = httpd_factory(extra_conf=CONSOLE, start=True)
    wait_connected(h)
    n = len(alice.messages)
    post_form(h, {"kind": "message", "from": "alice@localhost",
                  "body": "hello from the console"})
    # the handler's text/plain answer is a real reply: alice gets it
    msg = alice.wait_message(timeout=10, since=n)
    assert "XMPP_ARG=hello from the console" in msg["body"]
    assert msg["from"].startswith("app@localhost")
    status, _, body = h.get("/console")
    assert re.search(r"<td>out</td><td>message</td><td>alice@localhost</td>",
                     body.decode())


def test_console_refuses_bad_input(httpd_factory):
    h = httpd_factory(extra_conf=CONSOLE, start=True)
    status, _, body = post_form(h, {"kind": "message", "from": "not a jid",
                                    "body": "x"})
    assert status == 200
    assert "Not posted: From is not a valid JID" in body.decode()
    # a kind the app does not take (presence is not in the default
    # XMPPInboundServices) is said so, not posted
    status, _, body = post_form(h, {"kind": "presence",
                                    "from": "alice@localhost/x",
                                    "type": "available"})
    assert "not in XMPPInboundServices" in body.decode()


def test_console_is_ordinary_access_control(httpd_factory):
    h = httpd_factory(extra_conf=CONSOLE.replace("Require local",
                                                 "Require all denied"),
                      start=True)
    assert h.get("/console").status == 403


API = """
<Location /xmpp-api/>
    SetHandler xmpp-api
    Require local
</Location>
"""


class PageText(html.parser.HTMLParser):
    """What a browser shows of a page (its text, entities decoded) and
    the elements it makes."""

    def __init__(self):
        super().__init__()
        self.text, self.tags = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)

    def handle_data(self, data):
        self.text.append(data)


def console_with(h, text):
    page = h.get("/console").text
    return page if text in page else None


def test_console_shows_sent_text_as_written(httpd_factory, xmpp_client):
    alice = xmpp_client("alice")
    h = httpd_factory(extra_conf=CONSOLE + API, start=True)
    wait_connected(h)
    n = len(alice.messages)
    body = "<script>alert(1)</script> & &lt; \"quotes\" 'too'"
    r = h.post("/xmpp-api/send_message", data=[("jid", alice.full_jid),
                                               ("body", body)])
    assert r.status == 200 and "NO_ERROR" in r.text, r.text
    assert alice.wait_message(timeout=15, since=n)["body"] == body
    # the outbound traffic row is recorded once the message went out
    page = PageText()
    page.feed(util.wait_for(lambda: console_with(h, "alert(1)"), 15,
                            what="the message in the console"))
    # shown as the characters that were sent, escaped once: no element
    assert body in page.text, page.text
    assert "script" not in page.tags


def test_console_does_not_show_a_killed_holder_as_connected(httpd_factory):
    h = httpd_factory(extra_conf=CONSOLE, start=True)
    wait_connected(h)
    assert "<th>State</th><td>connected</td>" in h.get("/console").text
    holder = int(h.status()["XMPPApp1HolderPID"])
    others = [p for p in h.child_pids() if p != holder]
    lock = os.open(os.path.join(h.spool_dir, "app@localhost", "holder.lock"),
                   os.O_RDWR)
    # keep the other children from taking over while the page is looked
    # at: hold them still, kill the holder, take its lock ourselves
    for p in others:
        os.kill(p, signal.SIGSTOP)
    try:
        os.kill(holder, signal.SIGKILL)
        fcntl.flock(lock, fcntl.LOCK_EX)
    finally:
        for p in others:
            os.kill(p, signal.SIGCONT)
    try:
        # gone, reaped by httpd: not even a zombie answers kill(pid, 0)
        util.wait_for(lambda: not os.path.exists("/proc/%d" % holder), 10,
                      what="the holder to be reaped")
        page = h.get("/console").text
        assert "<th>State</th><td>connected</td>" not in page, page
        assert "<th>State</th><td>idle</td>" in page, page
        assert "(pid %d) is gone" % holder in page, page
    finally:
        os.close(lock)
    # and once the lock is free a child connects again, as the page said
    wait_connected(h)
    assert "<th>State</th><td>connected</td>" in h.get("/console").text
