"""App Engine Python code on mod_xmpp (issue 13, SPEC section 8): the
ScoreBot example (examples/scorebot.py, only its imports changed) under
mod_wsgi in daemon mode and as a CGI script, with a real client through
the private Prosody.  t/appengine/testbot.py adds commands that report
what send_message and get_presence return, and one that raises."""

import os
import re

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


def conf(mode, script):
    lines = ["XMPPInboundServices message subscribe presence",
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


def start(httpd_factory, mode, script):
    if mode == "wsgi" and not os.path.exists(MOD_WSGI):
        pytest.fail("mod_wsgi is not installed (tools/install-deps)")
    h = httpd_factory(mpm="event")
    h.write_config(extra_conf=conf(mode, script))
    h.start()
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
    h = start(httpd_factory, mode, SCOREBOT)
    carol = fresh_user(prosody, xmpp_client, "ae")
    r = ask(carol, "/score druidjane")
    assert re.match(r"^Score for user druidjane: \d+$", r["body"]), r
    # the reply goes from the address written to, to the full sender
    assert r["to"] == carol.full_jid and r["type"] == "chat"
    assert ask(carol, "\\stats")["body"].startswith("The latest stats: ")
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


@pytest.mark.parametrize("mode", MODES)
def test_sends_presence_and_errors(httpd_factory, xmpp_client, prosody,
                                   mode):
    h = start(httpd_factory, mode, TESTBOT)
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
