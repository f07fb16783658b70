/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the portable core (mod_xmpp/mx_*.c). */
#include "unit.h"
#include <stdlib.h>

#include "mx_backoff.h"
#include "mx_file.h"
#include "mx_inbound.h"
#include "mx_jid.h"
#include "mx_plines.h"
#include "mx_presence.h"
#include "mx_redact.h"
#include "mx_roster.h"

#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* a JID with a part of n bytes of c */
static const char *jid_with(const char *before, int c, size_t n,
                            const char *after)
{
    static char buf[4096];
    size_t b = strlen(before);

    memcpy(buf, before, b);
    memset(buf + b, c, n);
    strcpy(buf + b + n, after);
    return buf;
}

/* Each rule of mx_jid.h, with a good case next to the bad ones. */
static void test_jid_rules(void)
{
    /* internationalized JIDs */
    CHECK(mx_jid_valid("j\xc3\xbcrgen@m\xc3\xbcller.example"));  /* jürgen@müller.example */
    CHECK(mx_jid_valid("\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.\xe4\xb8\xad\xe5\x9b\xbd/\xe6\x89\x8b\xe6\x9c\xba")); /* 用户@例子.中国/手机 */
    CHECK(mx_jid_valid("u@example.org/\xf0\x9f\x98\x80 phone")); /* emoji, space */
    CHECK(mx_jid_valid("u@xn--mller-kva.example"));
    /* IP literals: IPv6 in brackets, IPv4 as a host name */
    CHECK(mx_jid_valid("u@[2001:db8::1]"));
    CHECK(mx_jid_valid("u@[::ffff:192.0.2.1]/r"));
    CHECK(mx_jid_valid("u@192.0.2.1"));
    CHECK(!mx_jid_valid("x@[\n<evil/>]"));
    CHECK(!mx_jid_valid("x@[\x01]"));
    CHECK(!mx_jid_valid("x@[::1"));
    CHECK(!mx_jid_valid("x@[]"));
    CHECK(!mx_jid_valid("x@[192.0.2.1]"));
    CHECK(!mx_jid_valid("x@[::1]x"));
    CHECK(!mx_jid_valid("x@[\"'&]"));
    CHECK(!mx_jid_valid("x@[\xff\xfe]"));
    CHECK(!mx_jid_valid("x@[fe80::1%eth0]"));
    /* controls and whitespace: none in localpart and domain, and no
     * control in the resource (C0, DEL, C1) */
    CHECK(!mx_jid_valid("a\tb@example.org"));
    CHECK(!mx_jid_valid("a\nb@example.org"));
    CHECK(!mx_jid_valid("a\x7f@example.org"));
    CHECK(!mx_jid_valid("a\xc2\x85@example.org"));          /* U+0085 NEL */
    CHECK(!mx_jid_valid("a\xc2\xa0@example.org"));          /* U+00A0 */
    CHECK(!mx_jid_valid("a\xe2\x80\x83@example.org"));      /* U+2003 */
    CHECK(!mx_jid_valid("u@exa\tmple.org"));
    CHECK(!mx_jid_valid("u@example.org\n"));
    CHECK(!mx_jid_valid("u@exa\xc2\xa0mple.org"));
    CHECK(!mx_jid_valid("u@example.org/a\nb"));
    CHECK(!mx_jid_valid("u@example.org/a\x7f"));
    CHECK(!mx_jid_valid("u@example.org/a\xc2\x9f"));        /* U+009F */
    /* RFC 7622's characters forbidden in a localpart, one by one */
    CHECK(!mx_jid_valid("a&b@example.org"));
    CHECK(!mx_jid_valid("a'b@example.org"));
    CHECK(!mx_jid_valid("a:b@example.org"));
    CHECK(!mx_jid_valid("a>b@example.org"));
    CHECK(!mx_jid_valid("a\xef\xbc\x9c" "b@example.org"));  /* U+FF1C, maps to '<' */
    CHECK(mx_jid_valid("a.b-c_d+e@example.org"));
    /* ... and in a domain */
    CHECK(!mx_jid_valid("u@exa<mple.org"));
    CHECK(!mx_jid_valid("u@exa'mple.org"));
    CHECK(!mx_jid_valid("u@exa\\mple.org"));
    CHECK(!mx_jid_valid("u@exa\xef\xbc\x9cmple.org"));
    /* invalid UTF-8 in each part */
    CHECK(!mx_jid_valid("u@\xc3(.example"));
    CHECK(!mx_jid_valid("u@example.org/\xe2\x82"));
    CHECK(!mx_jid_valid("\xed\xa0\x80@example.org"));       /* surrogate */
    /* nodeprep and resourceprep: unassigned is fine, prohibited is not */
    CHECK(!mx_jid_valid("a\xef\xbf\xbd" "b@example.org"));  /* U+FFFD */
    CHECK(!mx_jid_valid("u@example.org/\xe2\x80\x8e"));     /* U+200E LRM */
    CHECK(!mx_jid_valid("\xc2\xad@example.org"));           /* maps to nothing */
    /* domain labels */
    CHECK(mx_jid_valid("u@my_host.example"));
    CHECK(!mx_jid_valid("u@-example.org"));
    CHECK(!mx_jid_valid("u@example-.org"));
    CHECK(mx_jid_valid(jid_with("u@", 'a', 63, ".org")));
    CHECK(!mx_jid_valid(jid_with("u@", 'a', 64, ".org")));
    CHECK(!mx_jid_valid("u@example.org/\xe2\x82"));
    /* lengths: 1023 bytes a part */
    CHECK(mx_jid_valid(jid_with("", 'a', 1023, "@example.org")));
    CHECK(!mx_jid_valid(jid_with("", 'a', 1024, "@example.org")));
    CHECK(mx_jid_valid(jid_with("u@example.org/", 'r', 1023, "")));
    CHECK(!mx_jid_valid(jid_with("u@example.org/", 'r', 1024, "")));
    CHECK(!mx_jid_valid(jid_with("u@", 'a', 1024, "")));
    CHECK(mx_jid_parse("x@[\\n<evil/>]", NULL) != NULL);
}

