# SPDX-License-Identifier: Apache-2.0
"""Scale-out (SPEC section 7, issue 12): one app on two httpd hosts with
the same XMPPComponent domain, each with its own spool, connected to a
two-node ejabberd cluster (harness/ejabberd.py EjabberdCluster, the
listener from conf/ejabberd-scaleout.yml), ten slixmpp users, half of
them on each node.  Host A connects to node 1 first, host B to node 2
first, each with the other node as its second XMPPServer address.

Each host's handler answers with its environment, in which `SetEnv
MX_HOST A|B` says which host ran it: the users see who answered.  Every
message goes to an address of its own, so an answer names its question.
"""

import os
import re
import signal
import threading
import time

import pytest

from harness import ejabberd as ejabberd_harness
from harness import journal, util
from harness.xmpp import XmppClient
from test_component import HANDLERS, api, bare, component_conf, status

pytestmark = pytest.mark.skipif(not ejabberd_harness.cluster_available(),
                                reason="ejabberd (and epmd) not installed "
                                "(tools/install-deps installs it)")

USERS = tuple("u%d" % i for i in range(10))
ON_NODE1, ON_NODE2 = USERS[:5], USERS[5:]


@pytest.fixture(scope="module")
def cluster():
    c = ejabberd_harness.EjabberdCluster(nodes=2, users=USERS)
    try:
        c.start()
    except Exception:
        c.stop()
        raise
    yield c
    clean = c.stop()
    if clean:
        c.cleanup()
    else:
        print("\nejabberd directories kept: %s" % " ".join(
            [c.directory] + [n.directory for n in c.nodes]))
    assert clean, "ejabberd had to be killed at teardown"


@pytest.fixture
def whole(cluster):
    """Both nodes running and joined (a test may have stopped one)."""
    for node in cluster.nodes:
        if not node.running:
            node.start()
    cluster.wait_cluster()
    return cluster


@pytest.fixture
def users(whole):
    """name -> XmppClient, u0-u4 logged in to node 1, u5-u9 to node 2."""
    clients = {}
    try:
        for i, user in enumerate(USERS):
            node = whole[0] if user in ON_NODE1 else whole[1]
            clients[user] = XmppClient(whole.jid(user), whole.password(user),
                                       node.port, whole.ca_file)
        yield clients
    finally:
        for c in clients.values():
            c.disconnect()


def addr(node):
    return "127.0.0.1:%d" % node.component_port


@pytest.fixture
def host(httpd_factory, whole):
    """host(name, first_node, other_node): an httpd whose app is the
    cluster's component, XMPPServer first_node then other_node; started
    and connected."""
    def make(name, first, other, start=True):
        extra = HANDLERS + "SetEnv MX_HOST %s\n" % name
        h = httpd_factory(extra_conf=extra)
        h.write_config(app_conf=component_conf(
            h, whole[0], XMPPServer="%s %s" % (addr(first), addr(other))),
            extra_conf=extra)
        h.mx_name = name
        if start:
            h.start()
            wait_state(h, "connected")
        return h
    return make


def wait_state(h, state, timeout=60.0):
    util.wait_for(lambda: status(h).get("XMPPApp1State") == state,
                  timeout, 0.1, "%s to be %s" % (getattr(h, "mx_name", "the "
                                                         "host"), state))


def kill_all(h):
    """kill -9 of every process of the httpd (the machine died)."""
    pids = [h.pid] + h.child_pids()
    for pid in pids:
        util.signal_pid(pid, signal.SIGKILL)
    util.wait_for(lambda: not any(util.pid_alive(p) for p in pids), 15,
                  0.05, "httpd's processes to die")
    h.stop()


