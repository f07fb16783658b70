# SPDX-License-Identifier: Apache-2.0
"""Sending (SPEC section 3): what a real third-party client receives when
the app sends through each way in -- the xmpp-api HTTP handler, the
xmpp-send command (directly and from a CGI script), and the optional C
functions of mod_xmpp.h (through t/modules/mod_xmpp_sendtest.c, built here
with apxs) -- and how each way refuses invalid calls.

Most tests share one httpd (event MPM) for speed; it connects as
app@localhost/bot.  Tests that need another configuration start their own
httpd, with another resource when it connects (two sessions with one full
JID would take the resource from each other in turn).
"""

import json
import os
import re
import shutil
import subprocess
import time
import urllib.parse
import xml.etree.ElementTree as ET

import pytest

from harness import util
from harness.httpd import Httpd, REPO_DIR, T_DIR, need_module

XMPP_SEND = os.path.join(REPO_DIR, "xmpp-send")
MODULE_SRC = os.path.join(T_DIR, "modules", "mod_xmpp_sendtest.c")
APP = "app@localhost"
APP_FULL = "app@localhost/bot"
SID_NS = "urn:xmpp:sid:0"
ORIGIN_ID_RE = re.compile(r"^mx-[0-9a-f]{32}$")
WAIT = 15.0  # seconds a stanza may take to reach a client

API_CONF = """
<Location /xmpp-api/>
    SetHandler xmpp-api
    Require local
</Location>
SetEnv PATH %s:/usr/bin:/bin
""" % REPO_DIR

SENDTEST_CONF = """
LoadModule xmpp_sendtest_module %s
<Location /sendtest>
    SetHandler xmpp-sendtest
    Require local
</Location>
"""

# -------------------------------------------------------------- helpers


def api(h, op, method="POST", **params):
    """Call the xmpp-api handler; `jid` may be a list.  Returns
    (HTTP status, decoded JSON)."""
    pairs = form_pairs(params)
    path = "/xmpp-api/" + op
    if method == "GET":
        resp = h.get(path + "?" + urllib.parse.urlencode(pairs))
    else:
        resp = h.post(path, data=pairs)
    assert resp.headers["Content-Type"].startswith("application/json"), resp
    return resp.status, json.loads(resp.body)


def form_pairs(params):
    pairs = []
    for name, value in params.items():
        if value is None:
            continue
        if name == "jid" and isinstance(value, (list, tuple)):
            pairs += [("jid", j) for j in value]
        else:
            pairs.append((name, value))
    return pairs


def xmpp_send(h, *args, stdin=None, resource=None):
    """Run the built xmpp-send as www-data (the User of httpd, as a CGI
    script would), with the environment mod_xmpp gives CGI scripts.
    Returns the CompletedProcess (text)."""
    env = dict(os.environ, XMPP_QUEUE=os.path.join(h.spool_dir, APP),
               XMPP_JID=APP)
    if resource:
        env["XMPP_RESOURCE"] = resource
    cmd = [XMPP_SEND] + list(args)
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "www-data", "--"] + cmd
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True,
                          env=env, timeout=30)


def ctest(h, op, **params):
    """Call an optional function through mod_xmpp_sendtest; returns its
    answer as a dict: found, rc, error, statuses ([(jid, status)]),
    available, show."""
    resp = h.post("/sendtest", data=[("op", op)] + form_pairs(params))
    assert resp.status == 200, resp.text
    out = {"statuses": []}
    for line in resp.text.splitlines():
        key, _, value = line.partition(" ")
        if key == "status":
            jid, _, st = value.rpartition(" ")
            out["statuses"].append((jid, st))
        else:
            out[key] = value
    assert out.get("found") == "1", resp.text
    return out


def origin_id(record):
    """The origin-id (XEP-0359) of a received message record, or None."""
    el = ET.fromstring(record["xml"]).find("{%s}origin-id" % SID_NS)
    return None if el is None else el.get("id")


def stanza_xml(record):
    return ET.fromstring(record["xml"])


def wait_connected(h, timeout=30.0):
    util.wait_for(lambda: h.status().get("XMPPApp1State") == "connected",
                  timeout, 0.1, "the app to be connected")


def from_app(resource="bot"):
    full = "%s/%s" % (APP, resource)
    return lambda m: m["from"] == full


def assert_origin_id(record):
    oid = origin_id(record)
    assert oid and ORIGIN_ID_RE.match(oid), record["xml"]
    return oid


