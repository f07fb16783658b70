# SPDX-License-Identifier: Apache-2.0
"""mod_xmpp benchmarks (run through bench/run).

Starts a private Prosody and private httpds on loopback (the test
harness's classes), builds the C helpers of bench/ with gcc, and prints
figures of mod_xmpp next to a baseline measured in the same run, with the
ratio and the goal. Nothing here asserts a time: the figures are printed.

Sending:   1 messages/s HTTP API -> receiver, vs a raw libstrophe sender
           2 wall time of one xmpp-send, vs /bin/true (hyperfine)
           3 xmpp-api requests/s vs a static file (wrk)
           4 holder memory with a large queue while Prosody is down; drain
Receiving: 5 inbound messages/s into a mod_lua handler that replies, vs wrk
           posting the same body to the same handler
           6 the same with a C CGI
           7 round trip of single messages vs the handler's own time
           9 holder memory over many inbound messages (--n-inmem, e.g.
             1000000; only with --only 9): VmRSS every 100k
Component: 8 tests 1 and 5 through a component connection (XEP-0114), in
           the same rounds as through the client connection and beside
           the raw sender; Prosody's CPU per message in each mode
Scale-out: 11 sends and inbound messages with one and two component
           hosts on a two-node ejabberd cluster, beside ejabberd's own
           mod_http_api send_message; CPU per message of each part and
           what it predicts for N hosts (bench/bench_cluster.py)
"""

import argparse
import datetime
import json
import os
import platform
import queue
import secrets
import signal
import shutil
import statistics
import subprocess
import sys
import threading
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(BENCH)
sys.path.insert(0, os.path.join(TOP, "t"))

from harness import util  # noqa: E402
from harness.httpd import Httpd, module_path  # noqa: E402
from harness.prosody import ProsodyServer  # noqa: E402

PROFILES = {
    # n_send: messages of test 1; api_secs: wrk duration of test 3;
    # hf_*: hyperfine; n_mem: items queued in test 4; n_in: inbound
    # messages of tests 5/6; n_lat: single messages of test 7
    # n_inmem: inbound messages of test 9; n_burst: the burst of test 10
    "quick": dict(n_send=500, api_secs=3, hf_warmup=5, hf_runs=40,
                  n_mem=10000, n_in=300, n_lat=60, lat_secs=3, repeat=1,
                  n_inmem=20000, n_burst=200, n_burst_many=400),
    "full": dict(n_send=2000, api_secs=10, hf_warmup=20, hf_runs=200,
                 n_mem=100000, n_in=2000, lat_secs=5, n_lat=300, repeat=2,
                 n_inmem=200000, n_burst=2000, n_burst_many=10000),
}

WRK_THREADS = 2
WRK_CONNS = 16       # tests 3, 5, 6 (and the window of the XMPP client)
SEND_CONNS = 8       # test 1: "a few concurrent HTTP clients"
WRK_CONNS_HIGH = 64  # tests 3, 5, 6 again: enough in flight to fill the cores
QUEUE_LIMIT = 1000000  # XMPPQueueLimit of the bench's app
APP_JID = "app@localhost"
# the several-sender mode of tests 5, 6 and 10: as many raw_client
# senders in parallel, each with its own window
SENDERS = ("s1", "s2", "s3", "s4")
ECHO_JID = "carol@localhost/echo"
COMPONENT_TO = "bench@component.localhost"  # an address of test 8's app

# Every wait below has a bound; these are the longest.
LOGIN_S = 20
FILL_BOUND_S = 400   # queueing the items of test 4
RECONNECT_BOUND_S = 90  # backoff after a long outage is at most 60 s
DRAIN_BOUND_S = 300


def say(text=""):
    print(text, flush=True)


class BenchError(RuntimeError):
    pass


# ------------------------------------------------------------- processes

class Proc:
    """A helper process we started; its stdout lines are read on a thread.
    Stopped by its PID (SIGTERM, then SIGKILL) and nothing else."""

    started = []

    def __init__(self, argv, env=None, name=None):
        self.name = name or os.path.basename(argv[0])
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.popen = subprocess.Popen(argv, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, text=True,
                                      env=full_env, start_new_session=True)
        self.pid = self.popen.pid
        self.lines = queue.Queue()
        self.output = []
        Proc.started.append(self)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.popen.stdout:
            self.output.append(line)
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_line(self, prefix, timeout):
        """The next line starting with `prefix` (a string or a tuple of
        them; bounded); raises on an ERROR line, on exit, or when time runs
        out. Lines before it are skipped."""
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise BenchError("%s: no %r line within %.0fs"
                                 % (self.name, prefix, timeout))
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                self.lines.put(None)  # later calls see the end too
                raise BenchError("%s exited before %r:\n%s"
                                 % (self.name, prefix, "".join(self.output[-20:])))
            if line.startswith(prefix):
                return line
            if line.startswith("ERROR"):
                raise BenchError("%s: %s" % (self.name, line))

    def wait(self, timeout):
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            return None

    def stop(self):
        if self.popen.poll() is None:
            util.stop_pid(self.pid, self.popen, 5.0)

    @classmethod
    def stop_all(cls):
        for p in cls.started:
            p.stop()


def kv(line):
    """{"key": "value"} of a "WORD key=value ..." line."""
    return dict(part.split("=", 1) for part in line.split()[1:] if "=" in part)


def run(argv, timeout, **kw):
    """Run a command to completion (bounded); its stdout."""
    res = subprocess.run(argv, capture_output=True, text=True,
                         timeout=timeout, stdin=subprocess.DEVNULL, **kw)
    if res.returncode != 0:
        raise BenchError("%s failed (%d):\n%s%s" % (
            " ".join(argv[:3]), res.returncode, res.stdout[-2000:],
            res.stderr[-2000:]))
    return res.stdout


def pct(values, p):
    """The p-th percentile (nearest rank) of a list of numbers."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


class CpuMeter:
    """Share of the whole machine's CPU time that was busy between
    start() and stop() (from /proc/stat): tells how loaded the box was."""

    @staticmethod
    def _read():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        idle = v[3] + v[4]
        return sum(v), idle

    def __enter__(self):
        self.t0, self.i0 = self._read()
        return self

    def __exit__(self, *exc):
        t1, i1 = self._read()
        total = max(1, t1 - self.t0)
        self.busy = 100.0 * (total - (i1 - self.i0)) / total


def cpu_seconds(pids):
    """User + system CPU seconds used so far by each of `pids` (all its
    threads), from /proc; {pid: seconds}, gone processes left out."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            out[pid] = (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            pass
    return out


class CpuAccount:
    """CPU seconds used between start and stop by groups of processes,
    e.g. {"httpd": [pids], "Prosody": [pid]}; pids is called again at the
    end, so children started meanwhile count from zero."""

    def __init__(self, groups):
        self.groups = groups  # name -> function returning pids

    def __enter__(self):
        self.before = {n: cpu_seconds(f()) for n, f in self.groups.items()}
        return self

    def __exit__(self, *exc):
        self.used = {}
        for name, f in self.groups.items():
            after = cpu_seconds(set(f()) | set(self.before[name]))
            self.used[name] = sum(t - self.before[name].get(p, 0.0)
                                  for p, t in after.items())

    def per(self, n, unit=1000):
        """"httpd 1.23 s, ..." per `unit` of `n` things done."""
        return ", ".join("%s %.2f s" % (name, used * unit / max(1, n))
                         for name, used in self.used.items())


def proc_mem(pid):
    """(VmRSS, VmHWM) in kB of a process, from /proc."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = int(line.split()[1])
    return out.get("VmRSS", 0), out.get("VmHWM", 0)


def rss_parts(pid):
    """What VmRSS is made of (anonymous, file, shared memory), for test 9:
    a leak grows the anonymous part."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(("RssAnon:", "RssFile:", "RssShmem:")):
                out[line.split(":")[0][3:]] = int(line.split()[1]) / 1024
    return ", ".join("%s %.1f MiB" % kv for kv in sorted(out.items()))


# ------------------------------------------------------------------ report

