/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of mx_send: App Engine's send rules and the stanza text. */
#include <stdlib.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "unit.h"
#include "mx_send.h"
#include "mx_xmltext.h"

#define APP "app@example.org"

static void test_err_names(void)
{
    CHECK(mx_err_name(MX_OK) == NULL);
    CHECK_STR(mx_err_name(MX_ERR_NO_BODY), "NoBodyError");
    CHECK_STR(mx_err_name(MX_ERR_INVALID_JID), "InvalidJidError");
    CHECK_STR(mx_err_name(MX_ERR_INVALID_TYPE), "InvalidTypeError");
    CHECK_STR(mx_err_name(MX_ERR_INVALID_XML), "InvalidXmlError");
    CHECK_STR(mx_err_name(MX_ERR_INVALID_SHOW), "InvalidShowError");
    CHECK_STR(mx_err_name(MX_ERR_INVALID_STATUS), "InvalidStatusError");
}

static void test_from(void)
{
    CHECK(mx_check_from(NULL, APP, "bot") == MX_OK);
    CHECK(mx_check_from("", APP, "bot") == MX_OK);
    CHECK(mx_check_from(APP, APP, "bot") == MX_OK);
    CHECK(mx_check_from("app@Example.ORG", APP, "bot") == MX_OK);
    CHECK(mx_check_from(APP "/bot", APP, "bot") == MX_OK);
    CHECK(mx_check_from(APP "/Bot", APP, "bot") == MX_ERR_INVALID_JID);
    CHECK(mx_check_from(APP "/other", APP, "bot") == MX_ERR_INVALID_JID);
    CHECK(mx_check_from(APP "/bot2", APP, "bot") == MX_ERR_INVALID_JID);
    CHECK(mx_check_from("App@example.org", APP, "bot") == MX_ERR_INVALID_JID);
    CHECK(mx_check_from("other@example.org", APP, "bot") == MX_ERR_INVALID_JID);
    CHECK(mx_check_from("example.org", APP, "bot") == MX_ERR_INVALID_JID);
    CHECK(mx_check_from("a b@example.org", APP, "bot") == MX_ERR_INVALID_JID);
    CHECK(mx_check_from(APP, NULL, "bot") == MX_ERR_INVALID_JID);
    /* component mode: the app owns its whole domain */
    CHECK(mx_check_from("x@comp.example.org", "comp.example.org", "bot") == MX_OK);
    CHECK(mx_check_from("x@COMP.example.org/r", "comp.example.org", "bot") == MX_OK);
    CHECK(mx_check_from("comp.example.org", "comp.example.org", "bot") == MX_OK);
    CHECK(mx_check_from("x@example.org", "comp.example.org", "bot")
          == MX_ERR_INVALID_JID);
    CHECK(mx_check_from("x@sub.comp.example.org", "comp.example.org", "bot")
          == MX_ERR_INVALID_JID);
}

static void test_to(void)
{
    CHECK(mx_check_to("user@example.org") == MX_OK);
    CHECK(mx_check_to("user@example.org/res") == MX_OK);
    CHECK(mx_check_to("example.org") == MX_OK);
    CHECK(mx_check_to("") == MX_ERR_INVALID_JID);
    CHECK(mx_check_to(NULL) == MX_ERR_INVALID_JID);
    CHECK(mx_check_to("user@") == MX_ERR_INVALID_JID);
    CHECK(mx_check_to("a<b@example.org") == MX_ERR_INVALID_JID);
}

