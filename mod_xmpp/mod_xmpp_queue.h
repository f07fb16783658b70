/* SPDX-License-Identifier: Apache-2.0 */
/* mod_xmpp_queue: the holding child's queue thread. It owns the app's
 * journal (mx_journal): it takes items from senders over the Unix socket
 * (mx_qclient) and from the spool directory, appends them, makes each
 * batch durable with one fdatasync (group commit) and then answers; it
 * keeps the acknowledged bound on disk, removes finished segments, counts
 * the queue and raises the "full" flag. All file work is here, none on the
 * XMPP loop, which only reads the journal. */
#ifndef MOD_XMPP_QUEUE_H
#define MOD_XMPP_QUEUE_H

#include "mod_xmpp_app.h"
#include "mx_journal.h"
#include "mx_item.h"

typedef struct mx_qserver mx_qserver;

/* Open the journal (recovering it), move the spool's items into it,
 * listen on the socket and start the thread. NULL on failure (logged). */
mx_qserver *mx_qserver_start(mx_app *app);

/* Stop taking items (senders fall back to the spool), answer what was
 * taken, record the acknowledged bound and join the thread. */
void mx_qserver_stop(mx_qserver *q);

/* From a thread of this process (the answers to inbound stanzas): queue
 * a stanza without waiting. The queue thread appends it with the next
 * batch; it is not refused by XMPPQueueLimit and not synced on its own.
 * Returns 0 and sets *ticket (when not NULL), or -1 when it cannot be
 * taken (out of memory, too many waiting, stopping): the caller logs it
 * or uses mx_queue_submit. */
int mx_qserver_put_local(mx_qserver *q, mx_item_kind kind,
                         const char *stanza, size_t stanza_len,
                         apr_uint64_t *ticket);

/* Items of mx_qserver_put_local whose ticket is at most this are in the
 * journal (where a stop or a kill -9 of the child leaves them). */
apr_uint64_t mx_qserver_stored(mx_qserver *q);

/* Records below this number are in the journal, the reader may send
 * them: synced, except answers from mx_qserver_put_local not yet followed
 * by a sender's batch. */
mx_seq mx_qserver_committed(mx_qserver *q);

/* Readable when records were committed since the last clear: the XMPP
 * loop waits on it next to its socket, so a new item goes out at once. */
int mx_qserver_ready_fd(mx_qserver *q);
void mx_qserver_ready_clear(mx_qserver *q);

/* Every record up to seq has been acknowledged by the server (from the
 * XMPP loop; the queue thread writes it down and cleans up). */
void mx_qserver_set_acked(mx_qserver *q, mx_seq seq);

/* The acknowledged bound as last set (where sending starts again). */
mx_seq mx_qserver_acked(mx_qserver *q);

#endif