class Report:
    def __init__(self):
        self.rows = []

    def section(self, title):
        self.rows.append(("section", title))
        say("\n== %s" % title)

    def row(self, label, value, base=None, base_label="", unit="",
            goal=None, higher_is_better=True, note=""):
        """One figure; with `base`, the ratio value/base and the goal."""
        ratio = value / base if base else None
        verdict = ""
        if goal is not None and ratio is not None:
            ok = ratio >= goal if higher_is_better else ratio <= goal
            verdict = "%s goal %s%.2gx" % ("meets" if ok else "MISSES",
                                           ">=" if higher_is_better else "<=",
                                           goal)
        self.rows.append(("row", label, value, base, base_label, unit, ratio,
                          verdict, note))
        say(self._fmt(self.rows[-1]))

    def line(self, text):
        self.rows.append(("line", text))
        say("   " + text)

    @staticmethod
    def _num(v):
        if v is None:
            return "-"
        if abs(v) >= 100:
            return "%.0f" % v
        if abs(v) >= 10:
            return "%.1f" % v
        return "%.2f" % v

    def _fmt(self, r):
        _, label, value, base, base_label, unit, ratio, verdict, note = r
        s = "   %-44s %10s %-7s" % (label, self._num(value), unit)
        if base is not None:
            s += " | %-22s %10s | %5.2fx" % (base_label, self._num(base), ratio)
        if verdict:
            s += "  " + verdict
        if note:
            s += "  (%s)" % note
        return s

    def text(self):
        out = []
        for r in self.rows:
            if r[0] == "section":
                out.append("")
                out.append("== " + r[1])
            elif r[0] == "line":
                out.append("   " + r[1])
            else:
                out.append(self._fmt(r))
        return "\n".join(out)


# ------------------------------------------------------------- the bench