static void test_message_check(void)
{
    const char *why = NULL;

    CHECK(mx_message_check(NULL, NULL, 0, &why) == MX_ERR_NO_BODY);
    CHECK(why != NULL);
    CHECK(mx_message_check("", NULL, 0, NULL) == MX_ERR_NO_BODY);
    CHECK(mx_message_check("", NULL, 1, NULL) == MX_ERR_NO_BODY);
    CHECK(mx_message_check("hi", NULL, 0, &why) == MX_OK);
    CHECK(why == NULL);
    CHECK(mx_message_check("hi", "chat", 0, NULL) == MX_OK);
    CHECK(mx_message_check("hi", "error", 0, NULL) == MX_OK);
    CHECK(mx_message_check("hi", "groupchat", 0, NULL) == MX_OK);
    CHECK(mx_message_check("hi", "headline", 0, NULL) == MX_OK);
    CHECK(mx_message_check("hi", "normal", 0, NULL) == MX_OK);
    CHECK(mx_message_check("hi", "foo", 0, NULL) == MX_ERR_INVALID_TYPE);
    CHECK(mx_message_check("hi", "", 0, NULL) == MX_ERR_INVALID_TYPE);
    CHECK(mx_message_check("hi", "Chat", 0, NULL) == MX_ERR_INVALID_TYPE);
    /* body first, as App Engine checked */
    CHECK(mx_message_check("", "foo", 0, NULL) == MX_ERR_NO_BODY);
    /* characters no stanza can carry */
    CHECK(mx_message_check("a\x01z", NULL, 0, &why) == MX_ERR_INVALID_XML);
    CHECK(why != NULL);
    CHECK(mx_message_check("\xff", NULL, 0, NULL) == MX_ERR_INVALID_XML);
    CHECK(mx_message_check("a\tb\r\nc", NULL, 0, NULL) == MX_OK);
    /* anything is fine as text: it is escaped */
    CHECK(mx_message_check("<b>&undefined;</b", NULL, 0, NULL) == MX_OK);
}

static mx_err raw(const char *body)
{
    return mx_message_check(body, NULL, 1, NULL);
}

static void test_raw_xml(void)
{
    const char *why = NULL;

    CHECK(raw("<body>hi</body>") == MX_OK);
    CHECK(raw("<body>hi</body><html xmlns='http://jabber.org/protocol/xhtml-im'>"
              "<body xmlns='http://www.w3.org/1999/xhtml'><p>hi</p></body>"
              "</html>") == MX_OK);
    CHECK(raw("<body>a</body><subject>b</subject>") == MX_OK); /* two roots */
    CHECK(raw("text <b/> more text") == MX_OK);                 /* mixed */
    CHECK(raw("just text") == MX_OK);
    CHECK(raw("<body>&amp;&lt;&#x41;&#233;</body>") == MX_OK);
    CHECK(raw("<body><![CDATA[<x>]]></body>") == MX_OK);
    CHECK(raw("<x:y xmlns:x='urn:x'/>") == MX_OK);
    CHECK(raw("<body>\xc3\xa9t\xc3\xa9</body>") == MX_OK);

    CHECK(mx_message_check("<body>hi", NULL, 1, &why) == MX_ERR_INVALID_XML);
    CHECK(why != NULL && strstr(why, "well-formed") != NULL);
    CHECK(raw("<body>hi</bod>") == MX_ERR_INVALID_XML);
    CHECK(raw("</message><message>") == MX_ERR_INVALID_XML);
    CHECK(raw("</message>") == MX_ERR_INVALID_XML);
    CHECK(raw("<!DOCTYPE message>") == MX_ERR_INVALID_XML);
    CHECK(raw("<!DOCTYPE x [<!ENTITY e 'boom'>]><body>&e;</body>")
          == MX_ERR_INVALID_XML);
    CHECK(raw("<body>&undefined;</body>") == MX_ERR_INVALID_XML);
    CHECK(raw("&undefined;") == MX_ERR_INVALID_XML);
    CHECK(raw("a & b") == MX_ERR_INVALID_XML);
    CHECK(raw("a < b") == MX_ERR_INVALID_XML);
    CHECK(mx_message_check("<!-- c --><body/>", NULL, 1, &why) == MX_ERR_INVALID_XML);
    CHECK(why != NULL && strstr(why, "comment") != NULL);
    CHECK(raw("<?pi x?><body/>") == MX_ERR_INVALID_XML);
    CHECK(raw("<?xml version='1.0'?><body/>") == MX_ERR_INVALID_XML);
    CHECK(mx_message_check("<x:y/>", NULL, 1, &why) == MX_ERR_INVALID_XML);
    CHECK(why != NULL && strstr(why, "namespace") != NULL);
    CHECK(raw("<body a='1' a='2'/>") == MX_ERR_INVALID_XML);
    CHECK(raw("<body>\x01</body>") == MX_ERR_INVALID_XML);
    CHECK(raw("<body>\xc3</body>") == MX_ERR_INVALID_XML);
    CHECK(raw("<body>&#1;</body>") == MX_ERR_INVALID_XML);
}

