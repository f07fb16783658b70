# SPDX-License-Identifier: Apache-2.0
"""Security of the spool and of the configuration.

The parent httpd runs as root and prepares the spool that the children
(User, www-data) write to.  www-data can put a symbolic link anywhere it
may write; root must never follow one (it would hand the link's target
to www-data).  Also: two JIDs never share one spool directory, a plain
<VirtualHost> is not an app, and XMPPTLS optional is warned about.
"""

import os
import re
import signal
import stat
import subprocess

import pytest

from harness import util
from harness.httpd import HttpdStartError

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="needs root: httpd must start as root and "
    "switch to www-data for the spool to be worth attacking")

WWW = "www-data"


def as_www(*cmd):
    """Run `cmd` as www-data; returns the CompletedProcess."""
    return subprocess.run(["runuser", "-u", WWW, "--"] + list(cmd),
                          capture_output=True, text=True, timeout=30,
                          stdin=subprocess.DEVNULL)


def app_jid(h):
    return h.prosody.jid("app")


def app_dir(h):
    return os.path.join(h.spool_dir, app_jid(h))


def root_target(h, kind):
    """A root-owned file or directory outside the spool, as an attacker
    would aim at (/etc/shadow, /root); returns (path, snapshot)."""
    path = os.path.join(h.directory, "precious-" + kind)
    if kind == "dir":
        os.mkdir(path, 0o755)
        util.write_file(os.path.join(path, "inside"), "root's\n", 0o644)
    else:
        util.write_file(path, "root's secret\n", 0o640)
    os.chown(path, 0, 0)
    return path, snapshot(path)


def snapshot(path):
    st = os.lstat(path)
    content = None
    if stat.S_ISREG(st.st_mode):
        with open(path) as f:
            content = f.read()
    return (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode), content)


def plant_link(path, target):
    """As www-data, replace `path` (whatever it is) by a link to target.
    Running children may make it again meanwhile (the lock file every
    200 ms): ln -f replaces a file atomically, and a directory made again
    is removed again."""
    r = as_www("sh", "-c", 'for i in 1 2 3 4 5 6 7 8 9 10; do '
               'if [ -d "$1" ] && [ ! -L "$1" ]; then rm -rf -- "$1"; fi; '
               'ln -sfn -- "$2" "$1" 2>/dev/null && exit 0; done; exit 1',
               "sh", path, target)
    assert r.returncode == 0, r
    assert os.path.islink(path)


def graceful_outcome(h, timeout=30.0):
    """SIGUSR1, then wait until the new generation runs ("resumed") or the
    parent gave up and exited ("exited").  The old generation's children
    were asked to stop; any still there afterwards are stopped."""
    marker = "resuming normal operations"
    before = h.error_log().count(marker)
    children = h.child_pids()
    util.signal_pid(h.pid, signal.SIGUSR1)

    def done():
        if h._popen.poll() is not None:
            return "exited"
        if h.error_log().count(marker) > before:
            return "resumed"
        return None
    outcome = util.wait_for(done, timeout, 0.1, "httpd to restart or exit")
    if outcome == "exited":
        for pid in children:
            if util.pid_alive(pid):
                try:
                    util.wait_for(lambda: not util.pid_alive(pid), 15, 0.1)
                except TimeoutError:
                    util.stop_pid(pid, None, 5.0, signal.SIGKILL)
        h.stop()
    return outcome


def refusal_lines(h, path):
    """The EMERG lines that name `path` and say it is a link."""
    return [line for line in h.error_log().splitlines()
            if "[xmpp:emerg]" in line and path in line
            and re.search(r"XMPP0010: .*is a symbolic link.*remove it", line)]


def start_refused(h):
    """start(); True when httpd refused to start (it is not running)."""
    try:
        h.start()
    except HttpdStartError:
        return True
    return False


def assert_target_unchanged(target, before):
    assert snapshot(target) == before, \
        "the link's target %s was changed: %r -> %r" % (
            target, before, snapshot(target))


def assert_refused(h, path, target, before, refused):
    assert_target_unchanged(target, before)
    assert refused, "httpd started with a link at %s" % path
    assert refusal_lines(h, path), \
        "no error line says that %s is a link:\n%s" % (
            path, util.tail(h.error_log_file, 20))


def wait_connected(h, n=1, timeout=30.0):
    def connected():
        try:
            st = h.status()
        except Exception:
            return False
        return all(st.get("XMPPApp%dState" % i) == "connected"
                   for i in range(1, n + 1))
    util.wait_for(connected, timeout, 0.1, "%d app(s) to be connected" % n)


# ------------------------------------------------------------ spool root

