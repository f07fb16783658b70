/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of mx_journal (the holder's append-only journal of segment
 * files) and of mx_qclient (how senders hand an item to the queue: over
 * D/queue.sock, else into the spool). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "unit.h"
#include "mx_journal.h"
#include "mx_qclient.h"
#include "mx_full.h"
#include "mx_item.h"
#include "mx_spool.h"

#define PAYLOAD_MAX 128
#define MAX_DIRS 64

/* ---- helpers ---- */

static char dirs[MAX_DIRS][64];
static int ndirs;

/* A fresh temporary directory (mkdtemp under /tmp), removed at the end */
static const char *new_dir(void)
{
    char *d;

    if (ndirs >= MAX_DIRS) {
        fprintf(stderr, "too many temporary directories\n");
        exit(2);
    }
    d = dirs[ndirs++];
    snprintf(d, sizeof(dirs[0]), "/tmp/mx-journal-test-XXXXXX");
    if (!mkdtemp(d)) {
        perror("mkdtemp");
        exit(2);
    }
    return d;
}

static void rm_rf(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    char sub[1024];

    if (!d) {
        unlink(path);
        return;
    }
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
        rm_rf(sub);
    }
    closedir(d);
    rmdir(path);
}

/* The payload of record n: 1 to 61 bytes, with a NUL, 0xff and other
 * binary bytes in it, different for every n. */
static size_t payload(mx_seq n, char *buf)
{
    size_t len = 1 + (size_t)(n * 7 % 61), i;

    for (i = 0; i < len; i++)
        buf[i] = (char)((n * 31 + i * 17 + (n >> 8)) & 0xff);
    if (len > 2)
        buf[1] = '\0';
    if (len > 3)
        buf[len - 1] = (char)0xff;
    if (len > 8)
        memcpy(buf + 2, &n, sizeof(n) < len - 3 ? sizeof(n) : len - 3);
    return len;
}

/* Append the n records next .. next + n - 1 (payload(k) each) in one
 * batch. Returns what mx_journal_append returned. */
static int append_n(mx_journal *j, size_t n, mx_seq *first)
{
    char **bufs = calloc(n ? n : 1, sizeof(*bufs));
    size_t *lens = calloc(n ? n : 1, sizeof(*lens));
    mx_seq next = mx_journal_next(j);
    char err[256] = "";
    size_t i;
    int rc;

    for (i = 0; i < n; i++) {
        bufs[i] = malloc(PAYLOAD_MAX);
        lens[i] = payload(next + i, bufs[i]);
    }
    rc = mx_journal_append(j, (const char *const *)bufs, lens, n, first,
                           err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "append: %s\n", err);
    for (i = 0; i < n; i++)
        free(bufs[i]);
    free(bufs);
    free(lens);
    return rc;
}

/* Append n records one by one (one batch each), then sync. */
static int append_single(mx_journal *j, size_t n)
{
    size_t i;
    mx_seq first;
    char err[256] = "";

    for (i = 0; i < n; i++)
        if (append_n(j, 1, &first) != 0)
            return -1;
    if (mx_journal_sync(j, err, sizeof(err)) != 0) {
        fprintf(stderr, "sync: %s\n", err);
        return -1;
    }
    return 0;
}

/* Read records below limit; each must be payload(its number), numbered
 * from expect on without gaps, NUL-terminated. Returns how many were read
 * before mx_jreader_next said 0; -1 on an error or a wrong record. */
static long read_check(mx_jreader *r, mx_seq limit, mx_seq expect)
{
    char *data, want[PAYLOAD_MAX];
    size_t len = 0, wlen;
    mx_seq seq = 0;
    long n = 0;
    int rc;

    while ((rc = mx_jreader_next(r, limit, &data, &len, &seq)) == 1) {
        wlen = payload(seq, want);
        if (seq != expect || seq >= limit || len != wlen
            || memcmp(data, want, len) != 0 || data[len] != '\0') {
            fprintf(stderr, "record %llu (expected %llu, limit %llu) is "
                    "wrong\n", seq, expect, limit);
            free(data);
            return -1;
        }
        free(data);
        expect++;
        n++;
    }
    if (rc != 0) {
        fprintf(stderr, "read error at %llu: %s\n", seq, strerror(errno));
        return -1;
    }
    if (mx_jreader_position(r) != expect) {
        fprintf(stderr, "position %llu, expected %llu\n",
                mx_jreader_position(r), expect);
        return -1;
    }
    return n;
}

static void seg_file(const char *dir, mx_seq start, char *buf, size_t size)
{
    snprintf(buf, size, "%s/journal/%020llu.seg", dir, start);
}

static long long file_size(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

static long long seg_size(const char *dir, mx_seq start)
{
    char path[512];

    seg_file(dir, start, path, sizeof(path));
    return file_size(path);
}

/* The bytes payload(from) .. payload(to - 1) take as records */
static long long records_size(mx_seq from, mx_seq to)
{
    char buf[PAYLOAD_MAX];
    long long total = 0;

    for (; from < to; from++)
        total += MX_JOURNAL_HEADER + (long long)payload(from, buf);
    return total;
}

static int cmp_seq(const void *a, const void *b)
{
    mx_seq x = *(const mx_seq *)a, y = *(const mx_seq *)b;

    return x < y ? -1 : x > y;
}

/* The first numbers of the segments in D/journal, sorted; the count */
static size_t list_segs(const char *dir, mx_seq *out, size_t max)
{
    char path[512];
    DIR *d;
    struct dirent *e;
    size_t n = 0;

    snprintf(path, sizeof(path), "%s/journal", dir);
    if (!(d = opendir(path)))
        return 0;
    while ((e = readdir(d)) != NULL && n < max) {
        if (strlen(e->d_name) == 24 && !strcmp(e->d_name + 20, ".seg"))
            out[n++] = strtoull(e->d_name, NULL, 10);
    }
    closedir(d);
    qsort(out, n, sizeof(*out), cmp_seq);
    return n;
}

static int write_at_end(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_APPEND);
    ssize_t n;

    if (fd < 0)
        return -1;
    n = write(fd, data, len);
    close(fd);
    return n == (ssize_t)len ? 0 : -1;
}

/* Flip the bits of the byte at off in path */
static int flip_byte(const char *path, long long off)
{
    int fd = open(path, O_RDWR);
    unsigned char c;
    int ok;

    if (fd < 0)
        return -1;
    ok = pread(fd, &c, 1, (off_t)off) == 1;
    c ^= 0xff;
    ok = ok && pwrite(fd, &c, 1, (off_t)off) == 1;
    close(fd);
    return ok ? 0 : -1;
}

static void read_text(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY);
    ssize_t n = -1;

    if (fd >= 0) {
        n = read(fd, buf, size - 1);
        close(fd);
    }
    buf[n > 0 ? n : 0] = '\0';
}

static unsigned long long le(const unsigned char *p, int bytes)
{
    unsigned long long v = 0;

    while (bytes-- > 0)
        v = v << 8 | p[bytes];
    return v;
}

static mx_journal *jopen(const char *dir, size_t segment_max)
{
    mx_journal *j = NULL;
    char err[256] = "";

    if (mx_journal_open(dir, segment_max, &j, err, sizeof(err)) != 0)
        fprintf(stderr, "mx_journal_open: %s\n", err);
    return j;
}

static int jsync(mx_journal *j)
{
    char err[256] = "";

    if (mx_journal_sync(j, err, sizeof(err)) != 0) {
        fprintf(stderr, "mx_journal_sync: %s\n", err);
        return -1;
    }
    return 0;
}

/* ---- 7. CRC-32 ---- */

