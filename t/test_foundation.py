# SPDX-License-Identifier: Apache-2.0
"""One XMPP session per app, whatever the MPM: election, failover after
kill -9, restarts, children ending, outages of the XMPP server, clean
shutdown, failed logins, TLS verification, status, and secrets.

Every test starts its own httpd (own spool directory, hence its own
holder lock) against the session's private Prosody, where the app is
app@localhost with resource "bot".  The module speaks XEP-0198, so a
session whose holder was killed may stay "hibernating" in Prosody for a
while: live sessions are counted with include_hibernating=False.

Failover times are printed (run with -s or -rP to see them).
"""

import base64
import os
import re
import signal
import time

import pytest

from harness import util
from harness.httpd import Httpd, need_module
from harness.prosody import ProsodyServer

APP_USER = "app"
RESOURCE = "bot"

# Children for the MPMs: prefork with at least 4, the threaded MPMs with
# a few (each child of those is a candidate holder too).
CHILDREN = {"prefork": 4, "event": 3, "worker": 3}
MPMS = ["prefork", "event", "worker"]

FAILOVER_LIMIT = 10.0  # seconds; the goal is about 2 s


# ---------------------------------------------------------------- helpers

def app_jid(prosody):
    return prosody.jid(APP_USER)


def full_jid(prosody):
    return "%s/%s" % (app_jid(prosody), RESOURCE)


def live_sessions(prosody):
    return prosody.sessions(app_jid(prosody), include_hibernating=False)


def try_status(h):
    """/server-status?auto as a dict, or None while httpd does not answer
    (e.g. during a restart)."""
    try:
        return h.status()
    except Exception:
        return None


def wait_state(h, predicate, timeout, what, interval=0.05):
    """Poll the status until predicate(status) holds; returns the status.
    On timeout the last status seen is in the message."""
    last = [None]

    def check():
        st = try_status(h)
        if st is not None:
            last[0] = st
            if predicate(st):
                return st
        return None
    try:
        return util.wait_for(check, timeout, interval, what)
    except TimeoutError as e:
        raise AssertionError("%s; last status: %s" % (
            e, xmpp_fields(last[0]))) from None


def xmpp_fields(st):
    return {k: v for k, v in (st or {}).items() if k.startswith("XMPP")}


def wait_connected(h, timeout=15.0, not_pid=None, interval=0.05):
    """Wait until the app is connected (with a holder other than
    `not_pid`); returns the status."""
    def ok(st):
        return (st.get("XMPPApp1State") == "connected"
                and (not_pid is None or st.get("XMPPApp1HolderPID") != str(not_pid)))
    return wait_state(h, ok, timeout, "the app to be connected", interval)


def wait_one_session(prosody, timeout=10.0):
    """Wait until Prosody has exactly one live session of the app, the
    one with the app's resource."""
    seen = []

    def check():
        seen[:] = live_sessions(prosody)
        return seen == [full_jid(prosody)]
    try:
        util.wait_for(check, timeout, 0.2, "one live session of the app")
    except TimeoutError as e:
        raise AssertionError("%s; last seen: %r" % (e, seen)) from None


def assert_one_session_stays(h, prosody, seconds=3.0):
    """Exactly one live session, held by one child, for `seconds`: the
    session is not replaced meanwhile (two holders would kick each other
    out with resource conflicts)."""
    wait_one_session(prosody)
    first = wait_connected(h, timeout=5)
    holder = first["XMPPApp1HolderPID"]
    since = first["XMPPApp1ConnectedSince"]
    reconnects = first["XMPPApp1Reconnects"]
    assert int(holder) in h.worker_pids(), (holder, h.worker_pids())
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert live_sessions(prosody) == [full_jid(prosody)]
        st = h.status()
        assert st["XMPPApp1State"] == "connected", xmpp_fields(st)
        assert st["XMPPApp1HolderPID"] == holder, xmpp_fields(st)
        assert st["XMPPApp1ConnectedSince"] == since, xmpp_fields(st)
        assert st["XMPPApp1Reconnects"] == reconnects, xmpp_fields(st)
        time.sleep(0.3)
    assert not conflict_lines(h), conflict_lines(h)
    return first