class Traffic:
    """Questions from users, each to an address of its own; answers
    found by their sender's address."""

    def __init__(self, cluster, tag):
        self.domain = cluster.component_domain
        self.tag = "%s-%d" % (tag, time.time_ns() % 10**9)
        self.sent = []   # (user, address, monotonic time after the send)
        self.n = 0

    def ask(self, clients, names, per_user=1):
        for _ in range(per_user):
            for name in names:
                self.n += 1
                to = "%s-%d@%s" % (self.tag, self.n, self.domain)
                clients[name].send_message(to, "question %d" % self.n)
                self.sent.append((name, to, time.monotonic()))

    def answers(self, clients):
        """address -> host name (A or B) of the first answer from it."""
        got = {}
        for name, to, _ in self.sent:
            for m in list(clients[name].messages):
                if m["from"] and bare(m["from"]) == to:
                    found = re.search(r"^MX_HOST=(\w+)$", m["body"] or "",
                                      re.M)
                    got[to] = found.group(1) if found else "?"
                    break
        return got

    def wait_all(self, clients, timeout=60.0, what=None):
        util.wait_for(lambda: len(self.answers(clients)) == len(self.sent),
                      timeout, 0.2, what or "%d answers" % len(self.sent))
        return self.answers(clients)

    def missing(self, clients, since=None):
        got = self.answers(clients)
        return [(name, to, t) for name, to, t in self.sent
                if to not in got and (since is None or t > since)]


def served_by(answers):
    by = {}
    for who in answers.values():
        by[who] = by.get(who, 0) + 1
    return by


def handled_requests(h):
    """Inbound requests the host's handler got (its access log)."""
    return len(re.findall(r'"POST /_ah/xmpp/message/chat/ ', h.access_log()))


def wait_serving(h, name, cluster, clients, senders, rounds=20):
    """Until a question from senders is answered by host `name` (bounded
    in rounds): the host takes its share again."""
    for _ in range(rounds):
        t = Traffic(cluster, "share")
        t.ask(clients, senders)
        got = t.wait_all(clients, 30)
        if name in got.values():
            return got
    raise AssertionError("host %s got no share in %d rounds" % (name, rounds))


# ------------------------------------------------------------ addresses

def test_first_address_down_the_next_one_serves(host, whole, users):
    """XMPPServer with a closed port first: the holder moves on to the
    next address at once, says so, and the status shows where it is."""
    closed = util.free_port()
    h = host("A", whole[0], whole[0], start=False)
    h.write_config(app_conf=component_conf(
        h, whole[0], XMPPServer="127.0.0.1:%d [127.0.0.1]:%d"
        % (closed, whole[0].component_port)),
        extra_conf=HANDLERS + "SetEnv MX_HOST A\n")
    h.start()
    wait_state(h, "connected")
    assert status(h)["XMPPApp1Server"] == addr(whole[0])
    assert re.search(r"XMPP0110: .*127\.0\.0\.1:%d: [^;]*; "
                     r"trying 127\.0\.0\.1:%d next" % (
                         closed, whole[0].component_port), h.error_log()), \
        h.error_log()
    t = Traffic(whole, "next")
    t.ask(users, ON_NODE1)
    assert set(t.wait_all(users, 30).values()) == {"A"}


def test_client_mode_tries_the_next_address(httpd_factory, prosody):
    """Client mode too: a closed port first, then the Prosody."""
    closed = util.free_port()
    h = httpd_factory(app_conf={"XMPPServer": "127.0.0.1:%d 127.0.0.1:%d"
                                % (closed, prosody.port)})
    h.start()
    util.wait_for(lambda: status(h).get("XMPPApp1State") == "connected",
                  60, 0.1, "the client to be connected")
    assert status(h)["XMPPApp1Server"] == "127.0.0.1:%d" % prosody.port
    assert re.search(r"XMPP0110: .*:%d: [^;]*; trying" % closed,
                     h.error_log()), h.error_log()


# ------------------------------------------------------------ two hosts

