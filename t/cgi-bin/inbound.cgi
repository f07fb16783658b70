#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Dump CGI for mod_xmpp's inbound tests.

Writes what it received (its whole environment, the raw request body, its
PID and the time) as one JSON file into $MX_DUMP_DIR (set with SetEnv),
then answers according to XMPP_COMMAND, so that a test drives the answer
from the message it sends:

  /status N [...]   answer status N with a text/plain body (none for 204)
  /empty [...]      200, text/plain, empty body
  /stanza [...]     200, application/xmpp+xml: a chat message to the sender
                    with a <mx xmlns='urn:mod_xmpp:test'> child
  /sleep N [...]    sleep N seconds, then a text/plain reply
  /score NAME       text/plain "NAME has 42 points"
  /bad KIND [...]   200, an answer that cannot be sent as it is: KIND utf8
                    (text/plain, "caf\xc3\xa9" reversed bytewise), ctrl
                    (text/plain with U+0007), two (application/xmpp+xml,
                    two messages), malformed (application/xmpp+xml, an
                    unclosed element)
  anything else     a message (or error) gets "heard: <body>" (text/plain);
                    presence and subscription posts get 204
"""
import base64
import json
import os
import sys
import time
from xml.sax.saxutils import escape, quoteattr


def dump(body):
    directory = os.environ.get("MX_DUMP_DIR")
    if not directory:
        return
    record = {
        "time": time.time(),
        "pid": os.getpid(),
        "env": dict(os.environ),
        "body_b64": base64.b64encode(body).decode("ascii"),
    }
    name = "%.6f-%d" % (time.time(), os.getpid())
    tmp = os.path.join(directory, "." + name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(record, f)
    os.rename(tmp, os.path.join(directory, name + ".json"))


def answer(status=200, ctype="text/plain; charset=UTF-8", text=""):
    out = sys.stdout.buffer
    out.write(b"Status: %d\r\n" % status)
    if ctype:
        out.write(b"Content-Type: " + ctype.encode() + b"\r\n")
    out.write(b"\r\n" + (text if isinstance(text, bytes)
                          else text.encode("utf-8")))
    out.flush()


def bad_answer(kind, arg):
    """Answers that would make the server close the stream if sent."""
    to = quoteattr(os.environ.get("XMPP_FROM", ""))
    if kind == "utf8":
        answer(200, text=arg.encode() + " café".encode()[::-1])
    elif kind == "ctrl":
        answer(200, text="bell \x07 " + arg)
    elif kind == "two":
        one = "<message to=%s type='chat'><body>%s</body></message>" % (
            to, escape(arg))
        answer(200, "application/xmpp+xml", one + one)
    elif kind == "malformed":
        answer(200, "application/xmpp+xml",
               "<message to=%s><body>%s</message>" % (to, escape(arg)))


def main():
    length = int(os.environ.get("CONTENT_LENGTH") or 0)
    body = sys.stdin.buffer.read(length) if length else b""
    dump(body)

    kind = os.environ.get("XMPP_KIND")
    command = os.environ.get("XMPP_COMMAND")
    arg = os.environ.get("XMPP_ARG", "")
    words = arg.split()
    if command == "status":
        status = int(words[0])
        if status == 204:
            answer(204, None)
        else:
            answer(status, text="status %d for %s" % (status, arg))
    elif command == "empty":
        answer(200, text="")
    elif command == "stanza":
        sender = os.environ.get("XMPP_FROM", "")
        me = os.environ.get("XMPP_TO", "")
        answer(200, "application/xmpp+xml",
               "<message to=%s from=%s type='chat'><body>stanza answer: %s"
               "</body><mx xmlns='urn:mod_xmpp:test' arg=%s>custom child</mx>"
               "</message>" % (quoteattr(sender), quoteattr(me), escape(arg),
                               quoteattr(arg)))
    elif command == "sleep":
        time.sleep(float(words[0]))
        answer(200, text="slept: %s" % arg)
    elif command == "score":
        answer(200, text="%s has 42 points" % arg)
    elif command == "bad":
        bad_answer(words[0], arg)
    elif kind in ("message", "error"):
        answer(200, text="heard: %s" % arg)
    else:
        answer(204, None)


main()
