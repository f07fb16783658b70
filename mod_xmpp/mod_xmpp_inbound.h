/* SPDX-License-Identifier: Apache-2.0 */
/* mod_xmpp_inbound: inbound stanzas become internal requests to the app's
 * handlers under XMPPInboundPath (run by mod_xmpp_inject.h). */
#ifndef MOD_XMPP_INBOUND_H
#define MOD_XMPP_INBOUND_H

#include "httpd.h"
#include "mod_xmpp_app.h"
#include "mod_xmpp_queue.h"

typedef struct mx_inbound mx_inbound;
/* libstrophe's and outbound's, named only: the console and the API that
 * include this header have no business with them */
struct _xmpp_ctx_t;
struct _xmpp_conn_t;
struct mx_out;

/* The holder's dispatcher for app (its pool of request threads). */
mx_inbound *mx_inbound_create(mx_app *app, mx_qserver *queue);

/* A session logged in: post the enabled kinds of stanzas from now on.
 * Call after mx_out_on_login (out numbers the stanzas) and
 * mx_contacts_on_login (so that presence is stored first). */
void mx_inbound_on_login(mx_inbound *in, struct _xmpp_ctx_t *ctx,
                         struct _xmpp_conn_t *conn, struct mx_out *out);

/* Of the first `received` stanzas of this session, how many are handled:
 * every one before the first whose request is still running, or whose
 * answer is not yet in the journal, or that arrived while stopping. What
 * the server is told (XEP-0198 h); data is the mx_inbound. */
apr_uint32_t mx_inbound_handled(void *data, apr_uint32_t received);

/* Holder thread, each turn of its loop: make the stanzas kept since the
 * last turn durable (one sync for all) and let the inbound journal forget
 * those that are done. */
void mx_inbound_flush(mx_inbound *in);

/* Stop taking stanzas and wait (bounded) for requests in flight. */
void mx_inbound_stop(mx_inbound *in, unsigned int ms);

/* The holder ends (after its last session, before its queue server
 * stops): the committer writes what it was given and ends; nothing of
 * it uses the queue or the app afterwards. */
void mx_inbound_end(mx_inbound *in);

/* What a simulated stanza's request answered */
typedef struct {
    const char *path;            /* the request's path */
    int status;
    const char *content_type;
    const char *body;
} mx_sim_result;

/* The console: post `stanza` (XML text, from a form) to the app as if it
 * had arrived, in the calling thread, and act on the answer as for a real
 * one (replies are queued). Returns NULL, or why it was not posted. */
const char *mx_inbound_simulate(request_rec *r, mx_app *app,
                                const char *stanza, mx_sim_result *res);

#endif
