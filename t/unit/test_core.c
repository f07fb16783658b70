/* Unit tests of the portable core (mod_xmpp/mx_*.c). */
#include "unit.h"
#include <stdlib.h>

#include "mx_backoff.h"
#include "mx_inbound.h"
#include "mx_jid.h"
#include "mx_redact.h"

static void test_jid_valid(void)
{
    mx_jid_parts p;

    CHECK(mx_jid_valid("app@example.org"));
    CHECK(mx_jid_valid("example.org"));
    CHECK(mx_jid_valid("app@example.org/bot"));
    CHECK(mx_jid_valid("app@example.org/with/slash and space"));
    CHECK(mx_jid_valid("\xc3\xa9t\xc3\xa9@\xc3\xa9t\xc3\xa9.fr")); /* été@été.fr */
    CHECK(mx_jid_valid("app@[::1]"));
    CHECK(!mx_jid_valid(""));
    CHECK(!mx_jid_valid("@example.org"));
    CHECK(!mx_jid_valid("app@"));
    CHECK(!mx_jid_valid("app@example.org/"));
    CHECK(!mx_jid_valid("a b@example.org"));
    CHECK(!mx_jid_valid("a<b@example.org"));
    CHECK(!mx_jid_valid("a\"b@example.org"));
    CHECK(!mx_jid_valid("app@exa mple.org"));
    CHECK(!mx_jid_valid("app@example..org"));
    CHECK(!mx_jid_valid("app@.example.org"));
    CHECK(!mx_jid_valid("app@example.org."));
    CHECK(!mx_jid_valid("app@@example.org"));
    CHECK(!mx_jid_valid("app@example.org/\x01"));
    CHECK(!mx_jid_valid("\xff@example.org"));       /* not UTF-8 */
    CHECK(!mx_jid_valid("\xc0\xaf@example.org"));   /* overlong '/' */
    CHECK(!mx_jid_valid("app@exa:mple.org"));

    CHECK(mx_jid_parse("u@d.org/r/x", &p) == NULL);
    CHECK(p.local_len == 1 && p.domain_len == 5 && p.resource_len == 3);
    CHECK(mx_jid_parse("d.org/r@x", &p) == NULL); /* '@' in resource only */
    CHECK(p.local == NULL && p.domain_len == 5);
}

static void test_jid_bare(void)
{
    char buf[64];

    CHECK(mx_jid_is_bare_user("app@example.org"));
    CHECK(!mx_jid_is_bare_user("example.org"));
    CHECK(!mx_jid_is_bare_user("app@example.org/bot"));
    CHECK(mx_jid_bare("app@example.org/bot", buf, sizeof(buf)) == 15);
    CHECK_STR(buf, "app@example.org");
    CHECK(mx_jid_bare("app@example.org/bot", buf, 10) == -1);
    CHECK(mx_jid_same_bare("app@Example.ORG/x", "app@example.org"));
    CHECK(!mx_jid_same_bare("App@example.org", "app@example.org"));
    CHECK(!mx_jid_same_bare("example.org", "app@example.org"));
}

static void test_utf8(void)
{
    CHECK(mx_utf8_valid_xml("a\tb\nc\r", 6));
    CHECK(!mx_utf8_valid_xml("a\x01", 2));
    CHECK(mx_utf8_valid_xml("\xf0\x9f\x98\x80", 4)); /* U+1F600 */
    CHECK(!mx_utf8_valid_xml("\xed\xa0\x80", 3));    /* surrogate */
    CHECK(!mx_utf8_valid_xml("\xef\xbf\xbe", 3));    /* U+FFFE */
    CHECK(!mx_utf8_valid_xml("\xe2\x82", 2));        /* truncated */
}

static void test_backoff(void)
{
    unsigned int i, ms;

    CHECK(mx_backoff_ms(1, 0) == 500);
    CHECK(mx_backoff_ms(1, 500) == 1000);
    CHECK(mx_backoff_ms(2, 0) == 1000);
    CHECK(mx_backoff_ms(3, 0) == 2000);
    for (i = 1; i < 40; i++) {
        ms = mx_backoff_ms(i, 0xFFFFFFFFu - i);
        CHECK(ms >= 500 && ms <= MX_BACKOFF_MAX_MS);
    }
    CHECK(mx_backoff_ms(30, 0) == MX_BACKOFF_MAX_MS / 2);
    CHECK(mx_backoff_ms(1000, 30000) == MX_BACKOFF_MAX_MS);
}

