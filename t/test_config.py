# SPDX-License-Identifier: Apache-2.0
"""Configuration: what `apachectl configtest` accepts and refuses, what
stops startup, and that every directive is documented.

Directive names come from mod_xmpp/mod_xmpp_config.h (the MX_CMD_*
macros), so a new directive without a bad-value case here, or missing
from conf/xmpp-reference.conf or the README, fails a test.
"""

import os
import re

import pytest

from harness.httpd import MODULES_DIR, HttpdStartError

T_DIR = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(T_DIR)
CONFIG_H = os.path.join(REPO, "mod_xmpp", "mod_xmpp_config.h")
XMPP_CONF = os.path.join(REPO, "conf", "xmpp.conf")
REFERENCE_CONF = os.path.join(REPO, "conf", "xmpp-reference.conf")
README = os.path.join(REPO, "README")


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def directives():
    """Directive names from the MX_CMD_* macros of the config header."""
    names = re.findall(r'^#define\s+MX_CMD_\w+\s+"([^"]+)"', read(CONFIG_H),
                       re.M)
    assert names, "no MX_CMD_* directive found in %s" % CONFIG_H
    return names


# At least one bad value for every directive (a value is inserted as is
# after the name, so quote it when it needs quotes).
BAD_VALUES = [
    ("XMPPEngine", "maybe"),
    ("XMPPJID", '"not a jid"'),
    ("XMPPJID", "user@domain/res"),
    ("XMPPJID", "domain.only"),
    ("XMPPJID", "@domain"),
    ("XMPPResource", '""'),
    ("XMPPPasswordFile", "/nonexistent/app.pass"),
    ("XMPPPasswordFile", "/tmp"),
    ("XMPPServer", "host:99999"),
    ("XMPPServer", "host:0"),
    ("XMPPServer", "host:port"),
    ("XMPPServer", "::1:5222"),
    ("XMPPServer", "[::1"),
    ("XMPPServer", '""'),
    ("XMPPServer", "127.0.0.1:5347 host:0"),
    ("XMPPServer", '127.0.0.1:5347 "" 127.0.0.1:5348'),
    ("XMPPServer", "node1:5347 [::1"),
    ("XMPPServer", '"node1:5347 node2:0"'),
    ("XMPPServer", " ".join("n%d:5347" % i for i in range(17))),
    ("XMPPComponent", "user@bots.example.org"),
    ("XMPPComponent", "bots.example.org/res"),
    ("XMPPComponent", '"bad domain"'),
    ("XMPPComponentSecretFile", "/nonexistent/component.secret"),
    ("XMPPComponentSecretFile", "/tmp"),
    ("XMPPTLS", "sometimes"),
    ("XMPPTLSCAFile", "/nonexistent/ca.pem"),
    ("XMPPTLSVerify", "maybe"),
    ("XMPPInboundServices", "bogus"),
    ("XMPPInboundServices", "message bogus"),
    ("XMPPInboundPath", "nodash"),
    ("XMPPInboundPath", "/no-trailing-slash"),
    ("XMPPInboundPath", "no-leading-slash/"),
    ("XMPPSpoolDir", '""'),
    ("XMPPDevMode", "maybe"),
    ("XMPPQueueLimit", "0"),
    ("XMPPQueueLimit", "-5"),
    ("XMPPQueueLimit", "lots"),
    ("XMPPInboundThreads", "0"),
    ("XMPPInboundThreads", "257"),
    ("XMPPInboundThreads", "many"),
    ("XMPPInboundQueueLimit", "0"),
    ("XMPPInboundQueueLimit", "lots"),
    ("XMPPInboundRetry", "0"),
    ("XMPPInboundRetry", "often"),
    ("XMPPInboundRetry", "5 0"),
    ("XMPPInboundRetry", "5 soon"),
    ("XMPPStateStore", "files"),
    ("XMPPStateStore", '""'),
    ("XMPPPresenceCache", '"re dis:127.0.0.1:6379"'),
    ("XMPPPresenceCache", ":6379"),
]