static void test_crc(void)
{
    CHECK(mx_crc32(0, "123456789", 9) == 0xCBF43926UL);
    CHECK(mx_crc32(mx_crc32(0, "1234", 4), "56789", 5) == 0xCBF43926UL);
    CHECK(mx_crc32(0, "", 0) == 0);
    CHECK(mx_crc32(0, "a", 1) == 0xE8B7BE43UL);
    CHECK(mx_crc32(0, "The quick brown fox jumps over the lazy dog", 43)
          == 0x414FA339UL);
}

/* ---- 1. append and read back ---- */

static void test_append_read(void)
{
    const char *d = new_dir();
    static const char bin[] = "MX1 stanza\n<m>\0\xff\x01\x80\n\r</m>\0";
    const char *data2[2];
    size_t len2[2];
    mx_journal *j;
    mx_jreader *r, *r2;
    char path[512], err[256], *data, want[PAYLOAD_MAX], *big;
    unsigned char rec[MX_JOURNAL_HEADER + PAYLOAD_MAX];
    size_t len, wlen;
    mx_seq first = 0, seq = 0;
    struct stat st;
    long long size;
    unsigned long crc;

    /* a reader opened before the journal exists */
    CHECK(mx_jreader_open(d, 1, &r2) == 0);
    CHECK(r2 && mx_jreader_position(r2) == 1);
    CHECK(r2 && mx_jreader_next(r2, 1, &data, &len, &seq) == 0);

    if (!(j = jopen(d, 0))) {
        CHECK(0);
        return;
    }
    CHECK(mx_journal_next(j) == 1);
    CHECK(mx_journal_acked(j) == 0);
    snprintf(path, sizeof(path), "%s/journal", d);
    CHECK(stat(path, &st) == 0 && S_ISDIR(st.st_mode)
          && (st.st_mode & 0777) == 0700);
    CHECK(seg_size(d, 1) == 0);

    /* several batches: 1, 3, none, 1200 (more than one writev), 10 */
    CHECK(append_n(j, 1, &first) == 0 && first == 1);
    CHECK(append_n(j, 3, &first) == 0 && first == 2);
    first = 0;
    CHECK(append_n(j, 0, &first) == 0 && first == 5);
    CHECK(mx_journal_next(j) == 5);
    CHECK(append_n(j, 1200, &first) == 0 && first == 5);
    CHECK(append_n(j, 10, &first) == 0 && first == 1205);
    CHECK(mx_journal_next(j) == 1215);
    CHECK(jsync(j) == 0);
    CHECK(seg_size(d, 1) == records_size(1, 1215));

    /* the format on disk, as the header describes it */
    seg_file(d, 1, path, sizeof(path));
    {
        int fd = open(path, O_RDONLY);
        ssize_t got = fd >= 0 ? pread(fd, rec, sizeof(rec), 0) : -1;

        if (fd >= 0)
            close(fd);
        wlen = payload(1, want);
        CHECK(got == (ssize_t)sizeof(rec));
        CHECK(memcmp(rec, "MXJ1", 4) == 0);
        CHECK(le(rec + 4, 4) == wlen);
        CHECK(le(rec + 8, 8) == 1);
        crc = mx_crc32(0, rec + 8, 8);
        crc = mx_crc32(crc, want, wlen);
        CHECK(le(rec + 16, 4) == crc);
        CHECK(le(rec + 20, 4) == 0);
        CHECK(memcmp(rec + MX_JOURNAL_HEADER, want, wlen) == 0);
        /* the second record follows at once */
        CHECK(memcmp(rec + MX_JOURNAL_HEADER + wlen, "MXJ1", 4) == 0);
        CHECK(le(rec + MX_JOURNAL_HEADER + wlen + 8, 8) == 2);
    }

    /* everything, in order, then 0 at the limit */
    CHECK(mx_jreader_open(d, 1, &r) == 0);
    if (!r) {
        mx_journal_close(j);
        return;
    }
    CHECK(mx_jreader_position(r) == 1);
    CHECK(read_check(r, mx_journal_next(j), 1) == 1214);
    CHECK(mx_jreader_next(r, 1215, &data, &len, &seq) == 0);
    CHECK(data == NULL);
    CHECK(mx_jreader_next(r, 1215, &data, &len, &seq) == 0);
    CHECK(mx_jreader_position(r) == 1215);

    /* the reader opened before the journal existed reads it too */
    CHECK(r2 && read_check(r2, 1215, 1) == 1214);

    /* the limit is honoured: nothing at or above it */
    CHECK(mx_jreader_seek(r, 1) == 0);
    CHECK(mx_jreader_next(r, 1, &data, &len, &seq) == 0);
    CHECK(mx_jreader_position(r) == 1);
    CHECK(read_check(r, 10, 1) == 9);
    CHECK(mx_jreader_next(r, 10, &data, &len, &seq) == 0);
    CHECK(mx_jreader_position(r) == 10);
    CHECK(read_check(r, 12, 10) == 2);
    CHECK(mx_jreader_position(r) == 12);
    CHECK(mx_jreader_next(r, 5, &data, &len, &seq) == 0); /* below pos */
    CHECK(read_check(r, 1215, 12) == 1203);

    /* appended but not yet below the limit: not returned */
    data2[0] = bin;
    len2[0] = sizeof(bin) - 1;
    data2[1] = "";
    len2[1] = 0;
    CHECK(mx_journal_append(j, data2, len2, 2, &first, err, sizeof(err))
          == 0 && first == 1215);
    CHECK(mx_journal_next(j) == 1217);
    CHECK(mx_jreader_next(r, 1215, &data, &len, &seq) == 0);
    CHECK(jsync(j) == 0);

    /* exact bytes, NULs included; an empty record */
    CHECK(mx_jreader_next(r, 1217, &data, &len, &seq) == 1);
    CHECK(seq == 1215 && len == sizeof(bin) - 1 && data
          && memcmp(data, bin, len) == 0 && data[len] == '\0');
    free(data);
    CHECK(mx_jreader_next(r, 1217, &data, &len, &seq) == 1);
    CHECK(seq == 1216 && len == 0 && data && data[0] == '\0');
    free(data);
    CHECK(mx_jreader_next(r, 1217, &data, &len, &seq) == 0);

    /* too large: refused, nothing appended */
    size = seg_size(d, 1);
    big = malloc(MX_JOURNAL_RECORD_MAX + 2);
    if (big) {
        memset(big, 'x', MX_JOURNAL_RECORD_MAX + 2);
        data2[0] = "small";
        len2[0] = 5;
        data2[1] = big;
        len2[1] = MX_JOURNAL_RECORD_MAX + 1;
        err[0] = '\0';
        CHECK(mx_journal_append(j, data2, len2, 2, &first, err, sizeof(err))
              == -1);
        CHECK(err[0] != '\0');
        CHECK(mx_journal_next(j) == 1217);
        CHECK(seg_size(d, 1) == size);
        /* the largest is taken */
        len2[1] = MX_JOURNAL_RECORD_MAX;
        CHECK(mx_journal_append(j, data2, len2, 2, &first, err, sizeof(err))
              == 0 && first == 1217);
        CHECK(jsync(j) == 0);
        CHECK(seg_size(d, 1) == size + 2 * MX_JOURNAL_HEADER + 5
              + MX_JOURNAL_RECORD_MAX);
        CHECK(mx_jreader_next(r, 1219, &data, &len, &seq) == 1);
        CHECK(seq == 1217 && len == 5 && data && !memcmp(data, "small", 5));
        free(data);
        CHECK(mx_jreader_next(r, 1219, &data, &len, &seq) == 1);
        CHECK(seq == 1218 && len == MX_JOURNAL_RECORD_MAX && data
              && !memcmp(data, big, len));
        free(data);
        CHECK(mx_jreader_next(r, 1219, &data, &len, &seq) == 0);
        free(big);
    }

    mx_jreader_close(r);
    mx_jreader_close(r2);
    mx_journal_close(j);
}

