# SPDX-License-Identifier: Apache-2.0
"""make install: the module through apxs, the header, xmpp-send and the
Debian-style configuration snippets (so that `a2enmod xmpp` works)."""

import os
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def apxs(var):
    return subprocess.run(["apxs", "-q", var], capture_output=True, text=True,
                          check=True).stdout.strip()


@pytest.fixture(scope="module")
def destdir(tmp_path_factory):
    if not os.path.exists(os.path.join(REPO, "Makefile")):
        pytest.skip("not configured (run ./configure first)")
    d = tmp_path_factory.mktemp("destdir")
    out = subprocess.run(["make", "-C", REPO, "install", "DESTDIR=%s" % d],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    return str(d)


def test_module_header_command_installed(destdir):
    assert os.path.isfile(destdir + apxs("LIBEXECDIR") + "/mod_xmpp.so")
    header = destdir + apxs("INCLUDEDIR") + "/mod_xmpp.h"
    assert "mod_xmpp_send_message" in open(header).read()
    found = [os.path.join(r, f) for r, _, fs in os.walk(destdir) for f in fs
             if f == "xmpp-send"]
    assert found and os.access(found[0], os.X_OK)


def test_debian_snippets_for_a2enmod(destdir):
    mods = destdir + apxs("SYSCONFDIR") + "/mods-available"
    load = open(os.path.join(mods, "xmpp.load")).read()
    # a2enmod links mods-available/xmpp.load: it must load the installed .so
    assert ("LoadModule xmpp_module %s/mod_xmpp.so" % apxs("LIBEXECDIR")) in load
    conf = open(os.path.join(mods, "xmpp.conf")).read()
    assert "Require xmpp-internal" in conf


def test_shipped_snippet_passes_configtest(destdir, httpd_factory):
    """The installed xmpp.conf, included as a2enmod would, is valid."""
    mods = destdir + apxs("SYSCONFDIR") + "/mods-available"
    h = httpd_factory(app_conf="", extra_conf="Include %s/xmpp.conf\n" % mods)
    rc, out = h.configtest()
    assert rc == 0 and "Syntax OK" in out, out


def test_python_package_installed(destdir, tmp_path):
    """The App Engine package lands where Debian's python3 looks for local
    modules, importable under App Engine's paths, beside another google.*
    namespace package from elsewhere on the path (PEP 420), and the
    ScoreBot example with it."""
    prefix = subprocess.run(["make", "-s", "-C", REPO, "print-prefix"],
                            capture_output=True, text=True).stdout.strip() \
        or "/usr/local"
    ver = "%d.%d" % __import__("sys").version_info[:2]
    site = destdir + "%s/lib/python%s/dist-packages" % (prefix, ver)
    assert os.path.isfile(os.path.join(site, "mod_xmpp_appengine", "xmpp.py"))
    other = tmp_path / "other" / "google" / "other"
    other.mkdir(parents=True)
    (other / "__init__.py").write_text("NAME = 'other'\n")
    code = ("from google.appengine.api import xmpp\n"
            "from google.appengine.ext import webapp\n"
            "from google.appengine.ext.webapp import xmpp_handlers\n"
            "from google.appengine.ext.webapp.util import run_wsgi_app\n"
            "import webapp2, google.other\n"
            "assert xmpp.MESSAGE_TYPE_CHAT == 'chat'\n"
            "assert xmpp.__file__.startswith(%r)\n"
            "print(google.other.NAME, xmpp_handlers.CommandHandler.__name__)\n"
            % site)
    out = subprocess.run(["/usr/bin/python3", "-I", "-c",
                          "import sys; sys.path[:0] = %r; exec(%r)"
                          % ([site, str(tmp_path / "other")], code)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["other", "CommandHandler"]
    example = destdir + prefix + "/share/mod_xmpp/examples/scorebot.py"
    assert os.access(example, os.X_OK)


def test_pip_installs_the_package_without_an_index(tmp_path):
    """pip install --no-index --no-build-isolation from the tree (a copy:
    pip writes its build files beside the sources)."""
    import shutil
    src = tmp_path / "src"
    shutil.copytree(os.path.join(REPO, "python"), src,
                    ignore=shutil.ignore_patterns("__pycache__", "build",
                                                  "*.egg-info"))
    target = tmp_path / "site"
    out = subprocess.run(["/usr/bin/python3", "-m", "pip", "install", "-q",
                          "--no-index", "--no-build-isolation",
                          "--target", str(target), str(src)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    out = subprocess.run(
        ["/usr/bin/python3", "-I", "-c",
         "import sys; sys.path.insert(0, %r)\n"
         "from google.appengine.api import xmpp\n"
         "from google.appengine.ext.webapp import xmpp_handlers\n"
         "import webapp2\n"
         "print(xmpp.__file__)" % str(target)],
        capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(str(target))