static void test_redact(void)
{
    char out[256];

    mx_redact("SENT: <auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' "
              "mechanism='PLAIN'>AGFwcABzM2NyM3Q=</auth>", NULL, out,
              sizeof(out));
    CHECK(strstr(out, "AGFwcABzM2NyM3Q=") == NULL);
    CHECK(strstr(out, "mechanism='PLAIN'>[redacted]</auth>") != NULL);
    mx_redact("<response xmlns='x'>Yz1iaXdz</response><iq/>", NULL, out,
              sizeof(out));
    CHECK_STR(out, "<response xmlns='x'>[redacted]</response><iq/>");
    mx_redact("<success/><authx>keep</authx>", NULL, out, sizeof(out));
    CHECK_STR(out, "<success/><authx>keep</authx>");
    mx_redact("password is s3cr3t, again s3cr3t!", "s3cr3t", out,
              sizeof(out));
    CHECK_STR(out, "password is [redacted], again [redacted]!");
    /* a secret that is part of the marker must not loop */
    mx_redact("a-d-a", "a", out, sizeof(out));
    CHECK_STR(out, "[redacted]-d-[redacted]");
    /* truncation stays terminated and never leaks a partial secret */
    mx_redact("xxxxxxxx s3cr3t", "s3cr3t", out, 12);
    CHECK(strlen(out) < 12 && strstr(out, "s3cr") == NULL);
    mx_redact("<handshake>abcdef</handshake>", NULL, out, 20);
    CHECK(strstr(out, "abc") == NULL);
}

static void test_route(void)
{
    const char *path = NULL;
    int kind = 0;

    CHECK(mx_inbound_route("message", "chat", 1, &path, &kind) == 0);
    CHECK_STR(path, "message/chat/");
    CHECK(kind == MX_KIND_MESSAGE);
    CHECK(mx_inbound_route("message", NULL, 1, &path, &kind) == 0);
    CHECK(mx_inbound_route("message", "normal", 1, &path, &kind) == 0);
    CHECK(mx_inbound_route("message", "chat", 0, &path, &kind) == -1);
    CHECK(mx_inbound_route("message", "groupchat", 1, &path, &kind) == -1);
    CHECK(mx_inbound_route("message", "headline", 1, &path, &kind) == -1);
    CHECK(mx_inbound_route("message", "error", 0, &path, &kind) == 0);
    CHECK_STR(path, "error/");
    CHECK(kind == MX_KIND_ERROR);
    CHECK(mx_inbound_route("presence", "error", 0, &path, &kind) == 0);
    CHECK_STR(path, "error/");
    CHECK(mx_inbound_route("presence", NULL, 0, &path, &kind) == 0);
    CHECK_STR(path, "presence/available/");
    CHECK(kind == MX_KIND_PRESENCE);
    CHECK(mx_inbound_route("presence", "unavailable", 0, &path, &kind) == 0);
    CHECK_STR(path, "presence/unavailable/");
    CHECK(mx_inbound_route("presence", "probe", 0, &path, &kind) == 0);
    CHECK_STR(path, "presence/probe/");
    CHECK(mx_inbound_route("presence", "unsubscribed", 0, &path, &kind) == 0);
    CHECK_STR(path, "subscription/unsubscribed/");
    CHECK(kind == MX_KIND_SUBSCRIBE);
    CHECK(mx_inbound_route("presence", "bogus", 0, &path, &kind) == -1);
    CHECK(mx_inbound_route("iq", "get", 0, &path, &kind) == -1);
}

static void check_command(const char *body, const char *cmd, const char *arg)
{
    char *c, *a;

    CHECK(mx_inbound_command(body, &c, &a) == 0);
    if (cmd)
        CHECK_STR(c, cmd);
    else
        CHECK(c == NULL);
    CHECK_STR(a, arg);
    free(c);
    free(a);
}

