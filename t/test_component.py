# SPDX-License-Identifier: Apache-2.0
"""Component mode (SPEC section 6): with XMPPComponent the app is an
external component (XEP-0114) of the private Prosody and owns every
address of its domain, as App Engine apps owned
anything@app-id.appspotchat.com.  The other side is a real client
(slixmpp) logged in to that Prosody.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
import urllib.parse

import pytest

from harness import util
from harness.httpd import REPO_DIR
from test_console import post_form
from test_durability import Gate, Outage, origin_id
from test_send import SENDTEST_CONF, ctest, sendtest_module  # noqa: F401

XMPP_SEND = os.path.join(REPO_DIR, "xmpp-send")
T_DIR = os.path.dirname(os.path.abspath(__file__))
ENV_CGI = os.path.join(T_DIR, "cgi-bin", "env.cgi")

HANDLERS = """
ScriptAliasMatch "^/_ah/xmpp/message/chat/$" "%s"
ScriptAliasMatch "^/_ah/xmpp/(subscription|presence)/" "%s"
<Location /_ah/xmpp/>
    Require xmpp-internal
</Location>
<Location /xmpp-api/>
    SetHandler xmpp-api
    Require local
</Location>
<Location /console>
    SetHandler xmpp-console
    Require local
</Location>
""" % (ENV_CGI, ENV_CGI)


def component_conf(h, prosody, **overrides):
    """The default app's directives turned into a component app."""
    secret = h.write_file("component.secret",
                          prosody.component_secret + "\n", 0o600)
    conf = {"XMPPJID": None, "XMPPPasswordFile": None,
            "XMPPComponent": prosody.component_domain,
            "XMPPComponentSecretFile": secret,
            "XMPPServer": "127.0.0.1:%d" % prosody.component_port}
    conf.update(overrides)
    return conf


def status(h):
    try:
        return h.status()
    except Exception:
        return {}


def wait_connected(h, timeout=30.0):
    util.wait_for(lambda: status(h).get("XMPPApp1State") == "connected",
                  timeout, 0.1, "the component to be connected")


@pytest.fixture
def component(httpd_factory, prosody):
    """An httpd whose app is the Prosody's component; started, connected."""
    def make(mpm="event", extra_conf="", **overrides):
        h = httpd_factory(mpm=mpm, extra_conf=HANDLERS + extra_conf)
        h.write_config(app_conf=component_conf(h, prosody, **overrides),
                       extra_conf=HANDLERS + extra_conf)
        h.start()
        wait_connected(h)
        return h
    return make


def api(h, op, **params):
    pairs = []
    for name, value in params.items():
        if isinstance(value, (list, tuple)):
            pairs += [(name, v) for v in value]
        elif value is not None:
            pairs.append((name, value))
    resp = h.post("/xmpp-api/" + op, data=pairs)
    return resp.status, json.loads(resp.body)


def xmpp_send(h, prosody, *args):
    domain = prosody.component_domain
    env = dict(os.environ, XMPP_QUEUE=os.path.join(h.spool_dir, domain),
               XMPP_JID=domain)
    cmd = [XMPP_SEND] + list(args)
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "www-data", "--"] + cmd
    return subprocess.run(cmd, capture_output=True, text=True, env=env,
                          timeout=30, stdin=subprocess.DEVNULL)


def bare(jid):
    return jid.split("/", 1)[0]


# ------------------------------------------------------------ configuration

def test_configtest_refuses_both_modes(httpd_factory, prosody):
    h = httpd_factory()
    conf = component_conf(h, prosody, XMPPJID=prosody.jid("app"),
                          XMPPPasswordFile=h.password_file)
    rc, out = h.configtest(h.render_config(app_conf=conf))
    assert rc != 0, out
    assert re.search(r"XMPPEngine On .*both client mode .*XMPPJID.*"
                     r"component mode .*XMPPComponent", out), out


def test_configtest_refuses_neither_mode(httpd_factory):
    h = httpd_factory(app_conf={"XMPPJID": None, "XMPPPasswordFile": None})
    rc, out = h.configtest()
    assert rc != 0, out
    assert re.search(r"needs XMPPJID and XMPPPasswordFile \(client mode\) "
                     r"or XMPPComponent and XMPPComponentSecretFile "
                     r"\(component mode\)", out), out


