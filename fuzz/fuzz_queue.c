/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_queue: the queue's formats, as a holder reads them from senders
 * and from the spool: the socket protocol's request header (mx_qreq_parse),
 * the item format (mx_queue_item_parse / mx_queue_item_make), item names
 * and mx_queue_read_file's relative paths.
 * Properties: parse -> make gives the input back; make -> parse gives the
 * stanza back; a request is never refused while it is still incomplete
 * (the holder parses what has arrived so far); a relative path that is
 * taken stays inside the queue directory. */
#include "fuzz_common.h" /* first: it sets the feature macros */

#include <errno.h>

#include "mx_journal.h"
#include "mx_qclient.h"
#include "mx_item.h"
#include "mx_spool.h"

static void item_round_trips(const uint8_t *data, size_t size)
{
    mx_queue_item item;
    size_t len;
    char *again;
    int kind;

    if (mx_queue_item_parse((const char *)data, size, &item) == 0) {
        FUZZ_ASSERT(item.kind == MX_ITEM_STANZA
                    || item.kind == MX_ITEM_SUBSCRIBERS);
        FUZZ_ASSERT(item.stanza_len > 0);
        FUZZ_ASSERT((const uint8_t *)item.stanza > data);
        FUZZ_ASSERT((const uint8_t *)item.stanza + item.stanza_len
                    == data + size);
        again = mx_queue_item_make(item.kind, item.stanza, item.stanza_len,
                                   &len);
        FUZZ_ASSERT(again && len == size && !memcmp(again, data, size));
        free(again);
    }
    /* the input as a stanza: made into an item, it parses back */
    for (kind = 0; kind <= MX_ITEM_SUBSCRIBERS; kind++) {
        again = mx_queue_item_make((mx_item_kind)kind, (const char *)data,
                                   size, &len);
        FUZZ_ASSERT(again && again[len] == '\0');
        if (size == 0) {
            FUZZ_ASSERT(mx_queue_item_parse(again, len, &item) == -1);
        } else {
            FUZZ_ASSERT(mx_queue_item_parse(again, len, &item) == 0);
            FUZZ_ASSERT(item.kind == (mx_item_kind)kind);
            FUZZ_ASSERT(item.stanza_len == size
                        && !memcmp(item.stanza, data, size));
        }
        free(again);
    }
}

static void request_parses(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    size_t off = 0, ilen = 0, o2, l2, cut;
    int rc = mx_qreq_parse(buf, size, &off, &ilen), rc2;
    char head[MX_QREQ_MAX_HEADER + 8];

    FUZZ_ASSERT(rc == MX_QREQ_TOO_LARGE || (rc >= -1 && rc <= 1));
    if (rc < 0)
        return;
    if (rc == 0) {
        /* more bytes needed: a prefix of a request, so any prefix of
         * it is one too */
        for (cut = 0; cut < size; cut += 1 + cut / 4)
            FUZZ_ASSERT(mx_qreq_parse(buf, cut, &o2, &l2) == 0);
        return;
    }
    FUZZ_ASSERT(off >= 6 && off <= MX_QREQ_MAX_HEADER && buf[off - 1] == '\n');
    FUZZ_ASSERT(ilen <= MX_JOURNAL_RECORD_MAX && off + ilen <= size);
    /* every shorter prefix: "more bytes needed", never "not a request" */
    for (cut = 0; cut < off + ilen; cut += 1 + cut / 4) {
        rc2 = mx_qreq_parse(buf, cut, &o2, &l2);
        if (rc2 != 0)
            fprintf(stderr, "prefix of %zu bytes of a complete request: %d\n",
                    cut, rc2);
        FUZZ_ASSERT(rc2 == 0);
    }
    /* the canonical header for that length parses to the same */
    snprintf(head, sizeof(head), "PUT %zu\n", ilen);
    FUZZ_ASSERT(mx_qreq_parse(head, strlen(head), &o2, &l2)
                == (ilen == 0 ? 1 : 0));
    FUZZ_ASSERT(o2 == strlen(head) && l2 == ilen);
}

/* Independent of mx_spool.c: absolute, or a ".." component */
static int escapes(const char *p)
{
    const char *c = p;

    if (*p == '/')
        return 1;
    while (*c) {
        size_t n = strcspn(c, "/");

        if (n == 2 && c[0] == '.' && c[1] == '.')
            return 1;
        c += n;
        while (*c == '/')
            c++;
    }
    return 0;
}

static void names_and_paths(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1), *text = NULL;
    size_t i, len;
    int rc;

    if (!s)
        abort();
    memcpy(s, data, size);
    s[size] = '\0';
    if (mx_queue_name_valid(s)) {
        FUZZ_ASSERT(strlen(s) == MX_QUEUE_NAME_LEN);
        for (i = 0; s[i]; i++)
            FUZZ_ASSERT((s[i] >= '0' && s[i] <= '9') || s[i] == '-');
    }
    errno = 0;
    rc = mx_queue_read_file("/nonexistent-mx-fuzz", s, &text, &len);
    FUZZ_ASSERT(rc == -1); /* nothing is there */
    if (!*s || escapes(s))
        FUZZ_ASSERT(errno == EINVAL);
    free(text);
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    item_round_trips(data, size);
    request_parses(data, size);
    names_and_paths(data, size);
    return 0;
}
