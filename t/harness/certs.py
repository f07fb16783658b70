# SPDX-License-Identifier: Apache-2.0
"""A private certificate authority for the test servers, made with the
openssl command-line tool.

The CA certificate is what mod_xmpp (XMPPTLSCAFile) and the test clients
trust; the server certificate is for `localhost` (SAN DNS:localhost and
IP:127.0.0.1) and is signed by the CA.
"""

import os
import subprocess

from .util import write_file

# Validity of the generated certificates, in days.  Tests only need a few
# minutes; a month keeps a long-lived debug directory usable.
DAYS = "30"


def _openssl(*args, cwd):
    result = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True,
                            text=True, timeout=60)
    if result.returncode != 0:
        raise RuntimeError("openssl %s failed:\n%s%s" % (
            args[0], result.stdout, result.stderr))


class PrivateCA:
    """Files of a freshly generated CA and one server certificate.

    Attributes (absolute paths): `ca_cert`, `ca_key`, `cert`, `key`.
    """

    def __init__(self, directory, hostname="localhost", ip="127.0.0.1"):
        self.directory = directory
        self.ca_key = os.path.join(directory, "ca.key")
        self.ca_cert = os.path.join(directory, "ca.crt")
        self.key = os.path.join(directory, "%s.key" % hostname)
        self.cert = os.path.join(directory, "%s.crt" % hostname)
        csr = os.path.join(directory, "%s.csr" % hostname)
        ext = os.path.join(directory, "%s.ext" % hostname)

        # EC keys: fast to generate, accepted by OpenSSL, LuaSec and Python.
        _openssl("req", "-x509", "-new", "-nodes",
                 "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                 "-keyout", self.ca_key, "-out", self.ca_cert, "-days", DAYS,
                 "-subj", "/O=mod_xmpp tests/CN=mod_xmpp test CA",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                 "-addext", "subjectKeyIdentifier=hash",
                 cwd=directory)
        _openssl("req", "-new", "-nodes",
                 "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                 "-keyout", self.key, "-out", csr,
                 "-subj", "/O=mod_xmpp tests/CN=%s" % hostname,
                 cwd=directory)
        write_file(ext, "\n".join([
            "basicConstraints = critical, CA:FALSE",
            "keyUsage = critical, digitalSignature, keyEncipherment",
            "extendedKeyUsage = serverAuth, clientAuth",
            "subjectAltName = DNS:%s, IP:%s" % (hostname, ip),
            "subjectKeyIdentifier = hash",
            "authorityKeyIdentifier = keyid, issuer",
            "",
        ]))
        _openssl("x509", "-req", "-in", csr, "-CA", self.ca_cert,
                 "-CAkey", self.ca_key, "-CAcreateserial", "-out", self.cert,
                 "-days", DAYS, "-extfile", ext,
                 cwd=directory)
        # The CA certificate must be readable by any user (httpd children
        # run as www-data); the keys only by their owner.
        os.chmod(self.ca_cert, 0o644)
        os.chmod(self.cert, 0o644)
        os.chmod(self.ca_key, 0o600)
        os.chmod(self.key, 0o600)
