/* SPDX-License-Identifier: Apache-2.0 */
/* mx_spool: see mx_spool.h */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mx_file.h"
#include "mx_full.h"
#include "mx_item.h"
#include "mx_spool.h"

#ifndef PATH_MAX
#define PATH_MAX 4096
#endif

typedef char qname[MX_QUEUE_NAME_SIZE];

/* Per process: the last time part handed out, and the counter. Both are
 * inherited by forked children, whose pid differs, so names stay unique. */
static _Atomic unsigned long long last_ns;
static _Atomic unsigned int counter;

/* ---- helpers ---- */

/* strerror_r has two incompatible prototypes; _GNU_SOURCE (set by apxs
 * for the module, not for the command) picks the GNU one. */
static const char *errtext(int e, char *buf, size_t size)
{
#if defined(__GLIBC__) && defined(_GNU_SOURCE)
    return strerror_r(e, buf, size);
#else
    if (strerror_r(e, buf, size) != 0)
        snprintf(buf, size, "error %d", e);
    return buf;
#endif
}

/* err = "<what> <path>: <system error>"; keeps errno; returns -1 */
static int fail(char *err, size_t errsize, const char *what,
                const char *path)
{
    int e = errno;
    char ebuf[128];

    if (err && errsize)
        snprintf(err, errsize, "%s %s: %s", what, path,
                 errtext(e, ebuf, sizeof(ebuf)));
    errno = e;
    return -1;
}

static int ensure_dir(const char *path)
{
    return (mkdir(path, 0700) == 0 || errno == EEXIST) ? 0 : -1;
}

/* ---- names ---- */

int mx_queue_name_valid(const char *name)
{
    int i;

    for (i = 0; i < MX_QUEUE_NAME_LEN; i++) {
        if (i == 20 || i == 31) {
            if (name[i] != '-')
                return 0;
        }
        else if (name[i] < '0' || name[i] > '9')
            return 0;
    }
    return name[MX_QUEUE_NAME_LEN] == '\0';
}

/* Strictly increasing within the process, so a clock stepped back by
 * NTP cannot put a later item of this process before an earlier one. */
static unsigned long long next_ns(void)
{
    struct timespec ts;
    unsigned long long now, prev, want;

    clock_gettime(CLOCK_REALTIME, &ts);
    now = (unsigned long long)ts.tv_sec * 1000000000ULL
          + (unsigned long long)ts.tv_nsec;
    prev = atomic_load(&last_ns);
    do
        want = now > prev ? now : prev + 1;
    while (!atomic_compare_exchange_weak(&last_ns, &prev, want));
    return want;
}

static void new_name(qname nm)
{
    unsigned int c = atomic_fetch_add(&counter, 1) % 100000000u;
    char buf[64]; /* the widest the compiler can imagine; real ones fit */

    snprintf(buf, sizeof(buf), "%020llu-%010ld-%08u", next_ns(),
             (long)getpid() % 10000000000L, c);
    memcpy(nm, buf, MX_QUEUE_NAME_SIZE - 1);
    nm[MX_QUEUE_NAME_LEN] = '\0';
}

/* ---- put ---- */

/* Create D/tmp/NAME; makes tmp/ and new/ on first use. */
static int create_tmp(const char *dir, qname nm, char *tmp, size_t size,
                      char *err, size_t errsize)
{
    char sub[PATH_MAX];
    int fd, tries;

    for (tries = 0; tries < 4; tries++) {
        new_name(nm);
        if (mx_path_join(tmp, size, dir, "tmp", nm) != 0)
            return fail(err, errsize, "cannot create an item in", dir);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd >= 0)
            return fd;
        if (errno == EEXIST)
            continue;
        if (errno != ENOENT || tries > 0)
            break;
        if (mx_path_join(sub, sizeof(sub), dir, "tmp", NULL) != 0 || ensure_dir(sub) != 0)
            return fail(err, errsize, "cannot create", sub);
        if (mx_path_join(sub, sizeof(sub), dir, "new", NULL) != 0 || ensure_dir(sub) != 0)
            return fail(err, errsize, "cannot create", sub);
    }
    return fail(err, errsize, "cannot create", tmp);
}

/* Write, sync and close fd; on failure remove tmp. */
static int fill_tmp(int fd, const char *tmp, const char *data, size_t len,
                    int sync, char *err, size_t errsize)
{
    int e;

    if (mx_write_all(fd, data, len) != 0 || (sync && fsync(fd) != 0)) {
        e = errno;
        close(fd);
        unlink(tmp);
        errno = e;
        return fail(err, errsize, "cannot write", tmp);
    }
    if (close(fd) != 0) {
        e = errno;
        unlink(tmp);
        errno = e;
        return fail(err, errsize, "cannot write", tmp);
    }
    return 0;
}