@pytest.mark.parametrize("owner", [WWW, "root"])
def test_spool_root_is_roots_after_start(httpd_factory, owner):
    """A spool root that is www-data's (as an earlier version left it) or
    root's with mode 700 (as `make install` made it) is root's after start,
    not writable by others, enterable by www-data, and the app works (its
    children reach their directory)."""
    h = httpd_factory()
    util.chown(h.spool_dir, owner)
    os.chmod(h.spool_dir, 0o700)
    h.start()
    st = os.stat(h.spool_dir)
    assert st.st_uid == 0, "the spool root is not root's"
    assert stat.S_IMODE(st.st_mode) & 0o022 == 0, oct(st.st_mode)
    assert stat.S_IMODE(st.st_mode) & 0o001, \
        "www-data cannot enter the spool root: %o" % st.st_mode
    if owner != "root":
        assert re.search(r"XMPP0011: XMPPSpoolDir %s .*root's"
                         % re.escape(h.spool_dir), h.error_log())
    d = os.stat(app_dir(h))
    assert d.st_uid != 0 and stat.S_IMODE(d.st_mode) == 0o700
    wait_connected(h)


def test_www_data_cannot_replace_the_app_dir(httpd_factory):
    h = httpd_factory(start=True)
    target, before = root_target(h, "dir")
    r = as_www("sh", "-c", 'mv -- "$1" "$1.gone" && ln -s -- "$2" "$1"',
               "sh", app_dir(h), target)
    assert r.returncode != 0, "www-data could replace the app's directory"
    assert not os.path.islink(app_dir(h))
    assert graceful_outcome(h) == "resumed"
    assert snapshot(target) == before
    assert os.stat(h.spool_dir).st_uid == 0


def test_app_dir_link_planted_before_start_is_refused(httpd_factory):
    """An upgraded install: the spool root is still www-data's, and
    www-data put a link where the app's directory goes."""
    h = httpd_factory()
    util.chown(h.spool_dir, WWW)   # as an earlier version left it
    target, before = root_target(h, "dir")
    plant_link(app_dir(h), target)
    assert_refused(h, app_dir(h), target, before, start_refused(h))
    assert os.stat(h.spool_dir).st_uid == 0


# ------------------------------------------------- inside the app's dir

PLACES = [("presence", "dir"), ("new", "dir"), ("tmp", "dir"),
          ("holder.lock", "file"), ("presence", "file")]


def _place_id(place):
    return "%s->%s" % place


@pytest.mark.parametrize("place", PLACES, ids=_place_id)
def test_link_in_app_dir_is_refused_at_graceful_restart(httpd_factory,
                                                        place):
    name, kind = place
    h = httpd_factory(start=True)
    target, before = root_target(h, kind)
    path = os.path.join(app_dir(h), name)
    plant_link(path, target)
    refused = graceful_outcome(h) == "exited"
    assert_refused(h, path, target, before, refused)


@pytest.mark.parametrize("place", PLACES, ids=_place_id)
def test_link_in_app_dir_is_refused_at_start(httpd_factory, place):
    name, kind = place
    h = httpd_factory(start=True)
    assert h.stop()
    target, before = root_target(h, kind)
    path = os.path.join(app_dir(h), name)
    plant_link(path, target)
    assert_refused(h, path, target, before, start_refused(h))


def test_hard_link_as_lock_file_is_refused(httpd_factory):
    """A hard link to a root file (where the kernel allows one) is a
    second name of that file: refused as well, not handed over."""
    h = httpd_factory(start=True)
    assert h.stop()
    target, before = root_target(h, "file")
    lock = os.path.join(app_dir(h), "holder.lock")
    os.unlink(lock)
    os.link(target, lock)   # as root: protected_hardlinks stops www-data
    refused = start_refused(h)
    assert_target_unchanged(target, before)
    assert refused
    assert re.search(r"XMPP0010: .*%s has other hard links"
                     % re.escape(lock), h.error_log())


# --------------------------------------------------- spool directory names

def _account(prosody, name, h):
    password = prosody.add_user(name)
    return prosody.jid(name), h.write_file(name + ".pass", password + "\n",
                                           0o600)


def _vhost(h, name, jid, password_file, extra=""):
    return ("<VirtualHost 127.0.0.1:%d>\n"
            "    ServerName %s\n"
            "    XMPPEngine On\n"
            "    XMPPJID %s\n"
            "    XMPPPasswordFile %s\n%s"
            "</VirtualHost>\n" % (h.port, name, jid, password_file, extra))


def test_two_jids_get_two_spool_dirs(httpd_factory, prosody):
    """a+b@x and a_b@x used to share a_b@x/ (and its lock: one of them
    never connected)."""
    h = httpd_factory()
    tag = str(os.getpid() % 100000)
    plus, plus_pass = _account(prosody, "mx+" + tag, h)
    under, under_pass = _account(prosody, "mx_" + tag, h)
    h.write_config(app_conf={"XMPPJID": plus, "XMPPPasswordFile": plus_pass},
                   extra_conf=_vhost(h, "under.example", under, under_pass))
    h.start()
    wait_connected(h, 2)
    st = h.status()
    assert {st["XMPPApp1JID"], st["XMPPApp2JID"]} == {plus, under}
    plus_dir = os.path.join(h.spool_dir, plus.replace("+", "%2B"))
    under_dir = os.path.join(h.spool_dir, under)
    for d in (plus_dir, under_dir):
        assert os.path.isfile(os.path.join(d, "holder.lock")), d
    assert sorted(os.listdir(h.spool_dir)) == sorted(
        [os.path.basename(plus_dir), os.path.basename(under_dir)])


