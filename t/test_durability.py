# SPDX-License-Identifier: Apache-2.0
"""Durability of sends (SPEC section 3): a send answers NO_ERROR once the
stanza is durably queued; it then survives an outage of the XMPP server,
kill -9 of the child holding the connection, graceful and hard httpd
restarts, and is delivered (in order per recipient, duplicates only as
resends with the same origin-id) when the connection is back.  Also the
queue limit (XMPPQueueLimit): a full queue answers OTHER_ERROR, says why
in the error log, and takes sends again once it drained.

Prosody has no offline storage here (a chat message to a user with no
session is bounced), so the clients must be online before the app
reconnects.  The app therefore reaches Prosody through a TCP gate (a
plain forwarder: TLS is still end to end, checked against the domain)
that the test keeps shut until the clients have logged in again.
"""

import json
import re
import os
import shutil
import signal
import socket
import subprocess
import struct
import threading
import time
import xml.etree.ElementTree as ET
import zlib

import pytest

from harness import journal, util
from harness.httpd import REPO_DIR, Httpd, need_module
from harness.prosody import ProsodyServer
from harness.xmpp import XmppClient

XMPP_SEND = os.path.join(REPO_DIR, "xmpp-send")
APP = "app@localhost"
APP_FULL = "app@localhost/bot"
SID_NS = "urn:xmpp:sid:0"
N = 20
DELIVERY_WAIT = 90.0  # reconnect back-off may reach 8-16 s after an outage

API_CONF = """
<Location /xmpp-api/>
    SetHandler xmpp-api
    Require local
</Location>
"""


class Gate:
    """A TCP forwarder on 127.0.0.1 to Prosody's client port.  While shut,
    it accepts connections and closes them at once (the app sees the
    server go away and backs off); existing connections are not touched
    unless cut().  hold() stops forwarding what the app sends (the server
    never sees it if cut() follows) while the server's side still flows;
    release() lets it go on."""

    def __init__(self, target_port):
        self.target_port = target_port
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((util.LOOPBACK, 0))
        self._listener.listen(16)
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._open = threading.Event()
        self._open.set()
        self._from_app = threading.Event()
        self._from_app.set()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._socks = []
        self._threads = []
        self.accepted = 0
        self._thread = threading.Thread(target=self._accept_loop,
                                        name="gate-accept", daemon=True)
        self._thread.start()

    def open(self):
        self._open.set()

    def shut(self):
        self._open.clear()

    def hold(self):
        self._from_app.clear()

    def release(self):
        self._from_app.set()

    def _accept_loop(self):
        while not self._stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.accepted += 1
            if not self._open.is_set():
                conn.close()
                continue
            try:
                up = socket.create_connection(
                    (util.LOOPBACK, self.target_port), timeout=2.0)
            except OSError:
                conn.close()
                continue
            conn.settimeout(None)
            up.settimeout(None)
            with self._lock:
                self._socks += [conn, up]
                for a, b, flow in ((conn, up, self._from_app),
                                   (up, conn, None)):
                    t = threading.Thread(target=self._pump,
                                         args=(a, b, flow),
                                         name="gate-pump", daemon=True)
                    self._threads.append(t)
                    t.start()

    @staticmethod
    def _pump(src, dst, flow):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if flow:
                    flow.wait()
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self):
        """Drop every forwarded connection."""
        with self._lock:
            socks, self._socks = self._socks, []
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self):
        self._stopping.set()
        self.cut()
        self.release()
        self._listener.close()
        self._thread.join(5.0)
        for t in self._threads:
            t.join(2.0)


# -------------------------------------------------------------- helpers


def api(h, op, **params):
    pairs = []
    for name, value in params.items():
        if isinstance(value, (list, tuple)):
            pairs += [(name, v) for v in value]
        elif value is not None:
            pairs.append((name, value))
    resp = h.post("/xmpp-api/" + op, data=pairs)
    return resp.status, json.loads(resp.body)


def xmpp_send(h, *args):
    env = dict(os.environ, XMPP_QUEUE=os.path.join(h.spool_dir, APP),
               XMPP_JID=APP)
    cmd = [XMPP_SEND] + list(args)
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "www-data", "--"] + cmd
    return subprocess.run(cmd, capture_output=True, text=True, env=env,
                          timeout=30, stdin=subprocess.DEVNULL)


def state(h):
    try:
        return h.status().get("XMPPApp1State")
    except Exception:
        return None


