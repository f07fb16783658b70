# SPDX-License-Identifier: Apache-2.0
"""App Engine's google.appengine.api.xmpp on mod_xmpp.

Arguments are checked here in App Engine's order and with its errors;
the sends go to mod_xmpp (see transport), which checks them again."""

from mod_xmpp_appengine import transport as _transport

NO_ERROR = 0
INVALID_JID = 1
OTHER_ERROR = 2

MESSAGE_TYPE_NONE = ""
MESSAGE_TYPE_CHAT = "chat"
MESSAGE_TYPE_ERROR = "error"
MESSAGE_TYPE_GROUPCHAT = "groupchat"
MESSAGE_TYPE_HEADLINE = "headline"
MESSAGE_TYPE_NORMAL = "normal"

_VALID_MESSAGE_TYPES = frozenset([
    MESSAGE_TYPE_NONE, MESSAGE_TYPE_CHAT, MESSAGE_TYPE_ERROR,
    MESSAGE_TYPE_GROUPCHAT, MESSAGE_TYPE_HEADLINE, MESSAGE_TYPE_NORMAL])

PRESENCE_TYPE_AVAILABLE = ""
PRESENCE_TYPE_UNAVAILABLE = "unavailable"
PRESENCE_TYPE_PROBE = "probe"

_VALID_PRESENCE_TYPES = frozenset([
    PRESENCE_TYPE_AVAILABLE, PRESENCE_TYPE_UNAVAILABLE, PRESENCE_TYPE_PROBE])

PRESENCE_SHOW_NONE = ""
PRESENCE_SHOW_AWAY = "away"
PRESENCE_SHOW_CHAT = "chat"
PRESENCE_SHOW_DND = "dnd"
PRESENCE_SHOW_XA = "xa"

_VALID_PRESENCE_SHOWS = frozenset([
    PRESENCE_SHOW_NONE, PRESENCE_SHOW_AWAY, PRESENCE_SHOW_CHAT,
    PRESENCE_SHOW_DND, PRESENCE_SHOW_XA])

MAX_STATUS_MESSAGE_SIZE = 1024


class Error(Exception):
    """Base class for the errors of this module."""


class InvalidJidError(Error):
    """No valid JID, or a from_jid that is not the app's."""


class InvalidTypeError(Error):
    """A message or presence type that does not exist."""


class InvalidXmlError(Error):
    """raw_xml that is not well-formed XML."""


class NoBodyError(Error):
    """A message with an empty body."""


class InvalidMessageError(Error):
    """An inbound request missing a field; args[0] names it."""


class InvalidShowError(Error):
    """A presence show that does not exist."""


class InvalidStatusError(Error):
    """A status longer than MAX_STATUS_MESSAGE_SIZE."""


class NondefaultModuleError(Error):
    """Kept for App Engine's surface: mod_xmpp has no modules, so it is
    never raised."""


_ERRORS = {
    "InvalidJidError": InvalidJidError,
    "InvalidTypeError": InvalidTypeError,
    "InvalidXmlError": InvalidXmlError,
    "NoBodyError": NoBodyError,
    "InvalidShowError": InvalidShowError,
    "InvalidStatusError": InvalidStatusError,
}


def _error(name, message=""):
    return _ERRORS.get(name, Error)(message)


def _is_str(x):
    return isinstance(x, str)


def send_message(jids, body, from_jid=None, message_type=MESSAGE_TYPE_CHAT,
                 raw_xml=False):
    """Send body to jids. One JID: its status; a list: a status each, in
    order. Raises InvalidJidError when no JID is valid."""
    if not body:
        raise NoBodyError()
    if not jids:
        raise InvalidJidError()
    if message_type not in _VALID_MESSAGE_TYPES:
        raise InvalidTypeError()
    single = _is_str(jids)
    if single:
        jids = [jids]
    jids = list(jids)
    for jid in jids:
        if not jid:
            raise InvalidJidError()
    statuses = _transport.get().send_message(
        [str(j) for j in jids], str(body), from_jid and str(from_jid),
        message_type, bool(raw_xml))
    if all(s == INVALID_JID for s in statuses):
        raise InvalidJidError()
    return statuses[0] if single else statuses


def send_invite(jid, from_jid=None):
    """Ask jid for a presence subscription (a chat invitation)."""
    if not jid:
        raise InvalidJidError()
    if _transport.get().send_invite(str(jid), from_jid and str(from_jid)) \
            == INVALID_JID:
        raise InvalidJidError()


def send_presence(jid, status=None, from_jid=None,
                  presence_type=PRESENCE_TYPE_AVAILABLE,
                  presence_show=PRESENCE_SHOW_NONE):
    """Send a presence to jid (mod_xmpp also takes 'subscribers': every
    subscriber)."""
    if not jid:
        raise InvalidJidError()
    if presence_type not in _VALID_PRESENCE_TYPES:
        raise InvalidTypeError()
    if presence_show not in _VALID_PRESENCE_SHOWS:
        raise InvalidShowError()
    if status and len(status) > MAX_STATUS_MESSAGE_SIZE:
        raise InvalidStatusError()
    if _transport.get().send_presence(
            str(jid), status and str(status), from_jid and str(from_jid),
            presence_type, presence_show) == INVALID_JID:
        raise InvalidJidError()


def get_presence(jid, from_jid=None, get_show=False):
    """One JID: whether it is available, or (available, show) with
    get_show. A list: (available, show, valid) for each JID."""
    if not jid:
        raise InvalidJidError()
    if _is_str(jid):
        available, show, valid = _transport.get().get_presence(
            [str(jid)], from_jid and str(from_jid))[0]
        if not valid:
            raise InvalidJidError()
        return (available, show) if get_show else available
    jids = [str(j) for j in jid]
    for j in jids:
        if not j:
            raise InvalidJidError()
    return _transport.get().get_presence(jids, from_jid and str(from_jid))


class Message(object):
    """An inbound message, from the POST of /_ah/xmpp/message/chat/."""

    def __init__(self, vars):
        try:
            self.__sender = _field(vars["from"])
            self.__to = _field(vars["to"])
            self.__body = _field(vars["body"])
        except KeyError as e:
            raise InvalidMessageError(e.args[0])
        self.__command = None
        self.__arg = None

    @property
    def sender(self):
        return self.__sender

    @property
    def to(self):
        return self.__to

    @property
    def body(self):
        return self.__body

    def __parse_command(self):
        if self.__arg is not None:
            return
        body = self.__body
        if body.startswith("\\"):  # what some clients leave of '/'
            body = "/" + body[1:]
        self.__arg = ""
        if body.startswith("/"):
            parts = body.split(" ", 1)
            self.__command = parts[0][1:]
            if len(parts) > 1:
                self.__arg = parts[1].strip()
        else:
            self.__arg = self.__body.strip()

    @property
    def command(self):
        self.__parse_command()
        return self.__command

    @property
    def arg(self):
        self.__parse_command()
        return self.__arg

    def reply(self, body, message_type=MESSAGE_TYPE_CHAT, raw_xml=False,
              send_message=send_message):
        """Answer the sender (its full JID) from the address written to."""
        return send_message([self.sender], body, from_jid=self.to,
                            message_type=message_type, raw_xml=raw_xml)


def _field(v):
    # cgi.FieldStorage-like values (a part with a filename) and bytes
    v = getattr(v, "value", v)
    if isinstance(v, bytes):
        v = v.decode("utf-8")
    return v
