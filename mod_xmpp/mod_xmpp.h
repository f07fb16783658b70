/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file  mod_xmpp.h
 * @brief mod_xmpp's optional functions: send XMPP messages, invitations
 *        and presence from other httpd modules.
 *
 * @defgroup MOD_XMPP mod_xmpp
 * @ingroup  APACHE_MODS
 * @{
 *
 * Look the functions up once (e.g. in your post_config hook) with
 * APR_RETRIEVE_OPTIONAL_FN; they are NULL when mod_xmpp is not loaded.
 *
 * Every function works in any child, from any thread: it validates its
 * arguments the way App Engine did and puts the stanza in the app's durable
 * queue. MX_NO_ERROR means the stanza is on disk and will be delivered,
 * after a crash, a restart or an outage of the XMPP server if need be.
 *
 * The app is chosen by server: pass the server_rec of the virtual host
 * that has "XMPPEngine On" (r->server in a request).
 */
#ifndef MOD_XMPP_H
#define MOD_XMPP_H

#include "apr_optional.h"
#include "httpd.h"

/* A C++ module (or one built with a C++ compiler) must see C names. */
#ifdef __cplusplus
extern "C" {
#endif

/** Per recipient status, as App Engine's send_message returned */
#define MOD_XMPP_NO_ERROR      0
#define MOD_XMPP_INVALID_JID   1
#define MOD_XMPP_OTHER_ERROR   2

/**
 * Send a message to one or more recipients.
 * @param s         the app's server (r->server)
 * @param p         pool for *error
 * @param jids      recipients, bare or full JIDs
 * @param njids     number of recipients
 * @param body      text (escaped), or XML children of <message> if raw_xml
 * @param from_jid  NULL for the app's JID; else the app's bare JID or its
 *                  full JID with the app's resource; a component (the app
 *                  owns a domain): any address of the domain, to which the
 *                  app's resource is added when it has none
 * @param type      NULL for "chat"; chat, error, groupchat, headline, normal
 * @param raw_xml   non-zero: body is inserted as XML (must be well formed)
 * @param statuses  out: njids MOD_XMPP_* statuses, in the order of jids
 * @param error     out: NULL on success, else App Engine's error name
 *                  ("NoBodyError", "InvalidJidError", "InvalidTypeError",
 *                  "InvalidXmlError") followed by ": " and a reason
 * @return APR_SUCCESS when the call was valid (look at statuses),
 *         APR_EINVAL when it was refused (see *error),
 *         APR_ENOENT when s is not an app
 */
APR_DECLARE_OPTIONAL_FN(apr_status_t, mod_xmpp_send_message,
                        (server_rec *s, apr_pool_t *p,
                         const char *const *jids, int njids,
                         const char *body, const char *from_jid,
                         const char *type, int raw_xml, int *statuses,
                         const char **error));

/**
 * Send a presence subscription request (an invitation) to jid.
 * @param s         the app's server
 * @param p         pool for *error
 * @param jid       the contact
 * @param from_jid  NULL for the app's JID
 * @param status    out: a MOD_XMPP_* status
 * @param error     out: NULL, or the error name and reason
 * @return APR_SUCCESS, APR_EINVAL (see *error) or APR_ENOENT (not an app)
 */
APR_DECLARE_OPTIONAL_FN(apr_status_t, mod_xmpp_send_invite,
                        (server_rec *s, apr_pool_t *p, const char *jid,
                         const char *from_jid, int *status,
                         const char **error));

/**
 * Send presence to jid, or to every subscriber when jid is "subscribers".
 * @param s         the app's server
 * @param p         pool for *error
 * @param jid       the contact, or "subscribers"
 * @param status_text NULL, or at most 1024 characters
 * @param from_jid  NULL for the app's JID
 * @param type      NULL for "available"; available, unavailable, probe
 * @param show      NULL, or chat, away, dnd, xa
 * @param status    out: a MOD_XMPP_* status
 * @param error     out: NULL, or "InvalidTypeError", "InvalidShowError",
 *                  "InvalidStatusError", "InvalidJidError" and a reason
 * @return APR_SUCCESS, APR_EINVAL (see *error) or APR_ENOENT (not an app)
 */
APR_DECLARE_OPTIONAL_FN(apr_status_t, mod_xmpp_send_presence,
                        (server_rec *s, apr_pool_t *p, const char *jid,
                         const char *status_text, const char *from_jid,
                         const char *type, const char *show, int *status,
                         const char **error));

/**
 * The last presence the app saw from jid.
 * @param s         the app's server
 * @param p         pool for *show and *error
 * @param jid       the contact
 * @param from_jid  NULL for the app's JID
 * @param available out: non-zero when the contact is online
 * @param show      out: its show ("" when none, or unavailable)
 * @param error     out: NULL, or "InvalidJidError" and a reason
 * @return APR_SUCCESS, APR_EINVAL (see *error) or APR_ENOENT (not an app)
 */
APR_DECLARE_OPTIONAL_FN(apr_status_t, mod_xmpp_get_presence,
                        (server_rec *s, apr_pool_t *p, const char *jid,
                         const char *from_jid, int *available,
                         const char **show, const char **error));

/**
 * The last presence the app saw from each of several contacts (App
 * Engine's get_presence with a list of JIDs).
 * @param s         the app's server
 * @param p         pool for show[i] and *error
 * @param n         how many JIDs
 * @param jids      the contacts
 * @param from_jid  NULL for the app's JID
 * @param available out, n of them: non-zero when the contact is online
 * @param show      out, n of them: its show ("" when none)
 * @param valid     out, n of them: 0 when jids[i] is not a valid JID
 *                  (then available[i] is 0 and show[i] "")
 * @param error     out: NULL, or the error's name and a reason
 * @return APR_SUCCESS, APR_EINVAL (a from_jid that is not the app's, see
 *         *error) or APR_ENOENT (not an app)
 */
APR_DECLARE_OPTIONAL_FN(apr_status_t, mod_xmpp_get_presences,
                        (server_rec *s, apr_pool_t *p, int n,
                         const char *const *jids, const char *from_jid,
                         int *available, const char **show, int *valid,
                         const char **error));

/** @} */

#ifdef __cplusplus
}
#endif

#endif
