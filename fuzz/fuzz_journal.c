/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_journal: the journal reader and the writer's recovery over
 * segments with any content: a crash can tear a record, a disk can
 * damage any byte.
 * Properties: mx_journal_open (recovery) takes any newest segment; a
 * record appended after recovery is read back exactly; a reader from 1
 * never crashes, every record it returns is numbered in order and below
 * the limit, every EILSEQ moves it on past the record it reports, and it
 * ends (0 or ENODATA) within a bounded number of calls: no loop.
 *
 * Input: byte 0 selects; then up to three fields separated by the 8 bytes
 * "\x01MXSEG\x01\x01": the acked file, an older segment (starting at
 * record 1), the newest segment (starting at record 1 + byte 1). */
#include "fuzz_common.h"

#include <errno.h>
#include <fcntl.h>

#include "mx_journal.h"

static const char SEP[] = "\x01MXSEG\x01\x01";

/* The fields between separators: [start, end) of each, up to 3 */
static size_t split(const uint8_t *data, size_t size, const uint8_t **s,
                    size_t *l)
{
    size_t n = 0, i, start = 0, sl = sizeof(SEP) - 1;

    for (i = 0; i + sl <= size && n < 2; i++)
        if (!memcmp(data + i, SEP, sl)) {
            s[n] = data + start;
            l[n++] = i - start;
            start = i + sl;
            i += sl - 1;
        }
    s[n] = data + start;
    l[n++] = size - start;
    return n;
}

/* Read everything below limit from record 1; returns the calls made */
static void read_all(const char *dir, mx_seq limit, size_t bound)
{
    mx_jreader *r;
    mx_seq seq, last = 0, before;
    size_t calls, len;
    char *rec;
    int rc;

    if (mx_jreader_open(dir, 1, &r) != 0)
        return;
    for (calls = 0;; calls++) {
        if (calls > bound) {
            fprintf(stderr, "reader still going after %zu calls at %llu\n",
                    calls, mx_jreader_position(r));
            abort();
        }
        before = mx_jreader_position(r);
        seq = 0;
        errno = 0;
        rc = mx_jreader_next(r, limit, &rec, &len, &seq);
        if (rc == 1) {
            FUZZ_ASSERT(rec && rec[len] == '\0');
            FUZZ_ASSERT(len <= MX_JOURNAL_RECORD_MAX);
            FUZZ_ASSERT(seq >= before && seq < limit && seq > last);
            FUZZ_ASSERT(mx_jreader_position(r) == seq + 1);
            last = seq;
            free(rec);
            continue;
        }
        FUZZ_ASSERT(rec == NULL);
        if (rc == 0) {
            FUZZ_ASSERT(mx_jreader_position(r) >= limit);
            break;
        }
        if (errno == EILSEQ) {
            /* "the reader has moved on" */
            if (mx_jreader_position(r) <= seq)
                fprintf(stderr, "EILSEQ at %llu without moving on "
                        "(position %llu)\n", seq, mx_jreader_position(r));
            FUZZ_ASSERT(mx_jreader_position(r) > seq);
            continue;
        }
        break; /* ENODATA (wait for the writer) or I/O: the caller waits */
    }
    mx_jreader_close(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[4200], err[256], *rec = NULL;
    static const char item[] = "MX1 stanza\n<message xmlns=\"jabber:client\"/>";
    const char *dir, *items[1] = { item };
    size_t lens[1] = { sizeof(item) - 1 }, n, len;
    const uint8_t *s[3];
    size_t l[3];
    mx_journal *j;
    mx_jreader *r;
    mx_seq first = 0, seq, newest = 1;
    unsigned sel;
    int rc;

    if (size < 2)
        return 0;
    sel = data[0];
    newest = 1 + data[1];
    fuzz_dir_reset();
    dir = fuzz_dir();
    snprintf(path, sizeof(path), "%s/journal", dir);
    if (mkdir(path, 0700) != 0)
        abort();
    n = split(data + 2, size - 2, s, l);
    /* one field: the newest segment; two: acked + newest; three: acked,
     * an older segment at 1, the newest */
    if (n >= 2) {
        snprintf(path, sizeof(path), "%s/journal/acked", dir);
        fuzz_put_file(path, s[0], l[0]);
    }
    if (n == 3 && newest > 1) {
        snprintf(path, sizeof(path), "%s/journal/%020llu.seg", dir, 1ULL);
        fuzz_put_file(path, s[1], l[1]);
    }
    snprintf(path, sizeof(path), "%s/journal/%020llu.seg", dir, newest);
    fuzz_put_file(path, s[n - 1], l[n - 1]);

    /* the reader over what the disk has, before any recovery, bounded by
     * a limit beyond every record it could hold */
    if (sel & 1)
        read_all(dir, newest + size / MX_JOURNAL_HEADER + 2,
                  4 * (size / MX_JOURNAL_HEADER + 4));

    /* recovery, then one record appended: it reads back as written */
    rc = mx_journal_open(dir, (sel & 2) ? 64 : 0, &j, err, sizeof(err));
    FUZZ_ASSERT(rc == 0);
    FUZZ_ASSERT(mx_journal_next(j) >= newest);
    FUZZ_ASSERT(mx_journal_acked(j) < mx_journal_next(j));
    FUZZ_ASSERT(mx_journal_append(j, items, lens, 1, &first, err,
                                  sizeof(err)) == 0);
    FUZZ_ASSERT(mx_journal_next(j) == first + 1);
    FUZZ_ASSERT(mx_jreader_open(dir, first, &r) == 0);
    rc = mx_jreader_next(r, first + 1, &rec, &len, &seq);
    if (rc != 1)
        fprintf(stderr, "record %llu appended after recovery: rc %d errno "
                "%d\n", first, rc, errno);
    FUZZ_ASSERT(rc == 1 && seq == first && len == lens[0]
                && !memcmp(rec, item, len));
    free(rec);
    mx_jreader_close(r);

    /* and the whole journal from 1 up to it, through whatever damage */
    read_all(dir, first + 1, 4 * (size / MX_JOURNAL_HEADER + 4) + 8);
    if (sel & 4)
        mx_journal_set_acked(j, first);
    mx_journal_close(j);
    return 0;
}