/* ---- 2. segment rotation ---- */

static void test_rotation(void)
{
    const char *d = new_dir();
    mx_journal *j;
    mx_jreader *r, *r2;
    mx_seq segs[256], first, expect = 1;
    size_t n, i, batch;
    long total = 0, got;
    int contiguous = 1, big_enough = 1;

    if (!(j = jopen(d, 100)))
        { CHECK(0); return; }
    CHECK(mx_jreader_open(d, 1, &r) == 0);
    if (!r) {
        mx_journal_close(j);
        return;
    }
    /* batches of 1, 2, 3, 1, 2, 3 ... records, read after each sync */
    for (i = 0; i < 30; i++) {
        batch = 1 + i % 3;
        CHECK(append_n(j, batch, &first) == 0 && first == expect);
        expect += batch;
        CHECK(jsync(j) == 0);
        /* the limit before this batch: nothing new yet */
        CHECK(read_check(r, first, (mx_seq)total + 1) == 0);
        got = read_check(r, mx_journal_next(j), (mx_seq)total + 1);
        CHECK(got == (long)batch);
        if (got > 0)
            total += got;
    }
    CHECK(total == 60);
    CHECK(mx_journal_next(j) == 61);

    n = list_segs(d, segs, 256);
    CHECK(n >= 10);
    CHECK(n > 0 && segs[0] == 1);
    for (i = 0; i + 1 < n; i++) {
        /* each segment holds the records up to the next one's first,
         * and only the newest is below segment_max */
        contiguous &= seg_size(d, segs[i])
                      == records_size(segs[i], segs[i + 1]);
        big_enough &= seg_size(d, segs[i]) >= 100;
    }
    CHECK(contiguous);
    CHECK(big_enough);
    CHECK(n > 0 && seg_size(d, segs[n - 1]) == records_size(segs[n - 1], 61));

    /* a new reader crosses all segments */
    CHECK(mx_jreader_open(d, 1, &r2) == 0);
    CHECK(r2 && read_check(r2, 61, 1) == 60);

    /* reopened, the writer continues the numbering */
    mx_journal_close(j);
    if (!(j = jopen(d, 100))) {
        mx_jreader_close(r);
        mx_jreader_close(r2);
        { CHECK(0); return; }
    }
    CHECK(mx_journal_next(j) == 61);
    CHECK(append_n(j, 5, &first) == 0 && first == 61);
    CHECK(jsync(j) == 0);
    CHECK(read_check(r, 66, 61) == 5);
    CHECK(r2 && read_check(r2, 66, 61) == 5);
    CHECK(list_segs(d, segs, 256) >= n);

    /* reopened with the default segment size: still continues */
    mx_journal_close(j);
    if (!(j = jopen(d, 0))) {
        mx_jreader_close(r);
        mx_jreader_close(r2);
        { CHECK(0); return; }
    }
    CHECK(mx_journal_next(j) == 66);
    CHECK(append_single(j, 3) == 0);
    CHECK(mx_journal_next(j) == 69);
    CHECK(read_check(r, 69, 66) == 3);
    mx_jreader_close(r);
    mx_jreader_close(r2);
    mx_journal_close(j);
}

/* ---- 3. torn tail ---- */

/* A journal in a fresh directory with n records (one segment), closed.
 * Returns the directory; *size the segment's size. */
static const char *torn_setup(size_t n, long long *size)
{
    const char *d = new_dir();
    mx_journal *j = jopen(d, 0);
    mx_seq first;

    *size = -1;
    if (!j)
        return d;
    if (append_n(j, n, &first) == 0 && jsync(j) == 0)
        *size = seg_size(d, 1);
    mx_journal_close(j);
    return d;
}

/* Reopen d: the newest segment must have been cut back to size, the next
 * number must be next; append 2 more and read everything back. */
static void torn_check(const char *d, mx_seq seg, long long size,
                       mx_seq next)
{
    mx_journal *j = jopen(d, 0);
    mx_jreader *r;
    mx_seq first = 0;

    CHECK(j != NULL);
    if (!j)
        return;
    CHECK(seg_size(d, seg) == size);
    CHECK(mx_journal_next(j) == next);
    CHECK(append_n(j, 2, &first) == 0 && first == next);
    CHECK(jsync(j) == 0);
    CHECK(seg_size(d, seg) == size + records_size(next, next + 2));
    CHECK(mx_jreader_open(d, 1, &r) == 0);
    CHECK(r && read_check(r, next + 2, 1) == (long)(next + 1));
    mx_jreader_close(r);
    mx_journal_close(j);
}

static void test_torn_tail(void)
{
    const char *d;
    char path[512], buf[PAYLOAD_MAX], junk[64];
    unsigned char h[MX_JOURNAL_HEADER];
    long long size, last;
    unsigned long crc;
    size_t len;
    mx_journal *j;
    mx_seq segs[256], first;
    size_t n;

    /* half a header */
    d = torn_setup(10, &size);
    CHECK(size == records_size(1, 11));
    seg_file(d, 1, path, sizeof(path));
    CHECK(write_at_end(path, "MXJ1\x05\0\0\0\x0b\0\0", 12) == 0);
    CHECK(file_size(path) == size + 12);
    torn_check(d, 1, size, 11);

    /* a whole header, half the payload */
    d = torn_setup(10, &size);
    seg_file(d, 1, path, sizeof(path));
    len = payload(11, buf);
    memcpy(h, "MXJ1", 4);
    h[4] = (unsigned char)len;
    h[5] = h[6] = h[7] = 0;
    memset(h + 8, 0, 8);
    h[8] = 11;
    crc = mx_crc32(mx_crc32(0, h + 8, 8), buf, len);
    h[16] = (unsigned char)(crc & 0xff);
    h[17] = (unsigned char)(crc >> 8 & 0xff);
    h[18] = (unsigned char)(crc >> 16 & 0xff);
    h[19] = (unsigned char)(crc >> 24 & 0xff);
    memset(h + 20, 0, 4);
    CHECK(write_at_end(path, h, sizeof(h)) == 0);
    CHECK(write_at_end(path, buf, len / 2) == 0);
    torn_check(d, 1, size, 11);

    /* the same record complete is kept (the check above was not just
     * "cut whatever follows") */
    d = torn_setup(10, &size);
    seg_file(d, 1, path, sizeof(path));
    CHECK(write_at_end(path, h, sizeof(h)) == 0);
    CHECK(write_at_end(path, buf, len) == 0);
    torn_check(d, 1, size + MX_JOURNAL_HEADER + (long long)len, 12);

    /* the last record's CRC does not match: it is cut off */
    d = torn_setup(10, &size);
    seg_file(d, 1, path, sizeof(path));
    last = records_size(10, 11);
    CHECK(flip_byte(path, size - 1) == 0);
    torn_check(d, 1, size - last, 10);

    /* the last record's stored CRC itself damaged */
    d = torn_setup(10, &size);
    seg_file(d, 1, path, sizeof(path));
    CHECK(flip_byte(path, size - last + 16) == 0);
    torn_check(d, 1, size - last, 10);

    /* a whole record with the wrong number after the last good one */
    d = torn_setup(10, &size);
    seg_file(d, 1, path, sizeof(path));
    h[8] = 12; /* record 12 where 11 should be */
    crc = mx_crc32(mx_crc32(0, h + 8, 8), buf, len);
    h[16] = (unsigned char)(crc & 0xff);
    h[17] = (unsigned char)(crc >> 8 & 0xff);
    h[18] = (unsigned char)(crc >> 16 & 0xff);
    h[19] = (unsigned char)(crc >> 24 & 0xff);
    CHECK(write_at_end(path, h, sizeof(h)) == 0);
    CHECK(write_at_end(path, buf, len) == 0);
    torn_check(d, 1, size, 11);

    /* plain garbage */
    d = torn_setup(10, &size);
    seg_file(d, 1, path, sizeof(path));
    memset(junk, 0xa5, sizeof(junk));
    CHECK(write_at_end(path, junk, sizeof(junk)) == 0);
    torn_check(d, 1, size, 11);

    /* a crash right after a new segment was started: its only content is
     * half a header */
    d = new_dir();
    if ((j = jopen(d, 100)) != NULL) {
        CHECK(append_single(j, 12) == 0);
        first = mx_journal_next(j);
        mx_journal_close(j);
        n = list_segs(d, segs, 256);
        CHECK(n >= 2 && segs[n - 1] < first);
        seg_file(d, first, path, sizeof(path));
        {
            int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);

            CHECK(fd >= 0 && write(fd, "MXJ1\x30\0", 6) == 6);
            if (fd >= 0)
                close(fd);
        }
        torn_check(d, first, 0, first);
        CHECK(list_segs(d, segs, 256) == n + 1);
    }
    else
        CHECK(0);
}

