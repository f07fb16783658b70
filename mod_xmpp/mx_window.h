/* SPDX-License-Identifier: Apache-2.0 */
/* mx_window: which outbound journal records are in flight and what the
 * server has acknowledged of them. Plain state, no I/O: the glue
 * (mod_xmpp_outbound.c) reads the journal and writes to libstrophe, and
 * tells this what it sent and what came back; this says when to ask for
 * an acknowledgement, which records an answer covers, and which record to
 * set aside.
 *
 * Counting. Every stanza sent in a session has a number (1, 2, ...,
 * modulo 2^32, as XEP-0198's h): with stream management the server's
 * <a h='N'/> covers stanzas 1..N; without it a ping IQ is a barrier, the
 * IQ being stanza N, and its answer covers 1..N. A record leaves the
 * window once the stanza it was sent as is covered. A number beyond what
 * was sent confirms nothing (a forgery, or a server that miscounts).
 *
 * Barriers with several hosts. A component's barrier is a ping to its own
 * domain: the server routes it back to a component of that domain, which
 * with several hosts connected as one domain (ejabberd) is any of them.
 * So a host must not wait for one particular answer: while records are in
 * flight unacknowledged, a new barrier goes out on a timer with backoff
 * (MX_WINDOW_RETRY_MS doubling to MX_WINDOW_RETRY_MAX_MS), each one
 * covering all sent before it, until one of this session's own returns;
 * the newest answer covers the older barriers too. Barrier ids carry a
 * random prefix per session: an answer with another host's prefix is
 * foreign, counted and otherwise ignored.
 *
 * Set-aside. After a session closed with a stream error while records
 * were in flight, they go again one at a time (each confirmed before the
 * next), so that a record the server refuses shows itself: one alone in
 * flight at MX_WINDOW_POISON_ENDS such closes is set aside instead of
 * holding up every record behind it forever.
 *
 * Times are milliseconds on any monotonic clock, given by the caller.
 * Portable: no httpd, no APR. */
#ifndef MX_WINDOW_H
#define MX_WINDOW_H

#include <stdint.h>

#include "mx_journal.h"

#define MX_WINDOW_SIZE        256  /* records sent and not acknowledged */
#define MX_WINDOW_ACK_EVERY   32   /* ask for an ack after this many */
#define MX_WINDOW_ACK_IDLE_MS 50   /* ... or this long after the last */
#define MX_WINDOW_RETRY_MS    100  /* a barrier unanswered this long: */
#define MX_WINDOW_RETRY_MAX_MS 1600 /* another, waiting twice as long */
#define MX_WINDOW_POISON_ENDS 2    /* stream errors with one record alone
                                    * in flight before it is set aside */
/* every barrier id starts so: "mx-ack-" 32 hex digits "-" number */
#define MX_WINDOW_BARRIER_PREFIX "mx-ack-"
#define MX_WINDOW_PREFIX_MAX  64

typedef struct mx_window mx_window;

/* A window; log_ctx is given to mx_log with each of its lines. NULL
 * without memory. */
mx_window *mx_window_new(void *log_ctx);
void mx_window_free(mx_window *w);

/* A new session: nothing in flight, counts from 0 (the caller reads the
 * journal again from the first record not acknowledged). sm: 1 when
 * acks come by XEP-0198, 0 by barriers. prefix: this session's barrier
 * id prefix ("mx-ack-<random>-"), or NULL when there is none (then no
 * barrier answer counts: a stall is better than a forgery). */
void mx_window_start(mx_window *w, int sm, const char *prefix);

/* The server refused or granted stream management after all. */
void mx_window_set_sm(mx_window *w, int sm);
int mx_window_sm(const mx_window *w);

/* ---- sending ---- */

/* 1 when the record at journal position next may be sent now: there is
 * room, and records there go one at a time only after the last is
 * confirmed (careful, after a stream error). */
int mx_window_may_send(const mx_window *w, mx_seq next);
/* 1 when records at position next go one at a time */
int mx_window_careful(const mx_window *w, mx_seq next);

/* 1 when record (about to be sent, nothing else in flight) is the one
 * that was alone in flight at MX_WINDOW_POISON_ENDS stream errors: set
 * it aside (mx_window_skip) instead of sending it. */