# Good values: accepted by configtest (each on top of the default app).
GOOD_VALUES = [
    ("XMPPEngine", "Off"),
    ("XMPPResource", '"other bot"'),
    ("XMPPServer", "xmpp.example.org"),
    ("XMPPServer", "127.0.0.1:5222"),
    ("XMPPServer", "[::1]:5222"),
    ("XMPPServer", "[::1]"),
    ("XMPPServer", "127.0.0.1:5347 127.0.0.1:5348"),
    ("XMPPServer", '"127.0.0.1:5347 127.0.0.1:5348"'),
    ("XMPPServer", "[::1]:5347   node2.example.org  [::1]"),
    ("XMPPServer", " ".join("n%d:5347" % i for i in range(16))),
    ("XMPPTLS", "optional"),
    ("XMPPTLS", "off"),
    ("XMPPTLS", "Required"),
    ("XMPPTLSVerify", "Off"),
    ("XMPPInboundServices", "message error subscribe presence"),
    ("XMPPInboundServices", "xmpp_message xmpp_error xmpp_subscribe xmpp_presence"),
    ("XMPPInboundServices", "none"),
    ("XMPPInboundPath", "/bots/in/"),
    ("XMPPDevMode", "On"),
    ("XMPPQueueLimit", "1"),
    ("XMPPInboundThreads", "1"),
    ("XMPPInboundThreads", "256"),
    ("XMPPInboundQueueLimit", "1"),
    ("XMPPInboundRetry", "1"),
    ("XMPPInboundRetry", "5 60"),
    ("XMPPStateStore", "spool"),
]


def _case_id(case):
    return "%s %s" % case


@pytest.fixture
def h(httpd_factory):
    """An httpd (event MPM, the default app), not started."""
    return httpd_factory()


# ------------------------------------------------------------ shipped files

def test_shipped_xmpp_conf_passes_configtest(h):
    """conf/xmpp.conf, included as is (as a2enmod would), is valid."""
    rc, out = h.configtest(h.render_config(
        app_conf="", extra_conf="Include %s\n" % XMPP_CONF))
    assert rc == 0, out
    assert "Syntax OK" in out


def test_shipped_xmpp_conf_with_app_passes_configtest(h):
    rc, out = h.configtest(h.render_config(
        extra_conf="Include %s\n" % XMPP_CONF))
    assert rc == 0, out
    assert "Syntax OK" in out


def test_reference_conf_passes_configtest(h, prosody):
    """conf/xmpp-reference.conf with its paths pointing at files that
    exist here."""
    text = read(REFERENCE_CONF)
    replacements = {
        "/etc/apache2/xmpp/bot.password": h.password_file,
        "/etc/ssl/certs/ca-certificates.crt": prosody.ca_file,
        "/var/lib/apache2/xmpp": h.spool_dir,
    }
    for old, new in replacements.items():
        assert old in text, "%s no longer in the reference conf" % old
        text = text.replace(old, new)
    # Its <VirtualHost> is for port 80; configtest does not bind anything.
    rc, out = h.configtest(h.render_config(app_conf="", extra_conf=text))
    assert rc == 0, out
    assert "Syntax OK" in out


# ------------------------------------------------------------ bad values

def test_every_directive_has_a_bad_value_case():
    covered = {name for name, _ in BAD_VALUES}
    missing = [d for d in directives() if d not in covered]
    assert not missing, "directives without a bad-value case in BAD_VALUES: %s" % missing
    unknown = covered - set(directives())
    assert not unknown, "BAD_VALUES names unknown directives: %s" % unknown


@pytest.mark.parametrize("case", BAD_VALUES, ids=_case_id)
def test_bad_value_is_refused(h, case):
    name, value = case
    line = "%s %s" % (name, value)
    rc, out = h.configtest(h.render_config(extra_conf=line + "\n"))
    assert rc != 0, "configtest accepted %r:\n%s" % (line, out)
    assert "Syntax OK" not in out
    assert name in out, "the error does not name %s:\n%s" % (name, out)


@pytest.mark.parametrize("case", BAD_VALUES, ids=_case_id)
def test_bad_value_is_refused_in_virtualhost(h, case):
    """All directives are valid in <VirtualHost>, and checked there too."""
    name, value = case
    conf = ("<VirtualHost 127.0.0.1:%d>\n    ServerName vhost.example\n"
            "    %s %s\n</VirtualHost>\n" % (h.port, name, value))
    rc, out = h.configtest(h.render_config(extra_conf=conf))
    assert rc != 0, "configtest accepted %r in a vhost:\n%s" % (conf, out)
    assert name in out, out


