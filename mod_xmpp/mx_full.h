/* SPDX-License-Identifier: Apache-2.0 */
/* mx_full: the outbound queue's "full" flag, the holder's backpressure.
 *
 *   D/FULL   exists while the holder says the queue is full: puts into
 *            the spool are refused (instead of unbounded growth), and so
 *            are senders on the queue socket; optional content
 *            "COUNT LIMIT\n" for the error message
 *
 * D is the app's spool directory (see mx_spool.h). POSIX only; no httpd,
 * no APR. Thread-safe. */
#ifndef MX_FULL_H
#define MX_FULL_H

#include <stddef.h>

/* What a put (mx_queue_put, mx_queue_submit) answers when D/FULL exists */
#define MX_QUEUE_FULL (-2)

/* The holder's backpressure flag: create (full) or remove (!full) D/FULL.
 * Returns 1 when this call raised the flag (it was down), 0 when nothing
 * changed or the flag went down, -1 on error (errno set): call it as
 * often as you like and log on 1.
 * mx_queue_set_full_counts raises it too, recording count and limit for
 * the message refused senders get; it returns like mx_queue_set_full. */
int mx_queue_set_full(const char *dir, int full);
int mx_queue_set_full_counts(const char *dir, long count, long limit);

/* MX_QUEUE_FULL when D/FULL exists, with the message for the refused
 * sender in err (may be NULL): "the outbound queue is full (COUNT items;
 * limit LIMIT)" when the flag has its counts; else 0. */
int mx_queue_full_check(const char *dir, char *err, size_t errsize);

#endif