# -------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def sendtest_module():
    """mod_xmpp_sendtest.so built with apxs in a temporary directory:
    (path, None), or (None, why) when it could not be built."""
    apxs = shutil.which("apxs") or "/usr/bin/apxs"
    if not os.path.exists(apxs):
        yield None, "apxs is not installed"
        return
    d = util.make_tempdir("mx-sendtest-")
    shutil.copy(MODULE_SRC, d)
    result = subprocess.run(
        [apxs, "-c", "-Wc,-Wall", "-Wc,-Werror",
         "-I", os.path.join(REPO_DIR, "mod_xmpp"), "mod_xmpp_sendtest.c"],
        cwd=d, capture_output=True, text=True, timeout=180,
        stdin=subprocess.DEVNULL)
    so = os.path.join(d, ".libs", "mod_xmpp_sendtest.so")
    if result.returncode != 0 or not os.path.exists(so):
        yield None, "apxs -c failed (%d):\n%s%s" % (
            result.returncode, result.stdout, result.stderr)
    else:
        yield so, None
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def app(request, prosody, sendtest_module):
    """One httpd for the module: event MPM, the default app (connected as
    app@localhost/bot), the xmpp-api handler on /xmpp-api/, the test
    module on /sendtest (when it was built), xmpp-send on PATH."""
    need_module()
    so, _ = sendtest_module
    extra = API_CONF + (SENDTEST_CONF % so if so else "")
    failed_before = request.session.testsfailed
    h = Httpd(prosody=prosody, extra_conf=extra)
    try:
        h.start()
        wait_connected(h)
    except Exception:
        print("\n===== tail of %s =====\n%s" % (h.error_log_file,
                                                util.tail(h.error_log_file)))
        h.stop()
        raise
    yield h
    clean = h.stop()
    if request.session.testsfailed > failed_before or not clean:
        print("\n===== shared httpd: tail of %s =====\n%s\nkept: %s" % (
            h.error_log_file, util.tail(h.error_log_file, 80), h.directory))
    else:
        h.cleanup()
    assert clean, "the shared httpd had to be killed"


@pytest.fixture
def capi(app, sendtest_module):
    """The shared httpd, for tests through the C API (fails when the test
    module could not be built)."""
    so, why = sendtest_module
    if not so:
        pytest.fail("mod_xmpp_sendtest could not be built: %s" % why)
    return app


@pytest.fixture
def alice(xmpp_client):
    return xmpp_client("alice")


# ---------------------------------------------------------------- bodies

BIG = "".join("%06d <&> \"' line\n" % i for i in range(6000))[:100 * 1024]
BODIES = {
    "xml-specials": "a <b>bold</b> & \"quoted\" 'apos' <&> ]]> &amp; end",
    "unicode": "caf\u00e9 \U0001f600 \u05e9\u05dc\u05d5\u05dd "
               "\u0645\u0631\u062d\u0628\u0627 \u4f60\u597d \u2603",
    # no CR: Prosody re-serializes a received &#13; as a raw CR, which the
    # client's parser turns into LF (seen client to client as well)
    "whitespace": "  two leading spaces\nsecond line\n\ttab, trailing  ",
    "100KB": BIG,
}


def send_way(way, h, jids, body, **kw):
    """Send a message by `way` (http, cli, c); returns [(jid, status)]."""
    if way == "http":
        status, answer = api(h, "send_message", jid=jids, body=body, **kw)
        assert status == 200, answer
        return list(zip(answer["jids"], answer["statuses"]))
    if way == "cli":
        args = ["message"]
        if kw.get("message_type"):
            args += ["--type", kw["message_type"]]
        if kw.get("raw_xml"):
            args.append("--raw-xml")
        if kw.get("from_jid"):
            args += ["--from", kw["from_jid"]]
        r = xmpp_send(h, *(args + list(jids) + ["--", body]))
        assert r.returncode in (0, 1), (r.returncode, r.stderr)
        return [tuple(line.rsplit(" ", 1)) for line in r.stdout.splitlines()]
    if way == "c":
        out = ctest(h, "send_message", jid=jids, body=body,
                    type=kw.get("message_type"),
                    raw_xml="1" if kw.get("raw_xml") else None,
                    from_jid=kw.get("from_jid"))
        assert out["rc"] == "SUCCESS", out
        return out["statuses"]
    raise ValueError(way)


WAYS = ["http", "cli", "c"]


def way_fixture(request, way):
    return request.getfixturevalue("capi" if way == "c" else "app")


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("name", list(BODIES))
def test_body_arrives_exactly(request, alice, way, name):
    h = way_fixture(request, way)
    tag = "[%s %s %s]" % (way, name, time.monotonic())
    body = tag + BODIES[name]
    assert send_way(way, h, ["alice@localhost"], body) == [
        ("alice@localhost", "NO_ERROR")]
    msg = alice.wait_message(WAIT, lambda m: (m["body"] or "").startswith(tag))
    assert msg["body"] == body, "body differs (lengths %d, %d)" % (
        len(msg["body"]), len(body))
    assert msg["from"] == APP_FULL
    assert msg["type"] == "chat"
    assert_origin_id(msg)