def log_time_after(h, regex, wall0):
    """Seconds from the wall-clock time `wall0` to the first error log
    line matching `regex` (from its timestamp), as text; "?" if none."""
    for line in log_lines(h, regex):
        m = re.match(r"\[(\w{3} \w{3} +\d+ [\d:]+\.\d+) (\d{4})\]", line)
        if m:
            when = time.mktime(time.strptime(
                "%s %s" % (m.group(1).split(".")[0], m.group(2)),
                "%a %b %d %H:%M:%S %Y")) + float("0." + m.group(1).split(".")[1])
            return "%.2f" % (when - wall0)
    return "?"


def log_lines(h, regex, since=0):
    return [line for line in h.error_log()[since:].splitlines()
            if re.search(regex, line)]


def conflict_lines(h):
    return log_lines(h, r"\[xmpp:.*conflict")


def assert_clean_log(h):
    """No line at error level or worse from anyone, no warning from
    mod_xmpp, no crash."""
    bad = log_lines(h, r"\[[\w.]*:(error|crit|alert|emerg)\]")
    bad += log_lines(h, r"\[xmpp:warn\]")
    bad += log_lines(h, r"Segmentation fault|exit signal (?!Killed)")
    assert not bad, "unexpected lines in the error log:\n" + "\n".join(bad)


def subscribe_alice(xmpp_client, prosody, timeout=15.0):
    """alice, subscribed to the app and seeing it available."""
    alice = xmpp_client("alice")
    alice.subscribe(app_jid(prosody))
    seen = alice.wait_available(app_jid(prosody), timeout=timeout)
    assert seen["from"] == full_jid(prosody)
    return alice


def start(httpd_factory, mpm="event", **kw):
    """A started httpd; `children` defaults to CHILDREN[mpm]."""
    kw.setdefault("children", CHILDREN[mpm])
    h = httpd_factory(mpm=mpm, **kw)
    h.start()
    return h


@pytest.fixture
def prosody_back(prosody):
    """The session's Prosody; running again after the test whatever
    happened (later tests need it)."""
    yield prosody
    if not prosody.running:
        prosody.start()


# ------------------------------------------------------- one session per app

@pytest.mark.parametrize("mpm", MPMS)
def test_one_session_whatever_the_mpm(httpd_factory, prosody, xmpp_client, mpm):
    h = start(httpd_factory, mpm)
    util.wait_for(lambda: len(h.worker_pids()) >= CHILDREN[mpm], 15,
                  what="%d children" % CHILDREN[mpm])
    st = wait_connected(h, timeout=15)
    assert st["XMPPApp1JID"] == app_jid(prosody)
    assert_one_session_stays(h, prosody, 3.0)

    # A contact sees the app online.
    alice = subscribe_alice(xmpp_client, prosody)
    assert alice.available_resources(app_jid(prosody)) == [full_jid(prosody)]

    # Exactly one child says it holds the connection.
    holders = log_lines(h, r"XMPP0108: .*now holds the connection")
    assert len(holders) == 1, holders
    assert live_sessions(prosody) == [full_jid(prosody)]
    assert_clean_log(h)


# ----------------------------------------------------------------- failover

@pytest.mark.parametrize("mpm", MPMS)
def test_failover_after_kill_9(httpd_factory, prosody, xmpp_client, mpm):
    children = {"prefork": 4, "event": 2, "worker": 2}[mpm]
    h = start(httpd_factory, mpm, children=children)
    util.wait_for(lambda: len(h.worker_pids()) >= children, 15,
                  what="%d children" % children)
    wait_connected(h, timeout=15)
    wait_one_session(prosody)
    alice = subscribe_alice(xmpp_client, prosody)

    st = h.status()
    old = int(st["XMPPApp1HolderPID"])
    assert old in h.worker_pids(), (old, h.worker_pids())
    seen_before = len(alice.presences)

    wall0 = time.time()
    t0 = time.monotonic()
    os.kill(old, signal.SIGKILL)
    st = wait_connected(h, timeout=FAILOVER_LIMIT + 5, not_pid=old,
                        interval=0.02)
    elapsed = time.monotonic() - t0
    new = int(st["XMPPApp1HolderPID"])
    print("\nfailover (%s): %.2f s from kill -9 to connected again "
          "(log: lock taken +%s s, logged in +%s s)" % (
              mpm, elapsed,
              log_time_after(h, r"XMPP0108: .*pid %d\)" % new, wall0),
              log_time_after(h, r"\[pid %d:.*XMPP0102: " % new, wall0)))

    assert new != old
    assert not util.pid_alive(old)
    assert new in h.worker_pids(), (new, h.worker_pids())
    assert elapsed < FAILOVER_LIMIT, "failover took %.2f s" % elapsed

    # The contact sees the app (again) after the kill.
    back = alice.wait_presence(
        lambda p: (p["from"] == full_jid(prosody) and p["type"] == "available"
                   and p["time"] > t0),
        timeout=10, since=seen_before)
    assert back is not None
    assert alice.available_resources(app_jid(prosody)) == [full_jid(prosody)]

    # One live session, and it stays one.
    assert_one_session_stays(h, prosody, 3.0)
    assert log_lines(h, r"XMPP0108: .*pid %d\) now holds" % new)
    assert_clean_log(h)


