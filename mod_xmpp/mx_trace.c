/* SPDX-License-Identifier: Apache-2.0 */
/* mx_trace: see mx_trace.h */
#include <string.h>

#include "mx_trace.h"

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

static int digit(char c, int hex)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (hex && c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (hex && c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The reference at s[0..end) (s[0] is '&') as the character it stands
 * for, into c (4 bytes): its length in s, 0 when s starts none. */
static size_t xml_ref(const char *s, const char *end, char *c, size_t *clen)
{
    static const struct { const char *ref; char c; } named[] = {
        { "&lt;", '<' }, { "&gt;", '>' }, { "&amp;", '&' },
        { "&quot;", '"' }, { "&apos;", '\'' }, { NULL, 0 }
    };
    const char *semi = memchr(s, ';', (size_t)(end - s) < 12
                                      ? (size_t)(end - s) : 12);
    unsigned long v = 0;
    const char *p;
    int i, hex, d;

    if (!semi)
        return 0;
    for (i = 0; named[i].ref; i++)
        if ((size_t)(semi + 1 - s) == strlen(named[i].ref)
            && !memcmp(s, named[i].ref, strlen(named[i].ref))) {
            c[0] = named[i].c;
            *clen = 1;
            return strlen(named[i].ref);
        }
    if (semi - s < 3 || s[1] != '#')
        return 0;
    hex = s[2] == 'x';
    if (s + 2 + hex == semi)
        return 0;
    for (p = s + 2 + hex; p < semi; p++) {
        if ((d = digit(*p, hex)) < 0)
            return 0;
        v = v * (hex ? 16 : 10) + (unsigned long)d;
    }
    if (v == 0 || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *clen = utf8_put(v, c);
    return (size_t)(semi + 1 - s);
}

/* n, or less so that buf[0..n) does not end inside a UTF-8 sequence */
static size_t whole_chars(const char *buf, size_t n)
{
    size_t i = n, need;
    unsigned char lead;

    while (i > 0 && n - i < 3 && ((unsigned char)buf[i - 1] & 0xC0) == 0x80)
        i--;
    if (i == 0)
        return n; /* no UTF-8: cut where it is */
    lead = (unsigned char)buf[i - 1];
    need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    return n - (i - 1) < need ? i - 1 : n;
}

size_t mx_trace_unescape(const char *s, size_t len, char *buf, size_t size)
{
    const char *end = s + len;
    size_t n = 0, used, clen;
    char c[4];

    if (size == 0)
        return 0;
    while (s < end) {
        used = *s == '&' ? xml_ref(s, end, c, &clen) : 0;
        if (!used) {
            c[0] = *s;
            clen = used = 1;
        }
        if (n + clen >= size)
            break;
        memcpy(buf + n, c, clen);
        n += clen;
        s += used;
    }
    if (s < end) /* cut: not inside a character */
        n = whole_chars(buf, n);
    buf[n] = '\0';
    return n;
}

/* The text in s after `start` up to `stop`, unescaped into buf */
static void field(const char *s, const char *start, const char *stop,
                  char *buf, size_t size)
{
    const char *a = strstr(s, start), *b;

    buf[0] = '\0';
    if (a && (b = strstr(a += strlen(start), stop)) != NULL)
        mx_trace_unescape(a, (size_t)(b - a), buf, size);
}

void mx_trace_fields(const char *stanza, mx_trace_rec *rec)
{
    const char *name = stanza + (*stanza == '<');
    size_t n = strcspn(name, " \t\r\n/>");

    if (n >= sizeof(rec->kind))
        n = sizeof(rec->kind) - 1;
    memcpy(rec->kind, name, n);
    rec->kind[n] = '\0';
    field(stanza, " to=\"", "\"", rec->peer, sizeof(rec->peer));
    field(stanza, "<body>", "</body>", rec->text, sizeof(rec->text));
    if (!rec->text[0])
        field(stanza, "<status>", "</status>", rec->text,
              sizeof(rec->text));
}
