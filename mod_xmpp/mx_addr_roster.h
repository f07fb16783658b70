/* SPDX-License-Identifier: Apache-2.0 */
/* mx_addr_roster: a component's rosters, one per address it owns. The server
 * keeps a client's roster; a component has none there (XEP-0114), so the
 * module keeps them itself, in the app's spool directory D:
 *   D/addresses/ADDR/roster          one contact a line: "BARE STATE\n",
 *                                    STATE from (it is subscribed to
 *                                    ADDR), to (ADDR to it) or both
 *   D/addresses/ADDR/presence/BARE   its last presence as ADDR saw it
 *                                    (mx_presence_store/load on the
 *                                    directory D/addresses/ADDR)
 * ADDR is the bare address, domain and localpart lowercased: a valid bare
 * JID has no '/' and is never "." or "..", so it is a safe file name.
 * POSIX only; no httpd, no APR. */
#ifndef MX_ADDR_ROSTER_H
#define MX_ADDR_ROSTER_H

#include <stddef.h>

#define MX_ADDR_FROM 1  /* the contact is subscribed to the address */
#define MX_ADDR_TO   2  /* the address is subscribed to the contact */

/* D/addresses/ADDR for the bare form of `address` into buf. 0, or -1
 * (EINVAL: not a valid JID; ENAMETOOLONG). */
int mx_addr_roster_dir(const char *dir, const char *address, char *buf,
                  size_t size);

/* Replace the roster of `address` by `text` (len bytes of lines) durably:
 * a temporary file, fsync, rename, fsync of the directory; creates the
 * directories. 0, or -1 with errno. */
int mx_addr_roster_save(const char *dir, const char *address, const char *text,
                   size_t len);

/* One line of a roster file: the contact (NUL-terminated in place) and its
 * MX_ROSTER_* bits; 0 for a line that is not one. */
int mx_addr_roster_line(char *line, const char **contact);

/* "from", "to" or "both" for bits (NULL for 0). */
const char *mx_addr_roster_state_name(int bits);

#endif