# ----------------------------------------------------------------- restarts

@pytest.mark.parametrize("mpm", MPMS)
def test_graceful_and_hard_restart(httpd_factory, prosody, mpm):
    h = start(httpd_factory, mpm)
    wait_connected(h, timeout=15)
    assert_one_session_stays(h, prosody, 1.0)

    h.graceful()
    wait_connected(h, timeout=20)
    assert_one_session_stays(h, prosody, 3.0)

    h.restart()
    wait_connected(h, timeout=20)
    assert_one_session_stays(h, prosody, 3.0)
    assert h.status()["ParentServerConfigGeneration"] == "3"
    assert_clean_log(h)


def test_children_ending_max_connections_per_child(httpd_factory, prosody):
    """prefork children that reach MaxConnectionsPerChild exit, the
    holder among them; the app stays (or gets) connected, one session.

    Every HTTP request counts towards a child's limit (status requests
    too), so once the hammering is over the session is watched through
    Prosody and the log only.  MaxSpareServers is high so that the parent
    does not reap idle children (the holder among them) meanwhile."""
    h = start(httpd_factory, "prefork", children=None, extra_conf="\n".join([
        "StartServers 4", "MinSpareServers 4", "MaxSpareServers 40",
        "ServerLimit 40", "MaxRequestWorkers 40",
        "MaxConnectionsPerChild 5", ""]))
    first = wait_connected(h, timeout=15, interval=0.5)
    wait_one_session(prosody)
    before = set(h.worker_pids())

    holders = {first["XMPPApp1HolderPID"]}
    for i in range(50):
        assert h.get("/").status == 200
        if i % 5 == 0:
            st = try_status(h)
            if st:
                holders.add(st["XMPPApp1HolderPID"])

    # Children did end.
    assert not before <= set(h.worker_pids()), (before, h.worker_pids())

    # No more requests: the last holder keeps the session. A child that
    # served its last connection may still be in lingering close (up to
    # 2 s) and exit then, handing over once more: wait for a quiet spell
    # of 3 s without a new holder first (bounded).
    settle_end = time.monotonic() + 30.0
    quiet_from, seen = time.monotonic(), h.log_size()
    while time.monotonic() - quiet_from < 3.0:
        assert time.monotonic() < settle_end, "the holder kept changing"
        time.sleep(0.2)
        if log_lines(h, r"XMPP0108: ", since=seen):
            quiet_from, seen = time.monotonic(), h.log_size()
    wait_one_session(prosody, timeout=20)
    offset = h.log_size()
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        assert live_sessions(prosody) == [full_jid(prosody)]
        time.sleep(0.3)
    assert not log_lines(h, r"XMPP0108: ", since=offset), \
        "the holder changed without a request"
    st = h.status()
    holders.add(st["XMPPApp1HolderPID"])
    print("\nholders while children ended: %d %s" % (len(holders), sorted(holders)))
    assert st["XMPPApp1State"] == "connected", xmpp_fields(st)
    assert not conflict_lines(h), conflict_lines(h)
    assert_clean_log(h)


# ------------------------------------------------------- the XMPP server

