/* SPDX-License-Identifier: Apache-2.0 */
/* nofsync_shim: a diagnostic, not a configuration to run. Preloaded into
 * httpd (LD_PRELOAD), it makes fsync() and fdatasync() return at once, so
 * that the bench can show what durability (the journal's fdatasync before
 * a batch of sends is answered) costs the xmpp-api.
 * Without it an accepted send is no longer safe from a crash. */
int fsync(int fd);
int fdatasync(int fd);

int fsync(int fd)
{
    (void)fd;
    return 0;
}

int fdatasync(int fd)
{
    (void)fd;
    return 0;
}
