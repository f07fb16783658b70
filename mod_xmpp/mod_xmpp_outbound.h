/* SPDX-License-Identifier: Apache-2.0 */
/* mod_xmpp_outbound: the holder's side of the durable outbound queue.
 * Items are sent in queue order and leave the queue only when the server
 * has acknowledged them (XEP-0198 acks or ping barriers, counted by
 * mx_window, not by libstrophe). */
#ifndef MOD_XMPP_OUTBOUND_H
#define MOD_XMPP_OUTBOUND_H

#include <strophe.h>

#include "mod_xmpp_app.h"
#include "mod_xmpp_queue.h"

typedef struct mx_out mx_out;

/* Reads the journal of q from the first item not acknowledged. */
mx_out *mx_out_create(mx_app *app, mx_qserver *q);

/* A new session logged in: enable stream management (when the server
 * offered it; else ping round trips confirm delivery), start sending. */
void mx_out_on_login(mx_out *o, xmpp_ctx_t *ctx, xmpp_conn_t *conn,
                     int sm_offered);

/* Send a stanza that is not a queue item (presence, pings, replies), so
 * that the ack count stays right. */
void mx_out_send_other(mx_out *o, xmpp_stanza_t *st);

/* Called on every turn of the holder's loop while logged in: send what
 * was committed (up to the window), ask for acks. */
void mx_out_pump(mx_out *o);

/* XMPPDevMode On: log queued items the way App Engine's development
 * server did, and mark them done; nothing is sent. ctx parses them. */
void mx_out_dev_pump(mx_out *o, xmpp_ctx_t *ctx);

/* Number of the last stanza received in this session (XEP-0198 count):
 * inside a stanza handler added after mx_out_on_login, that stanza's. */
apr_uint32_t mx_out_in_seq(const mx_out *o);

/* How the count of handled stanzas is found for the server's <r/>: fn(ud,
 * received) returns at most received. Without it, all received count. */
void mx_out_set_handled(mx_out *o, apr_uint32_t (*fn)(void *, apr_uint32_t),
                        void *ud);

/* How many top-level elements the server has sent (any kind): tells
 * whether a turn of libstrophe's loop read something. */
unsigned long mx_out_received(const mx_out *o);

/* The session ended: what was not acknowledged stays queued for the next.
 * stream_error: why, when the server closed the stream with an error
 * (the items in flight are then sent again one at a time), else NULL;
 * about_data: an error a stanza can cause (too large, bad XML), which
 * counts against the item alone in flight. */
void mx_out_on_end(mx_out *o, const char *stream_error, int about_data);

/* 1 when st is a component's ping barrier routed back by the server:
 * this host's, or (several hosts connected as the same domain) another
 * host's, which the server may hand to any of them. Nobody answers it
 * and it is no request for the app; only this host's count as acks. */
int mx_out_is_own_ping(const mx_out *o, xmpp_stanza_t *st);

/* Size of a buffer for mx_out_request_id with a purpose of up to 16
 * characters: "mx-" purpose "-" 32 hex digits, NUL */
#define MX_OUT_ID_SIZE 56

/* A fresh id for an iq request to the server: "mx-<purpose>-" and 32
 * random hex digits, so that nobody else can answer it in its place
 * (anyone may send us <iq type='result'> with an id they guess). 0, or
 * -1 when no random numbers are available or buf is too small. */
int mx_out_request_id(const char *purpose, char *buf, size_t size);

/* 1 when st, an answer to a request we sent without 'to', comes from our
 * server: no 'from', or the account's bare JID, or its domain (RFC 6120
 * 10.3.3); 0 when any other entity sent it. Check it, and the id, before
 * believing an iq result or error (acks, the roster, ...). */
int mx_out_from_server(const mx_app *app, xmpp_stanza_t *st);

/* What must not be in the log (libstrophe's trace of every stanza): the
 * random part of this session's ping ids, which would let a reader of
 * the log forge acks. NULL when there is none. */
const char *mx_out_log_secret(const mx_out *o);

/* On stop: ask the server to acknowledge everything sent. Returns 1 when
 * it did within ms, running the loop meanwhile. */
int mx_out_flush(mx_out *o, unsigned int ms);

#endif