@pytest.mark.parametrize("case", GOOD_VALUES, ids=_case_id)
def test_good_value_is_accepted(h, case):
    line = "%s %s" % case
    rc, out = h.configtest(h.render_config(extra_conf=line + "\n"))
    assert rc == 0, "configtest refused %r:\n%s" % (line, out)
    assert "Syntax OK" in out


def test_refusal_says_what_is_accepted(h):
    """The message names the directive, the bad value and what works."""
    rc, out = h.configtest(h.render_config(extra_conf="XMPPTLS sometimes\n"))
    assert rc != 0
    assert "sometimes" in out
    assert "required" in out and "optional" in out and "off" in out, out


def test_require_xmpp_internal_with_an_argument_is_refused(h):
    """`Require xmpp-internal` takes no argument; one (which a reader could
    take for a restriction to one app) is refused at configtest."""
    conf = ("<Location /internal>\n    Require xmpp-internal foo\n"
            "</Location>\n")
    rc, out = h.configtest(h.render_config(extra_conf=conf))
    assert rc != 0, "configtest accepted %r:\n%s" % (conf, out)
    assert "Syntax OK" not in out
    assert "xmpp-internal takes no arguments" in out, out


def test_require_xmpp_internal_alone_is_accepted(h):
    conf = "<Location /internal>\n    Require xmpp-internal\n</Location>\n"
    rc, out = h.configtest(h.render_config(extra_conf=conf))
    assert rc == 0, out
    assert "Syntax OK" in out


# ------------------------------------------------------------ documentation

@pytest.mark.parametrize("doc", [REFERENCE_CONF, README],
                         ids=["xmpp-reference.conf", "README"])
def test_every_directive_is_documented(doc):
    text = read(doc)
    if doc == REFERENCE_CONF:
        # A directive line (commented out for those that are not set by
        # default, e.g. component mode).
        missing = [d for d in directives()
                   if not re.search(r"^\s*(#\s*)?%s\s" % re.escape(d), text, re.M)]
    else:
        missing = [d for d in directives()
                   if not re.search(r"(?<![\w])%s(?![\w])" % re.escape(d), text)]
    assert not missing, "%s does not mention: %s" % (os.path.basename(doc), missing)


# ------------------------------------------------------------ startup

def _start_fails(h):
    """start() must raise; returns the startup output (console + log)."""
    with pytest.raises(HttpdStartError) as err:
        h.start()
    assert not h.running
    return err.value.output


def _lines(text, regex):
    return [line for line in text.splitlines() if re.search(regex, line)]


def _one_clear_line(out, regex):
    """The startup output has exactly one mod_xmpp error line, and it
    matches `regex`; returns it."""
    errors = _lines(out, r"\[xmpp:(emerg|alert|crit|error)\]")
    assert len(errors) == 1, "expected one mod_xmpp error line:\n%s" % out
    assert re.search(regex, errors[0]), out
    return errors[0]


def test_empty_password_file_stops_startup(httpd_factory):
    h = httpd_factory()
    empty = h.write_file("empty.pass", "", 0o600)
    h.write_config(app_conf={"XMPPPasswordFile": empty})
    out = _start_fails(h)
    line = _one_clear_line(out, r"XMPPPasswordFile.*empty")
    assert empty in line


def test_blank_password_file_stops_startup(httpd_factory):
    """Only white space on the first line counts as empty."""
    h = httpd_factory()
    blank = h.write_file("blank.pass", "   \n", 0o600)
    h.write_config(app_conf={"XMPPPasswordFile": blank})
    out = _start_fails(h)
    _one_clear_line(out, r"XMPPPasswordFile.*empty")


def test_missing_password_file_stops_startup(httpd_factory):
    h = httpd_factory(app_conf={"XMPPPasswordFile": "/nonexistent/app.pass"})
    out = _start_fails(h)
    assert _lines(out, r"XMPPPasswordFile.*/nonexistent/app\.pass"), out


@pytest.mark.skipif(os.geteuid() == 0,
                    reason="root reads any file: an unreadable password "
                    "file cannot be made here")
