/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of mx_window: the outbound records in flight and what the
 * server's acknowledgements (XEP-0198 h, ping barriers) cover, under
 * acks lost, duplicated, out of range, h wrapping at 2^32, stream
 * errors, reconnects, set-aside records and barriers answered to other
 * hosts. And mx_log, which the window logs through, and mx_batch, the
 * queue thread's group commit. */
#include <stdlib.h>

#include "unit.h"
#include "mx_batch.h"
#include "mx_log.h"
#include "mx_window.h"

#define PREFIX "mx-ack-0123456789abcdef0123456789abcdef-"
#define OTHER  "mx-ack-fedcba9876543210fedcba9876543210-"

static int log_lines, log_level;
static char log_last[1024];
static void *log_ctx;

static void test_log(void *baton, void *ctx, int level, const char *msg)
{
    log_lines++;
    log_level = level;
    log_ctx = ctx;
    snprintf(log_last, sizeof(log_last), "%s", msg);
}

/* send record as one stanza, as mod_xmpp_outbound does */
static void send_rec(mx_window *w, mx_seq record, long long now)
{
    mx_window_sent_stanza(w, now);
    mx_window_sent_record(w, record);
}

static const char *barrier_id(const char *prefix, uint32_t n)
{
    static char id[128];

    snprintf(id, sizeof(id), "%s%u", prefix, (unsigned)n);
    return id;
}

static void test_sm_acks(void)
{
    mx_window *w = mx_window_new(NULL);
    mx_window_done d;

    mx_window_start(w, 1, PREFIX);
    send_rec(w, 10, 0);
    send_rec(w, 11, 0);
    send_rec(w, 12, 0);
    CHECK(mx_window_in_flight(w) == 3);
    /* h=1 is lost; h=2 covers it */
    CHECK(mx_window_ack(w, 2, &d) == 1);
    CHECK(d.last == 11 && d.sent == 2);
    CHECK(mx_window_in_flight(w) == 1);
    /* the same h again: nothing new */
    CHECK(mx_window_ack(w, 2, &d) == 0);
    CHECK(d.last == 0 && d.sent == 0);
    /* an older one, late */
    CHECK(mx_window_ack(w, 1, &d) == 0 && d.last == 0);
    CHECK(mx_window_in_flight(w) == 1);
    /* beyond what was sent: confirms nothing, logged once */
    log_lines = 0;
    CHECK(mx_window_ack(w, 4, &d) == -1);
    CHECK(d.last == 0 && mx_window_in_flight(w) == 1);
    /* far behind (modulo 2^32): old, nothing new either */
    CHECK(mx_window_ack(w, 0xFFFFFFF0u, &d) == 0);
    CHECK(mx_window_ack(w, 0x80000004u, &d) == 0);
    CHECK(mx_window_in_flight(w) == 1);
    CHECK(log_lines == 1 && log_level == MX_LOG_WARNING
          && strstr(log_last, "XMPP0700: ") != NULL);
    CHECK(mx_window_ack(w, 3, &d) == 1 && d.last == 12 && d.sent == 1);
    CHECK(mx_window_in_flight(w) == 0);
    CHECK(mx_window_unsettled(w));           /* never asked for, though */
    mx_window_asked(w, 0);
    CHECK(!mx_window_unsettled(w));
    /* stream management asks by <r/>: not a counted stanza */
    send_rec(w, 13, 0);
    CHECK(mx_window_unsettled(w));
    CHECK(mx_window_asked(w, 0) == 0);
    CHECK(mx_window_out_seq(w) == 4);
    /* and never again on a timer: the server answers every <r/> */
    CHECK(!mx_window_ask_due(w, 100000));
    mx_window_free(w);
}