@pytest.mark.parametrize("mtype", ["chat", "normal", "headline"])
def test_message_type_to_bare_jid(app, alice, mtype):
    body = "type %s %s" % (mtype, time.monotonic())
    status, answer = api(app, "send_message", jid="alice@localhost",
                         body=body, message_type=mtype)
    assert (status, answer["statuses"]) == (200, ["NO_ERROR"]), answer
    msg = alice.wait_message(WAIT, lambda m: m["body"] == body)
    assert msg["type"] == mtype
    assert stanza_xml(msg).get("type") == mtype
    assert_origin_id(msg)


@pytest.mark.parametrize("mtype", ["error", "groupchat", "chat"])
def test_message_type_to_full_jid(app, alice, mtype):
    """Prosody discards type=error sent to a bare JID and answers
    groupchat to a bare JID of a user with service-unavailable (RFC 6121
    8.5.2); to a full JID both are delivered as they are."""
    body = "full %s %s" % (mtype, time.monotonic())
    status, answer = api(app, "send_message", jid=alice.full_jid,
                         body=body, message_type=mtype)
    assert (status, answer["statuses"]) == (200, ["NO_ERROR"]), answer
    msg = alice.wait_message(WAIT, lambda m: m["body"] == body)
    assert msg["type"] == mtype
    assert msg["to"] == alice.full_jid
    assert_origin_id(msg)


@pytest.mark.parametrize("way", WAYS)
def test_raw_xml_arrives_as_children(request, alice, way):
    h = way_fixture(request, way)
    token = "%s-%s" % (way, time.monotonic())
    raw = '<body>raw %s</body><x xmlns="urn:example:x">data</x>' % token
    assert send_way(way, h, ["alice@localhost"], raw, raw_xml=True) == [
        ("alice@localhost", "NO_ERROR")]
    msg = alice.wait_message(WAIT, lambda m: m["body"] == "raw " + token)
    root = stanza_xml(msg)
    x = root.find("{urn:example:x}x")
    assert x is not None and x.text == "data", msg["xml"]
    assert "&lt;" not in msg["xml"], msg["xml"]
    # (slixmpp writes the stanza without the stream's default namespace)
    assert [c.tag.split("}")[-1] for c in root].count("body") == 1
    assert_origin_id(msg)


def test_every_message_has_its_own_origin_id(app, alice, xmpp_client):
    bob = xmpp_client("bob")
    body = "origin %s" % time.monotonic()
    status, answer = api(app, "send_message", body=body,
                         jid=["alice@localhost", "bob@localhost"])
    assert answer["statuses"] == ["NO_ERROR", "NO_ERROR"]
    a = alice.wait_message(WAIT, lambda m: m["body"] == body)
    b = bob.wait_message(WAIT, lambda m: m["body"] == body)
    ids = {assert_origin_id(a), assert_origin_id(b)}
    assert len(ids) == 2, "two recipients, one origin-id: %s" % ids
    # the stanza id is kept alongside (Prosody passes it through)
    assert a["id"], a["xml"]


@pytest.mark.parametrize("way", WAYS)
def test_many_recipients_one_invalid(request, alice, xmpp_client, way):
    h = way_fixture(request, way)
    bob = xmpp_client("bob")
    body = "many %s %s" % (way, time.monotonic())
    jids = ["alice@localhost", "bad jid@localhost", "bob@localhost",
            "x@@localhost"]
    got = send_way(way, h, jids, body)
    assert got == list(zip(jids, ["NO_ERROR", "INVALID_JID", "NO_ERROR",
                                  "INVALID_JID"]))
    for client in (alice, bob):
        msg = client.wait_message(WAIT, lambda m: m["body"] == body)
        assert msg["from"] == APP_FULL
        assert_origin_id(msg)


def test_many_recipients_cli_exit_status(app):
    r = xmpp_send(app, "message", "alice@localhost", "bad jid@localhost",
                  "--", "exit status %s" % time.monotonic())
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert r.stdout.splitlines() == ["alice@localhost NO_ERROR",
                                     "bad jid@localhost INVALID_JID"]


def test_no_valid_recipient_is_invalid_jid_error(capi):
    """App Engine raised InvalidJidError when no recipient was valid."""
    status, answer = api(capi, "send_message", body="x",
                         jid=["bad jid@localhost", "@localhost"])
    assert (status, answer["error"]) == (400, "InvalidJidError")
    r = xmpp_send(capi, "message", "bad jid@localhost", "@localhost", "--",
                  "x")
    assert r.returncode == 2 and "InvalidJidError" in r.stderr, r
    out = ctest(capi, "send_message", jid=["bad jid@localhost"], body="x")
    assert out["rc"] == "EINVAL"
    assert out["error"].startswith("InvalidJidError")


# ------------------------------------------------------------ validation

STATUS_1025 = "\u00e9" * 1025
STATUS_1024 = "\u00e9" * 1024