def test_unreadable_password_file_stops_startup(httpd_factory):
    h = httpd_factory()
    os.chmod(h.password_file, 0)
    out = _start_fails(h)
    assert _lines(out, r"XMPPPasswordFile.*cannot be read"), out


def _configtest_refuses(h, regex):
    """What only the whole configuration can tell is refused by configtest
    too, naming the problem."""
    rc, out = h.configtest()
    assert rc != 0, out
    assert re.search(regex, out), out


def test_engine_without_jid_stops_startup(httpd_factory):
    h = httpd_factory(app_conf={"XMPPJID": None})
    _configtest_refuses(h, r"XMPPEngine On.*needs XMPPJID")
    out = _start_fails(h)
    line = _one_clear_line(out, r"XMPPEngine On.*XMPPJID")
    # The line names what is missing, and only that: no dangling "and".
    assert not re.search(r"\band\s*$", line), \
        "the message ends in a dangling 'and': %r" % line
    assert "XMPPPasswordFile" not in line, line


def test_engine_without_jid_nor_password_file_stops_startup(httpd_factory):
    h = httpd_factory(app_conf={"XMPPJID": None, "XMPPPasswordFile": None})
    out = _start_fails(h)
    _one_clear_line(out, r"XMPPEngine On.*needs XMPPJID and XMPPPasswordFile")


def test_engine_without_password_file_stops_startup(httpd_factory):
    h = httpd_factory(app_conf={"XMPPPasswordFile": None})
    _configtest_refuses(h, r"XMPPEngine On.*needs XMPPPasswordFile")
    out = _start_fails(h)
    line = _one_clear_line(out, r"XMPPEngine On.*XMPPPasswordFile")
    assert not re.search(r"needs\s+and\b", line), \
        "the message has an empty name before 'and': %r" % line


def test_two_servers_with_one_jid_stop_startup(httpd_factory, prosody):
    h = httpd_factory()
    vhost = ("<VirtualHost 127.0.0.1:%d>\n"
             "    ServerName second.example\n"
             "    XMPPEngine On\n"
             "    XMPPJID %s\n"
             "    XMPPPasswordFile %s\n"
             "</VirtualHost>\n" % (h.port, prosody.jid("app"), h.password_file))
    h.write_config(extra_conf=vhost)
    _configtest_refuses(h, re.escape(prosody.jid("app")) + r".*two servers")
    out = _start_fails(h)
    _one_clear_line(out, re.escape(prosody.jid("app")) + r".*two servers")


def test_password_file_readable_by_others_warns(httpd_factory, prosody):
    h = httpd_factory()
    path = h.write_file("open.pass", prosody.password("app") + "\n", 0o644)
    h.write_config(app_conf={"XMPPPasswordFile": path})
    h.start()
    assert h.running
    assert h.get("/").status == 200
    warnings = _lines(h.error_log(), r"\[xmpp:warn\].*readable by every user")
    assert warnings, h.error_log()
    assert path in warnings[0]
    # The password itself is never in the warning.
    assert prosody.password("app") not in h.error_log()


def test_private_password_file_does_not_warn(httpd_factory):
    h = httpd_factory(start=True)
    assert not _lines(h.error_log(), r"readable by every user"), h.error_log()


# ------------------------------------------------------------ shared store

DBD_LOAD = "LoadModule dbd_module %s/mod_dbd.so\n" % MODULES_DIR


def _component_store(h, prosody, extra=""):
    from test_component import component_conf
    conf = component_conf(h, prosody, XMPPStateStore="dbd")
    h.write_config(app_conf=conf, extra_conf=extra)


def test_state_store_dbd_in_client_mode_is_refused(httpd_factory):
    """In client mode the XMPP server is what the hosts share."""
    h = httpd_factory(app_conf={"XMPPStateStore": "dbd"})
    _configtest_refuses(h, r"XMPPStateStore dbd is for component mode")


def test_state_store_dbd_without_mod_dbd_is_refused(httpd_factory,
                                                     prosody):
    h = httpd_factory()
    _component_store(h, prosody)
    _configtest_refuses(h, r"XMPPStateStore dbd needs mod_dbd: add "
                        r"LoadModule dbd_module")
    out = _start_fails(h)
    _one_clear_line(out, r"XMPPStateStore dbd needs mod_dbd")