class Bench:
    api_conf = ('<Location "/xmpp-api/">\n    SetHandler xmpp-api\n'
                '    Require local\n</Location>\n')

    def __init__(self, args):
        self.args = args
        self.p = dict(PROFILES["quick" if args.quick else "full"])
        for key in ("repeat", "n_send", "n_mem", "n_in", "n_inmem",
                    "n_burst", "n_burst_many"):
            if getattr(args, key, None):
                self.p[key] = getattr(args, key)
        self.report = Report()
        self.work = util.make_tempdir("mx-bench-")
        self.bin = os.path.join(self.work, "bin")
        os.mkdir(self.bin, 0o755)
        self.prosody = None
        self.httpds = []
        self.tag_n = 0
        self.raw_rate = None

    # ---------------------------------------------------------- set-up

    def build(self):
        """The C helpers, and a private copy of the module and xmpp-send
        (others may rebuild the tree while we run)."""
        so, xs = module_path(), os.path.join(TOP, "xmpp-send")
        if not (os.path.exists(so) and os.path.exists(xs)) or self.args.build:
            say("building mod_xmpp (make) ...")
            run(["make", "-C", TOP], 600)
        flags = run(["pkg-config", "--cflags", "--libs", "libstrophe"], 30).split()
        for prog in ("raw_sender", "raw_client", "reply_cgi"):
            run(["gcc", "-O2", "-Wall", "-Wextra", "-D_GNU_SOURCE", "-o",
                 os.path.join(self.bin, prog), os.path.join(BENCH, prog + ".c")]
                + (flags if prog != "reply_cgi" else []), 120)
        # diagnostics only, preloaded into an httpd of their own
        self.shims = {}
        for shim in ("nofsync_shim",):
            self.shims[shim] = os.path.join(self.bin, shim + ".so")
            run(["gcc", "-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-o",
                 self.shims[shim], os.path.join(BENCH, shim + ".c")], 120)
        self.module = os.path.join(self.work, "mod_xmpp.so")
        self.xmpp_send = os.path.join(self.bin, "xmpp-send")
        shutil.copy2(so, self.module)
        shutil.copy2(xs, self.xmpp_send)
        self.module_mtime = os.path.getmtime(so)

    def start_prosody(self):
        self.prosody = ProsodyServer(users=("app", "alice", "bob", "carol")
                                     + SENDERS)
        # The harness logs every stanza (debug level) for the tests; that
        # would be most of what Prosody does here. Same file, same owner.
        with open(self.prosody.config_file, "r+") as f:
            text = f.read().replace('levels = { min = "debug" }',
                                    'levels = { min = "warn" }')
            f.seek(0)
            f.write(text)
            f.truncate()
        self.prosody.start()

    def start_httpd(self, extra_conf, preload=None, offline=False,
                    component=False):
        """A private httpd with the app; `preload`: a library for
        LD_PRELOAD (a diagnostic shim), in its environment only; such an
        httpd logs in with a resource of its own, so that it never takes
        the session of another one still running. `offline`: its app's
        XMPPServer is a loopback port where nothing listens, so it only
        queues (started once its queue's socket is there)."""
        app = {"XMPPQueueLimit": QUEUE_LIMIT,
               "XMPPResource": "diag" if preload else None}
        if offline:
            app["XMPPServer"] = "127.0.0.1:%d" % util.free_port()
        h = Httpd(prosody=self.prosody, mpm="event", log_level="warn",
                  module=self.module, app_conf=app, extra_conf=extra_conf)
        self.httpds.append(h)
        if component:  # the Prosody's Component instead of app@localhost
            secret = h.write_file("component.secret",
                                  self.prosody.component_secret + "\n", 0o600)
            app.update({"XMPPJID": None, "XMPPPasswordFile": None,
                        "XMPPComponent": self.prosody.component_domain,
                        "XMPPComponentSecretFile": secret,
                        "XMPPServer": "127.0.0.1:%d"
                        % self.prosody.component_port})
            h.write_config(app_conf=app, extra_conf=extra_conf)
        saved = os.environ.get("LD_PRELOAD")
        if preload:
            os.environ["LD_PRELOAD"] = preload
        try:
            h.start()
        finally:
            if saved is None:
                os.environ.pop("LD_PRELOAD", None)
            else:
                os.environ["LD_PRELOAD"] = saved
        if offline:
            util.wait_for(lambda: any(
                os.path.exists(os.path.join(h.spool_dir, d, "queue.sock"))
                for d in os.listdir(h.spool_dir)), LOGIN_S, 0.1,
                "the queue's socket")
        else:
            self.wait_connected(h, LOGIN_S)
        return h

    def stop_httpd(self, h, expected=()):
        """Stop it; report mod_xmpp error lines other than those whose
        tags are `expected` (e.g. failed logins while Prosody is down)."""
        h.stop()
        bad = [l for l in h.error_log().splitlines()
               if ("[xmpp:error]" in l or "[xmpp:crit]" in l
                   or "[xmpp:warn]" in l)
               and not any(tag in l for tag in expected)]
        if bad:
            self.report.line("error log of this httpd had %d unexpected "
                             "mod_xmpp line(s), e.g.: %s"
                             % (len(bad), bad[-1][-200:]))
        if not self.args.keep:
            h.cleanup()

    @staticmethod
    def wait_connected(h, timeout):
        def ok():
            return h.status().get("XMPPApp1State") == "connected"
        util.wait_for(ok, timeout, 0.1, "the app to connect")

    def tag(self, what):
        self.tag_n += 1
        return "%s%d%s" % (what, self.tag_n, secrets.token_hex(3))

    def client(self, mode, user, *args, resource=None):
        argv = [os.path.join(self.bin, "raw_client"), mode,
                "--jid", self.prosody.jid(user),
                "--resource", resource or "%s-%s" % (mode, secrets.token_hex(3)),
                "--port", str(self.prosody.port), "--ca", self.prosody.ca_file,
                *[str(a) for a in args]]
        return Proc(argv, env={"BENCH_PASS": self.prosody.password(user)},
                    name="raw_client %s" % mode)

    def wrk(self, url, script, script_args, conns, threads, secs,
            quota=False):
        """Run wrk; its summary line as numbers, plus "rate" (answers that
        were right, per second). With `quota` (wrk_send.lua with a QUOTA),
        wrk gets SIGINT once every thread has done its share, so that it
        ends then and not at its -d, which is only the bound."""
        argv = ["wrk", "-t%d" % threads, "-c%d" % conns, "-d%ds" % secs,
                "--timeout", "10s", "-s", os.path.join(BENCH, script),
                url, "--"] + [str(a) for a in script_args]
        p = Proc(argv, name="wrk")
        try:
            if quota:
                seen = 0
                while seen < threads:
                    line = p.wait_line(("QUOTA", "WRK "), secs + 30)
                    if line.startswith("WRK "):
                        break
                    seen += 1
                else:
                    util.signal_pid(p.pid, signal.SIGINT)
                    line = p.wait_line("WRK ", 60)
            else:
                line = p.wait_line("WRK ", secs + 60)
        finally:
            p.wait(30)
        r = {k: float(v) for k, v in kv(line).items()}
        r["rate"] = r["ok"] / (r["duration"] / 1e6)
        return r

    def wait_drained(self, h, timeout=120):
        """Until the app's queue is empty (the status, and nothing left in new/)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            st = h.status()
            if st.get("XMPPApp1Queued") == "0" and \
                    not os.listdir(os.path.join(self.queue_dir(h), "new")):
                return True
            time.sleep(0.2)
        return False

    @staticmethod
    def queue_dir(h):
        for name in os.listdir(h.spool_dir):
            path = os.path.join(h.spool_dir, name)
            if os.path.exists(os.path.join(path, "holder.lock")):
                return path
        raise BenchError("no app directory in %s" % h.spool_dir)

    # ----------------------------------------------------------- conditions

    def conditions(self):
        r = self.report
        r.section("Machine and conditions")
        cpu = "?"
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            mem = int(f.readline().split()[1]) // 1024
        with open("/proc/loadavg") as f:
            load = " ".join(f.read().split()[:3])
        head = run(["git", "-C", TOP, "log", "-1", "--format=%h %cd",
                    "--date=format:%Y-%m-%d %H:%M"], 30).strip()
        dirty = run(["git", "-C", TOP, "status", "--porcelain", "--",
                     "mod_xmpp", "tools", "configure.ac", "Makefile.am"],
                    30).strip()
        fstype, opts = (run(["findmnt", "-n", "-o", "FSTYPE,OPTIONS",
                             "--target", self.work], 30).split() + ["", ""])[:2]
        fs = fstype + (" (mounted with discard: every unlink waits for a "
                       "discard)" if "discard" in opts.split(",") else "")
        versions = [
            run(["/usr/sbin/apache2", "-v"], 30).splitlines()[0].split(": ")[-1],
            "prosody " + run(["dpkg-query", "-W", "-f=${Version}", "prosody"], 30),
            "libstrophe " + run(["pkg-config", "--modversion", "libstrophe"],
                                30).strip(),
            run(["wrk", "--version"], 30, stderr=None).split("[")[0].strip()
            if False else "wrk " + run(["dpkg-query", "-W", "-f=${Version}",
                                        "wrk"], 30),
            run(["hyperfine", "--version"], 30).strip(),
        ]
        self.start_load = load
        r.line("date        %s" % datetime.datetime.now().strftime(
            "%Y-%m-%d %H:%M %Z").strip())
        r.line("machine     %d cores (nproc), %s, %d MiB RAM, %s %s"
               % (os.cpu_count(), cpu, mem, platform.system(), platform.release()))
        r.line("load        %s (1/5/15 min) at start; other people's test "
               "suites may share the cores" % load)
        r.line("mod_xmpp    commit %s%s, module built %s" % (
            head, " + uncommitted changes" if dirty else "",
            datetime.datetime.fromtimestamp(self.module_mtime)
            .strftime("%Y-%m-%d %H:%M")))
        r.line("software    %s" % "; ".join(versions))
        r.line("set-up      all on 127.0.0.1; httpd event MPM (defaults), "
               "LogLevel warn, access log on; Prosody with TLS (c2s "
               "STARTTLS), log level warn, no `limits` module; spool on %s"
               % fs)
        r.line("profile     %s: %s" % ("quick" if self.args.quick else "full",
                                       ", ".join("%s=%s" % kv_
                                                 for kv_ in sorted(self.p.items()))))

    # ---------------------------------------------------------- sending

    def receiver(self, tag, count, idle=10, timeout=300):
        rc = self.client("recv", "alice", "--count", count, "--prefix", tag,
                         "--idle", idle, "--timeout", timeout)
        rc.wait_line("READY", LOGIN_S)
        return rc

    def raw_sender(self, tag, n):
        """bench/raw_sender: bob sends n messages to alice, no acks."""
        return Proc([os.path.join(self.bin, "raw_sender"),
                     "--jid", self.prosody.jid("bob"), "--port",
                     str(self.prosody.port), "--ca", self.prosody.ca_file,
                     "--to", "alice@localhost", "--count", str(n),
                     "--prefix", tag],
                    env={"BENCH_PASS": self.prosody.password("bob")})

    def raw_send_rate(self, n):
        tag = self.tag("raw")
        rc = self.receiver(tag, n)
        snd = self.raw_sender(tag, n)
        t0 = float(snd.wait_line("START", LOGIN_S).split()[1])
        done = kv(rc.wait_line("DONE", 300))
        snd.wait(30)
        got, last = int(done["unique"]), float(done["last"])
        return got / (last - t0), got

    def api_send_rate(self, h, n):
        tag = self.tag("api")
        rc = self.receiver(tag, n, idle=15)
        per_thread = n // WRK_THREADS
        n = per_thread * WRK_THREADS
        t0 = time.monotonic()
        w = self.wrk(h.url("/"), "wrk_send.lua",
                     ["/xmpp-api/send_message", "alice%40localhost", tag,
                      per_thread, "/index.html"],
                     SEND_CONNS, WRK_THREADS, 120, quota=True)
        done = kv(rc.wait_line("DONE", 300))
        got, last = int(done["unique"]), float(done["last"])
        return got / (last - t0), got, w, n

    def test_send_rate(self, h):
        r = self.report
        n = self.p["n_send"]
        r.section("1. Sending: messages/s from the HTTP API into a receiving "
                  "client (%d messages)" % n)
        r.line("mod_xmpp: wrk -t%d -c%d POSTs /xmpp-api/send_message "
               "(unique bodies), first POST -> last message at the receiver"
               % (WRK_THREADS, SEND_CONNS))
        r.line("baseline: bench/raw_sender (libstrophe, TLS, no acks) to the "
               "same receiver (bench/raw_client recv, C)")
        raws, mxs, statics = [], [], []
        for i in range(self.p["repeat"]):
            with CpuMeter() as cpu_b:
                raw, got_b = self.raw_send_rate(n)
            self.wait_drained(h, 30)
            with CpuMeter() as cpu_m:
                mx, got_m, w, n_m = self.api_send_rate(h, n)
            self.wait_drained(h, 60)
            # what HTTP alone allows: the same wrk getting a static file
            # (one message per request can go no faster than that)
            st = self.wrk(h.url("/index.html"), "wrk_req.lua",
                          ["GET", "/index.html", "ok"], SEND_CONNS,
                          WRK_THREADS, self.p["api_secs"])
            raws.append(raw)
            mxs.append(mx)
            statics.append(st["rate"])
            r.line("run %d: raw %.0f msg/s (%d/%d received, CPU busy %.0f%%); "
                   "mod_xmpp %.0f msg/s (%d/%d received, HTTP answered "
                   "%.0f req/s, %d not NO_ERROR, CPU busy %.0f%%); the same "
                   "wrk on a static file %.0f req/s"
                   % (i + 1, raw, got_b, n, cpu_b.busy, mx, got_m, n_m,
                      w["rate"], w["bad"], cpu_m.busy, st["rate"]))
        self.raw_rate = statistics.median(raws)
        r.row("messages/s delivered (median of %d)" % len(mxs),
              statistics.median(mxs), self.raw_rate, "raw libstrophe sender",
              "msg/s", goal=0.8)
        r.row("bound: the same wrk on a static file (median)",
              statistics.median(statics), self.raw_rate,
              "raw libstrophe sender", "req/s")
        r.line("(no HTTP API that takes one message per request can pass "
               "the static file here; the goal asks for more than that)"
               if statistics.median(statics) < 0.8 * self.raw_rate else
               "(the static file is above the goal here)")

    def test_slixmpp_receiver(self):
        """Whether slixmpp could be the receiver: raw sender -> slixmpp."""
        from harness.xmpp import XmppClient
        r = self.report
        n = min(self.p["n_send"], 1000)
        tag = self.tag("slx")
        cl = XmppClient("alice@localhost", self.prosody.password("alice"),
                        self.prosody.port, self.prosody.ca_file)
        try:
            snd = self.raw_sender(tag, n)
            t0 = float(snd.wait_line("START", LOGIN_S).split()[1])
            try:
                msgs = cl.wait_messages(n, timeout=120, predicate=lambda m: (
                    m["body"] or "").startswith(tag + " "))
                last = max(m["time"] for m in msgs)
                rate = n / (last - t0)
            except TimeoutError:
                rate = None
            snd.wait(30)
        finally:
            cl.disconnect()
        if rate:
            ratio = rate / self.raw_rate
            r.line("receiver check: slixmpp (the tests' XmppClient) counted "
                   "the raw sender's %d messages at %.0f msg/s, %.2fx the C "
                   "receiver's rate: %s" % (
                       n, rate, ratio,
                       "at these rates the receiver is not the limit"
                       if ratio >= 0.9 else
                       "slixmpp would be the limit; the C receiver is not"))
        else:
            r.line("receiver check: slixmpp did not count the raw sender's "
                   "%d messages within 120 s" % n)

    def test_xmpp_send(self, h):
        r = self.report
        r.section("2. Sending: wall time of one `xmpp-send message "
                  "alice@localhost -- hi` (hyperfine)")
        qdir = self.queue_dir(h)
        out_dir = os.path.join(self.work, "hyperfine")
        os.mkdir(out_dir, 0o755)
        as_user = []
        if os.geteuid() == 0:  # the queue belongs to httpd's User
            util.chown(out_dir, "www-data")
            as_user = ["runuser", "-u", "www-data", "--"]
        out = os.path.join(out_dir, "xmpp-send.json")
        run(as_user + ["env", "XMPP_QUEUE=" + qdir, "XMPP_JID=" + APP_JID,
                       "hyperfine", "-N", "--style", "none",
                       "--warmup", str(self.p["hf_warmup"]),
                       "--runs", str(self.p["hf_runs"]),
                       "--export-json", out,
                       "%s message alice@localhost -- hi" % self.xmpp_send,
                       "/bin/true"], 600)
        with open(out) as f:
            res = json.load(f)["results"]
        xs, tr = res[0], res[1]
        r.line("hyperfine -N (no shell), %d warm-up + %d runs each, as "
               "httpd's User, XMPP_QUEUE/XMPP_JID set, the app connected"
               % (self.p["hf_warmup"], self.p["hf_runs"]))
        for key in ("mean", "median"):
            r.row("%s wall time, ms" % key, xs[key] * 1000, tr[key] * 1000,
                  "/bin/true (start floor)", "ms")
        r.line("xmpp-send: min %.2f ms, max %.2f ms, stddev %.2f ms; above "
               "the floor: %.2f ms (mean). Goal <= 5 ms (mean wall time): %s"
               % (xs["min"] * 1000, xs["max"] * 1000, xs["stddev"] * 1000,
                  (xs["mean"] - tr["mean"]) * 1000,
                  "meets" if xs["mean"] <= 0.005 else "MISSES"))
        self.wait_drained(h, 60)

    def test_api_rps(self, h):
        r = self.report
        secs = self.p["api_secs"]
        r.section("3. Sending: xmpp-api requests/s vs a static file (wrk -t%d "
                  "-c%d -d%ds)" % (WRK_THREADS, WRK_CONNS, secs))
        tag = self.tag("rps")
        # The diagnostic httpd (fsync a no-op) runs alongside, idle while
        # the others are measured, and is measured in the same rounds.
        hd = None
        if not self.args.no_diagnostic:
            hd = self.start_httpd(self.api_conf,
                                  preload=self.shims["nofsync_shim"])
        # the same sends to an app whose XMPP server is unreachable: what
        # accepting (durably queueing) costs, with no delivery by Prosody
        # on the same cores
        ho = self.start_httpd(self.api_conf, offline=True)
        statics, apis, diags, offs, highs = [], [], [], [], []
        try:
            for i in range(self.p["repeat"]):
                with CpuMeter() as cpu_s, \
                        CpuAccount({"httpd": h.child_pids}) as acct_s:
                    s = self.wrk(h.url("/index.html"), "wrk_req.lua",
                                 ["GET", "/index.html", "ok"], WRK_CONNS,
                                 WRK_THREADS, secs)
                with CpuMeter() as cpu_a:
                    a = self.api_rps_run(h, tag, secs)
                statics.append(s["rate"])
                apis.append(a["rate"])
                r.line("run %d: static %.0f req/s (p50 %.2f ms, p99 %.2f ms, "
                       "CPU busy %.0f%%); send_message %.0f req/s (p50 %.2f "
                       "ms, p99 %.2f ms, %d not NO_ERROR, CPU busy %.0f%%, "
                       "%d still queued as wrk ended: %.0f/s delivered "
                       "meanwhile)%s"
                       % (i + 1, s["rate"], s["p50"] / 1000, s["p99"] / 1000,
                          cpu_s.busy, a["rate"], a["p50"] / 1000,
                          a["p99"] / 1000, a["bad"], cpu_a.busy,
                          a["queued_at_end"], a["delivered"],
                          "" if a["drained"] else
                          "; queue not drained after 120 s"))
                r.line("       CPU per 1000: static: %s; send_message (until "
                       "delivered): %s" % (acct_s.per(s["ok"]), a["cpu"]))
                # more connections: each send waits for its batch's sync,
                # so 16 leave the cores partly idle; the static file gets
                # the same connections
                hs = self.wrk(h.url("/index.html"), "wrk_req.lua",
                              ["GET", "/index.html", "ok"], WRK_CONNS_HIGH,
                              WRK_THREADS, secs)
                with CpuMeter() as cpu_h:
                    ha = self.api_rps_run(h, tag, secs, WRK_CONNS_HIGH)
                highs.append((hs["rate"], ha["rate"]))
                r.line("       with %d connections: static %.0f req/s; "
                       "send_message %.0f req/s (p50 %.2f ms, %d not "
                       "NO_ERROR, CPU busy %.0f%%, %d still queued as wrk "
                       "ended: %.0f/s delivered meanwhile): %.2fx"
                       % (WRK_CONNS_HIGH, hs["rate"], ha["rate"],
                          ha["p50"] / 1000, ha["bad"], cpu_h.busy,
                          ha["queued_at_end"], ha["delivered"],
                          ha["rate"] / hs["rate"]))
                with CpuMeter() as cpu_o:
                    o = self.wrk(ho.url("/"), "wrk_send.lua",
                                 ["/xmpp-api/send_message",
                                  "alice%40localhost", tag + "o", 0],
                                 WRK_CONNS, WRK_THREADS, secs)
                offs.append(o["rate"])
                r.line("       XMPP server unreachable (queued, not "
                       "delivered): send_message %.0f req/s (p50 %.2f ms, "
                       "%d not NO_ERROR, CPU busy %.0f%%)"
                       % (o["rate"], o["p50"] / 1000, o["bad"], cpu_o.busy))
                if hd:
                    d = self.api_rps_run(hd, tag, secs)
                    diags.append(d["rate"])
                    r.line("       fsync() a no-op (diagnostic below): %.0f "
                           "req/s; CPU per 1000: %s" % (d["rate"], d["cpu"]))
        finally:
            if hd:
                self.stop_httpd(hd)
            self.stop_httpd(ho, expected=("XMPP0104",))
        sm, am = statistics.median(statics), statistics.median(apis)
        r.row("requests/s (median of %d)" % len(apis), am, sm, "static file",
              "req/s", goal=0.8)
        r.row("the same with %d connections (median of %d)"
              % (WRK_CONNS_HIGH, len(highs)),
              statistics.median(a for s_, a in highs),
              statistics.median(s_ for s_, a in highs), "static file",
              "req/s", goal=0.8)
        r.row("the same, XMPP server unreachable (median of %d)" % len(offs),
              statistics.median(offs), sm, "static file", "req/s")
        r.line("each accepted send is durable before the answer: appended "
               "to the holder's journal, one fdatasync per batch")
        if diags:
            dm = statistics.median(diags)
            r.line("diagnostic, not a valid configuration: in an httpd whose "
                   "fsync() is a no-op (bench/nofsync_shim.c in LD_PRELOAD), "
                   "measured in the same rounds: send_message %s req/s, median "
                   "%.0f: %.2fx the durable figure, %.2fx the static file"
                   % (", ".join("%.0f" % x for x in diags), dm, dm / am,
                      dm / sm))

    def api_rps_run(self, h, tag, secs, conns=WRK_CONNS):
        """One wrk run of send_message (unique bodies, no quota) with a
        receiver for the messages; waits until the queue is empty. Also
        where the CPU went, per 1000 sends."""
        rc = self.receiver(tag, 10 ** 6, idle=5, timeout=secs + 120)
        try:
            with CpuAccount({"httpd": h.child_pids,
                             "Prosody": lambda: [self.prosody.pid],
                             "receiver": lambda: [rc.pid]}) as acct:
                a = self.wrk(h.url("/"), "wrk_send.lua",
                             ["/xmpp-api/send_message", "alice%40localhost",
                              tag, 0], conns, WRK_THREADS, secs)
                a["queued_at_end"] = int(h.status().get("XMPPApp1Queued", 0))
                a["delivered"] = (a["ok"] - a["queued_at_end"]) \
                    / (a["duration"] / 1e6)
                a["drained"] = self.wait_drained(h, 120)
            a["cpu"] = acct.per(a["ok"])
        finally:
            rc.stop()
        return a

    def test_memory(self, h):
        r = self.report
        n = self.p["n_mem"]
        r.section("4. Holder memory with %d messages queued while Prosody is "
                  "down" % n)
        st = h.status()
        holder = int(st["XMPPApp1HolderPID"])
        others = [p for p in h.worker_pids() if p != holder]
        if not others:
            raise BenchError("no non-holder child to compare with")
        other = others[0]
        before_h, before_o = proc_mem(holder), proc_mem(other)
        self.prosody.stop()
        util.wait_for(lambda: h.status().get("XMPPApp1State") != "connected",
                      30, 0.1, "the app to notice Prosody is gone")
        tag = self.tag("mem")
        t0 = time.monotonic()
        per_thread = n // WRK_THREADS
        w = self.wrk(h.url("/"), "wrk_send.lua",
                     ["/xmpp-api/send_message", "alice%40localhost", tag,
                      per_thread, "/index.html"], WRK_CONNS, WRK_THREADS,
                     FILL_BOUND_S, quota=True)
        fill_s = time.monotonic() - t0
        qdir = self.queue_dir(h)
        time.sleep(0.5)  # the queue thread publishes its count every 0.1 s
        st = h.status()
        queued = int(st.get("XMPPApp1Queued", "0"))
        jdir = os.path.join(qdir, "journal")
        segs = [e for e in os.scandir(jdir) if e.name.endswith(".seg")]
        jbytes = sum(e.stat().st_size for e in segs)
        after_h, after_o = proc_mem(holder), proc_mem(other)
        r.line("queued %d items through the HTTP API (wrk -t%d -c%d, %d not "
               "NO_ERROR) in %.1f s: %.0f sends/s with Prosody down; status "
               "says Queued %s, state '%s'"
               % (queued, WRK_THREADS, WRK_CONNS, w["bad"], fill_s,
                  w["ok"] / fill_s, st.get("XMPPApp1Queued"),
                  st.get("XMPPApp1State")))
        r.row("holder child VmRSS, MiB (queue full)", after_h[0] / 1024,
              after_o[0] / 1024, "non-holder child", "MiB")
        r.row("holder child VmHWM (peak), MiB", after_h[1] / 1024,
              after_o[1] / 1024, "non-holder child", "MiB")
        r.line("before queueing: holder %.1f MiB, non-holder %.1f MiB (VmRSS); "
               "holder grew %.1f MiB, non-holder %.1f MiB (both served the "
               "POSTs)" % (before_h[0] / 1024, before_o[0] / 1024,
                           (after_h[0] - before_h[0]) / 1024,
                           (after_o[0] - before_o[0]) / 1024))
        r.line("the journal on disk: %.1f MiB in %d segments (%.0f bytes "
               "an item, header included)"
               % (jbytes / 2 ** 20, len(segs), jbytes / max(1, queued)))
        # Drain: Prosody back, a receiver for the messages, time to empty.
        sent0 = int(st.get("XMPPApp1Sent", "0"))
        self.prosody.start()
        t_up = time.monotonic()
        rc = self.receiver(tag, queued, idle=30, timeout=RECONNECT_BOUND_S
                           + DRAIN_BOUND_S)
        try:
            self.wait_connected(h, RECONNECT_BOUND_S)
        except TimeoutError:
            r.line("the app did not reconnect within %d s" % RECONNECT_BOUND_S)
            rc.stop()
            return
        t_conn = time.monotonic()
        done = kv(rc.wait_line("DONE", DRAIN_BOUND_S + 60))
        t_rc = float(done["last"])
        drained = self.wait_drained(h, 60)
        t_empty = time.monotonic()
        st = h.status()
        sent = int(st.get("XMPPApp1Sent", "0")) - sent0
        end_h = proc_mem(holder) if util.pid_alive(holder) else (0, 0)
        r.line("Prosody up again; the app reconnected after %.1f s (backoff "
               "after the outage); queue seen empty %.1f s after the "
               "reconnect (the status is refreshed every 0.1 s)"
               % (t_conn - t_up, t_empty - t_conn))
        rate = int(done["unique"]) / max(1e-6, t_rc - t_conn)
        r.row("drain: messages/s received after reconnect", rate,
              self.raw_rate, "raw sender (test 1)", "msg/s",
              note="%s/%d received, %d acked by the server, queue %s"
              % (done["unique"], queued, sent,
                 "empty" if drained else "NOT empty"))
        r.line("holder after the drain: VmRSS %.1f MiB, VmHWM %.1f MiB"
               % (end_h[0] / 1024, end_h[1] / 1024))

    # -------------------------------------------------------- receiving

    @staticmethod
    def multipart_body():
        """The bytes mod_xmpp posts for an inbound chat message (same
        layout as mx_multipart), for wrk to post directly."""
        boundary = "mod_xmpp-4f1bbcdc8b1e1c35"
        stanza = ('<message to="app@localhost" type="chat" id="cv7" '
                  'from="bob@localhost/converse-1a2b3c" xmlns="jabber:client">'
                  '<body>bench 7</body></message>')
        fields = [("from", "bob@localhost/converse-1a2b3c", None),
                  ("to", "app@localhost", None), ("body", "bench 7", None),
                  ("stanza", stanza, "text/xml")]
        out = []
        for name, value, ctype in fields:
            out.append("--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n"
                       "Content-Type: %s\r\n\r\n%s\r\n"
                       % (boundary, name, ctype or "text/plain; charset=UTF-8",
                          value))
        out.append("--%s--\r\n" % boundary)
        return "".join(out).encode(), "multipart/form-data; boundary=" + boundary

    def inbound_conf(self, kind):
        lua = os.path.join(BENCH, "reply.lua")
        cgi = os.path.join(self.bin, "reply_cgi")
        if kind == "lua":
            handler = ('LuaMapHandler "^/_ah/xmpp/message/chat/$" "%s"\n'
                       'LuaMapHandler "^/bench-direct/$" "%s"\n' % (lua, lua))
        else:
            handler = ('ScriptAliasMatch "^/_ah/xmpp/message/chat/$" "%s"\n'
                       'ScriptAliasMatch "^/bench-direct/$" "%s"\n' % (cgi, cgi))
        return handler + (
            '<Directory "%s">\n    Options +ExecCGI\n    Require all granted\n'
            '</Directory>\n'
            '<Directory "%s">\n    Require all granted\n</Directory>\n'
            '<Location "/_ah/xmpp/">\n    Require xmpp-internal\n</Location>\n'
            '# the same handler for wrk, from this machine only\n'
            '<Location "/bench-direct/">\n    Require local\n</Location>\n'
            % (self.bin, BENCH))

    def converse(self, n, window, tag, lat_file=None, user="bob",
                 to=APP_JID):
        args = ["--to", to, "--count", n, "--window", window, "--prefix", tag,
                "--idle", 20, "--timeout", 600]
        if lat_file:
            args += ["--lat-file", lat_file]
        cl = self.client("converse", user, *args)
        cl.wait_line("READY", LOGIN_S)
        d = kv(cl.wait_line("DONE", 660))
        d = {k: float(v) for k, v in d.items()}
        d["rate"] = d["replies"] / max(1e-6, d["last"] - d["first"])
        return d

    def converse_many(self, n, window, tag, to=APP_JID, users=SENDERS):
        """converse from several senders at once, n messages each: the
        replies of all over the time from the first send to the last
        answer."""
        cls = []
        for i, user in enumerate(users):
            cls.append(self.client(
                "converse", user, "--to", to, "--count", n, "--window",
                window, "--prefix", "%s%d" % (tag, i), "--idle", 20,
                "--timeout", 600))
        for cl in cls:
            cl.wait_line("READY", LOGIN_S)
        ds = [{k: float(v) for k, v in kv(cl.wait_line("DONE", 660)).items()}
              for cl in cls]
        out = {k: sum(d[k] for d in ds)
               for k in ("sent", "replies", "errors")}
        out["first"] = min(d["first"] for d in ds)
        out["last"] = max(d["last"] for d in ds)
        out["rate"] = out["replies"] / max(1e-6, out["last"] - out["first"])
        return out

    def echo_rate_many(self):
        """XMPP alone with several senders: the same senders and windows
        to one C echo client (one bot) through the same Prosody."""
        if getattr(self, "_echo_rate_many", None) is None:
            echo = self.client("echo", "carol", "--timeout", 600,
                               resource="echo")
            echo.wait_line("READY", LOGIN_S)
            try:
                self.converse(50, 4, self.tag("ewarm"), to=ECHO_JID)
                d = self.converse_many(self.p["n_in"] // len(SENDERS),
                                       WRK_CONNS, self.tag("erm"),
                                       to=ECHO_JID)
            finally:
                echo.stop()
            self._echo_rate_many = d["rate"]
        return self._echo_rate_many

    def sync_p50(self, h, n=200):
        """fdatasync of a 1 KiB append in the app's spool directory, ms
        (p50, p99): a kept stanza is posted once its batch is synced, so
        this bounds what the inbound journal adds to a round trip."""
        path = os.path.join(self.queue_dir(h), "bench-sync-probe")
        vals = []
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            for _ in range(n):
                os.write(fd, b"x" * 1024)
                t = time.perf_counter()
                os.fdatasync(fd)
                vals.append((time.perf_counter() - t) * 1000)
        finally:
            os.close(fd)
            os.unlink(path)
        return pct(vals, 50), pct(vals, 99)

    def test_inbound(self, kind, number, goal):
        r = self.report
        n = self.p["n_in"]
        name = "a mod_lua handler" if kind == "lua" else "a C CGI (mod_cgid)"
        r.section("%d. Receiving: inbound messages/s into %s that replies "
                  "(%d messages)" % (number, name, n))
        h = self.start_httpd(self.inbound_conf(kind))
        try:
            body, ctype = self.multipart_body()
            body_file = os.path.join(self.work, "inbound-body")
            with open(body_file, "wb") as f:
                f.write(body)
            r.line("mod_xmpp: bench/raw_client converse (C) sends to %s with "
                   "at most %d unanswered, counts the replies" % (APP_JID,
                                                                   WRK_CONNS))
            r.line("baseline: wrk -t%d -c%d -d%ds POSTs the same multipart "
                   "body to the same handler (/bench-direct/, Require local)"
                   % (WRK_THREADS, WRK_CONNS, self.p["api_secs"]))
            self.converse(min(50, n), 4, self.tag("warm"))
            mxs, wrks, ceilings, highs, manys = [], [], [], [], []
            seq_bounds = []
            for i in range(self.p["repeat"]):
                with CpuMeter() as cpu_w, \
                        CpuAccount({"httpd": h.child_pids}) as acct_w:
                    w = self.wrk(h.url("/"), "wrk_req.lua",
                                 ["POST", "/bench-direct/", "re: bench 7",
                                  ctype, body_file], WRK_CONNS, WRK_THREADS,
                                 self.p["api_secs"])
                with CpuMeter() as cpu_m, \
                        CpuAccount({"httpd": h.child_pids,
                                    "Prosody": lambda: [self.prosody.pid]}) \
                        as acct_m:
                    log_from = len(h.access_log())
                    d = self.converse(n, WRK_CONNS, self.tag("in"))
                self.wait_drained(h, 60)
                # one sender's messages are posted one after the other:
                # its rate cannot pass 1 / (the request's own time)
                took = [int(l.rsplit(" ", 1)[1]) / 1000
                        for l in h.access_log()[log_from:].splitlines()
                        if '"POST /_ah/xmpp/message/chat/ ' in l]
                if took:
                    seq_bounds.append(1000 / statistics.mean(took))
                mxs.append(d["rate"])
                wrks.append(w["rate"])
                r.line("run %d: mod_xmpp %.0f replies/s (%d/%d replies, %d "
                       "error answers, CPU busy %.0f%%); wrk %.0f req/s (%d "
                       "not 200 're: ...', CPU busy %.0f%%)"
                       % (i + 1, d["rate"], d["replies"], d["sent"],
                          d["errors"], cpu_m.busy, w["rate"], w["bad"],
                          cpu_w.busy))
                # more in flight, as test 3 does with more connections
                wh = self.wrk(h.url("/"), "wrk_req.lua",
                              ["POST", "/bench-direct/", "re: bench 7",
                               ctype, body_file], WRK_CONNS_HIGH,
                              WRK_THREADS, self.p["api_secs"])
                dh = self.converse(n, WRK_CONNS_HIGH, self.tag("inh"))
                self.wait_drained(h, 60)
                highs.append((wh["rate"], dh["rate"]))
                # several senders, each with its own window
                dm = self.converse_many(n // len(SENDERS), WRK_CONNS,
                                        self.tag("inm"))
                self.wait_drained(h, 60)
                manys.append(dm["rate"])
                r.line("       %d senders (window %d each): mod_xmpp %.0f "
                       "replies/s (%d/%d replies, %d error answers)"
                       % (len(SENDERS), WRK_CONNS, dm["rate"], dm["replies"],
                          dm["sent"], dm["errors"]))
                r.line("       with %d in flight: mod_xmpp %.0f replies/s "
                       "(%d/%d replies, %d error answers); wrk -c%d %.0f "
                       "req/s: %.2fx"
                       % (WRK_CONNS_HIGH, dh["rate"], dh["replies"],
                          dh["sent"], dh["errors"], WRK_CONNS_HIGH,
                          wh["rate"], dh["rate"] / wh["rate"]))
                # CPU per message, ms: the handler as wrk drives it, what
                # the same handler plus mod_xmpp took, the XMPP server and
                # the client. With every core busy and mod_xmpp's own work
                # free, a message would still cost handler + Prosody +
                # client: that bounds what any bridge can reach here. (A
                # CGI's processes are not httpd's threads and are gone
                # when counted: no such figure for it.)
                if kind != "lua":
                    continue
                hw = acct_w.used["httpd"] * 1000 / max(1, w["ok"])
                hm = acct_m.used["httpd"] * 1000 / max(1, d["replies"])
                pm = acct_m.used["Prosody"] * 1000 / max(1, d["replies"])
                cm = d.get("cpu", 0) * 1000 / max(1, d["replies"])
                ceil = os.cpu_count() * 1000 / max(1e-6, hw + pm + cm)
                ceilings.append(ceil / w["rate"])
                r.line("       CPU per message: httpd %.3f ms (the handler "
                       "under wrk: %.3f a request), Prosody %.3f ms, client "
                       "%.3f ms; bound if mod_xmpp's own work cost nothing: "
                       "%d cores / (%.3f + %.3f + %.3f ms) = %.0f msg/s = "
                       "%.2fx wrk"
                       % (hm, hw, pm, cm, os.cpu_count(), hw, pm, cm, ceil,
                          ceil / w["rate"]))
            alone = self.echo_rate()
            alone_many = self.echo_rate_many()
            r.line("   XMPP alone: the same client and window to a C echo "
                   "client through the same Prosody: %.0f msg/s (what any "
                   "bot on this Prosody can reach); %d senders: %.0f msg/s"
                   % (alone, len(SENDERS), alone_many))
            r.row("messages/s answered (median of %d)" % len(mxs),
                  statistics.median(mxs),
                  statistics.median(wrks), "wrk direct to handler", "msg/s",
                  goal=goal)
            r.row("the same with %d in flight (median of %d)"
                  % (WRK_CONNS_HIGH, len(highs)),
                  statistics.median(m for w_, m in highs),
                  statistics.median(w_ for w_, m in highs),
                  "wrk -c%d" % WRK_CONNS_HIGH, "msg/s", goal=goal)
            r.row("1 sender, window %d (median)" % WRK_CONNS,
                  statistics.median(mxs), alone, "XMPP alone, 1 sender",
                  "msg/s", goal=0.9)
            r.row("%d senders, window %d each (median)"
                  % (len(SENDERS), WRK_CONNS), statistics.median(manys),
                  alone_many, "XMPP alone, %d senders" % len(SENDERS),
                  "msg/s", goal=0.9)
            if seq_bounds:
                b = statistics.median(seq_bounds)
                r.line("bound of the order per sender: one request at a time "
                       "per sender, each taking %.3f ms inside httpd (access "
                       "log %%D, mean): at most %.0f msg/s for 1 sender "
                       "(%.2fx XMPP alone), %.0f for %d (%.2fx)"
                       % (1000 / b, b, b / alone, b * len(SENDERS),
                          len(SENDERS), b * len(SENDERS) / alone_many))
            if ceilings:
                r.line("bound on these cores at %d in flight, were mod_xmpp's "
                       "own work free (median): %.2fx wrk; Prosody, the "
                       "client and the handler share the cores"
                       % (WRK_CONNS, statistics.median(ceilings)))
            self.test_latency(h, kind, body_file, ctype)
        finally:
            self.stop_httpd(h)

    def test_inbound_memory(self):
        """The holder's memory must not grow with the number of inbound
        stanzas: its VmRSS after each 100k (or fewer) messages answered,
        next to the figure after a warm-up (pools, allocators and the
        request threads' stacks have their working size by then)."""
        r = self.report
        n = self.p["n_inmem"]
        step = min(100000, n)
        r.section("9. Holder memory over %d inbound messages into a mod_lua "
                  "handler that replies" % n)
        h = self.start_httpd(self.inbound_conf("lua"))
        try:
            self.converse(min(5000, n), WRK_CONNS, self.tag("warm"))
            self.wait_drained(h, 60)
            holder = int(h.status()["XMPPApp1HolderPID"])
            base = proc_mem(holder)[0]
            r.line("holder (pid %d) VmRSS after the warm-up: %.1f MiB"
                   % (holder, base / 1024))
            done, last = 0, base
            while done < n:
                k = min(step, n - done)
                d = self.converse(k, WRK_CONNS, self.tag("mem"))
                self.wait_drained(h, 60)
                done += k
                rss, hwm = proc_mem(holder)
                r.line("after %7d: VmRSS %.1f MiB (%+.2f MiB in this step, "
                       "%+.2f since the warm-up), VmHWM %.1f MiB; %s; %d/%d "
                       "replies, %d error answers, %.0f replies/s"
                       % (done, rss / 1024, (rss - last) / 1024,
                          (rss - base) / 1024, hwm / 1024, rss_parts(holder),
                          d["replies"], d["sent"], d["errors"], d["rate"]))
                last = rss
            r.row("holder VmRSS growth per 100k messages",
                  (last - base) / 1024 * 100000 / n, unit="MiB",
                  note="%d messages; 200 bytes a message would be %.1f MiB"
                  % (n, 200 * 100000 / 2 ** 20))
        finally:
            self.stop_httpd(h)
    def test_component(self):
        """Test 8: send (test 1) and receive (test 5) through a component
        connection and through the client connection, one after the
        other in each round, with the raw sender's rate of the round."""
        r = self.report
        n, n_in = self.p["n_send"], self.p["n_in"]
        r.section("8. Component mode (XEP-0114) beside client mode: test 1 "
                  "(%d messages) and test 5 (%d, mod_lua) in the same rounds"
                  % (n, n_in))
        conf = self.api_conf + self.inbound_conf("lua")
        hc = self.start_httpd(conf)
        hk = self.start_httpd(conf, component=True)
        prosody = {"Prosody": lambda: [self.prosody.pid]}
        res = {"raw": [], "client": [], "component": [], "client in": [],
               "component in": []}
        cpu = {k: [] for k in res}
        try:
            self.converse(min(50, n_in), 4, self.tag("warm"))
            self.converse(min(50, n_in), 4, self.tag("warm"), to=COMPONENT_TO)
            for i in range(self.p["repeat"]):
                with CpuAccount(prosody) as a:
                    raw, _ = self.raw_send_rate(n)
                res["raw"].append(raw)
                cpu["raw"].append(a.used["Prosody"] * 1000 / n)
                for name, h in (("client", hc), ("component", hk)):
                    with CpuAccount(prosody) as a:
                        rate, got, w, n_m = self.api_send_rate(h, n)
                    self.wait_drained(h, 60)
                    res[name].append(rate)
                    cpu[name].append(a.used["Prosody"] * 1000 / max(1, got))
                for name, to in (("client in", APP_JID),
                                 ("component in", COMPONENT_TO)):
                    with CpuAccount(prosody) as a:
                        d = self.converse(n_in, WRK_CONNS, self.tag("in"),
                                          to=to)
                    self.wait_drained(hc if name == "client in" else hk, 60)
                    res[name].append(d["rate"])
                    cpu[name].append(a.used["Prosody"] * 1000
                                     / max(1, d["replies"]))
                r.line("run %d: send raw %.0f, client %.0f, component %.0f "
                       "msg/s; receive client %.0f, component %.0f replies/s"
                       % (i + 1, res["raw"][-1], res["client"][-1],
                          res["component"][-1], res["client in"][-1],
                          res["component in"][-1]))
            med = {k: statistics.median(v) for k, v in res.items()}
            pc = {k: statistics.median(v) for k, v in cpu.items()}
            r.row("send, component (median)", med["component"], med["client"],
                  "client mode, same rounds", "msg/s", goal=1.0)
            r.row("send, component vs the raw sender", med["component"],
                  med["raw"], "raw libstrophe sender", "msg/s")
            r.row("receive, component (median)", med["component in"],
                  med["client in"], "client mode, same rounds", "msg/s",
                  goal=1.0)
            r.line("Prosody CPU per message: raw sender %.3f ms; send client "
                   "%.3f, component %.3f ms; receive and reply client %.3f, "
                   "component %.3f ms"
                   % (pc["raw"], pc["client"], pc["component"],
                      pc["client in"], pc["component in"]))
        finally:
            self.stop_httpd(hc)
            self.stop_httpd(hk)

    def echo_rtt(self):
        """Round trips through Prosody alone: client -> echo client."""
        if getattr(self, "_echo", None) is None:
            echo = self.client("echo", "carol", "--timeout", 600,
                               resource="echo")
            echo.wait_line("READY", LOGIN_S)
            lat = os.path.join(self.work, "lat-echo")
            try:
                self.converse(20, 1, self.tag("ew"), to="carol@localhost/echo")
                self.converse(self.p["n_lat"], 1, self.tag("echo"), lat,
                              to="carol@localhost/echo")
            finally:
                echo.stop()
            with open(lat) as f:
                self._echo = [float(x) / 1000 for x in f if x.strip()]
        return self._echo

    def echo_rate(self):
        """Messages/s through Prosody alone with the same window as test
        5/6: the C client to a C echo client, answered at once."""
        if getattr(self, "_echo_rate", None) is None:
            echo = self.client("echo", "carol", "--timeout", 600,
                               resource="echo")
            echo.wait_line("READY", LOGIN_S)
            try:
                self.converse(50, 4, self.tag("ewarm"),
                              to="carol@localhost/echo")
                d = self.converse(self.p["n_in"], WRK_CONNS,
                                  self.tag("erate"),
                                  to="carol@localhost/echo")
            finally:
                echo.stop()
            self._echo_rate = d["rate"]
        return self._echo_rate

    def test_latency(self, h, kind, body_file, ctype):
        r = self.report
        n = self.p["n_lat"]
        r.line("")
        r.line("7. latency (%s): %d single messages, one at a time"
               % (kind, n))
        lat_file = os.path.join(self.work, "lat-%s" % kind)
        log_from = len(h.access_log())
        self.converse(n, 1, self.tag("lat"), lat_file)
        with open(lat_file) as f:
            rtt = [float(x) / 1000 for x in f if x.strip()]
        # the injected requests' own time, %D (microseconds) in the log
        handler = [int(l.rsplit(" ", 1)[1]) / 1000
                   for l in h.access_log()[log_from:].splitlines()
                   if '"POST /_ah/xmpp/message/chat/ ' in l]
        w = self.wrk(h.url("/"), "wrk_req.lua",
                     ["POST", "/bench-direct/", "re: bench 7", ctype,
                      body_file], 1, 1, self.p["lat_secs"])
        echo = self.echo_rtt()
        p = {}
        for label, vals in (("rtt", rtt), ("handler", handler),
                            ("echo", echo)):
            p[label] = (pct(vals, 50), pct(vals, 99))
        p["wrk"] = (w["p50"] / 1000, w["p99"] / 1000)
        rows = [
            ("client -> mod_xmpp -> handler -> reply", p["rtt"]),
            ("the handler inside httpd (access log %D)", p["handler"]),
            ("the handler over HTTP (wrk -c1)", p["wrk"]),
            ("client -> Prosody -> C echo client -> back", p["echo"]),
        ]
        r.line("%-46s %9s %9s" % ("round trip, ms", "p50", "p99"))
        for label, (a, b) in rows:
            r.line("%-46s %9.2f %9.2f" % (label, a, b))
        # the handler as a client waits for it: %D ends when the response
        # is logged, which for a CGI is long before its process is gone
        # and the request is over (wrk -c1 sees that)
        hw = max(p["handler"][0], p["wrk"][0]), max(p["handler"][1],
                                                    p["wrk"][1])
        r.line("%-46s %9.2f %9.2f" % (
            "added by XMPP + mod_xmpp (1st - handler)",
            p["rtt"][0] - hw[0], p["rtt"][1] - hw[1]))
        r.line("%-46s %9.2f %9.2f" % (
            "added by mod_xmpp alone (1st - handler - 4th)",
            p["rtt"][0] - hw[0] - p["echo"][0],
            p["rtt"][1] - hw[1] - p["echo"][1]))
        r.line("(handler: the larger of the 2nd and 3rd rows)")
        sp = self.sync_p50(h)
        r.line("%-46s %9.2f %9.2f" % (
            "fdatasync of the spool (inbound journal)", sp[0], sp[1]))
        r.line("(no switch turns the inbound journal off: a kept stanza is "
               "posted once its batch is synced, so the journal adds at "
               "least this fdatasync, plus a thread hand-over, to the p50; "
               "goal: at most 0.3 ms more than without it)")
        r.line("(%d replies, %d handler log lines; the difference of p99s is "
               "only indicative)" % (len(rtt), len(handler)))

    def test_burst(self):
        """Test 10: one client sends a burst at once (every message
        unanswered) to a handler that takes 50 ms. One sender's messages
        are posted one after the other, so draining takes at least n x
        50 ms; what counts is that none is refused and the holder's
        memory stays flat while the rest waits on disk."""
        r = self.report
        n = self.p["n_burst"]
        r.section("10. A burst of %d inbound messages at once from one "
                  "client into a 50 ms mod_lua handler" % n)
        lua = os.path.join(BENCH, "burst.lua")
        h = self.start_httpd(
            'LuaMapHandler "^/_ah/xmpp/message/chat/$" "%s"\n'
            '<Directory "%s">\n    Require all granted\n</Directory>\n'
            '<Location "/_ah/xmpp/">\n    Require xmpp-internal\n'
            '</Location>\n' % (lua, BENCH))
        try:
            self.converse(10, 4, self.tag("warm"))
            holder = int(h.status()["XMPPApp1HolderPID"])
            base = proc_mem(holder)[0]
            t0 = time.monotonic()
            d = self.converse(n, n, self.tag("burst"))
            drain = time.monotonic() - t0
            rss, hwm = proc_mem(holder)
            r.line("%d/%d replies, %d error answers (refused), drained in "
                   "%.1f s (%.1f s at 50 ms each in order); holder VmRSS "
                   "%.1f -> %.1f MiB, VmHWM %.1f MiB"
                   % (d["replies"], d["sent"], d["errors"], drain,
                      n * 0.05, base / 1024, rss / 1024, hwm / 1024))
            r.row("burst: error answers", d["errors"], unit="refused",
                  note="%d messages" % n)
            r.row("burst: holder VmRSS growth", (rss - base) / 1024,
                  unit="MiB", note="%d messages waiting on disk" % n)
            # the same from several senders at once: they drain in
            # parallel (one request at a time per sender)
            m = self.p["n_burst_many"]
            each = max(1, m // len(SENDERS))
            base = proc_mem(holder)[0]
            t0 = time.monotonic()
            d = self.converse_many(each, each, self.tag("burstm"))
            drain = time.monotonic() - t0
            rss, hwm = proc_mem(holder)
            r.line("%d senders x %d: %d/%d replies, %d error answers "
                   "(refused), drained in %.1f s (%.1f s at 50 ms each in "
                   "order per sender); holder VmRSS %.1f -> %.1f MiB, VmHWM "
                   "%.1f MiB" % (len(SENDERS), each, d["replies"], d["sent"],
                                 d["errors"], drain, each * 0.05,
                                 base / 1024, rss / 1024, hwm / 1024))
            r.row("burst of %d senders: error answers" % len(SENDERS),
                  d["errors"], unit="refused",
                  note="%d messages" % (each * len(SENDERS)))
            r.row("burst of %d senders: holder VmRSS growth"
                  % len(SENDERS), (rss - base) / 1024, unit="MiB",
                  note="%d messages waiting on disk" % (each * len(SENDERS)))
        finally:
            self.stop_httpd(h)

    def test_cluster(self):
        """Test 11 (bench/bench_cluster.py): scale-out on ejabberd."""
        import bench_cluster
        from harness import ejabberd as ejabberd_harness
        if not ejabberd_harness.cluster_available():
            self.report.section("11. Scale-out on an ejabberd cluster")
            self.report.line("skipped: ejabberd (and epmd) not installed")
            return
        try:
            bench_cluster.ClusterBench(self, sys.modules[__name__]).run()
        except RuntimeError as e:  # the harness's: ejabberd did not start
            raise BenchError(str(e)) from e

    # ------------------------------------------------------------- main

    def run(self):
        t_start = time.monotonic()
        self.build()
        self.start_prosody()
        self.conditions()
        only = set(self.args.only.split(",")) if self.args.only else None

        def want(n):
            return only is None or str(n) in only

        if any(want(n) for n in (1, 2, 3, 4)):
            h = self.start_httpd(self.api_conf)
            try:
                if want(1) or want(4):
                    self.attempt(self.test_send_rate, h)
                    if not self.args.quick and want(1):
                        self.attempt(self.test_slixmpp_receiver)
                if want(2):
                    self.attempt(self.test_xmpp_send, h)
                if want(3):
                    self.attempt(self.test_api_rps, h)
                if want(4):
                    self.attempt(self.test_memory, h)
            finally:
                # Test 4 stops Prosody: failed logins and the disconnect
                # are expected then.
                self.stop_httpd(h, expected=("XMPP0104", "XMPP0106")
                                if want(4) else ())
        if want(5) or want(7):
            self.attempt(self.test_inbound, "lua", 5, 0.8)
        if want(6) or want(7):
            self.attempt(self.test_inbound, "cgi", 6, 0.9)
        if want(8):
            self.attempt(self.test_component)
        if only and want(9):  # long: only when asked for
            self.attempt(self.test_inbound_memory)
        if want(10):
            self.attempt(self.test_burst)
        if want(11):
            self.attempt(self.test_cluster)
        with open("/proc/loadavg") as f:
            load = " ".join(f.read().split()[:3])
        self.report.section("End")
        self.report.line("load %s at the end (%s at start); total %.0f s"
                         % (load, self.start_load,
                            time.monotonic() - t_start))

    def attempt(self, test, *args):
        """Run one test; a failure is reported and the others still run."""
        try:
            test(*args)
        except (BenchError, TimeoutError, subprocess.TimeoutExpired,
                OSError, KeyError, ValueError) as e:
            self.report.line("FAILED: %s: %s" % (test.__name__, e))
        finally:
            for p in Proc.started:  # nothing of a test outlives it
                p.stop()
            if self.prosody and not self.prosody.running:
                self.prosody.start()

    def cleanup(self):
        Proc.stop_all()
        for h in self.httpds:
            h.stop()
            if not self.args.keep:
                h.cleanup()
        if self.prosody:
            self.prosody.stop()
            if not self.args.keep:
                self.prosody.cleanup()
        if self.args.keep:
            say("kept: %s %s" % (self.work, " ".join(
                [h.directory for h in self.httpds]
                + ([self.prosody.directory] if self.prosody else []))))
        else:
            shutil.rmtree(self.work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(
        prog="bench/run", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="small counts and short runs (about 2 minutes)")
    ap.add_argument("--only", metavar="LIST",
                    help="comma-separated test numbers, e.g. 1,3 (test 4 "
                    "and 7 bring what they compare with)")
    ap.add_argument("--repeat", type=int, help="runs of each throughput test")
    ap.add_argument("--n-send", type=int, help="messages of test 1")
    ap.add_argument("--n-mem", type=int, help="items queued in test 4")
    ap.add_argument("--n-in", type=int, help="inbound messages of tests 5/6")
    ap.add_argument("--n-inmem", type=int, help="inbound messages of test 9")
    ap.add_argument("--n-burst", type=int, help="the burst of test 10")
    ap.add_argument("--n-burst-many", type=int, help="test 10's burst from "
                    "%d senders at once (all of them together)" % len(SENDERS))
    ap.add_argument("--build", action="store_true",
                    help="run make first (default: only when not built)")
    ap.add_argument("--no-diagnostic", action="store_true",
                    help="skip the diagnostic of test 3 (send_message "
                    "in an httpd whose fsync() does nothing)")
    ap.add_argument("--keep", action="store_true",
                    help="keep the servers' directories and logs")
    ap.add_argument("--report", metavar="FILE",
                    help="also write the figures to FILE")
    args = ap.parse_args()
    for tool in ("wrk", "hyperfine", "gcc", "pkg-config"):
        if not shutil.which(tool):
            say("bench/run: %s is missing (apt-get install -y wrk hyperfine "
                "gcc pkg-config libstrophe-dev)" % tool)
            return 2
    bench = Bench(args)
    try:
        bench.run()
    except (BenchError, TimeoutError, subprocess.TimeoutExpired) as e:
        say("\nbench/run: stopped: %s" % e)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        bench.cleanup()
        if args.report:
            with open(args.report, "w") as f:
                f.write(bench.report.text() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