static void test_jid_prep(void)
{
    char buf[64];

    CHECK(mx_jid_bare_prep("Alice@Example.ORG/Phone", buf, sizeof(buf)) == 17);
    CHECK_STR(buf, "alice@example.org");
    CHECK(mx_jid_bare_prep("J\xc3\x9cRGEN@M\xc3\xbcller.Example/x", buf,
                           sizeof(buf)) > 0);
    CHECK_STR(buf, "j\xc3\xbcrgen@m\xc3\xbcller.example");
    CHECK(mx_jid_bare_prep("u@[2001:DB8::1]", buf, sizeof(buf)) > 0);
    CHECK_STR(buf, "u@[2001:db8::1]");
    CHECK(mx_jid_bare_prep("Example.ORG", buf, sizeof(buf)) == 11);
    CHECK_STR(buf, "example.org");
    /* a right-to-left label beside a left-to-right one (found by
     * fuzz_presence): valid, so it must have a prepared form too */
    CHECK(mx_jid_valid("n.\xde\x9f"));
    CHECK(mx_jid_bare_prep("N.\xde\x9f", buf, sizeof(buf)) == 4);
    CHECK_STR(buf, "n.\xde\x9f");
    CHECK(mx_jid_bare_prep("alice@example.org", buf, 17) == -1);
    CHECK(mx_jid_bare_prep("a b@example.org", buf, sizeof(buf)) == -1);
}

static const char *spool(const char *name)
{
    static char dir[256];

    snprintf(dir, sizeof(dir), "/tmp/mx-test-core-%ld-%s", (long)getpid(),
             name);
    mkdir(dir, 0700);
    return dir;
}

static int keep_alice(const char *bare, void *ud)
{
    return strcmp(bare, "alice@example.org") == 0;
}

