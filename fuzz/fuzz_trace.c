/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_trace: what the console records of a sent stanza (mx_trace).
 * Properties: every field is NUL-terminated within its buffer; the text
 * of unescaping is never longer than its source (no reference is shorter
 * than what it stands for) and, for a source without '&', is a prefix of
 * it; a cut never ends inside a UTF-8 sequence of valid input; escaping
 * with mx_xml_escape_dup and unescaping gives the text back.
 *
 * Input: byte 0: the buffer's size; the rest: the stanza or text. */
#include "fuzz_common.h"

#include "mx_trace.h"
#include "mx_xmltext.h"

static int ends_inside_char(const char *s, size_t n)
{
    size_t i = n;

    while (i > 0 && n - i < 3 && ((unsigned char)s[i - 1] & 0xC0) == 0x80)
        i--;
    if (i == 0)
        return 0;
    unsigned char lead = (unsigned char)s[i - 1];
    size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    return n - (i - 1) < need;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s, buf[256], why[64], *esc;
    size_t len, n, cap;
    mx_trace_rec rec;

    if (size < 1)
        return 0;
    cap = data[0] + 1u;
    len = size - 1;
    s = malloc(len + 1);
    if (!s)
        abort();
    memcpy(s, data + 1, len);
    s[len] = '\0';
    len = strlen(s);
    n = mx_trace_unescape(s, len, buf, cap);
    FUZZ_ASSERT(n < cap && buf[n] == '\0' && strlen(buf) == n);
    FUZZ_ASSERT(n <= len);
    if (!memchr(s, '&', len))
        FUZZ_ASSERT(!memcmp(buf, s, n));
    if (!mx_xml_text_problem(s, len, why, sizeof(why))) {
        FUZZ_ASSERT(!ends_inside_char(buf, n));
        esc = mx_xml_escape_dup(s, data[0] & 1);
        if (!esc)
            abort();
        if (len < sizeof(buf) - 1) {
            n = mx_trace_unescape(esc, strlen(esc), buf, sizeof(buf));
            FUZZ_ASSERT(n <= strlen(esc));
            /* whole when it fits */
            if (n == len)
                FUZZ_ASSERT(!memcmp(buf, s, len));
        }
        free(esc);
    }
    mx_trace_fields(s, &rec);
    FUZZ_ASSERT(memchr(rec.kind, '\0', sizeof(rec.kind)));
    FUZZ_ASSERT(memchr(rec.peer, '\0', sizeof(rec.peer)));
    FUZZ_ASSERT(memchr(rec.text, '\0', sizeof(rec.text)));
    free(s);
    return 0;
}