@pytest.mark.parametrize("missing", ["XMPPComponent",
                                     "XMPPComponentSecretFile"])
def test_configtest_refuses_half_a_component(httpd_factory, prosody,
                                             missing):
    h = httpd_factory()
    conf = component_conf(h, prosody, **{missing: None})
    rc, out = h.configtest(h.render_config(app_conf=conf))
    assert rc != 0, out
    assert re.search(r"XMPPEngine On .*needs %s \(component mode\)"
                     % missing, out), out


def test_configtest_accepts_a_component(httpd_factory, prosody):
    h = httpd_factory()
    rc, out = h.configtest(h.render_config(
        app_conf=component_conf(h, prosody)))
    assert rc == 0, out
    assert "Syntax OK" in out


def test_secret_readable_by_others_warns_and_empty_stops(httpd_factory,
                                                        prosody):
    h = httpd_factory()
    conf = component_conf(h, prosody)
    os.chmod(conf["XMPPComponentSecretFile"], 0o644)
    h.write_config(app_conf=conf)
    h.start()
    wait_connected(h)
    warn = [line for line in h.error_log().splitlines()
            if re.search(r"\[xmpp:warn\].*XMPPComponentSecretFile.*"
                         r"readable by every user", line)]
    assert warn, h.error_log()
    assert prosody.component_secret not in h.error_log()
    h.stop()
    with open(conf["XMPPComponentSecretFile"], "w") as f:
        f.write("\n")
    from harness.httpd import HttpdStartError
    with pytest.raises(HttpdStartError) as err:
        h.start()
    assert re.search(r"XMPPComponentSecretFile .* is empty: put the secret",
                     err.value.output), err.value.output


def test_wrong_secret_says_so(httpd_factory, prosody):
    h = httpd_factory()
    conf = component_conf(h, prosody)
    h.write_file("component.secret", "not-the-secret\n", 0o600)
    h.write_config(app_conf=conf)
    h.start()
    line = h.wait_log(r"XMPP0104: .*refused the component secret for %s"
                      % re.escape(prosody.component_domain), timeout=20)
    assert "not-the-secret" not in h.error_log()
    assert status(h).get("XMPPApp1State") != "connected"
    assert line


# ------------------------------------------------------------ addresses

def test_each_address_is_posted_with_its_to_and_answers_from_it(
        component, prosody, xmpp_client):
    h = component()
    domain = prosody.component_domain
    alice = xmpp_client("alice")
    for local in ("support", "t-42"):
        to = "%s@%s" % (local, domain)
        n = len(alice.messages)
        alice.send_message(to, "hello " + local)
        msg = alice.wait_message(15, lambda m: m["from"] and bare(
            m["from"]) == to, since=n)
        # the handler saw the address written to, and the reply comes
        # from that address
        assert "XMPP_TO=%s\n" % to in msg["body"], msg["body"]
        assert "XMPP_ARG=hello %s\n" % local in msg["body"], msg["body"]
        # what xmpp-send needs in a CGI: the domain is the app's JID
        assert "XMPP_JID=%s\n" % domain in msg["body"], msg["body"]
        assert msg["from"] == to, msg
    # the status page says what the app is
    st = status(h)
    assert st["XMPPApp1Mode"] == "component", st
    assert st["XMPPApp1JID"] == domain, st


def test_send_from_any_address_of_the_domain(component, prosody,
                                             xmpp_client):
    h = component()
    domain = prosody.component_domain
    alice = xmpp_client("alice")
    code, answer = api(h, "send_message", jid=prosody.jid("alice"),
                       body="via api", from_jid="alerts@" + domain)
    assert code == 200 and answer["statuses"] == ["NO_ERROR"], answer
    msg = alice.wait_message(15, lambda m: m["body"] == "via api")
    assert msg["from"] == "alerts@%s/bot" % domain, msg

    r = xmpp_send(h, prosody, "message", "--from", "news@" + domain + "/x",
                  prosody.jid("alice"), "--", "via xmpp-send")
    assert r.returncode == 0, r.stderr
    msg = alice.wait_message(15, lambda m: m["body"] == "via xmpp-send")
    assert msg["from"] == "news@%s/x" % domain, msg

    # without from_jid: the domain itself, resource bot
    code, answer = api(h, "send_message", jid=prosody.jid("alice"),
                       body="default from")
    msg = alice.wait_message(15, lambda m: m["body"] == "default from")
    assert msg["from"] == "%s/bot" % domain, msg


