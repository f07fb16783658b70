# SPDX-License-Identifier: Apache-2.0
"""A longer run of component mode under valgrind (not part of the pytest
suite: it takes minutes).  Checks libstrophe's component crash
work-around (the stream management state a throw-away client connection
allocates, given to each new component connection) across many
reconnects: Prosody is restarted several times while messages flow both
ways; valgrind must report no invalid access and no definitely lost
block.

    sudo /usr/bin/python3 t/valgrind_component.py [rounds]

Every process is started here and stopped here; the valgrind logs are
left in the printed directory.
"""

import json
import os
import re
import stat
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import util  # noqa: E402
from harness.httpd import Httpd  # noqa: E402
from harness.prosody import ProsodyServer  # noqa: E402
from harness.xmpp import XmppClient  # noqa: E402

API = """
<Location /xmpp-api/>
    SetHandler xmpp-api
    Require local
</Location>
ScriptAliasMatch "^/_ah/xmpp/message/chat/$" "%s/cgi-bin/env.cgi"
<Location /_ah/xmpp/>
    Require xmpp-internal
</Location>
""" % os.path.dirname(os.path.abspath(__file__))


def wrapper(logdir):
    path = os.path.join(logdir, "apache2-under-valgrind")
    with open(path, "w") as f:
        f.write("#!/bin/sh\nexec valgrind --quiet --error-limit=no "
                "--leak-check=full --show-leak-kinds=definite "
                "--log-file=%s/vg.%%p.log /usr/sbin/apache2 \"$@\"\n" % logdir)
    os.chmod(path, stat.S_IRWXU)
    return path


def state(h):
    try:
        return h.status().get("XMPPApp1State")
    except Exception:
        return None


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 4
    logdir = util.make_tempdir("mx-valgrind-")
    os.chmod(logdir, 0o777)  # the children run as www-data
    os.environ["APACHE2"] = wrapper(logdir)
    import harness.httpd
    harness.httpd.APACHE2 = os.environ["APACHE2"]
    prosody = ProsodyServer()
    prosody.start()
    h = None
    try:
        h = Httpd(prosody=prosody, mpm="prefork", children=1, extra_conf=API)
        secret = h.write_file("c.secret", prosody.component_secret + "\n",
                              0o600)
        h.write_config(app_conf={
            "XMPPJID": None, "XMPPPasswordFile": None,
            "XMPPComponent": prosody.component_domain,
            "XMPPComponentSecretFile": secret,
            "XMPPServer": "127.0.0.1:%d" % prosody.component_port},
            extra_conf=API)
        h.start(timeout=180)
        domain = prosody.component_domain
        for r in range(rounds):
            util.wait_for(lambda: state(h) == "connected", 120, 0.5,
                          "connected")
            alice = XmppClient(prosody.jid("alice"),
                               prosody.password("alice"), prosody.port,
                               prosody.ca_file)
            for i in range(50):
                resp = h.post("/xmpp-api/send_message", data={
                    "jid": prosody.jid("alice"), "body": "r%d m%d" % (r, i),
                    "from_jid": "a%d@%s" % (i % 5, domain)}, timeout=120)
                assert json.loads(resp.body)["statuses"] == ["NO_ERROR"]
            for i in range(10):
                alice.send_message("t-%d@%s" % (i, domain), "in %d" % i)
            alice.wait_messages(60, 120, lambda m: m["body"] is not None)
            alice.disconnect()
            print("round %d: 60 messages through, restarting Prosody" % r,
                  flush=True)
            prosody.stop()
            time.sleep(2)  # a few failed attempts, each a fresh connection
            prosody.start()
        util.wait_for(lambda: state(h) == "connected", 120, 0.5, "connected")
    finally:
        if h:
            h.stop(timeout=120)
        prosody.stop()
    bad = []
    for name in sorted(os.listdir(logdir)):
        if not name.startswith("vg."):
            continue
        text = open(os.path.join(logdir, name)).read()
        # the holder record of each child is never freed, on purpose
        # (mx_holder_child_init): a thread that overstays its join must
        # not find it freed
        records = [r for r in text.split("\n==%s== \n" % name[3:-4])
                   if "mx_holder_child_init" not in r]
        if re.search(r"Invalid (read|write|free)|uninitialised|"
                     r"definitely lost", "\n".join(records)):
            bad.append(name)
    print("valgrind logs in %s: %s" % (logdir, "problems in " + ", ".join(bad)
                                        if bad else "clean"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