static void test_wrap(void)
{
    mx_window *w = mx_window_new(NULL);
    mx_window_done d;

    mx_window_start(w, 1, PREFIX);
    mx_window_set_out_seq(w, 0xFFFFFFFEu);
    send_rec(w, 1, 0); /* stanza 0xFFFFFFFF */
    send_rec(w, 2, 0); /* stanza 0 */
    send_rec(w, 3, 0); /* stanza 1 */
    CHECK(mx_window_out_seq(w) == 1);
    CHECK(mx_window_ack(w, 0xFFFFFFFFu, &d) == 1 && d.last == 1);
    CHECK(mx_window_ack(w, 0, &d) == 1 && d.last == 2);
    CHECK(mx_window_ack(w, 2, &d) == -1 && mx_window_in_flight(w) == 1);
    CHECK(mx_window_ack(w, 1, &d) == 1 && d.last == 3);
    /* barriers across the wrap too */
    mx_window_start(w, 0, PREFIX);
    mx_window_set_out_seq(w, 0xFFFFFFFDu);
    send_rec(w, 4, 0);                       /* 0xFFFFFFFE */
    CHECK(mx_window_asked(w, 0) == 0xFFFFFFFFu);
    send_rec(w, 5, 0);                       /* 0 */
    CHECK(mx_window_asked(w, 0) == 1);
    CHECK(mx_window_barrier(w, barrier_id(PREFIX, 1), &d) == MX_BARRIER_OWN);
    CHECK(d.last == 5 && d.sent == 2 && mx_window_in_flight(w) == 0);
    CHECK(mx_window_barrier(w, barrier_id(PREFIX, 2), &d) == MX_BARRIER_BAD);
    mx_window_free(w);
}

static void test_barriers(void)
{
    static const char *bad[] = {
        PREFIX, PREFIX "x", PREFIX "3x", PREFIX "-3", PREFIX "+3",
        PREFIX " 3", PREFIX "00000000003", PREFIX "4294967299",
        PREFIX "0", PREFIX "99", NULL
    };
    mx_window *w = mx_window_new(&log_lines);
    mx_window_done d;
    int i;

    mx_window_start(w, 0, PREFIX);
    send_rec(w, 1, 0);
    send_rec(w, 2, 0);
    CHECK(mx_window_asked(w, 0) == 3);      /* the ping is stanza 3 */
    send_rec(w, 3, 0);
    CHECK(mx_window_asked(w, 0) == 5);
    CHECK(mx_window_in_flight(w) == 3);
    /* what is no barrier, another host's, and forged numbers: nothing */
    CHECK(mx_window_barrier(w, "roster-1", &d) == MX_BARRIER_NONE);
    CHECK(mx_window_barrier(w, NULL, &d) == MX_BARRIER_NONE);
    CHECK(mx_window_barrier(w, "mx-roster-5", &d) == MX_BARRIER_NONE);
    log_lines = 0;
    CHECK(mx_window_barrier(w, barrier_id(OTHER, 5), &d)
          == MX_BARRIER_FOREIGN);
    CHECK(mx_window_barrier(w, barrier_id(OTHER, 3), &d)
          == MX_BARRIER_FOREIGN);
    CHECK(d.last == 0 && mx_window_foreign(w) == 2);
    CHECK(log_lines == 2 && log_level == MX_LOG_DEBUG
          && log_ctx == &log_lines);
    for (i = 0; bad[i]; i++) {
        CHECK(mx_window_barrier(w, bad[i], &d) == MX_BARRIER_BAD);
        CHECK(d.last == 0);
    }
    CHECK(mx_window_in_flight(w) == 3);
    /* the newest answer first covers the older barrier's records too */
    CHECK(mx_window_barrier(w, barrier_id(PREFIX, 5), &d) == MX_BARRIER_OWN);
    CHECK(d.last == 3 && d.sent == 3 && mx_window_in_flight(w) == 0);
    /* then the older one: ours, nothing left to cover */
    CHECK(mx_window_barrier(w, barrier_id(PREFIX, 3), &d) == MX_BARRIER_OWN);
    CHECK(d.last == 0 && d.sent == 0);
    /* an older answer covers only what was sent before it */
    send_rec(w, 4, 0);                       /* stanza 6 */
    CHECK(mx_window_asked(w, 0) == 7);
    send_rec(w, 5, 0);                       /* stanza 8 */
    CHECK(mx_window_asked(w, 0) == 9);
    CHECK(mx_window_barrier(w, barrier_id(PREFIX, 7), &d) == MX_BARRIER_OWN);
    CHECK(d.last == 4 && mx_window_in_flight(w) == 1);
    /* the same answer twice (the ping routed back and a result) */
    CHECK(mx_window_barrier(w, barrier_id(PREFIX, 7), &d) == MX_BARRIER_OWN);
    CHECK(d.last == 0 && mx_window_in_flight(w) == 1);
    /* a new session: the old prefix is foreign now, and without random
     * numbers no barrier counts at all */
    mx_window_start(w, 0, OTHER);
    send_rec(w, 5, 0);
    CHECK(mx_window_asked(w, 0) == 2);
    CHECK(mx_window_barrier(w, barrier_id(PREFIX, 2), &d)
          == MX_BARRIER_FOREIGN);
    CHECK(mx_window_in_flight(w) == 1);
    mx_window_start(w, 0, NULL);
    send_rec(w, 5, 0);
    CHECK(mx_window_asked(w, 0) == 2);
    CHECK(mx_window_barrier(w, barrier_id(PREFIX, 2), &d)
          == MX_BARRIER_FOREIGN);
    CHECK(mx_window_barrier(w, "mx-ack-2", &d) == MX_BARRIER_FOREIGN);
    CHECK(mx_window_in_flight(w) == 1);
    mx_window_free(w);
}

