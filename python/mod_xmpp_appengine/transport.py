# SPDX-License-Identifier: Apache-2.0
"""How the xmpp module's calls reach mod_xmpp.

- QueueTransport, when XMPP_QUEUE is set (mod_xmpp sets it, with XMPP_JID
  and XMPP_RESOURCE, for every request of the app's server: CGI variables,
  or the WSGI environ under mod_wsgi): the stanza is built and checked as
  xmpp-send does and handed to the holder over <queue>/queue.sock, one
  connection kept per thread, no process per send.  When no holder
  listens the send goes through the xmpp-send command, which writes the
  spool (rare: only while httpd starts or restarts its holder).
- HttpTransport, when XMPP_API_URL (or configure(api_url=...)) names an
  xmpp-api location: the HTTP API, which does every check itself.

The configured URL wins over the queue when both are there."""

import json
import os
import re
import socket
import stringprep
import subprocess
import threading
import unicodedata
import urllib.error
import urllib.parse
import urllib.request
import xml.parsers.expat

NO_ERROR, INVALID_JID, OTHER_ERROR = 0, 1, 2
_STATUS = {"NO_ERROR": NO_ERROR, "INVALID_JID": INVALID_JID,
           "OTHER_ERROR": OTHER_ERROR}

_config = {"api_url": None, "xmpp_send": None, "timeout": 30.0}
_local = threading.local()


def configure(api_url=None, xmpp_send=None, timeout=None):
    """Set the HTTP API's URL (instead of XMPP_API_URL) and the path of
    xmpp-send (instead of XMPP_SEND or the PATH)."""
    if api_url is not None:
        _config["api_url"] = api_url or None
    if xmpp_send is not None:
        _config["xmpp_send"] = xmpp_send or None
    if timeout is not None:
        _config["timeout"] = timeout


def _env(name):
    from mod_xmpp_appengine.webapp import current_environ
    environ = current_environ()
    if environ and environ.get(name):
        return environ[name]
    return os.environ.get(name) or None


def get():
    url = _config["api_url"] or _env("XMPP_API_URL")
    if url:
        return HttpTransport(url)
    queue = _env("XMPP_QUEUE")
    if queue:
        return QueueTransport(queue, _env("XMPP_JID"),
                              _env("XMPP_RESOURCE") or "bot")
    from mod_xmpp_appengine import xmpp
    raise xmpp.Error("no way to reach mod_xmpp: XMPP_QUEUE is not set (not "
                     "a request of an XMPPEngine server) and no "
                     "XMPP_API_URL is configured")


def _raise(name, message):
    from mod_xmpp_appengine import xmpp
    raise xmpp._error(name, message)


# ---------------------------------------------------------------- HTTP

class HttpTransport(object):
    def __init__(self, url):
        self.url = url if url.endswith("/") else url + "/"

    def _call(self, op, params, method="POST"):
        data = urllib.parse.urlencode(
            [(k, v) for k, v in params if v is not None]).encode("utf-8")
        if method == "GET":
            req = urllib.request.Request(self.url + op + "?" + data.decode())
        else:
            req = urllib.request.Request(
                self.url + op, data=data, method="POST",
                headers={"Content-Type":
                         "application/x-www-form-urlencoded"})
        try:
            with urllib.request.urlopen(req, timeout=_config["timeout"]) as f:
                return json.loads(f.read().decode("utf-8"))
        except urllib.error.HTTPError as e:
            try:
                answer = json.loads(e.read().decode("utf-8"))
            except ValueError:
                answer = {}
            _raise(answer.get("error", "Error"),
                   answer.get("message", "HTTP %d from %s" % (e.code,
                                                              self.url + op)))
        except (OSError, ValueError) as e:
            _raise("Error", "the xmpp-api at %s: %s" % (self.url, e))

    def _statuses(self, answer):
        return [_STATUS.get(s, OTHER_ERROR) for s in answer["statuses"]]

    def send_message(self, jids, body, from_jid, message_type, raw_xml):
        try:
            answer = self._call("send_message", [("jid", j) for j in jids] + [
                ("body", body), ("from_jid", from_jid),
                ("message_type", message_type),
                ("raw_xml", "true" if raw_xml else None)])
        except Exception as e:
            if type(e).__name__ == "InvalidJidError" and not from_jid:
                return [INVALID_JID] * len(jids)
            raise
        return self._statuses(answer)

    def send_invite(self, jid, from_jid):
        return self._statuses(self._call(
            "send_invite", [("jid", jid), ("from_jid", from_jid)]))[0]

    def send_presence(self, jid, status, from_jid, presence_type,
                      presence_show):
        return self._statuses(self._call("send_presence", [
            ("jid", jid), ("status", status), ("from_jid", from_jid),
            ("presence_type", presence_type or "available"),
            ("presence_show", presence_show or None)]))[0]

    def get_presence(self, jids, from_jid):
        try:
            answer = self._call("get_presence", [("jid", j) for j in jids]
                                + [("from_jid", from_jid)], method="GET")
        except Exception as e:
            # one invalid JID alone is answered 400 InvalidJidError
            if type(e).__name__ == "InvalidJidError" and len(jids) == 1 \
                    and not from_jid:
                return [(False, "", False)]
            raise
        if "presences" in answer:
            return [(bool(p["available"]), p.get("show") or "",
                     bool(p.get("valid", True))) for p in answer["presences"]]
        return [(bool(answer["available"]), answer.get("show") or "", True)]