/* The store keeps what get_presence needs, bounded. */
static void test_presence_store(void)
{
    const char *d = spool("presence");
    char show[16], *status, big[5000], path[512];
    int available;
    size_t i;

    /* the status is cut to 1024 characters, at a character boundary */
    for (i = 0; i + 2 < sizeof(big); i += 2)
        memcpy(big + i, "\xc3\xa9", 2);                  /* é */
    big[i] = '\0';
    CHECK(mx_presence_store(d, "Alice@Example.org/x", 1, "away", big) == 0);
    CHECK(mx_presence_load(d, "alice@example.org", &available, show,
                           sizeof(show), &status) == 0);
    CHECK(available);
    CHECK_STR(show, "away");
    CHECK(status && strlen(status) == 2 * MX_PRESENCE_STATUS_MAX);
    CHECK(status && mx_utf8_valid_xml(status, strlen(status)));
    free(status);
    /* a show outside RFC 6121's four is not stored */
    memset(big, 'x', 4000);
    big[4000] = '\0';
    CHECK(mx_presence_store(d, "alice@example.org", 1, big, "") == 0);
    CHECK(mx_presence_load(d, "alice@example.org", &available, show,
                           sizeof(show), NULL) == 0);
    CHECK(available && show[0] == '\0');
    /* forget, prune */
    CHECK(mx_presence_store(d, "bob@example.org", 0, NULL, NULL) == 0);
    CHECK(mx_presence_prune(d, keep_alice, NULL) == 1);
    CHECK(mx_presence_load(d, "bob@example.org", &available, NULL, 0,
                           NULL) == 1);
    CHECK(mx_presence_remove(d, "alice@example.org") == 0);
    CHECK(mx_presence_remove(d, "alice@example.org") == 0);
    CHECK(mx_presence_load(d, "alice@example.org", &available, NULL, 0,
                           NULL) == 1);
    CHECK(mx_presence_path(d, "\xc3\x89mile@example.org", path,
                           sizeof(path)) == 0);
    CHECK(strstr(path, "/presence/\xc3\xa9mile@example.org") != NULL);
    CHECK(mx_presence_path(d, "a\nb@example.org", path, sizeof(path)) == -1
          && errno == EINVAL);
    CHECK(mx_presence_path(d, ".tmp-1@example.org", path, sizeof(path)) == -1);
    /* a localpart may begin with a dot: stored, and pruned like others */
    CHECK(mx_presence_store(d, ".bob@example.org", 1, NULL, NULL) == 0);
    CHECK(mx_presence_prune(d, keep_alice, NULL) == 0);
    CHECK(mx_presence_load(d, ".bob@example.org", &available, NULL, 0,
                           NULL) == 1);
    snprintf(path, sizeof(path), "%s/presence", d);
    rmdir(path);
    rmdir(d);
}

static void test_utf8_prefix(void)
{
    CHECK(mx_utf8_prefix("abc", 3, 2) == 2);
    CHECK(mx_utf8_prefix("\xc3\xa9\xc3\xa9", 4, 1) == 2);
    CHECK(mx_utf8_prefix("\xf0\x9f\x98\x80x", 5, 1) == 4);
    CHECK(mx_utf8_prefix("a\xf0\x9f\x98", 4, 5) == 1);  /* truncated */
    CHECK(mx_utf8_prefix("a\xffz", 3, 5) == 1);
    CHECK(mx_utf8_prefix("", 0, 5) == 0);
}

static int gone_count, gone_stored;

static void on_gone(const char *bare, int stored, void *ud)
{
    gone_count++;
    gone_stored += stored;
}

/* Strangers and contacts that do not share their presence leave nothing;
 * resources come and go; the table shrinks back. */
