/* SPDX-License-Identifier: Apache-2.0 */
/* mx_queue: see mx_queue.h */
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
#include "mx_jid.h"
#include "mx_queue.h"
#include "mx_send.h"

#ifndef PATH_MAX
#define PATH_MAX 4096
#endif

#define ITEM_MAGIC "MX1 "

typedef char qname[MX_QUEUE_NAME_SIZE];

static const char *const item_kinds[] = { "stanza", "subscribers", NULL };

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

/* buf = dir/sub[/name]; -1 with ENAMETOOLONG when it does not fit */
static int join(char *buf, size_t size, const char *dir, const char *sub,
                const char *name)
{
    int n = name ? snprintf(buf, size, "%s/%s/%s", dir, sub, name)
                 : snprintf(buf, size, "%s/%s", dir, sub);

    if (n < 0 || (size_t)n >= size) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

static int ensure_dir(const char *path)
{
    return (mkdir(path, 0700) == 0 || errno == EEXIST) ? 0 : -1;
}

/* Read a whole file of at most max bytes into a malloc'd NUL-terminated
 * buffer; EFBIG for a larger one, which is never read into memory. */
static int read_file_max(const char *path, size_t max, char **data,
                         size_t *len)
{
    struct stat st;
    size_t size, got = 0;
    ssize_t r;
    char *buf = NULL, *nb;
    int fd = open(path, O_RDONLY | O_CLOEXEC), e;

    if (fd < 0)
        return -1;
    size = (fstat(fd, &st) == 0 && st.st_size > 0) ? (size_t)st.st_size + 1 : 256;
    if (size - 1 > max && st.st_size > 0) {
        errno = EFBIG;
        goto fail;
    }
    if (!(buf = malloc(size)))
        goto fail;
    for (;;) {
        if (got > max) {
            errno = EFBIG;
            goto fail;
        }
        if (got + 1 >= size) { /* the file grew since fstat */
            if (!(nb = realloc(buf, size * 2)))
                goto fail;
            buf = nb;
            size *= 2;
        }
        r = read(fd, buf + got, size - got - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            goto fail;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    buf[got] = '\0';
    *data = buf;
    if (len)
        *len = got;
    return 0;
fail:
    e = errno;
    free(buf);
    close(fd);
    errno = e;
    return -1;
}

static int read_file(const char *path, char **data, size_t *len)
{
    return read_file_max(path, (size_t)-1, data, len);
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

/* Refuse while the holder says the queue is full. */
static int check_full(const char *dir, char *err, size_t errsize)
{
    char path[PATH_MAX], *text = NULL;
    struct stat st;
    long count, limit;

    if (join(path, sizeof(path), dir, "FULL", NULL) != 0
        || stat(path, &st) != 0)
        return 0;
    if (err && errsize) {
        if (st.st_size > 0 && st.st_size < 256 && read_file(path, &text, NULL) == 0
            && sscanf(text, "%ld %ld", &count, &limit) == 2)
            snprintf(err, errsize,
                     "the outbound queue is full (%ld items; limit %ld)",
                     count, limit);
        else
            snprintf(err, errsize, "the outbound queue is full; try again later");
        free(text);
    }
    return MX_QUEUE_FULL;
}

/* Create D/tmp/NAME; makes tmp/ and new/ on first use. */
static int create_tmp(const char *dir, qname nm, char *tmp, size_t size,
                      char *err, size_t errsize)
{
    char sub[PATH_MAX];
    int fd, tries;

    for (tries = 0; tries < 4; tries++) {
        new_name(nm);
        if (join(tmp, size, dir, "tmp", nm) != 0)
            return fail(err, errsize, "cannot create an item in", dir);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd >= 0)
            return fd;
        if (errno == EEXIST)
            continue;
        if (errno != ENOENT || tries > 0)
            break;
        if (join(sub, sizeof(sub), dir, "tmp", NULL) != 0 || ensure_dir(sub) != 0)
            return fail(err, errsize, "cannot create", sub);
        if (join(sub, sizeof(sub), dir, "new", NULL) != 0 || ensure_dir(sub) != 0)
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

    if (join(dst, sizeof(dst), dir, "new", nm) != 0
        || join(sub, sizeof(sub), dir, "new", NULL) != 0) {
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
    if ((rv = check_full(dir, err, errsize)) != 0)
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
    if (join(path, sizeof(path), dir, "new", NULL) != 0)
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
    return join(path, PATH_MAX, dir, "new", name);
}

int mx_queue_read(const char *dir, const char *name, char **data, size_t *len)
{
    char path[PATH_MAX];

    if (item_path(dir, name, path) != 0)
        return -1;
    return read_file_max(path, MX_QUEUE_ITEM_MAX, data, len);
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
    if (join(from, sizeof(from), dir, "new", name) != 0
        || join(to, sizeof(to), dir, "bad", name) != 0
        || join(bad, sizeof(bad), dir, "bad", NULL) != 0
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
    if (join(path, sizeof(path), dir, relpath, NULL) != 0)
        return -1;
    return read_file(path, data, len);
}

long mx_queue_count(const char *dir)
{
    char path[PATH_MAX];
    struct dirent *de;
    long n = 0;
    DIR *d;

    if (join(path, sizeof(path), dir, "new", NULL) != 0)
        return -1;
    if (!(d = opendir(path)))
        return errno == ENOENT ? 0 : -1;
    while ((de = readdir(d)) != NULL)
        if (mx_queue_name_valid(de->d_name))
            n++;
    closedir(d);
    return n;
}

/* ---- the FULL flag ---- */

int mx_queue_set_full(const char *dir, int full)
{
    char path[PATH_MAX];
    int fd;

    if (join(path, sizeof(path), dir, "FULL", NULL) != 0)
        return -1;
    if (!full)
        return (unlink(path) == 0 || errno == ENOENT) ? 0 : -1;
    if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0)
        return errno == EEXIST ? 0 : -1;
    return close(fd) == 0 ? 1 : -1;
}

int mx_queue_set_full_counts(const char *dir, long count, long limit)
{
    char path[PATH_MAX], tmp[PATH_MAX], text[64];
    struct stat st;
    int n, was;

    n = snprintf(text, sizeof(text), "%ld %ld\n", count, limit);
    if (join(path, sizeof(path), dir, "FULL", NULL) != 0
        || join(tmp, sizeof(tmp), dir, "FULL.tmp", NULL) != 0)
        return -1;
    was = stat(path, &st) == 0;
    /* readers must never see a half-written file; a lost one is made
     * again by the next count, so no sync */
    if (mx_file_replace(path, tmp, text, (size_t)n, 0) != 0)
        return -1;
    return was ? 0 : 1;
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

    if (join(path, sizeof(path), dir, sub, NULL) != 0 || !(d = opendir(path)))
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

/* ---- item content ---- */

char *mx_queue_item_make(mx_item_kind kind, const char *stanza,
                         size_t stanza_len, size_t *len)
{
    const char *k;
    size_t klen, head, n;
    char *out;

    if ((unsigned int)kind > MX_ITEM_SUBSCRIBERS || !stanza)
        return NULL;
    k = item_kinds[kind];
    klen = strlen(k);
    head = sizeof(ITEM_MAGIC) - 1 + klen + 1;
    n = head + stanza_len;
    if (!(out = malloc(n + 1)))
        return NULL;
    memcpy(out, ITEM_MAGIC, sizeof(ITEM_MAGIC) - 1);
    memcpy(out + sizeof(ITEM_MAGIC) - 1, k, klen);
    out[head - 1] = '\n';
    memcpy(out + head, stanza, stanza_len);
    out[n] = '\0';
    if (len)
        *len = n;
    return out;
}

int mx_queue_item_parse(const char *data, size_t len, mx_queue_item *item)
{
    const char *k, *nl;
    size_t klen, skip;
    int i;

    if (!data || len < sizeof(ITEM_MAGIC)
        || memcmp(data, ITEM_MAGIC, sizeof(ITEM_MAGIC) - 1) != 0)
        return -1;
    k = data + sizeof(ITEM_MAGIC) - 1;
    if (!(nl = memchr(k, '\n', len - (sizeof(ITEM_MAGIC) - 1))))
        return -1;
    klen = (size_t)(nl - k);
    skip = (size_t)(nl + 1 - data);
    for (i = 0; item_kinds[i]; i++)
        if (strlen(item_kinds[i]) == klen && memcmp(k, item_kinds[i], klen) == 0)
            break;
    if (!item_kinds[i] || skip >= len)
        return -1;
    item->kind = (mx_item_kind)i;
    item->stanza = nl + 1;
    item->stanza_len = len - skip;
    return 0;
}

/* ---- item checks ---- */

static const char *const message_types[] = {
    "chat", "error", "groupchat", "headline", "normal", NULL
};
static const char *const presence_types[] = {
    "unavailable", "probe", "subscribe", "subscribed", "unsubscribe",
    "unsubscribed", "error", NULL
};
static const char *const iq_types[] = {
    "get", "set", "result", "error", NULL
};

/* The start tag at s (well-formed, so quotes pair up): its end, just
 * past '>'; *empty when it is "<.../>". */
static const char *tag_end(const char *s, int *empty)
{
    char q = 0;

    for (s++; *s; s++) {
        if (q)
            q = *s == q ? 0 : q;
        else if (*s == '"' || *s == '\'')
            q = *s;
        else if (*s == '>') {
            *empty = s[-1] == '/';
            return s + 1;
        }
    }
    return NULL;
}

/* 1 when the well-formed XML content s is exactly one element: it starts
 * at s[0] and its end tag is the last thing in s. */
static int one_element(const char *s)
{
    const char *p = s;
    int depth = 0, empty;

    if (*p != '<')
        return 0;
    while (*p) {
        if (*p != '<')
            p += strcspn(p, "<");
        else if (!strncmp(p, "<![CDATA[", 9))
            p = (p = strstr(p, "]]>")) ? p + 3 : NULL;
        else if (p[1] == '/') {
            p = (p = strchr(p, '>')) ? p + 1 : NULL;
            if (--depth == 0)
                break;
        }
        else if (p[1] == '!' || p[1] == '?')
            return 0; /* refused by the XML check already */
        else {
            p = tag_end(p, &empty);
            if (p && !empty)
                depth++;
            else if (p && depth == 0)
                break;
        }
        if (!p)
            return 0;
    }
    return depth == 0 && p && *p == '\0';
}

/* The value of attribute name in the start tag at s, unescaped, into buf:
 * 1 when there, 0 when absent, -1 when it uses a character reference or
 * does not fit (no address or type needs either). */
static int attr_value(const char *s, const char *name, char *buf,
                      size_t size)
{
    static const char *const ents[][2] = {
        { "&amp;", "&" }, { "&lt;", "<" }, { "&gt;", ">" },
        { "&quot;", "\"" }, { "&apos;", "'" }
    };
    size_t nlen = strlen(name), n = 0, i;
    const char *p = s + 1 + strcspn(s + 1, " \t\r\n/>"), *v;
    char q;

    for (;;) {
        p += strspn(p, " \t\r\n");
        if (*p == '>' || *p == '/' || !*p)
            return 0;
        v = p + strcspn(p, " \t\r\n=");
        q = *(v += strspn(v, " \t\r\n=")); /* = and spaces around it */
        if ((size_t)(p + strcspn(p, " \t\r\n=") - p) == nlen
            && !strncmp(p, name, nlen))
            break;
        p = strchr(v + 1, q) + 1;
    }
    for (v++; *v != q; ) {
        for (i = 0; *v == '&' && i < 5; i++)
            if (!strncmp(v, ents[i][0], strlen(ents[i][0])))
                break;
        if (*v == '&' && i == 5)
            return -1;
        if (n + 1 >= size)
            return -1;
        buf[n++] = *v == '&' ? ents[i][1][0] : *v;
        v += *v == '&' ? strlen(ents[i][0]) : 1;
    }
    buf[n] = '\0';
    return 1;
}

static int listed(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (!strcmp(s, *list))
            return 1;
    return 0;
}

/* The element's name, addresses and type, in a stanza that is one
 * well-formed element. */
static const char *check_stanza(const char *st, mx_item_kind kind,
                                const char *app_bare,
                                const char *app_resource)
{
    static char const *const *types[] = {
        message_types, presence_types, iq_types
    };
    static const char *const names[] = { "message", "presence", "iq", NULL };
    char addr[3 * MX_JID_PART_MAX + 3];
    size_t nlen = strcspn(st + 1, " \t\r\n/>");
    int i, has;

    for (i = 0; names[i]; i++)
        if (strlen(names[i]) == nlen && !strncmp(st + 1, names[i], nlen))
            break;
    if (!names[i])
        return "the stanza is not a <message>, <presence> or <iq>";
    if (kind == MX_ITEM_SUBSCRIBERS && i != 1)
        return "a presence to subscribers that is not a <presence>";
    if ((has = attr_value(st, "from", addr, sizeof(addr))) < 0
        || (has && (!*addr
                    || mx_check_from(addr, app_bare, app_resource) != MX_OK)))
        return "the from address is not one of the app's own addresses";
    if ((has = attr_value(st, "to", addr, sizeof(addr))) < 0
        || (has && mx_check_to(addr) != MX_OK))
        return "the recipient is not a valid JID";
    if (has && kind == MX_ITEM_SUBSCRIBERS)
        return "a presence to subscribers has a recipient";
    if ((has = attr_value(st, "type", addr, sizeof(addr))) < 0
        || (has && !listed(addr, types[i])))
        return "the stanza's type is not one its element may have";
    return NULL;
}

int mx_queue_item_check(const char *data, size_t len, const char *app_bare,
                        const char *app_resource, const char **why)
{
    mx_queue_item item;
    char *stanza;

    *why = NULL;
    if (len > MX_QUEUE_ITEM_MAX)
        *why = "the item is larger than 16 MiB";
    else if (memchr(data, '\0', len))
        *why = "the item contains a NUL byte";
    else if (mx_queue_item_parse(data, len, &item) != 0)
        *why = "not an item of this version of mod_xmpp";
    if (*why)
        return -1;
    if (!(stanza = malloc(item.stanza_len + 1))) {
        *why = "out of memory";
        return -1;
    }
    memcpy(stanza, item.stanza, item.stanza_len);
    stanza[item.stanza_len] = '\0';
    /* the raw XML check of send_message: the stanza is then one child of
     * a <message>, well-formed, without what XMPP forbids */
    if (mx_message_check(stanza, NULL, 1, why) == MX_OK)
        *why = !one_element(stanza)
               ? "the stanza is not exactly one element"
               : check_stanza(stanza, item.kind, app_bare, app_resource);
    free(stanza);
    return *why ? -1 : 0;
}
