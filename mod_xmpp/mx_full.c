/* SPDX-License-Identifier: Apache-2.0 */
/* mx_full: see mx_full.h */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mx_file.h"
#include "mx_full.h"

#ifndef PATH_MAX
#define PATH_MAX 4096
#endif

int mx_queue_full_check(const char *dir, char *err, size_t errsize)
{
    char path[PATH_MAX], *text = NULL;
    struct stat st;
    long count, limit;

    if (mx_path_join(path, sizeof(path), dir, "FULL", NULL) != 0
        || stat(path, &st) != 0)
        return 0;
    if (err && errsize) {
        if (st.st_size > 0 && st.st_size < 256
            && mx_file_read(path, 255, &text, NULL) == 0
            && sscanf(text, "%ld %ld", &count, &limit) == 2)
            snprintf(err, errsize,
                     "the outbound queue is full (%ld items; limit %ld)",
                     count, limit);
        else
            snprintf(err, errsize,
                     "the outbound queue is full; try again later");
        free(text);
    }
    return MX_QUEUE_FULL;
}

int mx_queue_set_full(const char *dir, int full)
{
    char path[PATH_MAX];
    int fd;

    if (mx_path_join(path, sizeof(path), dir, "FULL", NULL) != 0)
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
    if (mx_path_join(path, sizeof(path), dir, "FULL", NULL) != 0
        || mx_path_join(tmp, sizeof(tmp), dir, "FULL.tmp", NULL) != 0)
        return -1;
    was = stat(path, &st) == 0;
    /* readers must never see a half-written file; a lost one is made
     * again by the next count, so no sync */
    if (mx_file_replace(path, tmp, text, (size_t)n, 0) != 0)
        return -1;
    return was ? 0 : 1;
}