static void test_command(void)
{
    check_command("/score druidjane", "score", "druidjane");
    check_command("\\stats", "stats", "");
    check_command("/score   a b  ", "score", "a b");
    check_command("  hello there \n", NULL, "hello there");
    check_command("/", "", "");
    check_command("", NULL, "");
    check_command("no /command here", NULL, "no /command here");
}

static void test_multipart(void)
{
    mx_form_field f[] = {
        { "from", "a@x/r", 5, NULL },
        { "show", NULL, 0, NULL },
        { "stanza", "<m/>", 4, "text/xml" },
    };
    char boundary[80], *body, *hit;
    size_t len;

    body = mx_multipart(f, 3, boundary, sizeof(boundary), &len);
    CHECK(body != NULL);
    if (!body)
        return;
    CHECK(strlen(body) == len);
    CHECK(strstr(body, "name=\"from\"\r\nContent-Type: text/plain; "
                 "charset=UTF-8\r\n\r\na@x/r\r\n") != NULL);
    CHECK(strstr(body, "name=\"show\"") == NULL);
    CHECK(strstr(body, "Content-Type: text/xml\r\n\r\n<m/>\r\n") != NULL);
    hit = strstr(body, boundary);
    CHECK(hit == body + 2);
    /* it ends with the closing delimiter "\r\n--boundary--\r\n" */
    CHECK(len > strlen(boundary) + 8
          && !strncmp(body + len - strlen(boundary) - 8, "\r\n--", 4)
          && !strncmp(body + len - strlen(boundary) - 4, boundary,
                      strlen(boundary))
          && !strcmp(body + len - 4, "--\r\n"));
    free(body);
    /* a value containing the first boundary candidate gets another one */
    {
        char first[80];
        mx_form_field g[1];
        char *b1 = mx_multipart(f, 1, first, sizeof(first), &len), *b2;

        free(b1);
        g[0].name = "body";
        g[0].value = first;
        g[0].len = strlen(first);
        g[0].content_type = NULL;
        b2 = mx_multipart(g, 1, boundary, sizeof(boundary), &len);
        CHECK(b2 && strcmp(first, boundary) != 0);
        free(b2);
    }
}

static void test_error_stanza(void)
{
    char *e = mx_error_stanza("message", "app@x/bot", "a<b@x", "i\"d",
                              "cancel", "internal-server-error", "t&t");

    CHECK(e != NULL);
    if (!e)
        return;
    CHECK(strstr(e, "type=\"error\"") != NULL);
    CHECK(strstr(e, "to=\"a&lt;b@x\"") != NULL);
    CHECK(strstr(e, "id=\"i&quot;d\"") != NULL);
    CHECK(strstr(e, "<internal-server-error xmlns=\"urn:ietf:params:xml:"
                 "ns:xmpp-stanzas\"/>") != NULL);
    CHECK(strstr(e, ">t&amp;t</text>") != NULL);
    free(e);
}

static void check_from_added(const char *in, const char *want)
{
    int bad = 1;
    char *out = mx_stanza_from_component(in, "t-42@comp.x", "comp.x", &bad);

    CHECK(out != NULL && !bad);
    if (out)
        CHECK_STR(out, want);
    free(out);
}

static void test_stanza_from_component(void)
{
    int bad = 0;

    check_from_added("<message to=\"a@b\"><body>hi</body></message>",
                     "<message from=\"t-42@comp.x\" to=\"a@b\"><body>hi"
                     "</body></message>");
    check_from_added(" <presence/>", "<presence from=\"t-42@comp.x\"/>");
    /* a from of the domain is kept as written, in either quotes */
    check_from_added("<message from='x@comp.x/r' to='a@b'/>",
                     "<message from='x@comp.x/r' to='a@b'/>");
    check_from_added("<message to='a@b'><body>from='x'</body></message>",
                     "<message from=\"t-42@comp.x\" to='a@b'><body>"
                     "from='x'</body></message>");
    CHECK(mx_stanza_from_component("<message from=\"x@other.x\"/>",
                                   "t-42@comp.x", "comp.x", &bad) == NULL);
    CHECK(bad == 1);
}

int main(void)
{
    test_stanza_from_component();
    test_route();
    test_command();
    test_multipart();
    test_error_stanza();
    test_jid_valid();
    test_jid_bare();
    test_utf8();
    test_backoff();
    test_redact();
    return UNIT_DONE();
}