def wait_connected(h, timeout=30.0):
    util.wait_for(lambda: state(h) == "connected", timeout, 0.1,
                  "the app to be connected")


def queued_status(h):
    try:
        return int(h.status().get("XMPPApp1Queued", "-1"))
    except Exception:
        return -1


def app_dir(h):
    return os.path.join(h.spool_dir, APP)


def queue_empty(h):
    return not journal.pending(app_dir(h))


def queued_items(h):
    """{recipient bare JID: {origin-id: body}} of the message items queued
    and not yet acknowledged, as they are on disk (read as root)."""
    items = {}
    for data in journal.pending(app_dir(h)):
        _, _, stanza = data.decode("utf-8").partition("\n")
        root = ET.fromstring(stanza)
        if root.tag.split("}")[-1] != "message":
            continue
        oid = root.find("{%s}origin-id" % SID_NS).get("id")
        body = root.find("{jabber:client}body").text
        items.setdefault(root.get("to"), {})[oid] = body
    return items


def origin_id(record):
    el = ET.fromstring(record["xml"]).find("{%s}origin-id" % SID_NS)
    return None if el is None else el.get("id")


def received(client, prefix):
    with client.lock:
        return [m for m in client.messages
                if (m["body"] or "").startswith(prefix)]


def check_delivery(client, prefix, bodies, sent_ids):
    """All `bodies` arrived at `client`, first arrivals in order; every
    copy of a body has one origin-id, and the distinct origin-ids are the
    ones that were queued (`sent_ids`: {origin-id: body})."""
    try:
        util.wait_for(lambda: len({m["body"] for m in received(client, prefix)})
                      >= len(bodies), DELIVERY_WAIT, 0.2,
                      "%d messages at %s" % (len(bodies), client.jid))
    except TimeoutError:
        got = sorted({m["body"] for m in received(client, prefix)})
        raise AssertionError("%s got %d of %d messages; missing %s" % (
            client.jid, len(got), len(bodies),
            sorted(set(bodies) - set(got)))) from None
    msgs = received(client, prefix)
    first = []
    for m in msgs:
        if m["body"] not in first:
            first.append(m["body"])
    assert first == bodies, "out of order at %s: %s" % (client.jid, first)
    ids = {}
    for m in msgs:
        assert m["from"] == APP_FULL, m
        oid = origin_id(m)
        assert oid, m["xml"]
        ids.setdefault(oid, set()).add(m["body"])
    assert all(len(b) == 1 for b in ids.values()), \
        "one origin-id on different bodies: %s" % ids
    assert {oid: b.pop() for oid, b in ids.items()} == sent_ids, \
        "the origin-ids received are not those queued"
    duplicates = len(msgs) - len(bodies)
    return duplicates


# -------------------------------------------------------------- fixtures


@pytest.fixture
def gated(httpd_factory, prosody):
    """Factory: an httpd whose app reaches Prosody through a Gate, with the
    xmpp-api handler; started and connected.  Returns (httpd, gate)."""
    gates = []

    def make(mpm="event", app_conf=None, children=None, log_level="info"):
        gate = Gate(prosody.port)
        gates.append(gate)
        conf = {"XMPPServer": "127.0.0.1:%d" % gate.port}
        conf.update(app_conf or {})
        h = httpd_factory(mpm=mpm, app_conf=conf, extra_conf=API_CONF,
                          children=children, start=True,
                          log_level=log_level)
        wait_connected(h)
        return h, gate

    yield make
    for gate in gates:
        gate.close()


class Outage:
    """Shut the gate and stop Prosody; restart() brings Prosody back with
    the gate still shut (also on failure: other tests need Prosody)."""

    def __init__(self, prosody, gate, h):
        self.prosody, self.gate, self.h = prosody, gate, h

    def __enter__(self):
        self.gate.shut()
        self.prosody.stop()
        util.wait_for(lambda: state(self.h) not in (None, "connected"), 15,
                      0.1, "the app to notice the outage")
        return self

    def __exit__(self, *exc):
        if not self.prosody.running:
            self.prosody.start()
        return False


def queue_numbered(h, run, n=N, recipients=("alice@localhost",
                                            "bob@localhost")):
    bodies = ["%s #%02d" % (run, i) for i in range(n)]
    for body in bodies:
        code, answer = api(h, "send_message", jid=list(recipients), body=body)
        assert code == 200, answer
        assert answer["statuses"] == ["NO_ERROR"] * len(recipients), answer
    return bodies