/* ---- 4. acknowledgements ---- */

static void test_acked(void)
{
    const char *d = new_dir();
    mx_journal *j;
    mx_jreader *r;
    mx_seq before[256], after[256], first;
    size_t nb, na, i, k;
    char path[512], text[64];
    int same;

    if (!(j = jopen(d, 100)))
        { CHECK(0); return; }
    CHECK(append_single(j, 40) == 0);
    CHECK(mx_journal_next(j) == 41);
    nb = list_segs(d, before, 256);
    CHECK(nb >= 10);

    /* ack 8: the segments whose records are all <= 8 go */
    CHECK(mx_journal_set_acked(j, 8) == 0);
    CHECK(mx_journal_acked(j) == 8);
    snprintf(path, sizeof(path), "%s/journal/acked", d);
    read_text(path, text, sizeof(text));
    CHECK_STR(text, "8\n");
    na = list_segs(d, after, 256);
    for (i = 0; i + 1 < nb && before[i + 1] - 1 <= 8; i++)
        continue;
    /* i: the first kept */
    CHECK(i > 0);
    CHECK(na == nb - i);
    for (k = 0, same = 1; k < na && i + k < nb; k++)
        same &= after[k] == before[i + k];
    CHECK(same);
    CHECK(na > 0 && after[0] <= 9); /* record 9 is still there */

    /* a reader sought back to 1 lands on the oldest remaining */
    CHECK(mx_jreader_open(d, 1, &r) == 0);
    CHECK(r && na > 0 && mx_jreader_position(r) == after[0]);
    CHECK(r && na > 0 && read_check(r, 41, after[0]) == (long)(41 - after[0]));

    /* not above the current value: ignored */
    CHECK(mx_journal_set_acked(j, 5) == 0);
    CHECK(mx_journal_acked(j) == 8);
    read_text(path, text, sizeof(text));
    CHECK_STR(text, "8\n");
    CHECK(list_segs(d, after, 256) == na);

    /* beyond what was appended: clamped to next - 1; the newest segment
     * stays */
    CHECK(mx_journal_set_acked(j, 1000) == 0);
    CHECK(mx_journal_acked(j) == 40);
    read_text(path, text, sizeof(text));
    CHECK_STR(text, "40\n");
    na = list_segs(d, after, 256);
    CHECK(na == 1 && after[0] == before[nb - 1]);
    CHECK(r && mx_jreader_seek(r, 1) == 0);
    CHECK(r && mx_jreader_position(r) == before[nb - 1]);
    mx_journal_close(j);

    /* reopened: the numbering and the acked bound are kept */
    if (!(j = jopen(d, 100))) {
        mx_jreader_close(r);
        { CHECK(0); return; }
    }
    CHECK(mx_journal_next(j) == 41);
    CHECK(mx_journal_acked(j) == 40);
    mx_journal_close(j);

    /* all segments gone: numbering continues at acked + 1 */
    {
        char seg[512];

        seg_file(d, before[nb - 1], seg, sizeof(seg));
        CHECK(unlink(seg) == 0);
    }
    CHECK(list_segs(d, after, 256) == 0);
    if (!(j = jopen(d, 100))) {
        mx_jreader_close(r);
        { CHECK(0); return; }
    }
    CHECK(mx_journal_next(j) == 41);
    CHECK(mx_journal_acked(j) == 40);
    CHECK(append_n(j, 3, &first) == 0 && first == 41);
    CHECK(jsync(j) == 0);
    CHECK(list_segs(d, after, 256) == 1 && after[0] == 41);
    /* the reader (from 1, and the old one) finds the new segment */
    CHECK(r && mx_jreader_seek(r, 1) == 0);
    CHECK(r && mx_jreader_position(r) == 41);
    CHECK(r && read_check(r, 44, 41) == 3);
    mx_jreader_close(r);
    CHECK(mx_jreader_open(d, 0, &r) == 0);
    CHECK(r && mx_jreader_position(r) == 41);
    CHECK(r && read_check(r, 44, 41) == 3);
    mx_jreader_close(r);
    mx_journal_close(j);

    /* an acked file beyond the journal's end is clamped when opened */
    if (!(j = jopen(d, 100)))
        { CHECK(0); return; }
    CHECK(mx_journal_next(j) == 44);
    mx_journal_close(j);
    {
        int fd = open(path, O_WRONLY | O_TRUNC);

        CHECK(fd >= 0 && write(fd, "500\n", 4) == 4);
        if (fd >= 0)
            close(fd);
    }
    if (!(j = jopen(d, 100)))
        { CHECK(0); return; }
    CHECK(mx_journal_next(j) == 44);
    CHECK(mx_journal_acked(j) == 43);
    CHECK(append_n(j, 1, &first) == 0 && first == 44);
    CHECK(mx_journal_set_acked(j, 44) == 0);
    CHECK(mx_journal_acked(j) == 44);
    read_text(path, text, sizeof(text));
    CHECK_STR(text, "44\n");
    mx_journal_close(j);

    /* a brand-new journal: set_acked with nothing appended is ignored */
    d = new_dir();
    if (!(j = jopen(d, 100)))
        { CHECK(0); return; }
    CHECK(mx_journal_set_acked(j, 3) == 0);
    CHECK(mx_journal_acked(j) == 0);
    CHECK(mx_journal_next(j) == 1);
    mx_journal_close(j);
}

/* ---- 5. reader seek ---- */

