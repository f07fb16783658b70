/* SPDX-License-Identifier: Apache-2.0 */
/* mx_xmltext: see mx_xmltext.h */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mx_xmltext.h"

/* The code point of the UTF-8 sequence at s (at most len bytes) and its
 * length in *n; -1 when the bytes are not UTF-8 (RFC 3629: the shortest
 * form only, no surrogates, at most U+10FFFF). */
static long utf8_decode(const unsigned char *s, size_t len, size_t *n)
{
    static const unsigned long min[] = { 0, 0, 0x80, 0x800, 0x10000 };
    unsigned long cp;
    size_t i;

    if (s[0] < 0x80)
        return *n = 1, (long)s[0];
    if (s[0] >= 0xC0 && s[0] <= 0xDF)
        *n = 2, cp = s[0] & 0x1Fu;
    else if (s[0] >= 0xE0 && s[0] <= 0xEF)
        *n = 3, cp = s[0] & 0x0Fu;
    else if (s[0] >= 0xF0 && s[0] <= 0xF4)
        *n = 4, cp = s[0] & 0x07u;
    else
        return -1;
    if (*n > len)
        return -1;
    for (i = 1; i < *n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return -1;
        cp = (cp << 6) | (s[i] & 0x3Fu);
    }
    if (cp < min[*n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return -1;
    return (long)cp;
}

const char *mx_xml_text_problem(const char *str, size_t len, char *why,
                                size_t why_size)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0, n = 1;
    long cp;

    while (i < len) {
        cp = utf8_decode(s + i, len - i, &n);
        if (cp < 0) {
            snprintf(why, why_size, "byte %zu (0x%02x) is not valid UTF-8",
                     i, s[i]);
            return why;
        }
        if ((cp < 0x20 && cp != '\t' && cp != '\n' && cp != '\r')
            || cp == 0xFFFE || cp == 0xFFFF) {
            snprintf(why, why_size, "byte %zu is U+%04lX, a character XML "
                     "does not allow", i, (unsigned long)cp);
            return why;
        }
        i += n;
    }
    return NULL;
}

size_t mx_utf8_cut(const char *str, size_t len, size_t max)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t cut = max;

    if (len <= max)
        return len;
    /* back from the cut over continuation bytes to the start of the
     * character it would split; at most three in UTF-8, so text that is
     * not UTF-8 is cut where it is */
    while (cut > 0 && max - cut < 3 && (s[cut] & 0xC0) == 0x80)
        cut--;
    return (s[cut] & 0xC0) == 0x80 ? max : cut;
}

const char *mx_xml_ref(char c, int attr)
{
    switch (c) {
    case '&':  return "&amp;";
    case '<':  return "&lt;";
    case '>':  return "&gt;";
    case '"':  return "&quot;";
    case '\'': return "&apos;";
    case '\r': return "&#13;";
    case '\n': return attr ? "&#10;" : NULL;
    case '\t': return attr ? "&#9;" : NULL;
    default:   return NULL;
    }
}

char *mx_xml_escape_dup(const char *s, int attr)
{
    const char *p, *ref;
    size_t n = 1;
    char *out, *o;

    for (p = s; *p; p++)
        n += (ref = mx_xml_ref(*p, attr)) ? strlen(ref) : 1;
    if (!(out = malloc(n)))
        return NULL;
    for (p = s, o = out; *p; p++) {
        if ((ref = mx_xml_ref(*p, attr)) != NULL)
            o += strlen(strcpy(o, ref));
        else
            *o++ = *p;
    }
    *o = '\0';
    return out;
}

void mx_sbuf_put(mx_sbuf *b, const char *s, size_t n)
{
    char *nb;
    size_t nsize;

    if (b->failed)
        return;
    if (b->len + n + 1 > b->size) {
        nsize = b->size ? b->size : 256;
        while (nsize < b->len + n + 1)
            nsize *= 2;
        if (!(nb = realloc(b->buf, nsize))) {
            b->failed = 1;
            return;
        }
        b->buf = nb;
        b->size = nsize;
    }
    memcpy(b->buf + b->len, s, n);
    b->len += n;
    b->buf[b->len] = '\0';
}

char *mx_sbuf_done(mx_sbuf *b)
{
    if (b->failed) {
        free(b->buf);
        b->buf = NULL;
        return NULL;
    }
    return b->buf;
}