def wait_queued(h, count):
    util.wait_for(lambda: queued_status(h) >= count, 10, 0.2,
                  "XMPPApp1Queued >= %d" % count)
    assert len(journal.pending(app_dir(h))) >= count


def outage_scenario(h, gate, prosody, xmpp_client, during=None):
    """Queue N numbered messages for alice and bob while Prosody is down,
    run `during(h)`, bring Prosody back, log the clients in, open the
    gate; every message arrives."""
    run = "run-%d" % time.time_ns()
    with Outage(prosody, gate, h):
        bodies = queue_numbered(h, run)
        wait_queued(h, 2 * N)
        sent = queued_items(h)
        assert sorted(sent) == ["alice@localhost", "bob@localhost"]
        assert all(sorted(v.values()) == bodies for v in sent.values()), sent
        assert state(h) != "connected"
        if during:
            during(h)
            assert queued_items(h) == sent, "the queue changed"
    clients = {"alice@localhost": xmpp_client("alice"),
               "bob@localhost": xmpp_client("bob")}
    gate.open()
    wait_connected(h, DELIVERY_WAIT)
    for jid, client in clients.items():
        check_delivery(client, run, bodies, sent[jid])
    util.wait_for(lambda: queue_empty(h), 15, 0.2,
                  "the queue to drain")
    util.wait_for(lambda: queued_status(h) == 0, 5, 0.2, "Queued: 0")
    # counted as sent once the server acknowledged them (all of them went
    # out after `during`, so a restart's fresh counters count them too)
    sent_count = int(h.status().get("XMPPApp1Sent", "0"))
    assert sent_count >= 2 * N, sent_count


# ----------------------------------------------------------------- tests


def test_gate_forwards(gated, xmpp_client):
    """The gate itself: the app connects through it and sends."""
    h, gate = gated()
    alice = xmpp_client("alice")
    code, answer = api(h, "send_message", jid="alice@localhost",
                       body="through the gate")
    assert answer["statuses"] == ["NO_ERROR"]
    alice.wait_message(15, lambda m: m["body"] == "through the gate")
    assert gate.accepted >= 1


def test_sends_while_prosody_is_down_arrive_later(gated, prosody,
                                                  xmpp_client):
    h, gate = gated()
    outage_scenario(h, gate, prosody, xmpp_client)


def test_kill_9_of_the_holder(gated, prosody, xmpp_client):
    h, gate = gated()

    def kill_holder(h):
        pid = int(h.status()["XMPPApp1HolderPID"])
        assert pid in h.worker_pids(), (pid, h.worker_pids())
        os.kill(pid, signal.SIGKILL)
        util.wait_for(lambda: not util.pid_alive(pid), 10, 0.05,
                      "the holder to die")

        def new_holder():
            try:
                p = int(h.status().get("XMPPApp1HolderPID", "0"))
            except Exception:
                return None
            return p if p not in (0, pid) and util.pid_alive(p) else None
        util.wait_for(new_holder, 15, 0.1, "another child to hold")
    outage_scenario(h, gate, prosody, xmpp_client, during=kill_holder)


@pytest.mark.parametrize("how", ["graceful", "restart", "stop-start"])
def test_queue_survives_httpd_restarts(gated, prosody, xmpp_client, how):
    h, gate = gated()

    def restart(h):
        old = h.status().get("XMPPApp1HolderPID")
        if how == "graceful":
            h.graceful()
        elif how == "restart":
            h.restart()
        else:
            assert h.stop()
            h.start()
        util.wait_for(lambda: h.status().get("XMPPApp1HolderPID")
                      not in (None, "0", old), 15, 0.1, "a new holder")
    outage_scenario(h, gate, prosody, xmpp_client, during=restart)


