/* SPDX-License-Identifier: Apache-2.0 */
/* mx_inq: see mx_inq.h. The window is an array sorted by record number
 * (a record read again comes back among later ones); picking scans it
 * once, remembering the senders already blocked by an earlier undone
 * record, so the cost is bounded by the window, not by the backlog.
 * Deferred records are (number, sender hash) pairs in number order; a
 * small open-addressing table counts them per sender. Senders are told
 * apart by a 64-bit hash for the caps and deferrals (two senders that
 * shared one would only share a cap and a queue, each in its order) and
 * by name for the order of the window itself. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mx_inq.h"

enum { WAITING, RUNNING };

typedef struct {
    mx_inq_seq seq;
    uint64_t hash;
    char *key;
    void *item;
    long long not_before;
    int state;
} entry;

typedef struct {
    mx_inq_seq seq;
    uint64_t hash;
    int gone;                    /* read again (or dropped) in this rescan */
} deferral;

typedef struct {
    uint64_t hash;               /* 0: a free slot */
    size_t deferred;             /* its records deferred */
    size_t undone;               /* its undone records in the window (a
                                  * rescan's count) */
    int want;                    /* a rescan reads its records again */
} sender;

struct mx_inq {
    entry *e;
    size_t cap, n, running;
    size_t per, low;             /* the cap; a rescan when at most low */
    entry **blocked;             /* scratch for mx_inq_pick */
    deferral *d;
    size_t nd, dcap, dmax;
    sender *map;
    size_t mapsize, mapused;
    int due;                     /* a deferred sender may have room */
    int due_on_room;             /* a rescan stopped at a full window:
                                  * again once a place is free */
    int rescanning;
    size_t wanting;              /* senders still wanted in this rescan */
    mx_inq_seq pass_last;        /* their last deferred record */
    mx_inq_seq offered;          /* the last record offered */
    mx_inq_seq bound;            /* the last bound returned */
};

static uint64_t key_hash(const char *s)
{
    uint64_t h = 14695981039346656037ULL; /* FNV-1a */

    while (*s) {
        h ^= (unsigned char)*s++;
        h *= 1099511628211ULL;
    }
    return h ? h : 1;
}

/* ---- the senders with deferred records ---- */

static sender *map_find(const mx_inq *q, uint64_t h)
{
    size_t i;

    if (!q->mapsize)
        return NULL;
    for (i = (size_t)h & (q->mapsize - 1); q->map[i].hash;
         i = (i + 1) & (q->mapsize - 1))
        if (q->map[i].hash == h)
            return &q->map[i];
    return NULL;
}

/* A free slot for h (the table has room) */
static sender *map_slot(mx_inq *q, uint64_t h)
{
    size_t i;

    for (i = (size_t)h & (q->mapsize - 1); q->map[i].hash;
         i = (i + 1) & (q->mapsize - 1))
        ;
    memset(&q->map[i], 0, sizeof(q->map[i]));
    q->map[i].hash = h;
    q->mapused++;
    return &q->map[i];
}

/* The slot of h, made when missing; NULL without memory */
static sender *map_get(mx_inq *q, uint64_t h)
{
    sender *s = map_find(q, h), *old = q->map;
    size_t i, oldsize = q->mapsize;

    if (s)
        return s;
    if ((q->mapused + 1) * 2 > q->mapsize) {
        size_t size = q->mapsize ? q->mapsize * 2 : 64;

        if (!(q->map = calloc(size, sizeof(*q->map)))) {
            q->map = old;
            return NULL;
        }
        q->mapsize = size;
        q->mapused = 0;
        for (i = 0; i < oldsize; i++)
            if (old[i].hash)
                *map_slot(q, old[i].hash) = old[i];
        free(old);
    }
    return map_slot(q, h);
}

/* The table again from the deferrals (after a rescan removed some) */
static void map_rebuild(mx_inq *q)
{
    size_t i;
    sender *s;

    if (q->mapsize)
        memset(q->map, 0, q->mapsize * sizeof(*q->map));
    q->mapused = 0;
    for (i = 0; i < q->nd; i++)
        if ((s = map_get(q, q->d[i].hash)) != NULL)
            s->deferred++;
}

/* ---- the window ---- */

