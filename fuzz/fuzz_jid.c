/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_jid: mx_jid on any address a sender or a server can give.
 * Properties: a valid JID splits into parts that put back together are
 * the input; its bare form is valid, bare, and the same bare JID; it
 * makes a presence file name that stays inside presence/. And
 * mx_utf8_valid_xml agrees with a reference decoder written here. */
#include "fuzz_common.h"

#include "mx_jid.h"

/* Reference: XML 1.0 Char production over UTF-8 (RFC 3629), minus
 * U+FFFE/U+FFFF, written from the definitions, not from mx_jid.c */
static int ref_utf8_xml(const unsigned char *s, size_t len)
{
    size_t i = 0, n, k;
    unsigned long cp;

    while (i < len) {
        unsigned char c = s[i];

        if (c < 0x80) { n = 1; cp = c; }
        else if ((c & 0xE0) == 0xC0) { n = 2; cp = c & 0x1F; }
        else if ((c & 0xF0) == 0xE0) { n = 3; cp = c & 0x0F; }
        else if ((c & 0xF8) == 0xF0) { n = 4; cp = c & 0x07; }
        else return 0;
        if (i + n > len)
            return 0;
        for (k = 1; k < n; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800)
            || (n == 4 && cp < 0x10000) || cp > 0x10FFFF)
            return 0; /* overlong or too large */
        if (!(cp == 0x9 || cp == 0xA || cp == 0xD
              || (cp >= 0x20 && cp <= 0xD7FF)
              || (cp >= 0xE000 && cp <= 0xFFFD)
              || (cp >= 0x10000 && cp <= 0x10FFFF)))
            return 0;
        i += n;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *jid = malloc(size + 1), bare[2 * MX_JID_PART_MAX + 2];
    char path[8192], *rebuilt;
    const char *slash;
    mx_jid_parts p;
    size_t n;
    int blen;

    if (!jid)
        abort();
    memcpy(jid, data, size);
    jid[size] = '\0';

    FUZZ_ASSERT(mx_utf8_valid_xml((const char *)data, size)
                == ref_utf8_xml(data, size));

    if (mx_jid_parse(jid, &p) != NULL) {
        FUZZ_ASSERT(!mx_jid_valid(jid));
        FUZZ_ASSERT(mx_jid_bare(jid, bare, sizeof(bare)) == -1);
        FUZZ_ASSERT(!mx_jid_same_bare(jid, jid));
        free(jid);
        return 0;
    }
    n = strlen(jid);
    FUZZ_ASSERT(mx_jid_valid(jid));
    FUZZ_ASSERT(mx_utf8_valid_xml(jid, n));
    FUZZ_ASSERT(p.domain && p.domain_len > 0);
    FUZZ_ASSERT(p.domain_len <= MX_JID_PART_MAX);
    FUZZ_ASSERT(!p.local || (p.local_len > 0 && p.local_len <= MX_JID_PART_MAX));
    FUZZ_ASSERT(!p.resource
                || (p.resource_len > 0 && p.resource_len <= MX_JID_PART_MAX));
    /* nothing of a localpart or domain that could break out of an XML
     * attribute or a file name */
    FUZZ_ASSERT(!p.local || !memchr(p.local, '/', p.local_len));
    FUZZ_ASSERT(!memchr(p.domain, '/', p.domain_len));
    FUZZ_ASSERT(!memchr(p.domain, '@', p.domain_len));

    /* the parts are the input */
    rebuilt = malloc(n + 1);
    if (!rebuilt)
        abort();
    snprintf(rebuilt, n + 1, "%.*s%s%.*s%s%.*s",
             (int)p.local_len, p.local ? p.local : "", p.local ? "@" : "",
             (int)p.domain_len, p.domain, p.resource ? "/" : "",
             (int)p.resource_len, p.resource ? p.resource : "");
    FUZZ_ASSERT(strcmp(rebuilt, jid) == 0);
    free(rebuilt);

    blen = mx_jid_bare(jid, bare, sizeof(bare));
    FUZZ_ASSERT(blen >= 0 && (size_t)blen == strlen(bare));
    slash = strchr(jid, '/');
    FUZZ_ASSERT((size_t)blen == (slash ? (size_t)(slash - jid) : n));
    FUZZ_ASSERT(mx_jid_valid(bare));
    {   /* every valid JID has the form servers normalize it to */
        char prepped[2 * MX_JID_PART_MAX + 2];

        FUZZ_ASSERT(mx_jid_bare_prep(jid, prepped, sizeof(prepped)) > 0);
    }
    FUZZ_ASSERT(mx_jid_same_bare(jid, bare));
    FUZZ_ASSERT(mx_jid_same_bare(bare, jid));
    FUZZ_ASSERT(mx_jid_is_bare_user(bare) == (p.local != NULL));
    FUZZ_ASSERT(!mx_jid_is_bare_user(jid) || !p.resource);

    /* the presence file of this contact is a plain name in presence/ */
    if (mx_presence_path("/d", jid, path, sizeof(path)) == 0) {
        const char *name = path + strlen("/d/presence/");

        FUZZ_ASSERT(strncmp(path, "/d/presence/", 12) == 0);
        FUZZ_ASSERT(*name && !strchr(name, '/'));
        FUZZ_ASSERT(strcmp(name, ".") != 0 && strcmp(name, "..") != 0);
        char prep[2 * MX_JID_PART_MAX + 2];

        /* named by the bare JID as the server normalizes it */
        FUZZ_ASSERT(mx_jid_bare_prep(jid, prep, sizeof(prep)) >= 0);
        FUZZ_ASSERT(strcmp(name, prep) == 0);
    }
    free(jid);
    return 0;
}
