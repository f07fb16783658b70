/* SPDX-License-Identifier: Apache-2.0 */
/* mx_journal: see mx_journal.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "mx_file.h"
#include "mx_journal.h"

#ifndef PATH_MAX
#define PATH_MAX 4096
#endif
#define SEG_NAME_LEN 24   /* 20 digits + ".seg" */
#define IOV_BATCH 512     /* records per writev (2 iovecs each) */
#define JDIR_MAX (PATH_MAX - 64) /* room for a file name after it */

/* ---- CRC-32 ---- */

static unsigned long crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    unsigned long c;
    int n, k;

    for (n = 0; n < 256; n++) {
        c = (unsigned long)n;
        for (k = 0; k < 8; k++)
            c = c & 1 ? 0xedb88320UL ^ (c >> 1) : c >> 1;
        crc_table[n] = c;
    }
}

unsigned long mx_crc32(unsigned long crc, const void *buf, size_t len)
{
    const unsigned char *p = buf;

    pthread_once(&crc_once, crc_init);
    crc = ~crc & 0xffffffffUL;
    while (len--)
        crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc & 0xffffffffUL;
}

/* ---- helpers ---- */

static void put_le(unsigned char *p, unsigned long long v, int bytes)
{
    int i;

    for (i = 0; i < bytes; i++, v >>= 8)
        p[i] = (unsigned char)(v & 0xff);
}