# (id, error, operation, HTTP parameters)
INVALID = [
    ("no-body", "NoBodyError", "send_message",
     {"jid": "alice@localhost", "body": ""}),
    ("bad-recipient", "InvalidJidError", "send_message",
     {"jid": "bad jid@localhost", "body": "x"}),
    ("from-other-user", "InvalidJidError", "send_message",
     {"jid": "alice@localhost", "body": "x", "from_jid": "bob@localhost"}),
    ("from-other-resource", "InvalidJidError", "send_message",
     {"jid": "alice@localhost", "body": "x",
      "from_jid": "app@localhost/elsewhere"}),
    ("message-type", "InvalidTypeError", "send_message",
     {"jid": "alice@localhost", "body": "x", "message_type": "bogus"}),
    ("raw-xml-not-well-formed", "InvalidXmlError", "send_message",
     {"jid": "alice@localhost", "body": "<a><b></a>", "raw_xml": "true"}),
    ("raw-xml-text-garbage", "InvalidXmlError", "send_message",
     {"jid": "alice@localhost", "body": "a < b & c", "raw_xml": "true"}),
    ("invite-bad-jid", "InvalidJidError", "send_invite",
     {"jid": "bad jid@localhost"}),
    ("invite-bad-from", "InvalidJidError", "send_invite",
     {"jid": "alice@localhost", "from_jid": "bob@localhost"}),
    ("presence-type", "InvalidTypeError", "send_presence",
     {"jid": "alice@localhost", "presence_type": "bogus"}),
    ("presence-show", "InvalidShowError", "send_presence",
     {"jid": "alice@localhost", "presence_show": "sleeping"}),
    ("presence-status-1025", "InvalidStatusError", "send_presence",
     {"jid": "alice@localhost", "status": STATUS_1025}),
    ("presence-bad-jid", "InvalidJidError", "send_presence",
     {"jid": "bad jid@localhost"}),
    ("presence-bad-from", "InvalidJidError", "send_presence",
     {"jid": "alice@localhost", "from_jid": "bob@localhost"}),
    ("get-presence-bad-jid", "InvalidJidError", "get_presence",
     {"jid": "bad jid@localhost"}),
    ("get-presence-bad-from", "InvalidJidError", "get_presence",
     {"jid": "alice@localhost", "from_jid": "bob@localhost"}),
]


def cli_args(op, p):
    """xmpp-send arguments for an operation given as HTTP parameters."""
    cmd = {"send_message": "message", "send_invite": "invite",
           "send_presence": "presence", "get_presence": "get-presence"}[op]
    args = [cmd]
    if p.get("from_jid"):
        args += ["--from", p["from_jid"]]
    if p.get("message_type"):
        args += ["--type", p["message_type"]]
    if p.get("presence_type"):
        args += ["--type", p["presence_type"]]
    if p.get("presence_show"):
        args += ["--show", p["presence_show"]]
    if "status" in p:
        args += ["--status", p["status"]]
    if p.get("raw_xml"):
        args.append("--raw-xml")
    args.append(p["jid"])
    if op == "send_message":
        args += ["--", p["body"]]
    return args


def c_params(p):
    """mod_xmpp_sendtest parameters for HTTP parameters."""
    return {"jid": p["jid"], "body": p.get("body"),
            "from_jid": p.get("from_jid"),
            "type": p.get("message_type") or p.get("presence_type"),
            "show": p.get("presence_show"), "status": p.get("status"),
            "raw_xml": "1" if p.get("raw_xml") else None}


def queue_files(h):
    d = os.path.join(h.spool_dir, APP, "new")
    try:
        return sorted(os.listdir(d))
    except FileNotFoundError:
        return []


@pytest.mark.parametrize("case", INVALID, ids=[c[0] for c in INVALID])
def test_invalid_http(app, case):
    _, error, op, params = case
    method = "GET" if op == "get_presence" else "POST"
    status, answer = api(app, op, method=method, **params)
    assert status == 400, answer
    assert answer["error"] == error, answer
    assert answer.get("message"), answer


@pytest.mark.parametrize("case", INVALID, ids=[c[0] for c in INVALID])
def test_invalid_xmpp_send(app, case):
    _, error, op, params = case
    r = xmpp_send(app, *cli_args(op, params))
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert error in r.stderr, r.stderr
    assert r.stdout == "", r.stdout


@pytest.mark.parametrize("case", INVALID, ids=[c[0] for c in INVALID])
def test_invalid_c_api(capi, case):
    _, error, op, params = case
    out = ctest(capi, op, **c_params(params))
    assert out["rc"] == "EINVAL", out
    assert out["error"].startswith(error + ": "), out
    assert out["statuses"] == [], out


def test_no_body_parameter_at_all(capi):
    """A missing body is NoBodyError too (not only an empty one)."""
    status, answer = api(capi, "send_message", jid="alice@localhost")
    assert (status, answer["error"]) == (400, "NoBodyError")
    out = ctest(capi, "send_message", jid="alice@localhost")
    assert (out["rc"], out["error"].split(":")[0]) == ("EINVAL", "NoBodyError")
    # xmpp-send without "-- BODY" reads standard input: empty is no body
    r = xmpp_send(capi, "message", "alice@localhost", stdin="")
    assert r.returncode == 2 and "NoBodyError" in r.stderr, r