def test_prosody_outage_backoff_and_reconnect(httpd_factory, prosody_back):
    prosody = prosody_back
    h = start(httpd_factory, "event")
    wait_connected(h, timeout=15)
    wait_one_session(prosody)
    reconnects = int(h.status()["XMPPApp1Reconnects"])

    prosody.stop()
    try:
        t0 = time.monotonic()
        down = wait_state(h, lambda st: st["XMPPApp1State"] != "connected",
                          5.0, "the status to leave 'connected'")
        print("\nstatus left 'connected' %.2f s after Prosody stopped (%s)"
              % (time.monotonic() - t0, down["XMPPApp1State"]))
        st = wait_state(h, lambda st: st["XMPPApp1State"] == "backing off",
                        10.0, "the status to say 'backing off'")
        assert st["XMPPApp1ConnectedSince"] == "0"
        assert st["XMPPApp1LastError"], xmpp_fields(st)
        assert int(st["XMPPApp1HolderPID"]) in h.worker_pids()
        assert h.get("/").status == 200
    finally:
        prosody.start()
    t1 = time.monotonic()
    st = wait_connected(h, timeout=70, interval=0.2)
    print("reconnected %.2f s after Prosody started" % (time.monotonic() - t1))
    assert int(st["XMPPApp1Reconnects"]) == reconnects + 1, xmpp_fields(st)
    assert_one_session_stays(h, prosody, 2.0)
    assert log_lines(h, r"\[xmpp:warn\].*XMPP0106: .*disconnected")
    # Failed attempts while Prosody was down are logged, not a tight loop.
    attempts = log_lines(h, r"\[xmpp:error\].*XMPP0104: ")
    assert 1 <= len(attempts) < 15, attempts


def test_status_page(httpd_factory, prosody):
    h = start(httpd_factory, "event")
    st = wait_connected(h, timeout=15)
    now = time.time()
    assert st["XMPPApp1JID"] == app_jid(prosody)
    assert st["XMPPApp1Server"] == "127.0.0.1:%d" % prosody.port
    assert now - 60 < int(st["XMPPApp1ConnectedSince"]) <= now + 1
    assert int(st["XMPPApp1HolderPID"]) in h.worker_pids()
    assert st["XMPPApp1Reconnects"] == "0"
    assert st["XMPPApp1LastError"] == ""
    for key in ("ConnectedSeconds", "Queued", "Sent", "Received", "Failed"):
        assert re.fullmatch(r"\d+", st["XMPPApp1" + key]), (key, st)

    # Any child answers: ask a few times (new connections).
    for _ in range(6):
        assert h.status()["XMPPApp1State"] == "connected"

    html = h.get("/server-status")
    assert html.status == 200
    assert "mod_xmpp" in html.text
    assert app_jid(prosody) in html.text
    assert "connected" in html.text
    assert_clean_log(h)


def test_stop_closes_the_session(httpd_factory, prosody, xmpp_client):
    h = start(httpd_factory, "event")
    wait_connected(h, timeout=15)
    wait_one_session(prosody)
    alice = subscribe_alice(xmpp_client, prosody)

    t0 = time.monotonic()
    assert h.stop(), "httpd had to be killed"
    print("\nstop took %.2f s" % (time.monotonic() - t0))
    # Closed, not dropped: no session left, not even a hibernating one.
    prosody.wait_sessions(app_jid(prosody), 0, timeout=5,
                          include_hibernating=True)
    alice.wait_unavailable(app_jid(prosody), timeout=5)
    assert_clean_log(h)


@pytest.mark.parametrize("mpm", ["prefork", "event"])
def test_graceful_stop_closes_the_session(httpd_factory, prosody, mpm):
    h = start(httpd_factory, mpm)
    wait_connected(h, timeout=15)
    wait_one_session(prosody)
    assert h.graceful_stop(), "httpd had to be killed"
    prosody.wait_sessions(app_jid(prosody), 0, timeout=5,
                          include_hibernating=True)
    assert_clean_log(h)


# ------------------------------------------------------------ failed logins