# --------------------------------------------------------------- queue

# the rules of mod_xmpp's mx_jid.c, so that a JID the module would refuse
# is INVALID_JID here too (the holder checks again with libidn)
_LOCAL_FORBIDDEN = set("\"&'/:<>@")
_PART_MAX = 1023
_LABEL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$")


def _prohibited(ch):
    return (stringprep.in_table_c12(ch) or stringprep.in_table_c21_c22(ch)
            or stringprep.in_table_c3(ch) or stringprep.in_table_c4(ch)
            or stringprep.in_table_c5(ch) or stringprep.in_table_c6(ch)
            or stringprep.in_table_c7(ch) or stringprep.in_table_c8(ch)
            or stringprep.in_table_c9(ch))


def _valid_domain(d):
    if not d or len(d.encode("utf-8")) > _PART_MAX:
        return False
    if d.startswith("[") and d.endswith("]"):
        try:
            socket.inet_pton(socket.AF_INET6, d[1:-1])
            return True
        except OSError:
            return False
    if d.endswith("."):
        d = d[:-1]
    try:
        ascii_d = d.encode("idna").decode("ascii")
    except UnicodeError:
        return False
    labels = ascii_d.split(".")
    return all(0 < len(lb) <= 63 and _LABEL.match(lb) for lb in labels)


def valid_jid(jid):
    if not isinstance(jid, str) or not jid:
        return False
    try:
        jid.encode("utf-8")
    except UnicodeError:
        return False
    if any(ord(c) < 0x20 or ord(c) == 0x7f for c in jid):
        return False
    bare, slash, resource = jid.partition("/")
    local, at, domain = bare.rpartition("@")
    if slash and (not resource or len(resource.encode()) > _PART_MAX
                  or any(_prohibited(c) and c != " " for c in resource)):
        return False
    if at:
        if not local or len(local.encode()) > _PART_MAX:
            return False
        if any(c in _LOCAL_FORBIDDEN or c.isspace() or _prohibited(c)
               or stringprep.in_table_c11(c) for c in local):
            return False
    if any(c.isspace() for c in domain):
        return False
    return _valid_domain(domain)


def _bare_key(jid):
    bare = jid.split("/", 1)[0]
    local, at, domain = bare.rpartition("@")
    return (unicodedata.normalize("NFKC", local).lower(),
            domain.rstrip(".").lower())


def _xml_chars_ok(text):
    for c in text:
        o = ord(c)
        if (o < 0x20 and c not in "\t\n\r") or 0xD800 <= o <= 0xDFFF \
                or o in (0xFFFE, 0xFFFF):
            return False
    return True


def _well_formed(fragment):
    p = xml.parsers.expat.ParserCreate()
    try:
        p.Parse('<message xmlns="jabber:client">' + fragment + "</message>",
                True)
        return True
    except xml.parsers.expat.ExpatError:
        return False


def _esc(s, attr):
    s = (s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
         .replace('"', "&quot;").replace("'", "&apos;")
         .replace("\r", "&#13;"))
    if attr:
        s = s.replace("\n", "&#10;").replace("\t", "&#9;")
    return s