def test_full_queue_refuses_and_recovers(gated, prosody, xmpp_client):
    h, gate = gated(app_conf={"XMPPQueueLimit": "5"})
    run = "full-%d" % time.time_ns()
    with Outage(prosody, gate, h):
        offset = h.log_size()
        code, answer = api(h, "send_message", body=run + " first",
                           jid=["alice@localhost", "bob@localhost"] * 3)
        assert code == 200, answer
        # the limit is applied by the holder's recount (every second), so
        # all six may be taken; at least the first five are
        assert answer["statuses"][:5] == ["NO_ERROR"] * 5, answer
        h.wait_log(r"XMPP0202: app@localhost: the outbound queue is full "
                   r"\(\d+ items, XMPPQueueLimit 5\)", 5, offset)
        time.sleep(0.2)
        # HTTP: 200 with OTHER_ERROR, and the error log says why
        offset = h.log_size()
        code, answer = api(h, "send_message", jid="alice@localhost",
                           body=run + " refused")
        assert (code, answer["statuses"]) == (200, ["OTHER_ERROR"]), answer
        h.wait_log(r"app@localhost: a send was refused with OTHER_ERROR: "
                   r"the outbound queue is full", 5, offset)
        code, answer = api(h, "send_presence", jid="alice@localhost",
                           status="refused too")
        assert (code, answer["statuses"]) == (200, ["OTHER_ERROR"]), answer
        # xmpp-send: exit 1, OTHER_ERROR, the reason on stderr
        r = xmpp_send(h, "message", "alice@localhost", "--", run + " cli")
        assert r.returncode == 1, r
        assert r.stdout == "alice@localhost OTHER_ERROR\n", r
        assert "full" in r.stderr, r.stderr
        # nothing refused was written
        queued = queued_items(h)
        bodies = [b for v in queued.values() for b in v.values()]
        assert bodies and all(b == run + " first" for b in bodies), queued
        assert queued_status(h) >= 5
    gate.open()
    wait_connected(h, DELIVERY_WAIT)
    util.wait_for(lambda: queue_empty(h), 30, 0.2,
                  "the queue to drain")
    util.wait_for(lambda: queued_status(h) == 0, 5, 0.2, "Queued: 0")

    def accepted():
        code, answer = api(h, "send_message", jid="alice@localhost",
                           body=run + " again")
        return answer.get("statuses") == ["NO_ERROR"]
    util.wait_for(accepted, 5, 0.5, "a send to be accepted again")
    r = xmpp_send(h, "message", "alice@localhost", "--", run + " cli again")
    assert (r.returncode, r.stdout) == (0, "alice@localhost NO_ERROR\n"), r
    alice = xmpp_client("alice")
    code, answer = api(h, "send_message", jid="alice@localhost",
                       body=run + " delivered")
    assert answer["statuses"] == ["NO_ERROR"]
    alice.wait_message(15, lambda m: m["body"] == run + " delivered")


def test_stanza_the_server_refuses_does_not_block_the_queue(gated,
                                                           xmpp_client):
    """A stanza the server closes the stream on (here a message above
    Prosody's c2s_stanza_size_limit, 256 KiB; the API takes forms up to
    1 MiB) would be sent again after every reconnect, and every send
    behind it would wait forever. After such a close the items in flight
    go again one at a time; the one alone in flight at two closes is set
    aside: kept in bad/, logged (XMPP0257), counted as failed. The sends
    behind it arrive, in order."""
    h, _ = gated()
    alice = xmpp_client("alice")
    run = "behind-%d" % time.time_ns()
    big = "B" * 300000
    code, answer = api(h, "send_message", jid="alice@localhost", body=big)
    assert code == 200 and answer["statuses"] == ["NO_ERROR"], answer
    bodies = queue_numbered(h, run, n=5, recipients=("alice@localhost",))
    util.wait_for(lambda: len(received(alice, run)) >= 5, 90, 0.2,
                  "the 5 sends behind the refused one")
    assert [m["body"] for m in received(alice, run)][:5] == bodies
    line = h.wait_log(r"XMPP0257: app@localhost: the server closed the "
                      r"stream each time outbound item (\d+) \(\d+ bytes\) "
                      r"was sent alone, last: (.*); it is not sent again "
                      r"and is kept in (\S+)", timeout=10)
    assert "policy-violation" in line.group(2), line.group(0)
    with open(line.group(3)) as f:
        kept = f.read()
    assert big in kept and "<message" in kept
    assert int(h.status()["XMPPApp1Failed"]) >= 1
    util.wait_for(lambda: queue_empty(h), 15, 0.2, "the queue to drain")
    with alice.lock:
        assert not any(m["body"] == big for m in alice.messages)


