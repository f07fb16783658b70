/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of what an inbound stanza's request and answer are made of:
 * mx_multipart's boundary, the text an answer may carry (mx_xmltext), the
 * stanza an application/xmpp+xml answer must be (mx_stanza_problem). */
#include "unit.h"
#include <stdlib.h>

#include "mx_inbound.h"
#include "mx_inq.h"
#include "mx_send.h"
#include "mx_xmltext.h"

/* occurrences of needle in hay[0..len) */
static size_t count(const char *hay, size_t len, const char *needle)
{
    size_t n = 0, nlen = strlen(needle), i;

    for (i = 0; i + nlen <= len; i++)
        if (!memcmp(hay + i, needle, nlen))
            n++;
    return n;
}

/* Every value is where it belongs, and the body has exactly one
 * delimiter per part and the closing one, nothing else that looks like
 * them: a parser splits it back into exactly these parts. */
static void check_parts(const mx_form_field *f, size_t n)
{
    char boundary[MX_BOUNDARY_SIZE], delim[MX_BOUNDARY_SIZE + 8], *body;
    size_t len, i, parts = 0, off = 0;

    body = mx_multipart(f, n, boundary, sizeof(boundary), &len);
    CHECK(body != NULL);
    if (!body)
        return;
    CHECK(strncmp(boundary, "mod_xmpp-", 9) == 0 && strlen(boundary) == 41);
    snprintf(delim, sizeof(delim), "--%s", boundary);
    for (i = 0; i < n; i++)
        parts += f[i].value != NULL;
    CHECK(count(body, len, delim) == parts + 1);
    snprintf(delim, sizeof(delim), "%s--%s--\r\n", parts ? "\r\n" : "",
             boundary);
    CHECK(len >= strlen(delim)
          && !memcmp(body + len - strlen(delim), delim, strlen(delim)));
    snprintf(delim, sizeof(delim), "--%s\r\n", boundary);
    for (i = 0; i < n; i++) {
        const char *head, *value;

        if (!f[i].value)
            continue;
        CHECK(off + strlen(delim) <= len
              && !memcmp(body + off, delim, strlen(delim)));
        head = body + off;
        value = strstr(head, "\r\n\r\n");
        CHECK(value != NULL);
        if (!value)
            break;
        value += 4;
        CHECK((size_t)(value - body) + f[i].len + 2 <= len
              && !memcmp(value, f[i].value, f[i].len)
              && !memcmp(value + f[i].len, "\r\n", 2));
        off = (size_t)(value - body) + f[i].len + 2;
    }
    free(body);
}

static void test_multipart_delimiters(void)
{
    static const char tricky[] =
        "--mod_xmpp-\r\n--mod_xmpp-0123456789abcdef0123456789abcde\r\n"
        "--mod_xmpp-62cb6204391a8b91--\r\n--\r\n\r\n--";
    mx_form_field f[] = {
        { "from", "a@x/r", 5, NULL },
        { "body", tricky, sizeof(tricky) - 1, NULL },
        { "show", NULL, 0, NULL },
        { "status", "", 0, NULL },
        { "stanza", "<m>--mod_xmpp-</m>", 18, "text/xml" },
    };
    char b1[MX_BOUNDARY_SIZE], b2[MX_BOUNDARY_SIZE], small[MX_BOUNDARY_SIZE - 1];
    size_t len;
    char *body;

    check_parts(f, sizeof(f) / sizeof(f[0]));
    check_parts(f, 0);
    /* random: two requests do not share a boundary */
    body = mx_multipart(f, 1, b1, sizeof(b1), &len);
    free(body);
    body = mx_multipart(f, 1, b2, sizeof(b2), &len);
    free(body);
    CHECK(strcmp(b1, b2) != 0);
    /* the boundary just used, in a value, is not used for it */
    f[1].value = b1;
    f[1].len = strlen(b1);
    body = mx_multipart(f, 2, b2, sizeof(b2), &len);
    CHECK(body && strcmp(b1, b2) != 0);
    free(body);
    check_parts(f, 2);
    CHECK(mx_multipart(f, 1, small, sizeof(small), &len) == NULL);
}

/* A large value made of delimiter prefixes: one linear pass, and still
 * exactly one delimiter per part */
