/* SPDX-License-Identifier: Apache-2.0 */
/* mx_file: replacing a file so that a reader sees the old content or the
 * new one, never a part of either; the one way mod_xmpp rewrites the files
 * of its spool. And the two helpers every file format of the spool
 * directory uses: a path in it, a whole file read. Portable: no httpd, no
 * APR. */
#ifndef MX_FILE_H
#define MX_FILE_H

#include <stddef.h>

/* Make the new content survive a crash once the call returns: the data
 * is synced before the rename and the directory after it. Without it the
 * replacement is atomic for readers but may be lost with the machine. */
#define MX_FILE_DURABLE 1

/* Writes the new content into fd; 0, or -1 with errno. */
typedef int mx_file_fill(int fd, void *baton);

/* Replace path with what fill writes: into tmp (created 0600, truncated;
 * on the same file system as path, normally beside it), closed, then
 * renamed over path. flags: 0 or MX_FILE_DURABLE. On failure path is as
 * it was, tmp is removed, and errno says why. 0, or -1. */
int mx_file_replace_with(const char *path, const char *tmp, int flags,
                         mx_file_fill *fill, void *baton);

/* The same with data[0..len) as the new content. */
int mx_file_replace(const char *path, const char *tmp, const char *data,
                    size_t len, int flags);

/* Write all of data to fd (short writes and EINTR go on). 0, or -1 with
 * errno. */
int mx_write_all(int fd, const char *data, size_t len);

/* fsync the directory path: a rename in it is durable only then.
 * 0, or -1 with errno. */
int mx_sync_dir(const char *path);

/* buf = dir/sub, or dir/sub/name when name is not NULL. 0, or -1 with
 * ENAMETOOLONG when it does not fit in size. */
int mx_path_join(char *buf, size_t size, const char *dir, const char *sub,
                 const char *name);

/* Read the whole file path, of at most max bytes, into a malloc'd
 * NUL-terminated buffer (the NUL not counted in *len; len may be NULL).
 * 0, or -1 with errno: EFBIG for a larger file, which is never read into
 * memory. */
int mx_file_read(const char *path, size_t max, char **data, size_t *len);

#endif