static unsigned long long get_le(const unsigned char *p, int bytes)
{
    unsigned long long v = 0;
    int i;

    for (i = bytes - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static void header_make(unsigned char *h, mx_seq seq, const char *data,
                        size_t len)
{
    unsigned long crc;

    memcpy(h, "MXJ1", 4);
    put_le(h + 4, len, 4);
    put_le(h + 8, seq, 8);
    crc = mx_crc32(0, h + 8, 8);
    crc = mx_crc32(crc, data, len);
    put_le(h + 16, crc, 4);
    memset(h + 20, 0, 4);
}

/* Header fields, or -1 when it is not a record header for number seq */
static int header_parse(const unsigned char *h, mx_seq seq, size_t *len)
{
    if (memcmp(h, "MXJ1", 4) != 0 || get_le(h + 8, 8) != seq)
        return -1;
    *len = (size_t)get_le(h + 4, 4);
    return *len > MX_JOURNAL_RECORD_MAX ? -1 : 0;
}

static int crc_ok(const unsigned char *h, const char *data, size_t len)
{
    unsigned long crc = mx_crc32(0, h + 8, 8);

    return mx_crc32(crc, data, len) == get_le(h + 16, 4);
}

static void say(char *err, size_t errsize, const char *fmt, ...)
{
    va_list ap;

    if (!err || errsize == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errsize, fmt, ap);
    va_end(ap);
}

static ssize_t pread_full(int fd, void *buf, size_t len, off_t off)
{
    size_t done = 0;
    ssize_t n;

    while (done < len) {
        n = pread(fd, (char *)buf + done, len - done, off + (off_t)done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        done += (size_t)n;
    }
    return (ssize_t)done;
}

static int seg_name_start(const char *name, mx_seq *start)
{
    int i;

    if (strlen(name) != SEG_NAME_LEN || strcmp(name + 20, ".seg") != 0)
        return -1;
    for (i = 0; i < 20; i++)
        if (name[i] < '0' || name[i] > '9')
            return -1;
    *start = strtoull(name, NULL, 10);
    return *start > 0 ? 0 : -1;
}

static void seg_path(char *buf, size_t size, const char *jdir, mx_seq start)
{
    snprintf(buf, size, "%s/%020llu.seg", jdir, start);
}

static int cmp_seq(const void *a, const void *b)
{
    mx_seq x = *(const mx_seq *)a, y = *(const mx_seq *)b;

    return x < y ? -1 : x > y;
}

/* The segments' first numbers, sorted (malloc'd). Returns 0 or -1. */
static int list_segments(const char *jdir, mx_seq **out, size_t *count)
{
    DIR *d = opendir(jdir);
    struct dirent *e;
    mx_seq *v = NULL, *grown, start;
    size_t n = 0, cap = 0;

    *out = NULL;
    *count = 0;
    if (!d)
        return errno == ENOENT ? 0 : -1;
    while ((e = readdir(d)) != NULL) {
        if (seg_name_start(e->d_name, &start) != 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            if (!(grown = realloc(v, cap * sizeof(*v)))) {
                free(v);
                closedir(d);
                errno = ENOMEM;
                return -1;
            }
            v = grown;
        }
        v[n++] = start;
    }
    closedir(d);
    if (n > 1) /* v is NULL without segments: qsort(NULL, 0) is undefined */
        qsort(v, n, sizeof(*v), cmp_seq);
    *out = v;
    *count = n;
    return 0;
}

static mx_seq read_acked(const char *jdir)
{
    char path[PATH_MAX], buf[32];
    int fd;
    ssize_t n;

    snprintf(path, sizeof(path), "%s/acked", jdir);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return 0;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    return strtoull(buf, NULL, 10);
}

/* ---- writer ---- */

struct mx_journal {
    char jdir[JDIR_MAX];
    int fd;               /* the newest segment */
    mx_seq seg_start;
    off_t seg_size;
    size_t seg_max;
    mx_seq next, acked;
    int dir_dirty;        /* a segment was created since the last sync */
};

static int create_segment(mx_journal *j, char *err, size_t errsize)
{
    char path[PATH_MAX];
    int fd;

    seg_path(path, sizeof(path), j->jdir, j->next);
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        say(err, errsize, "cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    if (j->fd >= 0) {
        fdatasync(j->fd);
        close(j->fd);
    }
    j->fd = fd;
    j->seg_start = j->next;
    j->seg_size = 0;
    j->dir_dirty = 1;
    return 0;
}

/* Walk the newest segment's records; cut off what follows the last good
 * one. */
static int recover(mx_journal *j, char *err, size_t errsize)
{
    unsigned char h[MX_JOURNAL_HEADER], next[MX_JOURNAL_HEADER];
    char *buf = NULL;
    size_t len, cap = 0, next_len;
    off_t off = 0;
    mx_seq seq = j->seg_start;
    struct stat sb;

    for (;;) {
        if (pread_full(j->fd, h, sizeof(h), off) != (ssize_t)sizeof(h)
            || header_parse(h, seq, &len) != 0)
            break;
        if (len + 1 > cap) {
            char *grown = realloc(buf, len + 1);

            if (!grown)
                break;
            buf = grown;
            cap = len + 1;
        }
        if (pread_full(j->fd, buf, len, off + MX_JOURNAL_HEADER)
            != (ssize_t)len)
            break;
        /* a bad CRC at the end is a torn write; followed by the next
         * record, it is damage of that one record, which the reader
         * reports and skips: the records after it are kept */
        if (!crc_ok(h, buf, len)
            && (pread_full(j->fd, next, sizeof(next),
                           off + MX_JOURNAL_HEADER + (off_t)len)
                    != (ssize_t)sizeof(next)
                || header_parse(next, seq + 1, &next_len) != 0))
            break;
        off += MX_JOURNAL_HEADER + (off_t)len;
        seq++;
    }
    free(buf);
    if (fstat(j->fd, &sb) == 0 && sb.st_size > off) {
        if (ftruncate(j->fd, off) != 0 || fsync(j->fd) != 0) {
            say(err, errsize, "cannot cut off the torn record at the end "
                "of %s/%020llu.seg: %s", j->jdir, j->seg_start,
                strerror(errno));
            return -1;
        }
    }
    j->seg_size = off;
    j->next = seq;
    return 0;
}

int mx_journal_open(const char *dir, size_t segment_max, mx_journal **out,
                    char *err, size_t errsize)
{
    mx_journal *j = calloc(1, sizeof(*j));
    mx_seq *segs = NULL;
    size_t nsegs = 0;
    char path[PATH_MAX];

    *out = NULL;
    if (!j) {
        say(err, errsize, "out of memory");
        return -1;
    }
    j->fd = -1;
    j->seg_max = segment_max ? segment_max : MX_JOURNAL_SEGMENT;
    if ((size_t)snprintf(j->jdir, sizeof(j->jdir), "%s/journal", dir)
        >= sizeof(j->jdir)) {
        say(err, errsize, "the path %s/journal is too long", dir);
        goto fail;
    }
    if (mkdir(j->jdir, 0700) != 0 && errno != EEXIST) {
        say(err, errsize, "cannot create %s: %s", j->jdir, strerror(errno));
        goto fail;
    }
    if (list_segments(j->jdir, &segs, &nsegs) != 0) {
        say(err, errsize, "cannot read %s: %s", j->jdir, strerror(errno));
        goto fail;
    }
    j->acked = read_acked(j->jdir);
    if (nsegs == 0) {
        j->next = j->acked + 1;
        if (create_segment(j, err, errsize) != 0)
            goto fail;
    }
    else {
        j->seg_start = segs[nsegs - 1];
        seg_path(path, sizeof(path), j->jdir, j->seg_start);
        if ((j->fd = open(path, O_RDWR | O_CLOEXEC)) < 0) {
            say(err, errsize, "cannot open %s: %s", path, strerror(errno));
            goto fail;
        }
        if (recover(j, err, errsize) != 0)
            goto fail;
    }
    if (j->acked >= j->next)
        j->acked = j->next - 1;
    free(segs);
    *out = j;
    return 0;
fail:
    free(segs);
    mx_journal_close(j);
    return -1;
}

void mx_journal_close(mx_journal *j)
{
    if (!j)
        return;
    if (j->fd >= 0)
        close(j->fd);
    free(j);
}

static int write_all(int fd, struct iovec *iov, int cnt)
{
    ssize_t n;

    while (cnt > 0) {
        n = writev(fd, iov, cnt);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        while (cnt > 0 && (size_t)n >= iov->iov_len) {
            n -= (ssize_t)iov->iov_len;
            iov++;
            cnt--;
        }
        if (cnt > 0) {
            iov->iov_base = (char *)iov->iov_base + n;
            iov->iov_len -= (size_t)n;
        }
    }
    return 0;
}

int mx_journal_append(mx_journal *j, const char *const *data,
                      const size_t *len, size_t n, mx_seq *first,
                      char *err, size_t errsize)
{
    unsigned char (*heads)[MX_JOURNAL_HEADER];
    struct iovec iov[2 * IOV_BATCH];
    size_t i, k, total = 0;
    off_t before;

    for (i = 0; i < n; i++) {
        if (len[i] > MX_JOURNAL_RECORD_MAX) {
            say(err, errsize, "an item of %zu bytes is larger than the "
                "queue takes (%u)", len[i], MX_JOURNAL_RECORD_MAX);
            return -1;
        }
    }
    if (j->seg_size >= (off_t)j->seg_max
        && create_segment(j, err, errsize) != 0)
        return -1;
    if (!(heads = malloc((n ? n : 1) * MX_JOURNAL_HEADER))) {
        say(err, errsize, "out of memory");
        return -1;
    }
    before = j->seg_size;
    if (lseek(j->fd, before, SEEK_SET) < 0)
        goto io_error;
    for (i = 0; i < n; i += k) {
        for (k = 0; k < IOV_BATCH && i + k < n; k++) {
            header_make(heads[i + k], j->next + i + k, data[i + k],
                        len[i + k]);
            iov[2 * k].iov_base = heads[i + k];
            iov[2 * k].iov_len = MX_JOURNAL_HEADER;
            iov[2 * k + 1].iov_base = (void *)data[i + k];
            iov[2 * k + 1].iov_len = len[i + k];
            total += MX_JOURNAL_HEADER + len[i + k];
        }
        if (write_all(j->fd, iov, (int)(2 * k)) != 0)
            goto io_error;
    }
    free(heads);
    if (first)
        *first = j->next;
    j->next += n;
    j->seg_size = before + (off_t)total;
    return 0;
io_error:
    say(err, errsize, "cannot write to %s/%020llu.seg: %s", j->jdir,
        j->seg_start, strerror(errno));
    free(heads);
    if (ftruncate(j->fd, before) != 0) {
        /* the torn tail is cut off when the journal is opened next */
    }
    return -1;
}

int mx_journal_sync(mx_journal *j, char *err, size_t errsize)
{
    int dfd;

    if (fdatasync(j->fd) != 0) {
        say(err, errsize, "cannot sync %s/%020llu.seg: %s", j->jdir,
            j->seg_start, strerror(errno));
        return -1;
    }
    if (j->dir_dirty) {
        dfd = open(j->jdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0 || fsync(dfd) != 0) {
            say(err, errsize, "cannot sync %s: %s", j->jdir,
                strerror(errno));
            if (dfd >= 0)
                close(dfd);
            return -1;
        }
        close(dfd);
        j->dir_dirty = 0;
    }
    return 0;
}

mx_seq mx_journal_next(const mx_journal *j)
{
    return j->next;
}

mx_seq mx_journal_acked(const mx_journal *j)
{
    return j->acked;
}

int mx_journal_set_acked(mx_journal *j, mx_seq seq)
{
    char path[PATH_MAX], tmp[PATH_MAX], buf[32];
    mx_seq *segs;
    size_t nsegs, i;
    int len;

    if (seq >= j->next)
        seq = j->next - 1;
    if (seq <= j->acked)
        return 0;
    j->acked = seq;
    snprintf(path, sizeof(path), "%s/acked", j->jdir);
    snprintf(tmp, sizeof(tmp), "%s/acked.tmp", j->jdir);
    len = snprintf(buf, sizeof(buf), "%llu\n", seq);
    /* not synced: a crash can at worst leave an older bound, and the
     * items after it are sent again */
    if (mx_file_replace(path, tmp, buf, (size_t)len, 0) != 0)
        return -1;
    if (list_segments(j->jdir, &segs, &nsegs) != 0)
        return -1;
    /* a segment ends where the next begins; never the one being written */
    for (i = 0; i + 1 < nsegs && segs[i + 1] - 1 <= seq; i++) {
        if (segs[i] == j->seg_start)
            break;
        seg_path(path, sizeof(path), j->jdir, segs[i]);
        unlink(path);
    }
    free(segs);
    return 0;
}

/* ---- reader ---- */

#define READ_AHEAD 65536   /* bytes the reader fetches with one pread */

struct mx_jreader {
    char jdir[JDIR_MAX];
    int fd;
    mx_seq seg_start;
    off_t off;
    mx_seq pos;
    /* read-ahead: bytes [ra_off, ra_off + ra_len) of the open segment.
     * Segments only grow and bytes once written never change, so what
     * was read stays true; a range reaching past it is read again. */
    unsigned char *ra;
    off_t ra_off;
    size_t ra_len;
    off_t scan_off;    /* where a search for an intact record stopped */
};

/* pread_full through the read-ahead buffer. */
static ssize_t reader_pread(mx_jreader *r, void *buf, size_t len, off_t off)
{
    ssize_t got;

    if (off >= r->ra_off && off + (off_t)len <= r->ra_off + (off_t)r->ra_len) {
        memcpy(buf, r->ra + (off - r->ra_off), len);
        return (ssize_t)len;
    }
    if (len > READ_AHEAD / 2 || (!r->ra && !(r->ra = malloc(READ_AHEAD))))
        return pread_full(r->fd, buf, len, off);
    r->ra_len = 0;
    if ((got = pread(r->fd, r->ra, READ_AHEAD, off)) < 0)
        return pread_full(r->fd, buf, len, off);
    r->ra_off = off;
    r->ra_len = (size_t)got;
    if ((size_t)got < len) /* the rest is not there (yet) */
        return pread_full(r->fd, buf, len, off);
    memcpy(buf, r->ra, len);
    return (ssize_t)len;
}

static int reader_open_segment(mx_jreader *r, mx_seq start)
{
    char path[PATH_MAX];
    int fd;

    seg_path(path, sizeof(path), r->jdir, start);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return -1;
    if (r->fd >= 0)
        close(r->fd);
    r->fd = fd;
    r->seg_start = start;
    r->off = 0;
    r->pos = start;
    r->ra_len = 0;
    r->scan_off = 0;
    return 0;
}

/* The first segment starting after pos; 0 when none */
static mx_seq segment_after(const char *jdir, mx_seq pos)
{
    mx_seq *segs, found = 0;
    size_t n, i;

    if (list_segments(jdir, &segs, &n) != 0)
        return 0;
    for (i = 0; i < n && !found; i++)
        if (segs[i] > pos)
            found = segs[i];
    free(segs);
    return found;
}

int mx_jreader_seek(mx_jreader *r, mx_seq from)
{
    mx_seq *segs, start = 0;
    size_t n, i, len;
    unsigned char h[MX_JOURNAL_HEADER];

    if (list_segments(r->jdir, &segs, &n) != 0)
        return -1;
    /* the last segment starting at or before from; when from is older
     * than every segment (their records were acknowledged and removed),
     * the oldest */
    for (i = 0; i < n; i++)
        if (segs[i] <= from || i == 0)
            start = segs[i];
    free(segs);
    if (start == 0) { /* no segment yet */
        if (r->fd >= 0)
            close(r->fd);
        r->fd = -1;
        r->seg_start = r->pos = from;
        r->off = 0;
        return 0;
    }
    if (reader_open_segment(r, start) != 0)
        return -1;
    /* skip the records before from, reading headers only */
    while (r->pos < from
           && reader_pread(r, h, sizeof(h), r->off) == (ssize_t)sizeof(h)
           && header_parse(h, r->pos, &len) == 0) {
        r->off += MX_JOURNAL_HEADER + (off_t)len;
        r->pos++;
    }
    return 0;
}

int mx_jreader_open(const char *dir, mx_seq from, mx_jreader **out)
{
    mx_jreader *r = calloc(1, sizeof(*r));

    *out = NULL;
    if (!r)
        return -1;
    r->fd = -1;
    if ((size_t)snprintf(r->jdir, sizeof(r->jdir), "%s/journal", dir)
        >= sizeof(r->jdir)) {
        free(r);
        errno = ENAMETOOLONG;
        return -1;
    }
    if (mx_jreader_seek(r, from ? from : 1) != 0) {
        free(r);
        return -1;
    }
    *out = r;
    return 0;
}

void mx_jreader_close(mx_jreader *r)
{
    if (!r)
        return;
    if (r->fd >= 0)
        close(r->fd);
    free(r->ra);
    free(r);
}

mx_seq mx_jreader_position(const mx_jreader *r)
{
    return r->pos;
}

/* Damaged or missing: move on to the next segment, report the loss. */
static int skip_damage(mx_jreader *r, mx_seq *seq)
{
    mx_seq next = segment_after(r->jdir, r->pos);

    *seq = r->pos;
    if (next && reader_open_segment(r, next) != 0)
        return -1;
    errno = EILSEQ;
    return -1;
}

/* After a damaged header at r->off: the next intact record of this
 * segment, a header numbered after pos and below limit whose CRC holds.
 * Found: the reader goes on from it, 1. Not (yet): 0, and the next call
 * scans on from where this one stopped, as the newest segment grows. */
static int resync(mx_jreader *r, mx_seq limit)
{
    enum { CHUNK = 65536 };
    unsigned char *buf = malloc(CHUNK);
    off_t o = r->scan_off > r->off ? r->scan_off : r->off + 1;
    ssize_t got;
    size_t i, len;
    char *data;
    mx_seq n;
    int found = 0;

    if (!buf)
        return 0;
    while (!found && (got = pread_full(r->fd, buf, CHUNK, o))
                     >= (ssize_t)MX_JOURNAL_HEADER) {
        for (i = 0; !found && i + MX_JOURNAL_HEADER <= (size_t)got; i++) {
            if (memcmp(buf + i, "MXJ1", 4) != 0)
                continue;
            n = (mx_seq)get_le(buf + i + 8, 8);
            len = (size_t)get_le(buf + i + 4, 4);
            if (n <= r->pos || n >= limit || len > MX_JOURNAL_RECORD_MAX
                || !(data = malloc(len ? len : 1)))
                continue;
            if (pread_full(r->fd, data, len, o + (off_t)i + MX_JOURNAL_HEADER)
                == (ssize_t)len && crc_ok(buf + i, data, len)) {
                r->pos = n;
                r->off = o + (off_t)i;
                found = 1;
            }
            free(data);
        }
        if (!found) /* a header across the chunks' border is seen next */
            o += got - (MX_JOURNAL_HEADER - 1);
    }
    free(buf);
    r->ra_len = 0;
    r->scan_off = found ? 0 : o;
    return found;
}

/* One record from the open segment: 1 read, -2 damaged here, -1 error. */
static int read_record(mx_jreader *r, char **data, size_t *len, mx_seq *seq)
{
    unsigned char h[MX_JOURNAL_HEADER];
    ssize_t got;
    char *buf;
    size_t n;

    got = reader_pread(r, h, sizeof(h), r->off);
    if (got < 0)
        return -1;
    if (got == 0) {
        /* the end of this segment: the record is in the next one */
        if (reader_open_segment(r, r->pos) != 0)
            return errno == ENOENT ? -2 : -1;
        got = reader_pread(r, h, sizeof(h), r->off);
        if (got < 0)
            return -1;
    }
    if (got != (ssize_t)sizeof(h) || header_parse(h, r->pos, &n) != 0)
        return -2;
    if (!(buf = malloc(n + 1)))
        return -1;
    got = reader_pread(r, buf, n, r->off + MX_JOURNAL_HEADER);
    if (got < 0 || (size_t)got != n || !crc_ok(h, buf, n)) {
        free(buf);
        if (got < 0)
            return -1;
        if ((size_t)got != n)
            return -2;
        /* the header holds: skip this record only */
        *seq = r->pos;
        r->off += MX_JOURNAL_HEADER + (off_t)n;
        r->pos++;
        errno = EILSEQ;
        return -1;
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    *seq = r->pos;
    r->off += MX_JOURNAL_HEADER + (off_t)n;
    r->pos++;
    return 1;
}

int mx_jreader_next(mx_jreader *r, mx_seq limit, char **data, size_t *len,
                    mx_seq *seq)
{
    mx_seq pos = r->pos, seg = r->seg_start;
    off_t off = r->off;
    int rc;

    *data = NULL;
    if (r->pos >= limit)
        return 0;
    if (r->fd < 0 && reader_open_segment(r, r->pos) != 0)
        return errno == ENOENT ? skip_damage(r, seq) : -1;
    rc = read_record(r, data, len, seq);
    if (rc != 1 && r->ra_len > 0 && r->seg_start == seg
        && (rc == -2 || errno == EILSEQ)) {
        /* read-ahead can hold the tail of an append that failed and was
         * cut off, rewritten since: judge the damage on a fresh read (a
         * segment opened just now was read fresh) */
        r->ra_len = 0;
        r->pos = pos;
        r->off = off;
        rc = read_record(r, data, len, seq);
    }
    if (rc != -2)
        return rc;
    /* a damaged header: go on from the next intact record of this
     * segment, else from the next segment; in the newest segment, wait
     * until the writer has put an intact one after it */
    *seq = r->pos;
    if (r->fd >= 0 && resync(r, limit)) {
        errno = EILSEQ;
        return -1;
    }
    if (segment_after(r->jdir, r->pos))
        return skip_damage(r, seq);
    errno = ENODATA;
    return -1;
}
