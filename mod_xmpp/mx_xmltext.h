/* SPDX-License-Identifier: Apache-2.0 */
/* mx_xmltext: what text can go into a stanza, and what can go into a CGI
 * variable. Portable: no httpd, no APR. */
#ifndef MX_XMLTEXT_H
#define MX_XMLTEXT_H

#include <stddef.h>

/* Is s[0..len) text XML 1.0 allows: valid UTF-8 (no overlong forms, no
 * surrogates, nothing above U+10FFFF) of characters other than NUL, C0
 * controls but TAB, LF and CR, U+FFFE and U+FFFF? A server closes the
 * stream on anything else. Returns NULL, or a description of the first
 * problem and where it is, written into why (why_size bytes). */
const char *mx_xml_text_problem(const char *s, size_t len, char *why,
                                size_t why_size);

/* The one rule of XML escaping in mod_xmpp: the character reference or
 * entity that stands for c in text (attr 0) or in an attribute value
 * (attr 1), or NULL when c stands for itself. & < > " ' always; CR
 * always, and TAB and LF in attribute values, as character references:
 * a parser would normalize them otherwise, and the receiver must get
 * exactly what was sent. */
const char *mx_xml_ref(char c, int attr);

/* s escaped by mx_xml_ref (attr as there), malloc'd; NULL when out of
 * memory. */
char *mx_xml_escape_dup(const char *s, int attr);

/* The length of the longest prefix of s[0..len) of at most max bytes that
 * ends between two UTF-8 sequences (a cut there splits no character). */
size_t mx_utf8_cut(const char *s, size_t len, size_t max);

/* A growing NUL-terminated string. Start from { NULL, 0, 0, 0 }; an
 * allocation failure sets failed and later puts do nothing, so callers
 * check once at the end (mx_sbuf_done). */
typedef struct {
    char *buf;
    size_t len, size;
    int failed;
} mx_sbuf;

/* n bytes of s appended */
void mx_sbuf_put(mx_sbuf *b, const char *s, size_t n);

/* The string (malloc'd, the caller frees it), or NULL after a failure
 * (then freed here). An empty buffer gives NULL too unless something was
 * put: use b->failed to tell. */
char *mx_sbuf_done(mx_sbuf *b);

#endif
