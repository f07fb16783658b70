/* SPDX-License-Identifier: Apache-2.0 */
/* mx_addr_roster: see mx_addr_roster.h */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mx_file.h"
#include "mx_jid.h"
#include "mx_addr_roster.h"

int mx_addr_roster_dir(const char *dir, const char *address, char *buf,
                  size_t size)
{
    char bare[2 * MX_JID_PART_MAX + 2], *p;
    int n;

    if (!dir || !address || mx_jid_bare(address, bare, sizeof(bare)) < 0) {
        errno = EINVAL;
        return -1;
    }
    /* two addresses that differ in case are one (servers compare them
     * without case in practice), and must not have two rosters */
    for (p = bare; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    n = snprintf(buf, size, "%s/addresses/%s", dir, bare);
    if (n < 0 || (size_t)n >= size) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

static int make_dirs(const char *dir, const char *addr_dir)
{
    char sub[4096];

    if ((size_t)snprintf(sub, sizeof(sub), "%s/addresses", dir) >= sizeof(sub))
        return -1;
    if ((mkdir(sub, 0700) != 0 && errno != EEXIST)
        || (mkdir(addr_dir, 0700) != 0 && errno != EEXIST))
        return -1;
    return 0;
}

int mx_addr_roster_save(const char *dir, const char *address, const char *text,
                   size_t len)
{
    char addr_dir[4096], path[4200], tmp[4200];

    if (mx_addr_roster_dir(dir, address, addr_dir, sizeof(addr_dir)) != 0
        || make_dirs(dir, addr_dir) != 0)
        return -1;
    snprintf(path, sizeof(path), "%s/roster", addr_dir);
    snprintf(tmp, sizeof(tmp), "%s/roster.tmp", addr_dir);
    return mx_file_replace(path, tmp, text, len, MX_FILE_DURABLE);
}

int mx_addr_roster_line(char *line, const char **contact)
{
    char *sp = strchr(line, ' ');
    int bits;

    if (!sp)
        return 0;
    *sp = '\0';
    bits = !strcmp(sp + 1, "from") ? MX_ADDR_FROM
         : !strcmp(sp + 1, "to") ? MX_ADDR_TO
         : !strcmp(sp + 1, "both") ? MX_ADDR_FROM | MX_ADDR_TO : 0;
    if (!bits || !mx_jid_valid(line))
        return 0;
    *contact = line;
    return bits;
}

const char *mx_addr_roster_state_name(int bits)
{
    switch (bits & (MX_ADDR_FROM | MX_ADDR_TO)) {
    case MX_ADDR_FROM:                return "from";
    case MX_ADDR_TO:                  return "to";
    case MX_ADDR_FROM | MX_ADDR_TO: return "both";
    default:                            return NULL;
    }
}
