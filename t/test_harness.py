# SPDX-License-Identifier: Apache-2.0
"""Tests of the test harness itself, without mod_xmpp.

If these fail, no other integration test can be trusted: the private
Prosody, the XMPP clients and the private httpd must work on their own.
"""

import os
import stat

import pytest

from harness import util

BODIES = [
    "plain ascii",
    "unicode: h\u00e9llo w\u00f6rld \u2603 \u4f60\u597d \U0001f600",
    "markup: <b>bold</b> & \"quotes\" 'apos' <&>",
    "  leading and trailing spaces, and\nsecond line\n",
]


def test_prosody_files(prosody):
    """The CA is readable by anyone; the directory belongs to prosody."""
    assert os.stat(prosody.ca_file).st_mode & stat.S_IROTH
    if os.geteuid() == 0:
        import pwd
        assert pwd.getpwuid(os.stat(prosody.directory).st_uid).pw_name == "prosody"
    assert prosody.domain == "localhost"
    assert prosody.password("app") != prosody.password("alice")
    assert util.port_open(prosody.port)
    assert util.port_open(prosody.component_port)


def test_clients_subscribe_and_see_each_other(prosody, xmpp_client):
    alice = xmpp_client("alice")
    bob = xmpp_client("bob")

    alice.subscribe("bob@localhost")
    seen_bob = alice.wait_available("bob@localhost", timeout=10)
    assert seen_bob["from"] == bob.full_jid

    bob.subscribe("alice@localhost")
    seen_alice = bob.wait_available("alice@localhost", timeout=10)
    assert seen_alice["from"] == alice.full_jid

    assert alice.subscription("bob@localhost") == "both"
    assert bob.subscription("alice@localhost") == "both"
    assert alice.available_resources("bob@localhost") == [bob.full_jid]

    # A presence change is seen with its show and status.
    bob.set_presence(show="away", status="out for lunch \u2615")
    away = alice.wait_presence(
        lambda p: p["from"] == bob.full_jid and p["show"] == "away", timeout=10)
    assert away["status"] == "out for lunch \u2615"

    bob.disconnect()
    alice.wait_unavailable("bob@localhost", timeout=10)
    assert alice.available_resources("bob@localhost") == []


@pytest.mark.parametrize("body", BODIES, ids=["ascii", "unicode", "markup", "spaces"])
def test_message_arrives_exactly(prosody, xmpp_client, body):
    alice = xmpp_client("alice")
    bob = xmpp_client("bob")
    alice.send_message("bob@localhost", body)
    msg = bob.wait_message(timeout=10)
    assert msg["body"] == body
    assert msg["from"] == alice.full_jid
    assert msg["type"] == "chat"
    assert not msg["delayed"], bob.messages
    assert "<message" in msg["xml"]


def test_message_to_full_jid_and_types(prosody, xmpp_client):
    alice = xmpp_client("alice")
    bob = xmpp_client("bob", resource="desk")
    assert bob.full_jid == "bob@localhost/desk"
    alice.send_message(bob.full_jid, "normal one", mtype="normal")
    msg = bob.wait_message(timeout=10)
    assert (msg["body"], msg["type"], msg["to"]) == ("normal one", "normal", bob.full_jid)


def test_sessions_counts_prosody_c2s_sessions(prosody, xmpp_client):
    assert prosody.sessions("alice@localhost") == []
    alice = xmpp_client("alice")
    sessions = prosody.sessions("alice@localhost")
    assert sessions == [alice.full_jid]
    # Other accounts are not mixed in.
    assert prosody.sessions("bob@localhost") == []
    info = prosody.session_info("alice@localhost")
    assert info[0]["secure"].startswith("TLS")

    second = xmpp_client("alice", resource="second")
    assert prosody.sessions("alice@localhost") == sorted(
        [alice.full_jid, second.full_jid])

    second.disconnect()
    alice.disconnect()
    prosody.wait_sessions("alice@localhost", 0, timeout=10)
    assert prosody.sessions("alice@localhost") == []