static void test_seek(void)
{
    const char *d = new_dir();
    mx_journal *j;
    mx_jreader *r;
    mx_seq segs[256], after[256];
    size_t n, na, i;
    int ok;

    if (!(j = jopen(d, 100)))
        { CHECK(0); return; }
    CHECK(append_single(j, 40) == 0);
    n = list_segs(d, segs, 256);
    CHECK(n >= 5);
    if (n < 5 || mx_jreader_open(d, 1, &r) != 0) {
        mx_journal_close(j);
        { CHECK(0); return; }
    }

    /* the middle */
    CHECK(mx_jreader_seek(r, 20) == 0);
    CHECK(mx_jreader_position(r) == 20);
    CHECK(read_check(r, 41, 20) == 21);
    /* back to the start */
    CHECK(mx_jreader_seek(r, 1) == 0);
    CHECK(mx_jreader_position(r) == 1);
    CHECK(read_check(r, 41, 1) == 40);
    /* to every record, each time reading the next few */
    for (i = 1, ok = 1; i <= 40; i++) {
        ok &= mx_jreader_seek(r, i) == 0;
        ok &= mx_jreader_position(r) == i;
        ok &= read_check(r, i + 3 < 41 ? i + 3 : 41, i)
              == (long)((i + 3 < 41 ? i + 3 : 41) - i);
    }
    CHECK(ok);
    /* exactly to a segment's first record, and to the one before it */
    CHECK(mx_jreader_seek(r, segs[3]) == 0);
    CHECK(mx_jreader_position(r) == segs[3]);
    CHECK(read_check(r, 41, segs[3]) == (long)(41 - segs[3]));
    CHECK(mx_jreader_seek(r, segs[3] - 1) == 0);
    CHECK(mx_jreader_position(r) == segs[3] - 1);
    CHECK(read_check(r, 41, segs[3] - 1) == (long)(41 - segs[3] + 1));
    /* to the end */
    CHECK(mx_jreader_seek(r, 41) == 0);
    CHECK(mx_jreader_position(r) == 41);
    CHECK(read_check(r, 41, 41) == 0);
    CHECK(append_single(j, 2) == 0);
    CHECK(read_check(r, 43, 41) == 2);

    /* after the oldest segments were removed, back to the start lands on
     * the oldest remaining */
    CHECK(mx_journal_set_acked(j, segs[2]) == 0);
    na = list_segs(d, after, 256);
    CHECK(na > 0 && na < n && after[0] > 1 && after[0] <= segs[2] + 1);
    CHECK(mx_jreader_seek(r, 1) == 0);
    CHECK(na > 0 && mx_jreader_position(r) == after[0]);
    CHECK(na > 0 && read_check(r, 43, after[0]) == (long)(43 - after[0]));
    /* a number in a removed segment: the oldest remaining too */
    CHECK(mx_jreader_seek(r, 2) == 0);
    CHECK(na > 0 && mx_jreader_position(r) == after[0]);
    /* forward into the remaining ones works as before */
    CHECK(mx_jreader_seek(r, 30) == 0);
    CHECK(mx_jreader_position(r) == 30);
    CHECK(read_check(r, 43, 30) == 13);
    mx_jreader_close(r);
    mx_journal_close(j);
}

/* ---- 6. damage in an older segment ---- */

/* The offset of record k in the segment starting at start */
static long long record_offset(mx_seq start, mx_seq k)
{
    return records_size(start, k);
}

static void test_damage(void)
{
    const char *d = new_dir();
    mx_journal *j;
    mx_jreader *r;
    mx_seq segs[256], seq, target, s1 = 0, s2 = 0, s3 = 0;
    size_t n, i, len;
    char path[512], *data;
    long got;

    if (!(j = jopen(d, 200)))
        { CHECK(0); return; }
    CHECK(append_single(j, 60) == 0);
    n = list_segs(d, segs, 256);
    /* two older segments with at least three records each */
    for (i = 0; i + 1 < n; i++) {
        if (segs[i + 1] - segs[i] < 3 || i == 0)
            continue;
        if (!s1) {
            s1 = segs[i];
            s2 = segs[i + 1];
        }
        else if (segs[i] > s2 && i + 4 < n) {
            s3 = segs[i];
            break;
        }
    }
    CHECK(s1 && s2 && s3);
    if (!(s1 && s2 && s3)) {
        mx_journal_close(j);
        return;
    }

    /* flip a payload byte of the middle record of segment s1 */
    target = s1 + 1;
    seg_file(d, s1, path, sizeof(path));
    CHECK(flip_byte(path, record_offset(s1, target) + MX_JOURNAL_HEADER)
          == 0);
    /* and the magic of the second record of segment s3 */
    seg_file(d, s3, path, sizeof(path));
    CHECK(flip_byte(path, record_offset(s3, s3 + 1)) == 0);

    /* the writer does not care about older segments */
    mx_journal_close(j);
    if (!(j = jopen(d, 200)))
        { CHECK(0); return; }
    CHECK(mx_journal_next(j) == 61);

    CHECK(mx_jreader_open(d, 1, &r) == 0);
    if (!r) {
        mx_journal_close(j);
        return;
    }
    got = read_check(r, target, 1);
    CHECK(got == (long)(target - 1));
    seq = 0;
    errno = 0;
    CHECK(mx_jreader_next(r, 61, &data, &len, &seq) == -1);
    CHECK(errno == EILSEQ);
    CHECK(seq == target);
    CHECK(data == NULL);
    /* its header holds: only that record is skipped */
    CHECK(mx_jreader_position(r) == target + 1);
    CHECK(read_check(r, s3 + 1, target + 1) == (long)(s3 - target));
    /* the header damage of s3 + 1 */
    seq = 0;
    errno = 0;
    CHECK(mx_jreader_next(r, 61, &data, &len, &seq) == -1);
    CHECK(errno == EILSEQ);
    CHECK(seq == s3 + 1);
    /* the reader finds the intact record after it in the same segment */
    CHECK(mx_jreader_position(r) == s3 + 2);
    CHECK(read_check(r, 61, s3 + 2) == (long)(61 - (s3 + 2)));
    n = list_segs(d, segs, 256);
    for (i = 0; i < n && segs[i] <= s3; i++)
        ;

    /* a missing segment (a gap): reported with the first number missing,
     * then the reader goes on with the segment after it */
    if (i + 3 < n) {
        seg_file(d, segs[i + 1], path, sizeof(path));
        CHECK(unlink(path) == 0);
        CHECK(mx_jreader_seek(r, segs[i + 1] - 1) == 0);
        CHECK(mx_jreader_next(r, 61, &data, &len, &seq) == 1
              && seq == segs[i + 1] - 1);
        free(data);
        seq = 0;
        errno = 0;
        CHECK(mx_jreader_next(r, 61, &data, &len, &seq) == -1);
        CHECK(errno == EILSEQ);
        CHECK(seq == segs[i + 1]);
        CHECK(mx_jreader_position(r) == segs[i + 2]);
        CHECK(read_check(r, 61, segs[i + 2]) == (long)(61 - segs[i + 2]));
    }
    else
        CHECK(0);

    /* damage as the first record of a segment */
    seg_file(d, s2, path, sizeof(path));
    CHECK(flip_byte(path, MX_JOURNAL_HEADER) == 0);
    CHECK(mx_jreader_seek(r, s2) == 0);
    seq = 0;
    CHECK(mx_jreader_next(r, 61, &data, &len, &seq) == -1);
    CHECK(errno == EILSEQ && seq == s2);
    CHECK(mx_jreader_next(r, 61, &data, &len, &seq) == 1 && seq == s2 + 1);
    free(data);
    mx_jreader_close(r);
    mx_journal_close(j);

    /* damage in the middle of the newest segment: not a torn tail, the
     * writer keeps the records after it and numbers on */
    n = list_segs(d, segs, 256);
    seg_file(d, segs[n - 1], path, sizeof(path));
    if (!(j = jopen(d, 1 << 20)))
        { CHECK(0); return; }
    CHECK(mx_journal_next(j) == 61);
    CHECK(append_single(j, 3) == 0); /* 61..63, in the newest segment */
    mx_journal_close(j);
    n = list_segs(d, segs, 256);
    seg_file(d, segs[n - 1], path, sizeof(path));
    CHECK(flip_byte(path, record_offset(segs[n - 1], 62)
                    + MX_JOURNAL_HEADER) == 0);
    if (!(j = jopen(d, 1 << 20)))
        { CHECK(0); return; }
    CHECK(mx_journal_next(j) == 64);
    CHECK(mx_jreader_open(d, 61, &r) == 0);
    CHECK(mx_jreader_next(r, 64, &data, &len, &seq) == 1 && seq == 61);
    free(data);
    CHECK(mx_jreader_next(r, 64, &data, &len, &seq) == -1
          && errno == EILSEQ && seq == 62);
    CHECK(mx_jreader_next(r, 64, &data, &len, &seq) == 1 && seq == 63);
    free(data);

    /* a damaged header as the last record of the newest segment: the
     * reader waits (ENODATA, no skip) until an intact record follows it,
     * then skips only that one */
    CHECK(append_single(j, 3) == 0); /* 64..66 */
    CHECK(flip_byte(path, record_offset(segs[n - 1], 66)) == 0);
    CHECK(read_check(r, 67, 64) == -1); /* 64 and 65, then the damage */
    for (i = 0; i < 3; i++) {
        seq = 0;
        errno = 0;
        CHECK(mx_jreader_next(r, 67, &data, &len, &seq) == -1);
        CHECK(errno == ENODATA && seq == 66 && data == NULL);
        CHECK(mx_jreader_position(r) == 66);
    }
    CHECK(append_single(j, 2) == 0); /* 67, 68 */
    seq = 0;
    CHECK(mx_jreader_next(r, 69, &data, &len, &seq) == -1);
    CHECK(errno == EILSEQ && seq == 66);
    CHECK(mx_jreader_position(r) == 67);
    CHECK(read_check(r, 69, 67) == 2);
    mx_jreader_close(r);
    mx_journal_close(j);
}