@pytest.mark.parametrize("way", WAYS)
def test_status_of_1024_characters_is_accepted(request, alice, way):
    h = way_fixture(request, way)
    status_text = ("%s:%s" % (way, STATUS_1024))[:1024]
    assert len(status_text) == 1024
    if way == "http":
        code, answer = api(h, "send_presence", jid="alice@localhost",
                           status=status_text)
        assert (code, answer.get("statuses")) == (200, ["NO_ERROR"]), answer
    elif way == "cli":
        r = xmpp_send(h, "presence", "--status", status_text,
                      "alice@localhost")
        assert (r.returncode, r.stdout) == (0, "alice@localhost NO_ERROR\n"), r
    else:
        out = ctest(h, "send_presence", jid="alice@localhost",
                    status=status_text)
        assert (out["rc"], out["statuses"]) == (
            "SUCCESS", [("alice@localhost", "NO_ERROR")]), out
    p = alice.wait_presence(lambda p: p["status"] == status_text, WAIT)
    assert p["from"] == APP_FULL


# ------------------------------------------------------ presence, invites


def test_send_presence_show_and_status(app, alice):
    for show in ("chat", "away", "dnd", "xa"):
        text = "show %s %s \u00e9 <&>" % (show, time.monotonic())
        code, answer = api(app, "send_presence", jid="alice@localhost",
                           status=text, presence_show=show)
        assert (code, answer["statuses"]) == (200, ["NO_ERROR"]), answer
        p = alice.wait_presence(lambda p: p["status"] == text, WAIT)
        assert (p["from"], p["type"], p["show"]) == (APP_FULL, "available",
                                                     show)
    text = "bye %s" % time.monotonic()
    code, answer = api(app, "send_presence", jid="alice@localhost",
                       status=text, presence_type="unavailable")
    assert answer["statuses"] == ["NO_ERROR"]
    p = alice.wait_presence(lambda p: p["status"] == text, WAIT)
    assert (p["from"], p["type"]) == (APP_FULL, "unavailable")


def fresh_user(prosody, prefix):
    """A new account: Prosody delivers a subscription request only to a
    user who neither is subscribed nor has one pending from the app, and
    the session's Prosody keeps rosters from test to test."""
    name = "%s%d" % (prefix, time.time_ns() % 10**12)
    prosody.add_user(name)
    return name


def test_send_invite_is_a_subscription_request(app, prosody, xmpp_client):
    user = fresh_user(prosody, "inv")
    jid = prosody.jid(user)
    carol = xmpp_client(user, auto_authorize=None)
    code, answer = api(app, "send_invite", jid=jid)
    assert (code, answer) == (200, {"jids": [jid], "statuses": ["NO_ERROR"]})
    p = carol.wait_presence(lambda p: p["type"] == "subscribe", WAIT)
    assert p["from"] == APP, "an invitation comes from the bare JID"
    assert p["to"].split("/")[0] == jid


@pytest.mark.parametrize("way", ["cli", "c"])
def test_send_invite_by_cli_and_c(request, prosody, xmpp_client, way):
    h = way_fixture(request, way)
    user = fresh_user(prosody, "inv" + way)
    jid = prosody.jid(user)
    carol = xmpp_client(user, auto_authorize=None)
    if way == "cli":
        r = xmpp_send(h, "invite", jid)
        assert (r.returncode, r.stdout) == (0, jid + " NO_ERROR\n"), r
    else:
        out = ctest(h, "send_invite", jid=jid)
        assert (out["rc"], out["statuses"]) == ("SUCCESS",
                                                [(jid, "NO_ERROR")]), out
    p = carol.wait_presence(lambda p: p["type"] == "subscribe", WAIT)
    assert p["from"] == APP


def subscribe_to_app(h, client):
    """`client` subscribes to the app; the app accepts and asks back (the
    harness client accepts).  Returns once the holder's roster file names
    the client as a subscriber and both see each other."""
    client.subscribe(APP)
    client.wait_available(APP_FULL, WAIT)
    roster = os.path.join(h.spool_dir, APP, "roster")
    bare = client.jid.split("/")[0]

    def listed():
        try:
            with open(roster) as f:
                return bare in f.read().split()
        except FileNotFoundError:
            return False
    util.wait_for(listed, WAIT, 0.1, "%s in the app's roster file" % bare)


