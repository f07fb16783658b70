/* SPDX-License-Identifier: Apache-2.0 */
/* mod_xmpp_contacts: the app's contacts, kept by the holder: subscription
 * requests accepted as App Engine did, the roster of subscribers (for
 * send_presence to "subscribers"), each contact's last presence (for
 * get_presence), and answers to presence probes. */
#ifndef MOD_XMPP_CONTACTS_H
#define MOD_XMPP_CONTACTS_H

#include <strophe.h>

#include "mod_xmpp_app.h"
#include "mod_xmpp_outbound.h"

typedef struct mx_contacts mx_contacts;

mx_contacts *mx_contacts_create(mx_app *app);

/* A session logged in: ask for the roster, handle presence from now on. */
void mx_contacts_on_login(mx_contacts *ct, xmpp_ctx_t *ctx,
                          xmpp_conn_t *conn, mx_out *out);

/* Stopping, still connected: a component tells its subscribers it goes
 * (a client's server does that itself). */
void mx_contacts_on_close(mx_contacts *ct);

#endif
