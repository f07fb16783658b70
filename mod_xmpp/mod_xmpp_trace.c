/* SPDX-License-Identifier: Apache-2.0 */
/* mod_xmpp_trace: see mod_xmpp_trace.h. */
#include <stdlib.h>
#include <string.h>

#include "apr_lib.h"
#include "apr_strings.h"
#include "httpd.h"
#include "http_log.h"

#include "mod_xmpp_trace.h"
#include "mx_xmltext.h"

APLOG_USE_MODULE(xmpp);

/* ---- the console's record ---- */

/* Put code point c as UTF-8 at o; its length. */
static size_t utf8_put(unsigned long c, char *o)
{
    if (c < 0x80) {
        o[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        o[0] = (char)(0xC0 | (c >> 6));
        o[1] = (char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        o[0] = (char)(0xE0 | (c >> 12));
        o[1] = (char)(0x80 | ((c >> 6) & 0x3F));
        o[2] = (char)(0x80 | (c & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (c >> 18));
    o[1] = (char)(0x80 | ((c >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((c >> 6) & 0x3F));
    o[3] = (char)(0x80 | (c & 0x3F));
    return 4;
}

/* The reference at s[0..end) (s[0] is '&') as the character it stands
 * for, into c (at least 4 bytes): its length in s, 0 when s starts none
 * (then '&' stands for itself). */
static size_t xml_ref(const char *s, const char *end, char *c, size_t *clen)
{
    static const struct { const char *ref; char c; } named[] = {
        { "&lt;", '<' }, { "&gt;", '>' }, { "&amp;", '&' },
        { "&quot;", '"' }, { "&apos;", '\'' }, { NULL, 0 }
    };
    const char *semi = memchr(s, ';', (size_t)(end - s));
    unsigned long v = 0;
    const char *p;
    int i, hex;

    if (!semi)
        return 0;
    for (i = 0; named[i].ref; i++)
        if ((size_t)(semi + 1 - s) == strlen(named[i].ref)
            && !memcmp(s, named[i].ref, strlen(named[i].ref))) {
            c[0] = named[i].c;
            *clen = 1;
            return strlen(named[i].ref);
        }
    if (s[1] != '#')
        return 0;
    hex = s[2] == 'x';
    p = s + 2 + hex;
    if (p == semi || semi - p > 8)
        return 0;
    for (; p < semi; p++) {
        if (hex ? !apr_isxdigit(*p) : !apr_isdigit(*p))
            return 0;
        v = v * (hex ? 16 : 10)
            + (unsigned long)(apr_isdigit(*p) ? *p - '0'
                                              : apr_tolower(*p) - 'a' + 10);
    }
    if (v == 0 || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *clen = utf8_put(v, c);
    return (size_t)(semi + 1 - s);
}

/* The text in s after `start` up to `stop`, with its XML references
 * replaced by what they stand for, into buf (size bytes, cut between two
 * characters); empty when start or stop is missing. */
static void field(const char *s, const char *start, const char *stop,
                  char *buf, size_t size)
{
    const char *a = strstr(s, start), *b;
    size_t n = 0, used, clen;
    char c[4];

    buf[0] = '\0';
    if (!a || !(b = strstr(a += strlen(start), stop)))
        return;
    while (a < b) {
        used = *a == '&' ? xml_ref(a, b, c, &clen) : 0;
        if (!used) {
            c[0] = *a;
            clen = used = 1;
        }
        if (n + clen >= size)
            break;
        memcpy(buf + n, c, clen);
        n += clen;
        a += used;
    }
    buf[mx_utf8_cut(buf, n, n)] = '\0';
}

void mx_trace_sent(mx_app *app, const char *stanza, int subscribers)
{
    char kind[16], peer[96], text[160];
    size_t n = strcspn(stanza + (*stanza == '<'), " \t\r\n/>");

    apr_cpystrn(kind, stanza + (*stanza == '<'),
                n + 1 < sizeof(kind) ? n + 1 : sizeof(kind));
    field(stanza, " to=\"", "\"", peer, sizeof(peer));
    field(stanza, "<body>", "</body>", text, sizeof(text));
    if (!text[0])
        field(stanza, "<status>", "</status>", text, sizeof(text));
    mx_traffic_add(app->shared, '>', kind,
                   subscribers ? "(subscribers)" : peer, text);
}

/* ---- XMPPDevMode ---- */

static void dev_line(mx_app *app, const char *label, const char *value)
{
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, app->s, "    %s", label);
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, app->s, "       %s",
                 value ? value : "");
}

/* A text message's children are exactly <body> and the origin-id that
 * mx_message_stanza adds; anything else was given as raw XML. Returns
 * the raw children as text (malloc'd), or NULL for a text message. */
static char *raw_children(xmpp_ctx_t *ctx, xmpp_stanza_t *st)
{
    xmpp_stanza_t *c;
    char *buf, *all = NULL, *grown;
    size_t len, total = 0;
    int bodies = 0, others = 0;

    for (c = xmpp_stanza_get_children(st); c; c = xmpp_stanza_get_next(c)) {
        const char *n = xmpp_stanza_get_name(c);

        if (!n || !strcmp(n, "origin-id"))
            continue;
        if (!strcmp(n, "body") && xmpp_stanza_get_children(c)
            && xmpp_stanza_is_text(xmpp_stanza_get_children(c))
            && !xmpp_stanza_get_next(xmpp_stanza_get_children(c)))
            bodies++;
        else
            others++;
    }
    if (others == 0 && bodies <= 1)
        return NULL;
    for (c = xmpp_stanza_get_children(st); c; c = xmpp_stanza_get_next(c)) {
        const char *n = xmpp_stanza_get_name(c);

        if ((n && !strcmp(n, "origin-id"))
            || xmpp_stanza_to_text(c, &buf, &len) != XMPP_EOK)
            continue;
        if ((grown = realloc(all, total + len + 1)) != NULL) {
            all = grown;
            memcpy(all + total, buf, len);
            total += len;
            all[total] = '\0';
        }
        xmpp_free(ctx, buf);
    }
    return all;
}

/* Log a stanza the way App Engine's development server logged sends. */
void mx_trace_dev_send(mx_app *app, xmpp_ctx_t *ctx, const char *text)
{
    xmpp_stanza_t *st = xmpp_stanza_new_from_string(ctx, text);
    const char *name = st ? xmpp_stanza_get_name(st) : NULL;
    const char *type = st ? xmpp_stanza_get_type(st) : NULL;
    xmpp_stanza_t *child;
    char *body;

    if (!name) {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, app->s,
                     "Sending an XMPP stanza: %s", text);
    }
    else if (!strcmp(name, "message")) {
        char *raw = raw_children(ctx, st);

        body = raw ? NULL : xmpp_message_get_body(st);
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, app->s,
                     "Sending an XMPP Message:");
        dev_line(app, "From:", xmpp_stanza_get_from(st));
        dev_line(app, "Body:", raw ? raw : body);
        dev_line(app, "Type:", type ? type : "chat");
        dev_line(app, "Raw Xml:", raw ? "True" : "False");
        dev_line(app, "To JIDs:", xmpp_stanza_get_to(st));
        if (body)
            xmpp_free(ctx, body);
        free(raw);
    }
    else if (type && !strcmp(type, "subscribe")) {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, app->s,
                     "Sending an XMPP Invite:");
        dev_line(app, "From:", xmpp_stanza_get_from(st));
        dev_line(app, "To:", xmpp_stanza_get_to(st));
    }
    else {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, app->s,
                     "Sending an XMPP Presence:");
        dev_line(app, "From:", xmpp_stanza_get_from(st));
        dev_line(app, "To:", xmpp_stanza_get_to(st) ? xmpp_stanza_get_to(st)
                                                  : "subscribers");
        dev_line(app, "Type:", type ? type : "available");
        child = xmpp_stanza_get_child_by_name(st, "show");
        body = child ? xmpp_stanza_get_text(child) : NULL;
        dev_line(app, "Show:", body);
        if (body)
            xmpp_free(ctx, body);
        child = xmpp_stanza_get_child_by_name(st, "status");
        body = child ? xmpp_stanza_get_text(child) : NULL;
        dev_line(app, "Status:", body);
        if (body)
            xmpp_free(ctx, body);
    }
    if (st)
        xmpp_stanza_release(st);
}

/* ---- the core's log lines ---- */

void mx_trace_core_log(void *baton, void *ctx, int level, const char *msg)
{
    mx_app *app = ctx;

    ap_log_error(APLOG_MARK, level, 0, app ? app->s : NULL, "%s", msg);
}
