/* SPDX-License-Identifier: Apache-2.0 */
/* mx_batch: what the queue thread does with one batch of requests (group
 * commit): which items go into the journal, which are refused because the
 * queue is full, whether the batch needs a sync before the answers, and
 * which journal number each taken item gets. Plain logic: the glue
 * (mod_xmpp_queue.c) reads the requests, appends, syncs and answers.
 *
 * The rules. An item refused by the checks stays refused. A sender's item
 * is refused as FULL once the items queued plus those taken before it in
 * the batch reach the limit; this process's own items (answers to
 * inbound stanzas) are never refused by the limit. A batch is synced
 * before its answers when it took a sender's item; one of this process's
 * items alone waits for the next synced batch (the stanzas they answer
 * were acknowledged on receipt already). Taken items are numbered in
 * batch order from the first number the journal gave.
 * Portable: no httpd, no APR. */
#ifndef MX_BATCH_H
#define MX_BATCH_H

#include <stddef.h>

#include "mx_journal.h"

typedef enum {
    MX_BATCH_TAKEN = 1,
    MX_BATCH_FULL,
    MX_BATCH_REFUSED
} mx_batch_verdict;

typedef struct {
    int local;                /* in: this process's item (no answer) */
    int refused;              /* in: refused by the checks already */
    mx_batch_verdict verdict; /* out */
    mx_seq record;            /* out: its journal number (when taken and
                               * mx_batch_number was called) */
} mx_batch_req;

/* Decide each of r[0..n) with `queued` items in the queue now and the
 * queue limit. Returns how many are taken; *sync is 1 when the batch
 * must be synced before answering. */
size_t mx_batch_plan(mx_batch_req *r, size_t n, long queued, long limit,
                     int *sync);

/* The taken items were appended, the first as number first. */
void mx_batch_number(mx_batch_req *r, size_t n, mx_seq first);

#endif
