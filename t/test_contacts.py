# SPDX-License-Identifier: Apache-2.0
"""Contacts: subscriptions accepted and asked back, the roster of
subscribers, each contact's last presence (get_presence), probes.

Each test uses a fresh account, so that no roster state is left over from
another test (the Prosody server lives for the whole session).
"""

import json
import os
import re
import urllib.parse

from harness import util
from test_inbound import (APP, APP_FULL, fresh_user, start_app, token,
                          wait_connected)

API = """
<Location /xmpp-api/>
    SetHandler xmpp-api
    Require local
</Location>
"""


def roster_file(h):
    return os.path.join(h.spool_dir, APP, "roster")


def roster(h):
    try:
        with open(roster_file(h)) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return None


def wait_roster(h, predicate, what, timeout=10.0):
    seen = []

    def check():
        seen[:] = [roster(h)]
        return predicate(seen[0])
    try:
        util.wait_for(check, timeout, 0.1, what)
    except TimeoutError:
        raise AssertionError("%s; the roster file holds %r" % (what, seen[0])) \
            from None
    return seen[0]


def get_presence(h, jid):
    r = h.get("/xmpp-api/get_presence?jid=" + urllib.parse.quote(jid))
    assert r.status == 200, r
    assert r.headers.get_content_type() == "application/json"
    return json.loads(r.text)


def wait_presence(h, jid, available, show, what):
    seen = []

    def check():
        seen[:] = [get_presence(h, jid)]
        return seen[0]["available"] is available and seen[0]["show"] == show
    try:
        util.wait_for(check, 10.0, 0.1, what)
    except TimeoutError:
        raise AssertionError("%s; get_presence answers %r" % (what, seen[0])) \
            from None
    return seen[0]


def subscribe_both(carol):
    """carol subscribes to the app; the app accepts and asks back; carol's
    client (auto_authorize) accepts."""
    carol.subscribe(APP)
    util.wait_for(lambda: carol.subscription(APP) == "both", 10.0, 0.1,
                  "carol and the app to be subscribed both ways")


# ==================================================================== tests

def test_subscribe_is_accepted_and_asked_back(httpd_factory, xmpp_client,
                                              prosody):
    """Without 'subscribe' among the inbound services: accepted anyway,
    nothing posted."""
    h, dumps = start_app(httpd_factory, "event", services="message")
    log_at = h.log_size()
    carol = fresh_user(prosody, xmpp_client, "con")
    since = len(carol.presences)
    carol.subscribe(APP)
    subscribed = carol.wait_presence(
        lambda p: p["from"] == APP and p["type"] == "subscribed", since=since)
    asked = carol.wait_presence(
        lambda p: p["from"] == APP and p["type"] == "subscribe", since=since)
    assert subscribed["to"] == carol.jid and asked["to"] == carol.jid
    # carol now sees the app's presence
    online = carol.wait_available(APP)
    assert online["from"] == APP_FULL
    util.wait_for(lambda: carol.subscription(APP) == "both", 10.0, 0.1,
                  "subscription both ways")
    h.wait_log(r"XMPP0310: app@localhost: accepted the subscription of %s$"
               % re.escape(carol.jid), since=log_at)
    carol.sync()
    assert [d for d in dumps.all() if d.path.startswith("subscription/")] == []


def test_subscribe_is_accepted_and_posted(httpd_factory, xmpp_client,
                                          prosody):
    h, dumps = start_app(httpd_factory, "event", services="message subscribe")
    carol = fresh_user(prosody, xmpp_client, "con")
    subscribe_both(carol)
    carol.wait_available(APP)
    (d,) = dumps.wait(lambda d: d.path == "subscription/subscribe/"
                      and d.env.get("XMPP_FROM") == carol.jid, 1, 10,
                      "the subscribe request to be posted")
    assert d.env["XMPP_KIND"] == "subscribe"
    assert d.env["XMPP_TO"] == APP
    assert d.field("from") == carol.jid
    assert d.stanza().get("type") == "subscribe"


