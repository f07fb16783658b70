/* SPDX-License-Identifier: Apache-2.0 */
/* mx_journal: the holder's append-only journal of outbound items.
 *
 * Senders hand items to the holding child over a local socket
 * (mx_qclient); the holder appends them here, makes a whole batch durable
 * with one fdatasync (group commit), and only then answers "accepted".
 * Its XMPP loop reads the journal in order and records how far the server
 * has acknowledged. One file write per batch instead of one file per item.
 *
 * Layout of D/journal/ (D is the app's spool directory, mode 0700):
 *   NNNNNNNNNNNNNNNNNNNN.seg  a segment; NNN (20 digits) is the number of
 *                             its first record. Records are numbered
 *                             1, 2, 3... across segments, without gaps.
 *   acked                     "N\n": every record up to N has been
 *                             acknowledged by the server. Written without
 *                             fsync: after a crash, records after an older
 *                             value are sent again, and their origin-id
 *                             lets receivers drop the copy.
 *
 * A record: a 24-byte header, then the payload (an item as
 * mx_queue_item_make builds it, "MX1 <kind>\n<stanza>"):
 *   bytes 0-3   "MXJ1"
 *   bytes 4-7   payload length, little-endian
 *   bytes 8-15  record number, little-endian
 *   bytes 16-19 CRC-32 (IEEE) of bytes 8-15 and the payload, little-endian
 *   bytes 20-23 zero
 * A crash in the middle of an append leaves a torn record at the end of
 * the newest segment; opening the journal cuts it off. A record whose CRC
 * fails but which the next record follows is damage, not a torn write:
 * it is kept, and the reader reports and skips it.
 *
 * One writer (mx_journal, the holder's queue thread) and one reader
 * (mx_jreader, the XMPP loop) per journal, each in its own thread; the
 * reader never reads past the bound the writer has made durable, which the
 * two threads share through their own atomic variable.
 * POSIX only; no httpd, no APR. */
#ifndef MX_JOURNAL_H
#define MX_JOURNAL_H

#include <stddef.h>

#define MX_JOURNAL_HEADER 24
#define MX_JOURNAL_RECORD_MAX (16u * 1024 * 1024) /* largest payload */
#define MX_JOURNAL_SEGMENT 8u * 1024 * 1024 /* start a new one after this */

typedef unsigned long long mx_seq;

/* ---- writer ---- */

typedef struct mx_journal mx_journal;

/* Open D/journal/ (created 0700 when missing) for appending: find the
 * newest segment, cut off a torn record at its end. segment_max 0 means
 * MX_JOURNAL_SEGMENT. Returns 0, or -1 with a one-line reason in err. */
int mx_journal_open(const char *dir, size_t segment_max, mx_journal **out,
                    char *err, size_t errsize);
void mx_journal_close(mx_journal *j);

/* Append n records (not yet durable: call mx_journal_sync). Their numbers
 * are *first ... *first + n - 1. Starts a new segment first when the
 * current one has reached segment_max. On failure nothing counts as
 * appended (what was partly written is cut off again).
 * Returns 0, or -1 with a reason in err. */
int mx_journal_append(mx_journal *j, const char *const *data,
                      const size_t *len, size_t n, mx_seq *first,
                      char *err, size_t errsize);

/* Make everything appended durable (fdatasync, and an fsync of the
 * directory after a new segment was started). Returns 0, or -1. */
int mx_journal_sync(mx_journal *j, char *err, size_t errsize);

/* The number the next appended record gets (1 for a new journal). */
mx_seq mx_journal_next(const mx_journal *j);

/* The acknowledged bound as the acked file had it when opened, or as last
 * set; 0 when none. */
mx_seq mx_journal_acked(const mx_journal *j);

/* Record that every record up to seq was acknowledged (ignored when not
 * above the current value, or beyond what was appended), and remove the
 * segments all of whose records are. Returns 0, or -1 (errno set). */
int mx_journal_set_acked(mx_journal *j, mx_seq seq);

/* ---- reader ---- */

typedef struct mx_jreader mx_jreader;

/* A reader of D/journal/ positioned at record number from. Returns 0 or
 * -1 (errno set). */
int mx_jreader_open(const char *dir, mx_seq from, mx_jreader **out);
void mx_jreader_close(mx_jreader *r);

/* Go back (or forward) to record number from. Returns 0 or -1. */
int mx_jreader_seek(mx_jreader *r, mx_seq from);

/* The number of the record the next call returns. */
mx_seq mx_jreader_position(const mx_jreader *r);

/* The next record, if its number is below limit (what the writer has made
 * durable): 1 with its payload in *data (malloc'd, NUL-terminated; the
 * NUL is not counted in *len) and its number in *seq; 0 when there is
 * none yet; -1 when the record cannot be read: errno EILSEQ for a damaged
 * record or a gap, *seq its number: log it; the reader has moved on, and
 * the records from *seq up to mx_jreader_position are lost. With its
 * header intact (the CRC of its content fails) only that record is
 * skipped; otherwise the reader goes on from the next intact record of
 * the segment, else from the next segment. errno ENODATA: a damaged
 * header in the newest segment with no intact record after it yet (*seq
 * its number); retry later. Other errno values are I/O errors (retry
 * later). */
int mx_jreader_next(mx_jreader *r, mx_seq limit, char **data, size_t *len,
                    mx_seq *seq);

/* ---- for tests and tools ---- */

/* CRC-32 (IEEE 802.3, as zlib's crc32), continuing from crc (0 to start) */
unsigned long mx_crc32(unsigned long crc, const void *buf, size_t len);

#endif
