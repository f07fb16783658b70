# SPDX-License-Identifier: Apache-2.0
"""The shared store (XMPPStateStore dbd): what every host of a component
must answer alike, in a database the hosts share through mod_dbd.

Two httpds are components of one ejabberd domain (default balancing:
each stanza to a random connected host), both with the same private
PostgreSQL: a subscription made through host A is seen by host B
(send_presence to subscribers from B reaches the subscriber), and
get_presence on B follows a contact whose presence reached A. With
SQLite, one host's subscriptions outlive the host (a new httpd with an
empty spool and the same database file still knows them).

Everything is started here (harness/stores.py, harness/ejabberd.py) and
stopped by PID. A missing tool skips (tools/install-deps installs them
all, so CI runs these).
"""

import os
import time

import pytest

from harness import ejabberd as ejabberd_harness
from harness import stores, util
from harness.httpd import MODULES_DIR
from harness.xmpp import clients_of
from test_component import (HANDLERS, api, bare, component_conf, fresh,
                            get_presence, status, subscribe_to,
                            wait_connected)

pytestmark = pytest.mark.skipif(not ejabberd_harness.available(),
                                reason="ejabberd is not installed "
                                "(tools/install-deps installs it)")

DBD_LOAD = "LoadModule dbd_module %s/mod_dbd.so\n" % MODULES_DIR
REDIS_LOAD = ("LoadModule socache_redis_module %s/mod_socache_redis.so\n"
              % MODULES_DIR)


@pytest.fixture(scope="module")
def ejabberd():
    yield from util.serve(ejabberd_harness.EjabberdServer(), "ejabberd")


def _store(missing, server_class, what):
    """A store's server for the module, skipped only when not installed"""
    why = missing()
    if why:
        pytest.skip(why + " (tools/install-deps installs it)")
    yield from util.serve(server_class(), what)


@pytest.fixture(scope="module")
def postgres():
    yield from _store(stores.missing_postgresql, stores.PostgresServer,
                      "PostgreSQL")


@pytest.fixture(scope="module")
def redis():
    yield from _store(stores.missing_redis, stores.RedisServer, "Redis")


@pytest.fixture
def client(ejabberd):
    yield from clients_of(ejabberd)


@pytest.fixture
def host(httpd_factory, ejabberd):
    """host(dbd_conf) -> a started httpd, component of ejabberd's domain,
    with XMPPStateStore dbd and mod_dbd set up by dbd_conf."""
    def make(dbd_conf, start=True, **overrides):
        extra = HANDLERS + DBD_LOAD + dbd_conf
        if "XMPPPresenceCache" in overrides:
            extra += REDIS_LOAD
        h = httpd_factory(extra_conf=extra)
        h.write_config(app_conf=component_conf(h, ejabberd,
                                               XMPPStateStore="dbd",
                                               **overrides),
                       extra_conf=extra)
        if start:
            h.start()
            wait_connected(h)
        return h
    return make


def presence_of(h, jid, address):
    answer = get_presence(h, jid, address)
    return answer["available"], answer["show"]


def status_from(client, address, text, since):
    return client.wait_presence(lambda p: bare(p["from"]) == address
                                and p["status"] == text, 20, since=since)


def test_subscription_through_a_seen_by_b(host, postgres, ejabberd,
                                          client):
    """alice subscribes while only A is connected (so A took it); B, in
    its own spool nothing, sends presence to the address's subscribers:
    alice gets it."""
    address = "%s@%s" % (fresh("support"), ejabberd.component_domain)
    a = host(postgres.dbd_conf())
    alice = client("alice")
    subscribe_to(alice, address)
    b = host(postgres.dbd_conf())
    assert not os.path.exists(os.path.join(
        b.spool_dir, ejabberd.component_domain, "addresses")), \
        "B has rosters of its own in its spool"
    for h, name in ((b, "B"), (a, "A")):
        text = "from host %s %d" % (name, time.time_ns())
        n = len(alice.presences)
        code, answer = api(h, "send_presence", jid="subscribers",
                           from_jid=address, status=text)
        assert answer["statuses"] == ["NO_ERROR"], answer
        p = status_from(alice, address, text, n)
        assert p["from"] == address + "/bot", p
    # bob subscribes through whichever host ejabberd picks: both see him
    bob = client("bob")
    subscribe_to(bob, address)
    text = "to both %d" % time.time_ns()
    na, nb = len(alice.presences), len(bob.presences)
    code, answer = api(b, "send_presence", jid="subscribers",
                       from_jid=address, status=text)
    assert answer["statuses"] == ["NO_ERROR"], answer
    status_from(alice, address, text, na)
    status_from(bob, address, text, nb)


def test_get_presence_on_b_follows_presence_that_reached_a(
        host, postgres, ejabberd, client):
    address = "%s@%s" % (fresh("desk"), ejabberd.component_domain)
    alice_bare = ejabberd.jid("alice")
    a = host(postgres.dbd_conf())
    alice = client("alice")
    subscribe_to(alice, address)
    alice.set_presence(show="dnd", status="in a meeting")
    util.wait_for(lambda: presence_of(a, alice_bare, address)
                  == (True, "dnd"), 20, 0.2, "A to see alice dnd")
    # B never received a stanza of alice's: it answers from the store
    b = host(postgres.dbd_conf())
    assert presence_of(b, alice_bare, address) == (True, "dnd")
    # with both connected, each presence goes to one of them, at random:
    # whichever got it, both answer alike
    for show in ("away", "xa", "chat"):
        alice.set_presence(show=show)
        util.wait_for(lambda: presence_of(a, alice_bare, address)
                      == (True, show), 20, 0.2, "A to see alice %s" % show)
        assert presence_of(b, alice_bare, address) == (True, show)
    alice.disconnect()
    util.wait_for(lambda: not presence_of(b, alice_bare, address)[0], 20,
                  0.2, "B to see alice go")
    assert presence_of(a, alice_bare, address) == (False, "")


