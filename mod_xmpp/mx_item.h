/* SPDX-License-Identifier: Apache-2.0 */
/* mx_item: the format of an outbound queue item, the one thing a sender
 * hands the holder, whether over the queue socket (mx_qclient) or through
 * the spool (mx_spool), and what the journal (mx_journal) records.
 *
 * Item content (format version 1): one header line, then the stanza:
 *   "MX1 <kind>\n" <stanza text, UTF-8 XML, no trailing newline>
 * kind "stanza":      send the stanza as it is;
 * kind "subscribers": the stanza has no "to"; the holder sends a copy to
 *                     every subscriber of the app (send_presence to
 *                     "subscribers").
 * A reader meeting another version or kind must not send the item (and
 * should set it aside, mx_queue_set_aside).
 *
 * POSIX only; no httpd, no APR. Thread-safe. */
#ifndef MX_ITEM_H
#define MX_ITEM_H

#include <stddef.h>

typedef enum {
    MX_ITEM_STANZA = 0,   /* "stanza" */
    MX_ITEM_SUBSCRIBERS   /* "subscribers" */
} mx_item_kind;

/* An item's content, split */
typedef struct {
    mx_item_kind kind;
    const char *stanza;     /* points into the item's data */
    size_t stanza_len;
} mx_queue_item;

/* Largest item (header and stanza) the queue takes: the journal's
 * largest record. mx_queue_read refuses larger files (EFBIG). */
#define MX_QUEUE_ITEM_MAX (16u * 1024 * 1024)

/* "MX1 <kind>\n" + the stanza_len bytes of stanza, malloc'd and
 * NUL-terminated; its length (not counting the NUL) in *len when len is
 * not NULL. NULL when out of memory or for an unknown kind. */
char *mx_queue_item_make(mx_item_kind kind, const char *stanza,
                         size_t stanza_len, size_t *len);

/* Split an item's content (as mx_queue_read returned it). Returns 0, or
 * -1 for another format version, an unknown kind or an empty stanza. */
int mx_queue_item_parse(const char *data, size_t len, mx_queue_item *item);

/* What the holder checks in every item a sender hands it (over the queue
 * socket or in the spool), since anyone who runs as httpd's User can
 * write there: the size (MX_QUEUE_ITEM_MAX), no NUL byte, the format
 * (mx_queue_item_parse), and a stanza the way mx_ops makes them: one
 * <message>, <presence> or <iq> element and nothing else, well-formed
 * XML within XMPP's rules (mx_message_check's raw XML check), a 'from'
 * that is absent or one of the app's own addresses (mx_check_from), a
 * 'to' that is a valid JID (mx_check_to; none in a "subscribers" item,
 * which must be a presence), a known 'type' for the element. Addresses
 * and types written with character references are refused.
 * Returns 0, or -1 with a short static English reason in *why. */
int mx_queue_item_check(const char *data, size_t len, const char *app_bare,
                        const char *app_resource, const char **why);

#endif