def test_two_hosts_share_the_traffic(host, whole, users):
    a = host("A", whole[0], whole[1])
    b = host("B", whole[1], whole[0])
    assert status(a)["XMPPApp1Server"] == addr(whole[0])
    assert status(b)["XMPPApp1Server"] == addr(whole[1])
    t = Traffic(whole, "share")
    t.ask(users, USERS, per_user=3)
    got = t.wait_all(users, 60)
    by = served_by(got)
    print("\n30 questions from 10 users: answered by %s" % by)
    assert set(by) == {"A", "B"}, by
    assert handled_requests(a) >= by["A"] and handled_requests(b) >= by["B"]


def test_host_stopped_killed_and_back(host, whole, users):
    """B stops gracefully, comes back, loses its holder child (kill -9),
    then all its processes: after each, what users send is answered (by A,
    or by B's next holder); what was in B's socket at the kill is counted
    and printed; B started again takes its share again."""
    a = host("A", whole[0], whole[1])
    b = host("B", whole[1], whole[0])
    wait_serving(b, "B", whole, users, ON_NODE2)

    # graceful stop: nothing lost, A answers everything
    assert b.stop()
    t = Traffic(whole, "stopped")
    t.ask(users, USERS, per_user=2)
    got = t.wait_all(users, 60)
    assert set(got.values()) == {"A"}, got

    # back again: B takes its share
    b.start()
    wait_state(b, "connected")
    wait_serving(b, "B", whole, users, ON_NODE2)

    # kill -9 of B's holder child while users on node 2 send, then of all
    # of B's processes
    traffic = {}
    for victim in ("holder", "all"):
        t = traffic[victim] = Traffic(whole, "kill-" + victim)
        stop = threading.Event()
        killed = {}

        def send():
            for _ in range(200):
                if stop.is_set():
                    break
                t.ask(users, ON_NODE2)
                time.sleep(0.02)
        sender = threading.Thread(target=send)
        sender.start()
        try:
            time.sleep(1.0)
            if victim == "holder":
                pid = int(status(b)["XMPPApp1HolderPID"])
                os.kill(pid, signal.SIGKILL)
                util.wait_for(lambda: not util.pid_alive(pid), 10, 0.01,
                              "the holder to die")
            else:
                kill_all(b)
            killed["at"] = time.monotonic()
            time.sleep(2.0)
        finally:
            stop.set()
            sender.join(30)
        if victim == "holder":
            wait_state(b, "connected")
        try:
            t.wait_all(users, 30)
        except TimeoutError:
            pass
        lost = t.missing(users)
        got = t.answers(users)
        # ejabberd drops B's route once it has seen the connection close:
        # the first question sent after the kill that was answered marks
        # that (a question in between went to the dead connection)
        answered_after = [ts for _, to, ts in t.sent
                          if ts > killed["at"] and to in got]
        assert answered_after, "nothing sent after the kill was answered"
        gone = min(answered_after)
        race = t.missing(users, since=killed["at"])
        after = t.missing(users, since=gone)
        print("\nkill -9 of B's %s: %d questions from node-2 users, %d "
              "answered (%s), %d unanswered from the moment of the kill, "
              "%d of them sent after the kill (within %.0f ms, before "
              "ejabberd saw the connection close)" % (
                  victim, len(t.sent), len(got), served_by(got), len(lost),
                  len(race), 1000 * (gone - killed["at"])))
        assert not after, "lost though sent after B's route was gone: %s" \
            % after

    # B started again (its journal and spool as it left them) answers
    # what its journal kept, and takes its share again
    pending = traffic["all"].missing(users)
    b.start()
    wait_state(b, "connected")
    try:
        traffic["all"].wait_all(users, 30)
    except TimeoutError:
        pass
    gone = traffic["all"].missing(users)
    print("B started again: %d of the %d unanswered answered from its "
          "journal, %d lost (in B's socket, the turn it was reading, or "
          "routed to it before ejabberd saw the close)" % (
              len(pending) - len(gone), len(pending), len(gone)))
    wait_serving(b, "B", whole, users, ON_NODE2)
    assert a.running


