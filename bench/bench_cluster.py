# SPDX-License-Identifier: Apache-2.0
"""Test 11 of bench/run: scale-out on a two-node ejabberd cluster.

The same sends (HTTP API) and the same inbound messages (C clients into a
mod_lua handler that replies) with one httpd host and with two, all
XMPPComponent hosts of one domain on one ejabberd cluster
(t/harness/ejabberd.py EjabberdCluster, the listener of
conf/ejabberd-scaleout.yml), and ejabberd's own mod_http_api
send_message to the same receiving users in the same rounds: what a user
of ejabberd would call instead of mod_xmpp.

Two cores cannot show scaling: every part runs on the same two. What the
test gives is the CPU each part spends per message (each httpd, each
ejabberd node's beam.smp, the C clients, wrk), for deliveries to a user
on the node the stanza entered (local) and on the other node (cross),
and from those what N hosts on N machines would do (bench/README.md).

Loaded by bench.py (Bench.test_cluster) with that module as `m`: its
Proc, CpuMeter, CpuAccount, kv and the Bench's helpers are used as they
are; nothing here changes them.
"""

import os
import resource
import secrets
import signal
import statistics
import time

from harness import ejabberd as ejabberd_harness
from harness.httpd import Httpd

# receivers of the sends, one on each node; senders of inbound messages,
# SENDERS_PER_NODE on each node (one sender's messages are posted one
# after the other, so parallel work needs several senders)
RECEIVERS = {"alice": 0, "carol": 1, "bot": 0}   # bot: the echo bot
SENDERS_PER_NODE = 4
SENDERS = {"s%d" % i: i // SENDERS_PER_NODE
           for i in range(2 * SENDERS_PER_NODE)}
USERS = ("app",) + tuple(RECEIVERS) + tuple(SENDERS)
TOTAL_CONNS = 16      # wrk connections over all streams of a send run
TOTAL_WINDOW = 16     # inbound messages in flight over all senders
COUNTS = {"quick": dict(n_cl=1000, n_clin=1000),
          "full": dict(n_cl=4000, n_clin=4000)}
LOGIN_S = 30
RUN_BOUND_S = 180     # wrk's -d: only the bound, quotas end it earlier
FANOUTS = (1, 2, 4, 8, 16, 32)
IDLE_S = 5            # the idle measurement, once a round with 1 and 2 hosts