/* Move tmp to D/new/NAME and make that durable. */
static int publish(const char *dir, const qname nm, const char *tmp, int sync,
                   char *err, size_t errsize)
{
    char dst[PATH_MAX], sub[PATH_MAX];
    int e;

    if (mx_path_join(dst, sizeof(dst), dir, "new", nm) != 0
        || mx_path_join(sub, sizeof(sub), dir, "new", NULL) != 0) {
        unlink(tmp);
        return fail(err, errsize, "cannot create an item in", dir);
    }
    if (rename(tmp, dst) != 0
        && (errno != ENOENT || ensure_dir(sub) != 0 || rename(tmp, dst) != 0)) {
        e = errno;
        unlink(tmp);
        errno = e;
        return fail(err, errsize, "cannot move the item to", dst);
    }
    if (sync && mx_sync_dir(sub) != 0) {
        /* not durable, so not accepted; the holder may have seen it
         * already, which costs at worst a duplicate send */
        e = errno;
        unlink(dst);
        errno = e;
        return fail(err, errsize, "cannot sync", sub);
    }
    return 0;
}

int mx_queue_put(const char *dir, const char *data, size_t len, int sync,
                 char *name, size_t namesize, char *err, size_t errsize)
{
    char tmp[PATH_MAX];
    qname nm;
    int fd, rv;

    if (err && errsize)
        err[0] = '\0';
    if (!dir || (!data && len) || (name && namesize < MX_QUEUE_NAME_SIZE)) {
        errno = EINVAL;
        return fail(err, errsize, "bad arguments for the queue", dir ? dir : "(none)");
    }
    if ((rv = mx_queue_full_check(dir, err, errsize)) != 0)
        return rv;
    if ((fd = create_tmp(dir, nm, tmp, sizeof(tmp), err, errsize)) < 0)
        return -1;
    if (fill_tmp(fd, tmp, data, len, sync, err, errsize) != 0
        || publish(dir, nm, tmp, sync, err, errsize) != 0)
        return -1;
    if (name)
        memcpy(name, nm, MX_QUEUE_NAME_SIZE);
    return 0;
}

/* ---- list: a bounded max-heap keeps the max oldest names ---- */

typedef struct {
    qname *v;
    size_t n, cap, max;
} heap;

static void heap_swap(heap *h, size_t a, size_t b)
{
    qname t;

    memcpy(t, h->v[a], sizeof(t));
    memcpy(h->v[a], h->v[b], sizeof(t));
    memcpy(h->v[b], t, sizeof(t));
}

