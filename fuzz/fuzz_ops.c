/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_ops: App Engine's four operations (mx_ops) end to end into a
 * private spool directory (no holder listens, so items go to new/).
 * Properties: the statuses answer the recipients one by one (INVALID_JID
 * exactly for those mx_check_to refuses); a refused call queues nothing;
 * each NO_ERROR is one item, which mx_queue_read and mx_queue_item_parse
 * take back and whose stanza is well-formed XML.
 *
 * Input: fields separated by 0x01: selector, body, from, type, show,
 * status, then up to 4 recipients. */
#include "fuzz_common.h"

#include "mx_jid.h"
#include "mx_ops.h"
#include "mx_item.h"
#include "mx_spool.h"

enum { F_SEL, F_BODY, F_FROM, F_TYPE, F_SHOW, F_STATUS, F_JIDS, F_N = 10 };

/* Empty fields mean "not given", as an HTTP form without them would */
static const char *opt(const char *s)
{
    return s && *s ? s : NULL;
}

/* Every queued item: parse, check, remove. Returns how many. */
static size_t drain(const char *dir, mx_item_kind want_kind)
{
    char **names = NULL, *data;
    size_t count = 0, i, len;
    mx_queue_item item;

    FUZZ_ASSERT(mx_queue_list(dir, 64, &names, &count) == 0);
    for (i = 0; i < count; i++) {
        FUZZ_ASSERT(mx_queue_read(dir, names[i], &data, &len) == 0);
        FUZZ_ASSERT(mx_queue_item_parse(data, len, &item) == 0);
        FUZZ_ASSERT(item.kind == want_kind);
        FUZZ_ASSERT(item.stanza + item.stanza_len == data + len);
        if (!fuzz_xml_ok(item.stanza))
            fprintf(stderr, "not well-formed: %s\n", item.stanza);
        FUZZ_ASSERT(fuzz_xml_ok(item.stanza));
        free(data);
        FUZZ_ASSERT(mx_queue_remove(dir, names[i]) == 0);
    }
    mx_queue_free_list(names, count);
    return count;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *f[F_N];
    size_t lens[F_N], n, njids, i, ok = 0, queued;
    const char *jids[F_N];
    mx_status st[F_N], one = MX_OTHER_ERROR;
    mx_result res;
    mx_sender s = { 0 }; /* presence NULL: get_presence reads the files */
    unsigned sel;
    char show[32];
    int avail = -1;

    fuzz_xml_init();
    fuzz_dir_reset();
    s.queue_dir = fuzz_dir();
    s.app_jid = "app@example.org";
    s.app_resource = "bot";
    s.sync = 0; /* durability is not what is fuzzed here */
    n = fields_split(data, size, f, lens, F_N);
    sel = f[F_SEL] && lens[F_SEL] ? (unsigned char)f[F_SEL][0] : 0;
    njids = n > F_JIDS ? n - F_JIDS : 0;
    jids[0] = NULL; /* no recipient at all: the one-recipient calls get NULL */
    for (i = 0; i < njids; i++) {
        jids[i] = f[F_JIDS + i];
        st[i] = (mx_status)-1;
    }

    switch (sel % 4) {
    case 0:
        mx_op_send_message(&s, jids, njids, f[F_BODY], opt(f[F_FROM]),
                           opt(f[F_TYPE]), sel & 4, st, &res);
        queued = drain(s.queue_dir, MX_ITEM_STANZA);
        if (res.err != MX_OK) {
            FUZZ_ASSERT(queued == 0);
            break;
        }
        for (i = 0; i < njids; i++) {
            FUZZ_ASSERT(st[i] == (mx_check_to(jids[i]) == MX_OK
                                  ? MX_NO_ERROR : MX_INVALID_JID));
            ok += st[i] == MX_NO_ERROR;
        }
        FUZZ_ASSERT(ok > 0 && queued == ok);
        break;
    case 1:
        mx_op_send_invite(&s, jids[0], opt(f[F_FROM]), &one, &res);
        queued = drain(s.queue_dir, MX_ITEM_STANZA);
        FUZZ_ASSERT(queued == (res.err == MX_OK && one == MX_NO_ERROR));
        FUZZ_ASSERT(res.err != MX_OK || mx_check_to(jids[0]) == MX_OK);
        break;
    case 2:
        mx_op_send_presence(&s, (sel & 8) ? "subscribers" : jids[0],
                            f[F_STATUS], opt(f[F_FROM]), opt(f[F_TYPE]),
                            opt(f[F_SHOW]), &one, &res);
        queued = drain(s.queue_dir, (sel & 8) ? MX_ITEM_SUBSCRIBERS
                                              : MX_ITEM_STANZA);
        FUZZ_ASSERT(queued == (res.err == MX_OK && one == MX_NO_ERROR));
        break;
    default:
        mx_op_get_presence(&s, jids[0], opt(f[F_FROM]), &avail, show,
                           sizeof(show), &res);
        /* nobody was ever seen here */
        FUZZ_ASSERT(avail == 0 && show[0] == '\0');
        break;
    }
    FUZZ_ASSERT(memchr(res.why, '\0', sizeof(res.why)) != NULL);
    FUZZ_ASSERT(res.err == MX_OK || res.why[0] != '\0');
    fields_free(f, n);
    return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc; (void)argv;
    mx_send_init();
    return 0;
}
