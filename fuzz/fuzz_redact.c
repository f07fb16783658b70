/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_redact: mx_redact on any log line (libstrophe logs every stanza,
 * the server's and the peer's text included) and any secret.
 * Properties: the output is NUL-terminated inside the buffer; the secret
 * occurs nowhere in it (when it shares no byte with the marker, so that
 * the marker itself cannot spell it); a line without '<' and without the
 * secret is copied unchanged (up to the buffer's size); the text of a
 * complete <auth>...</auth> is gone.
 *
 * Input: byte 0: output buffer size (1-256, or 4096 when 0); then the
 * line, 0x01, the secret. */
#include "fuzz_common.h"

#include "mx_redact.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *f[2], *out, *line;
    size_t lens[2], n, outsize;

    if (size < 1)
        return 0;
    outsize = data[0] ? data[0] : 4096;
    n = fields_split(data + 1, size - 1, f, lens, 2);
    out = malloc(outsize);
    if (!out)
        abort();
    /* ASan guards the end of out: nothing may be written past outsize */
    FUZZ_ASSERT(mx_redact(f[0], n > 1 ? f[1] : NULL, out, outsize) == out);
    FUZZ_ASSERT(memchr(out, '\0', outsize) != NULL);

    if (n > 1 && *f[1] && !strpbrk(f[1], "[redact]")) {
        FUZZ_ASSERT(strstr(out, f[1]) == NULL);
    }
    if (!strchr(f[0], '<') && (n < 2 || !*f[1] || !strstr(f[0], f[1]))) {
        size_t want = strlen(f[0]) < outsize - 1 ? strlen(f[0]) : outsize - 1;

        FUZZ_ASSERT(strlen(out) == want && !memcmp(out, f[0], want));
    }
    free(out);

    /* the line's text as the content of a SASL element, with a big
     * enough buffer: it is replaced, whatever it is */
    if (*f[0] && !strchr(f[0], '<')) {
        size_t ln = strlen(f[0]) + 32;

        line = malloc(ln);
        out = malloc(ln + 32);
        if (!line || !out)
            abort();
        snprintf(line, ln, "<auth>%s</auth>", f[0]);
        mx_redact(line, NULL, out, ln + 32);
        if (strcmp(out, "<auth>[redacted]</auth>") != 0)
            fprintf(stderr, "'%s' became '%s'\n", line, out);
        FUZZ_ASSERT(strcmp(out, "<auth>[redacted]</auth>") == 0);
        free(line);
        free(out);
    }
    fields_free(f, n);
    return 0;
}