/* ---- 8. the request parser ---- */

static int parse(const char *s, size_t len, size_t *off, size_t *item_len)
{
    *off = *item_len = 12345;
    return mx_qreq_parse(s, len, off, item_len);
}

#define PARSE(s, off, il) parse(s, sizeof(s) - 1, off, il)

/* ---- 8b. read-ahead against an append that failed ----
 * The reader fetches 64 KiB at a time. An append that failed half way is
 * cut off by the writer and the next batch is written at the same place:
 * what the reader fetched of the failed one must not be taken for it. */
static void test_read_ahead(void)
{
    const char *d = new_dir();
    mx_journal *j;
    mx_jreader *r;
    unsigned char bogus[MX_JOURNAL_HEADER + 40];
    char path[512], *data, want[PAYLOAD_MAX];
    long long end;
    mx_seq seq = 0, first = 0;
    size_t len = 0;
    int fd;

    if (!(j = jopen(d, 1 << 20)))
        { CHECK(0); return; }
    CHECK(append_single(j, 3) == 0);
    seg_file(d, 1, path, sizeof(path));
    end = file_size(path);
    /* the torn tail of a failed append of record 4: a header that holds,
     * its data cut short */
    memset(bogus, 0x5a, sizeof(bogus));
    memcpy(bogus, "MXJ1", 4);
    bogus[4] = 90; bogus[5] = bogus[6] = bogus[7] = 0;  /* length 90 */
    memset(bogus + 8, 0, 8);
    bogus[8] = 4;                                       /* number 4 */
    CHECK(write_at_end(path, bogus, sizeof(bogus)) == 0);

    CHECK(mx_jreader_open(d, 1, &r) == 0);
    if (!r) {
        mx_journal_close(j);
        return;
    }
    /* record 1: the read-ahead now holds 1-3 and the torn tail */
    CHECK(read_check(r, 2, 1) == 1);
    /* the writer cuts it off and writes record 4 there */
    fd = open(path, O_WRONLY);
    CHECK(fd >= 0 && ftruncate(fd, (off_t)end) == 0);
    if (fd >= 0)
        close(fd);
    CHECK(append_n(j, 1, &first) == 0 && first == 4);
    CHECK(jsync(j) == 0);
    CHECK(read_check(r, 4, 2) == 2);
    CHECK(mx_jreader_next(r, 5, &data, &len, &seq) == 1);
    CHECK(seq == 4);
    CHECK(data && len == payload(4, want) && !memcmp(data, want, len));
    free(data);
    /* more than the read-ahead holds, records larger than half of it */
    {
        static char big[40000];
        const char *items[3] = { big, big, big };
        size_t lens[3] = { sizeof(big), sizeof(big), 10 };
        char err[256] = "";
        int k;

        memset(big, 'b', sizeof(big));
        CHECK(mx_journal_append(j, items, lens, 3, &first, err, sizeof(err))
              == 0 && first == 5);
        CHECK(append_n(j, 1, &first) == 0 && first == 8);
        CHECK(jsync(j) == 0);
        for (k = 0; k < 3; k++) {
            CHECK(mx_jreader_next(r, 9, &data, &len, &seq) == 1);
            CHECK(seq == (mx_seq)(5 + k) && len == lens[k]
                  && data && !memcmp(data, big, len));
            free(data);
        }
        CHECK(read_check(r, 9, 8) == 1);
    }
    mx_jreader_close(r);
    mx_journal_close(j);
}

