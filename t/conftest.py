# SPDX-License-Identifier: Apache-2.0
"""pytest fixtures for mod_xmpp's integration tests.

  prosody         (session) a private Prosody on loopback with the accounts
                  app, alice and bob; see harness/prosody.py
  httpd_factory   (function) builds private httpd instances; see
                  harness/httpd.py
  httpd           (function) one default httpd (event MPM, mod_xmpp with
                  the default app), already started
  xmpp_client     (function) logs real XMPP clients (slixmpp) in to the
                  private Prosody; see harness/xmpp.py

Everything listens on 127.0.0.1 only.  Every process is started by the
fixtures, tracked by PID and stopped at teardown.  Temporary directories
live under /tmp; they are removed after passing tests and kept (and named
in the output) after a failure, or always with MX_KEEP_TMP=1.

Tests need root (httpd switches to www-data, Prosody runs as prosody).
"""

import os
import sys
import weakref

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import sanitize, util  # noqa: E402
from harness.httpd import Httpd, need_module  # noqa: E402
from harness.prosody import ProsodyServer  # noqa: E402
from harness.xmpp import XmppClient  # noqa: E402

KEEP_TMP = os.environ.get("MX_KEEP_TMP") == "1"
# MX_REQUIRE_MODULE=1 is set by t/run-tests after it built the module: a
# missing mod_xmpp.so is then an error rather than a reason to skip
# (harness.httpd.need_module).

# A module built with --enable-sanitizers (MX_SANITIZE=1, or detected):
# xmpp-send run by the tests themselves writes its reports to the same
# files as httpd (harness/sanitize.py); sanitizer_check fails the test.
SANITIZED = sanitize.enabled()
if SANITIZED:
    os.environ.update(sanitize.options(halt_on_ubsan=True))


_log_checked = weakref.WeakKeyDictionary()  # Httpd -> error log offset


@pytest.fixture(autouse=True)
def sanitizer_check():
    """With a sanitized module: fail the test when a sanitizer report
    appeared while it ran (in any process: httpd's children, xmpp-send).
    Autouse, so set up first and torn down last: after its httpds stopped
    (a report at exit counts too)."""
    if not SANITIZED:
        yield
        return
    before = sanitize.report_files()
    yield
    reports = sanitize.new_reports(before)
    # every httpd's error log from where the last check stopped: also
    # those of module-scoped fixtures, set up before this fixture and
    # living on after the test
    for h in list(Httpd.instances):
        if not os.path.exists(h.error_log_file):
            continue
        size = h.log_size()
        reports += ["--- %s ---\n%s" % (h.error_log_file, r) for r in
                    h.sanitizer_reports(_log_checked.get(h, 0))]
        _log_checked[h] = size
    if reports:
        pytest.fail("sanitizer report(s) during the test:\n%s"
                    % "\n".join(r[-8000:] for r in reports), pytrace=False)


def pytest_sessionfinish(session, exitstatus):
    if SANITIZED:
        d = sanitize.report_dir()
        if sanitize.report_files():
            print("\nsanitizer reports kept in %s" % d)
        else:
            os.rmdir(d)


def pytest_report_header(config):
    if SANITIZED:
        from harness.httpd import module_path
        return ("mod_xmpp is sanitized: httpd runs with LD_PRELOAD=%s; "
                "reports in %s" % (":".join(sanitize.preload(module_path())),
                                   sanitize.report_dir()))
    return None


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Remember each phase's report on the test item, so that fixtures
    can tell at teardown whether the test failed."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, "rep_" + report.when, report)


def _failed(request):
    node = request.node
    return any(getattr(node, "rep_" + when, None) is not None
               and getattr(node, "rep_" + when).failed
               for when in ("setup", "call"))


@pytest.fixture(scope="session")
def prosody(request):
    """The private Prosody server, running for the whole session."""
    yield from util.serve(ProsodyServer(), "prosody",
                          keep=lambda: request.session.testsfailed > 0
                          or KEEP_TMP)


@pytest.fixture
def httpd_factory(request, prosody):
    """Factory for private httpd instances:

        h = httpd_factory(mpm="event", app_conf=None, extra_conf="",
                          log_level="info", children=None,
                          load_module=True, start=False)

    Instances are created stopped unless start=True.  All are stopped at
    teardown; after a failed test the tail of each error log is printed.
    A test that needs mod_xmpp is skipped while the module is not built
    (unless MX_REQUIRE_MODULE=1).
    """
    instances = []

    def make(mpm="event", app_conf=None, extra_conf="", log_level="info",
             children=None, load_module=True, start=False, module=None):
        if load_module:
            need_module(module)
        h = Httpd(prosody=prosody, mpm=mpm, app_conf=app_conf,
                  extra_conf=extra_conf, log_level=log_level,
                  children=children, load_module=load_module, module=module)
        instances.append(h)
        if start:
            h.start()
        return h

    yield make

    failed = _failed(request)
    problems = []
    for h in instances:
        if not h.stop():
            problems.append("httpd (%s) had to be killed at teardown" % h.directory)
        reports = h.sanitizer_reports()
        if reports:
            problems.append("sanitizer report in %s:\n%s" % (
                h.error_log_file, "\n".join(reports)[-8000:]))
        if failed or problems:
            print("\n===== %s: tail of %s =====\n%s" % (
                request.node.nodeid, h.error_log_file,
                util.tail(h.error_log_file, 60)))
            console = util.tail(h.console_file, 20)
            if console:
                print("----- console -----\n" + console)
        if failed or KEEP_TMP or problems:
            print("httpd directory kept: %s" % h.directory)
        else:
            h.cleanup()
    assert not problems, "; ".join(problems)


@pytest.fixture
def httpd(httpd_factory):
    """One running httpd: event MPM, mod_xmpp loaded, the default app."""
    return httpd_factory(start=True)


@pytest.fixture
def xmpp_client(prosody):
    """Factory for logged-in XMPP clients:

        c = xmpp_client("alice", resource=None, password=None,
                        auto_authorize=True, auto_subscribe=False,
                        initial_presence=True)

    `user` is a local account name or a bare JID.  The client trusts the
    private CA, sends its initial presence, accepts subscription requests
    (answers `subscribed`) and records what it receives.  All clients are
    disconnected at teardown.
    """
    clients = []

    def make(user, resource=None, password=None, **kw):
        jid = user if "@" in user else prosody.jid(user)
        account = jid.split("@", 1)[0]
        if resource:
            jid = "%s/%s" % (jid, resource)
        client = XmppClient(jid, password or prosody.password(account),
                            prosody.port, prosody.ca_file, **kw)
        clients.append(client)
        return client

    yield make

    for client in clients:
        client.disconnect()