@pytest.mark.parametrize("from_jid", ["alerts@localhost", "app@localhost",
                                      "localhost", "x@sub.%(domain)s"])
def test_from_another_domain_is_invalid_jid(component, prosody, from_jid):
    h = component()
    from_jid = from_jid % {"domain": prosody.component_domain}
    code, answer = api(h, "send_message", jid=prosody.jid("alice"),
                       body="no", from_jid=from_jid)
    assert code == 400 and answer["error"] == "InvalidJidError", answer
    r = xmpp_send(h, prosody, "message", "--from", from_jid,
                  prosody.jid("alice"), "--", "no")
    assert r.returncode == 2 and "InvalidJidError" in r.stderr, r


def test_c_api_sends_from_addresses_of_the_domain(httpd_factory, prosody,
                                                  xmpp_client,
                                                  sendtest_module):
    so, why = sendtest_module
    assert so, why
    h = httpd_factory(extra_conf=HANDLERS + SENDTEST_CONF % so)
    h.write_config(app_conf=component_conf(h, prosody),
                   extra_conf=HANDLERS + SENDTEST_CONF % so)
    h.start()
    wait_connected(h)
    domain = prosody.component_domain
    alice = xmpp_client("alice")
    out = ctest(h, "send_message", jid=prosody.jid("alice"), body="via C",
                from_jid="alerts@" + domain)
    assert out["rc"] == "SUCCESS", out
    assert out["statuses"] == [(prosody.jid("alice"), "NO_ERROR")], out
    msg = alice.wait_message(15, lambda m: m["body"] == "via C")
    assert msg["from"] == "alerts@%s/bot" % domain, msg
    for bad in ("alerts@localhost", "x@other." + domain):
        out = ctest(h, "send_message", jid=prosody.jid("alice"), body="no",
                    from_jid=bad)
        assert out["rc"] == "EINVAL", out
        assert out["error"].startswith("InvalidJidError"), out


def test_console_shows_the_domain_and_simulates_any_address(component,
                                                            prosody,
                                                            xmpp_client):
    h = component()
    domain = prosody.component_domain
    alice = xmpp_client("alice")
    page = h.get("/console").text
    assert "<th>Mode</th><td>component" in page, page
    assert "<th>Domain</th><td>%s</td>" % domain in page, page
    n = len(alice.messages)
    resp = post_form(h, {"kind": "message", "from": prosody.jid("alice"),
                         "to": "t-42@" + domain, "body": "from the console"})
    assert resp.status == 200
    assert "XMPP_TO=t-42@%s" % domain in resp.text, resp.text
    # its answer is a real reply, from the address simulated
    msg = alice.wait_message(15, lambda m: "from the console" in
                             (m["body"] or ""), since=n)
    assert msg["from"] == "t-42@" + domain, msg
    resp = post_form(h, {"kind": "message", "from": prosody.jid("alice"),
                         "to": "t-42@localhost", "body": "x"})
    assert "not an address of the component" in resp.text, resp.text


# ------------------------------------------------------------ durability

N = 15


def received(client, prefix):
    with client.lock:
        return [m for m in client.messages
                if (m["body"] or "").startswith(prefix)]