def test_wrong_password_backs_off(httpd_factory, prosody):
    h = httpd_factory(mpm="event", children=2)
    wrong = "Wr0ng-%s" % os.urandom(6).hex()
    h.write_config(app_conf={
        "XMPPPasswordFile": h.write_file("wrong.pass", wrong + "\n", 0o600)})
    h.start()

    regex = r"\[xmpp:error\].*login failed"
    h.wait_log(regex, timeout=5)
    first_seen = time.monotonic()
    # One line that says what failed, for which account, and what next.
    line = log_lines(h, regex)[0]
    assert re.search(r"login failed: .*%s.*XMPPPasswordFile.*retrying in "
                     r"\d+\.\ds" % re.escape(app_jid(prosody)), line), line

    # While backing off httpd serves, and the status says why.
    st = wait_state(h, lambda st: st["XMPPApp1State"] == "backing off",
                    5.0, "the status to say 'backing off'")
    assert "login" in st["XMPPApp1LastError"], xmpp_fields(st)
    assert h.get("/server-status?auto").status == 200
    assert h.get("/").status == 200

    time.sleep(max(0.0, 5.0 - (time.monotonic() - first_seen)))
    failures = log_lines(h, regex)
    print("\n%d 'login failed' lines in ~5 s" % len(failures))
    assert len(failures) >= 2, failures
    assert len(failures) < 10, "a tight loop: %d lines" % len(failures)
    assert live_sessions(prosody) == []
    assert h.get("/").status == 200
    st = h.status()
    assert st["XMPPApp1State"] in ("backing off", "connecting"), xmpp_fields(st)
    assert st["XMPPApp1ConnectedSince"] == "0"
    assert not log_lines(h, r"Segmentation fault|exit signal")
    # The wrong password is not logged either.
    assert wrong not in h.error_log()


# -------------------------------------------------------------------- TLS

def test_tls_system_store_only_refuses_private_ca(httpd_factory, prosody):
    """Without XMPPTLSCAFile the private CA is unknown: the certificate
    is refused, the app never connects, and the error says why."""
    h = start(httpd_factory, "event", app_conf={"XMPPTLSCAFile": None})
    st = wait_state(h, lambda st: "certificate" in st["XMPPApp1LastError"],
                    10.0, "a last error about the certificate")
    assert st["XMPPApp1State"] != "connected"
    lines = log_lines(h, r"\[xmpp:error\].*certificate")
    assert lines, h.error_log()
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        assert h.status()["XMPPApp1State"] != "connected"
        time.sleep(0.2)
    assert live_sessions(prosody) == []
    assert not log_lines(h, r"XMPP0102: .*connected to")


def test_tls_off_against_a_server_that_requires_it(httpd_factory, prosody):
    """XMPPTLS off and a server that requires STARTTLS (the session's
    Prosody): no login, and the last error says what to change."""
    h = start(httpd_factory, "event", app_conf={"XMPPTLS": "off"})
    st = wait_state(h, lambda st: "requires TLS" in st["XMPPApp1LastError"],
                    15.0, "a last error saying the server requires TLS")
    assert "set XMPPTLS required" in st["XMPPApp1LastError"]
    assert st["XMPPApp1State"] != "connected"
    assert live_sessions(prosody) == []


@pytest.fixture
def prosody_plain():
    """A private Prosody that lets clients log in without TLS."""
    server = ProsodyServer(extra_config="c2s_require_encryption = false")
    try:
        server.start()
        yield server
    finally:
        server.stop()
        server.cleanup()


@pytest.mark.parametrize("policy,secure", [("off", False),
                                           ("optional", True)])
def test_tls_policies_with_a_server_that_does_not_require_it(prosody_plain,
                                                             policy, secure):
    """XMPPTLS off logs in in the clear; optional uses TLS when the server
    offers it (it does, without requiring it); both stay connected."""
    need_module()
    h = Httpd(prosody=prosody_plain, mpm="event",
              app_conf={"XMPPTLS": policy})
    try:
        h.start()
        wait_connected(h)
        assert_one_session_stays(h, prosody_plain, 1.0)
        assert log_lines(h, r"XMPP0102: .*\((TLS|no TLS)\)")
        assert bool(log_lines(h, r"XMPP0102: .*\(TLS\)")) == secure
        info = prosody_plain.session_info(app_jid(prosody_plain))[0]
        assert info["secure"].startswith("TLS") == secure, info
    finally:
        h.stop()
        h.cleanup()


