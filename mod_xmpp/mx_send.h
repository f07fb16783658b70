/* SPDX-License-Identifier: Apache-2.0 */
/* mx_send: the rules and the stanza text of App Engine's four send
 * operations (send_message, send_invite, send_presence, get_presence).
 * Everything a sender can get wrong is refused here, before the stanza is
 * queued: a stanza the server would refuse (or worse, answer with a stream
 * error that drops the connection) must never reach the queue.
 * Every front end (xmpp-send, the xmpp-api handler, the optional
 * functions) uses these, so they all give the same answers.
 * Portable: no httpd, no APR; libxml2 for the raw XML check only. */
#ifndef MX_SEND_H
#define MX_SEND_H

#include <stddef.h>

/* App Engine's exception classes, in the order of its documentation */
typedef enum {
    MX_OK = 0,
    MX_ERR_NO_BODY,
    MX_ERR_INVALID_JID,
    MX_ERR_INVALID_TYPE,
    MX_ERR_INVALID_XML,
    MX_ERR_INVALID_SHOW,
    MX_ERR_INVALID_STATUS
} mx_err;

/* Longest status, in characters (code points) as App Engine counted */
#define MX_STATUS_MAX_CHARS 1024

/* Size of a buffer for mx_new_id: "mx-" + 32 hex digits + NUL */
#define MX_ID_SIZE 36

/* Call once before threads start (httpd: post_config or child_init;
 * a command: main). libxml2 wants its global set-up done by one thread;
 * calling it again is harmless.
 * Built with -DMX_SEND_XML_DLOPEN (for a single-threaded command), libxml2
 * is not linked but loaded on the first raw XML check (or by this call);
 * if it cannot be loaded, raw XML is refused as InvalidXmlError with a
 * reason that says so. */
void mx_send_init(void);

/* The App Engine name of an error ("NoBodyError", "InvalidJidError",
 * "InvalidTypeError", "InvalidXmlError", "InvalidShowError",
 * "InvalidStatusError"); NULL for MX_OK. */
const char *mx_err_name(mx_err e);

/* Is from_jid one of the app's own addresses? NULL or "" means "the
 * default" and is accepted.
 * Client mode (app_bare is "user@domain"): exactly the bare JID (domain
 * compared without case), or app_bare + "/" + app_resource.
 * Component mode (app_bare is a bare domain, no '@'): any valid JID of
 * that domain, with or without localpart and resource: the component
 * owns them all.
 * Returns MX_OK or MX_ERR_INVALID_JID. */
mx_err mx_check_from(const char *from_jid, const char *app_bare,
                     const char *app_resource);

/* A recipient: a valid JID, bare or full. MX_OK or MX_ERR_INVALID_JID. */
mx_err mx_check_to(const char *jid);

/* send_message rules, checked in App Engine's order:
 * - body NULL or "" -> MX_ERR_NO_BODY;
 * - type NULL means "chat"; else one of chat, error, groupchat, headline,
 *   normal -> MX_ERR_INVALID_TYPE;
 * - the body must be valid UTF-8 with only characters XML 1.0 allows
 *   (no NUL, no C0 controls but TAB, LF, CR) -> MX_ERR_INVALID_XML.
 *   This holds for text bodies too: App Engine had no such case, but such
 *   a body cannot be put in a stanza at all, and InvalidXmlError is the
 *   error that says so;
 * - with raw_xml, the body is the XML children of <message> (several
 *   elements and text are fine) and must be well-formed, namespace
 *   well-formed, and within what XMPP allows (RFC 6120 11.1: no DOCTYPE,
 *   no comments, no processing instructions, no entity other than the
 *   five predefined ones) -> MX_ERR_INVALID_XML.
 * why (may be NULL) gets a short static English reason on error. */
mx_err mx_message_check(const char *body, const char *type, int raw_xml,
                        const char **why);

/* A stanza to go to the server as it is (an inbound handler's
 * application/xmpp+xml answer): exactly one element, <message>,
 * <presence> or <iq>, unprefixed, in no namespace or jabber:client (the
 * stream's), nothing but white space around it, no XML declaration, and
 * within the rules above (UTF-8, XML characters, well-formed, RFC 6120
 * 11.1). Returns NULL, or a short static English reason. */
const char *mx_stanza_problem(const char *xml);

/* The message stanza as malloc'd text (NULL when out of memory):
 * <message xmlns="jabber:client" from=".." to=".." type=".." id="ID">
 * <body>escaped body</body><origin-id xmlns="urn:xmpp:sid:0" id="ID"/>
 * </message>. from NULL -> no from attribute; type NULL -> "chat".
 * With raw_xml the body is inserted verbatim instead of <body>.
 * id is the caller's unique id (mx_new_id); it is also the XEP-0359
 * origin-id, so receivers can drop the duplicates a resend after a
 * reconnect may cause. Arguments must have passed the checks above. */
char *mx_message_stanza(const char *from, const char *to, const char *type,
                        const char *body, int raw_xml, const char *id);

/* send_presence rules:
 * - type NULL, "available", "unavailable" or "probe" -> else
 *   MX_ERR_INVALID_TYPE;
 * - show NULL, "", "chat", "away", "dnd" or "xa" -> else
 *   MX_ERR_INVALID_SHOW;
 * - status NULL, or valid UTF-8 (XML characters only) of at most
 *   MX_STATUS_MAX_CHARS code points -> else MX_ERR_INVALID_STATUS. */
mx_err mx_presence_check(const char *type, const char *show,
                         const char *status);

/* The presence stanza as malloc'd text. "available" (or NULL) gets no type
 * attribute. to NULL -> no to attribute (a broadcast; the queue's
 * "subscribers" items use that). show and status become <show> and
 * <status> when not empty, except that RFC 6121 gives no meaning to
 * <show> in unavailable presence nor to either in a probe, so those are
 * left out there. No origin-id: presence is state, a duplicate is
 * harmless. */
char *mx_presence_stanza(const char *from, const char *to, const char *type,
                         const char *show, const char *status,
                         const char *id);

/* send_invite: <presence ... type="subscribe"/>, malloc'd. */
char *mx_invite_stanza(const char *from, const char *to, const char *id);

/* A fresh unique id: "mx-" + 32 hex digits of 16 random bytes.
 * Returns 0, or -1 when size < MX_ID_SIZE or no randomness is available. */
int mx_new_id(char *buf, size_t size);

#endif