def _new_id():
    return "mx-" + os.urandom(16).hex()


def _open(name, attrs):
    out = ["<", name, ' xmlns="jabber:client"']
    for k, v in attrs:
        if v is not None:
            out += [" ", k, '="', _esc(v, True), '"']
    return "".join(out)


def message_stanza(frm, to, mtype, body, raw_xml, sid):
    inner = body if raw_xml else "<body>" + _esc(body, False) + "</body>"
    return (_open("message", [("from", frm), ("to", to),
                              ("type", mtype or None), ("id", sid)])
            + ">" + inner + '<origin-id xmlns="urn:xmpp:sid:0" id="'
            + sid + '"/></message>')


def presence_stanza(frm, to, ptype, show, status, sid):
    if ptype in ("", "available"):
        ptype = None
    if ptype in ("unavailable", "probe"):
        show = None
    if ptype == "probe":
        status = None
    head = _open("presence", [("from", frm), ("to", to), ("type", ptype),
                              ("id", sid)])
    if not show and not status:
        return head + "/>"
    return (head + ">" + ("<show>%s</show>" % _esc(show, False) if show
                          else "")
            + ("<status>%s</status>" % _esc(status, False) if status else "")
            + "</presence>")


ITEM_MAX = 16 * 1024 * 1024


class _Refused(Exception):
    pass


