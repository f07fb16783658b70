/* SPDX-License-Identifier: Apache-2.0 */
/* mx_inbound: what an inbound stanza becomes as a request: its path under
 * XMPPInboundPath, the App Engine command split of a message body, and the
 * multipart/form-data body. Portable: no httpd, no APR. */
#ifndef MX_INBOUND_H
#define MX_INBOUND_H

#include <stddef.h>

/* The inbound kinds, the one encoding of them: a stanza's kind
 * (mx_inbound_route), a set of kinds (XMPPInboundServices, the kinds'
 * bits or'ed), and the number an inbound journal record keeps (mx_inrec:
 * on disk, so a value never changes). */
typedef enum {
    MX_KIND_MESSAGE = 0x01,
    MX_KIND_ERROR = 0x02,
    MX_KIND_SUBSCRIBE = 0x04,
    MX_KIND_PRESENCE = 0x08
} mx_inbound_kind;

/* A kind's name, as XMPPInboundServices and XMPP_KIND say it: "message",
 * "error", "subscribe", "presence"; NULL for a value that is not one
 * kind. */
const char *mx_inbound_kind_name(int kind);

/* The kind a name (as above, any case, also with App Engine's "xmpp_"
 * prefix) stands for, or 0. */
int mx_inbound_kind_of(const char *name);

/* Where a stanza goes: `path` is relative to XMPPInboundPath (for example
 * "message/chat/"), `kind` an mx_inbound_kind. Returns 0, or -1 when the
 * stanza is not posted at all (a message without body, such as a chat
 * state; an unknown presence type). `has_body` is 1 when a message has a
 * non-empty <body>. */
int mx_inbound_route(const char *name, const char *type, int has_body,
                     const char **path, int *kind);

/* App Engine's command parsing: a body "/cmd rest" (or "\cmd rest") has
 * command "cmd" and arg "rest" trimmed; any other body has no command and
 * arg = the body trimmed. Writes malloc'd strings (*command NULL when
 * none). Returns 0, -1 without memory. */
int mx_inbound_command(const char *body, char **command, char **arg);

/* multipart/form-data */
typedef struct {
    const char *name;
    const char *value;
    size_t len;
    const char *content_type; /* "text/plain; charset=UTF-8" when NULL */
} mx_form_field;

/* Room for a boundary: "mod_xmpp-" + 32 hex digits + NUL */
#define MX_BOUNDARY_SIZE 42

/* Encode fields (skipping those with a NULL value) with a random boundary
 * that occurs in none of them (found in one pass over each value, so the
 * cost is linear in the values' size whatever they contain). Returns a
 * malloc'd body of *len bytes and writes the boundary into boundary
 * (boundary_size at least MX_BOUNDARY_SIZE); NULL without memory or
 * randomness. */
char *mx_multipart(const mx_form_field *fields, size_t n, char *boundary,
                   size_t boundary_size, size_t *len);


/* An inbound stanza as the inbound journal keeps it: what its request
 * needs, so that posting it again needs no XML parser. A record's
 * payload: "MXI1 <kind>\n", then each field (path name type id from to
 * body show status stanza) as "-" when absent or "+" value, each ended by
 * a NUL byte (a stanza's text has none). */
typedef struct {
    int kind;                   /* mx_inbound_kind */
    char *path, *name, *type, *id, *from, *to, *body, *show, *status,
         *stanza;
} mx_inrec;

/* The payload of r, malloc'd, *len bytes; NULL without memory */
char *mx_inrec_encode(const mx_inrec *r, size_t *len);
/* Fill r (malloc'd strings) from a payload. Returns 0, or -1 when it is
 * not one (r then empty) or without memory. */
int mx_inrec_decode(const char *data, size_t len, mx_inrec *r);
void mx_inrec_clear(mx_inrec *r);

/* An error answer to a stanza (RFC 6120 8.3): `name` is the stanza's
 * element name, from/to are the answer's (the original's to/from), id the
 * original's id (may be NULL), etype cancel/wait/modify, cond a defined
 * condition such as "service-unavailable", text for people (may be NULL).
 * Malloc'd. */
char *mx_error_stanza(const char *name, const char *from, const char *to,
                      const char *id, const char *etype, const char *cond,
                      const char *text);

/* A handler's raw stanza answered by a component, which must say from
 * which of its addresses: a malloc'd copy with from="dflt" added to the
 * root element when it has no from attribute. NULL when out of memory,
 * or (with *bad set to 1) when the root's from, as written, is not an
 * address of `domain`. */
char *mx_stanza_from_component(const char *stanza, const char *dflt,
                               const char *domain, int *bad);
#endif