static void heap_up(heap *h, size_t i)
{
    while (i > 0 && strcmp(h->v[(i - 1) / 2], h->v[i]) < 0) {
        heap_swap(h, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void heap_down(heap *h, size_t i)
{
    size_t big, l, r;

    for (;;) {
        big = i, l = 2 * i + 1, r = l + 1;
        if (l < h->n && strcmp(h->v[l], h->v[big]) > 0)
            big = l;
        if (r < h->n && strcmp(h->v[r], h->v[big]) > 0)
            big = r;
        if (big == i)
            return;
        heap_swap(h, i, big);
        i = big;
    }
}

/* Keep name if it is among the max smallest seen so far. */
static int heap_offer(heap *h, const char *name)
{
    qname *nv;
    size_t ncap;

    if (h->n < h->max) {
        if (h->n == h->cap) {
            ncap = h->cap ? h->cap * 2 : 64;
            if (ncap > h->max)
                ncap = h->max;
            if (!(nv = realloc(h->v, ncap * sizeof(qname))))
                return -1;
            h->v = nv;
            h->cap = ncap;
        }
        memcpy(h->v[h->n], name, MX_QUEUE_NAME_SIZE);
        heap_up(h, h->n++);
    }
    else if (strcmp(name, h->v[0]) < 0) {
        memcpy(h->v[0], name, MX_QUEUE_NAME_SIZE);
        heap_down(h, 0);
    }
    return 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

/* Turn the heap into the caller's sorted array of strings. */
static int heap_export(heap *h, char ***names, size_t *count)
{
    char **out = NULL;
    size_t i;

    if (h->n == 0)
        return 0; /* *names NULL, *count 0 already */
    qsort(h->v, h->n, sizeof(qname), cmp_names);
    if (!(out = calloc(h->n, sizeof(*out))))
        return -1;
    for (i = 0; i < h->n; i++) {
        if (!(out[i] = strdup(h->v[i]))) {
            mx_queue_free_list(out, i);
            return -1;
        }
    }
    *names = out;
    *count = h->n;
    return 0;
}

int mx_queue_list(const char *dir, size_t max, char ***names, size_t *count)
{
    char path[PATH_MAX];
    heap h = { NULL, 0, 0, max };
    struct dirent *de;
    DIR *d;
    int rv = 0, e;

    *names = NULL;
    *count = 0;
    if (mx_path_join(path, sizeof(path), dir, "new", NULL) != 0)
        return -1;
    if (!(d = opendir(path)))
        return errno == ENOENT ? 0 : -1;
    while (rv == 0 && max && (de = readdir(d)) != NULL)
        if (mx_queue_name_valid(de->d_name))
            rv = heap_offer(&h, de->d_name);
    if (rv == 0)
        rv = heap_export(&h, names, count);
    e = errno;
    closedir(d);
    free(h.v);
    errno = e;
    return rv;
}

void mx_queue_free_list(char **names, size_t count)
{
    size_t i;

    if (!names)
        return;
    for (i = 0; i < count; i++)
        free(names[i]);
    free(names);
}

/* ---- items ---- */

/* D/new/name into path (PATH_MAX), for a name of the item format only */
static int item_path(const char *dir, const char *name, char *path)
{
    if (!name || !mx_queue_name_valid(name)) {
        errno = EINVAL;
        return -1;
    }
    return mx_path_join(path, PATH_MAX, dir, "new", name);
}

int mx_queue_read(const char *dir, const char *name, char **data, size_t *len)
{
    char path[PATH_MAX];

    if (item_path(dir, name, path) != 0)
        return -1;
    return mx_file_read(path, MX_QUEUE_ITEM_MAX, data, len);
}

int mx_queue_remove(const char *dir, const char *name)
{
    char path[PATH_MAX];

    if (item_path(dir, name, path) != 0)
        return -1;
    return (unlink(path) == 0 || errno == ENOENT) ? 0 : -1;
}

int mx_queue_set_aside(const char *dir, const char *name)
{
    char from[PATH_MAX], to[PATH_MAX], bad[PATH_MAX];

    if (!name || !mx_queue_name_valid(name)) {
        errno = EINVAL;
        return -1;
    }
    if (mx_path_join(from, sizeof(from), dir, "new", name) != 0
        || mx_path_join(to, sizeof(to), dir, "bad", name) != 0
        || mx_path_join(bad, sizeof(bad), dir, "bad", NULL) != 0
        || ensure_dir(bad) != 0)
        return -1;
    return rename(from, to);
}

/* Only paths inside D: no absolute path, no ".." component. */
static int relpath_ok(const char *rel)
{
    const char *p = rel;

    if (!rel || !*rel || *rel == '/')
        return 0;
    while (*p) {
        if (p[0] == '.' && p[1] == '.' && (p[2] == '/' || p[2] == '\0'))
            return 0;
        p += strcspn(p, "/");
        p += *p == '/';
    }
    return 1;
}

int mx_queue_read_file(const char *dir, const char *relpath, char **data,
                       size_t *len)
{
    char path[PATH_MAX];

    if (!relpath_ok(relpath)) {
        errno = EINVAL;
        return -1;
    }
    if (mx_path_join(path, sizeof(path), dir, relpath, NULL) != 0)
        return -1;
    return mx_file_read(path, (size_t)-1, data, len);
}

long mx_queue_count(const char *dir)
{
    char path[PATH_MAX];
    struct dirent *de;
    long n = 0;
    DIR *d;

    if (mx_path_join(path, sizeof(path), dir, "new", NULL) != 0)
        return -1;
    if (!(d = opendir(path)))
        return errno == ENOENT ? 0 : -1;
    while ((de = readdir(d)) != NULL)
        if (mx_queue_name_valid(de->d_name))
            n++;
    closedir(d);
    return n;
}

/* ---- tmp/ cleanup ---- */

static int is_presence_tmp(const char *name)
{
    return strncmp(name, ".tmp-", 5) == 0;
}

/* Remove regular files of dir/sub older than limit whose name passes ok. */
static void clean_dir(const char *dir, const char *sub, time_t limit,
                      int (*ok)(const char *))
{
    char path[PATH_MAX];
    struct dirent *de;
    struct stat st;
    DIR *d;

    if (mx_path_join(path, sizeof(path), dir, sub, NULL) != 0 || !(d = opendir(path)))
        return;
    while ((de = readdir(d)) != NULL) {
        if (!ok(de->d_name)
            || fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        if (S_ISREG(st.st_mode) && st.st_mtime < limit)
            unlinkat(dirfd(d), de->d_name, 0);
    }
    closedir(d);
}

void mx_queue_clean_tmp(const char *dir, int older_than_seconds)
{
    time_t limit = time(NULL) - older_than_seconds;

    clean_dir(dir, "tmp", limit, mx_queue_name_valid);
    clean_dir(dir, "presence", limit, is_presence_tmp);
}
