# SPDX-License-Identifier: Apache-2.0
"""Read an app's outbound queue as it is on disk (see mod_xmpp/mx_journal.h,
mx_spool.h and mx_item.h): the holder's journal, from the first record not
yet acknowledged, then the items waiting in the spool (new/)."""
import os
import struct
import zlib

HEADER = 24


def _acked(jdir):
    try:
        with open(os.path.join(jdir, "acked")) as f:
            return int(f.read().strip() or 0)
    except FileNotFoundError:
        return 0


def journal_records(app_dir):
    """[(number, payload bytes)] of every record in the journal, in order;
    a torn or damaged record ends its segment."""
    jdir = os.path.join(app_dir, "journal")
    try:
        names = sorted(n for n in os.listdir(jdir) if n.endswith(".seg"))
    except FileNotFoundError:
        return []
    out = []
    for name in names:
        seq = int(name[:20])
        try:
            with open(os.path.join(jdir, name), "rb") as f:
                data = f.read()
        except FileNotFoundError:
            continue  # removed meanwhile: acknowledged
        off = 0
        while off + HEADER <= len(data):
            magic, length, number, crc = struct.unpack_from("<4sIQI", data,
                                                            off)
            payload = data[off + HEADER:off + HEADER + length]
            if (magic != b"MXJ1" or number != seq or len(payload) != length
                    or zlib.crc32(payload, zlib.crc32(
                        data[off + 8:off + 16])) != crc):
                break
            out.append((number, payload))
            off += HEADER + length
            seq += 1
    return out


def pending(app_dir):
    """Payloads ("MX1 <kind>\\n<stanza>") of everything queued and not yet
    acknowledged by the server: journal first, then the spool."""
    acked = _acked(os.path.join(app_dir, "journal"))
    items = [p for n, p in journal_records(app_dir) if n > acked]
    new = os.path.join(app_dir, "new")
    try:
        names = sorted(os.listdir(new))
    except FileNotFoundError:
        names = []
    for name in names:
        try:
            with open(os.path.join(new, name), "rb") as f:
                items.append(f.read())
        except FileNotFoundError:
            continue
    return items
