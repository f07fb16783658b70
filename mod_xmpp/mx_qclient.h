/* SPDX-License-Identifier: Apache-2.0 */
/* mx_qclient: how senders hand an item to the outbound queue.
 *
 * The child holding the app's connection listens on the Unix socket
 * D/queue.sock (D the app's spool directory, mode 0700, so only httpd's
 * User and root get in). It appends what it receives to its journal
 * (mx_journal), makes a batch durable with one fdatasync and only then
 * answers. When no child listens (none holds the connection yet, or it is
 * restarting), the item is written to the spool directory instead
 * (mx_queue_put), fsynced; the holder moves such items into its journal,
 * before any item that reaches it later over the socket, so that order is
 * kept. Either way the answer means the item is on disk.
 *
 * Wire protocol, one request after another on a connection:
 *   request  "PUT <len>\n" then len bytes: the item (mx_queue_item_make)
 *   answer   "OK <number>\n"          durable, with its journal number
 *            "FULL <count> <limit>\n" refused: the queue is full
 *            "ERR <reason>\n"         refused: the holder could not store
 *                                     it (the sender tries the spool), or
 *                                     the request is not one (the holder
 *                                     closes the connection)
 *            "BAD <reason>\n"         refused for good: the item breaks
 *                                     mx_queue_item_check's rules (too
 *                                     large, a NUL byte, not a valid
 *                                     stanza, a 'from' that is not the
 *                                     app's); the spool would refuse it
 *                                     too, so the sender does not try it
 * POSIX only; no httpd, no APR. Thread-safe: each thread keeps its own
 * connection open between calls (closed on exec). */
#ifndef MX_QCLIENT_H
#define MX_QCLIENT_H

#include <stddef.h>

#include "mx_full.h"
#include "mx_item.h"

#define MX_QSOCK_NAME "queue.sock"
#define MX_QREQ_MAX_HEADER 32 /* "PUT <len>\n" fits in this */

/* The socket's path into buf. Returns 0, or -1 when it does not fit in a
 * Unix socket address (then only the spool is used). */
int mx_qsock_path(const char *dir, char *buf, size_t size);

/* Queue an item of the given kind: over the socket when a holder
 * listens, else into the spool (fsynced when sync). Returns 0 when it is
 * durably queued; MX_QUEUE_FULL when refused for a full queue; -1 on any
 * other failure. err (may be NULL) gets a one-line reason on failure. */
int mx_queue_submit(const char *dir, mx_item_kind kind, const char *stanza,
                    size_t stanza_len, int sync, char *err, size_t errsize);

/* ---- protocol, shared with the holder ---- */

/* A request at the start of buf (len bytes available): 1 when complete
 * (the item is buf[*off .. *off + *item_len)), 0 when more bytes are
 * needed, -1 when it is not a request, MX_QREQ_TOO_LARGE when it says its
 * item is larger than MX_QUEUE_ITEM_MAX. */
#define MX_QREQ_TOO_LARGE (-2)
int mx_qreq_parse(const char *buf, size_t len, size_t *off,
                  size_t *item_len);

#endif