def test_spool_when_the_socket_path_is_too_long(gated, xmpp_client):
    """A spool directory too deep for a Unix socket's address: the holder
    says so and every send goes through the spool files, which it moves
    into its journal; nothing is lost, order is kept."""
    top = util.make_tempdir("mx-deep-")
    try:
        deep = os.path.join(top, "d" * 60, "e" * 60)
        os.makedirs(deep, 0o755)
        util.chown(deep, "www-data")
        h, gate = gated(app_conf={"XMPPSpoolDir": deep})
        app_dir = os.path.join(deep, APP)
        assert len(os.path.join(app_dir, "queue.sock")) > 108
        h.wait_log(r"XMPP0212: app@localhost: the path of the queue's "
                   r"socket in .* is too long for a Unix socket: senders "
                   r"use the spool", 10)
        assert not os.path.exists(os.path.join(app_dir, "queue.sock"))
        alice = xmpp_client("alice")
        run = "deep-%d" % time.time_ns()
        bodies = ["%s #%02d" % (run, i) for i in range(10)]
        for body in bodies[:5]:
            code, answer = api(h, "send_message", jid="alice@localhost",
                               body=body)
            assert (code, answer["statuses"]) == (200, ["NO_ERROR"]), answer
        env_queue = {"XMPP_QUEUE": app_dir}
        for body in bodies[5:]:
            r = subprocess.run(
                (["runuser", "-u", "www-data", "--"] if os.geteuid() == 0
                 else []) + [XMPP_SEND, "message", "alice@localhost", "--",
                             body],
                capture_output=True, text=True, timeout=30,
                stdin=subprocess.DEVNULL,
                env=dict(os.environ, XMPP_JID=APP, **env_queue))
            assert (r.returncode, r.stdout) == (
                0, "alice@localhost NO_ERROR\n"), r
        util.wait_for(lambda: [m["body"] for m in received(alice, run)]
                      == bodies, DELIVERY_WAIT, 0.2,
                      "the 10 messages, in order")
        # through the spool into the journal, and out of the spool again
        util.wait_for(lambda: queue_empty_at(app_dir), 15, 0.2,
                      "the queue to drain")
        assert len(journal.journal_records(app_dir)) >= 10
    finally:
        shutil.rmtree(top, ignore_errors=True)


def queue_empty_at(app_dir):
    return not journal.pending(app_dir)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make a file "
                    "the server's User cannot read")
def test_unreadable_spooled_item_stays_until_readable(gated, xmpp_client):
    """A spooled item the holder cannot read is never removed unread: the
    log says so, and once it is readable it is sent."""
    h, gate = gated()
    alice = xmpp_client("alice")
    app_dir = os.path.join(h.spool_dir, APP)
    body = "unreadable-%d" % time.time_ns()
    stanza = ('<message to="alice@localhost" type="chat" '
              'xmlns="jabber:client"><body>%s</body></message>' % body)
    name = "%020d-%010d-%08d" % (time.time_ns(), os.getpid(), 1)
    tmp = os.path.join(app_dir, "tmp", name)
    with open(tmp, "w") as f:
        f.write("MX1 stanza\n" + stanza)
    os.chmod(tmp, 0o600)  # root's: www-data cannot read it
    offset = h.log_size()
    os.rename(tmp, os.path.join(app_dir, "new", name))
    h.wait_log(r"XMPP0216: app@localhost: cannot read the spooled item "
               r".*/new/%s; it stays there" % name, 10, offset)
    assert os.path.exists(os.path.join(app_dir, "new", name))
    util.chown(os.path.join(app_dir, "new", name), "www-data")
    alice.wait_message(DELIVERY_WAIT, lambda m: m["body"] == body)
    util.wait_for(lambda: not os.path.exists(
        os.path.join(app_dir, "new", name)), 10, 0.2, "the item to leave new/")


def _queue_request(sock, item):
    sock.sendall(b"PUT %d\n" % len(item) + item)


def _answer_lines(sock, n, timeout=10.0):
    sock.settimeout(timeout)
    data = b""
    while data.count(b"\n") < n:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.decode().splitlines()


def test_queue_socket_protocol(gated, xmpp_client):
    """The holder's queue socket as mx_qclient.h describes it: each PUT
    is answered "OK <journal number>" once durable, numbers follow each
    other on a connection, the item is sent; anything else is answered
    ERR and the connection closed."""
    h, gate = gated()
    alice = xmpp_client("alice")
    path = os.path.join(h.spool_dir, APP, "queue.sock")
    run = "proto-%d" % time.time_ns()
    items = [("MX1 stanza\n<message to=\"alice@localhost\" type=\"chat\" "
              "xmlns=\"jabber:client\"><body>%s %d</body></message>"
              % (run, i)).encode() for i in range(2)]
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(path)
        for item in items:  # both before reading: pipelined
            _queue_request(s, item)
        answers = _answer_lines(s, 2)
    assert len(answers) == 2 and all(
        re.fullmatch(r"OK \d+", a) for a in answers), answers
    first, second = (int(a.split()[1]) for a in answers)
    assert second == first + 1
    for i in range(2):
        alice.wait_message(DELIVERY_WAIT,
                           lambda m, i=i: m["body"] == "%s %d" % (run, i))
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(path)
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        answer = _answer_lines(s, 1)
        assert answer and answer[0].startswith("ERR "), answer
        s.settimeout(5)
        assert s.recv(100) == b"", "the connection stays open"


