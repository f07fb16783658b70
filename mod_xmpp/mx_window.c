/* SPDX-License-Identifier: Apache-2.0 */
/* mx_window: see mx_window.h */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mx_log.h"
#include "mx_window.h"

typedef struct {
    mx_seq record;           /* journal number of the record */
    uint32_t seq;            /* stanza count when it was sent */
    int skipped;             /* not sent: not counted as sent */
} mx_flight;

struct mx_window {
    void *log_ctx;
    int sm;                  /* 1: acks by XEP-0198; 0: by barriers */
    char prefix[MX_WINDOW_PREFIX_MAX]; /* this session's barrier ids */
    uint32_t out_seq;        /* stanzas sent this session */
    uint32_t requested;      /* out_seq when we last asked for an ack */
    long long last_send;     /* when the last stanza went */
    long long last_barrier;  /* when the last barrier went */
    unsigned int retry_ms;   /* the next barrier is overdue after this */
    mx_flight flight[MX_WINDOW_SIZE];
    int head, len;           /* ring of records in flight */
    mx_seq careful_to;       /* one at a time up to this record */
    mx_seq suspect;          /* alone in flight at the last such close */
    int suspect_ends;
    char suspect_why[256];
    unsigned long foreign;   /* other hosts' barrier answers seen */
    int warned_range;        /* an h beyond what was sent, logged */
    /* the server's stanzas */
    uint32_t in_seq;         /* received this session */
    uint32_t in_asked;       /* in_seq at the server's last <r/> */
    uint32_t in_acked;       /* the h we told it last */
    uint32_t (*handled)(void *, uint32_t);
    void *handled_ud;
};

/* a is after b, modulo 2^32 (as XEP-0198 compares h) */
static int after(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b) > 0;
}

mx_window *mx_window_new(void *log_ctx)
{
    mx_window *w = calloc(1, sizeof(*w));

    if (w) {
        w->log_ctx = log_ctx;
        w->retry_ms = MX_WINDOW_RETRY_MS;
    }
    return w;
}

void mx_window_free(mx_window *w)
{
    free(w);
}

void mx_window_start(mx_window *w, int sm, const char *prefix)
{
    w->sm = sm;
    w->prefix[0] = '\0';
    if (prefix && strlen(prefix) < sizeof(w->prefix))
        strcpy(w->prefix, prefix);
    w->out_seq = w->requested = 0;
    w->in_seq = w->in_asked = w->in_acked = 0;
    w->head = w->len = 0;
    w->retry_ms = MX_WINDOW_RETRY_MS;
    w->warned_range = 0;
}

void mx_window_set_sm(mx_window *w, int sm)
{
    w->sm = sm;
    if (sm)
        w->in_seq = w->in_asked = w->in_acked = 0; /* <enabled/> */
}

int mx_window_sm(const mx_window *w)
{
    return w->sm;
}

/* ---- sending ---- */

int mx_window_careful(const mx_window *w, mx_seq next)
{
    return next <= w->careful_to;
}

int mx_window_may_send(const mx_window *w, mx_seq next)
{
    return w->len < MX_WINDOW_SIZE
           && !(mx_window_careful(w, next) && w->len > 0);
}

int mx_window_poisoned(const mx_window *w, mx_seq record)
{
    return record == w->suspect && w->suspect_ends >= MX_WINDOW_POISON_ENDS
           && w->len == 0;
}

const char *mx_window_poison_why(const mx_window *w)
{
    return w->suspect_why;
}

void mx_window_sent_stanza(mx_window *w, long long now)
{
    w->out_seq++;
    w->last_send = now;
}

static mx_flight *push(mx_window *w, mx_seq record, int skipped)
{
    mx_flight *f = &w->flight[(w->head + w->len++) % MX_WINDOW_SIZE];

    f->record = record;
    f->seq = w->out_seq; /* a skipped one: covered with what went before */
    f->skipped = skipped;
    return f;
}

void mx_window_sent_record(mx_window *w, mx_seq record)
{
    if (w->len < MX_WINDOW_SIZE)
        push(w, record, 0);
}

mx_seq mx_window_skip(mx_window *w, mx_seq record)
{
    if (record == w->suspect) { /* set aside: it blames no other */
        w->suspect = 0;
        w->suspect_ends = 0;
    }
    if (w->len == 0 || w->len >= MX_WINDOW_SIZE)
        return w->len == 0 ? record : 0;
    push(w, record, 1);
    return 0;
}

int mx_window_ask_after_record(const mx_window *w, int careful)
{
    return careful || w->out_seq - w->requested >= MX_WINDOW_ACK_EVERY;
}

int mx_window_ask_due(const mx_window *w, long long now)
{
    if (w->out_seq != w->requested)
        return now - w->last_send >= MX_WINDOW_ACK_IDLE_MS;
    /* all asked for: a barrier's answer may have gone to another host */
    return !w->sm && w->len > 0 && now - w->last_barrier >= w->retry_ms;
}

int mx_window_unsettled(const mx_window *w)
{
    return w->out_seq != w->requested || w->len > 0;
}

uint32_t mx_window_asked(mx_window *w, long long now)
{
    int again = w->out_seq == w->requested;

    w->requested = w->out_seq;
    if (w->sm)
        return 0;
    /* the ping is stanza out_seq + 1: its answer covers it */
    w->out_seq++;
    w->requested = w->out_seq;
    w->last_send = now;
    if (again && w->retry_ms < MX_WINDOW_RETRY_MAX_MS)
        w->retry_ms *= 2;
    else if (!again)
        w->retry_ms = MX_WINDOW_RETRY_MS;
    w->last_barrier = now;
    return w->out_seq;
}

/* ---- what comes back ---- */