def test_prosody_stop_and_start(prosody, xmpp_client):
    """stop() and start() bring the same server back on the same port."""
    alice = xmpp_client("alice")
    port, pid = prosody.port, prosody.pid
    prosody.stop()
    try:
        assert not util.pid_alive(pid)
        assert not util.port_open(port)
        util.wait_for(lambda: not alice.connected, 10, what="alice to notice")
    finally:
        prosody.start()
    assert prosody.port == port and prosody.pid != pid
    bob = xmpp_client("bob")
    assert prosody.sessions("bob@localhost") == [bob.full_jid]


def test_wrong_password_is_refused(prosody, xmpp_client):
    from harness.xmpp import XmppError
    with pytest.raises(XmppError, match="authentication failed"):
        xmpp_client("alice", password="not-the-password")


@pytest.mark.parametrize("mpm", ["event", "worker", "prefork"])
def test_httpd_without_module(httpd_factory, mpm):
    h = httpd_factory(mpm=mpm, load_module=False, children=2)
    code, output = h.configtest()
    assert code == 0, output
    h.start()
    assert h.running
    assert util.read_pidfile(h.pid_file) == h.pid

    status, headers, body = h.get("/server-status?auto")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain")
    assert b"ServerMPM: %s" % mpm.encode() in body
    assert "Total Accesses" in h.status()

    # At least `children` processes that serve requests.
    util.wait_for(lambda: len(h.worker_pids()) >= 2, 10, what="2 children")
    if mpm == "prefork":
        assert h.cgid_pid() is None
    else:
        assert h.cgid_pid() in h.child_pids()

    # CGI works (mod_cgi under prefork, mod_cgid under event).
    resp = h.get("/cgi-bin/env.cgi")
    assert resp.status == 200, resp.text
    assert "GATEWAY_INTERFACE=CGI/1.1" in resp.text
    assert "SERVER_PORT=%d" % h.port in resp.text

    assert h.get("/nothing-here").status == 404
    assert "GET /server-status?auto" in h.access_log()

    # Graceful and immediate restarts keep the parent and start a new
    # generation.
    parent = h.pid
    offset = h.log_size()
    h.graceful()
    assert h.pid == parent and h.running
    h.wait_log(r"SIGUSR1 received|Graceful restart requested", timeout=5,
               since=offset)
    assert h.get("/").status == 200
    h.restart()
    assert h.pid == parent and h.running
    assert h.get("/").status == 200
    assert h.status()["ParentServerConfigGeneration"] == "3"

    children = h.child_pids()
    assert h.stop()
    assert not util.pid_alive(parent)
    assert not any(util.pid_alive(p) for p in children)


def test_httpd_configtest_reports_errors(httpd_factory):
    h = httpd_factory(load_module=False)
    code, output = h.configtest(h.render_config(extra_conf="NoSuchDirective 1\n"))
    assert code != 0
    assert "NoSuchDirective" in output


def test_httpd_start_failure_is_reported(httpd_factory):
    from harness.httpd import HttpdStartError
    h = httpd_factory(load_module=False, extra_conf="Listen 127.0.0.1:%d\n"
                      % util.free_port() + "LoadModule nonsense_module /nonexistent.so\n")
    with pytest.raises(HttpdStartError) as err:
        h.start()
    assert "nonexistent.so" in err.value.output
    assert not h.running


def test_default_app_conf(httpd_factory, prosody):
    """The default app directives are built from the running Prosody
    (checked as text: mod_xmpp need not be loaded for this)."""
    h = httpd_factory(load_module=False)
    text = h.app_conf()
    assert "XMPPJID app@localhost\n" in text
    assert "XMPPServer 127.0.0.1:%d\n" % prosody.port in text
    assert "XMPPTLSCAFile %s\n" % prosody.ca_file in text
    with open(h.password_file) as f:
        assert f.read().strip() == prosody.password("app")
    assert stat.S_IMODE(os.stat(h.password_file).st_mode) == 0o600
    variant = h.app_conf(XMPPServer="127.0.0.1:1", XMPPTLSCAFile=None,
                         XMPPResource="other bot")
    assert "XMPPServer 127.0.0.1:1\n" in variant
    assert "XMPPTLSCAFile" not in variant
    assert 'XMPPResource "other bot"\n' in variant