def _message_item(body, to="alice@localhost", attrs=""):
    return ('MX1 stanza\n<message to="%s" type="chat" xmlns="jabber:client"'
            '%s><body>%s</body></message>' % (to, attrs, body)).encode()


# Items that only a sender that bypasses xmpp-send and mx_ops can give
# the holder (anything running as User can): each must be refused.
FORGED_ITEMS = {
    "foreign-from": lambda run: _message_item(
        run + " forged", attrs=' from="bob@localhost/x"'),
    "nul-byte": lambda run: _message_item(run + " forged\0heap"),
    "invalid-jid": lambda run: _message_item(run + " forged",
                                             to="alice@@localhost"),
    "two-stanzas": lambda run: _message_item(run + " forged")
    + b'<iq type="set" id="x"><query xmlns="jabber:iq:roster"/></iq>',
    "not-a-stanza": lambda run: b"MX1 stanza\n<r xmlns='urn:xmpp:sm:3'/>",
    "short-subscribers": lambda run: b"MX1 subscribers\nx",
}


@pytest.mark.parametrize("case", sorted(FORGED_ITEMS))
def test_queue_socket_refuses_forged_items(gated, xmpp_client, case):
    """The holder checks what it is given on its socket as the senders
    do (a valid stanza, the app's own from address, valid recipients, no
    NUL byte): a forged item is answered BAD with the reason and never
    sent; the next item on the same connection is taken and arrives."""
    h, gate = gated()
    alice = xmpp_client("alice")
    path = os.path.join(h.spool_dir, APP, "queue.sock")
    run = "refused-%s-%d" % (case, time.time_ns())
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(path)
        _queue_request(s, FORGED_ITEMS[case](run))
        _queue_request(s, _message_item(run + " good"))
        answers = _answer_lines(s, 2)
    assert len(answers) == 2 and answers[0].startswith("BAD "), answers
    assert re.fullmatch(r"OK \d+", answers[1]), answers
    alice.wait_message(DELIVERY_WAIT, lambda m: m["body"] == run + " good")
    # the forged one was before it in the queue, had it been taken
    assert [m["body"] for m in received(alice, run)] == [run + " good"]
    assert state(h) == "connected"


def test_queue_socket_refuses_items_above_16_mib(gated, xmpp_client):
    """A PUT announcing more than 16 MiB (the journal's largest record) is
    answered BAD at once, before its data, and the connection closed; the
    queue goes on."""
    h, gate = gated()
    alice = xmpp_client("alice")
    path = os.path.join(h.spool_dir, APP, "queue.sock")
    run = "huge-%d" % time.time_ns()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(path)
        s.sendall(b"PUT %d\nMX1 stanza\n<message" % (16 * 1024 * 1024 + 1))
        answer = _answer_lines(s, 1)
        assert answer and answer[0].startswith("BAD "), answer
        assert "16 MiB" in answer[0], answer
        s.settimeout(5)
        assert s.recv(100) == b"", "the connection stays open"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(path)
        _queue_request(s, _message_item(run + " good"))
        answer = _answer_lines(s, 1)
    assert answer and re.fullmatch(r"OK \d+", answer[0]), answer
    alice.wait_message(DELIVERY_WAIT, lambda m: m["body"] == run + " good")


def _spool(app_dir, data=None, size=None):
    """Put an item in the spool the way mx_queue_put does (tmp/, then
    new/), owned by www-data; `size` makes it a sparse file that long."""
    name = "%020d-%010d-%08d" % (time.time_ns(), os.getpid(), 1)
    tmp = os.path.join(app_dir, "tmp", name)
    with open(tmp, "wb") as f:
        f.write(data or b"")
        if size:
            f.truncate(size)
    util.chown(tmp, "www-data")
    os.rename(tmp, os.path.join(app_dir, "new", name))
    return name