def test_state_store_dbd_without_dbdriver_is_refused(httpd_factory,
                                                      prosody):
    h = httpd_factory()
    _component_store(h, prosody, DBD_LOAD)
    _configtest_refuses(h, r"XMPPStateStore dbd needs mod_dbd's DBDriver")


def test_state_store_dbd_with_a_driver_is_accepted(httpd_factory, prosody):
    h = httpd_factory()
    _component_store(h, prosody, DBD_LOAD + "DBDriver sqlite3\n"
                     "DBDParams %s/state.sqlite\n" % h.directory)
    rc, out = h.configtest()
    assert rc == 0 and "Syntax OK" in out, out


def test_state_store_dbd_with_the_driver_in_its_vhost(httpd_factory,
                                                      prosody):
    """The DBDriver of the app's own <VirtualHost> counts; another
    vhost's does not."""
    from test_component import component_conf
    h = httpd_factory()
    conf = component_conf(h, prosody, XMPPStateStore="dbd",
                          XMPPSpoolDir=h.spool_dir)
    body = "".join("    %s %s\n" % (k, v) for k, v in conf.items()
                   if v is not None)
    other = ("<VirtualHost 127.0.0.1:%d>\n    ServerName other.example\n"
             "    DBDriver sqlite3\n    DBDParams %s/o.sqlite\n"
             "</VirtualHost>\n" % (h.port, h.directory))
    app = ("<VirtualHost 127.0.0.1:%d>\n    ServerName app.example\n"
           "    XMPPEngine On\n%s%%s</VirtualHost>\n" % (h.port, body))
    h.write_config(app_conf="", extra_conf=DBD_LOAD + other + app % "")
    _configtest_refuses(h, r"XMPPStateStore dbd needs mod_dbd's DBDriver")
    h.write_config(app_conf="", extra_conf=DBD_LOAD + other + app % (
        "    DBDriver sqlite3\n    DBDParams %s/a.sqlite\n" % h.directory))
    rc, out = h.configtest()
    assert rc == 0 and "Syntax OK" in out, out


def test_bad_server_among_several_is_named(h):
    """With several XMPPServer addresses the refusal names the bad one."""
    rc, out = h.configtest(h.render_config(
        extra_conf="XMPPServer 127.0.0.1:5347 node2:99999\n"))
    assert rc != 0
    assert "XMPPServer" in out and "node2:99999" in out, out
    assert "several separated by spaces" in out, out


SOCACHE_LOAD = ("LoadModule socache_%s_module " + MODULES_DIR
                + "/mod_socache_%s.so\n")


def _component_cache(h, prosody, cache, extra=""):
    from test_component import component_conf
    conf = component_conf(h, prosody, XMPPStateStore="dbd",
                          XMPPPresenceCache=cache)
    h.write_config(app_conf=conf, extra_conf=DBD_LOAD + "DBDriver sqlite3\n"
                   "DBDParams %s/state.sqlite\n" % h.directory + extra)


def test_presence_cache_without_the_shared_store_is_refused(httpd_factory):
    h = httpd_factory(app_conf={"XMPPPresenceCache": "redis:127.0.0.1:1"})
    _configtest_refuses(h, r"XMPPPresenceCache is for XMPPStateStore dbd")


def test_presence_cache_of_a_provider_not_loaded_is_refused(httpd_factory,
                                                            prosody):
    h = httpd_factory()
    _component_cache(h, prosody, "redis:127.0.0.1:6379")
    _configtest_refuses(h, r"XMPPPresenceCache redis:127.0.0.1:6379: no "
                        r"mod_socache provider 'redis'.*LoadModule "
                        r"socache_redis_module")


def test_presence_cache_of_one_machine_is_refused(httpd_factory, prosody):
    h = httpd_factory()
    _component_cache(h, prosody, "shmcb", SOCACHE_LOAD % ("shmcb", "shmcb"))
    _configtest_refuses(h, r"XMPPPresenceCache shmcb: 'shmcb' is a cache of "
                        r"one machine.*use redis or memcache")


def test_presence_cache_in_redis_is_accepted(httpd_factory, prosody):
    h = httpd_factory()
    _component_cache(h, prosody, "redis:127.0.0.1:6379",
                     SOCACHE_LOAD % ("redis", "redis"))
    rc, out = h.configtest()
    assert rc == 0 and "Syntax OK" in out, out