/* A barrier answered to another host: the next one goes on a timer
 * with backoff, until one of ours comes back. */
static void test_barrier_retry(void)
{
    mx_window *w = mx_window_new(NULL);
    mx_window_done d;
    long long t = 1000;
    unsigned int expect = MX_WINDOW_RETRY_MS;
    int i;

    mx_window_start(w, 0, PREFIX);
    CHECK(!mx_window_ask_due(w, t));        /* nothing sent */
    send_rec(w, 1, t);
    CHECK(!mx_window_ask_due(w, t + MX_WINDOW_ACK_IDLE_MS - 1));
    t += MX_WINDOW_ACK_IDLE_MS;
    CHECK(mx_window_ask_due(w, t));
    CHECK(mx_window_asked(w, t) == 2);
    for (i = 0; i < 8; i++) {
        /* the answer went elsewhere: due again after the delay */
        CHECK(!mx_window_ask_due(w, t + expect - 1));
        CHECK(mx_window_ask_due(w, t + expect));
        t += expect;
        CHECK(mx_window_asked(w, t) == (uint32_t)(3 + i));
        if (expect < MX_WINDOW_RETRY_MAX_MS)
            expect *= 2;
    }
    CHECK(expect == MX_WINDOW_RETRY_MAX_MS);
    CHECK(!mx_window_ask_due(w, t + MX_WINDOW_RETRY_MAX_MS - 1));
    CHECK(mx_window_ask_due(w, t + MX_WINDOW_RETRY_MAX_MS));
    /* one of ours is back (an early one, routed slowly): covers record 1 */
    CHECK(mx_window_barrier(w, barrier_id(PREFIX, 4), &d) == MX_BARRIER_OWN);
    CHECK(d.last == 1 && mx_window_in_flight(w) == 0);
    /* nothing in flight: no more barriers */
    CHECK(!mx_window_ask_due(w, t + 100000));
    /* the delay starts short again after an answer */
    send_rec(w, 2, t);
    t += MX_WINDOW_ACK_IDLE_MS;
    CHECK(mx_window_ask_due(w, t));
    mx_window_asked(w, t);
    CHECK(!mx_window_ask_due(w, t + MX_WINDOW_RETRY_MS - 1));
    CHECK(mx_window_ask_due(w, t + MX_WINDOW_RETRY_MS));
    /* a retry on a new session starts short too */
    mx_window_asked(w, t + MX_WINDOW_RETRY_MS);
    mx_window_asked(w, t + 3 * MX_WINDOW_RETRY_MS);
    mx_window_end(w, NULL, 0);
    mx_window_start(w, 0, PREFIX);
    send_rec(w, 2, t);
    mx_window_asked(w, t);
    CHECK(mx_window_ask_due(w, t + MX_WINDOW_RETRY_MS));
    mx_window_free(w);
}