def test_spooled_forged_items_are_set_aside(gated, xmpp_client):
    """Items written straight into the spool (anything running as User
    can) are checked like those of the socket: a forged one, or one above
    16 MiB (never read into memory), is moved to bad/ and logged
    (XMPP0219), counted as failed, and the spooled items behind it are
    sent."""
    h, gate = gated()
    alice = xmpp_client("alice")
    app_dir = os.path.join(h.spool_dir, APP)
    run = "spooled-%d" % time.time_ns()
    failed = int(h.status()["XMPPApp1Failed"])
    offset = h.log_size()
    forged = [_spool(app_dir, FORGED_ITEMS[case](run))
              for case in ("nul-byte", "foreign-from", "invalid-jid")]
    forged.append(_spool(app_dir, b"MX1 stanza\n<message", 16 * 2**20 + 1))
    _spool(app_dir, _message_item(run + " good"))
    alice.wait_message(DELIVERY_WAIT, lambda m: m["body"] == run + " good")
    for name in forged:
        h.wait_log(r"XMPP0219: app@localhost: the spooled item %s is "
                   r"refused \(.+\); moved aside to bad/" % name, 10, offset)
        assert os.path.exists(os.path.join(app_dir, "bad", name))
        assert not os.path.exists(os.path.join(app_dir, "new", name))
    assert [m["body"] for m in received(alice, run)] == [run + " good"]
    assert int(h.status()["XMPPApp1Failed"]) >= failed + len(forged)


def test_forged_acknowledgements_confirm_nothing(gated, xmpp_client):
    """Anyone may send the app an IQ result with an id of its ping round
    trips: it must not count as the server's confirmation. While what the
    app sends is held back (so its messages are in flight, not yet seen
    by the server), another user sends such results; the app's Sent
    counter does not move, the messages stay queued, and when the
    connection is cut they are sent again and arrive."""
    h, gate = gated(log_level="info xmpp:trace2")
    alice = xmpp_client("alice")
    bob = xmpp_client("bob")
    run = "forged-ack-%d" % time.time_ns()
    sent = int(h.status()["XMPPApp1Sent"])
    received_before = int(h.status()["XMPPApp1Received"])
    offset = h.log_size()
    gate.hold()
    try:
        bodies = queue_numbered(h, run, n=3, recipients=("alice@localhost",))
        # in flight: handed to the connection (libstrophe's trace)
        h.wait_log(r"SENT: .*%s #02" % re.escape(run), 15, offset)
        for ack_id in ("mx-ack-1000", "mx-ack-4294967295",
                       "mx-ack-1000-1000"):
            bob.send_raw("<iq type='result' id='%s' to='%s'/>"
                         % (ack_id, APP_FULL))
            bob.send_raw("<iq type='error' id='%s' to='%s'/>"
                         % (ack_id, APP_FULL))
        # a message after them: once it is counted, they were handled
        bob.send_message(APP_FULL, run + " after the forgeries")
        util.wait_for(lambda: int(h.status()["XMPPApp1Received"])
                      > received_before, 15, 0.1,
                      "the app to receive bob's message")
        assert int(h.status()["XMPPApp1Sent"]) == sent
        assert [b for b in bodies if any(
            ("<body>%s</body>" % b).encode() in item
            for item in journal.pending(app_dir(h)))] == bodies
        gate.cut()  # what was held never reaches the server
    finally:
        gate.release()
    wait_connected(h, DELIVERY_WAIT)
    util.wait_for(lambda: len({m["body"] for m in received(alice, run)})
                  >= 3, DELIVERY_WAIT, 0.2, "the 3 messages at alice")
    assert [m["body"] for m in received(alice, run)][:3] == bodies
    util.wait_for(lambda: queue_empty(h), 15, 0.2, "the queue to drain")


def _append_journal_record(app_dir, payload):
    """Append a record to the newest journal segment as mx_journal_append
    writes it (for items only another writer could have put there, e.g.
    an older mod_xmpp). Returns its number."""
    jdir = os.path.join(app_dir, "journal")
    segs = sorted(n for n in os.listdir(jdir) if n.endswith(".seg"))
    records = journal.journal_records(app_dir)
    if records:
        number = records[-1][0] + 1
    else:  # every segment acknowledged and removed
        with open(os.path.join(jdir, "acked")) as f:
            number = int(f.read().strip() or 0) + 1
    seg = segs[-1] if segs else "%020d.seg" % number
    nbytes = struct.pack("<Q", number)
    crc = zlib.crc32(payload, zlib.crc32(nbytes))
    path = os.path.join(jdir, seg)
    with open(path, "ab") as f:
        f.write(b"MXJ1" + struct.pack("<I", len(payload)) + nbytes
                + struct.pack("<II", crc, 0) + payload)
    util.chown(path, "www-data")
    return number