def test_presence_to_subscribers(app, alice):
    subscribe_to_app(app, alice)
    text = "to all subscribers %s" % time.monotonic()
    code, answer = api(app, "send_presence", jid="subscribers", status=text,
                       presence_show="dnd")
    assert (code, answer) == (200, {"jids": ["subscribers"],
                                    "statuses": ["NO_ERROR"]})
    p = alice.wait_presence(lambda p: p["status"] == text, WAIT)
    assert (p["from"], p["show"]) == (APP_FULL, "dnd")
    # xmpp-send reaches them too
    text = "cli subscribers %s" % time.monotonic()
    r = xmpp_send(app, "presence", "--status", text, "subscribers")
    assert (r.returncode, r.stdout) == (0, "subscribers NO_ERROR\n"), r
    alice.wait_presence(lambda p: p["status"] == text, WAIT)


def test_presence_to_subscribers_roster_lines_stay_addresses(app, alice):
    """Each line of the roster file goes into a to="..." of its own copy:
    a line that is not a valid JID is left out and the address is
    escaped, so no line can add a stanza (here a chat message to alice)
    to the stream."""
    subscribe_to_app(app, alice)
    roster = os.path.join(app.spool_dir, APP, "roster")
    with open(roster) as f:
        saved = f.read()
    run = "roster-lines-%d" % time.time_ns()
    injected = ('x"/><message to="alice@localhost" type="chat"><body>%s '
                'injected</body></message><presence to="alice@localhost'
                % run)
    try:
        with open(roster, "w") as f:
            f.write("%s\n\nalice@localhost\r\n" % injected)
        text = "roster lines %s" % run
        code, answer = api(app, "send_presence", jid="subscribers",
                           status=text)
        assert answer["statuses"] == ["NO_ERROR"], answer
        alice.wait_presence(lambda p: p["status"] == text, WAIT)
        code, answer = api(app, "send_message", jid="alice@localhost",
                           body=run + " after")
        alice.wait_message(WAIT, lambda m: m["body"] == run + " after")
        with alice.lock:
            bodies = [m["body"] for m in alice.messages
                      if (m["body"] or "").startswith(run)]
        assert bodies == [run + " after"]
    finally:
        with open(roster, "w") as f:
            f.write(saved)


def presence_http(h, jid):
    code, answer = api(h, "get_presence", method="GET", jid=jid)
    assert code == 200, answer
    assert answer["jid"] == jid
    return answer["available"], answer["show"]


def presence_cli(h, jid):
    r = xmpp_send(h, "get-presence", jid)
    assert r.returncode == 0, r
    words = r.stdout.split()
    assert words[0] == jid and words[1] in ("available", "unavailable"), r
    return words[1] == "available", words[2] if len(words) > 2 else ""


def presence_c(h, jid):
    out = ctest(h, "get_presence", jid=jid)
    assert out["rc"] == "SUCCESS", out
    return out["available"] == "1", out["show"]


def wait_presence_state(h, jid, expected, with_c, what):
    """Poll get_presence (HTTP) until it answers `expected`, then check
    that xmpp-send and (with_c) the C API answer the same."""
    seen = []

    def check():
        seen[:] = [presence_http(h, jid)]
        return seen[0] == expected
    try:
        util.wait_for(check, WAIT, 0.2, what)
    except TimeoutError:
        raise AssertionError("%s: get_presence(%s) stayed %r, expected %r"
                             % (what, jid, seen, expected)) from None
    assert presence_cli(h, jid) == expected
    if with_c:
        assert presence_c(h, jid) == expected


def test_get_presence_follows_the_client(capi, xmpp_client):
    for get in (presence_http, presence_cli, presence_c):
        assert get(capi, "nobody@localhost") == (False, "")
    alice = xmpp_client("alice")
    subscribe_to_app(capi, alice)
    wait_presence_state(capi, "alice@localhost", (True, ""), True, "online")
    # POST works as well as GET
    code, answer = api(capi, "get_presence", jid="alice@localhost")
    assert (code, answer["available"]) == (200, True), answer
    alice.set_presence(show="away", status="out")
    wait_presence_state(capi, "alice@localhost", (True, "away"), True, "away")
    alice.set_presence(show="dnd")
    wait_presence_state(capi, "alice@localhost", (True, "dnd"), True, "dnd")
    alice.set_presence()
    wait_presence_state(capi, "alice@localhost", (True, ""), True, "back")
    alice.disconnect()
    wait_presence_state(capi, "alice@localhost", (False, ""), True, "offline")


