# SPDX-License-Identifier: Apache-2.0
"""Private databases for the shared store (XMPPStateStore dbd): a
PostgreSQL cluster of its own (initdb in a temporary directory, run as
`postgres`, on 127.0.0.1 and a free port, its socket in that directory,
stopped by PID) and SQLite files httpd's user may write.

Nothing here touches a system cluster: Debian's package may run one on
5432; ours has its own directory, port and socket.
"""

import glob
import os
import shutil
import signal
import subprocess

from . import util

PG_RUN_AS = "postgres"
DBD_DIR = "/usr/lib/x86_64-linux-gnu/apr-util-1"


def _pg_bin():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return os.path.dirname(found[-1]) if found else None


def _dbd_driver(name):
    return bool(glob.glob(os.path.join(DBD_DIR, "apr_dbd_%s*.so" % name))
                or glob.glob("/usr/lib/*/apr-util-1/apr_dbd_%s*.so" % name))


def missing_postgresql():
    """Why PostgreSQL tests cannot run, or None (tools/install-deps
    installs all of it)."""
    if not _pg_bin():
        return "PostgreSQL is not installed (postgresql)"
    if not util.user_exists(PG_RUN_AS):
        return "no user postgres"
    if not _dbd_driver("pgsql"):
        return "apr_dbd's pgsql driver is missing (libaprutil1-dbd-pgsql)"
    return None


def missing_sqlite():
    if not _dbd_driver("sqlite3"):
        return ("apr_dbd's sqlite3 driver is missing "
                "(libaprutil1-dbd-sqlite3)")
    return None


class PostgresServer:
    """A private cluster: start(), dbd_conf(), psql(sql), stop()."""

    def __init__(self):
        self.bin = _pg_bin()
        self.port = util.free_port()
        self.directory = util.make_tempdir("mx-pg-")
        self.data = os.path.join(self.directory, "data")
        self.log_file = os.path.join(self.directory, "postgres.log")
        self.pid = None
        util.chown(self.directory, PG_RUN_AS, recursive=True)
        os.chmod(self.directory, 0o755)

    def _as_postgres(self, args, timeout=60):
        return subprocess.run(["runuser", "-u", PG_RUN_AS, "--"] + args,
                              stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True,
                              timeout=timeout, cwd=self.directory)

    def start(self, timeout=60.0):
        """A new cluster (initdb), started."""
        r = self._as_postgres([os.path.join(self.bin, "initdb"), "-D",
                               self.data, "-A", "trust", "-U", "postgres",
                               "--no-sync", "-E", "UTF8"])
        if r.returncode != 0:
            raise RuntimeError("initdb failed:\n" + r.stdout)
        self.restart(timeout)

    def restart(self, timeout=60.0):
        """Start the cluster again (after stop()), same data and port."""
        opts = ("-c listen_addresses=127.0.0.1 -p %d -k %s -c fsync=off"
                % (self.port, self.directory))
        r = self._as_postgres([os.path.join(self.bin, "pg_ctl"), "-D",
                               self.data, "-l", self.log_file, "-o", opts,
                               "-w", "-t", str(int(timeout)), "start"],
                              timeout=timeout + 10)
        if r.returncode != 0:
            raise RuntimeError("pg_ctl start failed:\n%s\n%s"
                               % (r.stdout, util.tail(self.log_file)))
        # postmaster.pid: the PID on its first line, then more
        with open(os.path.join(self.data, "postmaster.pid")) as f:
            self.pid = int(f.readline().strip())
        util.wait_for(lambda: util.port_open(self.port), timeout, 0.1,
                      "PostgreSQL to listen")

    def dbd_conf(self):
        """mod_dbd's directives for this cluster (and the module)."""
        return ("DBDriver pgsql\n"
                "DBDParams \"host=127.0.0.1 port=%d connect_timeout=2 "
                "user=postgres dbname=postgres\"\n" % self.port)

    def psql(self, sql):
        """Run sql; the rows as lists of strings."""
        r = self._as_postgres(["psql", "-h", "127.0.0.1", "-p",
                               str(self.port), "-U", "postgres", "-At",
                               "-F", "\t", "-v", "ON_ERROR_STOP=1", "-c",
                               sql])
        if r.returncode != 0:
            raise RuntimeError("psql failed: %s" % r.stdout)
        return [line.split("\t") for line in r.stdout.splitlines() if line]

    def stop(self, timeout=30.0):
        """Fast shutdown by PID. True when it ended by itself."""
        if not self.pid or not util.pid_alive(self.pid):
            return True
        return util.stop_pid(self.pid, timeout=timeout, sig=signal.SIGINT)

    def cleanup(self):
        shutil.rmtree(self.directory, ignore_errors=True)


def sqlite_file(directory, owner="www-data"):
    """A directory httpd's user may write (SQLite writes a journal beside
    the file) and the database path in it."""
    d = os.path.join(directory, "db")
    os.makedirs(d, exist_ok=True)
    if os.geteuid() == 0:
        util.chown(d, owner)
    os.chmod(d, 0o700)
    return os.path.join(d, "state.sqlite")


REDIS_SERVER = "/usr/bin/redis-server"
REDIS_CLI = "/usr/bin/redis-cli"


def missing_redis():
    if not os.path.exists(REDIS_SERVER) or not os.path.exists(REDIS_CLI):
        return "Redis is not installed (redis-server)"
    from .httpd import MODULES_DIR
    if not os.path.exists(os.path.join(MODULES_DIR, "mod_socache_redis.so")):
        return "mod_socache_redis is missing (apache2 2.4.41 or later)"
    return None


class RedisServer:
    """A private redis-server on 127.0.0.1 and a free port, nothing saved
    to disk, as user redis when it exists; start(), cli(...), stop()."""

    def __init__(self):
        self.port = util.free_port()
        self.directory = util.make_tempdir("mx-redis-")
        self.log_file = os.path.join(self.directory, "redis.log")
        self.pid = None
        self._popen = None
        self._user = None
        if os.geteuid() == 0 and util.user_exists("redis"):
            self._user = "redis"
            util.chown(self.directory, "redis")

    def start(self, timeout=30.0):
        import pwd
        args = [REDIS_SERVER, "--port", str(self.port), "--bind",
                "127.0.0.1", "--save", "", "--appendonly", "no", "--dir",
                self.directory, "--logfile", self.log_file,
                "--daemonize", "no"]
        pre = None
        if self._user:
            pw = pwd.getpwnam(self._user)

            def pre():
                os.setgid(pw.pw_gid)
                os.setgroups([])
                os.setuid(pw.pw_uid)
        self._popen = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                       stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL,
                                       preexec_fn=pre)
        self.pid = self._popen.pid
        util.wait_for(lambda: util.port_open(self.port), timeout, 0.05,
                      "Redis to listen")

    def cli(self, *args):
        r = subprocess.run([REDIS_CLI, "-h", "127.0.0.1", "-p",
                            str(self.port)] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=30)
        return r.stdout

    def stop(self, timeout=15.0):
        if not self._popen:
            return True
        clean = util.stop_pid(self.pid, self._popen, timeout=timeout)
        self._popen = None
        return clean

    def cleanup(self):
        shutil.rmtree(self.directory, ignore_errors=True)