def children_cpu():
    """CPU seconds of our children that have been waited for."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


class Run:
    """What one send or receive run measured."""

    def __init__(self, label, n, got, rate, accepted=None, bad=0, busy=0.0,
                 cpu=None, client_cpu=0.0, wrk_cpu=None, errors=0,
                 p50=None):
        self.label, self.n, self.got, self.rate = label, n, got, rate
        self.p50 = p50                   # ms, the streams' median
        self.accepted, self.bad, self.busy = accepted, bad, busy
        self.cpu = dict(cpu or {})       # part -> CPU seconds
        self.cpu["C clients"] = client_cpu
        if wrk_cpu is not None:
            self.cpu["wrk"] = max(0.0, wrk_cpu)
        self.errors = errors

    def per1000(self, part):
        return self.cpu.get(part, 0.0) * 1000 / max(1, self.got)

    def clients(self):
        return self.total() - self.servers()

    def servers(self):
        return sum(self.per1000(p) for p in self.cpu
                   if p.startswith(("httpd", "ejabberd")))

    def ejabberd(self):
        return sum(self.per1000(p) for p in self.cpu
                   if p.startswith("ejabberd"))

    def httpd(self):
        return sum(self.per1000(p) for p in self.cpu
                   if p.startswith("httpd"))

    def total(self):
        return sum(self.per1000(p) for p in self.cpu)


class ClusterBench:
    def __init__(self, bench, m):
        self.b, self.m, self.r = bench, m, bench.report
        self.p = COUNTS["quick" if bench.args.quick else "full"]
        self.cores = os.cpu_count() or 1
        self.cluster = None
        self.hosts = {}

    # ---------------------------------------------------------- set-up

    def start_cluster(self):
        self.cluster = ejabberd_harness.EjabberdCluster(nodes=2, users=USERS)
        # The harness logs at info for the tests; at info mod_http_api
        # writes every call with its arguments (several lines), which
        # would be much of what the baseline does. Warning, as httpd and
        # Prosody run here. Same file, same owner.
        for node in self.cluster.nodes:
            with open(os.path.join(node.directory, "ejabberd.yml"),
                      "r+") as f:
                text = f.read()
                if "loglevel: info\n" not in text:
                    raise self.m.BenchError("no 'loglevel: info' in %s"
                                            % f.name)
                f.seek(0)
                f.write(text.replace("loglevel: info\n",
                                     "loglevel: warning\n"))
                f.truncate()
        try:
            self.cluster.start()
        except Exception:
            if self.cluster.stop() and not self.b.args.keep:
                self.cluster.cleanup()
            raise
        self.cluster.wait_cluster()

    def start_host(self, name, first, other):
        """An httpd whose app is the cluster's component (XMPPServer:
        node `first`, then `other`), with send_message and the mod_lua
        handler of tests 5 and 8."""
        cl, b = self.cluster, self.b
        conf = b.api_conf + b.inbound_conf("lua")
        h = Httpd(prosody=cl[first], mpm="event", log_level="warn",
                  module=b.module, extra_conf=conf)
        b.httpds.append(h)
        secret = h.write_file("component.secret",
                              cl.component_secret + "\n", 0o600)
        h.write_config(app_conf={
            "XMPPQueueLimit": self.m.QUEUE_LIMIT,
            "XMPPJID": None, "XMPPPasswordFile": None,
            "XMPPComponent": cl.component_domain,
            "XMPPComponentSecretFile": secret,
            "XMPPServer": "127.0.0.1:%d 127.0.0.1:%d" % (
                cl[first].component_port, cl[other].component_port)},
            extra_conf=conf)
        h.start()
        b.wait_connected(h, LOGIN_S)
        h.mx_name = name
        self.hosts[name] = h
        return h

    def stop_hosts(self):
        for name in list(self.hosts):
            self.b.stop_httpd(self.hosts.pop(name))

    def drain(self):
        """Until every host's queue is empty; a line if one is not."""
        for name, h in sorted(self.hosts.items()):
            if not self.b.wait_drained(h, 60):
                self.r.line("host %s: queue not empty 60 s after a run "
                            "(status Queued %s)" % (
                                name, h.status().get("XMPPApp1Queued")))

    def client(self, mode, user, *args):
        cl = self.cluster
        node = cl[RECEIVERS.get(user, SENDERS.get(user, 0))]
        argv = [os.path.join(self.b.bin, "raw_client"), mode,
                "--jid", cl.jid(user),
                "--resource", "%s-%s" % (mode, secrets.token_hex(3)),
                "--port", str(node.port), "--ca", cl.ca_file,
                "--login-timeout", str(LOGIN_S), *[str(a) for a in args]]
        return self.m.Proc(argv, env={"BENCH_PASS": cl.password(user)},
                           name="raw_client %s %s" % (mode, user))

    def groups(self):
        """Processes whose CPU is counted: each host, each node's VM."""
        g = {}
        for name, h in sorted(self.hosts.items()):
            g["httpd " + name] = (lambda h=h: ([h.pid] if h.pid else [])
                                  + h.child_pids())
        for i, node in enumerate(self.cluster.nodes):
            g["ejabberd %d" % (i + 1)] = (lambda node=node: [
                p for p in [node.beam_pid] if p])
        return g

    # ---------------------------------------------------------- sending

    def wrk_stream(self, stream, prefix, quota, conns):
        """One wrk (one thread) for a stream (kind, where, user): kind
        "mx" posts mod_xmpp's send_message to host `where`, "ej" posts
        ejabberd's /api/send_message to node `where` (from s0)."""
        kind, where, user = stream
        cl = self.cluster
        if kind == "mx":
            url = self.hosts[where].url("/")
            script, args = "wrk_send.lua", [
                "/xmpp-api/send_message", "%s%%40%s" % (user, cl.domain),
                prefix, quota, "/index.html"]
        else:
            url = "http://127.0.0.1:%d/" % cl[where].http_port
            script, args = "wrk_ejsend.lua", [
                "/api/send_message", cl.jid("s0"), cl.jid(user), prefix,
                quota, "/mx-bench-none"]
        argv = ["wrk", "-t1", "-c%d" % conns, "-d%ds" % RUN_BOUND_S,
                "--timeout", "10s", "-s", os.path.join(self.m.BENCH, script),
                url, "--"] + [str(a) for a in args]
        return self.m.Proc(argv, name="wrk %s %s %s" % stream)

    def send_run(self, label, streams, n):
        """The streams at once, n messages in all (equal shares), each
        receiver counting what reached it; messages delivered/s from the
        first POST to the last message at a receiver."""
        m = self.m
        tag = self.b.tag("cl")
        quota = n // len(streams)
        n = quota * len(streams)
        conns = max(1, TOTAL_CONNS // len(streams))
        want = {}
        for _, _, user in streams:
            want[user] = want.get(user, 0) + quota
        rcs = {u: self.client("recv", u, "--count", c, "--prefix", tag,
                              "--idle", 15, "--timeout", RUN_BOUND_S + 60)
               for u, c in want.items()}
        login_cpu = {u: float(self.m.kv(rc.wait_line("READY", LOGIN_S))
                              .get("cpu", 0)) for u, rc in rcs.items()}
        c0 = children_cpu()
        wrks = []
        with m.CpuMeter() as busy, m.CpuAccount(self.groups()) as acct:
            t0 = time.monotonic()
            wrks = [self.wrk_stream(s, "%s+w%d" % (tag, i), quota, conns)
                    for i, s in enumerate(streams)]
            results = []
            for w in wrks:
                line = w.wait_line(("QUOTA", "WRK "), RUN_BOUND_S + 30)
                if line.startswith("QUOTA"):
                    m.util.signal_pid(w.pid, signal.SIGINT)
                    line = w.wait_line("WRK ", 60)
                results.append({k: float(v) for k, v in m.kv(line).items()})
            dones = {u: m.kv(rc.wait_line("DONE", RUN_BOUND_S + 90))
                     for u, rc in rcs.items()}
            for p in wrks + list(rcs.values()):
                p.wait(30)
            # what the hosts still had to do (acknowledgements) is small;
            # wait until their queues are empty so that it is counted
            self.drain()
        got = sum(int(d["unique"]) for d in dones.values())
        last = max([float(d["last"]) for d in dones.values()
                    if int(d["unique"])] or [t0])
        client_all = sum(float(d.get("cpu", 0)) for d in dones.values())
        client_cpu = client_all - sum(login_cpu.values())
        wrk_cpu = children_cpu() - c0 - client_all
        ok = sum(x["ok"] for x in results)
        dur = max(x["duration"] for x in results) / 1e6
        return Run(label, n, got, got / max(1e-6, last - t0),
                   accepted=ok / max(1e-6, dur),
                   bad=sum(x["bad"] for x in results),
                   busy=busy.busy, cpu=acct.used, client_cpu=client_cpu,
                   wrk_cpu=wrk_cpu,
                   p50=statistics.median(x["p50"] for x in results) / 1000,
                   errors=sum(int(d["errors"]) for d in dones.values()))

    # -------------------------------------------------------- receiving

    def receive_run(self, label, n, to=None, extra=None):
        """Every sender at once (half on each node) sends n/senders
        messages to addresses of the component domain (or to `to`),
        TOTAL_WINDOW in flight over all; replies/s from the first send
        to the last reply. `extra`: more CPU groups (the echo bot)."""
        m = self.m
        tag = self.b.tag("ci")
        each = max(1, n // len(SENDERS))
        window = max(1, TOTAL_WINDOW // len(SENDERS))
        to = to or "bench@" + self.cluster.component_domain
        cls = [self.client("converse", u, "--to", to, "--count", each,
                           "--window", window, "--prefix", tag,
                           "--idle", 20, "--timeout", RUN_BOUND_S + LOGIN_S,
                           "--wait-go", 1)
               for u in SENDERS]
        # all logged in first, then all go at once (SIGUSR1): the logins
        # are not part of a message's cost
        login_cpu = sum(float(m.kv(c.wait_line("READY", LOGIN_S))
                              .get("cpu", 0)) for c in cls)
        groups = self.groups()
        groups.update(extra or {})
        with m.CpuMeter() as busy, m.CpuAccount(groups) as acct:
            for c in cls:
                m.util.signal_pid(c.pid, signal.SIGUSR1)
            dones = [{k: float(v) for k, v in
                      m.kv(c.wait_line("DONE", RUN_BOUND_S + LOGIN_S + 30))
                      .items()} for c in cls]
            for c in cls:
                c.wait(30)
            self.drain()
        got = int(sum(d["replies"] for d in dones))
        first = min(d["first"] for d in dones)
        last = max(d["last"] for d in dones)
        return Run(label, each * len(SENDERS), got,
                   got / max(1e-6, last - first), busy=busy.busy,
                   cpu=acct.used,
                   client_cpu=sum(d.get("cpu", 0) for d in dones)
                   - login_cpu,
                   errors=int(sum(d["errors"] for d in dones)))

    def idle(self, secs=IDLE_S):
        """CPU of each part while nothing is sent: what a host or a node
        costs without messages (it counts in every run's figures)."""
        self.drain()
        with self.m.CpuAccount(self.groups()) as acct:
            time.sleep(secs)
        self.r.line("idle %d s with %s: CPU ms per second: %s" % (
            secs, " and ".join("host " + n for n in sorted(self.hosts)),
            ", ".join("%s %.1f" % (p, t * 1000 / secs)
                      for p, t in sorted(acct.used.items()))))

    def echo_run(self, label, n):
        echo = self.client("echo", "bot", "--timeout", RUN_BOUND_S * 2)
        try:
            echo.wait_line("READY", LOGIN_S)
            jid = "%s/%s" % (self.cluster.jid("bot"),
                             echo.popen.args[echo.popen.args.index(
                                 "--resource") + 1])
            return self.receive_run(label, n, to=jid, extra={
                "echo bot": lambda: [echo.pid]})
        finally:
            echo.stop()

    # ---------------------------------------------------------- report

    def show(self, run):
        r = self.r
        parts = ", ".join("%s %.3f" % (p, run.per1000(p))
                          for p in sorted(run.cpu))
        r.line("%-44s %6.0f msg/s delivered (%d/%d%s%s), CPU busy %.0f%%"
               % (run.label, run.rate, run.got, run.n,
                  "; accepted %.0f req/s, p50 %.2f ms" % (run.accepted,
                                                           run.p50)
                  if run.accepted is not None else "",
                  ", %d bad answers" % run.bad if run.bad else "",
                  run.busy))
        if run.errors:
            r.line("   %d error stanzas at the clients" % run.errors)
        r.line("   CPU s per 1000: %s; servers %.3f, all %.3f -> bound on "
               "%d cores: %.0f msg/s (%.0f for the servers alone)"
               % (parts, run.servers(), run.total(), self.cores,
                  self.cores * 1000 / max(1e-6, run.total()),
                  self.cores * 1000 / max(1e-6, run.servers())))

    def median_run(self, runs):
        """A Run of medians (rate, CPU of each part per message)."""
        first = runs[0]
        med = Run(first.label, first.n, first.n,
                  statistics.median(x.rate for x in runs),
                  accepted=(statistics.median(x.accepted for x in runs)
                            if first.accepted is not None else None),
                  busy=statistics.median(x.busy for x in runs))
        med.cpu = {p: statistics.median(x.per1000(p) for x in runs)
                   * first.n / 1000 for p in first.cpu}
        med.got = first.n
        return med

    def predict(self, title, local_runs, cross_runs, hosts=True):
        """Per machine (one host + one node, clients elsewhere) at N
        machines, users spread evenly: (N-1)/N of the deliveries cross
        to another node. From the medians of the local and the cross
        runs; a cross cost below the local one is noise, taken as 0."""
        r = self.r
        local = statistics.median(x.ejabberd() for x in local_runs)
        cross = statistics.median(x.ejabberd() for x in cross_runs)
        # ejabberd's own API has no httpd in its path (the idle hosts'
        # CPU in those runs is the bench's status polls)
        host = statistics.median([x.httpd() for x in local_runs
                                  + cross_runs]) if hosts else 0.0
        extra = cross - local
        r.line("%s: ejabberd CPU s per 1000, local %.3f (rounds: %s), "
               "cross %.3f (%s): %+.3f a crossing message%s; httpd %.3f"
               % (title, local, "/".join("%.3f" % x.ejabberd()
                                         for x in local_runs),
                  cross, "/".join("%.3f" % x.ejabberd() for x in cross_runs),
                  extra, " (noise: taken as 0)" if extra < 0 else "", host))
        extra = max(0.0, extra)
        cells = []
        for n in FANOUTS:
            per = host + local + extra * (n - 1) / n
            rate = self.cores * 1000 / max(1e-6, per)
            cells.append("N=%d %.0f/s x %d = %.0f" % (n, rate, n, rate * n))
        r.line("   per machine of %d cores, (N-1)/N crossing: %s"
               % (self.cores, "; ".join(cells)))

    # ------------------------------------------------------------ test

    def run(self):
        r, b = self.r, self.b
        n, n_in = self.p["n_cl"], self.p["n_clin"]
        repeat = b.p["repeat"]
        r.section("11. Scale-out: one and two component hosts on a two-node "
                  "ejabberd cluster, beside ejabberd's own send_message "
                  "(%d messages a send run, %d a receive run)" % (n, n_in))
        t0 = time.monotonic()
        self.start_cluster()
        r.line("cluster of 2 ejabberd %s nodes up in %.0f s (private epmd, "
               "conf/ejabberd-scaleout.yml, mod_http_api on each, "
               "loglevel warning, c2s STARTTLS)"
               % (self.version(), time.monotonic() - t0))
        r.line("users: receivers alice on node 1, carol on node 2; senders "
               "s0-s%d, %d on each node; host A connects to node 1 first, "
               "host B to node 2 first"
               % (len(SENDERS) - 1, SENDERS_PER_NODE))
        r.line("send: wrk -t1 per stream, %d connections over all streams, "
               "unique bodies; each stream sends its share to one receiver "
               "(bench/raw_client recv counts them)" % TOTAL_CONNS)
        r.line("receive: raw_client converse from every sender at once, "
               "%d in flight over all, to bench@%s; reply.lua answers"
               % (TOTAL_WINDOW, self.cluster.component_domain))
        sends = [
            # label, streams (kind, host or node, receiver)
            ("mx 1 host (A), users on both nodes",
             [("mx", "A", "alice"), ("mx", "A", "carol")]),
            ("mx 2 hosts, each to users on both nodes",
             [("mx", "A", "alice"), ("mx", "A", "carol"),
              ("mx", "B", "alice"), ("mx", "B", "carol")]),
            ("mx 2 hosts, each to its node's user (local)",
             [("mx", "A", "alice"), ("mx", "B", "carol")]),
            ("mx 2 hosts, each to the other node's (cross)",
             [("mx", "A", "carol"), ("mx", "B", "alice")]),
            ("ejabberd API node 1, users on both nodes",
             [("ej", 0, "alice"), ("ej", 0, "carol")]),
            ("ejabberd API both nodes, users on both",
             [("ej", 0, "alice"), ("ej", 0, "carol"),
              ("ej", 1, "alice"), ("ej", 1, "carol")]),
            ("ejabberd API both nodes, local users",
             [("ej", 0, "alice"), ("ej", 1, "carol")]),
            ("ejabberd API both nodes, cross",
             [("ej", 0, "carol"), ("ej", 1, "alice")]),
        ]
        res = {label: [] for label, _ in sends}
        echo_label = "XMPP alone: C echo bot on node 1"
        rec = {"mx receive, 1 host (A)": [], echo_label: [],
               "mx receive, 2 hosts": []}
        try:
            self.start_host("A", 0, 1)
            # warm-up: logins, the first requests, the Lua handler
            self.send_run("warm-up", [("mx", "A", "alice"),
                                      ("ej", 0, "carol")], 200)
            self.receive_run("warm-up", 80)
            for i in range(repeat):
                r.line("")
                r.line("round %d of %d" % (i + 1, repeat))
                for one_host in (True, False):
                    if one_host and "B" in self.hosts:
                        self.b.stop_httpd(self.hosts.pop("B"))
                    if not one_host and "B" not in self.hosts:
                        self.start_host("B", 1, 0)
                        self.receive_run("warm-up", 40)
                    self.idle()
                    label = ("mx receive, 1 host (A)" if one_host
                             else "mx receive, 2 hosts")
                    run = self.receive_run(label, n_in)
                    rec[label].append(run)
                    self.show(run)
                    if one_host:
                        # the same senders to a bot logged in to node 1
                        # as a user, answering at once: what XMPP alone
                        # costs where host A sits
                        run = self.echo_run(echo_label, n_in)
                        rec[echo_label].append(run)
                        self.show(run)
                    for label, streams in sends:
                        # with host A alone: the runs of A alone; with
                        # both: those of B and ejabberd's own
                        hosts = {w for k, w, _ in streams if k == "mx"}
                        if one_host != (hosts == {"A"}):
                            continue
                        run = self.send_run(label, streams, n)
                        res[label].append(run)
                        self.show(run)
        finally:
            self.stop_hosts()
            clean = self.cluster.stop()
            if clean and not b.args.keep:
                self.cluster.cleanup()
            elif not clean:
                r.line("ejabberd had to be killed; kept %s"
                       % self.cluster.directory)
        self.summary(res, rec, repeat)

    def version(self):
        try:
            return self.m.run(["dpkg-query", "-W", "-f=${Version}",
                               "ejabberd"], 30)
        except Exception:
            return "?"

    def summary(self, res, rec, repeat):
        r = self.r
        med = {k: self.median_run(v) for k, v in list(res.items())
               + list(rec.items()) if v}
        r.line("")
        r.line("medians of %d round(s), CPU s per 1000 messages:" % repeat)
        r.line("%-44s %8s %8s %8s %8s %8s %8s" % (
            "", "msg/s", "httpd", "ejabberd", "clients", "all", "bound"))
        for label, x in med.items():
            r.line("%-44s %8.0f %8.3f %8.3f %8.3f %8.3f %8.0f" % (
                label, x.rate, x.httpd(), x.ejabberd(),
                x.clients(), x.total(),
                self.cores * 1000 / max(1e-6, x.total())))
        r.line("(bound: %d cores / all CPU per message, the rate these "
               "cores allow; clients = raw_client + wrk, and the echo bot)"
               % self.cores)
        one = med.get("mx 1 host (A), users on both nodes")
        two = med.get("mx 2 hosts, each to users on both nodes")
        ej1 = med.get("ejabberd API node 1, users on both nodes")
        ej2 = med.get("ejabberd API both nodes, users on both")
        if one and ej1:
            r.row("send, 1 host: messages/s delivered", one.rate, ej1.rate,
                  "ejabberd API, 1 node", "msg/s")
        if two and ej2:
            r.row("send, 2 hosts: messages/s delivered", two.rate, ej2.rate,
                  "ejabberd API, 2 nodes", "msg/s")
        if one and two:
            r.row("send, 2 hosts vs 1 (same 2 cores)", two.rate, one.rate,
                  "1 host", "msg/s")
        r1, r2 = med.get("mx receive, 1 host (A)"), med.get(
            "mx receive, 2 hosts")
        if r1 and r2:
            r.row("receive, 2 hosts vs 1 (same 2 cores)", r2.rate, r1.rate,
                  "1 host", "msg/s")
        loc = res.get("mx 2 hosts, each to its node's user (local)")
        cro = res.get("mx 2 hosts, each to the other node's (cross)")
        eloc = res.get("ejabberd API both nodes, local users")
        ecro = res.get("ejabberd API both nodes, cross")
        r.line("")
        r.line("prediction for N hosts on N machines (each: one httpd host "
               "+ one ejabberd node, %d cores; clients elsewhere; from the "
               "CPU per message above, not measured at N):" % self.cores)
        if loc and cro:
            self.predict("send, mod_xmpp", loc, cro)
        if eloc and ecro:
            self.predict("send, ejabberd API", eloc, ecro, hosts=False)
        if r1 and r2:
            r.line("receive: with a host on every node ejabberd routes each "
                   "inbound message to its own node's host (2 hosts: all "
                   "local): ejabberd %.3f + httpd %.3f CPU s per 1000 per "
                   "machine at any N -> %.0f msg/s a machine; a node "
                   "without a host (1 host: half crossed) costs ejabberd "
                   "%.3f" % (r2.ejabberd(), r2.httpd(),
                             self.cores * 1000 / max(1e-6, r2.servers()),
                             r1.ejabberd()))