def test_kill_9_with_items_queued_and_prosody_restarted(component, prosody,
                                                        xmpp_client):
    """Sends accepted while Prosody is down survive kill -9 of the holder
    and arrive, in order, from the address they were sent from, once
    Prosody and the component are back (the component reconnects with a
    fresh connection object per attempt)."""
    gate = Gate(prosody.component_port)
    try:
        h = component(XMPPServer="127.0.0.1:%d" % gate.port)
        domain = prosody.component_domain
        run = "run-%d" % time.time_ns()
        bodies = ["%s #%02d" % (run, i) for i in range(N)]
        with Outage(prosody, gate, h):
            for body in bodies:
                code, answer = api(h, "send_message",
                                   jid=[prosody.jid("alice"),
                                        prosody.jid("bob")],
                                   body=body, from_jid="support@" + domain)
                assert answer["statuses"] == ["NO_ERROR"] * 2, answer
            pid = int(status(h)["XMPPApp1HolderPID"])
            os.kill(pid, signal.SIGKILL)
            util.wait_for(lambda: not util.pid_alive(pid), 10, 0.05,
                          "the holder to die")
            util.wait_for(lambda: status(h).get("XMPPApp1HolderPID")
                          not in (None, "0", str(pid)), 15, 0.1,
                          "another child to hold")
        clients = [xmpp_client("alice"), xmpp_client("bob")]
        gate.open()
        wait_connected(h, 90)
        for c in clients:
            util.wait_for(lambda: len({m["body"] for m in received(c, run)})
                          >= N, 60, 0.2, "%d messages at %s" % (N, c.jid))
            msgs = received(c, run)
            first = []
            for m in msgs:
                assert m["from"] == "support@%s/bot" % domain, m
                if m["body"] not in first:
                    first.append(m["body"])
            assert first == bodies, first
            ids = {}
            for m in msgs:
                ids.setdefault(origin_id(m), set()).add(m["body"])
            assert None not in ids and all(len(b) == 1
                                           for b in ids.values()), ids
    finally:
        gate.close()


# ------------------------------------------------------------ contacts


def presence_api(h, **params):
    code, answer = api(h, "send_presence", **params)
    assert code == 200 and answer["statuses"] == ["NO_ERROR"], answer


def get_presence(h, jid, from_jid):
    resp = h.get("/xmpp-api/get_presence?" + urllib.parse.urlencode(
        {"jid": jid, "from_jid": from_jid}))
    assert resp.status == 200, resp.text
    return json.loads(resp.body)


def fresh(name):
    """A local part no other test used: Prosody keeps the clients'
    rosters for the whole session, so each test subscribes anew."""
    return "%s-%x" % (name, time.time_ns())


def subscribe_to(client, address):
    """client subscribes to address; the component accepts and asks back,
    the client (auto_authorize) accepts: both see each other."""
    n = len(client.presences)
    client.subscribe(address)
    client.wait_presence(lambda p: bare(p["from"]) == address
                         and p["type"] == "subscribed", 15, since=n)
    client.wait_presence(lambda p: bare(p["from"]) == address
                         and p["type"] == "subscribe", 15, since=n)
    util.wait_for(lambda: client.subscription(address) == "both", 15, 0.1,
                  "%s subscribed both ways to %s" % (client.jid, address))


def test_subscriptions_per_address_survive_restarts(component, prosody,
                                                    xmpp_client):
    domain = prosody.component_domain
    support = "%s@%s" % (fresh("support"), domain)
    t42 = "%s@%s" % (fresh("t-42"), domain)
    h = component(extra_conf="XMPPInboundServices message subscribe presence\n")
    alice = xmpp_client("alice")
    bob = xmpp_client("bob")
    subscribe_to(alice, support)
    subscribe_to(bob, t42)
    # the subscription was posted to the app too, with its own to
    util.wait_for(lambda: "POST /_ah/xmpp/subscription/subscribe/" in
                  h.access_log(), 15, 0.2, "the subscribe posted")

    def round_of(tag):
        """A presence to the subscribers of support, then one to those of
        t-42: alice gets the first, bob the second and (queued in that
        order) never the first."""
        na, nb = len(alice.presences), len(bob.presences)
        presence_api(h, jid="subscribers", from_jid=support,
                     status="support " + tag, presence_show="away")
        presence_api(h, jid="subscribers", from_jid=t42,
                     status="t-42 " + tag)
        p = alice.wait_presence(lambda p: p["status"] == "support " + tag,
                                15, since=na)
        assert p["from"] == support + "/bot" and p["show"] == "away", p
        bob.wait_presence(lambda p: p["status"] == "t-42 " + tag, 15,
                          since=nb)
        assert not [p for p in bob.presences[nb:]
                    if p["status"] == "support " + tag], bob.presences[nb:]
        assert not [p for p in alice.presences[na:]
                    if p["status"] == "t-42 " + tag]

    round_of("first")
    # the console lists who is subscribed to which address (the client's
    # "subscribed" may reach the component after its roster says both)
    util.wait_for(lambda: all(
        "%s:\n%s both\n" % pair in h.get("/console").text
        for pair in ((support, prosody.jid("alice")),
                     (t42, prosody.jid("bob")))), 15, 0.2,
        "the console to list both subscriptions")
    # kill -9 of the holder: the next holder still knows them
    pid = int(status(h)["XMPPApp1HolderPID"])
    os.kill(pid, signal.SIGKILL)
    util.wait_for(lambda: status(h).get("XMPPApp1HolderPID")
                  not in (None, "0", str(pid))
                  and status(h).get("XMPPApp1State") == "connected", 30,
                  0.1, "another child to hold and connect")
    round_of("after kill -9")
    # and so does a new httpd
    na = len(alice.presences)
    assert h.stop()
    h.start()
    wait_connected(h)
    # at login the component tells each subscriber it is online
    alice.wait_presence(lambda p: p["from"] == support + "/bot"
                        and p["type"] == "available", 15, since=na)
    round_of("after restart")