/* Parse a stanza the way a receiver would; NULL if not well-formed. */
static xmlDocPtr parse(const char *stanza)
{
    return xmlReadMemory(stanza, (int)strlen(stanza), NULL, "UTF-8",
                         XML_PARSE_NONET | XML_PARSE_NOERROR
                         | XML_PARSE_NOWARNING);
}

/* The text of the first child element named name of the root. */
static char *child_text(xmlDocPtr doc, const char *name)
{
    xmlNodePtr n;

    for (n = xmlDocGetRootElement(doc)->children; n; n = n->next)
        if (n->type == XML_ELEMENT_NODE
            && strcmp((const char *)n->name, name) == 0)
            return (char *)xmlNodeGetContent(n);
    return NULL;
}

static void test_message_stanza(void)
{
    /* every character that needs escaping, a newline, CR, tab, non-ASCII
     * (é, U+1F600) */
    static const char body[] =
        "<&>\"' a\r\nb\tc \xc3\xa9 \xf0\x9f\x98\x80 ]]> &amp;";
    char *s, *text, *attr;
    xmlDocPtr doc;

    s = mx_message_stanza(APP "/bot", "u@example.org", NULL, "hi", 0, "mx-1");
    CHECK_STR(s, "<message xmlns=\"jabber:client\" from=\"app@example.org/bot\""
                 " to=\"u@example.org\" type=\"chat\" id=\"mx-1\">"
                 "<body>hi</body><origin-id xmlns=\"urn:xmpp:sid:0\""
                 " id=\"mx-1\"/></message>");
    free(s);

    s = mx_message_stanza(NULL, "u@example.org", "headline", "a<b", 0, "i");
    CHECK_STR(s, "<message xmlns=\"jabber:client\" to=\"u@example.org\""
                 " type=\"headline\" id=\"i\"><body>a&lt;b</body>"
                 "<origin-id xmlns=\"urn:xmpp:sid:0\" id=\"i\"/></message>");
    free(s);

    s = mx_message_stanza(APP, "u@example.org", "chat", body, 0, "x\"<&'\t\n>");
    CHECK(strstr(s, "<body>&lt;&amp;&gt;&quot;&apos; a&#13;\nb\tc ") != NULL);
    CHECK(strstr(s, "id=\"x&quot;&lt;&amp;&apos;&#9;&#10;&gt;\"") != NULL);
    doc = parse(s);
    CHECK(doc != NULL);
    if (doc) {
        text = child_text(doc, "body");
        CHECK_STR(text, body);
        xmlFree(text);
        attr = (char *)xmlGetProp(xmlDocGetRootElement(doc), BAD_CAST "id");
        CHECK_STR(attr, "x\"<&'\t\n>");
        xmlFree(attr);
        xmlFreeDoc(doc);
    }
    free(s);

    s = mx_message_stanza(APP, "u@example.org", NULL,
                          "<body>hi</body><x xmlns='urn:x'/>", 1, "r");
    CHECK_STR(s, "<message xmlns=\"jabber:client\" from=\"app@example.org\""
                 " to=\"u@example.org\" type=\"chat\" id=\"r\">"
                 "<body>hi</body><x xmlns='urn:x'/>"
                 "<origin-id xmlns=\"urn:xmpp:sid:0\" id=\"r\"/></message>");
    free(s);
    CHECK(mx_message_stanza(APP, NULL, NULL, "hi", 0, "i") == NULL);
}

