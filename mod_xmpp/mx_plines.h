/* SPDX-License-Identifier: Apache-2.0 */
/* mx_plines: the presence of one contact's resources as the shared
 * presence cache holds it (XMPPPresenceCache, mod_xmpp_store.c): one line
 * per resource, "UPDATED\tSHOW\tRESOURCE\n", UPDATED twenty digits
 * (microseconds since 1970, zero-padded, so that text order is time
 * order), SHOW empty or chat, away, dnd, xa, RESOURCE a valid JID.
 *
 * The text comes from outside (another host wrote it, or anyone with
 * access to the cache): every line is checked, the bad ones skipped.
 * Portable: no httpd, no APR. */
#ifndef MX_PLINES_H
#define MX_PLINES_H

#include <stddef.h>

#define MX_PLINES_TIME_LEN 20

typedef struct {
    const char *updated, *show, *resource;  /* into the parsed text */
} mx_pline;

/* 1 when show is "" or one of RFC 6121's: chat, away, dnd, xa */
int mx_pline_show_ok(const char *show);

/* Split text (NUL-terminated, changed in place) into at most max good
 * lines; *bad (may be NULL) is set to 1 when some line was skipped.
 * Returns how many. */
int mx_plines_parse(char *text, mx_pline *lines, int max, int *bad);

/* The index of the newest line (latest UPDATED; the first of equals),
 * -1 when n is 0. */
int mx_plines_newest(const mx_pline *lines, int n);

#endif
