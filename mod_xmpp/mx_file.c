/* SPDX-License-Identifier: Apache-2.0 */
/* mx_file: see mx_file.h */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mx_file.h"

#ifndef PATH_MAX
#define PATH_MAX 4096
#endif

int mx_write_all(int fd, const char *data, size_t len)
{
    ssize_t w;

    while (len) {
        w = write(fd, data, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        data += w;
        len -= (size_t)w;
    }
    return 0;
}

int mx_sync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rv, e;

    if (fd < 0)
        return -1;
    rv = fsync(fd);
    e = errno;
    close(fd);
    errno = e;
    return rv;
}

/* The directory that holds path: what to sync after the rename. */
static int sync_parent(const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    size_t n;

    if (!slash)
        return mx_sync_dir(".");
    if (slash == path)
        return mx_sync_dir("/");
    if ((n = (size_t)(slash - path)) >= sizeof(dir)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(dir, path, n);
    dir[n] = '\0';
    return mx_sync_dir(dir);
}

/* Remove tmp, keeping the errno of the failure that made us give up. */
static int give_up(const char *tmp)
{
    int e = errno ? errno : EIO;

    unlink(tmp);
    errno = e;
    return -1;
}

int mx_file_replace_with(const char *path, const char *tmp, int flags,
                         mx_file_fill *fill, void *baton)
{
    int durable = flags & MX_FILE_DURABLE, fd, e;

    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    errno = 0;
    if (fill(fd, baton) != 0 || (durable && fsync(fd) != 0)) {
        e = errno;
        close(fd);
        errno = e;
        return give_up(tmp);
    }
    if (close(fd) != 0 || rename(tmp, path) != 0)
        return give_up(tmp);
    /* the new content is in place; only its durability can fail now */
    return durable ? sync_parent(path) : 0;
}

struct bytes {
    const char *data;
    size_t len;
};

static int fill_bytes(int fd, void *baton)
{
    const struct bytes *b = baton;

    return mx_write_all(fd, b->data, b->len);
}

int mx_file_replace(const char *path, const char *tmp, const char *data,
                    size_t len, int flags)
{
    struct bytes b = { data, len };

    return mx_file_replace_with(path, tmp, flags, fill_bytes, &b);
}

int mx_path_join(char *buf, size_t size, const char *dir, const char *sub,
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

int mx_file_read(const char *path, size_t max, char **data, size_t *len)
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
