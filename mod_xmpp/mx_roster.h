/* SPDX-License-Identifier: Apache-2.0 */
/* mx_roster: the holder's table of the app's contacts, the part of the
 * contacts module that holds state: each contact's subscription, its
 * resources online, whether its presence is stored; bounded, and shrinking
 * as contacts and resources go (every byte malloc'd per contact and freed
 * with it). The caller does the XMPP and the files (mx_presence).
 *
 * Only contacts whose presence the server gives us (subscription "to" or
 * "both") have resources followed and presence stored: anyone may send
 * presence, and a stranger's must not make state grow.
 *
 * Portable: no httpd, no APR. Not thread-safe (the holder thread alone). */
#ifndef MX_ROSTER_H
#define MX_ROSTER_H

#include <stddef.h>

#define MX_SUB_FROM 1u /* the contact gets our presence: a subscriber */
#define MX_SUB_TO   2u /* we get the contact's presence */

/* what mx_roster_set tells the caller to do */
#define MX_ROSTER_SUBSCRIBERS 1 /* the set of subscribers changed */
#define MX_ROSTER_FORGET      2 /* remove the contact's stored presence */

typedef struct mx_roster mx_roster;

/* A table that stores the presence of at most max_stored contacts and
 * follows at most max_resources resources each. NULL when out of memory. */
mx_roster *mx_roster_create(size_t max_stored, size_t max_resources);
void mx_roster_destroy(mx_roster *r);

/* "none", "to", "from", "both" (or NULL) as MX_SUB_* bits */
unsigned int mx_roster_subscription(const char *sub);

/* Set the subscription of bare (a normalized bare JID); 0 removes it.
 * Returns MX_ROSTER_* bits, or -1 when out of memory. */
int mx_roster_set(mx_roster *r, const char *bare, unsigned int sub);

/* The subscription of bare, 0 when it is not in the roster */
unsigned int mx_roster_get(const mx_roster *r, const char *bare);

/* A full roster follows: mx_roster_set marks what is still in it, and
 * mx_roster_end removes the rest, calling gone (may be NULL) for each
 * with whether its presence was stored. */
void mx_roster_begin(mx_roster *r);
void mx_roster_end(mx_roster *r,
                   void (*gone)(const char *bare, int stored, void *ud),
                   void *ud);

/* Resource full of bare is now available or not. Returns how many of its
 * resources are online, or -1 when bare does not give us its presence
 * (not in the roster, or not subscribed to): then nothing is kept. */
long mx_roster_resource(mx_roster *r, const char *bare, const char *full,
                        int available);

/* May bare's presence be stored? 1: yes (it counts as stored from now
 * on), 0: no, the table is full, -1: no, and it just became full since
 * there was last room (log it). */
int mx_roster_claim(mx_roster *r, const char *bare);

/* A new session: no resource online, no presence stored (the caller
 * removes the files). */
void mx_roster_clear_presence(mx_roster *r);

/* Call fn for every contact */
void mx_roster_each(const mx_roster *r,
                    void (*fn)(const char *bare, unsigned int sub, void *ud),
                    void *ud);

/* The roster file, <spool>/roster: the subscribers (MX_SUB_FROM), one
 * normalized bare JID (mx_jid_bare_prep) a line, in no order.
 * mx_roster_subscribers_text: the file's text, malloc'd (*len its length;
 * "" for none), NULL when out of memory.
 * mx_roster_read_subscribers: a text of that form (changed in place)
 * into the table as subscribers; a line that is not a normalized bare
 * JID is skipped (the file is outside bytes once on disk). Returns the
 * number of lines taken, -1 when out of memory. */
char *mx_roster_subscribers_text(const mx_roster *r, size_t *len);
long mx_roster_read_subscribers(mx_roster *r, char *text);

/* Contacts in the table, contacts with a resource online, contacts whose
 * presence is stored */
size_t mx_roster_count(const mx_roster *r);
size_t mx_roster_online(const mx_roster *r);
size_t mx_roster_stored(const mx_roster *r);

#endif