int mx_window_poisoned(const mx_window *w, mx_seq record);
/* the server's reason at the last of those errors */
const char *mx_window_poison_why(const mx_window *w);

/* One stanza went out (counted; a record's or any other). */
void mx_window_sent_stanza(mx_window *w, long long now);
/* Record was sent as the stanzas counted up to now: in flight. */
void mx_window_sent_record(mx_window *w, mx_seq record);
/* Record is not sent (damaged, refused, set aside): it leaves with those
 * before it (call it only when mx_window_may_send said so). Returns record when nothing is in flight (it is done at
 * once: the caller records the bound), else 0. */
mx_seq mx_window_skip(mx_window *w, mx_seq record);

/* 1 when an ack should be asked for now: after a record (with careful
 * as mx_window_careful said for it), or 0 between pumps. */
int mx_window_ask_after_record(const mx_window *w, int careful);
/* 1 when an ack should be asked for at time now: stanzas sent since the
 * last request and idle MX_WINDOW_ACK_IDLE_MS, or (barriers) records
 * still unacknowledged when the last barrier is overdue. */
int mx_window_ask_due(const mx_window *w, long long now);
/* 1 when anything sent is not yet asked for, or records are in flight */
int mx_window_unsettled(const mx_window *w);

/* An ack request goes out now. With stream management (<r/>) returns 0;
 * with barriers, the ping's number (its id is prefix + number): it is a
 * counted stanza itself and its answer covers it. */
uint32_t mx_window_asked(mx_window *w, long long now);

/* ---- what comes back ---- */

/* What an ack left in the window: the last record it removed (the
 * acknowledged bound to record, 0 when none), and how many of them were
 * sent (not skipped). */
typedef struct {
    mx_seq last;
    long sent;
} mx_window_done;

/* <a h='h'/>: 1 when it covered records, 0 when nothing new (duplicate,
 * old), -1 when h is beyond what was sent (confirms nothing). */
int mx_window_ack(mx_window *w, uint32_t h, mx_window_done *done);

typedef enum {
    MX_BARRIER_NONE = 0,   /* no barrier id at all */
    MX_BARRIER_OWN,        /* one of this session's: *done says what */
    MX_BARRIER_FOREIGN,    /* another host's (or an earlier session's) */
    MX_BARRIER_BAD         /* this session's prefix, a number never sent */
} mx_barrier_kind;

/* The answer to a barrier (a result, an error, or for a component the
 * ping itself routed back) with id came in: what it is, and, when it is
 * one of ours, what it acknowledged. */
mx_barrier_kind mx_window_barrier(mx_window *w, const char *id,
                                  mx_window_done *done);

/* Classify without acting: what mx_window_barrier would say of id. */
mx_barrier_kind mx_window_barrier_kind(const mx_window *w, const char *id);

/* Answers of other hosts' barriers seen in this window's life */
unsigned long mx_window_foreign(const mx_window *w);

/* Records in flight */
int mx_window_in_flight(const mx_window *w);
/* Stanzas counted this session */
uint32_t mx_window_out_seq(const mx_window *w);
/* For tests: as if n stanzas had been counted this session (h wraps at
 * 2^32 only after four billion stanzas) */
void mx_window_set_out_seq(mx_window *w, uint32_t n);

/* The session ended; stream_error: the server's reason when it closed
 * the stream with an error, else NULL; about_data: an error a stanza can
 * cause (too large, bad XML), which counts against a record alone in
 * flight. What was in flight is forgotten (sent again from the journal). */
void mx_window_end(mx_window *w, const char *stream_error, int about_data);

/* ---- the server's stanzas (XEP-0198 the other way) ---- */

/* How many of the stanzas received are handled: fn(ud, received) returns
 * at most received. Without it all received count as handled. */
void mx_window_set_handled(mx_window *w, uint32_t (*fn)(void *, uint32_t),
                           void *ud);
/* A stanza (message, presence, iq) came from the server. */
void mx_window_received(mx_window *w);
uint32_t mx_window_in_seq(const mx_window *w);
/* The server's <r/>: the h to answer (never fewer than said before). */
uint32_t mx_window_in_request(mx_window *w);
/* After an <r/> answered with fewer than received: 1 and *h when more is
 * handled now, to be said unasked. */
int mx_window_in_more(mx_window *w, uint32_t *h);

#endif