mx_inq *mx_inq_new(size_t window, size_t per_sender, size_t deferred_max)
{
    mx_inq *q = calloc(1, sizeof(*q));

    if (!q || window == 0)
        goto fail;
    q->cap = window;
    q->per = per_sender;
    q->low = per_sender / 4;
    q->dmax = deferred_max;
    q->e = calloc(window, sizeof(*q->e));
    q->blocked = calloc(window, sizeof(*q->blocked));
    if (q->e && q->blocked)
        return q;
fail:
    mx_inq_free(q);
    return NULL;
}

void mx_inq_free(mx_inq *q)
{
    size_t i;

    if (!q)
        return;
    for (i = 0; q->e && i < q->n; i++)
        free(q->e[i].key);
    free(q->e);
    free(q->blocked);
    free(q->d);
    free(q->map);
    free(q);
}

int mx_inq_room(const mx_inq *q)
{
    return q->n < q->cap && (q->nd < q->dmax || !q->per);
}

/* Undone records of sender h in the window */
static size_t undone(const mx_inq *q, uint64_t h)
{
    size_t i, c = 0;

    for (i = 0; i < q->n; i++)
        c += q->e[i].hash == h;
    return c;
}

/* Put a record in the window at its place by number */
static int insert(mx_inq *q, mx_inq_seq seq, uint64_t h, const char *key,
                  void *item)
{
    size_t at = q->n;
    char *copy = strdup(key);

    if (!copy || q->n == q->cap) {
        free(copy);
        return -1;
    }
    while (at > 0 && q->e[at - 1].seq > seq)
        at--;
    memmove(&q->e[at + 1], &q->e[at], (q->n - at) * sizeof(*q->e));
    memset(&q->e[at], 0, sizeof(q->e[at]));
    q->e[at].seq = seq;
    q->e[at].hash = h;
    q->e[at].key = copy;
    q->e[at].item = item;
    q->e[at].state = WAITING;
    q->n++;
    return 0;
}

int mx_inq_offer(mx_inq *q, mx_inq_seq seq, const char *key, void *item)
{
    uint64_t h;
    sender *s;
    size_t c;

    if (!key)
        key = "";
    h = key_hash(key);
    if (q->n == q->cap)
        return -1;
    s = map_find(q, h);
    c = q->per ? undone(q, h) : 0;
    if (!(s && s->deferred) && (!q->per || c < q->per)) {
        if (insert(q, seq, h, key, item) != 0)
            return -1;
        q->offered = seq;
        return 1;
    }
    /* deferred: only its number and sender are kept */
    if (q->nd == q->dcap) {
        size_t dcap = q->dcap ? q->dcap * 2 : 256;
        deferral *grown;

        if (q->nd >= q->dmax)
            return -1;
        if (dcap > q->dmax)
            dcap = q->dmax;
        if (!(grown = realloc(q->d, dcap * sizeof(*grown))))
            return -1;
        q->d = grown;
        q->dcap = dcap;
    }
    if (!(s = map_get(q, h)))
        return -1;
    q->d[q->nd].seq = seq;
    q->d[q->nd].hash = h;
    q->d[q->nd++].gone = 0;
    s->deferred++;
    q->offered = seq;
    if (c <= q->low)
        q->due = 1;
    return 0;
}

/* ---- reading deferred records again ---- */

mx_inq_seq mx_inq_rescan(mx_inq *q)
{
    mx_inq_seq start = 0;
    size_t i;
    sender *s;

    if (!q->due || !q->nd || q->n == q->cap || q->rescanning)
        return 0;
    q->due = 0;
    for (i = 0; i < q->mapsize; i++)
        q->map[i].undone = 0, q->map[i].want = 0;
    for (i = 0; i < q->n; i++)
        if ((s = map_find(q, q->e[i].hash)) != NULL)
            s->undone++;
    q->wanting = 0;
    for (i = 0; i < q->mapsize; i++) {
        s = &q->map[i];
        if (s->hash && s->deferred && s->undone <= q->low) {
            s->want = 1;
            q->wanting++;
        }
    }
    if (!q->wanting)
        return 0;
    for (i = 0; i < q->nd; i++) {
        if (map_find(q, q->d[i].hash)->want) {
            if (!start)
                start = q->d[i].seq;
            q->pass_last = q->d[i].seq;
        }
    }
    q->rescanning = 1;
    return start;
}

/* The place of record seq in n elements of size bytes sorted by their
 * number, which is their first member (entry and deferral): the first
 * whose number is not below seq. */
