/* SPDX-License-Identifier: Apache-2.0 */
/* mx_trace: what the console's recent traffic shows of a stanza sent,
 * taken from its text as queued (mx_send's builders and the queue's
 * checks made it): the element's name, the to attribute, the text of
 * <body> (else of <status>), each as the characters it stands for, XML
 * references replaced, cut to its buffer between two characters.
 * Portable: no httpd, no APR. */
#ifndef MX_TRACE_H
#define MX_TRACE_H

#include <stddef.h>

#define MX_TRACE_KIND 16
#define MX_TRACE_PEER 96
#define MX_TRACE_TEXT 160

typedef struct {
    char kind[MX_TRACE_KIND];
    char peer[MX_TRACE_PEER];
    char text[MX_TRACE_TEXT];
} mx_trace_rec;

/* Fill rec from stanza (NUL-terminated); a part not found is empty. */
void mx_trace_fields(const char *stanza, mx_trace_rec *rec);

/* The text of s[0..len) with its XML references (&lt; &gt; &amp; &quot;
 * &apos; &#N; &#xN;) replaced by what they stand for, into buf (size
 * bytes, NUL-terminated, cut between two characters). What is no valid
 * reference stays as it is. Returns the length written. */
size_t mx_trace_unescape(const char *s, size_t len, char *buf, size_t size);

#endif