static void test_ask_every(void)
{
    mx_window *w = mx_window_new(NULL);
    int i;

    mx_window_start(w, 1, NULL);
    for (i = 1; i < MX_WINDOW_ACK_EVERY; i++) {
        send_rec(w, (mx_seq)i, 0);
        CHECK(!mx_window_ask_after_record(w, 0));
    }
    send_rec(w, (mx_seq)i, 0);
    CHECK(mx_window_ask_after_record(w, 0));
    CHECK(mx_window_ask_after_record(w, 1));
    mx_window_asked(w, 0);
    CHECK(!mx_window_ask_after_record(w, 0));
    CHECK(mx_window_ask_after_record(w, 1));   /* careful: after each */
    mx_window_free(w);
}

static void test_full_window(void)
{
    mx_window *w = mx_window_new(NULL);
    mx_window_done d;
    int i;

    mx_window_start(w, 1, NULL);
    for (i = 1; i <= MX_WINDOW_SIZE; i++) {
        CHECK(mx_window_may_send(w, (mx_seq)i));
        send_rec(w, (mx_seq)i, 0);
    }
    CHECK(!mx_window_may_send(w, MX_WINDOW_SIZE + 1));
    CHECK(mx_window_ack(w, 1, &d) == 1 && d.last == 1);
    CHECK(mx_window_may_send(w, MX_WINDOW_SIZE + 1));
    send_rec(w, MX_WINDOW_SIZE + 1, 0);
    CHECK(mx_window_ack(w, MX_WINDOW_SIZE + 1, &d) == 1);
    CHECK(d.last == MX_WINDOW_SIZE + 1 && d.sent == MX_WINDOW_SIZE);
    mx_window_free(w);
}

static void test_skipped(void)
{
    mx_window *w = mx_window_new(NULL);
    mx_window_done d;

    mx_window_start(w, 1, NULL);
    /* nothing in flight: done at once */
    CHECK(mx_window_skip(w, 1) == 1);
    send_rec(w, 2, 0);              /* stanza 1 */
    CHECK(mx_window_skip(w, 3) == 0); /* leaves with record 2 */
    send_rec(w, 4, 0);              /* stanza 2 */
    CHECK(mx_window_ack(w, 1, &d) == 1);
    CHECK(d.last == 3 && d.sent == 1);
    CHECK(mx_window_ack(w, 2, &d) == 1 && d.last == 4 && d.sent == 1);
    mx_window_free(w);
}

/* A reconnect forgets what was in flight; counts start again; what a
 * late ack of the old session says cannot cover the new one. */
static void test_reconnect(void)
{
    mx_window *w = mx_window_new(NULL);
    mx_window_done d;

    mx_window_start(w, 1, NULL);
    send_rec(w, 1, 0);
    send_rec(w, 2, 0);
    send_rec(w, 3, 0);
    CHECK(mx_window_ack(w, 1, &d) == 1 && d.last == 1);
    mx_window_end(w, NULL, 0);
    CHECK(mx_window_in_flight(w) == 0);
    mx_window_start(w, 1, NULL);
    CHECK(mx_window_out_seq(w) == 0);
    /* sent again from the journal: 2 and 3 */
    CHECK(mx_window_may_send(w, 2) && !mx_window_careful(w, 2));
    send_rec(w, 2, 0);
    CHECK(mx_window_ack(w, 3, &d) == -1 && mx_window_in_flight(w) == 1);
    send_rec(w, 3, 0);
    CHECK(mx_window_ack(w, 2, &d) == 1 && d.last == 3 && d.sent == 2);
    mx_window_free(w);
}

/* Stream errors: one at a time, then the record the server closes the
 * stream on, alone, twice, is set aside. */