def test_roster_of_subscribers_survives_restarts(httpd_factory, xmpp_client,
                                                 prosody):
    """The holder writes the subscribers it learns from the server to
    spool/<jid>/roster; after a restart (even with the file gone) it is
    fetched again; an unsubscribed contact leaves it."""
    h, dumps = start_app(httpd_factory, "event", services="message")
    carol = fresh_user(prosody, xmpp_client, "con")
    dave = fresh_user(prosody, xmpp_client, "con")
    subscribe_both(carol)
    subscribe_both(dave)
    wait_roster(h, lambda r: r and carol.jid in r and dave.jid in r,
                "carol and dave in the roster file")
    assert all("@" in line and "/" not in line for line in roster(h))

    h.restart()
    wait_connected(h)
    wait_roster(h, lambda r: r and carol.jid in r and dave.jid in r,
                "the roster after a restart")

    assert h.stop()
    os.unlink(roster_file(h))
    h.start()
    wait_connected(h)
    lines = wait_roster(h, lambda r: r and carol.jid in r and dave.jid in r,
                        "the roster fetched again from the server")
    assert len(lines) == len(set(lines))

    # dave no longer wants the app's presence: no longer a subscriber
    # (the app stays subscribed to his); carol stays
    dave.unsubscribe(APP)
    wait_roster(h, lambda r: r is not None and dave.jid not in r
                and carol.jid in r, "dave to leave the roster file")


def test_get_presence_follows_the_contact(httpd_factory, xmpp_client,
                                          prosody):
    h, dumps = start_app(httpd_factory, "event", services="message",
                         extra=API)
    carol = fresh_user(prosody, xmpp_client, "con")
    assert get_presence(h, carol.jid) == {"jid": carol.jid,
                                          "available": False, "show": ""}
    subscribe_both(carol)
    wait_presence(h, carol.jid, True, "", "carol available")
    carol.set_presence("away", "lunch ü")
    wait_presence(h, carol.jid, True, "away", "carol away")
    carol.set_presence("dnd")
    wait_presence(h, carol.jid, True, "dnd", "carol dnd")
    carol.set_presence()
    wait_presence(h, carol.jid, True, "", "carol back")
    # a full JID asks about the same contact
    assert get_presence(h, carol.full_jid)["available"] is True
    carol.disconnect()
    wait_presence(h, carol.jid, False, "", "carol gone")
    # a presence file per contact, not per resource
    files = os.listdir(os.path.join(h.spool_dir, APP, "presence"))
    assert carol.jid in files


def test_probe_is_answered(httpd_factory, xmpp_client, prosody):
    """A contact probing the app gets its presence.  Prosody answers
    probes itself (from the app's session); if one reached the app, the
    module would post it to presence/probe/."""
    h, dumps = start_app(httpd_factory, "event", log_level="info xmpp:trace2")
    carol = fresh_user(prosody, xmpp_client, "con")
    subscribe_both(carol)
    carol.wait_available(APP)
    for to in (APP, APP_FULL):
        since = len(carol.presences)
        carol.send_raw("<presence to='%s' type='probe' id='probe-%d'/>"
                       % (to, since))
        p = carol.wait_presence(lambda p: p["from"] == APP_FULL
                                and p["type"] == "available", since=since)
        assert p["to"].startswith(carol.jid)
    carol.sync()
    received = re.findall(r"RECV: <presence[^>]*type=\"probe\"[^>]*>",
                          h.error_log())
    if received:
        dumps.wait(lambda d: d.path == "presence/probe/", len(received), 10,
                   "the probes that reached the app to be posted")
    print("probes that reached the app: %d" % len(received))


def test_iq_requests_are_answered(httpd_factory, xmpp_client):
    """Every IQ get/set to the app gets an answer (RFC 6120 8.2.3): a ping
    a result, anything else an error, never silence."""
    import slixmpp

    alice = xmpp_client("alice")
    h = httpd_factory(start=True)
    h.wait_log(r"XMPP0102: app@localhost: connected", timeout=20)

    async def ping():
        return await alice.xmpp.plugin["xep_0199"].ping(
            jid="app@localhost/bot", timeout=10)
    alice._call(ping, timeout=15)  # raises on an error or a timeout

    async def disco():
        iq = alice.xmpp.make_iq_get(queryxmlns="urn:example:unknown",
                                    ito="app@localhost/bot")
        try:
            await iq.send(timeout=10)
        except slixmpp.exceptions.IqError as e:
            return e.iq["error"]["condition"]
        return "result"
    assert alice._call(disco, timeout=15) == "service-unavailable"


# ------------------------------------------------ bounded presence state

def presence_file(h, jid):
    return os.path.join(h.spool_dir, APP, "presence", jid)


def ping_app(client):
    """A round trip through the app's holder: once it answers, it has
    handled every stanza the client sent before (one stream, in order)."""
    async def ping():
        return await client.xmpp.plugin["xep_0199"].ping(jid=APP_FULL,
                                                         timeout=10)
    client._call(ping, timeout=15)