def test_probe_answered_and_get_presence_follows_the_client(
        component, prosody, xmpp_client):
    domain = prosody.component_domain
    support = "%s@%s" % (fresh("support"), domain)
    h = component()
    alice = xmpp_client("alice", resource="one")
    subscribe_to(alice, support)
    alice_bare = prosody.jid("alice")
    alice.set_presence(show="dnd", status="busy")
    util.wait_for(lambda: get_presence(h, alice_bare, support)["show"]
                  == "dnd", 15, 0.2, "get_presence to say dnd")
    assert get_presence(h, alice_bare, support)["available"] is True
    # another address of the domain has no such contact
    assert get_presence(h, alice_bare, "t-42@" + domain)["available"] \
        is False
    # a new httpd knows her presence again: at login the component probes
    # the contacts its addresses are subscribed to
    assert h.stop()
    h.start()
    wait_connected(h)
    util.wait_for(lambda: get_presence(h, alice_bare, support)["show"]
                  == "dnd", 15, 0.2, "get_presence to say dnd again")
    # a new session of alice: her server probes the address, which
    # answers with its presence
    again = xmpp_client("alice", resource="two")
    again.wait_available(support, 15)
    alice.disconnect()
    assert get_presence(h, alice_bare, support)["available"] is True
    again.disconnect()
    util.wait_for(lambda: get_presence(h, alice_bare, support)["available"]
                  is False, 15, 0.2, "get_presence to say unavailable")


def test_dev_mode_logs_sends_from_the_address(httpd_factory, prosody):
    h = httpd_factory(extra_conf=HANDLERS)
    h.write_config(app_conf=component_conf(h, prosody, XMPPDevMode="On"),
                   extra_conf=HANDLERS)
    h.start()
    util.wait_for(lambda: status(h).get("XMPPApp1State") == "dev mode", 15,
                  0.1, "dev mode")
    domain = prosody.component_domain
    code, answer = api(h, "send_message", jid=prosody.jid("alice"),
                       body="dev body", from_jid="alerts@" + domain)
    assert answer["statuses"] == ["NO_ERROR"], answer
    h.wait_log(r"Sending an XMPP Message:(.|\n)*From:\n.*alerts@%s/bot"
               r"(.|\n)*dev body" % re.escape(domain), timeout=15)
    code, answer = api(h, "send_message", jid=prosody.jid("alice"),
                       body="no", from_jid="alerts@localhost")
    assert code == 400 and answer["error"] == "InvalidJidError", answer


def test_second_component_for_the_domain_is_refused_and_says_so(
        component, httpd_factory, prosody):
    """Prosody takes one connection per component domain."""
    first = component()
    second = httpd_factory(extra_conf=HANDLERS)
    second.write_config(app_conf=component_conf(second, prosody),
                        extra_conf=HANDLERS)
    second.start()
    second.wait_log(r"XMPP0104: .*another component is connected for %s "
                    r"\(conflict\)" % re.escape(prosody.component_domain),
                    timeout=20)
    assert status(first).get("XMPPApp1State") == "connected"