static void test_roster_presence(void)
{
    mx_roster *r = mx_roster_create(100, 2);

    CHECK(mx_roster_subscription("both") == (MX_SUB_FROM | MX_SUB_TO));
    CHECK(mx_roster_subscription("to") == MX_SUB_TO);
    CHECK(mx_roster_subscription("none") == 0);
    CHECK(mx_roster_subscription(NULL) == 0);
    /* a stranger */
    CHECK(mx_roster_resource(r, "s@x", "s@x/r", 1) == -1);
    CHECK(mx_roster_claim(r, "s@x") == 0);
    CHECK(mx_roster_count(r) == 0 && mx_roster_online(r) == 0);
    /* a subscriber whose presence we do not get */
    CHECK(mx_roster_set(r, "f@x", MX_SUB_FROM) == MX_ROSTER_SUBSCRIBERS);
    CHECK(mx_roster_resource(r, "f@x", "f@x/r", 1) == -1);
    CHECK(mx_roster_claim(r, "f@x") == 0);
    /* a contact: resources online and gone */
    CHECK(mx_roster_set(r, "c@x", MX_SUB_TO) == 0);
    CHECK(mx_roster_get(r, "c@x") == MX_SUB_TO);
    CHECK(mx_roster_resource(r, "c@x", "c@x/a", 1) == 1);
    CHECK(mx_roster_resource(r, "c@x", "c@x/a", 1) == 1);
    CHECK(mx_roster_resource(r, "c@x", "c@x/b", 1) == 2);
    CHECK(mx_roster_resource(r, "c@x", "c@x/c", 1) == 2); /* at the bound */
    CHECK(mx_roster_online(r) == 1);
    CHECK(mx_roster_resource(r, "c@x", "c@x/a", 0) == 1);
    CHECK(mx_roster_resource(r, "c@x", "c@x/z", 0) == 1);
    CHECK(mx_roster_resource(r, "c@x", "c@x/b", 0) == 0);
    CHECK(mx_roster_online(r) == 0);
    /* stored, then no longer shared: forget it */
    CHECK(mx_roster_resource(r, "c@x", "c@x/a", 1) == 1);
    CHECK(mx_roster_claim(r, "c@x") == 1 && mx_roster_stored(r) == 1);
    CHECK(mx_roster_set(r, "c@x", MX_SUB_FROM | MX_SUB_TO)
          == MX_ROSTER_SUBSCRIBERS);
    CHECK(mx_roster_stored(r) == 1);
    CHECK(mx_roster_set(r, "c@x", MX_SUB_FROM) == MX_ROSTER_FORGET);
    CHECK(mx_roster_stored(r) == 0 && mx_roster_online(r) == 0);
    CHECK(mx_roster_resource(r, "c@x", "c@x/a", 1) == -1);
    /* leaves the roster */
    CHECK(mx_roster_set(r, "c@x", 0)
          == MX_ROSTER_SUBSCRIBERS);
    CHECK(mx_roster_set(r, "f@x", 0) == MX_ROSTER_SUBSCRIBERS);
    CHECK(mx_roster_set(r, "nobody@x", 0) == 0);
    CHECK(mx_roster_count(r) == 0);
    mx_roster_destroy(r);
}

