# SPDX-License-Identifier: Apache-2.0
"""Running the tests against a module built with --enable-sanitizers.

Such a module (and xmpp-send) needs the AddressSanitizer and UBSan
runtimes. xmpp-send links them itself; Debian's /usr/sbin/apache2 does not,
and ASan must be the first library of the process, so httpd runs with
LD_PRELOAD of exactly the runtimes the module was linked against (read
from `ldd`, so gcc's libasan/libubsan and clang's libclang_rt.asan both
work).

Every sanitized process of the session (httpd, its children, xmpp-send run
by a test or by a CGI) writes its reports to files in one directory,
report_dir(), through ASAN_OPTIONS/UBSAN_OPTIONS log_path; conftest.py
fails a test when a report appeared during it, and when the error log of
one of its httpds has one.

MX_SANITIZE=1 says the module is sanitized, MX_SANITIZE=0 that it is not;
unset, the module file is looked at (an ASan build references
__asan_init). MX_SANITIZE_PRELOAD overrides the libraries to preload
(colon-separated).
"""

import functools
import os
import re
import subprocess
import tempfile

# What a report looks like, in a report file or in the error log (a
# sanitized CGI's stderr goes there)
REPORT_RE = re.compile(r"ERROR: AddressSanitizer|ERROR: LeakSanitizer|"
                       r"runtime error:|SUMMARY: UndefinedBehaviorSanitizer|"
                       r"AddressSanitizer:DEADLYSIGNAL")

_RUNTIME_RE = re.compile(r"^\s*(\S*(?:libasan|libubsan|libclang_rt\.asan|"
                         r"libclang_rt\.ubsan)\S*)\s*=>\s*(\S+)", re.M)


@functools.lru_cache(maxsize=None)
def module_sanitized(path):
    """True when the mod_xmpp.so at `path` was built with ASan."""
    try:
        with open(path, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


def enabled(module=None):
    """Is the module under test sanitized? (MX_SANITIZE, else detected)"""
    forced = os.environ.get("MX_SANITIZE")
    if forced in ("0", "1"):
        return forced == "1"
    if module is None:
        from .httpd import module_path
        module = module_path()
    return module_sanitized(module)


@functools.lru_cache(maxsize=None)
def preload(module):
    """The runtimes to LD_PRELOAD into httpd for `module`, as a list of
    paths, ASan's first (it insists on being first)."""
    override = os.environ.get("MX_SANITIZE_PRELOAD")
    if override:
        return [p for p in override.split(":") if p]
    out = subprocess.run(["ldd", module], capture_output=True, text=True,
                         timeout=30).stdout
    libs = [path for name, path in _RUNTIME_RE.findall(out)]
    if not libs:
        # clang: libtool drops -shared-libasan from the module's link, so
        # it does not name the runtime; configure gave it an rpath to the
        # runtime's directory instead
        dynamic = subprocess.run(["readelf", "-d", module],
                                 capture_output=True, text=True,
                                 timeout=30).stdout
        for d in re.findall(r"R(?:UN)?PATH\).*\[(.*)\]", dynamic):
            for sub in d.split(":"):
                rt = os.path.join(sub, "libclang_rt.asan-%s.so" % os.uname().machine)
                if os.path.exists(rt):
                    libs.append(rt)
    libs.sort(key=lambda p: "asan" not in os.path.basename(p))
    if not libs:
        raise RuntimeError("%s looks sanitized but ldd names no sanitizer "
                           "runtime; set MX_SANITIZE_PRELOAD" % module)
    return libs


@functools.lru_cache(maxsize=None)
def report_dir():
    """One directory for the reports of the whole session, writable by
    every user (children and CGIs run as www-data)."""
    d = tempfile.mkdtemp(prefix="mx-sanitizer-", dir="/tmp")
    os.chmod(d, 0o1777)
    return d


def options(halt_on_ubsan=False):
    """ASAN_OPTIONS and UBSAN_OPTIONS for every sanitized process.

    detect_leaks=0: httpd frees its pools at exit only in part, by design,
    and a killed child never does; leaks are the unit tests' business.
    abort_on_error=0: exit instead of a core dump per report.
    verify_asan_link_order=0: harmless with LD_PRELOAD, and lets a process
    started without it (a bench, a hand-run apache2 -t) still come up.
    UBSan: halt_on_error=0, so one report does not kill a holder mid-test
    (the test fails anyway, on the report file).
    halt_on_ubsan: for commands a test runs itself (xmpp-send). gcc's
    UBSan ignores log_path when ASan is linked too and reports to stderr,
    which such a test captures and does not show: halting makes the
    report a failed command, which the test does see."""
    d = report_dir()
    return {
        "ASAN_OPTIONS": ":".join([
            "detect_leaks=0", "abort_on_error=0",
            "verify_asan_link_order=0", "log_path=%s/asan" % d,
            "print_summary=1", "handle_abort=1"]),
        "UBSAN_OPTIONS": ":".join([
            "print_stacktrace=1",
            "halt_on_error=%d" % (1 if halt_on_ubsan else 0),
            "log_path=%s/ubsan" % d]),
    }


def httpd_env(module):
    """The environment for an httpd that loads `module` (sanitized)."""
    env = dict(os.environ, **options())
    libs = preload(module)
    old = env.get("LD_PRELOAD")
    env["LD_PRELOAD"] = ":".join(libs + ([old] if old else []))
    return env


def report_files():
    """The report files so far: {path: size}."""
    d = report_dir()
    result = {}
    try:
        names = os.listdir(d)
    except FileNotFoundError:
        # removed under us (a cleanup of /tmp): the processes already
        # running lose their reports, later ones get the directory back
        os.mkdir(d)
        os.chmod(d, 0o1777)
        names = []
    for name in names:
        path = os.path.join(d, name)
        try:
            result[path] = os.path.getsize(path)
        except OSError:
            continue
    return result


def new_reports(before):
    """Text of the reports that appeared (or grew) since `before`
    (a report_files() result)."""
    texts = []
    for path, size in sorted(report_files().items()):
        if size <= before.get(path, 0):
            continue
        try:
            with open(path, errors="replace") as f:
                f.seek(before.get(path, 0))
                texts.append("--- %s ---\n%s" % (path, f.read()))
        except OSError:
            continue
    return texts


def log_reports(text, context=30):
    """Sanitizer report lines in an error log (with what follows them)."""
    lines = text.splitlines()
    found = []
    for i, line in enumerate(lines):
        if REPORT_RE.search(line):
            found.append("\n".join(lines[i:i + context]))
    return found
