# SPDX-License-Identifier: Apache-2.0
"""Cross-site request forgery: a page on another site must not make a
visitor's browser forge an inbound stanza through the console (it passes
`Require xmpp-internal`, and the reply goes to whatever JID it names) or
send a message through the xmpp-api.  Browsers say where a request comes
from (Sec-Fetch-Site, Origin); the console's forms also carry a token
that only a page served by this httpd has.  Callers that are no browser
(curl, scripts, other servers: no Origin, no Sec-Fetch-Site) keep working.

Nothing is sent by a refused request: each test ends with a control
message that does get through, and the client must receive only that one
(a forged reply would have been queued before it)."""

import html.parser
import re
import urllib.parse
import uuid

from test_console import CONSOLE, wait_connected

CONF = CONSOLE + """
<Location /xmpp-api/>
    SetHandler xmpp-api
    Require local
</Location>
"""

FORM = "application/x-www-form-urlencoded"
EVIL = "http://evil.example"

# what a browser sends for a form on another site posting here
CROSS_SITE = [
    {"Origin": EVIL},                              # Origin alone (older)
    {"Sec-Fetch-Site": "cross-site"},              # Fetch metadata alone
    {"Origin": EVIL, "Sec-Fetch-Site": "cross-site"},
    {"Origin": "null"},                            # sandboxed or data: page
    {"Sec-Fetch-Site": "same-site"},               # a sibling subdomain
]


def marker(what):
    return "%s-%s" % (what, uuid.uuid4().hex[:12])


class FormTokens(html.parser.HTMLParser):
    """The hidden `token` inputs of a page."""

    def __init__(self):
        super().__init__()
        self.tokens = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "input" and a.get("name") == "token":
            self.tokens.append(a.get("value"))


def page_token(h):
    p = FormTokens()
    p.feed(h.get("/console").text)
    assert p.tokens and len(set(p.tokens)) == 1, p.tokens
    return p.tokens[0]


def own_origin(h):
    return "http://127.0.0.1:%d" % h.port


def console_post(h, fields, headers=None, ctype=FORM):
    body = (urllib.parse.urlencode(fields) if ctype == FORM
            else "\n".join("%s=%s" % kv for kv in fields.items()))
    return h.post("/console", data=body.encode(),
                  headers=dict(headers or {}, **{"Content-Type": ctype}))


def message(frm, body, token=None):
    fields = {"kind": "message", "from": frm, "body": body}
    if token is not None:
        fields["token"] = token
    return fields


def start(httpd_factory, xmpp_client):
    alice = xmpp_client("alice", resource="csrf-" + uuid.uuid4().hex[:8])
    h = httpd_factory(extra_conf=CONF, start=True)
    wait_connected(h)
    return h, alice


def only_control_arrives(h, alice, since, control, forged):
    """A control message sent the legitimate way reaches alice, and no
    message before it carries one of the forged markers."""
    status, answer = api_send(h, alice.full_jid, control)
    assert status == 200 and "NO_ERROR" in answer, answer
    m = alice.wait_message(timeout=15, since=since,
                           predicate=lambda m: control in (m["body"] or ""))
    got = [x["body"] for x in alice.messages[since:]]
    for f in forged:
        assert not any(f in (b or "") for b in got), got
    assert m["body"] == control
    page = h.get("/console").text
    for f in forged:
        assert f not in page, "forged %s is in the console's traffic" % f


def api_send(h, jid, body, headers=None):
    r = h.post("/xmpp-api/send_message", data=[("jid", jid), ("body", body)],
               headers=headers)
    return r.status, r.text


def test_cross_site_console_posts_are_refused(httpd_factory, xmpp_client):
    h, alice = start(httpd_factory, xmpp_client)
    since = len(alice.messages)
    token = page_token(h)   # even with a valid token: the browser says
    forged = []             # where the form was
    for headers in CROSS_SITE:
        for ctype in (FORM, "text/plain"):
            f = marker("forged")
            forged.append(f)
            r = console_post(h, message(alice.full_jid, f, token), headers,
                             ctype)
            assert r.status == 403, (headers, ctype, r.text)
            assert "another site" in r.text, r.text
            assert f not in r.text
    assert re.search(r"XMPP0\d+: .*refused.*evil\.example", h.error_log())
    only_control_arrives(h, alice, since, marker("control"), forged)


def test_console_post_needs_the_pages_token(httpd_factory, xmpp_client):
    h, alice = start(httpd_factory, xmpp_client)
    since = len(alice.messages)
    token = page_token(h)
    ts, _, mac = token.partition("-")
    wrong = [None, "", "x", ts + "-" + "0" * len(mac),
             str(int(ts) + 1) + "-" + mac, token + "0"]
    forged = []
    for t in wrong:
        f = marker("forged")
        forged.append(f)
        r = console_post(h, message(alice.full_jid, f, t))
        assert r.status == 403, (t, r.text)
        assert "reload the console" in r.text, r.text
    # the token is not a secret of the log
    assert token not in h.error_log() and mac not in h.error_log()
    only_control_arrives(h, alice, since, marker("control"), forged)