static void test_multipart_large(void)
{
    static const char unit[] = "\r\n--mod_xmpp-";
    size_t n = 300000 / (sizeof(unit) - 1), i;
    char *big = malloc(n * (sizeof(unit) - 1) + 1);
    mx_form_field f[2] = { { "body", NULL, 0, NULL },
                           { "stanza", NULL, 0, "text/xml" } };

    CHECK(big != NULL);
    if (!big)
        return;
    for (i = 0; i < n; i++)
        memcpy(big + i * (sizeof(unit) - 1), unit, sizeof(unit) - 1);
    f[0].value = f[1].value = big;
    f[0].len = f[1].len = n * (sizeof(unit) - 1);
    check_parts(f, 2);
    free(big);
}

static int text_ok(const char *s, size_t len)
{
    char why[128];

    return mx_xml_text_problem(s, len, why, sizeof(why)) == NULL;
}

static void test_xml_text(void)
{
    char why[128];

    CHECK(text_ok("", 0));
    CHECK(text_ok("plain\ttab\nline\r", 15));
    CHECK(text_ok("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14));
    CHECK(text_ok("\xef\xbf\xbd", 3));             /* U+FFFD */
    CHECK(text_ok("\xf4\x8f\xbf\xbf", 4));         /* U+10FFFF */
    CHECK(!text_ok("\xa9" "fac", 4));              /* café reversed bytewise */
    CHECK(!text_ok("caf\xc3", 4));                 /* cut sequence */
    CHECK(!text_ok("a\0b", 3));
    CHECK(!text_ok("\x01", 1));
    CHECK(!text_ok("\x1b[31m", 5));
    CHECK(!text_ok("\xef\xbf\xbe", 3));            /* U+FFFE */
    CHECK(!text_ok("\xef\xbf\xbf", 3));            /* U+FFFF */
    CHECK(!text_ok("\xed\xa0\x80", 3));            /* surrogate */
    CHECK(!text_ok("\xc0\xaf", 2));                /* overlong '/' */
    CHECK(!text_ok("\xe0\x80\xaf", 3));            /* overlong '/' */
    CHECK(!text_ok("\xf0\x80\x80\xaf", 4));        /* overlong '/' */
    CHECK(!text_ok("\xf4\x90\x80\x80", 4));        /* above U+10FFFF */
    CHECK(!text_ok("\xff", 1));
    CHECK_STR(mx_xml_text_problem("ab\xa9", 3, why, sizeof(why)),
              "byte 2 (0xa9) is not valid UTF-8");
    CHECK_STR(mx_xml_text_problem("ab\x07", 3, why, sizeof(why)),
              "byte 2 is U+0007, a character XML does not allow");
}

static void test_utf8_prefix(void)
{
    const char *s = "ab\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"; /* abé€😀 */

    CHECK(mx_utf8_cut(s, 11, 100) == 11);
    CHECK(mx_utf8_cut(s, 11, 11) == 11);
    CHECK(mx_utf8_cut(s, 11, 10) == 7);
    CHECK(mx_utf8_cut(s, 11, 8) == 7);
    CHECK(mx_utf8_cut(s, 11, 7) == 7);
    CHECK(mx_utf8_cut(s, 11, 6) == 4);
    CHECK(mx_utf8_cut(s, 11, 3) == 2);
    CHECK(mx_utf8_cut(s, 11, 0) == 0);
    /* not UTF-8: cut where asked */
    CHECK(mx_utf8_cut("\x80\x80\x80\x80\x80\x80", 6, 5) == 5);
}

static void test_stanza_problem(void)
{
    CHECK(mx_stanza_problem("<message to='a@x'><body>hi</body></message>")
          == NULL);
    CHECK(mx_stanza_problem("  <presence xmlns='jabber:client'/>\n") == NULL);
    CHECK(mx_stanza_problem("<iq type='get' id='1'><q xmlns='x:y'/></iq>")
          == NULL);
    CHECK(mx_stanza_problem("<message><x xmlns='u:t'><y/></x></message>")
          == NULL);
    CHECK_STR(mx_stanza_problem("<message/><message/>"),
              "there is more than one element, or text after the stanza");
    CHECK_STR(mx_stanza_problem("<message/>text"),
              "there is more than one element, or text after the stanza");
    CHECK_STR(mx_stanza_problem("<message><body>x</message>"),
              "the XML is not well-formed");
    CHECK(mx_stanza_problem("") != NULL);
    CHECK(mx_stanza_problem("just text") != NULL);
    CHECK(mx_stanza_problem("<?xml version='1.0'?><message/>") != NULL);
    CHECK(mx_stanza_problem("<!-- c --><message/>") != NULL);
    CHECK(mx_stanza_problem("<message/><!-- c -->") != NULL);
    CHECK(mx_stanza_problem("<message><?pi x?></message>") != NULL);
    CHECK(mx_stanza_problem("<message>&#1;</message>") != NULL);
    CHECK(mx_stanza_problem("<message>\x01</message>") != NULL);
    CHECK(mx_stanza_problem("<message>\xa9</message>") != NULL);
    CHECK(mx_stanza_problem("<message>&nbsp;</message>") != NULL);
    CHECK(mx_stanza_problem("<body>x</body>") != NULL);
    CHECK(mx_stanza_problem("<message xmlns='jabber:server'/>") != NULL);
    CHECK(mx_stanza_problem("<c:message xmlns:c='jabber:client'/>") != NULL);
    CHECK(mx_stanza_problem("<message><p:x/></message>") != NULL);
}

/* A record survives encoding: absent fields stay absent, empty ones
 * empty; a cut or foreign payload is refused. */
static void test_inrec(void)
{
    mx_inrec r = { MX_KIND_MESSAGE, "message/chat/", "message", NULL, "",
                   "a@b/c", "app@b", "x < y\ny", NULL, NULL,
                   "<message/>" }, d;
    size_t len;
    char *data = mx_inrec_encode(&r, &len);

    CHECK(data != NULL);
    CHECK(mx_inrec_decode(data, len, &d) == 0);
    CHECK(d.kind == MX_KIND_MESSAGE);
    CHECK_STR(d.path, "message/chat/");
    CHECK(d.type == NULL && d.show == NULL && d.status == NULL);
    CHECK_STR(d.id, "");
    CHECK_STR(d.body, "x < y\ny");
    CHECK_STR(d.stanza, "<message/>");
    mx_inrec_clear(&d);
    CHECK(mx_inrec_decode(data, len - 1, &d) == -1 && d.name == NULL);
    CHECK(mx_inrec_decode("MX1 1\nxx", 9, &d) == -1);
    free(data);
    r.kind = 3; /* two kinds at once: no stanza's */
    data = mx_inrec_encode(&r, &len);
    CHECK(data != NULL && mx_inrec_decode(data, len, &d) == -1);
    free(data);
}

/* One encoding of the kinds: the names XMPPInboundServices takes (also
 * App Engine's xmpp_ ones) and XMPP_KIND says, and the bits of the set */
static void test_kinds(void)
{
    static const char *const names[] = {
        "message", "error", "subscribe", "presence"
    };
    int i, all = 0, k;

    for (i = 0; i < 4; i++) {
        char xmpp[32];

        k = mx_inbound_kind_of(names[i]);
        CHECK(k != 0 && (k & all) == 0 && (k & (k - 1)) == 0);
        CHECK_STR(mx_inbound_kind_name(k), names[i]);
        snprintf(xmpp, sizeof(xmpp), "XMPP_%s", names[i]);
        CHECK(mx_inbound_kind_of(xmpp) == k);
        all |= k;
    }
    CHECK(mx_inbound_kind_of("MESSAGE") == MX_KIND_MESSAGE);
    CHECK(mx_inbound_kind_of("none") == 0 && mx_inbound_kind_of("") == 0);
    CHECK(mx_inbound_kind_of("xmpp_") == 0);
    CHECK(mx_inbound_kind_name(0) == NULL);
    CHECK(mx_inbound_kind_name(all) == NULL);
    CHECK(mx_inbound_kind_name(0x10) == NULL);
}

/* One sender's records run one after the other in order; another's run
 * beside them; a retry holds up only its own sender; the bound moves
 * only over records done without a gap. */
static void test_inq_order(void)
{
    mx_inq *q = mx_inq_new(4, 0, 0);
    int items[5];
    mx_inq_seq s;
    long long wake;

    CHECK(mx_inq_offer(q, 1, "a@x", &items[0]) == 1);
    CHECK(mx_inq_offer(q, 2, "a@x", &items[1]) == 1);
    CHECK(mx_inq_offer(q, 3, "b@x", &items[2]) == 1);
    CHECK(mx_inq_offer(q, 4, "a@x", &items[3]) == 1);
    CHECK(!mx_inq_room(q) && mx_inq_offer(q, 5, "c@x", &items[4]) == -1);
    CHECK(mx_inq_pick(q, 0, &s, NULL) == &items[0] && s == 1);
    CHECK(mx_inq_pick(q, 0, &s, NULL) == &items[2] && s == 3);
    CHECK(mx_inq_pick(q, 0, &s, &wake) == NULL && wake == 0);
    CHECK(mx_inq_count(q).running == 2);
    CHECK(mx_inq_done(q, 3) && mx_inq_advance(q) == 0);
    CHECK(mx_inq_retry(q, 1, 100));
    CHECK(mx_inq_pick(q, 50, &s, &wake) == NULL && wake == 100);
    CHECK(mx_inq_pick(q, 100, &s, NULL) == &items[0] && s == 1);
    CHECK(mx_inq_done(q, 1) && mx_inq_advance(q) == 1);
    CHECK(mx_inq_pick(q, 100, &s, NULL) == &items[1] && s == 2);
    CHECK(mx_inq_done(q, 2) && mx_inq_advance(q) == 3);
    CHECK(!mx_inq_done(q, 2)); /* not twice */
    CHECK(mx_inq_count(q).window == 1 && mx_inq_room(q));
    CHECK(mx_inq_pick(q, 100, &s, NULL) == &items[3] && s == 4);
    CHECK(mx_inq_done(q, 4) && mx_inq_advance(q) == 4);
    CHECK(mx_inq_count(q).window == 0);
    mx_inq_free(q);
}

/* Fair: a sender whose handler hangs takes its cap of places and no
 * more; its later records are deferred (only their numbers kept), the
 * other senders' records behind them come in and run, the bound waits
 * at the first deferred record, and the deferred ones come back in
 * their order once the sender has room again. */
static void test_inq_fair(void)
{
    mx_inq *q = mx_inq_new(8, 2, 5);
    int items[16];
    mx_inq_seq s, r;
    int i, w;

    CHECK(mx_inq_offer(q, 1, "a@x", &items[1]) == 1);
    CHECK(mx_inq_offer(q, 2, "a@x", &items[2]) == 1);
    for (i = 3; i <= 6; i++) /* a is at its cap: deferred */
        CHECK(mx_inq_offer(q, (mx_inq_seq)i, "a@x", &items[i]) == 0);
    CHECK(mx_inq_count(q).deferred == 4 && mx_inq_count(q).window == 2);
    CHECK(mx_inq_offer(q, 7, "b@x", &items[7]) == 1);
    CHECK(mx_inq_offer(q, 8, "b@x", &items[8]) == 1);
    CHECK(mx_inq_offer(q, 9, "c@x", &items[9]) == 1);
    CHECK(mx_inq_pick(q, 0, &s, NULL) == &items[1] && s == 1); /* hangs */
    CHECK(mx_inq_pick(q, 0, &s, NULL) == &items[7] && s == 7);
    CHECK(mx_inq_pick(q, 0, &s, NULL) == &items[9] && s == 9);
    CHECK(mx_inq_pick(q, 0, &s, NULL) == NULL);
    /* b and c go on while a's first hangs; the bound does not move */
    CHECK(mx_inq_done(q, 7) && mx_inq_done(q, 9) && mx_inq_advance(q) == 0);
    CHECK(mx_inq_pick(q, 0, &s, NULL) == &items[8] && s == 8);
    CHECK(mx_inq_done(q, 8) && mx_inq_advance(q) == 0);
    CHECK(mx_inq_rescan(q) == 0); /* a has no room */
    /* a's later records are deferred even with room, to keep its order;
     * the fifth deferral is the last one with room */
    CHECK(mx_inq_room(q));
    CHECK(mx_inq_offer(q, 10, "a@x", &items[10]) == 0);
    CHECK(!mx_inq_room(q)); /* a sixth deferral would have none */
    CHECK(mx_inq_done(q, 1) && mx_inq_advance(q) == 1);
    CHECK(mx_inq_rescan(q) == 0); /* one undone: above its low mark */
    CHECK(mx_inq_pick(q, 0, &s, NULL) == &items[2] && s == 2);
    CHECK(mx_inq_done(q, 2) && mx_inq_advance(q) == 2);
    /* a has room: read again from record 3, up to its cap */
    CHECK(mx_inq_rescan(q) == 3);
    for (r = 3, i = 0; (w = mx_inq_wanted(q, r)) >= 0 && r < 20; r++)
        if (w == 1)
            i += mx_inq_readd(q, r, "a@x", &items[r]);
    mx_inq_rescan_end(q);
    CHECK(i == 2 && r == 5 && mx_inq_count(q).deferred == 3);
    CHECK(mx_inq_wanted(q, 5) == -1); /* no rescan running */
    CHECK(mx_inq_pick(q, 0, &s, NULL) == &items[3] && s == 3);
    CHECK(mx_inq_done(q, 3) && mx_inq_advance(q) == 3);
    CHECK(mx_inq_pick(q, 0, &s, NULL) == &items[4] && s == 4);
    CHECK(mx_inq_done(q, 4) && mx_inq_advance(q) == 4);
    /* a record that cannot be read again is dropped, not waited for */
    CHECK(mx_inq_rescan(q) == 5);
    CHECK(mx_inq_wanted(q, 5) == 1 && mx_inq_readd(q, 5, "a@x", NULL) == 0);
    CHECK(mx_inq_wanted(q, 6) == 1 && mx_inq_readd(q, 6, "a@x", &items[6]));
    CHECK(mx_inq_wanted(q, 7) == 0 && mx_inq_wanted(q, 9) == 0);
    CHECK(mx_inq_wanted(q, 10) == 1);
    CHECK(mx_inq_readd(q, 10, "a@x", &items[10]) == 1);
    mx_inq_rescan_end(q);
    CHECK(mx_inq_count(q).deferred == 0 && mx_inq_advance(q) == 5);
    CHECK(mx_inq_pick(q, 0, &s, NULL) == &items[6] && s == 6);
    CHECK(mx_inq_done(q, 6) && mx_inq_advance(q) == 9);
    CHECK(mx_inq_pick(q, 0, &s, NULL) == &items[10] && s == 10);
    CHECK(mx_inq_done(q, 10) && mx_inq_advance(q) == 10);
    CHECK(mx_inq_count(q).window == 0 && mx_inq_room(q));
    mx_inq_free(q);
}

/* A rescan that fills the window leaves the senders it could not serve
 * due: they are read again once a place is free, even when no sender
 * with deferred records finishes anything. */
static void test_inq_rescan_full(void)
{
    mx_inq *q = mx_inq_new(3, 1, 16);
    int items[8];
    mx_inq_seq s, r;
    int w, got = 0;

    CHECK(mx_inq_offer(q, 1, "a@x", &items[1]) == 1);
    CHECK(mx_inq_offer(q, 2, "a@x", &items[2]) == 0);
    CHECK(mx_inq_offer(q, 3, "d@x", &items[3]) == 1);
    CHECK(mx_inq_offer(q, 4, "d@x", &items[4]) == 0);
    CHECK(mx_inq_offer(q, 5, "b@x", &items[5]) == 1);
    CHECK(mx_inq_pick(q, 0, &s, NULL) == &items[1]);
    CHECK(mx_inq_pick(q, 0, &s, NULL) == &items[3]);
    CHECK(mx_inq_pick(q, 0, &s, NULL) == &items[5]);
    CHECK(mx_inq_done(q, 1) && mx_inq_done(q, 3));
    CHECK(mx_inq_offer(q, 6, "c@x", &items[6]) == 1); /* one place left */
    CHECK(mx_inq_rescan(q) == 2);
    for (r = 2; (w = mx_inq_wanted(q, r)) >= 0 && r < 10; r++)
        if (w == 1)
            got += mx_inq_readd(q, r, r == 2 ? "a@x" : "d@x", &items[r]);
    mx_inq_rescan_end(q);
    CHECK(got == 1 && mx_inq_count(q).deferred == 1); /* d's waits */
    CHECK(mx_inq_rescan(q) == 0);
    CHECK(mx_inq_done(q, 5)); /* b has nothing deferred: a place is free */
    CHECK(mx_inq_rescan(q) == 4);
    CHECK(mx_inq_wanted(q, 4) == 1 && mx_inq_readd(q, 4, "d@x", &items[4]));
    mx_inq_rescan_end(q);
    CHECK(mx_inq_count(q).deferred == 0);
    mx_inq_free(q);
}

int main(void)
{
    mx_send_init();
    test_multipart_delimiters();
    test_multipart_large();
    test_xml_text();
    test_utf8_prefix();
    test_stanza_problem();
    test_inrec();
    test_kinds();
    test_inq_order();
    test_inq_fair();
    test_inq_rescan_full();
    return UNIT_DONE();
}