@pytest.mark.parametrize("how", ["stop", "kill"])
def test_node_down_host_moves_to_the_other(host, whole, users, how):
    """ejabberd node 2 stops (or its VM is killed): B (node 2 first)
    moves to node 1, says so, and keeps serving beside A.

    Both hosts on node 1 share one domain there: the delivery barrier's
    ping answers may reach the other host; each host resends its barrier
    until one of its own comes back, so both journals empty."""
    a = host("A", whole[0], whole[1])
    b = host("B", whole[1], whole[0])
    started = time.monotonic()
    if how == "stop":
        assert whole[1].stop()
    else:
        whole[1].kill()
    stopped = time.monotonic()
    util.wait_for(lambda: status(b).get("XMPPApp1Server") == addr(whole[0])
                  and status(b).get("XMPPApp1State") == "connected", 60,
                  0.1, "B to move to node 1")
    print("\nnode 2 %s took %.1f s; B connected to node 1 %.1f s after it "
          "began" % (how, stopped - started, time.monotonic() - started))
    assert re.search(r"XMPP0110: .*127\.0\.0\.1:%d: .*trying "
                     r"127\.0\.0\.1:%d next" % (whole[1].component_port,
                                                whole[0].component_port),
                     b.error_log()), b.error_log()
    node1 = {u: users[u] for u in ON_NODE1}
    got = wait_serving(b, "B", whole, node1, ON_NODE1)
    print("node 2 down, both hosts on node 1: %s" % served_by(got))
    assert status(a)["XMPPApp1Server"] == addr(whole[0])
    for h in (a, b):
        util.wait_for(lambda: not journal.pending(
            os.path.join(h.spool_dir, whole.component_domain)), 30, 0.1,
            "%s's journal to empty (its answers confirmed)" % h.mx_name)


def test_sends_during_an_outage_arrive(host, whole):
    """Both nodes down: sends accepted by A and by B (HTTP API) all
    arrive once the cluster is back (the users log in again then; the
    nodes keep for them what comes earlier)."""
    a = host("A", whole[0], whole[1])
    b = host("B", whole[1], whole[0])
    domain = whole.component_domain
    tag = "outage-%d" % (time.time_ns() % 10**9)
    whole[1].stop()
    whole[0].stop()
    for h in (a, b):
        util.wait_for(lambda: status(h).get("XMPPApp1State") != "connected",
                      30, 0.1, "the outage noticed")
    bodies = {}
    for h in (a, b):
        for user in USERS:
            body = "%s %s to %s" % (tag, h.mx_name, user)
            code, answer = api(h, "send_message", jid=whole.jid(user),
                               body=body, from_jid="news@" + domain)
            assert answer["statuses"] == ["NO_ERROR"], answer
            bodies.setdefault(user, []).append(body)
    # the node that stopped last starts first (its tables are the newest)
    whole[0].start()
    whole[1].start()
    whole.wait_cluster()
    for h in (a, b):
        wait_state(h, "connected", 120)
    clients = {}
    try:
        for user in USERS:
            node = whole[0] if user in ON_NODE1 else whole[1]
            clients[user] = XmppClient(whole.jid(user), whole.password(user),
                                       node.port, whole.ca_file)

        def mine(u):
            return [m["body"] for m in list(clients[u].messages)
                    if (m["body"] or "").startswith(tag)]

        def arrived():
            return all(set(mine(u)) == set(bodies[u]) for u in USERS)
        util.wait_for(arrived, 60, 0.2, "every send of the outage")
        total = sum(len(mine(u)) for u in USERS)
        print("\n%d sends during the outage: %d messages arrived"
              % (2 * len(USERS), total))
    finally:
        for c in clients.values():
            c.disconnect()


def signal_all(h, sig):
    for pid in [h.pid] + h.child_pids():
        util.signal_pid(pid, sig)