def test_sqlite_subscriptions_outlive_the_host(host, ejabberd, client,
                                               tmp_path_factory):
    why = stores.missing_sqlite()
    if why:
        pytest.skip(why + " (tools/install-deps installs it)")
    directory = util.make_tempdir("mx-sqlite-")
    try:
        path = stores.sqlite_file(directory)
        conf = "DBDriver sqlite3\nDBDParams %s\n" % path
        address = "%s@%s" % (fresh("news"), ejabberd.component_domain)
        first = host(conf)
        alice = client("alice")
        subscribe_to(alice, address)
        assert first.stop()
        # a new host: another ServerRoot, an empty spool, the same file
        second = host(conf)
        text = "still subscribed %d" % time.time_ns()
        n = len(alice.presences)
        code, answer = api(second, "send_presence", jid="subscribers",
                           from_jid=address, status=text)
        assert answer["statuses"] == ["NO_ERROR"], answer
        status_from(alice, address, text, n)
    finally:
        import shutil
        shutil.rmtree(directory, ignore_errors=True)


def test_bad_rows_are_skipped(host, postgres, ejabberd, client):
    """Rows are outside bytes: one whose contact is no JID, or whose
    show is not RFC 6121's, is skipped (logged), never sent or answered."""
    domain = ejabberd.component_domain
    address = "%s@%s" % (fresh("rows"), domain)
    h = host(postgres.dbd_conf())
    alice = client("alice")
    subscribe_to(alice, address)
    postgres.psql(
        "INSERT INTO mx_subscription VALUES ('%s', '%s', "
        "'not a jid\"/><x', 1, 1)" % (domain, address))
    postgres.psql(
        "INSERT INTO mx_presence VALUES ('%s', '%s', 'carol@localhost', "
        "'carol@localhost/x', 'evil<show>', '', '99999999999999999999')"
        % (domain, address))
    text = "despite a bad row %d" % time.time_ns()
    n = len(alice.presences)
    code, answer = api(h, "send_presence", jid="subscribers",
                       from_jid=address, status=text)
    assert answer["statuses"] == ["NO_ERROR"], answer
    status_from(alice, address, text, n)
    assert presence_of(h, "carol@localhost", address) == (True, "")
    h.wait_log(r"XMPP0355: .*skipped a row of the shared store", 10)
    assert status(h).get("XMPPApp1State") == "connected"


def test_presence_in_redis_followed_by_both_hosts(host, postgres, redis,
                                                  ejabberd, client):
    """XMPPPresenceCache redis:...: presence goes to Redis (not the
    database), and B answers for presence that reached A."""
    address = "%s@%s" % (fresh("cache"), ejabberd.component_domain)
    alice_bare = ejabberd.jid("alice")
    cache = "redis:127.0.0.1:%d" % redis.port
    a = host(postgres.dbd_conf(), XMPPPresenceCache=cache)
    alice = client("alice")
    subscribe_to(alice, address)
    alice.set_presence(show="away", status="lunch")
    util.wait_for(lambda: presence_of(a, alice_bare, address)
                  == (True, "away"), 20, 0.2, "A to see alice away")
    b = host(postgres.dbd_conf(), XMPPPresenceCache=cache)
    assert presence_of(b, alice_bare, address) == (True, "away")
    # mod_socache_redis writes keys as hex after the cache's name
    keys = redis.cli("--scan")
    assert address.encode().hex() in keys, keys
    assert postgres.psql("SELECT contact FROM mx_presence WHERE "
                         "address = '%s'" % address) == []
    for show in ("dnd", "chat"):
        alice.set_presence(show=show)
        util.wait_for(lambda: presence_of(a, alice_bare, address)
                      == (True, show), 20, 0.2, "A to see alice %s" % show)
        assert presence_of(b, alice_bare, address) == (True, show)
    alice.disconnect()
    util.wait_for(lambda: not presence_of(b, alice_bare, address)[0], 20,
                  0.2, "B to see alice go")
    assert presence_of(a, alice_bare, address) == (False, "")


def test_database_down_then_back(host, ejabberd, client):
    """A database that goes away is logged, the component keeps running
    and answers (unavailable, no subscribers); once it is back, what was
    stored before is there again."""
    pg = stores.PostgresServer()
    try:
        pg.start()
        address = "%s@%s" % (fresh("outage"), ejabberd.component_domain)
        h = host(pg.dbd_conf())
        alice = client("alice")
        subscribe_to(alice, address)
        assert pg.stop()
        since = h.log_size()
        code, answer = api(h, "send_presence", jid="subscribers",
                           from_jid=address, status="into the void")
        assert answer["statuses"] == ["NO_ERROR"], answer
        assert presence_of(h, ejabberd.jid("alice"), address) == (False, "")
        h.wait_log(r"XMPP035[34]: .*shared store", 20, since=since)
        assert status(h).get("XMPPApp1State") == "connected"
        pg.restart()
        text = "back %d" % time.time_ns()
        n = len(alice.presences)

        # the first send after the restart reaches her: a kept connection
        # that finds the server gone (and its prepared statements with
        # it) is connected and prepared again, and the statement retried
        code, answer = api(h, "send_presence", jid="subscribers",
                           from_jid=address, status=text)
        assert answer["statuses"] == ["NO_ERROR"], answer
        status_from(alice, address, text, n)
    finally:
        assert pg.stop()
        pg.cleanup()
