# SPDX-License-Identifier: Apache-2.0
"""A real XMPP client (slixmpp) for the other side of the tests.

slixmpp is asyncio-based; each XmppClient runs it on its own event loop in
its own thread, so that tests stay plain synchronous code.  Everything the
client receives is recorded (messages, presences, with time.monotonic()
timestamps) and every wait is bounded.
"""

import asyncio
import logging
import threading
import time
from pathlib import Path

import slixmpp
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import StanzaPath

from .util import LOOPBACK

DELAY_NS = "{urn:xmpp:delay}delay"
STANZAS_NS = "urn:ietf:params:xml:ns:xmpp-stanzas"

log = logging.getLogger("harness.xmpp")


class XmppError(Exception):
    """The client could not log in, or an operation failed."""


def bare(jid):
    """The bare part of a JID string."""
    return str(jid).split("/", 1)[0]


class _PinnedClient(slixmpp.ClientXMPP):
    """A ClientXMPP that connects to one fixed address.

    It never asks DNS, yet still checks the server's certificate against
    the JID's domain (the TLS server name is the domain, not the IP).
    """

    def __init__(self, jid, password, address):
        super().__init__(jid, password)
        self._pinned = address
        self.default_domain = self.boundjid.domain

    async def get_dns_records(self, domain, port=None):
        return [(self.boundjid.domain, self._pinned[0], self._pinned[1])]