class QueueTransport(object):
    def __init__(self, queue, app_jid, resource):
        self.queue = queue
        self.app_jid = app_jid or ""
        self.resource = resource

    # from_jid as mod_xmpp's from_of: the app's own addresses only
    def _from(self, from_jid):
        component = "@" not in self.app_jid
        if not from_jid:
            return "%s/%s" % (self.app_jid, self.resource)
        if not valid_jid(from_jid):
            _raise("InvalidJidError", "'%s' is not a valid JID" % from_jid)
        if component:
            domain = from_jid.split("/", 1)[0].rpartition("@")[2]
            if domain.lower() != self.app_jid.lower():
                _raise("InvalidJidError", "'%s' is not one of the app's "
                       "own addresses" % from_jid)
            return from_jid if "/" in from_jid else \
                "%s/%s" % (from_jid, self.resource)
        res = from_jid.partition("/")[2]
        if _bare_key(from_jid) != _bare_key(self.app_jid) or \
                ("/" in from_jid and res != self.resource):
            _raise("InvalidJidError", "'%s' is not one of the app's own "
                   "addresses (%s or %s/%s)" % (from_jid, self.app_jid,
                                                self.app_jid, self.resource))
        return from_jid

    def _put(self, kind, stanza):
        item = ("MX1 %s\n" % kind).encode() + stanza.encode("utf-8")
        if len(item) > ITEM_MAX:
            return OTHER_ERROR
        path = os.path.join(self.queue, "queue.sock")
        answer = None
        # a kept connection the holder closed meanwhile fails at once: one
        # more try on a new one, as mx_qclient does
        for attempt in (0, 1):
            conn = getattr(_local, "conn", None)
            if conn is not None and getattr(_local, "path", None) != path:
                self._drop()
                conn = None
            fresh = conn is None
            try:
                if fresh:
                    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    _local.conn, _local.path, _local.buf = conn, path, b""
                    conn.settimeout(_config["timeout"])
                    conn.connect(path)
                conn.sendall(b"PUT %d\n" % len(item) + item)
                answer = self._answer(conn)
                break
            except OSError:
                self._drop()
                if fresh:
                    return None  # no holder listens: the spool, via xmpp-send
        if answer is None:
            return None
        if answer.startswith("OK "):
            return NO_ERROR
        if answer.startswith("FULL ") or answer.startswith("BAD "):
            return OTHER_ERROR
        return None  # ERR: perhaps the spool takes it

    def _answer(self, conn):
        buf = _local.buf
        while b"\n" not in buf:
            chunk = conn.recv(256)
            if not chunk:
                raise OSError("the holder closed the connection")
            buf += chunk
        line, _, _local.buf = buf.partition(b"\n")
        return line.decode("utf-8", "replace")

    def _drop(self):
        conn = getattr(_local, "conn", None)
        if conn is not None:
            conn.close()
        _local.conn = None

    # xmpp-send: only when no holder listens, and for get_presence, which
    # reads the contacts' presence files
    def _xmpp_send(self, args, stdin=None):
        exe = _config["xmpp_send"] or _env("XMPP_SEND") or "xmpp-send"
        env = dict(os.environ, XMPP_QUEUE=self.queue, XMPP_JID=self.app_jid,
                   XMPP_RESOURCE=self.resource)
        try:
            p = subprocess.run([exe] + args, input=stdin,
                               capture_output=True, env=env,
                               timeout=_config["timeout"])
        except OSError as e:
            _raise("Error", "cannot run %s: %s" % (exe, e))
        return p.returncode, p.stdout.decode("utf-8", "replace"), \
            p.stderr.decode("utf-8", "replace")

    def _status_via_command(self, args, stdin=None):
        rc, out, err = self._xmpp_send(args, stdin)
        statuses = [_STATUS.get(line.rsplit(" ", 1)[-1], OTHER_ERROR)
                    for line in out.splitlines() if line]
        if rc == 2 and not statuses:
            return None
        return statuses

    def send_message(self, jids, body, from_jid, message_type, raw_xml):
        if raw_xml and not _well_formed(body):
            _raise("InvalidXmlError", "the raw XML is not well-formed")
        if not _xml_chars_ok(body):
            _raise("InvalidXmlError", "the body has characters XML forbids")
        frm = self._from(from_jid)
        statuses = [NO_ERROR if valid_jid(j) else INVALID_JID for j in jids]
        if INVALID_JID in statuses and all(s == INVALID_JID
                                           for s in statuses):
            return statuses
        for i, jid in enumerate(jids):
            if statuses[i] != NO_ERROR:
                continue
            sid = _new_id()
            st = self._put("stanza", message_stanza(
                frm, jid, message_type, body, raw_xml, sid))
            if st is None:
                args = ["message"] + (["--from", from_jid] if from_jid else [])
                args += ["--type", message_type] if message_type else []
                args += (["--raw-xml"] if raw_xml else []) + [jid]
                got = self._status_via_command(args, body.encode("utf-8"))
                st = got[0] if got else OTHER_ERROR
            statuses[i] = st
        return statuses

    def send_invite(self, jid, from_jid):
        frm = self._from(from_jid)
        if not valid_jid(jid):
            return INVALID_JID
        sid = _new_id()
        st = self._put("stanza", _open("presence", [
            ("from", frm), ("to", jid), ("type", "subscribe"),
            ("id", sid)]) + "/>")
        if st is None:
            got = self._status_via_command(
                ["invite"] + (["--from", from_jid] if from_jid else [])
                + [jid])
            st = got[0] if got else OTHER_ERROR
        return st

    def send_presence(self, jid, status, from_jid, presence_type,
                      presence_show):
        if status and not _xml_chars_ok(status):
            _raise("InvalidStatusError", "the status has characters XML "
                   "forbids")
        frm = self._from(from_jid)
        everyone = jid == "subscribers"
        if not everyone and not valid_jid(jid):
            return INVALID_JID
        st = self._put("subscribers" if everyone else "stanza",
                       presence_stanza(frm, None if everyone else jid,
                                       presence_type, presence_show, status,
                                       _new_id()))
        if st is None:
            args = ["presence", "--type", presence_type or "available"]
            args += ["--show", presence_show] if presence_show else []
            args += ["--status", status] if status else []
            args += ["--from", from_jid] if from_jid else []
            got = self._status_via_command(args + [jid])
            st = got[0] if got else OTHER_ERROR
        return st

    def get_presence(self, jids, from_jid):
        if from_jid:
            self._from(from_jid)
        valid = [valid_jid(j) for j in jids]
        ask = [j for j, v in zip(jids, valid) if v]
        seen = {}
        if ask:
            rc, out, err = self._xmpp_send(
                ["get-presence"] + (["--from", from_jid] if from_jid else [])
                + ask)
            if rc == 2:
                _raise("Error", err.strip() or "xmpp-send get-presence failed")
            for line, jid in zip(out.splitlines(), ask):
                words = line[len(jid):].split()
                seen[jid] = (bool(words) and words[0] == "available",
                             words[1] if len(words) > 1 else "",
                             not words or words[0] != "INVALID_JID")
        return [seen.get(j, (False, "", False)) if v else (False, "", False)
                for j, v in zip(jids, valid)]
