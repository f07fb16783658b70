/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_send: the send checks and stanza builders of mx_send, fed what a
 * sender (xmpp-send, the HTTP API, another module) may pass.
 * Property: whatever the checks accept builds a stanza that is
 * well-formed, namespace-well-formed XML (a stanza that is not makes the
 * server drop the stream, and every stanza queued behind it), in which a
 * receiver reads back exactly the body, status, show and addresses given.
 *
 * Input: fields separated by 0x01: selector, body, to, from, type, show,
 * status (see fields_split). */
#include "fuzz_common.h"

#include "mx_jid.h"
#include "mx_send.h"

enum { F_SEL, F_BODY, F_TO, F_FROM, F_TYPE, F_SHOW, F_STATUS, F_N };

static const char *const ID = "mx-0123456789abcdef0123456789abcdef";

/* Types from the list or from the input, so both the accepted and the
 * refused ones are tried */
static const char *pick(const char *field, unsigned sel,
                        const char *const *list, size_t n)
{
    if (!field)
        return NULL;
    return sel % (n + 1) < n ? list[sel % (n + 1)] : field;
}

static void check_message(char **f, unsigned sel)
{
    static const char *const types[] = { "chat", "error", "groupchat",
                                         "headline", "normal" };
    const char *type = pick(f[F_TYPE], sel >> 1, types, 5);
    const char *to = f[F_TO] && mx_check_to(f[F_TO]) == MX_OK
                     ? f[F_TO] : "alice@example.org";
    const char *from = f[F_FROM] && mx_jid_valid(f[F_FROM])
                       ? f[F_FROM] : "app@example.org/bot";
    int raw = sel & 1;
    const char *why = NULL;
    char *st;
    xmlDocPtr doc;
    xmlNodePtr root, body;

    if (mx_message_check(f[F_BODY], type, raw, &why) != MX_OK) {
        FUZZ_ASSERT(why != NULL);
        return;
    }
    st = mx_message_stanza(from, to, type, f[F_BODY], raw, ID);
    FUZZ_ASSERT(st != NULL);
    doc = fuzz_stanza_doc(st, "message", &root);
    FUZZ_ASSERT(fuzz_xml_value_is(root, "to", to));
    FUZZ_ASSERT(fuzz_xml_value_is(root, "from", from));
    FUZZ_ASSERT(fuzz_xml_value_is(root, "id", ID));
    if (!raw) {
        body = fuzz_xml_find(root->children, "body");
        FUZZ_ASSERT(body && fuzz_xml_value_is(body, NULL, f[F_BODY]));
    }
    xmlFreeDoc(doc);
    free(st);
}

static void check_presence(char **f, unsigned sel)
{
    static const char *const types[] = { "available", "unavailable",
                                         "probe" };
    static const char *const shows[] = { "chat", "away", "dnd", "xa", "" };
    const char *type = pick(f[F_TYPE], sel, types, 3);
    const char *show = pick(f[F_SHOW], sel >> 2, shows, 5);
    const char *to = f[F_TO] && mx_check_to(f[F_TO]) == MX_OK ? f[F_TO]
                     : (sel & 64) ? NULL : "alice@example.org";
    const char *status = f[F_STATUS];
    char *st;
    xmlDocPtr doc;
    xmlNodePtr root, el;

    if (mx_presence_check(type, show, status) != MX_OK)
        return;
    st = mx_presence_stanza("app@example.org/bot", to, type, show, status,
                            ID);
    FUZZ_ASSERT(st != NULL);
    doc = fuzz_stanza_doc(st, "presence", &root);
    FUZZ_ASSERT(!to || fuzz_xml_value_is(root, "to", to));
    if (status && *status && !(type && !strcmp(type, "probe"))) {
        el = fuzz_xml_find(root->children, "status");
        FUZZ_ASSERT(el && fuzz_xml_value_is(el, NULL, status));
    }
    if (show && *show && !type) {
        el = fuzz_xml_find(root->children, "show");
        FUZZ_ASSERT(el && fuzz_xml_value_is(el, NULL, show));
    }
    xmlFreeDoc(doc);
    free(st);

    /* an invitation to the same address */
    if (to) {
        st = mx_invite_stanza("app@example.org", to, ID);
        FUZZ_ASSERT(st != NULL);
        doc = fuzz_xml_parse(st, strlen(st));
        FUZZ_ASSERT(doc != NULL);
        FUZZ_ASSERT(fuzz_xml_value_is(xmlDocGetRootElement(doc), "to", to));
        xmlFreeDoc(doc);
        free(st);
    }
}

/* The sender check: what it accepts is a JID of the app */
static void check_from(char **f)
{
    if (!f[F_FROM])
        return;
    if (mx_check_from(f[F_FROM], "app@example.org", "bot") == MX_OK && *f[F_FROM])
        FUZZ_ASSERT(mx_jid_same_bare(f[F_FROM], "app@example.org"));
    if (mx_check_from(f[F_FROM], "example.org", NULL) == MX_OK && *f[F_FROM]) {
        mx_jid_parts p;

        FUZZ_ASSERT(mx_jid_parse(f[F_FROM], &p) == NULL);
        FUZZ_ASSERT(p.domain_len == 11
                    && !strncasecmp(p.domain, "example.org", 11));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *f[F_N];
    size_t lens[F_N], n;
    unsigned sel;

    fuzz_xml_init();
    n = fields_split(data, size, f, lens, F_N);
    sel = f[F_SEL] && lens[F_SEL] ? (unsigned char)f[F_SEL][0] : 0;
    check_message(f, sel);
    check_presence(f, sel);
    check_from(f);
    fields_free(f, n);
    return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc; (void)argv;
    mx_send_init();
    return 0;
}