def test_journal_item_with_a_nul_byte_is_set_aside(gated, xmpp_client):
    """libstrophe sends a stanza as a C string: bytes after a NUL would be
    the holder's memory. An item with a NUL byte found in the journal is
    never sent: kept in bad/, logged (XMPP0258), counted as failed; the
    connection stays up and the items behind it arrive."""
    h, gate = gated()
    alice = xmpp_client("alice")
    app_dir = os.path.join(h.spool_dir, APP)
    run = "journal-nul-%d" % time.time_ns()
    code, answer = api(h, "send_message", jid="alice@localhost",
                       body=run + " before")
    alice.wait_message(DELIVERY_WAIT, lambda m: m["body"] == run + " before")
    util.wait_for(lambda: queue_empty(h), 15, 0.2, "the queue to drain")
    assert h.stop()
    bad = _append_journal_record(app_dir, _message_item(run + " x\0heap"))
    _append_journal_record(app_dir, _message_item(run + " good"))
    offset = h.log_size()
    h.start()
    alice.wait_message(DELIVERY_WAIT, lambda m: m["body"] == run + " good")
    # it was before the good one: it would have arrived by now
    assert [m["body"] for m in received(alice, run)] == [
        run + " before", run + " good"]
    assert "XMPP0106" not in h.error_log()[offset:], "disconnected"
    line = h.wait_log(r"XMPP0258: app@localhost: outbound item %d \(\d+ "
                      r"bytes\) contains a NUL byte; it is not sent and is "
                      r"kept in (\S+)" % bad, 10, offset)
    with open(line.group(1), "rb") as f:
        assert b"\0heap" in f.read()
    assert int(h.status()["XMPPApp1Failed"]) >= 1
    util.wait_for(lambda: queue_empty(h), 15, 0.2, "the queue to drain")


@pytest.fixture(params=[("smacks",), ("smacks", "ping")],
                ids=["no-sm", "no-sm-no-ping"])
def prosody_without_sm(request):
    """A private Prosody without stream management (mod_smacks left
    out), like servers that do not offer XEP-0198; also without XEP-0199
    pings, which it then answers with an error."""
    server = ProsodyServer(disabled=request.param)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        server.cleanup()


def test_server_without_stream_management(prosody_without_sm):
    """Such a server closes the stream on an <enable/> (unsupported-stanza-
    type): mod_xmpp sends none when the server's features do not offer
    it, says so (XMPP0255), stays connected, and confirms delivery with
    ping round trips (an IQ answer, a result or an error, comes after
    everything sent before it): the sends arrive in order, count as sent
    and leave the queue. The pings' ids are random per session, not in
    the log even when it shows every stanza (they would let a reader of
    the log forge confirmations)."""
    need_module()
    p = prosody_without_sm
    h = Httpd(prosody=p, mpm="event", extra_conf=API_CONF,
              log_level="info xmpp:trace2")
    alice = None
    try:
        h.start()
        wait_connected(h)
        alice = XmppClient(p.jid("alice") + "/nosm", p.password("alice"),
                           p.port, p.ca_file)
        run = "nosm-%d" % time.time_ns()
        bodies = queue_numbered(h, run, recipients=("alice@localhost",))
        util.wait_for(lambda: len(received(alice, run)) >= N, 30, 0.2,
                      "%d messages at alice" % N)
        assert [m["body"] for m in received(alice, run)] == bodies
        util.wait_for(lambda: queue_empty(h) and queued_status(h) == 0, 15,
                      0.2, "the queue to drain (ping round trips)")
        assert int(h.status()["XMPPApp1Sent"]) >= N
        assert state(h) == "connected"
        log = h.error_log()
        assert re.search(r"XMPP0255: app@localhost: the server does not "
                         r"offer stream management", log), log[-2000:]
        assert "XMPP0106" not in log, log[-2000:]  # never disconnected
        assert re.search(r"SENT: .*<iq type='get' id='mx-ack-\[redacted\]-"
                         r"\d+'>", log), log[-2000:]
        assert not re.search(r"mx-ack-(?!\[redacted\]-)", log)
    finally:
        if alice:
            alice.disconnect()
        h.stop()
        h.cleanup()