class XmppClient:
    """One logged-in XMPP client on its own thread.

    Recorded data (read under `lock`, or use the wait_* helpers):
      messages   list of dicts: from, to, body, type, id, delayed, error,
                 xml, time
      presences  list of dicts: from, to, type (available, unavailable,
                 subscribe, ...), show, status, priority, xml, time
      events     list of (time, name) for stream events (session_start,
                 disconnected, ...)
    """

    def __init__(self, jid, password, port, ca_file, host=LOOPBACK,
                 auto_authorize=True, auto_subscribe=False,
                 initial_presence=True, timeout=15.0):
        self.jid = jid
        self.port = port
        self.lock = threading.Lock()
        self._changed = threading.Condition(self.lock)
        self.messages = []
        self.presences = []
        self.events = []
        # bare JID -> {full JID -> latest available presence record}
        self._available = {}
        self._ready = threading.Event()
        self._ended = threading.Event()
        self._failure = None
        self._connected = False
        self.loop = None
        self.xmpp = None

        self._thread = threading.Thread(
            target=self._run,
            args=(jid, password, (host, port), ca_file, auto_authorize,
                  auto_subscribe, initial_presence),
            name="xmpp-%s" % jid, daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout) or self._failure:
            reason = self._failure or "no session after %.0fs" % timeout
            self._shutdown(2.0)
            raise XmppError("%s could not log in: %s" % (jid, reason))

    # -------------------------------------------------------- client thread

    def _run(self, jid, password, address, ca_file, auto_authorize,
             auto_subscribe, initial_presence):
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self.loop = loop
        try:
            xmpp = _PinnedClient(jid, password, address)
            xmpp.loop = loop
            xmpp.ca_certs = Path(ca_file)
            xmpp.auto_authorize = auto_authorize
            xmpp.auto_subscribe = auto_subscribe
            xmpp.register_plugin("xep_0199", {"keepalive": False})
            self.xmpp = xmpp

            async def session_start(_event):
                try:
                    await xmpp.get_roster(timeout=10)
                except Exception as e:  # the roster is a convenience only
                    log.warning("%s: roster request failed: %s", jid, e)
                if initial_presence:
                    xmpp.send_presence()
                    # Only once the server has processed the initial
                    # presence is this resource available; a message sent
                    # to the bare JID before that would be stored offline.
                    # The server handles a stream's stanzas in order, so
                    # the answer to a ping sent after it proves it.
                    await self._ping(xmpp)
                self._event("session_start")
                self._connected = True
                self._ready.set()

            def failed(reason):
                def handler(event):
                    self._event(reason)
                    if not self._ready.is_set():
                        self._failure = "%s: %s" % (reason, event)
                        self._ready.set()
                        xmpp.abort()
                        loop.call_soon(loop.stop)
                return handler

            def disconnected(event):
                self._connected = False
                self._event("disconnected")
                if not self._ready.is_set():
                    self._failure = self._failure or "disconnected: %s" % (event,)
                    self._ready.set()
                    loop.call_soon(loop.stop)

            xmpp.add_event_handler("session_start", session_start)
            xmpp.add_event_handler("failed_auth", failed("authentication failed"))
            xmpp.add_event_handler("connection_failed", failed("connection failed"))
            xmpp.add_event_handler("stream_error", failed("stream error"))
            xmpp.add_event_handler("disconnected", disconnected)
            xmpp.add_event_handler("presence", self._on_presence)
            xmpp.register_handler(Callback(
                "record messages", StanzaPath("message"), self._on_message))

            xmpp.connect(address)
            loop.run_forever()
        except Exception as e:  # report, do not hang the caller
            self._failure = self._failure or repr(e)
            self._ready.set()
        finally:
            try:
                tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
                for t in tasks:
                    t.cancel()
                if tasks:
                    loop.run_until_complete(
                        asyncio.wait(tasks, timeout=2.0))
            finally:
                loop.close()
                self._ended.set()

    @staticmethod
    async def _ping(xmpp, timeout=10):
        """Round trip to the server (XEP-0199 ping to the domain)."""
        await xmpp.plugin["xep_0199"].ping(jid=xmpp.boundjid.domain,
                                           timeout=timeout)

    def _event(self, name):
        with self._changed:
            self.events.append((time.monotonic(), name))
            self._changed.notify_all()

    def _on_message(self, msg):
        error = None
        if msg["type"] == "error":
            err = msg.xml.find("{jabber:client}error")
            if err is not None:
                conditions = [c.tag.split("}")[1] for c in err
                              if c.tag.startswith("{%s}" % STANZAS_NS)
                              and not c.tag.endswith("}text")]
                error = {"type": err.get("type"),
                         "condition": conditions[0] if conditions else None,
                         "text": msg["error"]["text"]}
        body = msg.xml.find("{jabber:client}body")
        record = {
            "from": str(msg["from"]),
            "to": str(msg["to"]),
            "type": msg.xml.get("type", "normal"),
            "id": msg.xml.get("id"),
            "body": (body.text or "") if body is not None else None,
            "delayed": msg.xml.find(DELAY_NS) is not None,
            "error": error,
            "xml": str(msg),
            "time": time.monotonic(),
        }
        with self._changed:
            self.messages.append(record)
            self._changed.notify_all()

    def _on_presence(self, pres):
        xml = pres.xml
        record = {
            "from": str(pres["from"]),
            "to": str(pres["to"]),
            "type": xml.get("type", "available"),
            "show": pres["show"] or None,
            "status": pres["status"] or None,
            "priority": pres["priority"],
            "xml": str(pres),
            "time": time.monotonic(),
        }
        with self._changed:
            self.presences.append(record)
            resources = self._available.setdefault(bare(record["from"]), {})
            if record["type"] == "available":
                resources[record["from"]] = record
            elif record["type"] in ("unavailable", "error"):
                if "/" in record["from"]:
                    resources.pop(record["from"], None)
                else:
                    resources.clear()
            self._changed.notify_all()

    # ------------------------------------------------------- caller thread

    def _call(self, fn, *args, timeout=10.0, **kwargs):
        """Run `fn(*args, **kwargs)` on the client's loop; return its result."""
        if self.loop is None or self.loop.is_closed() or self._ended.is_set():
            raise XmppError("%s: client is not running" % self.jid)

        async def call():
            result = fn(*args, **kwargs)
            if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
                result = await result
            return result
        future = asyncio.run_coroutine_threadsafe(call(), self.loop)
        return future.result(timeout)

    def _wait(self, check, timeout, what):
        """Wait until `check()` (called under the lock) returns a value."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                value = check()
                if value is not None and value is not False:
                    return value
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("%s: timed out after %.1fs waiting for %s"
                                       % (self.jid, timeout, what))
                self._changed.wait(min(remaining, 0.5))

    @property
    def connected(self):
        return self._connected and not self._ended.is_set()

    @property
    def full_jid(self):
        """The full JID the server bound for this client."""
        return str(self.xmpp.boundjid.full)

    def sync(self, timeout=10.0):
        """Wait until the server has processed everything this client sent
        so far (a ping round trip; stanzas of a stream are handled in
        order)."""
        self._call(self._ping, self.xmpp, timeout=timeout)

    def send_message(self, to, body, mtype="chat", **kw):
        """Send a message (body is sent as text, XML-escaped by slixmpp)."""
        self._call(self.xmpp.send_message, mto=to, mbody=body, mtype=mtype, **kw)

    def send_raw(self, xml):
        """Send raw XML on the stream (for stanzas slixmpp will not build)."""
        self._call(self.xmpp.send_raw, xml)

    def subscribe(self, jid):
        """Ask `jid` for a presence subscription."""
        self._call(self.xmpp.send_presence, pto=jid, ptype="subscribe")

    def unsubscribe(self, jid):
        self._call(self.xmpp.send_presence, pto=jid, ptype="unsubscribe")

    def set_presence(self, show=None, status=None, priority=None, to=None):
        """Broadcast (or, with `to`, direct) an available presence."""
        kw = {}
        if show:
            kw["pshow"] = show
        if status is not None:
            kw["pstatus"] = status
        if priority is not None:
            kw["ppriority"] = priority
        if to:
            kw["pto"] = to
        self._call(self.xmpp.send_presence, **kw)

    def subscription(self, jid):
        """Roster state for `jid`: "none", "to", "from", "both" (or "none"
        when not in the roster)."""
        def get():
            roster = self.xmpp.client_roster
            if bare(jid) not in roster:
                return "none"
            return roster[bare(jid)]["subscription"] or "none"
        return self._call(get)

    def available_resources(self, jid):
        """Full JIDs of `jid`'s resources currently seen as available."""
        with self.lock:
            return sorted(self._available.get(bare(jid), {}))

    def wait_available(self, jid, timeout=10.0):
        """Wait until a resource of `jid` is available; returns that
        presence record (its "from" is the full JID).  With a full JID,
        waits for that very resource."""
        def check():
            resources = self._available.get(bare(jid), {})
            if "/" in jid:
                return resources.get(jid)
            if resources:
                return max(resources.values(), key=lambda r: r["time"])
            return None
        return self._wait(check, timeout, "%s to be available" % jid)

    def wait_unavailable(self, jid, timeout=10.0):
        """Wait until no resource of `jid` (or this full JID) is available."""
        def check():
            resources = self._available.get(bare(jid), {})
            if "/" in jid:
                return jid not in resources
            return not resources
        return self._wait(check, timeout, "%s to be unavailable" % jid)

    def wait_presence(self, predicate=None, timeout=10.0, since=0):
        """The first recorded presence (index >= since) matching
        `predicate(record)`."""
        def check():
            for p in self.presences[since:]:
                if predicate is None or predicate(p):
                    return p
            return None
        return self._wait(check, timeout, "a matching presence")

    def wait_message(self, timeout=10.0, predicate=None, since=0):
        """The first recorded message (index >= since) matching
        `predicate(record)`; by default any message with a body."""
        if predicate is None:
            predicate = lambda m: m["body"] is not None  # noqa: E731

        def check():
            for m in self.messages[since:]:
                if predicate(m):
                    return m
            return None
        return self._wait(check, timeout, "a matching message")

    def wait_messages(self, count, timeout=10.0, predicate=None, since=0):
        """Wait until `count` messages match; returns them."""
        if predicate is None:
            predicate = lambda m: m["body"] is not None  # noqa: E731

        def check():
            found = [m for m in self.messages[since:] if predicate(m)]
            return found if len(found) >= count else None
        return self._wait(check, timeout, "%d matching messages" % count)

    def abort(self):
        """Drop the TCP connection without closing the stream (as a crash
        would)."""
        if self.connected:
            self._call(self.xmpp.abort)
        self._wait(lambda: not self._connected, 10.0, "connection to drop")
        self._shutdown(5.0)

    def disconnect(self, timeout=10.0):
        """Close the stream cleanly and stop the client thread."""
        if self.connected:
            try:
                self._call(self.xmpp.disconnect, wait=min(timeout, 5.0),
                           timeout=timeout)
                self._wait(lambda: not self._connected, timeout, "disconnect")
            except Exception as e:
                log.warning("%s: unclean disconnect: %r", self.jid, e)
        self._shutdown(timeout)

    def _shutdown(self, timeout):
        loop = self.loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(loop.stop)
            except RuntimeError:
                pass  # closed meanwhile
        self._thread.join(timeout)

    def __repr__(self):
        return "<XmppClient %s %s>" % (
            self.jid, "connected" if self.connected else "disconnected")


def clients_of(server):
    """For a fixture: yields make(user, **kw) -> a logged-in XmppClient of
    server (Prosody or ejabberd), and disconnects them all afterwards."""
    clients = []

    def make(user, **kw):
        c = XmppClient(server.jid(user), server.password(user), server.port,
                       server.ca_file, **kw)
        clients.append(c)
        return c
    yield make
    for c in clients:
        c.disconnect()
