/* SPDX-License-Identifier: Apache-2.0 */
/* mx_presence: see mx_presence.h */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mx_jid.h"
#include "mx_file.h"
#include "mx_presence.h"

#ifndef PATH_MAX
#define PATH_MAX 4096
#endif

/* mx_queue_clean_tmp removes leftovers with this prefix */
#define TMP_PREFIX ".tmp-"

static _Atomic unsigned int counter;

/* buf = dir/presence[/name]; -1 with ENAMETOOLONG when it does not fit */
static int join(char *buf, size_t size, const char *dir, const char *name)
{
    int n = name ? snprintf(buf, size, "%s/presence/%s", dir, name)
                 : snprintf(buf, size, "%s/presence", dir);

    if (n < 0 || (size_t)n >= size) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

static int is_tmp(const char *name)
{
    return strncmp(name, TMP_PREFIX, sizeof(TMP_PREFIX) - 1) == 0;
}

size_t mx_utf8_prefix(const char *s, size_t len, size_t max)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, chars = 0, n;

    while (i < len && chars < max) {
        n = u[i] < 0x80 ? 1 : u[i] < 0xC0 ? 0 : u[i] < 0xE0 ? 2
            : u[i] < 0xF0 ? 3 : u[i] < 0xF8 ? 4 : 0;
        if (n == 0 || n > len - i || !mx_utf8_valid_xml(s + i, n))
            break;
        i += n;
        chars++;
    }
    return i;
}

int mx_presence_path(const char *dir, const char *jid, char *buf,
                     size_t size)
{
    char bare[2 * MX_JID_PART_MAX + 2];

    /* a valid bare JID has no '/' and is never "." or ".." (it has an
     * '@', or is a domain, which never begins with a dot): a safe file
     * name, unless it could be taken for a temporary file */
    if (!dir || mx_jid_bare_prep(jid, bare, sizeof(bare)) < 0
        || is_tmp(bare)) {
        errno = EINVAL;
        return -1;
    }
    return join(buf, size, dir, bare);
}

/* The show as stored: one of RFC 6121's four, else nothing. */
static const char *show_word(const char *show)
{
    static const char *const words[] = { "chat", "away", "dnd", "xa", NULL };
    int i;

    for (i = 0; show && words[i]; i++)
        if (!strcmp(show, words[i]))
            return words[i];
    return "";
}

struct presence {
    int available;
    const char *show, *status;
};

/* "available\nSHOW\nSTATUS" into fd, the status cut to its bound */
static int write_presence(int fd, void *baton)
{
    const struct presence *pr = baton;
    int available = pr->available;
    const char *word = show_word(pr->show), *status = pr->status;
    size_t slen = status ? strlen(status) : 0;

    slen = mx_utf8_prefix(status ? status : "", slen, MX_PRESENCE_STATUS_MAX);
    if (mx_write_all(fd, available ? "available\n" : "unavailable\n",
                  available ? 10 : 12) != 0
        || mx_write_all(fd, word, strlen(word)) != 0
        || mx_write_all(fd, "\n", 1) != 0)
        return -1;
    return slen ? mx_write_all(fd, status, slen) : 0;
}

int mx_presence_store(const char *dir, const char *jid, int available,
                      const char *show, const char *status)
{
    char path[PATH_MAX], tmp[PATH_MAX], sub[PATH_MAX], nm[64];
    struct presence pr = { available, show, status };

    if (mx_presence_path(dir, jid, path, sizeof(path)) != 0)
        return -1;
    snprintf(nm, sizeof(nm), TMP_PREFIX "%ld-%u", (long)getpid(),
             atomic_fetch_add(&counter, 1));
    if (join(sub, sizeof(sub), dir, NULL) != 0
        || join(tmp, sizeof(tmp), dir, nm) != 0
        || (mkdir(sub, 0700) != 0 && errno != EEXIST))
        return -1;
    /* not synced: a presence lost in a crash is sent again by the
     * contact at the next login */
    return mx_file_replace_with(path, tmp, 0, write_presence, &pr);
}

/* Split "available\nshow\nstatus" in place. */
static void parse_presence(char *text, int *available, char *show,
                           size_t showsize, char **status)
{
    char *l2 = strchr(text, '\n'), *l3 = NULL;
    size_t n;

    if (l2) {
        *l2++ = '\0';
        if ((l3 = strchr(l2, '\n')) != NULL)
            *l3++ = '\0';
    }
    *available = strcmp(text, "available") == 0;
    if (show && showsize) {
        n = l2 ? strlen(l2) : 0;
        if (n >= showsize)
            n = showsize - 1;
        memcpy(show, l2 ? l2 : "", n);
        show[n] = '\0';
    }
    if (status)
        *status = strdup(l3 ? l3 : "");
}

/* At most size - 1 bytes of path, NUL-terminated: a file written by an
 * older version may be larger than any this one writes. */
static int read_bounded(const char *path, char *buf, size_t size)
{
    size_t got = 0;
    ssize_t r = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC), e;

    if (fd < 0)
        return -1;
    while (got + 1 < size) {
        r = read(fd, buf + got, size - 1 - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    e = errno;
    close(fd);
    buf[got] = '\0';
    errno = e;
    return r < 0 ? -1 : 0;
}

int mx_presence_load(const char *dir, const char *jid, int *available,
                     char *show, size_t showsize, char **status)
{
    char path[PATH_MAX], *text;
    int rv = 0;

    *available = 0;
    if (show && showsize)
        show[0] = '\0';
    if (status)
        *status = NULL;
    if (mx_presence_path(dir, jid, path, sizeof(path)) != 0)
        return -1;
    if (!(text = malloc(MX_PRESENCE_FILE_MAX + 1)))
        return -1;
    if (read_bounded(path, text, MX_PRESENCE_FILE_MAX + 1) != 0)
        rv = (errno == ENOENT || errno == ENAMETOOLONG) ? 1 : -1;
    else
        parse_presence(text, available, show, showsize, status);
    free(text);
    if (rv == 0 && status && !*status) {
        errno = ENOMEM;
        return -1;
    }
    return rv;
}

int mx_presence_remove(const char *dir, const char *jid)
{
    char path[PATH_MAX];

    if (mx_presence_path(dir, jid, path, sizeof(path)) != 0)
        return -1;
    return (unlink(path) == 0 || errno == ENOENT) ? 0 : -1;
}

long mx_presence_prune(const char *dir,
                       int (*keep)(const char *bare, void *ud), void *ud)
{
    char path[PATH_MAX];
    struct dirent *de;
    long kept = 0;
    DIR *d;

    if (join(path, sizeof(path), dir, NULL) != 0)
        return -1;
    if (!(d = opendir(path)))
        return errno == ENOENT ? 0 : -1;
    while ((de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")
            || is_tmp(de->d_name))
            continue;
        if (keep(de->d_name, ud))
            kept++;
        else
            unlinkat(dirfd(d), de->d_name, 0);
    }
    closedir(d);
    return kept;
}