def test_same_origin_console_post_with_token_works(httpd_factory,
                                                   xmpp_client):
    h, alice = start(httpd_factory, xmpp_client)
    since = len(alice.messages)
    f = marker("legit")
    browser = {"Origin": own_origin(h), "Sec-Fetch-Site": "same-origin"}
    r = console_post(h, message(alice.full_jid, f, page_token(h)), browser)
    assert r.status == 200, r.text
    assert "<th>Status</th><td>200</td>" in r.text
    m = alice.wait_message(timeout=15, since=since,
                           predicate=lambda m: f in (m["body"] or ""))
    assert "XMPP_ARG=" + f in m["body"]
    # the answer's page has forms with a token that works again
    p = FormTokens()
    p.feed(r.text)
    r = console_post(h, message(alice.full_jid, marker("again"),
                                p.tokens[0]), {"Origin": own_origin(h)})
    assert r.status == 200, r.text
    # and the page may not be framed by another site
    resp = h.get("/console")
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]


def test_cross_site_api_posts_are_refused(httpd_factory, xmpp_client):
    h, alice = start(httpd_factory, xmpp_client)
    since = len(alice.messages)
    forged = []

    def query(f):
        return "/xmpp-api/send_message?" + urllib.parse.urlencode(
            {"jid": alice.full_jid, "body": f})
    for headers in CROSS_SITE:
        f = marker("forged")
        forged.append(f)
        # a form with enctype text/plain, the parameters in its action
        r = h.post(query(f), data=b"x=y",
                   headers=dict(headers, **{"Content-Type": "text/plain"}))
        assert r.status == 403, (headers, r.text)
        assert '"error":"CrossSiteRequest"' in r.text, r.text
        f = marker("forged")
        forged.append(f)
        status, text = api_send(h, alice.full_jid, f, headers)
        assert status == 403, (headers, text)
        f = marker("forged")
        forged.append(f)
        r = h.post(query(f), data=b"--b\r\nContent-Disposition: form-data; "
                   b"name=\"x\"\r\n\r\ny\r\n--b--\r\n",
                   headers=dict(headers, **{"Content-Type":
                                            "multipart/form-data; "
                                            "boundary=b"}))
        assert r.status == 403, (headers, r.text)
    # a browser too old to say where a text/plain form was still cannot
    # use one: the API reads no parameters from a body of another type
    f = marker("forged")
    forged.append(f)
    r = h.post(query(f), data=b"x=y", headers={"Content-Type": "text/plain"})
    assert r.status == 415, r.text
    assert '"error":"UnsupportedMediaType"' in r.text, r.text
    only_control_arrives(h, alice, since, marker("control"), forged)


def test_api_callers_that_are_no_cross_site_browser_work(httpd_factory,
                                                         xmpp_client):
    h, alice = start(httpd_factory, xmpp_client)
    since = len(alice.messages)
    sent = []
    # curl -d: no Origin, no Sec-Fetch-Site
    sent.append(marker("curl"))
    assert api_send(h, alice.full_jid, sent[-1])[0] == 200
    # curl -X POST with the parameters in the query string, no body
    sent.append(marker("query"))
    r = h.post("/xmpp-api/send_message?" + urllib.parse.urlencode(
        {"jid": alice.full_jid, "body": sent[-1]}))
    assert r.status == 200, r.text
    # a page of the same origin (Origin only, and with fetch metadata)
    sent.append(marker("page"))
    assert api_send(h, alice.full_jid, sent[-1],
                    {"Origin": own_origin(h)})[0] == 200
    sent.append(marker("fetch"))
    assert api_send(h, alice.full_jid, sent[-1],
                    {"Origin": own_origin(h),
                     "Sec-Fetch-Site": "same-origin"})[0] == 200
    # typed into the address bar: get_presence
    r = h.get("/xmpp-api/get_presence?jid=alice@localhost",
              headers={"Sec-Fetch-Site": "none"})
    assert r.status == 200, r.text
    got = alice.wait_messages(len(sent), timeout=15, since=since,
                              predicate=lambda m: any(
                                  s == m["body"] for s in sent))
    assert sorted(m["body"] for m in got) == sorted(sent)


def test_token_works_in_every_child_until_a_restart(httpd_factory,
                                                    xmpp_client):
    """prefork: the page and its POST are usually served by different
    children; all of them know the token.  A restart ends the old
    pages' tokens, and the page says what to do."""
    alice = xmpp_client("alice", resource="csrf-" + uuid.uuid4().hex[:8])
    h = httpd_factory(mpm="prefork", children=4, extra_conf=CONF,
                      start=True)
    wait_connected(h)
    since = len(alice.messages)
    token = page_token(h)
    sent = [marker("child") for _ in range(8)]
    for f in sent:
        r = console_post(h, message(alice.full_jid, f, token))
        assert r.status == 200 and "<th>Status</th><td>200</td>" in r.text
    alice.wait_messages(len(sent), timeout=20, since=since,
                        predicate=lambda m: any(f in (m["body"] or "")
                                                for f in sent))
    h.graceful()
    wait_connected(h)
    r = console_post(h, message(alice.full_jid, marker("old"), token))
    assert r.status == 403 and "reload the console" in r.text, r.text
    r = console_post(h, message(alice.full_jid, marker("new"),
                                page_token(h)))
    assert r.status == 200, r.text