static void test_qreq_parse(void)
{
    static const char two[] = "PUT 3\nabcPUT 2\nxy";
    static const char bin[] = "PUT 4\n\n\0a\xff";
    char longhdr[64];
    size_t off, il, i;
    int ok;

    /* complete */
    CHECK(PARSE("PUT 5\nhello", &off, &il) == 1);
    CHECK(off == 6 && il == 5);
    CHECK(PARSE("PUT 0\n", &off, &il) == 1);
    CHECK(off == 6 && il == 0);
    CHECK(PARSE("PUT 4\n\n\0a\xff", &off, &il) == 1);
    CHECK(off == 6 && il == 4 && !memcmp(bin + off, "\n\0a\xff", 4));
    CHECK(PARSE("PUT 12\nhello world!", &off, &il) == 1);
    CHECK(off == 7 && il == 12);
    CHECK(PARSE("PUT 0005\nhello", &off, &il) == 1); /* leading zeros */
    CHECK(off == 9 && il == 5);
    /* more than the request: the rest is the next one's */
    CHECK(PARSE("PUT 2\nabPUT", &off, &il) == 1);
    CHECK(off == 6 && il == 2);

    /* incomplete header */
    CHECK(parse("", 0, &off, &il) == 0);
    CHECK(PARSE("P", &off, &il) == 0);
    CHECK(PARSE("PUT", &off, &il) == 0);
    CHECK(PARSE("PUT ", &off, &il) == 0);
    CHECK(PARSE("PUT 1", &off, &il) == 0);
    CHECK(PARSE("PUT 123", &off, &il) == 0);
    /* every prefix of a request needs more */
    for (i = 0, ok = 1; i < sizeof("PUT 5\nhello") - 1; i++)
        ok &= parse("PUT 5\nhello", i, &off, &il) == 0;
    CHECK(ok);
    /* incomplete body */
    CHECK(PARSE("PUT 5\nhel", &off, &il) == 0);
    CHECK(PARSE("PUT 5\n", &off, &il) == 0);
    CHECK(PARSE("PUT 16777216\n", &off, &il) == 0); /* the largest */

    /* two back to back */
    CHECK(PARSE(two, &off, &il) == 1);
    CHECK(off == 6 && il == 3 && !memcmp(two + off, "abc", 3));
    i = off + il;
    CHECK(parse(two + i, sizeof(two) - 1 - i, &off, &il) == 1);
    CHECK(off == 6 && il == 2 && !memcmp(two + i + off, "xy", 2));
    CHECK(parse(two + i, sizeof(two) - 2 - i, &off, &il) == 0);
    CHECK(parse(two + i, 2, &off, &il) == 0);

    /* garbage */
    CHECK(PARSE("GET / HTTP/1.0\r\n", &off, &il) == -1);
    CHECK(PARSE("HELLO\n", &off, &il) == -1);
    CHECK(PARSE("GARBAGE", &off, &il) == -1);
    CHECK(PARSE("put 5\nhello", &off, &il) == -1);
    CHECK(PARSE("PUT\n", &off, &il) == -1);
    CHECK(PARSE("PUT \n", &off, &il) == -1);
    CHECK(PARSE("PUT  5\nhello", &off, &il) == -1);
    CHECK(PARSE("PUT 5 \nhello", &off, &il) == -1);
    CHECK(PARSE("PUT 5\r\nhello", &off, &il) == -1);
    CHECK(PARSE("\n", &off, &il) == -1);
    CHECK(PARSE("\0\0\0\0\0\0", &off, &il) == -1);
    /* a header line longer than MX_QREQ_MAX_HEADER */
    memset(longhdr, '0', sizeof(longhdr));
    memcpy(longhdr, "PUT ", 4);
    CHECK(parse(longhdr, sizeof(longhdr), &off, &il) == -1);
    longhdr[MX_QREQ_MAX_HEADER + 5] = '\n';
    CHECK(parse(longhdr, sizeof(longhdr), &off, &il) == -1);
    /* the longest that fits: "PUT " + 26 zeros and a 5 + "\n" = 32 */
    memset(longhdr, '0', sizeof(longhdr));
    memcpy(longhdr, "PUT ", 4);
    longhdr[MX_QREQ_MAX_HEADER - 2] = '5';
    longhdr[MX_QREQ_MAX_HEADER - 1] = '\n';
    CHECK(parse(longhdr, MX_QREQ_MAX_HEADER + 5, &off, &il) == 1);
    CHECK(off == MX_QREQ_MAX_HEADER && il == 5);

    /* too large: told apart, so the holder can say why */
    CHECK(PARSE("PUT 16777216\n", &off, &il) == 0);
    CHECK(PARSE("PUT 16777217\n", &off, &il) == MX_QREQ_TOO_LARGE);
    CHECK(PARSE("PUT 4294967296\n", &off, &il) == MX_QREQ_TOO_LARGE);
    CHECK(PARSE("PUT 18446744073709551617\n", &off, &il)
          == MX_QREQ_TOO_LARGE);
    CHECK(PARSE("PUT 99999999999999999999999\n", &off, &il)
          == MX_QREQ_TOO_LARGE);

    /* not digits */
    CHECK(PARSE("PUT abc\n", &off, &il) == -1);
    CHECK(PARSE("PUT -1\n", &off, &il) == -1);
    CHECK(PARSE("PUT +5\nhello", &off, &il) == -1);
    CHECK(PARSE("PUT 1x\n", &off, &il) == -1);
    CHECK(PARSE("PUT 0x10\n", &off, &il) == -1);
    CHECK(PARSE("PUT 5a\nhello", &off, &il) == -1);
}

/* ---- 9. mx_queue_submit ---- */

struct server {
    int lfd;              /* listening */
    const char *answer;   /* NULL: close without answering */
    int requests;         /* how many to serve on the one connection */
    int served;
    char *got[4];
    size_t got_len[4];
};

static void *server_main(void *arg)
{
    struct server *s = arg;
    struct pollfd p;
    struct timeval tv = { 15, 0 };
    char buf[4096];
    size_t have = 0, off = 0, ilen = 0;
    ssize_t n;
    int fd, rc = 0, k;

    p.fd = s->lfd;
    p.events = POLLIN;
    if (poll(&p, 1, 15000) != 1) {
        fprintf(stderr, "server: no connection\n");
        return NULL;
    }
    if ((fd = accept(s->lfd, NULL, NULL)) < 0)
        return NULL;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    for (k = 0; k < s->requests && k < 4; k++) {
        while ((rc = mx_qreq_parse(buf, have, &off, &ilen)) == 0) {
            n = recv(fd, buf + have, sizeof(buf) - have, 0);
            if (n <= 0)
                break;
            have += (size_t)n;
        }
        if (rc != 1)
            break;
        s->got[k] = malloc(ilen + 1);
        memcpy(s->got[k], buf + off, ilen);
        s->got_len[k] = ilen;
        s->served++;
        memmove(buf, buf + off + ilen, have - off - ilen);
        have -= off + ilen;
        if (s->answer)
            send(fd, s->answer, strlen(s->answer), MSG_NOSIGNAL);
    }
    close(fd);
    return NULL;
}

static int listen_at(const char *dir)
{
    struct sockaddr_un sa;
    int fd;

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (mx_qsock_path(dir, sa.sun_path, sizeof(sa.sun_path)) != 0)
        return -1;
    if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) < 0)
        return -1;
    unlink(sa.sun_path);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0
        || listen(fd, 8) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void server_start(struct server *s, pthread_t *t, int lfd,
                         const char *answer, int requests)
{
    memset(s, 0, sizeof(*s));
    s->lfd = lfd;
    s->answer = answer;
    s->requests = requests;
    if (pthread_create(t, NULL, server_main, s) != 0) {
        perror("pthread_create");
        exit(2);
    }
}

static void server_free(struct server *s)
{
    int k;

    for (k = 0; k < 4; k++)
        free(s->got[k]);
}

/* Did the server get exactly the item for (kind, stanza) as request k? */
static int server_got(const struct server *s, int k, mx_item_kind kind,
                      const char *stanza)
{
    size_t len;
    char *item = mx_queue_item_make(kind, stanza, strlen(stanza), &len);
    int ok = item && k < s->served && s->got_len[k] == len
             && memcmp(s->got[k], item, len) == 0;

    free(item);
    return ok;
}

/* Is the spool's item number k (oldest first) of count the item for
 * (kind, stanza)? */
static int spool_has(const char *dir, size_t k, size_t count,
                     mx_item_kind kind, const char *stanza)
{
    char **names = NULL, *data = NULL, *item;
    size_t n = 0, len = 0, ilen;
    int ok;

    if (mx_queue_list(dir, 100, &names, &n) != 0 || n != count) {
        fprintf(stderr, "spool %s: %zu items, expected %zu\n", dir, n,
                count);
        mx_queue_free_list(names, n);
        return 0;
    }
    item = mx_queue_item_make(kind, stanza, strlen(stanza), &ilen);
    ok = item && mx_queue_read(dir, names[k], &data, &len) == 0
         && len == ilen && memcmp(data, item, len) == 0;
    free(item);
    free(data);
    mx_queue_free_list(names, n);
    return ok;
}

