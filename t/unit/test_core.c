/* Unit tests of the portable core (mod_xmpp/mx_*.c). */
#include "unit.h"
#include "mx_backoff.h"
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

int main(void)
{
    test_jid_valid();
    test_jid_bare();
    test_utf8();
    test_backoff();
    test_redact();
    return UNIT_DONE();
}