/* At most max_stored contacts have presence stored; said once. */
static void test_roster_limit(void)
{
    mx_roster *r = mx_roster_create(2, 4);
    char bare[32];
    int i;

    mx_roster_set(r, "a@x", MX_SUB_TO);
    mx_roster_set(r, "b@x", MX_SUB_TO);
    mx_roster_set(r, "c@x", MX_SUB_TO);
    mx_roster_set(r, "d@x", MX_SUB_TO);
    CHECK(mx_roster_claim(r, "a@x") == 1);
    CHECK(mx_roster_claim(r, "b@x") == 1);
    CHECK(mx_roster_claim(r, "a@x") == 1);  /* already stored */
    CHECK(mx_roster_claim(r, "c@x") == -1); /* full: say it */
    CHECK(mx_roster_claim(r, "d@x") == 0);  /* said already */
    CHECK(mx_roster_claim(r, "c@x") == 0);
    CHECK(mx_roster_stored(r) == 2);
    CHECK(mx_roster_set(r, "a@x", 0) == MX_ROSTER_FORGET);
    CHECK(mx_roster_claim(r, "c@x") == 1);
    CHECK(mx_roster_claim(r, "d@x") == -1); /* full again: said again */
    /* a full roster: what it lacks goes, reported with its stored flag */
    mx_roster_begin(r);
    mx_roster_set(r, "d@x", MX_SUB_TO);
    gone_count = gone_stored = 0;
    mx_roster_end(r, on_gone, NULL);
    CHECK(gone_count == 2 && gone_stored == 2); /* b and c */
    CHECK(mx_roster_count(r) == 1 && mx_roster_stored(r) == 0);
    mx_roster_clear_presence(r);
    CHECK(mx_roster_claim(r, "d@x") == 1);
    mx_roster_clear_presence(r);
    CHECK(mx_roster_stored(r) == 0);
    /* many contacts: the table grows, and shrinks back to nothing */
    for (i = 0; i < 5000; i++) {
        snprintf(bare, sizeof(bare), "u%d@x", i);
        mx_roster_set(r, bare, MX_SUB_TO);
        mx_roster_resource(r, bare, "u@x/r", 1);
    }
    CHECK(mx_roster_count(r) == 5001 && mx_roster_online(r) == 5000);
    CHECK(mx_roster_get(r, "u4999@x") == MX_SUB_TO);
    for (i = 0; i < 5000; i++) {
        snprintf(bare, sizeof(bare), "u%d@x", i);
        mx_roster_set(r, bare, 0);
    }
    CHECK(mx_roster_count(r) == 1 && mx_roster_online(r) == 0);
    mx_roster_destroy(r);
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

/* ---- mx_file: atomic replacement ---- */

static int file_is(const char *path, const char *want)
{
    char buf[256];
    FILE *f = fopen(path, "r");
    size_t n;

    if (!f)
        return 0;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strcmp(buf, want) == 0;
}

static int fill_fails(int fd, void *baton)
{
    (void)baton;
    if (mx_write_all(fd, "half", 4) != 0)
        return -1;
    errno = ENOSPC;
    return -1;
}

static void test_file_replace(void)
{
    char dir[] = "/tmp/mx-unit-file-XXXXXX", path[128], tmp[128], bad[160];
    struct stat st;

    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/roster", dir);
    snprintf(tmp, sizeof(tmp), "%s/roster.tmp", dir);

    /* new file, then replaced; durable or not, tmp never stays */
    CHECK(mx_file_replace(path, tmp, "a\n", 2, 0) == 0);
    CHECK(file_is(path, "a\n"));
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
    CHECK(mx_file_replace(path, tmp, "b\nc\n", 4, MX_FILE_DURABLE) == 0);
    CHECK(file_is(path, "b\nc\n"));
    CHECK(access(tmp, F_OK) != 0 && errno == ENOENT);
    CHECK(mx_file_replace(path, tmp, "", 0, MX_FILE_DURABLE) == 0);
    CHECK(file_is(path, ""));

    /* a stale tmp of a crashed writer is overwritten, not appended to */
    CHECK(mx_file_replace(path, tmp, "x", 1, 0) == 0);
    {
        FILE *f = fopen(tmp, "w");

        CHECK(f && fputs("stale and long", f) >= 0 && fclose(f) == 0);
    }
    CHECK(mx_file_replace(path, tmp, "y", 1, 0) == 0);
    CHECK(file_is(path, "y"));

    /* a failing writer: the old content stays, tmp is gone, errno kept */
    errno = 0;
    CHECK(mx_file_replace_with(path, tmp, MX_FILE_DURABLE, fill_fails,
                               NULL) == -1);
    CHECK(errno == ENOSPC);
    CHECK(file_is(path, "y"));
    CHECK(access(tmp, F_OK) != 0);

    /* tmp in a missing directory: nothing changes */
    snprintf(bad, sizeof(bad), "%s/missing/roster.tmp", dir);
    CHECK(mx_file_replace(path, bad, "z", 1, 0) == -1 && errno == ENOENT);
    CHECK(file_is(path, "y"));

    /* the target cannot be replaced (a directory): tmp is removed */
    snprintf(bad, sizeof(bad), "%s/sub", dir);
    CHECK(mkdir(bad, 0700) == 0);
    CHECK(mx_file_replace(bad, tmp, "z", 1, 0) == -1 && errno == EISDIR);
    CHECK(access(tmp, F_OK) != 0);

    CHECK(mx_sync_dir(dir) == 0);
    CHECK(mx_sync_dir(path) == -1); /* not a directory */
    rmdir(bad);
    unlink(path);
    CHECK(rmdir(dir) == 0); /* nothing else was left behind */
}

/* The presence cache's entries: good lines kept in order, bad ones
 * skipped and said, the newest found, the bound kept. */
static void test_plines(void)
{
    char text[] = "00000000000000000002\tdnd\ta@example.org/phone\n"
                  "0000000000000000000x\taway\ta@example.org/bad-time\n"
                  "00000000000000000003\tevil\ta@example.org/bad-show\n"
                  "00000000000000000004\t\tnot a jid\n"
                  "no tabs at all\n"
                  "\n"
                  "00000000000000000009\t\ta@example.org/laptop";
    char two[] = "00000000000000000001\txa\ta@example.org/1\n"
                 "00000000000000000002\tchat\ta@example.org/2\n";
    mx_pline lines[4];
    int bad = 0, n;

    n = mx_plines_parse(text, lines, 4, &bad);
    CHECK(n == 2 && bad == 1);
    CHECK(!strcmp(lines[0].show, "dnd")
          && !strcmp(lines[0].resource, "a@example.org/phone"));
    CHECK(!strcmp(lines[1].show, "")
          && !strcmp(lines[1].updated, "00000000000000000009"));
    CHECK(mx_plines_newest(lines, n) == 1);
    CHECK(mx_plines_newest(lines, 0) == -1);
    /* beyond max: kept to max, and said */
    n = mx_plines_parse(two, lines, 1, &bad);
    CHECK(n == 1 && bad == 1 && !strcmp(lines[0].show, "xa"));
    CHECK(mx_pline_show_ok("") && mx_pline_show_ok("away")
          && !mx_pline_show_ok("Away") && !mx_pline_show_ok("online"));
}

/* The roster file: subscribers only, read back alike; lines that are not
 * normalized bare JIDs skipped. */
static void test_roster_file(void)
{
    mx_roster *r = mx_roster_create(10, 4), *back = mx_roster_create(10, 4);
    char bad[] = "Alice@Example.org\nbob@example.org/res\nnot a jid\n\n"
                 "carol@example.org";
    char *text;
    size_t len = 0;

    CHECK(r && back);
    mx_roster_set(r, "alice@example.org", MX_SUB_FROM | MX_SUB_TO);
    mx_roster_set(r, "bob@example.org", MX_SUB_TO);
    mx_roster_set(r, "carol@example.org", MX_SUB_FROM);
    text = mx_roster_subscribers_text(r, &len);
    CHECK(text && len == strlen(text) && len == 36);
    CHECK(strstr(text, "alice@example.org\n")
          && strstr(text, "carol@example.org\n") && !strstr(text, "bob"));
    CHECK(mx_roster_read_subscribers(back, text) == 2);
    CHECK(mx_roster_get(back, "alice@example.org") == MX_SUB_FROM
          && mx_roster_get(back, "carol@example.org") == MX_SUB_FROM
          && mx_roster_count(back) == 2);
    free(text);
    mx_roster_destroy(back);
    back = mx_roster_create(10, 4);
    CHECK(mx_roster_read_subscribers(back, bad) == 1);
    CHECK(mx_roster_get(back, "carol@example.org") == MX_SUB_FROM
          && mx_roster_count(back) == 1);
    mx_roster_destroy(back);
    mx_roster_destroy(r);
}

int main(void)
{
    test_plines();
    test_roster_file();
    test_file_replace();
    test_stanza_from_component();
    test_route();
    test_command();
    test_multipart();
    test_error_stanza();
    test_jid_valid();
    test_jid_bare();
    test_jid_rules();
    test_jid_prep();
    test_presence_store();
    test_utf8_prefix();
    test_roster_presence();
    test_roster_limit();
    test_utf8();
    test_backoff();
    test_redact();
    return UNIT_DONE();
}
