/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_multipart: what an inbound stanza becomes as a request (mx_inbound):
 * the multipart/form-data body, the command split, the route, and the
 * XML-escaped error answer. The values are the sender's bytes.
 * Properties: the boundary occurs in the body exactly once per part plus
 * once in the close delimiter, so no value can end its part early or
 * forge another; each part parses back to its value; the command split
 * trims; an error answer is well-formed XML whose attributes and text
 * read back as given.
 *
 * Input: fields separated by 0x01: selector, then up to 7 values. */
#include "fuzz_common.h"

#include "mx_inbound.h"
#include "mx_jid.h"
#include "mx_xmltext.h"

#define NF 8

static const char *const names[] = { "from", "to", "body", "show",
                                     "status", "stanza", "extra" };

static size_t count_of(const char *hay, size_t hlen, const char *needle)
{
    size_t n = 0, nlen = strlen(needle), i;

    for (i = 0; nlen && i + nlen <= hlen; i++)
        if (!memcmp(hay + i, needle, nlen))
            n++;
    return n;
}

static void check_multipart(char **f, size_t *lens, size_t n, unsigned sel)
{
    mx_form_field fields[NF];
    char boundary[80], delim[90];
    size_t i, nf = 0, parts = 0, len = 0, dlen;
    const char *p, *end, *hdr_end;
    char *body;

    for (i = 1; i < n; i++, nf++) {
        fields[nf].name = names[nf];
        /* every third selector bit drops a value: a NULL field is skipped */
        fields[nf].value = (sel >> nf) & 1 ? NULL : f[i];
        fields[nf].len = lens[i];
        fields[nf].content_type = nf == 5 ? "text/xml" : NULL;
        parts += fields[nf].value != NULL;
    }
    body = mx_multipart(fields, nf, boundary, sizeof(boundary), &len);
    FUZZ_ASSERT(body != NULL);
    dlen = strlen(boundary);
    FUZZ_ASSERT(dlen > 0 && dlen <= 70); /* RFC 2046 */
    for (i = 0; i < dlen; i++)
        FUZZ_ASSERT(strchr("0123456789abcdefghijklmnopqrstuvwxyz"
                           "ABCDEFGHIJKLMNOPQRSTUVWXYZ'()+_,-./:=?",
                           boundary[i]) != NULL);
    FUZZ_ASSERT(count_of(body, len, boundary) == parts + 1);
    snprintf(delim, sizeof(delim), "--%s--\r\n", boundary);
    FUZZ_ASSERT(len >= strlen(delim)
                && !memcmp(body + len - strlen(delim), delim,
                           strlen(delim)));
    /* parse it back: "--B\r\n" headers "\r\n\r\n" value "\r\n" ... */
    snprintf(delim, sizeof(delim), "--%s", boundary);
    p = body;
    end = body + len;
    for (i = 0; i < nf; i++) {
        if (!fields[i].value)
            continue;
        FUZZ_ASSERT((size_t)(end - p) > strlen(delim)
                    && !memcmp(p, delim, strlen(delim)));
        p += strlen(delim);
        FUZZ_ASSERT(p[0] == '\r' && p[1] == '\n');
        hdr_end = NULL;
        {
            const char *q;

            for (q = p; q + 4 <= end; q++)
                if (!memcmp(q, "\r\n\r\n", 4)) {
                    hdr_end = q;
                    break;
                }
        }
        FUZZ_ASSERT(hdr_end != NULL);
        FUZZ_ASSERT(count_of(p, (size_t)(hdr_end - p), "name=\"")
                    == 1);
        p = hdr_end + 4;
        FUZZ_ASSERT((size_t)(end - p) >= fields[i].len + 2);
        FUZZ_ASSERT(!memcmp(p, fields[i].value, fields[i].len));
        p += fields[i].len;
        FUZZ_ASSERT(p[0] == '\r' && p[1] == '\n');
        p += 2;
    }
    free(body);
}

static int is_space(char c)
{
    return c && strchr(" \t\r\n\f\v", c) != NULL;
}