def test_contacts_are_bounded(httpd_factory, prosody, xmpp_client):
    """At MX_CROSTER_MAX (10000) contacts over all addresses, a further
    subscription is refused with unsubscribed, and the log says why."""
    domain = prosody.component_domain
    h = httpd_factory(extra_conf=HANDLERS)
    full = os.path.join(h.spool_dir, domain, "addresses", "full@" + domain)
    os.makedirs(full)
    with open(os.path.join(full, "roster"), "w") as f:
        f.write("".join("u%d@localhost from\n" % i for i in range(10000)))
    if os.geteuid() == 0:
        util.chown(h.spool_dir, "www-data", recursive=True)
    h.write_config(app_conf=component_conf(h, prosody), extra_conf=HANDLERS)
    h.start()
    wait_connected(h)
    support = "%s@%s" % (fresh("support"), domain)
    alice = xmpp_client("alice")
    n = len(alice.presences)
    alice.subscribe(support)
    alice.wait_presence(lambda p: bare(p["from"]) == support
                        and p["type"] == "unsubscribed", 15, since=n)
    h.wait_log(r"XMPP0330: .*keeps 10000 contacts .*its limit: "
               r"alice@localhost is not added to %s" % re.escape(support))
    assert not os.path.exists(os.path.join(
        h.spool_dir, domain, "addresses", support, "roster"))


def test_messages_during_a_stop_are_answered_or_bounced(httpd_factory,
                                                        prosody,
                                                        xmpp_client):
    """A component cannot leave stanzas to the next session: a message
    that arrives while it stops (here: while a slow request holds the
    stop back) is kept in the inbound journal and answered by the next
    session, or (once the component is gone) bounced by the server; none
    is lost without a word."""
    slow = HANDLERS.replace(ENV_CGI, os.path.join(T_DIR, "cgi-bin",
                                                  "slow.cgi"), 1)
    h = httpd_factory(extra_conf=slow)
    h.write_config(app_conf=component_conf(h, prosody), extra_conf=slow)
    h.start()
    wait_connected(h)
    to = "%s@%s" % (fresh("stop"), prosody.component_domain)
    alice = xmpp_client("alice")
    n0 = len(alice.messages)
    alice.send_message(to, "slow one")
    util.wait_for(lambda: status(h).get("XMPPApp1Received") == "1", 10,
                  0.05, "the slow request to be posted")
    log = h.log_size()
    stopper = threading.Thread(target=h.graceful_stop)
    stopper.start()
    h.wait_log(r"caught SIGWINCH", since=log)
    count = 20
    for i in range(count):
        alice.send_message(to, "late-%d" % i)
    stopper.join(60)
    h.start()
    wait_connected(h)

    def answered():
        with alice.lock:
            msgs = [m for m in alice.messages[n0:] if bare(m["from"]) == to]
        replied = {line for m in msgs if m["type"] != "error"
                   for line in (m["body"] or "").splitlines()
                   if line.startswith("XMPP_ARG=")}
        errors = [m for m in msgs if m["type"] == "error"]
        return len(replied) + len(errors) >= count + 1 and (replied, errors)
    replied, errors = util.wait_for(answered, 60, 0.2,
                                    "every message answered or bounced")
    for m in errors:
        # Prosody's bounces while no component is connected
        assert m["error"]["condition"] in ("recipient-unavailable",
                                           "service-unavailable",
                                           "remote-server-timeout"), m


def test_stanza_answer_goes_from_the_address_written_to(httpd_factory,
                                                        prosody,
                                                        xmpp_client):
    """An application/xmpp+xml answer without from (t/lua/inbound.lua's
    /stanza) is sent from the address the message was written to."""
    dump = util.make_tempdir("mx-component-dump-")
    if os.geteuid() == 0:
        util.chown(dump, "www-data")
    conf = ('SetEnv MX_DUMP_DIR "%s"\n'
            'LuaMapHandler "^/_ah/xmpp/(.*)$" "%s"\n'
            "<Location /_ah/xmpp/>\n    Require xmpp-internal\n"
            "</Location>\n" % (dump, os.path.join(T_DIR, "lua",
                                                   "inbound.lua")))
    h = httpd_factory(extra_conf=conf)
    h.write_config(app_conf=component_conf(h, prosody), extra_conf=conf)
    h.start()
    wait_connected(h)
    to = "t-7@" + prosody.component_domain
    alice = xmpp_client("alice")
    n = len(alice.messages)
    alice.send_message(to, "/stanza hi")
    msg = alice.wait_message(15, lambda m: "lua stanza answer: hi" in
                             (m["body"] or ""), since=n)
    assert msg["from"] == to, msg
    shutil.rmtree(dump, ignore_errors=True)
