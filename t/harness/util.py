# SPDX-License-Identifier: Apache-2.0
"""Small helpers shared by the integration-test fixtures.

Everything here is bounded in time: no helper waits forever, and every
process the harness starts is tracked by its PID so that it (and only it)
can be stopped again.
"""

import os
import pwd
import grp
import signal
import socket
import subprocess
import tempfile
import time

LOOPBACK = "127.0.0.1"


def free_port(host=LOOPBACK):
    """Return a TCP port on `host` that is free right now.

    The kernel picks the port (bind to port 0); the socket is closed again
    right away (it never carried a connection, so nothing lingers in
    TIME_WAIT) and the server under test binds it.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_open(port, host=LOOPBACK, timeout=0.5):
    """True if something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for(predicate, timeout, interval=0.05, what="condition"):
    """Poll `predicate()` until it returns a true value or `timeout` passes.

    Returns the predicate's value; raises TimeoutError naming `what`.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def pid_alive(pid):
    """True if a process with this PID exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            # The state follows the parenthesised command name, which may
            # itself contain spaces or parentheses: split at the last ')'.
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def children_of(pid):
    """PIDs whose parent is `pid`, read from /proc."""
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        # Fields after the command name: state, ppid, ...
        if int(fields[1]) == pid and fields[0] not in ("Z", "X"):
            kids.append(int(entry))
    return sorted(kids)


def signal_pid(pid, sig):
    """Send `sig` to `pid`; False if the process is already gone."""
    try:
        os.kill(pid, sig)
        return True
    except ProcessLookupError:
        return False


def stop_pid(pid, popen=None, timeout=15.0, sig=signal.SIGTERM):
    """Send `sig` to `pid` and wait (bounded) until it is gone.

    If `popen` (the subprocess.Popen that started the process, possibly a
    wrapper such as runuser) is given, it is reaped as well.  After
    `timeout` seconds the process gets SIGKILL, and this returns False so
    the caller can report an unclean stop.
    """
    clean = True
    if pid is not None:
        signal_pid(pid, sig)
        try:
            wait_for(lambda: not pid_alive(pid), timeout, what="PID %d to exit" % pid)
        except TimeoutError:
            clean = False
            signal_pid(pid, signal.SIGKILL)
            try:
                wait_for(lambda: not pid_alive(pid), 5.0, what="PID %d to die" % pid)
            except TimeoutError:
                pass
    if popen is not None:
        try:
            popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            clean = False
            popen.kill()
            popen.wait(timeout=5)
    return clean


def read_pidfile(path):
    """The PID stored in `path`, or None if missing or not yet written."""
    try:
        with open(path) as f:
            text = f.read().strip()
        return int(text) if text else None
    except (FileNotFoundError, ValueError):
        return None


def make_tempdir(prefix):
    """A fresh directory under /tmp that every user may traverse (0755).

    The servers under test run as unprivileged users (www-data, prosody)
    and must reach files inside it.
    """
    path = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
    os.chmod(path, 0o755)
    return path


def chown(path, user, recursive=False):
    """chown `path` (and optionally everything below it) to `user`."""
    if os.geteuid() != 0:
        return
    pw = pwd.getpwnam(user)
    os.chown(path, pw.pw_uid, pw.pw_gid)
    if recursive:
        for root, dirs, files in os.walk(path):
            for name in dirs + files:
                os.chown(os.path.join(root, name), pw.pw_uid, pw.pw_gid,
                         follow_symlinks=False)


def user_exists(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def group_exists(name):
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


def write_file(path, text, mode=0o644):
    """Write `text` to `path` with permission bits `mode`."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, mode)  # O_CREAT's mode is filtered by the umask
    return path


def tail(path, lines=60):
    """The last `lines` lines of a text file ('' if it does not exist)."""
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except FileNotFoundError:
        return ""


def serve(server, what, keep=None):
    """For a fixture: `yield from serve(server, "PostgreSQL")` starts a
    server of the harness (start/stop/cleanup), yields it, stops it by its
    PID and removes its directory; a server that had to be killed, or
    whose keep() says so, keeps its directory; a kill fails the
    teardown."""
    try:
        server.start()
    except Exception:
        server.stop()
        raise
    yield server
    clean = server.stop()
    if clean and not (keep and keep()):
        server.cleanup()
    else:
        print("\n%s directory kept: %s" % (what, server.directory))
    assert clean, "%s had to be killed at teardown" % what
