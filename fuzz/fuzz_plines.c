/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_plines: mx_plines on any entry a presence cache can hand back
 * (another host, or anyone with access to the cache, wrote it).
 * Properties: at most max lines come out; each has twenty digits, a show
 * RFC 6121 allows and a valid JID, all inside the input; written back
 * and parsed again they are the same lines, with nothing bad; the newest
 * is one of them and no line is newer. */
#include "fuzz_common.h"

#include "mx_jid.h"
#include "mx_plines.h"

#define MAX 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1), *again, *w;
    mx_pline lines[MAX], back[MAX];
    int n, m, i, bad, newest;
    size_t total = 0;

    if (!text)
        abort();
    memcpy(text, data, size);
    text[size] = '\0';
    n = mx_plines_parse(text, lines, MAX, &bad);
    FUZZ_ASSERT(n >= 0 && n <= MAX);
    for (i = 0; i < n; i++) {
        FUZZ_ASSERT(lines[i].updated >= text
                    && lines[i].resource < text + size + 1);
        FUZZ_ASSERT(strlen(lines[i].updated) == MX_PLINES_TIME_LEN);
        FUZZ_ASSERT(strspn(lines[i].updated, "0123456789")
                    == MX_PLINES_TIME_LEN);
        FUZZ_ASSERT(mx_pline_show_ok(lines[i].show));
        FUZZ_ASSERT(mx_jid_valid(lines[i].resource));
        FUZZ_ASSERT(!strchr(lines[i].resource, '\n'));
        total += strlen(lines[i].updated) + strlen(lines[i].show)
                 + strlen(lines[i].resource) + 3;
    }
    newest = mx_plines_newest(lines, n);
    FUZZ_ASSERT(n == 0 ? newest == -1 : newest >= 0 && newest < n);
    for (i = 0; i < n; i++)
        FUZZ_ASSERT(strcmp(lines[i].updated, lines[newest].updated) <= 0);

    /* what a host writes back parses to the same lines */
    again = malloc(total + 1);
    if (!again)
        abort();
    w = again;
    for (i = 0; i < n; i++)
        w += sprintf(w, "%s\t%s\t%s\n", lines[i].updated, lines[i].show,
                     lines[i].resource);
    *w = '\0';
    m = mx_plines_parse(again, back, MAX, &bad);
    FUZZ_ASSERT(m == n && !bad);
    for (i = 0; i < n; i++) {
        FUZZ_ASSERT(!strcmp(back[i].updated, lines[i].updated));
        FUZZ_ASSERT(!strcmp(back[i].show, lines[i].show));
        FUZZ_ASSERT(!strcmp(back[i].resource, lines[i].resource));
    }
    free(again);
    free(text);
    return 0;
}