static void check_command(const char *s)
{
    char *cmd = NULL, *arg = NULL;
    size_t n;

    FUZZ_ASSERT(mx_inbound_command(s, &cmd, &arg) == 0);
    FUZZ_ASSERT(arg != NULL);
    FUZZ_ASSERT((cmd != NULL) == (s[0] == '/' || s[0] == '\\'));
    n = strlen(arg);
    FUZZ_ASSERT(!n || (!is_space(arg[0]) && !is_space(arg[n - 1])));
    if (cmd) {
        FUZZ_ASSERT(!strchr(cmd, ' '));
        n = strlen(cmd);
        FUZZ_ASSERT(!n || (!is_space(cmd[0]) && !is_space(cmd[n - 1])));
    }
    free(cmd);
    free(arg);
}

static void check_route(const char *name, const char *type)
{
    const char *path = NULL;
    int kind = 0;

    if (mx_inbound_route(name, type, 1, &path, &kind) != 0)
        return;
    FUZZ_ASSERT(path && *path && path[strlen(path) - 1] == '/');
    FUZZ_ASSERT(path[0] != '/' && !strstr(path, ".."));
    FUZZ_ASSERT(kind == MX_KIND_MESSAGE || kind == MX_KIND_ERROR
                || kind == MX_KIND_SUBSCRIBE || kind == MX_KIND_PRESENCE);
}

/* Escaped as an attribute value (the stricter rule: also " ' and
 * whitespace as references), the text read back by an XML parser is the
 * text */
static void check_escape(const char *s)
{
    char *e = mx_xml_escape_dup(s, 1), *doc;
    xmlDocPtr d;
    size_t n;

    FUZZ_ASSERT(e != NULL);
    FUZZ_ASSERT(!strpbrk(e, "<>\"'"));
    if (mx_utf8_valid_xml(s, strlen(s))) {
        n = strlen(e) + 16;
        doc = malloc(n);
        if (!doc)
            abort();
        snprintf(doc, n, "<a>%s</a>", e);
        d = fuzz_xml_parse(doc, strlen(doc));
        FUZZ_ASSERT(d != NULL);
        /* a parser turns CR LF and lone CR into LF: compare without CR */
        if (!strchr(s, '\r'))
            FUZZ_ASSERT(fuzz_xml_value_is(xmlDocGetRootElement(d), NULL, s));
        xmlFreeDoc(d);
        free(doc);
    }
    free(e);
}

static void check_error_stanza(char **f, size_t n)
{
    const char *from = n > 1 ? f[1] : NULL, *to = n > 2 ? f[2] : NULL;
    const char *id = n > 3 ? f[3] : NULL, *text = n > 4 ? f[4] : NULL;
    char *st;
    xmlDocPtr d;

    /* what the holder gets from libstrophe is parsed XML: valid chars */
    if ((from && !mx_utf8_valid_xml(from, strlen(from)))
        || (to && !mx_utf8_valid_xml(to, strlen(to)))
        || (id && !mx_utf8_valid_xml(id, strlen(id)))
        || (text && !mx_utf8_valid_xml(text, strlen(text))))
        return;
    st = mx_error_stanza("message", from, to, id, "cancel",
                         "service-unavailable", text);
    FUZZ_ASSERT(st != NULL);
    d = fuzz_xml_parse(st, strlen(st));
    if (!d)
        fprintf(stderr, "not well-formed: %s\n", st);
    FUZZ_ASSERT(d != NULL);
    if (id && !strpbrk(id, "\t\r\n"))
        FUZZ_ASSERT(fuzz_xml_value_is(xmlDocGetRootElement(d), "id", id));
    xmlFreeDoc(d);
    free(st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *f[NF];
    size_t lens[NF], n;
    unsigned sel;

    fuzz_xml_init();
    n = fields_split(data, size, f, lens, NF);
    sel = f[0] && lens[0] ? (unsigned char)f[0][0] : 0;
    check_multipart(f, lens, n, sel);
    if (n > 1) {
        check_command(f[1]);
        check_escape(f[1]);
    }
    check_route(n > 1 ? f[1] : "message", n > 2 ? f[2] : NULL);
    check_error_stanza(f, n);
    fields_free(f, n);
    return 0;
}