def test_old_style_spool_dir_is_renamed(httpd_factory, prosody):
    """The directory an earlier version made for a+b@x (a_b@x) is taken
    over when no other app has or had that name, and the log says so."""
    h = httpd_factory()
    tag = str(os.getpid() % 100000)
    plus, plus_pass = _account(prosody, "mxold+" + tag, h)
    old = os.path.join(h.spool_dir, plus.replace("+", "_"))
    os.mkdir(old, 0o700)
    util.write_file(os.path.join(old, "roster"), "carol@localhost\n", 0o600)
    util.chown(old, WWW, recursive=True)
    h.write_config(app_conf={"XMPPJID": plus, "XMPPPasswordFile": plus_pass})
    h.start()
    new = os.path.join(h.spool_dir, plus.replace("+", "%2B"))
    assert not os.path.exists(old)
    with open(os.path.join(new, "roster")) as f:
        assert "carol@localhost" in f.read()
    assert re.search(r"XMPP0013: %s: spool directory %s renamed to %s"
                     % (re.escape(plus), re.escape(old), re.escape(new)),
                     h.error_log())
    wait_connected(h)


def test_old_style_dir_of_another_app_is_left_to_it(httpd_factory, prosody):
    """With a+b@x and a_b@x both apps, the old a_b@x/ is a_b@x's own name:
    it stays a_b@x's, and the log tells a+b@x's admin what to move."""
    h = httpd_factory()
    tag = str(os.getpid() % 100000)
    plus, plus_pass = _account(prosody, "mxsh+" + tag, h)
    under, under_pass = _account(prosody, "mxsh_" + tag, h)
    old = os.path.join(h.spool_dir, under)
    os.mkdir(old, 0o700)
    util.write_file(os.path.join(old, "marker"), "old\n", 0o600)
    util.chown(old, WWW, recursive=True)
    h.write_config(app_conf={"XMPPJID": plus, "XMPPPasswordFile": plus_pass},
                   extra_conf=_vhost(h, "under.example", under, under_pass))
    h.start()
    assert os.path.isfile(os.path.join(old, "marker"))
    new = os.path.join(h.spool_dir, plus.replace("+", "%2B"))
    assert not os.path.exists(os.path.join(new, "marker"))
    lines = [line for line in h.error_log().splitlines()
             if "XMPP0014: %s: %s" % (plus, old) in line]
    assert len(lines) == 1, h.error_log()
    assert "another app's directory" in lines[0] and new in lines[0]


# ------------------------------------------------------- virtual hosts

def test_plain_vhost_is_not_an_app(httpd_factory, prosody):
    """Main server app, two name-based vhosts with their own apps and one
    vhost with no XMPP directive: three apps, and the plain vhost serves
    its pages."""
    h = httpd_factory()
    tag = str(os.getpid() % 100000)
    one, one_pass = _account(prosody, "mxv1" + tag, h)
    two, two_pass = _account(prosody, "mxv2" + tag, h)
    plain_root = os.path.join(h.directory, "plain")
    os.mkdir(plain_root, 0o755)
    util.write_file(os.path.join(plain_root, "index.html"), "plain vhost\n")
    plain = ("<VirtualHost 127.0.0.1:%d>\n"
             "    ServerName plain.example\n"
             '    DocumentRoot "%s"\n'
             '    <Directory "%s">\n'
             "        Require all granted\n"
             "    </Directory>\n"
             "</VirtualHost>\n" % (h.port, plain_root, plain_root))
    h.write_config(extra_conf=plain + _vhost(h, "one.example", one, one_pass)
                   + _vhost(h, "two.example", two, two_pass))
    h.start()
    wait_connected(h, 3)
    st = h.status()
    assert {st.get("XMPPApp%dJID" % i) for i in (1, 2, 3)} == \
        {app_jid(h), one, two}
    assert "XMPPApp4JID" not in st
    r = h.get("/", headers={"Host": "plain.example"})
    assert (r.status, r.text) == (200, "plain vhost\n")


# ----------------------------------------------------------------- TLS

def test_tls_optional_warns_once(httpd_factory):
    h = httpd_factory(app_conf={"XMPPTLS": "optional"})
    h.start()
    lines = [line for line in h.error_log().splitlines()
             if "XMPPTLS optional" in line]
    assert len(lines) == 1, lines
    assert "[xmpp:warn]" in lines[0]
    assert re.search(r"strip STARTTLS.*XMPPTLS required", lines[0]), lines[0]
    assert app_jid(h) in lines[0]


def test_tls_required_does_not_warn(httpd_factory):
    h = httpd_factory(start=True)
    assert "XMPPTLS optional" not in h.error_log()
