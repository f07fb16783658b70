/* SPDX-License-Identifier: Apache-2.0 */
/* mod_xmpp_component: for a component, what a server does for a client
 * (RFC 6121), since a component has no roster or presence service at the
 * server: one roster per address it owns, subscriptions accepted, probes
 * answered, contacts' presence kept, the app's presence sent to each
 * address's subscribers. Rosters live in the spool (mx_addr_roster.h). */
#ifndef MOD_XMPP_COMPONENT_H
#define MOD_XMPP_COMPONENT_H

#include <strophe.h>

#include "mod_xmpp_app.h"
#include "mod_xmpp_outbound.h"

/* Most contacts kept over all addresses: a remote party cannot make the
 * module keep more (subscriptions beyond are refused, and logged). */
#define MX_CROSTER_MAX 10000

typedef struct mx_croster mx_croster;

/* Reads every address's roster from the spool. */
mx_croster *mx_croster_create(mx_app *app);

/* A session logged in: presence to every subscriber of every address,
 * and probes to the contacts the addresses are subscribed to. */
void mx_croster_on_login(mx_croster *cr, xmpp_ctx_t *ctx, mx_out *out);

/* A presence stanza to one of the addresses. */
void mx_croster_on_presence(mx_croster *cr, xmpp_stanza_t *st);

/* Stopping: unavailable presence to every subscriber. */
void mx_croster_on_close(mx_croster *cr);

#endif
