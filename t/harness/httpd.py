# SPDX-License-Identifier: Apache-2.0
"""A private Apache httpd on loopback, with a self-contained config.

Each instance has its own temporary ServerRoot holding the generated
config, logs, runtime files, the app's password file and spool directory.
httpd runs in the foreground (-DFOREGROUND) as a subprocess, so its parent
PID is known at once (and checked against the PidFile) and signals go to
exactly that process.
"""

import functools
import os
import re
import shutil
import signal
import subprocess
import urllib.error
import urllib.parse
import urllib.request
import weakref

from . import sanitize, util

APACHE2 = os.environ.get("APACHE2", "/usr/sbin/apache2")
MODULES_DIR = os.environ.get("APACHE_MODULES_DIR", "/usr/lib/apache2/modules")
T_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO_DIR = os.path.dirname(T_DIR)
CGI_DIR = os.path.join(T_DIR, "cgi-bin")

MPMS = ("event", "worker", "prefork")

# Threads per child for the threaded MPMs when `children` is given: small,
# so that a handful of children stay cheap.
THREADS_PER_CHILD = 4


def module_path():
    """Where mod_xmpp.so is: $MOD_XMPP_SO, else the libtool build output."""
    return os.environ.get("MOD_XMPP_SO") or os.path.join(
        REPO_DIR, "mod_xmpp", ".libs", "mod_xmpp.so")


def need_module(path=None):
    """In a test: skip it while the module is not built, or fail it when
    MX_REQUIRE_MODULE=1 (the test suite's own run)."""
    import pytest  # only tests call this; the bench does not need pytest
    path = path or module_path()
    if not os.path.exists(path):
        message = "mod_xmpp is not built (%s missing)" % path
        if os.environ.get("MX_REQUIRE_MODULE") == "1":
            pytest.fail(message)
        pytest.skip(message)


@functools.lru_cache(maxsize=None)
def builtin_modules():
    """Source names of the modules compiled into the httpd binary
    (`apache2 -l`), e.g. {"mod_log_config.c", ...}; those must not be
    loaded again."""
    out = subprocess.run([APACHE2, "-l"], capture_output=True, text=True,
                         timeout=30).stdout
    return {line.strip() for line in out.splitlines() if line.strip().endswith(".c")}


class HttpdStartError(RuntimeError):
    """httpd did not come up; `output` holds its console output and the
    tail of the error log, `returncode` its exit status (None if it was
    still running and had to be stopped)."""

    def __init__(self, message, output="", returncode=None):
        super().__init__("%s\n%s" % (message, output))
        self.output = output
        self.returncode = returncode


class Response:
    """An HTTP answer: status, headers (an email.message.Message, so
    case-insensitive), body (bytes) and `text` (decoded)."""

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def __iter__(self):
        # Lets callers write `status, headers, body = h.get(path)`.
        return iter((self.status, self.headers, self.body))

    def __repr__(self):
        return "<Response %d %r>" % (self.status, self.body[:80])