static char *repeat(const char *unit, size_t n)
{
    size_t ulen = strlen(unit), i;
    char *s = malloc(ulen * n + 1);

    for (i = 0; i < n; i++)
        memcpy(s + i * ulen, unit, ulen);
    s[ulen * n] = '\0';
    return s;
}

static void test_presence_check(void)
{
    char *s;

    CHECK(mx_presence_check(NULL, NULL, NULL) == MX_OK);
    CHECK(mx_presence_check("available", "", "") == MX_OK);
    CHECK(mx_presence_check("unavailable", NULL, "bye") == MX_OK);
    CHECK(mx_presence_check("probe", NULL, NULL) == MX_OK);
    CHECK(mx_presence_check("subscribe", NULL, NULL) == MX_ERR_INVALID_TYPE);
    CHECK(mx_presence_check("", NULL, NULL) == MX_ERR_INVALID_TYPE);
    CHECK(mx_presence_check(NULL, "chat", NULL) == MX_OK);
    CHECK(mx_presence_check(NULL, "away", NULL) == MX_OK);
    CHECK(mx_presence_check(NULL, "dnd", NULL) == MX_OK);
    CHECK(mx_presence_check(NULL, "xa", NULL) == MX_OK);
    CHECK(mx_presence_check(NULL, "busy", NULL) == MX_ERR_INVALID_SHOW);
    CHECK(mx_presence_check(NULL, NULL, "a\x01") == MX_ERR_INVALID_STATUS);
    CHECK(mx_presence_check(NULL, NULL, "\xe9t\xe9") == MX_ERR_INVALID_STATUS);

    /* characters, not bytes: 1024 two-byte é are 2048 bytes and fine */
    s = repeat("\xc3\xa9", 1024);
    CHECK(mx_presence_check(NULL, NULL, s) == MX_OK);
    free(s);
    s = repeat("\xc3\xa9", 1025);
    CHECK(mx_presence_check(NULL, NULL, s) == MX_ERR_INVALID_STATUS);
    free(s);
    s = repeat("\xf0\x9f\x98\x80", 1024); /* four bytes each */
    CHECK(mx_presence_check(NULL, NULL, s) == MX_OK);
    free(s);
    s = repeat("\xf0\x9f\x98\x80", 1025);
    CHECK(mx_presence_check(NULL, NULL, s) == MX_ERR_INVALID_STATUS);
    free(s);
    s = repeat("a", 1025);
    CHECK(mx_presence_check(NULL, NULL, s) == MX_ERR_INVALID_STATUS);
    free(s);
}

static void test_presence_stanza(void)
{
    char *s;

    s = mx_presence_stanza(APP "/bot", "u@example.org", "available", "away",
                           "at <lunch> & \"out\"", "p1");
    CHECK_STR(s, "<presence xmlns=\"jabber:client\" from=\"app@example.org/bot\""
                 " to=\"u@example.org\" id=\"p1\"><show>away</show>"
                 "<status>at &lt;lunch&gt; &amp; &quot;out&quot;</status>"
                 "</presence>");
    free(s);
    s = mx_presence_stanza(NULL, NULL, NULL, NULL, NULL, "p2");
    CHECK_STR(s, "<presence xmlns=\"jabber:client\" id=\"p2\"/>");
    free(s);
    s = mx_presence_stanza(NULL, "u@example.org", "unavailable", "dnd", "bye", "p3");
    CHECK(strstr(s, " type=\"unavailable\"") != NULL);
    CHECK(strstr(s, "<show>") == NULL);
    CHECK(strstr(s, "<status>bye</status>") != NULL);
    free(s);
    s = mx_presence_stanza(NULL, "u@example.org", "probe", "dnd", "x", "p4");
    CHECK_STR(s, "<presence xmlns=\"jabber:client\" to=\"u@example.org\""
                 " type=\"probe\" id=\"p4\"/>");
    free(s);
    s = mx_presence_stanza(NULL, "u@example.org", "available", "", "", "p5");
    CHECK_STR(s, "<presence xmlns=\"jabber:client\" to=\"u@example.org\""
                 " id=\"p5\"/>");
    free(s);
}