def test_get_presence_of_several_jids(capi, xmpp_client):
    """App Engine's get_presence with a list: an answer per JID, in order,
    an invalid one marked so, the others answered (HTTP, xmpp-send, C)."""
    alice = xmpp_client("alice")
    subscribe_to_app(capi, alice)
    alice.set_presence(show="away")
    wait_presence_state(capi, "alice@localhost", (True, "away"), False,
                        "away")
    jids = ["alice@localhost", "bad@@j", "nobody@localhost"]
    code, answer = api(capi, "get_presence", method="GET", jid=jids)
    assert code == 200, answer
    assert answer["jids"] == jids
    assert answer["presences"] == [
        {"jid": "alice@localhost", "valid": True, "available": True,
         "show": "away"},
        {"jid": "bad@@j", "valid": False, "available": False, "show": ""},
        {"jid": "nobody@localhost", "valid": True, "available": False,
         "show": ""}]
    r = xmpp_send(capi, "get-presence", *jids)
    assert r.returncode == 1, r
    assert r.stdout.splitlines() == ["alice@localhost available away",
                                     "bad@@j INVALID_JID",
                                     "nobody@localhost unavailable"], r
    r = xmpp_send(capi, "get-presence", "alice@localhost", "nobody@localhost")
    assert r.returncode == 0, r
    assert len(r.stdout.splitlines()) == 2, r
    resp = capi.post("/sendtest", data=[("op", "get_presences")]
                     + [("jid", j) for j in jids])
    assert resp.status == 200, resp.text
    assert [l for l in resp.text.splitlines() if l.startswith("presence ")] \
        == ["presence alice@localhost 1 1 away", "presence bad@@j 0 0 -",
            "presence nobody@localhost 1 0 -"], resp.text
    # a from_jid that is not the app's concerns every JID: an error
    code, answer = api(capi, "get_presence", method="GET", jid=jids,
                       from_jid="other@localhost")
    assert (code, answer["error"]) == (400, "InvalidJidError"), answer
    out = ctest(capi, "get_presences", jid=jids, from_jid="other@localhost")
    assert out["rc"] == "EINVAL" and "InvalidJidError" in out["error"], out
    alice.disconnect()


def test_get_presence_with_two_resources(app, xmpp_client):
    """A contact is available while any of its resources is: one of two
    going offline leaves it available."""
    first = xmpp_client("alice", resource="first")
    subscribe_to_app(app, first)
    wait_presence_state(app, "alice@localhost", (True, ""), False, "first")
    second = xmpp_client("alice", resource="second")
    second.set_presence(show="xa")
    wait_presence_state(app, "alice@localhost", (True, "xa"), False, "second")
    second.disconnect()
    first.wait_unavailable("alice@localhost/second", WAIT)
    # the app got the same unavailable presence; give it time to store it
    time.sleep(1.0)
    assert presence_http(app, "alice@localhost")[0] is True, \
        "alice/first is still online"
    first.disconnect()
    wait_presence_state(app, "alice@localhost", (False, ""), False, "offline")


# ---------------------------------------------------------- C API, misc


def test_c_api_sends_and_defaults(capi, alice):
    body = "from C %s" % time.monotonic()
    out = ctest(capi, "send_message", jid="alice@localhost", body=body,
                from_jid=APP)
    assert (out["rc"], out["error"]) == ("SUCCESS", "(null)"), out
    msg = alice.wait_message(WAIT, lambda m: m["body"] == body)
    # from_jid given as the bare JID: the stanza says so
    assert msg["from"] in (APP, APP_FULL), msg
    assert_origin_id(msg)
    text = "C presence %s" % time.monotonic()
    out = ctest(capi, "send_presence", jid="alice@localhost", status=text,
                show="chat")
    assert out["statuses"] == [("alice@localhost", "NO_ERROR")], out
    p = alice.wait_presence(lambda p: p["status"] == text, WAIT)
    assert (p["from"], p["show"]) == (APP_FULL, "chat")


def test_from_jid_the_app_may_use(app, alice):
    for from_jid in (APP, APP_FULL):
        body = "from %s %s" % (from_jid, time.monotonic())
        code, answer = api(app, "send_message", jid="alice@localhost",
                           body=body, from_jid=from_jid)
        assert answer["statuses"] == ["NO_ERROR"], answer
        msg = alice.wait_message(WAIT, lambda m: m["body"] == body)
        # the server stamps the sending session's full JID on a bare from
        assert msg["from"] in (from_jid, APP_FULL)


def test_api_unknown_operation_and_method(app):
    resp = app.post("/xmpp-api/send_nothing", data={"jid": "a@b"})
    assert resp.status == 404
    assert json.loads(resp.body)["error"] == "UnknownOperation"
    resp = app.get("/xmpp-api/send_message?jid=alice@localhost&body=x")
    assert resp.status == 405


# ------------------------------------------------------------------- CGI


def test_cgi_script_sends_with_no_options(app, alice):
    tag = "t%d" % int(time.monotonic() * 1000)
    resp = app.get("/cgi-bin/send.cgi?" + tag)
    assert resp.status == 200, resp.text
    assert "alice@localhost NO_ERROR" in resp.text.splitlines(), resp.text
    assert "exit=0" in resp.text, resp.text
    msg = alice.wait_message(WAIT, lambda m: m["body"] ==
                             "hello from a CGI script " + tag)
    assert msg["from"] == APP_FULL
    assert_origin_id(msg)