def errors_for(clients, t):
    asked = {to for _, to, _ in t.sent}
    return sum(1 for c in clients.values() for m in list(c.messages)
               if m["type"] == "error" and m["from"]
               and bare(m["from"]) in asked)


def test_frozen_host(host, whole, users):
    """A host that freezes (SIGSTOP of all its processes) keeps its
    connection, so ejabberd goes on giving it its share: those stanzas
    wait in its socket.  Resumed (SIGCONT), it answers them all; killed
    while frozen, they are lost without a bounce, and what is sent after
    the kill is answered by the other host.  The figures are printed
    (README, Scale-out); only the outcomes are asserted."""
    a = host("A", whole[0], whole[1])
    b = host("B", whole[1], whole[0])
    wait_serving(b, "B", whole, users, ON_NODE2)

    # frozen, then resumed: late, not lost
    signal_all(b, signal.SIGSTOP)
    try:
        frozen = Traffic(whole, "frozen")
        frozen.ask(users, ON_NODE2, per_user=4)
        others = Traffic(whole, "others")
        others.ask(users, ON_NODE1, per_user=2)
        others.wait_all(users, 30)
        time.sleep(5.0)
        during = frozen.answers(users)
    finally:
        signal_all(b, signal.SIGCONT)
    got = frozen.wait_all(users, 60)
    print("\nB frozen 5 s: %d questions from node-2 users, %d answered "
          "while frozen (%s), all %d once resumed (%s); node-1 users "
          "answered meanwhile: %s" % (
              len(frozen.sent), len(during), served_by(during), len(got),
              served_by(got), served_by(others.answers(users))))

    # frozen, then killed: what waited in its socket is lost
    wait_state(b, "connected")
    wait_serving(b, "B", whole, users, ON_NODE2)
    signal_all(b, signal.SIGSTOP)
    doomed = Traffic(whole, "doomed")
    doomed.ask(users, ON_NODE2, per_user=4)
    time.sleep(2.0)
    kill_all(b)
    # ejabberd drops a closed connection's route as soon as it has read
    # the close; a stanza routed in the same instant still goes to the
    # dead connection (SCALEOUT.md): "after the kill" means after that
    time.sleep(1.0)
    after = Traffic(whole, "after")
    after.ask(users, ON_NODE2, per_user=2)
    try:
        got_after = after.wait_all(users, 60)
    except TimeoutError:
        print("sent after the kill: answered %s, missing %s" % (
            served_by(after.answers(users)), after.missing(users)))
        raise
    assert set(got_after.values()) == {"A"}, got_after
    b.start()
    wait_state(b, "connected")
    try:
        doomed.wait_all(users, 15)
    except TimeoutError:
        pass
    print("B frozen 2 s then killed: %d questions, %d answered after all "
          "(%s), %d lost, %d error bounces seen by the senders; all %d "
          "sent after the kill answered by A" % (
              len(doomed.sent), len(doomed.answers(users)),
              served_by(doomed.answers(users)),
              len(doomed.missing(users)), errors_for(users, doomed),
              len(after.sent)))
    assert a.running


def test_idle_connection_gets_a_whitespace_keepalive(httpd_factory, whole):
    """An idle host writes a space to the server every 30 s (with
    TCP_USER_TIMEOUT, a dead path ends the connection instead of hiding
    for minutes); libstrophe's trace shows the write."""
    extra = HANDLERS
    h = httpd_factory(extra_conf=extra, log_level="info xmpp:trace2")
    h.write_config(app_conf=component_conf(h, whole[0],
                                           XMPPServer=addr(whole[0])),
                   extra_conf=extra, log_level="info xmpp:trace2")
    h.start()
    wait_state(h, "connected")
    since = h.log_size()
    h.wait_log(r"libstrophe \w+: SENT:  ?$", timeout=45, since=since)
    assert status(h)["XMPPApp1State"] == "connected"