static void test_stream_errors(void)
{
    mx_window *w = mx_window_new(NULL);
    mx_window_done d;

    mx_window_start(w, 1, NULL);
    send_rec(w, 5, 0);
    send_rec(w, 6, 0);
    send_rec(w, 7, 0);
    mx_window_end(w, "policy-violation: too large", 1);
    /* up to 7 one at a time: 6 waits until 5 is confirmed */
    mx_window_start(w, 1, NULL);
    CHECK(mx_window_careful(w, 5) && mx_window_careful(w, 7));
    CHECK(!mx_window_careful(w, 8));
    CHECK(!mx_window_poisoned(w, 5));       /* 3 in flight: no one blamed */
    CHECK(mx_window_may_send(w, 5));
    send_rec(w, 5, 0);
    CHECK(!mx_window_may_send(w, 6));
    CHECK(mx_window_ack(w, 1, &d) == 1 && d.last == 5);
    CHECK(mx_window_may_send(w, 6));
    send_rec(w, 6, 0);
    /* 6 alone in flight when the server closes the stream: suspect */
    mx_window_end(w, "policy-violation: too large", 1);
    mx_window_start(w, 1, NULL);
    CHECK(!mx_window_poisoned(w, 6));
    send_rec(w, 6, 0);
    mx_window_end(w, "policy-violation: again", 1);
    mx_window_start(w, 1, NULL);
    /* twice alone: set aside, the reason kept */
    CHECK(mx_window_poisoned(w, 6));
    CHECK(!mx_window_poisoned(w, 7));
    CHECK_STR(mx_window_poison_why(w), "policy-violation: again");
    CHECK(mx_window_skip(w, 6) == 6);
    CHECK(!mx_window_poisoned(w, 6));
    CHECK(mx_window_may_send(w, 7));
    send_rec(w, 7, 0);
    /* past the careful ones: 8 may go while 7 is in flight */
    CHECK(mx_window_may_send(w, 8));
    send_rec(w, 8, 0);
    CHECK(mx_window_ack(w, 2, &d) == 1 && d.last == 8);
    mx_window_free(w);

    /* errors that blame no record (conflict, shutdown), and a suspect
     * that goes through after all */
    w = mx_window_new(NULL);
    mx_window_start(w, 1, NULL);
    send_rec(w, 1, 0);
    mx_window_end(w, "conflict", 0);
    mx_window_start(w, 1, NULL);
    send_rec(w, 1, 0);
    mx_window_end(w, "conflict", 0);
    mx_window_start(w, 1, NULL);
    CHECK(!mx_window_poisoned(w, 1));
    send_rec(w, 1, 0);
    mx_window_end(w, "too large", 1);
    mx_window_start(w, 1, NULL);
    send_rec(w, 1, 0);
    CHECK(mx_window_ack(w, 1, &d) == 1);     /* it went through */
    send_rec(w, 2, 0);
    mx_window_end(w, "too large", 1);         /* now 2 is the suspect */
    mx_window_start(w, 1, NULL);
    CHECK(!mx_window_poisoned(w, 2));
    /* a session closed without an error: nothing changes */
    send_rec(w, 2, 0);
    mx_window_end(w, NULL, 1);
    mx_window_start(w, 1, NULL);
    CHECK(!mx_window_poisoned(w, 2));
    mx_window_free(w);
}

static uint32_t handled_n;
static uint32_t handled(void *ud, uint32_t received)
{
    (void)ud;
    return handled_n < received ? handled_n : received;
}