def test_cgi_environment(app, prosody):
    resp = app.get("/cgi-bin/env.cgi")
    assert resp.status == 200, resp.text
    env = dict(line.split("=", 1) for line in resp.text.splitlines()
               if "=" in line)
    assert env.get("XMPP_QUEUE") == os.path.join(app.spool_dir, APP), env
    assert env.get("XMPP_JID") == APP
    assert env.get("XMPP_RESOURCE") == "bot"
    assert prosody.password("app") not in resp.text
    assert not [k for k in env if "PASS" in k.upper() or "SECRET" in
                k.upper()], env


def test_cgi_under_prefork(httpd_factory, xmpp_client):
    """mod_cgi (prefork) passes the same environment as mod_cgid; another
    resource, so as not to fight the shared httpd's session, and the CGI
    sends from it (XMPP_RESOURCE)."""
    h = httpd_factory(mpm="prefork", app_conf={"XMPPResource": "cgi"},
                      extra_conf=API_CONF, start=True)
    wait_connected(h)
    alice = xmpp_client("alice")
    tag = "p%d" % int(time.monotonic() * 1000)
    resp = h.get("/cgi-bin/send.cgi?" + tag)
    assert "alice@localhost NO_ERROR" in resp.text.splitlines(), resp.text
    msg = alice.wait_message(WAIT, lambda m: m["body"] ==
                             "hello from a CGI script " + tag)
    assert msg["from"] == APP + "/cgi"


# -------------------------------------------------------------- dev mode


def dev_block(log, header, since):
    """The labelled values logged after `header` (App Engine's dev server
    format: a label line, then the value line)."""
    idx = log.find(header, since)
    assert idx >= 0
    lines = [re.sub(r"^\[[^\]]*\] (\[[^\]]*\] )*", "", line).rstrip()
             for line in log[idx:].splitlines()[1:14]]
    values = {}
    i = 0
    while i + 1 < len(lines) and lines[i].startswith("    ") and \
            lines[i].strip().endswith(":"):
        values[lines[i].strip()[:-1]] = lines[i + 1].strip()
        i += 2
    return values


def test_dev_mode_logs_and_sends_nothing(httpd_factory, alice):
    h = httpd_factory(app_conf={"XMPPDevMode": "On"}, extra_conf=API_CONF,
                      start=True)
    util.wait_for(lambda: h.status().get("XMPPApp1State") == "dev mode",
                  10, 0.1, "dev mode state")
    mark = len(alice.messages)
    pmark = len(alice.presences)
    body = "dev body %s" % time.monotonic()
    code, answer = api(h, "send_message", jid="alice@localhost", body=body,
                       message_type="headline")
    assert answer["statuses"] == ["NO_ERROR"]
    since = 0
    h.wait_log(r"Sending an XMPP Message:", 10, since)
    h.wait_log(re.escape(body), 10, since)
    h.wait_log(r"To JIDs:\s*\n.*alice@localhost", 10, since)
    values = dev_block(h.error_log(), "Sending an XMPP Message:", since)
    assert values == {"From": APP_FULL, "Body": body, "Type": "headline",
                      "Raw Xml": "False", "To JIDs": "alice@localhost"}, \
        values
    # an invitation and a presence are logged as well
    offset = h.log_size()
    api(h, "send_invite", jid="bob@localhost")
    h.wait_log(r"Sending an XMPP Invite:", 10, offset)
    offset = h.log_size()
    api(h, "send_presence", jid="alice@localhost", presence_show="away",
        status="dev status")
    h.wait_log(r"Sending an XMPP Presence:", 10, offset)
    h.wait_log(r"dev status", 10, offset)
    # the queue was emptied into the log
    util.wait_for(lambda: h.status().get("XMPPApp1Queued") == "0", 5, 0.2,
                  "the queue to be empty")
    assert queue_files(h) == []
    time.sleep(1.5)
    assert not [m for m in alice.messages[mark:] if body in (m["body"] or "")]
    assert not [p for p in alice.presences[pmark:]
                if p["status"] == "dev status"]
    assert h.status()["XMPPApp1State"] == "dev mode"


def test_dev_mode_raw_xml_is_logged_as_raw(httpd_factory):
    h = httpd_factory(app_conf={"XMPPDevMode": "On"}, extra_conf=API_CONF,
                      start=True)
    util.wait_for(lambda: h.status().get("XMPPApp1State") == "dev mode",
                  10, 0.1, "dev mode state")
    offset = h.log_size()
    raw = '<body>raw dev</body><x xmlns="urn:example:x">data</x>'
    code, answer = api(h, "send_message", jid="alice@localhost", body=raw,
                       raw_xml="true")
    assert answer["statuses"] == ["NO_ERROR"]
    h.wait_log(r"To JIDs:\s*\n.*alice@localhost", 10, offset)
    values = dev_block(h.error_log(), "Sending an XMPP Message:", offset)
    assert values.get("Raw Xml") == "True", values