static void test_invite(void)
{
    char *s = mx_invite_stanza(APP, "u@example.org", "i1");

    CHECK_STR(s, "<presence xmlns=\"jabber:client\" from=\"app@example.org\""
                 " to=\"u@example.org\" type=\"subscribe\" id=\"i1\"/>");
    free(s);
    CHECK(mx_invite_stanza(APP, NULL, "i") == NULL);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

static void test_ids(void)
{
    static char ids[1000][MX_ID_SIZE];
    char small[MX_ID_SIZE - 1];
    int i, ok = 1, dup = 0;

    for (i = 0; i < 1000; i++)
        ok &= mx_new_id(ids[i], sizeof(ids[i])) == 0;
    CHECK(ok);
    CHECK(strncmp(ids[0], "mx-", 3) == 0 && strlen(ids[0]) == MX_ID_SIZE - 1);
    CHECK(strspn(ids[0] + 3, "0123456789abcdef") == 32);
    qsort(ids, 1000, sizeof(ids[0]), cmp_str);
    for (i = 1; i < 1000; i++)
        dup += strcmp(ids[i - 1], ids[i]) == 0;
    CHECK(dup == 0);
    CHECK(mx_new_id(small, sizeof(small)) == -1);
}

/* The one escaper: what it writes parses back to exactly its input,
 * in text and in attribute values. */
static void check_escape_round_trip(const char *s)
{
    char *text = mx_xml_escape_dup(s, 0), *attr = mx_xml_escape_dup(s, 1);
    size_t size = (text ? strlen(text) : 0) + (attr ? strlen(attr) : 0) + 32;
    char *doc = malloc(size);
    xmlDocPtr d;
    xmlChar *got;

    CHECK(text && attr && doc);
    if (!text || !attr || !doc) {
        free(text);
        free(attr);
        free(doc);
        return;
    }
    snprintf(doc, size, "<x a=\"%s\">%s</x>", attr, text);
    d = xmlReadMemory(doc, (int)strlen(doc), NULL, NULL, XML_PARSE_NONET);
    CHECK(d != NULL);
    if (d) {
        got = xmlGetProp(xmlDocGetRootElement(d), BAD_CAST "a");
        CHECK_STR((const char *)got, s);
        xmlFree(got);
        got = xmlNodeGetContent(xmlDocGetRootElement(d));
        CHECK_STR((const char *)got, s);
        xmlFree(got);
        xmlFreeDoc(d);
    }
    free(doc);
    free(text);
    free(attr);
}

static void test_xml_escape(void)
{
    char *e;

    CHECK_STR(mx_xml_ref('&', 0), "&amp;");
    CHECK_STR(mx_xml_ref('\'', 1), "&apos;");
    CHECK_STR(mx_xml_ref('\r', 0), "&#13;");
    CHECK(mx_xml_ref('\n', 0) == NULL && mx_xml_ref('\t', 0) == NULL);
    CHECK_STR(mx_xml_ref('\n', 1), "&#10;");
    CHECK_STR(mx_xml_ref('\t', 1), "&#9;");
    CHECK(mx_xml_ref('a', 1) == NULL);
    e = mx_xml_escape_dup("a<b>&\"c'\r\n", 0);
    CHECK_STR(e, "a&lt;b&gt;&amp;&quot;c&apos;&#13;\n");
    free(e);
    e = mx_xml_escape_dup("", 1);
    CHECK_STR(e, "");
    free(e);
    check_escape_round_trip("plain");
    check_escape_round_trip("<&>\"' and \r\n\t\r\n mixed \xc3\xa9");
    check_escape_round_trip("line one\r\nline two\ttab");
}

int main(void)
{
    mx_send_init();
    test_xml_escape();
    test_err_names();
    test_from();
    test_to();
    test_message_check();
    test_raw_xml();
    test_message_stanza();
    test_presence_check();
    test_presence_stanza();
    test_invite();
    test_ids();
    return UNIT_DONE();
}
