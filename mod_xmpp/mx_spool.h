/* SPDX-License-Identifier: Apache-2.0 */
/* mx_spool: the spool of the outbound queue, a directory in the manner
 * of Postfix's maildrop and of Maildir. Senders use it when no child
 * holds the app's connection to take their items over its socket
 * (mx_qclient); the holder's queue thread moves spooled items into its
 * journal (mx_journal), in order, and removes them from here.
 *
 * "Accepted means durable": mx_queue_put returns success only after the
 * item is on disk (with sync), so it survives a crash of any process, an
 * httpd restart and a reboot.
 *
 * Layout of a queue directory D (created by the module, mode 0700):
 *   D/tmp/NAME     an item being written (O_EXCL, 0600); a crashed writer
 *                  leaves it here, mx_queue_clean_tmp removes it later
 *   D/new/NAME     a complete item (mx_item.h), waiting to be sent
 *   D/bad/NAME     an item the holder refused (mx_queue_item_check: it
 *                  could not parse it, or it breaks the rules), kept for
 *                  a human
 *   D/FULL         the "full" flag: see mx_full.h
 *   D/presence/BARE  last presence of a contact: see mx_presence.h
 *
 * NAME is fixed-width "%020llu-%010ld-%08u": CLOCK_REALTIME in
 * nanoseconds, pid, per-process counter. Names sort in enqueue order:
 * within one process the time part is made strictly increasing, even when
 * the clock steps back; across processes the order is the clock's.
 * Files in new/ whose name does not match are ignored (never touched).
 *
 * POSIX only; no httpd, no APR. All functions are thread-safe. */
#ifndef MX_SPOOL_H
#define MX_SPOOL_H

#include <stddef.h>

/* Length of an item name, and the size of a buffer that holds one */
#define MX_QUEUE_NAME_LEN 40
#define MX_QUEUE_NAME_SIZE (MX_QUEUE_NAME_LEN + 1)

/* Add an item: write data to D/tmp/NAME, fsync it (if sync), rename it to
 * D/new/NAME, fsync D/new (if sync). Creates tmp/ and new/ (0700) when
 * missing. The item's NAME goes to name (may be NULL; namesize >=
 * MX_QUEUE_NAME_SIZE).
 * Returns 0 on success; MX_QUEUE_FULL (mx_full.h) when D/FULL exists; -1
 * on any other failure. On failure err (may be NULL) gets a one-line
 * reason (the path and the system's error text) and nothing is left in
 * tmp/ or new/. */
int mx_queue_put(const char *dir, const char *data, size_t len, int sync,
                 char *name, size_t namesize, char *err, size_t errsize);

/* The (up to) max oldest item names in D/new, sorted oldest first, as a
 * malloc'd array of malloc'd strings (free with mx_queue_free_list).
 * Memory is proportional to max, not to the number of items.
 * A missing new/ is an empty queue. Returns 0, or -1 (errno set). */
int mx_queue_list(const char *dir, size_t max, char ***names, size_t *count);
void mx_queue_free_list(char **names, size_t count);

/* The content of item name: malloc'd, NUL-terminated (the NUL is not
 * counted in len). Returns 0, or -1 (errno set; EINVAL for a name that
 * is not an item name, ENOENT when the item is gone, EFBIG when it is
 * larger than MX_QUEUE_ITEM_MAX (mx_item.h): not read, set it aside). */
int mx_queue_read(const char *dir, const char *name, char **data,
                  size_t *len);

/* Remove item name. Returns 0 when it is gone (also when it already was),
 * -1 otherwise (errno set). Not fsynced: after a crash an item may come
 * back and be sent again; its origin-id lets receivers drop the copy. */
int mx_queue_remove(const char *dir, const char *name);

/* Move item name to D/bad/ (created 0700 when missing), out of the way
 * of the items behind it but kept for a human to look at.
 * Returns 0, or -1 (errno set). */
int mx_queue_set_aside(const char *dir, const char *name);

/* Read D/relpath (e.g. "roster", "presence/BARE") into a malloc'd,
 * NUL-terminated buffer; len may be NULL. relpath must be relative and
 * free of ".." components. Returns 0, or -1 (errno set: ENOENT when the
 * file does not exist, EINVAL for a refused relpath). */
int mx_queue_read_file(const char *dir, const char *relpath, char **data,
                       size_t *len);

/* Items in D/new (names that match the format); 0 when new/ is missing,
 * -1 on error (errno set). Reads the whole directory: for tests and
 * tools, not for every send (the holder counts its journal). */
long mx_queue_count(const char *dir);

/* Remove files in D/tmp with an item name (and temporary files in
 * D/presence) older than the given age: leftovers of writers that crashed
 * between create and rename. */
void mx_queue_clean_tmp(const char *dir, int older_than_seconds);

/* 1 when name has the item name format, else 0 */
int mx_queue_name_valid(const char *name);

#endif