static void test_submit(void)
{
    const char *m1 = "<message to='a@example.org' type='chat'>"
                     "<body>one</body></message>";
    const char *m2 = "<presence><status>two</status></presence>";
    const char *m3 = "<message to='b@example.org'><body>three &amp; "
                     "\xc3\xa9</body></message>";
    const char *d;
    char err[256], path[512], longdir[200];
    struct server s;
    pthread_t t;
    struct stat st;
    int lfd, rc;

    /* the socket's path */
    d = new_dir();
    CHECK(mx_qsock_path(d, path, sizeof(path)) == 0);
    {
        char want[512];

        snprintf(want, sizeof(want), "%s/queue.sock", d);
        CHECK_STR(path, want);
    }
    memset(longdir, 'a', sizeof(longdir) - 1);
    longdir[0] = '/';
    longdir[sizeof(longdir) - 1] = '\0';
    CHECK(mx_qsock_path(longdir, path, sizeof(path)) == -1);
    CHECK(mx_qsock_path(d, path, 5) == -1);

    /* (a) nobody listens: into the spool */
    err[0] = '\0';
    CHECK(mx_queue_submit(d, MX_ITEM_STANZA, m1, strlen(m1), 1, err,
                          sizeof(err)) == 0);
    CHECK(spool_has(d, 0, 1, MX_ITEM_STANZA, m1));
    CHECK(mx_queue_submit(d, MX_ITEM_SUBSCRIBERS, m2, strlen(m2), 0, err,
                          sizeof(err)) == 0);
    CHECK(spool_has(d, 0, 2, MX_ITEM_STANZA, m1));
    CHECK(spool_has(d, 1, 2, MX_ITEM_SUBSCRIBERS, m2));
    snprintf(path, sizeof(path), "%s/queue.sock", d);
    CHECK(stat(path, &st) != 0);

    /* a socket file nobody listens on any more: the spool too */
    d = new_dir();
    lfd = listen_at(d);
    CHECK(lfd >= 0);
    if (lfd >= 0)
        close(lfd);
    snprintf(path, sizeof(path), "%s/queue.sock", d);
    CHECK(stat(path, &st) == 0 && S_ISSOCK(st.st_mode));
    CHECK(mx_queue_submit(d, MX_ITEM_STANZA, m3, strlen(m3), 1, err,
                          sizeof(err)) == 0);
    CHECK(spool_has(d, 0, 1, MX_ITEM_STANZA, m3));
    /* ... and with D/FULL the spool refuses */
    CHECK(mx_queue_set_full_counts(d, 5, 5) == 1);
    err[0] = '\0';
    CHECK(mx_queue_submit(d, MX_ITEM_STANZA, m1, strlen(m1), 1, err,
                          sizeof(err)) == MX_QUEUE_FULL);
    CHECK(err[0] != '\0');
    CHECK(mx_queue_count(d) == 1);

    /* (b) a holder listens and answers OK: over the socket, not in the
     * spool */
    d = new_dir();
    lfd = listen_at(d);
    CHECK(lfd >= 0);
    if (lfd < 0)
        return;
    server_start(&s, &t, lfd, "OK 7\n", 1);
    err[0] = '\0';
    rc = mx_queue_submit(d, MX_ITEM_STANZA, m1, strlen(m1), 1, err,
                         sizeof(err));
    pthread_join(t, NULL);
    CHECK(rc == 0);
    CHECK(s.served == 1);
    CHECK(server_got(&s, 0, MX_ITEM_STANZA, m1));
    CHECK(mx_queue_count(d) == 0);
    server_free(&s);

    /* the holder closed that connection: the next call reconnects */
    server_start(&s, &t, lfd, "OK 8\n", 1);
    rc = mx_queue_submit(d, MX_ITEM_SUBSCRIBERS, m2, strlen(m2), 1, err,
                         sizeof(err));
    pthread_join(t, NULL);
    CHECK(rc == 0);
    CHECK(server_got(&s, 0, MX_ITEM_SUBSCRIBERS, m2));
    CHECK(mx_queue_count(d) == 0);
    server_free(&s);

    /* a holder keeping the connection: two items over the one */
    server_start(&s, &t, lfd, "OK 9\n", 2);
    rc = mx_queue_submit(d, MX_ITEM_STANZA, m1, strlen(m1), 1, err,
                         sizeof(err));
    CHECK(rc == 0);
    rc = mx_queue_submit(d, MX_ITEM_STANZA, m3, strlen(m3), 1, err,
                         sizeof(err));
    CHECK(rc == 0);
    pthread_join(t, NULL);
    CHECK(s.served == 2);
    CHECK(server_got(&s, 0, MX_ITEM_STANZA, m1));
    CHECK(server_got(&s, 1, MX_ITEM_STANZA, m3));
    CHECK(mx_queue_count(d) == 0);
    server_free(&s);

    /* (c) the holder says the queue is full */
    server_start(&s, &t, lfd, "FULL 10 10\n", 1);
    err[0] = '\0';
    rc = mx_queue_submit(d, MX_ITEM_STANZA, m1, strlen(m1), 1, err,
                         sizeof(err));
    pthread_join(t, NULL);
    CHECK(rc == MX_QUEUE_FULL);
    CHECK(strstr(err, "full") != NULL);
    CHECK(strstr(err, "limit 10") != NULL);
    CHECK(server_got(&s, 0, MX_ITEM_STANZA, m1));
    CHECK(mx_queue_count(d) == 0);
    server_free(&s);

    /* the holder could not store it: the spool takes it */
    server_start(&s, &t, lfd, "ERR cannot write the journal\n", 1);
    rc = mx_queue_submit(d, MX_ITEM_STANZA, m2, strlen(m2), 1, err,
                         sizeof(err));
    pthread_join(t, NULL);
    CHECK(rc == 0);
    CHECK(server_got(&s, 0, MX_ITEM_STANZA, m2));
    CHECK(spool_has(d, 0, 1, MX_ITEM_STANZA, m2));
    server_free(&s);

    /* (d) the holder closes without answering: the spool takes it */
    server_start(&s, &t, lfd, NULL, 1);
    rc = mx_queue_submit(d, MX_ITEM_STANZA, m3, strlen(m3), 1, err,
                         sizeof(err));
    pthread_join(t, NULL);
    CHECK(rc == 0);
    CHECK(s.served == 1);
    CHECK(server_got(&s, 0, MX_ITEM_STANZA, m3));
    CHECK(spool_has(d, 1, 2, MX_ITEM_STANZA, m3));
    server_free(&s);

    /* and back to a holder that answers, after all that */
    server_start(&s, &t, lfd, "OK 10\n", 1);
    rc = mx_queue_submit(d, MX_ITEM_STANZA, m1, strlen(m1), 1, err,
                         sizeof(err));
    pthread_join(t, NULL);
    CHECK(rc == 0);
    CHECK(server_got(&s, 0, MX_ITEM_STANZA, m1));
    CHECK(mx_queue_count(d) == 2);
    server_free(&s);

    /* the holder is gone (socket closed, file left): the spool again */
    close(lfd);
    rc = mx_queue_submit(d, MX_ITEM_SUBSCRIBERS, m2, strlen(m2), 1, err,
                         sizeof(err));
    CHECK(rc == 0);
    CHECK(spool_has(d, 2, 3, MX_ITEM_SUBSCRIBERS, m2));

    /* a new holder on the same path */
    lfd = listen_at(d);
    CHECK(lfd >= 0);
    if (lfd < 0)
        return;
    server_start(&s, &t, lfd, "OK 11\n", 1);
    rc = mx_queue_submit(d, MX_ITEM_STANZA, m3, strlen(m3), 1, err,
                         sizeof(err));
    pthread_join(t, NULL);
    CHECK(rc == 0);
    CHECK(server_got(&s, 0, MX_ITEM_STANZA, m3));
    CHECK(mx_queue_count(d) == 3);
    server_free(&s);
    close(lfd);
}

int main(void)
{
    int i;

    test_crc();
    test_append_read();
    test_rotation();
    test_torn_tail();
    test_acked();
    test_seek();
    test_damage();
    test_read_ahead();
    test_qreq_parse();
    test_submit();
    for (i = 0; i < ndirs; i++)
        rm_rf(dirs[i]);
    return UNIT_DONE();
}