def test_stranger_presence_leaves_no_state(httpd_factory, xmpp_client,
                                           prosody):
    """Anyone may send the app directed presence; from someone not in its
    roster it is not kept: no presence file, get_presence false."""
    h, dumps = start_app(httpd_factory, "event", services="message",
                         extra=API)
    strangers = [fresh_user(prosody, xmpp_client, "str") for _ in range(2)]
    huge = "stranger " * 22000  # about 200 KB
    for s in strangers:
        s.set_presence("away", huge, to=APP_FULL)
        s.set_presence("chat", huge, to=APP)
        ping_app(s)
    for s in strangers:
        assert get_presence(h, s.jid) == {"jid": s.jid, "available": False,
                                          "show": ""}
        assert not os.path.exists(presence_file(h, s.jid))


def test_contact_status_is_kept_cut(httpd_factory, xmpp_client, prosody):
    """A contact's 200 KB status is kept cut to 1024 characters (App
    Engine's bound), at a character boundary; get_presence still works."""
    h, dumps = start_app(httpd_factory, "event", services="message",
                         extra=API)
    carol = fresh_user(prosody, xmpp_client, "con")
    subscribe_both(carol)
    wait_presence(h, carol.jid, True, "", "carol available")
    carol.set_presence("away", "\u00fc" * 100000)
    wait_presence(h, carol.jid, True, "away", "carol away")
    with open(presence_file(h, carol.jid), encoding="utf-8") as f:
        assert f.read() == "available\naway\n" + "\u00fc" * 1024


def test_presence_goes_with_the_subscription(httpd_factory, xmpp_client,
                                             prosody):
    """A contact that stops sharing its presence with the app (cancels the
    app's subscription) leaves no presence behind."""
    h, dumps = start_app(httpd_factory, "event", services="message",
                         extra=API)
    carol = fresh_user(prosody, xmpp_client, "con")
    subscribe_both(carol)
    wait_presence(h, carol.jid, True, "", "carol available")
    assert os.path.exists(presence_file(h, carol.jid))
    carol.send_raw("<presence to='%s' type='unsubscribed'/>" % APP)
    util.wait_for(lambda: not os.path.exists(presence_file(h, carol.jid)),
                  10.0, 0.1, "carol's presence file to go")
    # she still sends presence; it is no longer the app's to keep
    carol.set_presence("dnd", "busy", to=APP_FULL)
    ping_app(carol)
    assert get_presence(h, carol.jid)["available"] is False
    assert not os.path.exists(presence_file(h, carol.jid))


# ----------------------------------------------------- invalid addresses

def test_bad_ip_literal_is_invalid_jid_without_reconnect(
        httpd_factory, xmpp_client, prosody):
    """Brackets hold an IPv6 address and nothing else: anything else is
    INVALID_JID, and the stream (which a control byte would break) stays
    up; the good recipient after the bad ones gets the message."""
    h, dumps = start_app(httpd_factory, "event", services="message",
                         extra=API)
    carol = fresh_user(prosody, xmpp_client, "con")
    before = h.status()["XMPPApp1Reconnects"]
    bad = ["x@[\n<evil/>]", "x@[\n<evil>]", "x@[\x01]", "x@[\"'&]",
           "x@[1.2.3.4]", "x@[::1]\x02"]
    body = "after the bad ones " + token()
    since = len(carol.messages)
    r = h.post("/xmpp-api/send_message",
               data=[("jid", j) for j in bad + [carol.jid]]
               + [("body", body)])
    assert r.status == 200, r
    assert json.loads(r.text)["statuses"] == \
        ["INVALID_JID"] * len(bad) + ["NO_ERROR"]
    carol.wait_message(predicate=lambda m: m["body"] == body, since=since)
    assert h.status()["XMPPApp1Reconnects"] == before


def test_roster_request_id_cannot_be_guessed(httpd_factory):
    """Anyone may send the app an IQ result: a forged roster result with a
    guessed id would replace the roster (who gets presence to
    'subscribers').  The roster request's id is fresh and random per
    session, so only the server, which saw the request, can answer it;
    and the roster is still read (the roster file is written)."""
    ids = set()
    for _ in range(2):
        h = httpd_factory(start=True, log_level="info xmpp:trace2")
        m = h.wait_log(r'SENT: <iq [^>]*id="(mx-roster[^"]*)"', timeout=20)
        ids.add(m.group(1))
        wait_roster(h, lambda r: r is not None, "the roster to be read")
        h.stop()
    assert all(re.fullmatch(r"mx-roster-[0-9a-f]{32}", i) for i in ids), ids
    assert len(ids) == 2, ids
