# SPDX-License-Identifier: Apache-2.0
"""Component mode against ejabberd (Debian's 23.01, `ejabberd_service`),
the server scale-out runs on: the core scenario of test_component.py
with a private ejabberd (harness/ejabberd.py) and a real client
(slixmpp) logged in to it.
"""

import os
import signal
import time

import pytest

from harness import ejabberd as ejabberd_harness
from harness import journal, util
from harness.xmpp import clients_of
from test_component import (HANDLERS, api, bare, component_conf, fresh,
                            received, status, subscribe_to, wait_connected,
                            xmpp_send)
from test_durability import Gate, origin_id

pytestmark = pytest.mark.skipif(not ejabberd_harness.available(),
                                reason="ejabberd is not installed "
                                "(tools/install-deps installs it)")

N = 10


@pytest.fixture(scope="module")
def ejabberd():
    yield from util.serve(ejabberd_harness.EjabberdServer(), "ejabberd")


@pytest.fixture
def client(ejabberd):
    yield from clients_of(ejabberd)


@pytest.fixture
def component(httpd_factory, ejabberd):
    def make(extra_conf="", **overrides):
        h = httpd_factory(extra_conf=HANDLERS + extra_conf)
        h.write_config(app_conf=component_conf(h, ejabberd, **overrides),
                       extra_conf=HANDLERS + extra_conf)
        h.start()
        wait_connected(h)
        return h
    return make


def test_each_address_answers_from_itself(component, ejabberd, client):
    component()
    domain = ejabberd.component_domain
    alice = client("alice")
    for local in ("support", "t-42"):
        to = "%s@%s" % (local, domain)
        n = len(alice.messages)
        alice.send_message(to, "hello " + local)
        msg = alice.wait_message(15, lambda m: m["from"]
                                 and bare(m["from"]) == to, since=n)
        assert "XMPP_TO=%s\n" % to in msg["body"], msg["body"]
        assert msg["from"] == to, msg


def test_send_from_addresses_and_refuse_others(component, ejabberd, client):
    h = component()
    domain = ejabberd.component_domain
    alice = client("alice")
    code, answer = api(h, "send_message", jid=ejabberd.jid("alice"),
                       body="via api", from_jid="alerts@" + domain)
    assert answer["statuses"] == ["NO_ERROR"], answer
    msg = alice.wait_message(15, lambda m: m["body"] == "via api")
    assert msg["from"] == "alerts@%s/bot" % domain, msg
    r = xmpp_send(h, ejabberd, "message", "--from", "news@" + domain,
                  ejabberd.jid("alice"), "--", "via xmpp-send")
    assert r.returncode == 0, r.stderr
    msg = alice.wait_message(15, lambda m: m["body"] == "via xmpp-send")
    assert msg["from"] == "news@%s/bot" % domain, msg
    code, answer = api(h, "send_message", jid=ejabberd.jid("alice"),
                       body="no", from_jid="alerts@localhost")
    assert code == 400 and answer["error"] == "InvalidJidError", answer


def test_subscription_to_an_address(component, ejabberd, client):
    domain = ejabberd.component_domain
    support = "%s@%s" % (fresh("support"), domain)
    h = component()
    alice = client("alice")
    subscribe_to(alice, support)
    n = len(alice.presences)
    code, answer = api(h, "send_presence", jid="subscribers",
                       from_jid=support, status="on ejabberd")
    assert answer["statuses"] == ["NO_ERROR"], answer
    p = alice.wait_presence(lambda p: p["status"] == "on ejabberd", 15,
                            since=n)
    assert p["from"] == support + "/bot", p


def test_kill_9_with_items_queued_and_ejabberd_restarted(component,
                                                         ejabberd, client):
    gate = Gate(ejabberd.component_port)
    try:
        h = component(XMPPServer="127.0.0.1:%d" % gate.port)
        domain = ejabberd.component_domain
        run = "run-%d" % time.time_ns()
        bodies = ["%s #%02d" % (run, i) for i in range(N)]
        gate.shut()
        try:
            ejabberd.stop()
            util.wait_for(lambda: status(h).get("XMPPApp1State")
                          != "connected", 20, 0.1, "the outage noticed")
            for body in bodies:
                code, answer = api(h, "send_message",
                                   jid=ejabberd.jid("alice"), body=body,
                                   from_jid="support@" + domain)
                assert answer["statuses"] == ["NO_ERROR"], answer
            pid = int(status(h)["XMPPApp1HolderPID"])
            os.kill(pid, signal.SIGKILL)
            util.wait_for(lambda: status(h).get("XMPPApp1HolderPID")
                          not in (None, "0", str(pid)), 15, 0.1,
                          "another child to hold")
        finally:
            ejabberd.start()
        alice = client("alice")
        gate.open()
        wait_connected(h, 90)
        util.wait_for(lambda: len({m["body"] for m in received(alice, run)})
                      >= N, 60, 0.2, "%d messages" % N)
        msgs = received(alice, run)
        first = []
        for m in msgs:
            assert m["from"] == "support@%s/bot" % domain, m
            assert origin_id(m), m["xml"]
            if m["body"] not in first:
                first.append(m["body"])
        assert first == bodies, first
    finally:
        gate.close()


def test_two_hosts_as_one_domain_each_get_their_barriers(component,
                                                         ejabberd, client):
    """Two httpds connected as the same component domain (ejabberd routes
    each stanza to the domain, the barrier pings too, to a random one of
    them): every message from both arrives, and each host's journal
    empties, its records acknowledged by its own barriers even when the
    server hands some of them to the other host."""
    domain = ejabberd.component_domain
    hosts = [component(), component()]
    alice = client("alice")
    run = "run-%d" % time.time_ns()
    sent = []
    for rnd in range(6):
        for i, h in enumerate(hosts):
            body = "%s host %d round %d" % (run, i, rnd)
            code, answer = api(h, "send_message", jid=ejabberd.jid("alice"),
                               body=body, from_jid="support@" + domain)
            assert answer["statuses"] == ["NO_ERROR"], answer
            sent.append(body)
        util.wait_for(lambda: set(sent) <= {m["body"] for m in
                                            received(alice, run)},
                      20, 0.1, "round %d's messages" % rnd)
        for i, h in enumerate(hosts):
            util.wait_for(lambda: not journal.pending(
                              os.path.join(h.spool_dir, domain)),
                          20, 0.1, "host %d's journal to empty after round "
                          "%d" % (i, rnd))
    for h in hosts:
        util.wait_for(lambda: status(h).get("XMPPApp1Queued") == "0", 5,
                      0.1, "the status to show the queue empty")
