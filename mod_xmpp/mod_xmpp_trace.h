/* SPDX-License-Identifier: Apache-2.0 */
/* mod_xmpp_trace: what is written about the traffic, apart from sending
 * it: the console's record of each stanza sent, the log of XMPPDevMode
 * (what App Engine's development server logged instead of sending), and
 * where the portable core's log lines go (mx_log.h). mod_xmpp_outbound
 * calls these through its hooks; nothing here sends. */
#ifndef MOD_XMPP_TRACE_H
#define MOD_XMPP_TRACE_H

#include <strophe.h>

#include "mod_xmpp_app.h"

/* Record a stanza (as queued: its text) that went out, for the console's
 * recent traffic: its element, recipient ("(subscribers)" for a presence
 * to subscribers) and body or status, as the characters they stand for
 * (no XML references left). */
void mx_trace_sent(mx_app *app, const char *stanza, int subscribers);

/* XMPPDevMode: log stanza (text, parsed with ctx) the way App Engine's
 * development server logged a send. */
void mx_trace_dev_send(mx_app *app, xmpp_ctx_t *ctx, const char *stanza);

/* An mx_log_fn: a core line about ctx (an mx_app, or NULL) to the error
 * log of its virtual host. */
void mx_trace_core_log(void *baton, void *ctx, int level, const char *msg);

#endif
