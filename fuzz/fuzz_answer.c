/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_answer: what a handler answers an inbound stanza with, before it
 * is queued (mod_xmpp_inbound.c): mx_xml_text_problem for a text/plain
 * answer, mx_stanza_problem for an application/xmpp+xml one, and
 * mx_utf8_cut for the CGI variables.
 * Properties: a text accepted by mx_xml_text_problem, put in the <body>
 * of a reply by mx_message_stanza, gives well-formed XML whose body reads
 * back as the same text (a server will not close the stream on it); a
 * refused one comes with a reason; a stanza accepted by
 * mx_stanza_problem is one well-formed element named message, presence
 * or iq; mx_utf8_cut never cuts more than 3 bytes off and never inside a
 * sequence of valid UTF-8.
 *
 * Input: byte 0: the cut's bound; the rest: the answer. */
#include "fuzz_common.h"

#include "mx_send.h"
#include "mx_xmltext.h"

static void text_answer(const char *text, size_t len)
{
    char why[100], *stanza;
    const char *bad = mx_xml_text_problem(text, len, why, sizeof(why));
    xmlDocPtr doc;
    xmlNodePtr body;

    if (bad) {
        FUZZ_ASSERT(*bad);
        return;
    }
    FUZZ_ASSERT(strlen(text) == len);   /* no NUL passes */
    stanza = mx_message_stanza("app@example.org/bot", "a@example.org/x",
                               "chat", text, 0, "id1");
    FUZZ_ASSERT(stanza != NULL);
    doc = fuzz_xml_parse(stanza, strlen(stanza));
    FUZZ_ASSERT(doc != NULL);
    body = fuzz_xml_find(xmlDocGetRootElement(doc), "body");
    if (len) { /* XML reads CR LF and lone CR as LF: only compare if none */
        FUZZ_ASSERT(body != NULL);
        if (!memchr(text, '\r', len)) {
            FUZZ_ASSERT(fuzz_xml_value_is(body, NULL, text));
        }
    }
    xmlFreeDoc(doc);
    free(stanza);
}

static void stanza_answer(const char *xml, size_t len)
{
    xmlDocPtr doc;
    const char *name;

    if (mx_stanza_problem(xml) != NULL)
        return;
    doc = fuzz_xml_parse(xml, strlen(xml));
    FUZZ_ASSERT(doc != NULL);
    name = (const char *)xmlDocGetRootElement(doc)->name;
    FUZZ_ASSERT(!strcmp(name, "message") || !strcmp(name, "presence")
                || !strcmp(name, "iq"));
    xmlFreeDoc(doc);
    (void)len;
}

static void cut(const char *s, size_t len, size_t max)
{
    size_t keep = mx_utf8_cut(s, len, max);
    char why[100];

    FUZZ_ASSERT(keep <= len && keep <= (len < max ? len : max));
    if (len > max) {
        FUZZ_ASSERT(max - keep <= 3);
        /* a valid text stays valid when cut */
        if (!mx_xml_text_problem(s, len, why, sizeof(why))) {
            FUZZ_ASSERT(!mx_xml_text_problem(s, keep, why, sizeof(why)));
        }
    }
    else {
        FUZZ_ASSERT(keep == len);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text;

    if (size < 1)
        return 0;
    fuzz_xml_init();
    text = malloc(size);
    if (!text)
        abort();
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    text_answer(text, size - 1);
    stanza_answer(text, size - 1);
    cut(text, size - 1, data[0]);
    free(text);
    return 0;
}
