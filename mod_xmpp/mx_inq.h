/* SPDX-License-Identifier: Apache-2.0 */
/* mx_inq: which kept inbound stanza runs next. A window of journal
 * records in journal order; a record may run when no earlier record of
 * the same sender (bare JID) is still in the window undone, it is not
 * running, and its retry time has come. Records finish in any order; the
 * bound is the highest number up to which all are done (what the journal
 * may forget). Plain logic: the caller holds its own lock.
 * Portable: no httpd, no APR. */
#ifndef MX_INQ_H
#define MX_INQ_H

#include <stddef.h>

typedef unsigned long long mx_inq_seq;
typedef struct mx_inq mx_inq;

/* A window of at most `window` records (memory stays bounded whatever
 * the backlog on disk). NULL without memory. */
mx_inq *mx_inq_new(size_t window);
/* Frees the window; items still in it are the caller's (see mx_inq_item) */
void mx_inq_free(mx_inq *q);

/* 1 when another record fits */
int mx_inq_room(const mx_inq *q);

/* Add record seq (above every one added before) of sender key, with the
 * caller's item. Returns 0, or -1 (no room, or no memory). */
int mx_inq_add(mx_inq *q, mx_inq_seq seq, const char *key, void *item);

/* The first record that may run at time now (milliseconds on any
 * monotonic clock): marked running, its item returned, *seq set. NULL
 * when none; then *wake (when not NULL) is the earliest retry time of a
 * waiting record, or 0 when none waits for a time. */
void *mx_inq_pick(mx_inq *q, long long now, mx_inq_seq *seq,
                  long long *wake);

/* The running record seq is done; returns 1 when it was in the window. */
int mx_inq_done(mx_inq *q, mx_inq_seq seq);

/* The running record seq runs again, not before time at; its sender's
 * later records keep waiting. Returns 1 when it was in the window. */
int mx_inq_retry(mx_inq *q, mx_inq_seq seq, long long at);

/* Forget the done records at the start of the window; returns the
 * number of the last of them, or 0 when there were none. */
mx_inq_seq mx_inq_advance(mx_inq *q);

/* Records in the window: all, and running */
size_t mx_inq_count(const mx_inq *q);
size_t mx_inq_running(const mx_inq *q);

#endif