static size_t place_of(const void *base, size_t n, size_t size,
                       mx_inq_seq seq)
{
    size_t lo = 0, hi = n, mid;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        if (*(const mx_inq_seq *)((const char *)base + mid * size) < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The deferral of record seq, or NULL */
static deferral *find_deferral(mx_inq *q, mx_inq_seq seq)
{
    size_t i = place_of(q->d, q->nd, sizeof(*q->d), seq);

    return i < q->nd && q->d[i].seq == seq && !q->d[i].gone
           ? &q->d[i] : NULL;
}

int mx_inq_wanted(mx_inq *q, mx_inq_seq seq)
{
    deferral *d;
    sender *s;

    if (!q->rescanning || !q->wanting || q->n == q->cap
        || seq > q->pass_last)
        return -1;
    if (!(d = find_deferral(q, seq)) || !(s = map_find(q, d->hash)))
        return 0;
    return s->want;
}

/* sender s is not read again in this rescan (its records after this one
 * would come before this one) */
static void unwant(mx_inq *q, sender *s)
{
    if (s->want) {
        s->want = 0;
        q->wanting--;
    }
}

int mx_inq_readd(mx_inq *q, mx_inq_seq seq, const char *key, void *item)
{
    deferral *d = find_deferral(q, seq);
    sender *s = d ? map_find(q, d->hash) : NULL;

    if (!s || !s->want)
        return 0;
    if (!item) { /* it cannot be read: lost, and no longer waited for */
        d->gone = 1;
        s->deferred--;
        return 0;
    }
    if (key_hash(key ? key : "") != d->hash
        || insert(q, seq, d->hash, key ? key : "", item) != 0) {
        unwant(q, s);
        return 0;
    }
    d->gone = 1;
    s->deferred--;
    if (q->per && ++s->undone >= q->per)
        unwant(q, s);
    return 1;
}

void mx_inq_rescan_end(mx_inq *q)
{
    size_t i, k = 0;

    if (!q->rescanning)
        return;
    q->rescanning = 0;
    /* senders still wanted (the window filled up, or the caller stopped
     * reading): read again at the next look, or once a place is free */
    if (q->wanting && q->n < q->cap)
        q->due = 1;
    else if (q->wanting)
        q->due_on_room = 1;
    for (i = 0; i < q->nd; i++)
        if (!q->d[i].gone)
            q->d[k++] = q->d[i];
    q->nd = k;
    map_rebuild(q);
}

/* ---- running ---- */

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
        entry *e = &q->e[i];

        if (is_blocked(q->blocked, nb, e))
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

/* The running record seq ends its try: done (it leaves the window at
 * once, so done records never take the places of others while the bound
 * waits for an earlier one), or WAITING until at */
static int finish(mx_inq *q, mx_inq_seq seq, int done, long long at)
{
    size_t lo = place_of(q->e, q->n, sizeof(*q->e), seq);
    entry *e;
    sender *s;
    uint64_t h;

    if (lo == q->n || q->e[lo].seq != seq || q->e[lo].state != RUNNING)
        return 0;
    e = &q->e[lo];
    q->running--;
    if (!done) {
        e->state = WAITING;
        e->not_before = at;
        return 1;
    }
    h = e->hash;
    free(e->key);
    memmove(e, e + 1, (q->n - lo - 1) * sizeof(*e));
    q->n--;
    /* its sender may take deferred records back, or another one could
     * not for want of a place */
    if ((s = map_find(q, h)) && s->deferred && undone(q, h) <= q->low)
        q->due = 1;
    if (q->due_on_room) {
        q->due = 1;
        q->due_on_room = 0;
    }
    return 1;
}

int mx_inq_done(mx_inq *q, mx_inq_seq seq)
{
    return finish(q, seq, 1, 0);
}

int mx_inq_retry(mx_inq *q, mx_inq_seq seq, long long at)
{
    return finish(q, seq, 0, at);
}

/* Every record up to the bound is done: it stops before the first one
 * in the window and the first deferred one, and at the last offered
 * (those after it are not read yet). */
mx_inq_seq mx_inq_advance(mx_inq *q)
{
    mx_inq_seq bound = q->offered;
    size_t i;

    if (q->n && q->e[0].seq - 1 < bound)
        bound = q->e[0].seq - 1;
    for (i = 0; i < q->nd; i++) {
        if (!q->d[i].gone) {
            if (q->d[i].seq - 1 < bound)
                bound = q->d[i].seq - 1;
            break;
        }
    }
    if (bound <= q->bound)
        return 0;
    q->bound = bound;
    return bound;
}

mx_inq_counts mx_inq_count(const mx_inq *q)
{
    mx_inq_counts c = { q->n, q->running, q->nd };

    return c;
}