static void test_inbound_counts(void)
{
    mx_window *w = mx_window_new(NULL);
    uint32_t h = 0;
    int i;

    mx_window_start(w, 1, NULL);
    for (i = 0; i < 5; i++)
        mx_window_received(w);
    CHECK(mx_window_in_seq(w) == 5);
    /* without a handled count, all received are handled */
    CHECK(mx_window_in_request(w) == 5);
    CHECK(!mx_window_in_more(w, &h));
    /* <enabled/> starts the count again */
    mx_window_set_sm(w, 1);
    CHECK(mx_window_in_seq(w) == 0);
    mx_window_set_handled(w, handled, NULL);
    for (i = 0; i < 5; i++)
        mx_window_received(w);
    handled_n = 3;
    CHECK(mx_window_in_request(w) == 3);
    CHECK(!mx_window_in_more(w, &h));        /* nothing more handled */
    handled_n = 5;
    CHECK(mx_window_in_more(w, &h) && h == 5);
    CHECK(!mx_window_in_more(w, &h));        /* said already */
    /* never fewer than said */
    handled_n = 1;
    CHECK(mx_window_in_request(w) == 5);
    /* without stream management nothing is said unasked */
    handled_n = 0;
    mx_window_set_sm(w, 0);
    mx_window_received(w);
    handled_n = 6;
    CHECK(!mx_window_in_more(w, &h));
    mx_window_free(w);
}

static void test_log_set(void)
{
    int ctx;

    mx_log_set(NULL, NULL);
    log_lines = 0;
    mx_log(&ctx, MX_LOG_ERR, "XMPP0000: %s", "nowhere");
    CHECK(log_lines == 0);
    mx_log_set(test_log, NULL);
    mx_log(&ctx, MX_LOG_ERR, "XMPP0000: %s %d", "here", 1);
    CHECK(log_lines == 1 && log_ctx == &ctx && log_level == MX_LOG_ERR);
    CHECK_STR(log_last, "XMPP0000: here 1");
}

static void test_batch(void)
{
    /* L: this process's answer, S: a sender's, R: refused by the checks */
    mx_batch_req r[6];
    int sync = -1;
    size_t i;

    memset(r, 0, sizeof(r));
    r[0].local = 1;         /* L */
    r[1].refused = 1;       /* R */
    r[3].local = 1;         /* S at 2, L at 3, S at 4, S at 5 */
    /* limit 10 with 7 queued: L and S fit (8, 9), then the limit: the L
     * at 3 is still taken, the senders after it are FULL */
    CHECK(mx_batch_plan(r, 6, 7, 10, &sync) == 3);
    CHECK(sync == 1);
    CHECK(r[0].verdict == MX_BATCH_TAKEN && r[1].verdict == MX_BATCH_REFUSED);
    CHECK(r[2].verdict == MX_BATCH_TAKEN && r[3].verdict == MX_BATCH_TAKEN);
    CHECK(r[4].verdict == MX_BATCH_FULL && r[5].verdict == MX_BATCH_FULL);
    mx_batch_number(r, 6, 100);
    CHECK(r[0].record == 100 && r[2].record == 101 && r[3].record == 102);
    CHECK(r[1].record == 0 && r[4].record == 0 && r[5].record == 0);
    /* room for all */
    CHECK(mx_batch_plan(r, 6, 0, 10, &sync) == 5);
    for (i = 0; i < 6; i++)
        CHECK(r[i].verdict == (i == 1 ? MX_BATCH_REFUSED : MX_BATCH_TAKEN));
    /* the queue already full: only this process's answers go in, and a
     * batch of only those is not synced */
    CHECK(mx_batch_plan(r, 6, 10, 10, &sync) == 2);
    CHECK(sync == 0);
    CHECK(r[0].verdict == MX_BATCH_TAKEN && r[3].verdict == MX_BATCH_TAKEN);
    CHECK(r[2].verdict == MX_BATCH_FULL);
    /* a batch of refusals takes nothing and needs no sync */
    for (i = 0; i < 6; i++) {
        r[i].local = 0;
        r[i].refused = 1;
    }
    CHECK(mx_batch_plan(r, 6, 0, 10, &sync) == 0 && sync == 0);
    CHECK(mx_batch_plan(r, 0, 0, 10, &sync) == 0 && sync == 0);
}

int main(void)
{
    test_batch();
    test_log_set();
    test_sm_acks();
    test_wrap();
    test_barriers();
    test_barrier_retry();
    test_ask_every();
    test_full_window();
    test_skipped();
    test_reconnect();
    test_stream_errors();
    test_inbound_counts();
    return UNIT_DONE();
}