def test_tls_verify_off_connects_without_ca(httpd_factory, prosody):
    h = start(httpd_factory, "event",
              app_conf={"XMPPTLSCAFile": None, "XMPPTLSVerify": "Off"})
    wait_connected(h, timeout=15)
    assert_one_session_stays(h, prosody, 1.0)
    assert log_lines(h, r"XMPP0102: .*\(TLS\)")
    assert prosody.session_info(app_jid(prosody))[0]["secure"].startswith("TLS")


# ---------------------------------------------------------------- secrets

def secret_forms(password, account, domain):
    """The password and base64 forms it could take on the wire (SASL
    PLAIN) or in a careless log."""
    pw = password.encode()
    forms = {password}
    for blob in (pw, b"\0" + account.encode() + b"\0" + pw,
                 b"\0%s@%s\0" % (account.encode(), domain.encode()) + pw,
                 b"%s@%s\0%s\0" % (account.encode(), domain.encode(),
                                   account.encode()) + pw):
        forms.add(base64.b64encode(blob).decode())
    # The password at any alignment inside a longer base64 text: the part
    # of the encoding that depends on the password alone.
    for k in range(3):
        enc = base64.b64encode(b"\0" * k + pw).decode()
        start = 4 if k else 0
        forms.add(enc[start:-4])
    return {f for f in forms if len(f) >= 8}


def assert_no_secret(h, prosody):
    """The app's password, plain or base64, is nowhere a user of httpd
    could see it: logs, status pages, CGI environment, spool files."""
    places = {
        "error log": h.error_log(),
        "access log": h.access_log(),
        "/server-status": h.get("/server-status").text,
        "/server-status?auto": h.get("/server-status?auto").text,
    }
    env = h.get("/cgi-bin/env.cgi")
    assert env.status == 200, env.text
    assert "GATEWAY_INTERFACE=CGI/1.1" in env.text
    places["CGI environment"] = env.text
    for root, _dirs, files in os.walk(h.spool_dir):
        for name in files:
            path = os.path.join(root, name)
            if not os.path.isfile(path):
                continue  # the queue's socket
            with open(path, "rb") as f:
                places[path] = f.read().decode("utf-8", "replace")

    # The test means something: the stream was logged at trace level.
    assert re.search(r"\[xmpp:trace\d\].*libstrophe", places["error log"]), \
        "no libstrophe trace in the error log"

    forms = secret_forms(prosody.password(APP_USER), APP_USER, prosody.domain)
    leaks = ["%s contains %r" % (where, form)
             for where, text in places.items() for form in forms
             if form in text]
    assert not leaks, leaks


def test_no_secret_in_logs_status_or_environment(httpd_factory, prosody,
                                                 xmpp_client):
    h = start(httpd_factory, "event", log_level="trace8")
    wait_connected(h, timeout=15)
    alice = subscribe_alice(xmpp_client, prosody)
    alice.send_message(app_jid(prosody), "hello")
    alice.sync()
    time.sleep(0.5)
    assert_no_secret(h, prosody)


@pytest.fixture
def plain_prosody():
    """A second private Prosody that offers SASL PLAIN only, where the
    password itself (base64) goes over the (TLS) stream."""
    from harness.prosody import ProsodyServer
    server = ProsodyServer(users=(APP_USER,), extra_config=(
        'disable_sasl_mechanisms = { "SCRAM-SHA-1"; "SCRAM-SHA-1-PLUS"; '
        '"DIGEST-MD5" }'))
    try:
        server.start()
        yield server
    finally:
        server.stop()
        server.cleanup()


def test_no_secret_with_sasl_plain(plain_prosody):
    need_module()
    h = Httpd(prosody=plain_prosody, mpm="prefork", children=2,
              log_level="trace8")
    try:
        h.start()
        wait_connected(h, timeout=15)
        assert re.search(r'<auth mechanism="PLAIN"', h.error_log()), \
            "the module did not log in with PLAIN"
        assert_no_secret(h, plain_prosody)
        assert h.stop()
        # Nor in what the shutdown logged.
        forms = secret_forms(plain_prosody.password(APP_USER), APP_USER,
                             plain_prosody.domain)
        assert not [f for f in forms if f in h.error_log()]
    except Exception:
        print("\n===== tail of %s =====\n%s" % (
            h.error_log_file, util.tail(h.error_log_file, 40)))
        raise
    finally:
        h.stop()
        h.cleanup()
