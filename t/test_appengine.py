# SPDX-License-Identifier: Apache-2.0
"""App Engine Python code on mod_xmpp (issue 13, SPEC section 8): the
ScoreBot example (examples/scorebot.py, only its imports changed) under
mod_wsgi in daemon mode and as a CGI script, with a real client through
the private Prosody.  t/appengine/testbot.py adds commands that report
what send_message and get_presence return, and one that raises."""

import os
import re
import urllib.parse

import pytest

from harness import util
from harness.httpd import REPO_DIR, T_DIR
from test_inbound import APP, fresh_user, wait_connected

SCOREBOT = os.path.join(REPO_DIR, "examples", "scorebot.py")
TESTBOT = os.path.join(T_DIR, "appengine", "testbot.py")
MOD_WSGI = "/usr/lib/apache2/modules/mod_wsgi.so"
PYPATH = "%s:%s" % (os.path.join(REPO_DIR, "python"),
                    os.path.join(REPO_DIR, "examples"))
WAIT = 20.0


CONSOLE = """
<Location /console>
    SetHandler xmpp-console
    Require local
</Location>
"""


def console_post(h, fields):
    """A form of the console (SetHandler xmpp-console) posted as a browser
    would, with the page's token."""
    m = re.search(r'<input type="hidden" name="token" value="([^"]+)">',
                  h.get("/console").text)
    assert m, "no token in the console's forms"
    r = h.post("/console", data=urllib.parse.urlencode(
        dict(fields, token=m.group(1))).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 200, r.text
    return r.text


def conf(mode, script):
    lines = [CONSOLE, "XMPPInboundServices message subscribe presence",
             'SetEnv XMPP_SEND "%s"' % os.path.join(REPO_DIR, "xmpp-send")]
    if mode == "wsgi":
        lines += [
            "LoadModule wsgi_module %s" % MOD_WSGI,
            "WSGISocketPrefix run/wsgi",
            "WSGIDaemonProcess scorebot processes=1 threads=4 "
            "python-path=%s" % PYPATH,
            'WSGIScriptAliasMatch "^/_ah/xmpp/(.*)$" "%s"' % script,
            "<Location /_ah/xmpp/>",
            "    WSGIProcessGroup scorebot",
            "    WSGIApplicationGroup %{GLOBAL}",
            "    Require xmpp-internal",
            "</Location>"]
    else:
        lines += [
            'SetEnv PYTHONPATH "%s"' % PYPATH,
            'ScriptAliasMatch "^/_ah/xmpp/(.*)$" "%s"' % script,
            "<Location /_ah/xmpp/>",
            "    Require xmpp-internal",
            "</Location>"]
    return "\n".join(lines) + "\n"


API = """
<Location /xmpp-api/>
    SetHandler xmpp-api
    Require local
</Location>
SetEnv XMPP_API_URL http://127.0.0.1:%d/xmpp-api/
"""


def start(httpd_factory, mode, script, app_conf=None, via="queue"):
    """via: "queue" (the queue socket, as mod_xmpp's variables say) or
    "http" (XMPP_API_URL set: the xmpp-api handler of the same httpd)."""
    if mode == "wsgi" and not os.path.exists(MOD_WSGI):
        pytest.fail("mod_wsgi is not installed (tools/install-deps)")
    h = httpd_factory(mpm="event")
    extra = conf(mode, script) + (API % h.port if via == "http" else "")
    h.write_config(app_conf=app_conf, extra_conf=extra)
    h.start()
    if app_conf and app_conf.get("XMPPDevMode") == "On":
        util.wait_for(lambda: h.status().get("XMPPApp1State") == "dev mode",
                      WAIT, 0.1, "dev mode")
    else:
        wait_connected(h)
    return h


def ask(client, body):
    """Send body to the app; the first reply from it."""
    since = len(client.messages)
    client.send_message(APP, body)
    return client.wait_message(
        WAIT, lambda m: m["from"].startswith(APP) and m["body"] is not None,
        since=since)


MODES = ["wsgi", "cgi"]


@pytest.mark.parametrize("mode", MODES)
def test_scorebot(httpd_factory, xmpp_client, prosody, mode):
    start(httpd_factory, mode, SCOREBOT)
    carol = fresh_user(prosody, xmpp_client, "ae")
    r = ask(carol, "/score druidjane")
    assert re.match(r"^Score for user druidjane: \d+$", r["body"]), r
    # the reply goes from the address written to, to the full sender
    assert r["to"] == carol.full_jid and r["type"] == "chat"
    assert ask(carol, "\\stats")["body"].startswith("The latest stats: ")
    # what the sender typed reaches the handler exactly, and back
    r = ask(carol, "/score  jürgen <&> 😀 ")
    assert re.match(r"^Score for user jürgen <&> 😀: \d+$", r["body"]), r
    assert ask(carol, "/unknown")["body"] == "Unknown command"
    # plain text: nothing; the next command's answer is the next message
    since = len(carol.messages)
    carol.send_message(APP, "just chatting")
    r = ask(carol, "/stats")
    bodies = [m["body"] for m in carol.messages[since:]
              if m["body"] is not None]
    assert bodies == [r["body"]], bodies
    assert r["body"].startswith("The latest stats: ")


@pytest.mark.parametrize("mode", MODES)
def test_subscription_handler_sees_each_kind(httpd_factory, xmpp_client,
                                             prosody, mode):
    h = start(httpd_factory, mode, SCOREBOT)
    carol = fresh_user(prosody, xmpp_client, "ae")
    jid = re.escape(carol.jid)
    carol.subscribe(APP)
    util.wait_for(lambda: carol.subscription(APP) == "both", WAIT, 0.1,
                  "subscribed both ways")
    h.wait_log(r"ScoreBot: %s\S* subscribed to the bot \(subscribe\)" % jid,
               timeout=WAIT)
    h.wait_log(r"ScoreBot: %s\S* accepted our invitation \(subscribed\)"
               % jid, timeout=WAIT)
    carol.send_raw("<presence to='%s' type='unsubscribe'/>" % APP)
    h.wait_log(r"ScoreBot: %s\S* unsubscribed \(unsubscribe\)" % jid,
               timeout=WAIT)
    carol.send_raw("<presence to='%s' type='unsubscribed'/>" % APP)
    h.wait_log(r"ScoreBot: %s\S* removed us \(unsubscribed\)" % jid,
               timeout=WAIT)


@pytest.mark.parametrize("mode,via", [("wsgi", "queue"), ("cgi", "queue"),
                                      ("wsgi", "http"), ("cgi", "http")])
def test_sends_presence_and_errors(httpd_factory, xmpp_client, prosody,
                                   mode, via):
    h = start(httpd_factory, mode, TESTBOT, via=via)
    carol = fresh_user(prosody, xmpp_client, "ae")
    since = len(carol.messages)
    r = ask(carol, "/sends")
    util.wait_for(lambda: len([m for m in carol.messages[since:]
                               if m["body"] is not None]) >= 3, WAIT, 0.1,
                  "three messages")
    bodies = [m["body"] for m in carol.messages[since:]
              if m["body"] is not None]
    assert "sends: 0 [0, 1] NoBodyError" in bodies, bodies
    assert "to one JID" in bodies and "to two JIDs" in bodies, bodies

    r = ask(carol, "/boom")
    assert r["body"] == "Oops. Something went wrong.", r
    # answered once: the failure is not a 5xx that mod_xmpp would retry
    r = ask(carol, "/stats")
    assert r["body"].startswith("The latest stats: "), r

    carol.subscribe(APP)
    util.wait_for(lambda: carol.subscription(APP) == "both", WAIT, 0.1,
                  "subscribed both ways")
    carol.set_presence(show="away")
    expected = ("presence: True (True, 'away') [(True, 'away', True), "
                "(False, '', False), (False, '', True)]")
    seen = []

    def away():
        seen[:] = [ask(carol, "/presence")["body"]]
        return seen[0] == expected
    try:
        util.wait_for(away, WAIT, 0.2, "get_presence to see away")
    except TimeoutError:
        raise AssertionError("get_presence answered %r" % seen) from None
    if via == "http":
        assert re.search(r'"GET /xmpp-api/get_presence\?jid=', h.access_log())
        assert re.search(r'"POST /xmpp-api/send_message ', h.access_log())
    else:
        assert "/xmpp-api/" not in h.access_log()


@pytest.mark.parametrize("mode", MODES)
def test_probe_answered_by_send_presence(httpd_factory, xmpp_client,
                                         prosody, mode):
    """The presence handler answers a probe with xmpp.send_presence; the
    client receives it.  Prosody answers a real client's probes itself
    (test_contacts), so the probe comes from the console, as App Engine's
    development console sent them."""
    h = start(httpd_factory, mode, SCOREBOT)
    carol = fresh_user(prosody, xmpp_client, "ae")
    since = len(carol.presences)
    page = console_post(h, {"kind": "presence", "from": carol.full_jid,
                            "type": "probe"})
    assert "<th>Posted to</th><td>/_ah/xmpp/presence/probe/</td>" in page, \
        page
    p = carol.wait_presence(lambda p: p["from"].startswith(APP)
                            and p["status"] == "Ready to keep score",
                            timeout=WAIT, since=since)
    assert p["type"] == "available" and p["show"] == "chat", p


@pytest.mark.parametrize("mode", MODES)
def test_dev_mode_logs_the_package_sends(httpd_factory, mode):
    """XMPPDevMode On: what the package sends is logged in the development
    server's shape, not sent (the package goes through the module)."""
    h = start(httpd_factory, mode, TESTBOT, app_conf={"XMPPDevMode": "On"})
    page = console_post(h, {"kind": "message",
                            "from": "alice@localhost/console",
                            "body": "/sends"})
    assert "<th>Status</th><td>200</td>" in page, page
    h.wait_log(r"Sending an XMPP Message:", WAIT)
    h.wait_log(r"Body:\s*\n.*to two JIDs", WAIT)
    h.wait_log(r"Body:\s*\n.*sends: 0 \[0, 1\] NoBodyError", WAIT)
    h.wait_log(r"To JIDs:\s*\n.*alice@localhost/console", WAIT)
