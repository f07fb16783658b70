/* SPDX-License-Identifier: Apache-2.0 */
/* mx_inq: which kept inbound stanza runs next. A window of journal
 * records in journal order; a record may run when no earlier record of
 * the same sender (bare JID) is still in the window undone, it is not
 * running, and its retry time has come. Records finish in any order; the
 * bound is the highest number up to which all are done (what the journal
 * may forget).
 *
 * Fair: a sender has at most `per_sender` undone records in the window.
 * Its later records are deferred: only their number and the sender's
 * hash are remembered (16 bytes each, at most `deferred_max`), the
 * caller drops the item, and reads the record again from disk when the
 * sender has room (mx_inq_rescan). So one sender whose handler hangs
 * takes `per_sender` places, and the others' records behind its backlog
 * still come in and run. A sender with deferred records has every later
 * record deferred too (its order is kept); the bound never passes the
 * first deferred record.
 *
 * Plain logic: the caller holds its own lock. Portable: no httpd, no
 * APR. */
#ifndef MX_INQ_H
#define MX_INQ_H

#include <stddef.h>

typedef unsigned long long mx_inq_seq;
typedef struct mx_inq mx_inq;

/* A window of at most `window` records, at most `per_sender` of them
 * undone per sender (0: no cap), and at most `deferred_max` deferred
 * records remembered (memory stays bounded whatever the backlog on
 * disk). NULL without memory. */
mx_inq *mx_inq_new(size_t window, size_t per_sender, size_t deferred_max);
/* Frees the window; items still in it are the caller's (see mx_inq_pick) */
void mx_inq_free(mx_inq *q);

/* 1 when the next record in journal order may be read and offered: the
 * window has a free place and a deferral would have room. */
int mx_inq_room(const mx_inq *q);

/* Offer record seq (above every one offered before) of sender key, with
 * the caller's item. Returns 1: added, the item is kept; 0: deferred,
 * the item stays the caller's (free it; mx_inq_rescan brings the record
 * back); -1: no room or no memory (nothing changed). */
int mx_inq_offer(mx_inq *q, mx_inq_seq seq, const char *key, void *item);

/* Whether deferred records should be read again now: 0 when not; else
 * the number of the first record to read again. Then read the journal
 * on from it in order, asking mx_inq_wanted of each record's number:
 * 1: decode it and mx_inq_readd it; 0: skip it; -1: stop reading. */
mx_inq_seq mx_inq_rescan(mx_inq *q);
int mx_inq_wanted(mx_inq *q, mx_inq_seq seq);
/* A wanted record back in the window. Returns 1 (item kept), or 0 when
 * it does not fit (its sender's hash or room changed: the item stays the
 * caller's, the record stays deferred). */
int mx_inq_readd(mx_inq *q, mx_inq_seq seq, const char *key, void *item);
/* The rescan is over (also when stopped early). */
void mx_inq_rescan_end(mx_inq *q);

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

/* The bound, when it moved since the last call (else 0): every record
 * up to it is done. It stops before the first record in the window and
 * the first deferred one, and at the last one offered. A done record
 * leaves the window at once (it never takes the place of another while
 * the bound waits for an earlier one). */
mx_inq_seq mx_inq_advance(mx_inq *q);

/* Records in the window (undone), running, and deferred (not in it) */
typedef struct {
    size_t window, running, deferred;
} mx_inq_counts;
mx_inq_counts mx_inq_count(const mx_inq *q);

#endif
