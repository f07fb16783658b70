/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_presence: the files the holder writes and every process reads
 * back: a contact's presence (mx_presence_store / mx_presence_load) and
 * the roster (mx_queue_read_file, in mx_spool.c). A file may hold
 * anything after a crash or a hand edit; the values come from the server
 * and its contacts.
 * Properties: loading any file gives a NUL-terminated show inside its
 * buffer and the three parts a reference split gives; store -> load gives
 * back availability, the show (up to its first line break, truncated to
 * the buffer) and the status; names are case-folded the way the path
 * says; the roster reads back byte for byte.
 *
 * Input: byte 0: show buffer size (1-64); then fields separated by 0x01:
 * file content, jid, show, status. */
#include "fuzz_common.h"

#include <fcntl.h>

#include "mx_jid.h"
#include "mx_presence.h"
#include "mx_spool.h"

/* Reference split of "line1\nline2\nrest" (C string) */
static void ref_split(const char *t, int *avail, char *show, size_t ss,
                      const char **rest)
{
    const char *nl = strchr(t, '\n'), *l2 = nl ? nl + 1 : NULL;
    const char *nl2 = l2 ? strchr(l2, '\n') : NULL;
    size_t n;

    *avail = nl ? (size_t)(nl - t) == 9 && !strncmp(t, "available", 9)
                : !strcmp(t, "available");
    n = l2 ? (nl2 ? (size_t)(nl2 - l2) : strlen(l2)) : 0;
    if (n >= ss)
        n = ss - 1;
    memcpy(show, l2 ? l2 : "", n);
    show[n] = '\0';
    *rest = nl2 ? nl2 + 1 : "";
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *f[4], show[65], want_show[65], path[8192], *status, *back;
    const char *dir, *jid, *rest;
    size_t lens[4], n, ss, blen;
    int avail, want_avail, rc;

    if (size < 1)
        return 0;
    ss = 1 + data[0] % 64;
    fuzz_dir_reset();
    dir = fuzz_dir();
    n = fields_split(data + 1, size - 1, f, lens, 4);

    /* any file, loaded for a known contact */
    snprintf(path, sizeof(path), "%s/presence", dir);
    if (mkdir(path, 0700) != 0)
        abort();
    snprintf(path, sizeof(path), "%s/presence/alice@example.org", dir);
    fuzz_put_file(path, f[0], lens[0]);
    memset(show, 'X', sizeof(show));
    status = NULL;
    rc = mx_presence_load(dir, "Alice@Example.ORG/phone", &avail, show, ss,
                          &status);
    FUZZ_ASSERT(rc == 0 && status != NULL);
    FUZZ_ASSERT(memchr(show, '\0', ss) != NULL);
    ref_split(f[0], &want_avail, want_show, ss, &rest);
    FUZZ_ASSERT(avail == want_avail);
    FUZZ_ASSERT(!strcmp(show, want_show));
    FUZZ_ASSERT(!strcmp(status, rest));
    free(status);

    /* the roster file: read back as written */
    snprintf(path, sizeof(path), "%s/roster", dir);
    fuzz_put_file(path, f[0], lens[0]);
    back = NULL;
    FUZZ_ASSERT(mx_queue_read_file(dir, "roster", &back, &blen) == 0);
    FUZZ_ASSERT(blen == lens[0] && !memcmp(back, f[0], blen)
                && back[blen] == '\0');
    free(back);

    /* store -> load for a contact of the input */
    jid = n > 1 ? f[1] : "bob@example.org";
    rc = mx_presence_store(dir, jid, data[0] & 1, n > 2 ? f[2] : NULL,
                           n > 3 ? f[3] : NULL);
    /* a valid JID is stored, unless its bare form is longer than a file
     * name may be (NAME_MAX, 255 bytes; a JID may have 2047): then the
     * contact reads as unknown, i.e. unavailable; so does one whose name
     * would look like the store's temporary files (".tmp-...") */
    if (rc != 0 && mx_jid_valid(jid)) {
        char bare[2 * MX_JID_PART_MAX + 2];

        FUZZ_ASSERT(mx_jid_bare_prep(jid, bare, sizeof(bare)) > 255
                    || strncmp(bare, ".tmp-", 5) == 0);
    }
    FUZZ_ASSERT(rc != 0 || mx_jid_valid(jid));
    if (rc == 0) {
        const char *sh = n > 2 ? f[2] : "";
        size_t shl = strcspn(sh, "\r\n");

        /* only the shows RFC 6121 defines are kept, whole */
        if (shl != strlen(sh))
            shl = 0;
        if (!((shl == 4 && !memcmp(sh, "chat", 4))
              || (shl == 4 && !memcmp(sh, "away", 4))
              || (shl == 3 && !memcmp(sh, "dnd", 3))
              || (shl == 2 && !memcmp(sh, "xa", 2))))
            shl = 0;
        if (shl >= ss)
            shl = ss - 1;
        status = NULL;
        FUZZ_ASSERT(mx_presence_load(dir, jid, &avail, show, ss, &status)
                    == 0);
        FUZZ_ASSERT(avail == (data[0] & 1));
        FUZZ_ASSERT(strlen(show) == shl && !memcmp(show, sh, shl));
        {   /* the status, cut to MX_PRESENCE_STATUS_MAX characters */
            const char *st = n > 3 ? f[3] : "";
            size_t keep = mx_utf8_prefix(st, strlen(st),
                                         MX_PRESENCE_STATUS_MAX);

            FUZZ_ASSERT(strlen(status) == keep && !memcmp(status, st, keep));
        }
        free(status);
        /* the same contact under another case of its name */
        FUZZ_ASSERT(mx_presence_path(dir, jid, path, sizeof(path)) == 0);
        FUZZ_ASSERT(strncmp(path, dir, strlen(dir)) == 0);
        FUZZ_ASSERT(!strncmp(path + strlen(dir), "/presence/", 10));
        FUZZ_ASSERT(!strchr(path + strlen(dir) + 10, '/'));
    }
    fields_free(f, n);
    return 0;
}
