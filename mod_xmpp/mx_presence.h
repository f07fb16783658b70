/* SPDX-License-Identifier: Apache-2.0 */
/* mx_presence: each contact's last presence, for get_presence.
 *
 * D/presence/BARE, one file per contact in the app's spool directory D,
 * written by the holder, read by any process: line 1 "available" or
 * "unavailable", line 2 the show (empty, or one of chat away dnd xa),
 * then the status (the rest of the file, may contain newlines). BARE is
 * the contact's bare JID as servers normalize it (mx_jid_bare_prep), so
 * "Alice@Example.org" finds what the server reported for alice@example.org.
 * Not fsynced: presence is current state, the server sends it again after
 * a reconnect.
 *
 * Bounded: the status is stored cut to MX_PRESENCE_STATUS_MAX characters,
 * so a file is never larger than MX_PRESENCE_FILE_MAX bytes (readers read
 * no more). The number of files is the holder's to bound (it stores only
 * contacts, and at most a limit of them).
 *
 * POSIX only; no httpd, no APR. All functions are thread-safe. */
#ifndef MX_PRESENCE_H
#define MX_PRESENCE_H

#include <stddef.h>

/* App Engine's MAX_STATUS_MESSAGE_SIZE, in characters */
#define MX_PRESENCE_STATUS_MAX 1024
/* "unavailable\n" + a show + "\n" + the status in UTF-8 */
#define MX_PRESENCE_FILE_MAX (16 + 4 * MX_PRESENCE_STATUS_MAX)

/* Write the file for jid's bare JID (atomically: tmp file + rename).
 * show and status may be NULL; a show other than chat, away, dnd, xa is
 * stored empty (RFC 6121 allows no other); the status is cut to
 * MX_PRESENCE_STATUS_MAX characters (at a character boundary, or at the
 * first byte that is not UTF-8). Returns 0, or -1 (errno set; EINVAL for
 * an invalid jid). */
int mx_presence_store(const char *dir, const char *jid, int available,
                      const char *show, const char *status);

/* Read it: *available, the show into show (truncated to showsize, may be
 * NULL) and a malloc'd status into *status (may be NULL).
 * Returns 0 when known, 1 when the contact is unknown (no file; App
 * Engine answered "not available" then), -1 on error (errno set). */
int mx_presence_load(const char *dir, const char *jid, int *available,
                     char *show, size_t showsize, char **status);

/* Forget jid's presence (remove its file). Returns 0 when it is gone
 * (also when it already was), -1 otherwise (errno set). */
int mx_presence_remove(const char *dir, const char *jid);

/* Remove every presence file whose name (a normalized bare JID) keep
 * answers 0 for; temporary files are left to mx_queue_clean_tmp. Returns
 * the number of files kept, -1 when D/presence cannot be read (0 when it
 * does not exist). */
long mx_presence_prune(const char *dir,
                       int (*keep)(const char *bare, void *ud), void *ud);

/* The path of jid's presence file into buf. Returns 0, or -1 when the
 * jid is invalid or the path does not fit. */
int mx_presence_path(const char *dir, const char *jid, char *buf,
                     size_t size);

/* The length of the longest prefix of s (len bytes) that has at most
 * max characters and ends at a character boundary; it stops at the first
 * byte that is not UTF-8. */
size_t mx_utf8_prefix(const char *s, size_t len, size_t max);

#endif
