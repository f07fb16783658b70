/* SPDX-License-Identifier: Apache-2.0 */
/* mod_xmpp_store: where what every host of an app must answer alike
 * lives (XMPPStateStore).
 *
 *  - spool (the default): one host. The holder keeps subscriptions in
 *    memory and in the spool's files, as it always did; the lookup of
 *    "subscribers" asks the holder's memory (the contacts module
 *    registers it here), no file is read per send.
 *  - dbd: several hosts of one component domain share a database through
 *    mod_dbd (PostgreSQL for several hosts, SQLite for one). Who is
 *    subscribed to which address, and the presence of each contact's
 *    resources as any host received it, are rows; every lookup reads
 *    them (nothing is kept stale in memory). Tables are created when
 *    missing, statements prepared once per database connection.
 *
 * Rows are outside bytes (another host, or anyone with access to the
 * database, wrote them): addresses and contacts are valid, normalized
 * bare JIDs of bounded length, and a show is one of RFC 6121's, or the
 * row is skipped (logged).
 *
 * The holder thread has no request: it uses ap_dbd_open/ap_dbd_close on
 * the app's server; requests use ap_dbd_acquire. */
#ifndef MOD_XMPP_STORE_H
#define MOD_XMPP_STORE_H

#include "apr_pools.h"
#include "httpd.h"

#include "mod_xmpp_app.h"

#define MX_STORE_FROM 1  /* the contact is subscribed to the address */
#define MX_STORE_TO   2  /* the address is subscribed to the contact */

/* Resources kept per contact, as the client mode's roster does */
#define MX_STORE_RESOURCES_MAX 64

/* 1 when the app keeps its state in the shared store (XMPPStateStore dbd,
 * component mode); 0: the spool, as before. */
int mx_store_shared(const mx_app *app);

/* Hooks: configtest checks that mod_dbd is loaded and a DBDriver set for
 * every app with XMPPStateStore dbd; child_init makes the table of the
 * holders' in-memory subscriber lists. */
void mx_store_register_hooks(apr_pool_t *p);
void mx_store_child_init(apr_pool_t *pchild);

/* ---- subscribers: one interface for both backends ---- */

typedef void mx_store_contact_fn(const char *address, const char *contact,
                                 void *ud);
/* The holder's in-memory list (spool backend): call fn for every
 * subscriber of address (a normalized bare JID; ignored in client mode). */
typedef void mx_store_local_fn(void *local, const char *address,
                               mx_store_contact_fn *fn, void *ud);

/* The holder registers its list (holder thread). */
void mx_store_set_local(const mx_app *app, mx_store_local_fn *each,
                        void *local);

/* Every subscriber of address (bare, any case; NULL: the app's own),
 * from the store or the holder's memory. Holder thread. 0, or -1 when
 * the store could not be read (logged). */
int mx_store_subscribers(mx_app *app, apr_pool_t *p, const char *address,
                         mx_store_contact_fn *fn, void *ud);

/* ---- the shared backend (mx_store_shared), holder thread ---- */

/* The MX_STORE_* bits of contact at address into *bits (0: no row).
 * address and contact are normalized bare JIDs. 0, or -1 (logged). */
int mx_store_sub_get(mx_app *app, apr_pool_t *p, const char *address,
                     const char *contact, int *bits);

/* Set or clear one bit; a pair with no bit left goes, with its presence.
 * 0, or -1 (logged). */
int mx_store_sub_change(mx_app *app, apr_pool_t *p, const char *address,
                        const char *contact, int bit, int set);

/* Pairs kept for the app, into *n. 0, or -1 (logged). */
int mx_store_sub_count(mx_app *app, apr_pool_t *p, long *n);

/* fn for every pair of the app with bit set (every address). */
int mx_store_sub_all(mx_app *app, apr_pool_t *p, int bit,
                     mx_store_contact_fn *fn, void *ud);

/* The presence of one resource (full JID `from`) of contact as address
 * received it: available (show, status may be NULL; status cut to
 * MX_PRESENCE_STATUS_MAX characters) or not. Unavailable from a bare JID
 * (a server answering a probe for an account with no session) forgets
 * every resource. 0, or -1 (logged). */
int mx_store_presence_put(mx_app *app, apr_pool_t *p, const char *address,
                          const char *contact, const char *from,
                          int available, const char *show,
                          const char *status);

/* ---- get_presence (any thread, any process) ---- */

/* The contact's presence as address saw it: *available 1 when some
 * resource is available, show its show ("" if none). r may be NULL (the
 * optional functions have a server and a pool only). address and jid as
 * given by the caller (checked here). 0, or -1 (logged). */
int mx_store_presence_get(mx_app *app, request_rec *r, apr_pool_t *p,
                          const char *address, const char *jid,
                          int *available, char *show, size_t showsize);

#endif