/* Stanzas up to number h are handled by the server. */
static int covered(mx_window *w, uint32_t h, mx_window_done *done)
{
    done->last = 0;
    done->sent = 0;
    while (w->len > 0) {
        mx_flight *f = &w->flight[w->head];

        if (after(f->seq, h))
            break;
        done->last = f->record;
        if (f->record == w->suspect)
            w->suspect = 0; /* it went through after all */
        w->head = (w->head + 1) % MX_WINDOW_SIZE;
        w->len--;
        done->sent += !f->skipped;
    }
    if (done->last)
        w->retry_ms = MX_WINDOW_RETRY_MS;
    return done->last != 0;
}

int mx_window_ack(mx_window *w, uint32_t h, mx_window_done *done)
{
    done->last = 0;
    done->sent = 0;
    if (after(h, w->out_seq)) {
        if (!w->warned_range++)
            mx_log(w->log_ctx, MX_LOG_WARNING, MX_LOG_TAG "0700: the server "
                   "acknowledged %u stanzas of this session, but only %u "
                   "were sent: the acknowledgement is ignored (sending goes "
                   "on; what it does not cover is sent again after the next "
                   "reconnect)", (unsigned)h, (unsigned)w->out_seq);
        return -1;
    }
    return covered(w, h, done);
}

/* The number after the prefix: 0 and *n when it is 1 to 10 digits of a
 * value below 2^32, -1 otherwise. */
static int barrier_number(const char *s, uint32_t *n)
{
    unsigned long long v = 0;
    size_t i;

    for (i = 0; s[i] >= '0' && s[i] <= '9' && i < 10; i++)
        v = v * 10 + (unsigned)(s[i] - '0');
    if (i == 0 || s[i] != '\0' || v > 0xFFFFFFFFULL)
        return -1;
    *n = (uint32_t)v;
    return 0;
}

mx_barrier_kind mx_window_barrier_kind(const mx_window *w, const char *id)
{
    static const char any[] = MX_WINDOW_BARRIER_PREFIX;
    size_t plen = strlen(w->prefix);
    uint32_t n;

    if (!id || strncmp(id, any, sizeof(any) - 1) != 0)
        return MX_BARRIER_NONE;
    if (!plen || strncmp(id, w->prefix, plen) != 0)
        return MX_BARRIER_FOREIGN;
    if (barrier_number(id + plen, &n) != 0 || n == 0
        || after(n, w->out_seq))
        return MX_BARRIER_BAD;
    return MX_BARRIER_OWN;
}

mx_barrier_kind mx_window_barrier(mx_window *w, const char *id,
                                  mx_window_done *done)
{
    mx_barrier_kind kind = mx_window_barrier_kind(w, id);
    uint32_t n = 0;

    done->last = 0;
    done->sent = 0;
    if (kind == MX_BARRIER_FOREIGN) {
        w->foreign++;
        mx_log(w->log_ctx, MX_LOG_DEBUG, MX_LOG_TAG "0701: a barrier answer "
               "of another host (or an earlier session) is ignored; %lu so "
               "far", w->foreign);
    }
    else if (kind == MX_BARRIER_BAD)
        mx_log(w->log_ctx, MX_LOG_WARNING, MX_LOG_TAG "0702: a barrier "
               "answer with this session's id but a number never sent is "
               "ignored (%u stanzas sent)", (unsigned)w->out_seq);
    else if (kind == MX_BARRIER_OWN
             && barrier_number(id + strlen(w->prefix), &n) == 0)
        covered(w, n, done);
    return kind;
}

unsigned long mx_window_foreign(const mx_window *w)
{
    return w->foreign;
}

int mx_window_in_flight(const mx_window *w)
{
    return w->len;
}

uint32_t mx_window_out_seq(const mx_window *w)
{
    return w->out_seq;
}

void mx_window_set_out_seq(mx_window *w, uint32_t n)
{
    w->out_seq = w->requested = n;
}

void mx_window_end(mx_window *w, const char *stream_error, int about_data)
{
    if (stream_error && w->len > 0) {
        mx_seq first = w->flight[w->head].record;
        mx_seq last = w->flight[(w->head + w->len - 1) % MX_WINDOW_SIZE]
                          .record;

        /* a conflict or a shutdown blames no record */
        if (about_data && w->len == 1 && first == w->suspect)
            w->suspect_ends++;
        else if (about_data && w->len == 1) {
            w->suspect = first;
            w->suspect_ends = 1;
        }
        if (last > w->careful_to)
            w->careful_to = last;
        snprintf(w->suspect_why, sizeof(w->suspect_why), "%s",
                 stream_error);
    }
    w->head = w->len = 0;
}

/* ---- the server's stanzas ---- */

void mx_window_set_handled(mx_window *w, uint32_t (*fn)(void *, uint32_t),
                           void *ud)
{
    w->handled = fn;
    w->handled_ud = ud;
}

void mx_window_received(mx_window *w)
{
    w->in_seq++;
}

uint32_t mx_window_in_seq(const mx_window *w)
{
    return w->in_seq;
}

/* How many are handled: never fewer than said before */
static uint32_t in_handled(const mx_window *w)
{
    uint32_t h = w->handled ? w->handled(w->handled_ud, w->in_seq)
                            : w->in_seq;

    return after(w->in_acked, h) ? w->in_acked : h;
}

uint32_t mx_window_in_request(mx_window *w)
{
    w->in_asked = w->in_seq;
    w->in_acked = in_handled(w);
    return w->in_acked;
}

int mx_window_in_more(mx_window *w, uint32_t *h)
{
    uint32_t now;

    if (!w->sm || !after(w->in_asked, w->in_acked)
        || (now = in_handled(w)) == w->in_acked)
        return 0;
    w->in_acked = now;
    *h = now;
    return 1;
}
