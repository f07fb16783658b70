/* SPDX-License-Identifier: Apache-2.0 */
/* mx_inq: see mx_inq.h. A ring in journal order; picking scans it once,
 * remembering the senders already blocked by an earlier undone record
 * (by hash first, then by name), so the cost is bounded by the window,
 * not by the backlog. */
#include <stdlib.h>
#include <string.h>

#include "mx_inq.h"

enum { WAITING, RUNNING, DONE };

typedef struct {
    mx_inq_seq seq;
    unsigned long hash;
    char *key;
    void *item;
    long long not_before;
    int state;
} entry;

struct mx_inq {
    entry *ring;
    size_t cap, head, n, running;
    entry **blocked;             /* scratch for mx_inq_pick */
};

static unsigned long key_hash(const char *s)
{
    unsigned long h = 5381;

    while (*s)
        h = h * 33 + (unsigned char)*s++;
    return h;
}

mx_inq *mx_inq_new(size_t window)
{
    mx_inq *q = calloc(1, sizeof(*q));

    if (!q || window == 0)
        goto fail;
    q->cap = window;
    q->ring = calloc(window, sizeof(*q->ring));
    q->blocked = calloc(window, sizeof(*q->blocked));
    if (q->ring && q->blocked)
        return q;
fail:
    if (q) {
        free(q->ring);
        free(q->blocked);
    }
    free(q);
    return NULL;
}

void mx_inq_free(mx_inq *q)
{
    size_t i;

    if (!q)
        return;
    for (i = 0; i < q->n; i++)
        free(q->ring[(q->head + i) % q->cap].key);
    free(q->ring);
    free(q->blocked);
    free(q);
}

int mx_inq_room(const mx_inq *q)
{
    return q->n < q->cap;
}

int mx_inq_add(mx_inq *q, mx_inq_seq seq, const char *key, void *item)
{
    entry *e;

    if (q->n == q->cap)
        return -1;
    e = &q->ring[(q->head + q->n) % q->cap];
    memset(e, 0, sizeof(*e));
    if (!(e->key = strdup(key ? key : "")))
        return -1;
    e->seq = seq;
    e->hash = key_hash(e->key);
    e->item = item;
    e->state = WAITING;
    q->n++;
    return 0;
}

/* Whether e's sender is among the nb blocked ones */
static int is_blocked(entry **blocked, size_t nb, const entry *e)
{
    size_t i;

    for (i = 0; i < nb; i++)
        if (blocked[i]->hash == e->hash && !strcmp(blocked[i]->key, e->key))
            return 1;
    return 0;
}

void *mx_inq_pick(mx_inq *q, long long now, mx_inq_seq *seq,
                  long long *wake)
{
    size_t i, nb = 0;
    long long soonest = 0;

    for (i = 0; i < q->n; i++) {
        entry *e = &q->ring[(q->head + i) % q->cap];

        if (e->state == DONE || is_blocked(q->blocked, nb, e))
            continue;
        if (e->state == WAITING && e->not_before <= now) {
            e->state = RUNNING;
            q->running++;
            *seq = e->seq;
            return e->item;
        }
        if (e->state == WAITING && (!soonest || e->not_before < soonest))
            soonest = e->not_before;
        q->blocked[nb++] = e; /* its sender's later records wait */
    }
    if (wake)
        *wake = soonest;
    return NULL;
}

static entry *find_running(mx_inq *q, mx_inq_seq seq)
{
    size_t i;

    for (i = 0; i < q->n; i++) {
        entry *e = &q->ring[(q->head + i) % q->cap];

        if (e->seq == seq)
            return e->state == RUNNING ? e : NULL;
    }
    return NULL;
}

int mx_inq_done(mx_inq *q, mx_inq_seq seq)
{
    entry *e = find_running(q, seq);

    if (!e)
        return 0;
    e->state = DONE;
    e->item = NULL;
    q->running--;
    return 1;
}

int mx_inq_retry(mx_inq *q, mx_inq_seq seq, long long at)
{
    entry *e = find_running(q, seq);

    if (!e)
        return 0;
    e->state = WAITING;
    e->not_before = at;
    q->running--;
    return 1;
}

mx_inq_seq mx_inq_advance(mx_inq *q)
{
    mx_inq_seq last = 0;

    while (q->n && q->ring[q->head].state == DONE) {
        last = q->ring[q->head].seq;
        free(q->ring[q->head].key);
        q->ring[q->head].key = NULL;
        q->head = (q->head + 1) % q->cap;
        q->n--;
    }
    return last;
}

size_t mx_inq_count(const mx_inq *q)
{
    return q->n;
}

size_t mx_inq_running(const mx_inq *q)
{
    return q->running;
}
