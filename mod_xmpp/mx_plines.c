/* SPDX-License-Identifier: Apache-2.0 */
/* mx_plines: see mx_plines.h */
#include <string.h>

#include "mx_jid.h"
#include "mx_plines.h"

int mx_pline_show_ok(const char *show)
{
    return !*show || !strcmp(show, "chat") || !strcmp(show, "away")
           || !strcmp(show, "dnd") || !strcmp(show, "xa");
}

/* One line (NUL-terminated, no newline) into *out; 0 when it is none */
static int parse_line(char *line, mx_pline *out)
{
    char *show, *resource;

    if (!(show = strchr(line, '\t')) || !(resource = strchr(show + 1, '\t')))
        return 0;
    *show++ = '\0';
    *resource++ = '\0';
    if (strlen(line) != MX_PLINES_TIME_LEN
        || strspn(line, "0123456789") != MX_PLINES_TIME_LEN
        || !mx_pline_show_ok(show) || !mx_jid_valid(resource))
        return 0;
    out->updated = line;
    out->show = show;
    out->resource = resource;
    return 1;
}

int mx_plines_parse(char *text, mx_pline *lines, int max, int *bad)
{
    char *line = text, *end;
    int n = 0;

    if (bad)
        *bad = 0;
    while (line && *line && n < max) {
        end = strchr(line, '\n');
        if (end)
            *end = '\0';
        if (*line && parse_line(line, &lines[n]))
            n++;
        else if (*line && bad)
            *bad = 1;
        line = end ? end + 1 : NULL;
    }
    if (line && *line && bad)
        *bad = 1; /* more lines than max */
    return n;
}

int mx_plines_newest(const mx_pline *lines, int n)
{
    int i, newest = n > 0 ? 0 : -1;

    for (i = 1; i < n; i++)
        if (strcmp(lines[i].updated, lines[newest].updated) > 0)
            newest = i;
    return newest;
}