# urllib must never go through a proxy from the environment: everything
# here is on loopback.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Httpd:
    """One httpd instance.  Created stopped: call start().

    Attributes:
      mpm, port, directory (ServerRoot), conf_file, error_log_file,
      access_log_file, pid_file, run_dir, spool_dir, password_file,
      module (path of mod_xmpp.so, or None when not loaded), pid (parent
      PID while running), prosody (the Prosody it talks to, or None)
    """

    # every instance alive, so that a check after each test can read the
    # error logs of those a test did not make itself (module fixtures)
    instances = weakref.WeakSet()

    def __init__(self, prosody=None, mpm="event", app_conf=None,
                 extra_conf="", log_level="info", children=None,
                 load_module=True, module=None):
        if mpm not in MPMS:
            raise ValueError("mpm must be one of %s" % (MPMS,))
        Httpd.instances.add(self)
        self.prosody = prosody
        self.mpm = mpm
        self.children = children
        self.log_level = log_level
        self.module = (module or module_path()) if load_module else None
        self.port = util.free_port()
        self.directory = util.make_tempdir("mx-httpd-%s-" % mpm)
        d = self.directory
        self.conf_file = os.path.join(d, "httpd.conf")
        self.log_dir = os.path.join(d, "logs")
        self.run_dir = os.path.join(d, "run")
        self.htdocs = os.path.join(d, "htdocs")
        self.spool_dir = os.path.join(d, "spool")
        self.error_log_file = os.path.join(self.log_dir, "error.log")
        self.access_log_file = os.path.join(self.log_dir, "access.log")
        self.console_file = os.path.join(d, "console.log")
        self.pid_file = os.path.join(self.run_dir, "httpd.pid")
        self.pid = None
        self._popen = None

        for sub in (self.log_dir, self.run_dir, self.htdocs):
            os.mkdir(sub, 0o755)
        # as `make install` makes it: root's, enterable by User
        os.mkdir(self.spool_dir, 0o711)
        os.chmod(self.spool_dir, 0o711)
        util.write_file(os.path.join(self.htdocs, "index.html"), "ok\n")

        self.password_file = None
        if prosody is not None:
            self.password_file = self.write_file(
                "app.pass", prosody.password("app") + "\n", 0o600)

        self.write_config(app_conf=app_conf, extra_conf=extra_conf)

    # ------------------------------------------------------------- config

    def write_file(self, name, text, mode=0o644, owner=None):
        """Write a file into the ServerRoot; returns its path."""
        path = os.path.join(self.directory, name)
        util.write_file(path, text, mode)
        if owner:
            util.chown(path, owner)
        return path

    def app_settings(self):
        """The default app directives, in order, as {directive: value}."""
        if self.prosody is None:
            raise RuntimeError("no Prosody: the default app needs one")
        return {
            "XMPPEngine": "On",
            "XMPPJID": self.prosody.jid("app"),
            "XMPPPasswordFile": self.password_file,
            "XMPPServer": "127.0.0.1:%d" % self.prosody.port,
            "XMPPTLSCAFile": self.prosody.ca_file,
            "XMPPSpoolDir": self.spool_dir,
        }

    def app_conf(self, **overrides):
        """The default app directives as config text, with `overrides`
        ({directive: value}); a value of None drops that directive, a new
        name is appended.  E.g. app_conf(XMPPServer="127.0.0.1:1")."""
        settings = self.app_settings()
        settings.update(overrides)
        return "\n".join("%s %s" % (name, _conf_value(value))
                         for name, value in settings.items()
                         if value is not None) + "\n"

    def render_config(self, app_conf=None, extra_conf="", log_level=None):
        """The full config text.

        app_conf: None -> the default app (if mod_xmpp is loaded and there
        is a Prosody), a dict -> the default app with those overrides
        (see app_conf()), a string -> used as is.  extra_conf comes last,
        after the app, so it may hold <VirtualHost>s with more apps.
        """
        d = self.directory
        log_level = log_level or self.log_level
        if isinstance(app_conf, dict):
            app_text = self.app_conf(**app_conf)
        elif app_conf is None:
            app_text = (self.app_conf() if self.module and self.prosody
                        else "")
        else:
            app_text = app_conf

        builtin = builtin_modules()
        cgi = "cgi" if self.mpm == "prefork" else "cgid"
        modules = ["mpm_%s" % self.mpm, "authz_core", "authz_host",
                   "authn_core", "alias", "mime", "dir", "log_config",
                   "status", cgi, "setenvif", "env", "lua"]
        load = ["LoadModule %s_module %s/mod_%s.so" % (m, MODULES_DIR, m)
                for m in modules if "mod_%s.c" % m not in builtin]

        lines = [
            "# Generated by the mod_xmpp test harness; self-contained.",
            'ServerRoot "%s"' % d,
            'DefaultRuntimeDir "%s"' % self.run_dir,
            'PidFile "%s"' % self.pid_file,
            "Listen 127.0.0.1:%d" % self.port,
            "ServerName 127.0.0.1",
            "ServerAdmin webmaster@localhost",
        ]
        if os.geteuid() == 0:
            lines += ["User www-data", "Group www-data"]
        lines += load + [
            "",
            'ErrorLog "%s"' % self.error_log_file,
            "LogLevel %s" % log_level,
            'LogFormat "%h %l %u %t \\"%r\\" %>s %b %D" common',
            'CustomLog "%s" common' % self.access_log_file,
            "TypesConfig /etc/mime.types",
            "Timeout 30",
            "KeepAlive On",
            "",
            'DocumentRoot "%s"' % self.htdocs,
            "<Directory />",
            "    AllowOverride None",
            "    Require all denied",
            "</Directory>",
            '<Directory "%s">' % self.htdocs,
            "    Require all granted",
            "</Directory>",
            'ScriptAlias /cgi-bin/ "%s/"' % CGI_DIR,
            '<Directory "%s">' % CGI_DIR,
            "    Options +ExecCGI",
            "    Require all granted",
            "</Directory>",
            "",
            "ExtendedStatus On",
            "<Location /server-status>",
            "    SetHandler server-status",
            "    Require local",
            "</Location>",
            "",
        ]
        lines += self._mpm_conf()
        if self.module:
            lines += ["", "LoadModule xmpp_module %s" % self.module]
            if self.sanitized:
                # CGI scripts get a fresh environment: without these a
                # sanitized xmpp-send they run would report to stderr
                # (the error log) instead of the report files
                lines += ["PassEnv ASAN_OPTIONS UBSAN_OPTIONS"]
        lines += ["", app_text, extra_conf, ""]
        return "\n".join(lines)

    def _mpm_conf(self):
        n = self.children
        if n is None:
            return []
        if self.mpm == "prefork":
            # At least n idle children at all times.
            return ["StartServers %d" % n,
                    "MinSpareServers %d" % n,
                    "MaxSpareServers %d" % (n + 2),
                    "ServerLimit %d" % (n + 8),
                    "MaxRequestWorkers %d" % (n + 8)]
        tpc = THREADS_PER_CHILD
        return ["StartServers %d" % n,
                "ThreadsPerChild %d" % tpc,
                "ThreadLimit %d" % tpc,
                "MinSpareThreads %d" % (n * tpc),
                "MaxSpareThreads %d" % ((n + 1) * tpc),
                "ServerLimit %d" % (n + 4),
                "MaxRequestWorkers %d" % ((n + 4) * tpc)]

    def write_config(self, app_conf=None, extra_conf="", log_level=None):
        """(Re)write conf_file; takes effect on the next start, graceful()
        or restart()."""
        util.write_file(self.conf_file,
                        self.render_config(app_conf, extra_conf, log_level))

    def configtest(self, conf_text=None):
        """Run `apache2 -t` on `conf_text` (default: the current config).

        Returns (returncode, output) with stdout and stderr together.
        """
        path = self.conf_file
        if conf_text is not None:
            path = self.write_file("configtest.conf", conf_text)
        result = subprocess.run([APACHE2, "-t", "-f", path],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, timeout=60, stdin=subprocess.DEVNULL,
                                cwd=self.directory, env=self.process_env())
        return result.returncode, result.stdout

    # ------------------------------------------------------------ process

    @property
    def sanitized(self):
        """mod_xmpp is loaded and built with --enable-sanitizers."""
        return bool(self.module) and sanitize.enabled(self.module)

    def process_env(self):
        """The environment for apache2 runs: LD_PRELOAD of the sanitizer
        runtimes and their options for a sanitized module, else None (the
        harness's own)."""
        return sanitize.httpd_env(self.module) if self.sanitized else None

    def sanitizer_reports(self, since=0):
        """Sanitizer reports in the error log from character `since` on
        (empty unless sanitized)."""
        if not self.sanitized:
            return []
        return sanitize.log_reports(self.error_log()[since:])

    @property
    def running(self):
        return self.pid is not None and util.pid_alive(self.pid)

    def start(self, timeout=30.0):
        """Start httpd and wait until it answers HTTP (bounded).

        Raises HttpdStartError (with the console output and error log) if
        it exits or does not answer in time.
        """
        if self.running:
            raise RuntimeError("httpd is already running (pid %d)" % self.pid)
        if os.path.exists(self.pid_file):
            os.unlink(self.pid_file)
        self._log_offset_at_start = self.log_size()
        console = open(self.console_file, "ab")
        try:
            self._popen = subprocess.Popen(
                [APACHE2, "-f", self.conf_file, "-DFOREGROUND"],
                stdin=subprocess.DEVNULL, stdout=console,
                stderr=subprocess.STDOUT, cwd=self.directory,
                env=self.process_env(),
                # Its own session and process group: in the foreground
                # httpd does not detach, and prefork signals its whole
                # process group on restarts, which must not reach pytest.
                start_new_session=True)
        finally:
            console.close()
        self.pid = self._popen.pid

        def up():
            if self._popen.poll() is not None:
                return "exited"
            if util.read_pidfile(self.pid_file) == self.pid and \
                    util.port_open(self.port):
                return "up"
            return None
        try:
            state = util.wait_for(up, timeout, 0.05, "httpd to answer")
        except TimeoutError:
            self.stop(timeout=10.0)
            raise HttpdStartError("httpd did not answer on port %d within %.0fs"
                                  % (self.port, timeout), self.startup_output())
        if state == "exited":
            code = self._popen.returncode
            self.pid = None
            self._popen = None
            raise HttpdStartError("httpd exited with status %d during startup"
                                  % code, self.startup_output(), code)

    def startup_output(self):
        """Console output plus what the error log got since start()."""
        console = util.tail(self.console_file, 40)
        return "--- console ---\n%s--- error log ---\n%s" % (
            console, self.error_log()[getattr(self, "_log_offset_at_start", 0):][-6000:])

    def stop(self, timeout=20.0):
        """SIGTERM to the parent and wait (bounded) until it and all its
        children are gone.  Returns False if something had to be killed."""
        if self._popen is None:
            return True
        children = util.children_of(self.pid)
        clean = util.stop_pid(self.pid, self._popen, timeout)
        # The parent normally reaps its children before it exits; anything
        # left (e.g. a child stuck in a module's cleanup) was started by us
        # and must not outlive the test.
        for pid in children:
            if util.pid_alive(pid):
                util.stop_pid(pid, None, 5.0, signal.SIGKILL)
                clean = False
        self.pid = None
        self._popen = None
        return clean

    def graceful_stop(self, timeout=30.0):
        """SIGWINCH: stop after the current requests (bounded wait)."""
        if self._popen is None:
            return True
        children = util.children_of(self.pid)
        clean = util.stop_pid(self.pid, self._popen, timeout, signal.SIGWINCH)
        for pid in children:
            if util.pid_alive(pid):
                util.stop_pid(pid, None, 5.0, signal.SIGKILL)
                clean = False
        self.pid = None
        self._popen = None
        return clean

    def _generation_signal(self, sig, wait, timeout):
        marker = "resuming normal operations"
        before = self.error_log().count(marker)
        util.signal_pid(self.pid, sig)
        if wait:
            util.wait_for(lambda: self.error_log().count(marker) > before,
                          timeout, 0.1, "httpd to restart")
            util.wait_for(lambda: util.port_open(self.port), timeout, 0.1,
                          "httpd to answer after the restart")

    def graceful(self, wait=True, timeout=30.0):
        """SIGUSR1 (graceful restart); with `wait`, until the new
        generation runs."""
        self._generation_signal(signal.SIGUSR1, wait, timeout)

    def restart(self, wait=True, timeout=30.0):
        """SIGHUP (immediate restart); with `wait`, until the new
        generation runs."""
        self._generation_signal(signal.SIGHUP, wait, timeout)

    def child_pids(self):
        """PIDs of the parent's children (from /proc).  Under a threaded
        MPM this includes mod_cgid's daemon; see worker_pids()."""
        if not self.running:
            return []
        return util.children_of(self.pid)

    def cgid_pid(self):
        """PID of mod_cgid's daemon (the child holding the listening
        cgisock in the runtime dir), or None."""
        inodes = set()
        try:
            with open("/proc/net/unix") as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if len(fields) >= 8 and fields[7].startswith(
                            os.path.join(self.run_dir, "cgisock")):
                        inodes.add("socket:[%s]" % fields[6])
        except FileNotFoundError:
            return None
        for pid in self.child_pids():
            fd_dir = "/proc/%d/fd" % pid
            try:
                for fd in os.listdir(fd_dir):
                    try:
                        if os.readlink(os.path.join(fd_dir, fd)) in inodes:
                            return pid
                    except OSError:
                        continue
            except OSError:
                continue
        return None

    def worker_pids(self):
        """The children that serve requests (child_pids() minus cgid's)."""
        cgid = self.cgid_pid() if self.mpm != "prefork" else None
        return [p for p in self.child_pids() if p != cgid]

    def cleanup(self, keep=False):
        """Stop httpd; remove its directory unless `keep`."""
        self.stop()
        if not keep:
            shutil.rmtree(self.directory, ignore_errors=True)

    # -------------------------------------------------------------- logs

    def error_log(self):
        """The whole error log (text)."""
        try:
            with open(self.error_log_file, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def access_log(self):
        try:
            with open(self.access_log_file, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def log_size(self):
        """Current length of the error log, for wait_log(since=...)."""
        return len(self.error_log())

    def wait_log(self, regex, timeout=10.0, since=0, flags=re.M):
        """Poll the error log (from character `since` on) until `regex`
        matches; returns the match object."""
        pattern = re.compile(regex, flags)
        return util.wait_for(lambda: pattern.search(self.error_log(), since),
                             timeout, 0.1, "error log to match %r" % regex)

    # -------------------------------------------------------------- HTTP

    def url(self, path="/"):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def request(self, method, path, data=None, headers=None, timeout=30.0):
        """Send one request; returns a Response (also for 4xx/5xx).

        `data` may be bytes, str, or a dict / list of pairs (form-encoded).
        """
        headers = dict(headers or {})
        if isinstance(data, (dict, list, tuple)):
            data = urllib.parse.urlencode(data, doseq=True)
            headers.setdefault("Content-Type",
                               "application/x-www-form-urlencoded")
        if isinstance(data, str):
            data = data.encode("utf-8")
        req = urllib.request.Request(self.url(path), data=data,
                                     headers=headers, method=method)
        try:
            with _opener.open(req, timeout=timeout) as resp:
                return Response(resp.status, resp.headers, resp.read())
        except urllib.error.HTTPError as e:
            with e:
                return Response(e.code, e.headers, e.read())

    def get(self, path, **kw):
        """GET `path`; returns Response, which unpacks as
        (status, headers, body)."""
        return self.request("GET", path, **kw)

    def post(self, path, data=None, **kw):
        return self.request("POST", path, data=data, **kw)

    def status(self):
        """/server-status?auto as a dict of its "Key: value" lines
        (values are strings; repeated keys keep the last value)."""
        resp = self.get("/server-status?auto")
        if resp.status != 200:
            raise RuntimeError("server-status answered %d" % resp.status)
        result = {}
        for line in resp.text.splitlines():
            key, sep, value = line.partition(": ")
            if sep:
                result[key.strip()] = value.strip()
        return result


def _conf_value(value):
    """Quote a directive argument when it needs it."""
    value = str(value)
    if value == "" or re.search(r'[\s"#]', value):
        return '"%s"' % value.replace("\\", "\\\\").replace('"', '\\"')
    return value
