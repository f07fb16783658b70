/* mx_jid: see mx_jid.h */
#include <string.h>
#include <strings.h>

#include "mx_jid.h"

/* Length of the UTF-8 sequence at s (at most len bytes), 0 when invalid. */
static size_t utf8_seq(const unsigned char *s, size_t len)
{
    unsigned int cp;
    size_t n, i;

    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xC2 && s[0] <= 0xDF)
        n = 2, cp = s[0] & 0x1F;
    else if (s[0] >= 0xE0 && s[0] <= 0xEF)
        n = 3, cp = s[0] & 0x0F;
    else if (s[0] >= 0xF0 && s[0] <= 0xF4)
        n = 4, cp = s[0] & 0x07;
    else
        return 0;
    if (n > len)
        return 0;
    for (i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    /* overlong forms, surrogates, beyond U+10FFFF, U+FFFE/U+FFFF */
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10FFFF
        || (cp >= 0xD800 && cp <= 0xDFFF) || cp == 0xFFFE || cp == 0xFFFF)
        return 0;
    return n;
}

int mx_utf8_valid_xml(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0, n;

    while (i < len) {
        if (s[i] < 0x20 && s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
            return 0;
        n = utf8_seq(s + i, len - i);
        if (n == 0)
            return 0;
        i += n;
    }
    return 1;
}

/* localpart: RFC 7622 forbids these in addition to spaces and controls */
static const char *check_local(const char *p, size_t len)
{
    static const char forbidden[] = "\"&'/:<>@";
    size_t i;

    if (len == 0)
        return "empty localpart";
    if (len > MX_JID_PART_MAX)
        return "localpart longer than 1023 bytes";
    for (i = 0; i < len; i++) {
        if ((unsigned char)p[i] <= 0x20 || p[i] == 0x7F)
            return "localpart contains a space or control character";
        if (memchr(forbidden, p[i], sizeof(forbidden) - 1))
            return "localpart contains one of \" & ' / : < > @";
    }
    return mx_utf8_valid_xml(p, len) ? NULL : "localpart is not valid UTF-8";
}

static const char *check_domain(const char *p, size_t len)
{
    size_t i, label = 0;

    if (len == 0)
        return "empty domain";
    if (len > MX_JID_PART_MAX)
        return "domain longer than 1023 bytes";
    if (p[0] == '[') /* IPv6 literal */
        return (p[len - 1] == ']' && len > 2) ? NULL : "bad IPv6 literal domain";
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c <= 0x20 || c == 0x7F)
            return "domain contains a space or control character";
        if (strchr("@/\"&'<>:\\", c))
            return "domain contains a character not allowed in a host name";
        if (c == '.') {
            if (label == 0)
                return "domain has an empty label";
            label = 0;
            continue;
        }
        if (++label > 63)
            return "domain label longer than 63 bytes";
    }
    if (label == 0 && len > 1) /* a trailing dot is stripped by servers; refuse it */
        return "domain ends with a dot";
    return mx_utf8_valid_xml(p, len) ? NULL : "domain is not valid UTF-8";
}

static const char *check_resource(const char *p, size_t len)
{
    size_t i;

    if (len == 0)
        return "empty resource";
    if (len > MX_JID_PART_MAX)
        return "resource longer than 1023 bytes";
    for (i = 0; i < len; i++)
        if ((unsigned char)p[i] < 0x20 || p[i] == 0x7F)
            return "resource contains a control character";
    return mx_utf8_valid_xml(p, len) ? NULL : "resource is not valid UTF-8";
}

const char *mx_jid_parse(const char *jid, mx_jid_parts *out)
{
    const char *slash, *at, *dom;
    const char *why;
    mx_jid_parts tmp;

    if (!out)
        out = &tmp;
    memset(out, 0, sizeof(*out));
    if (!jid || !*jid)
        return "empty address";
    slash = strchr(jid, '/');
    /* the localpart ends at the first '@' before the resource */
    at = memchr(jid, '@', slash ? (size_t)(slash - jid) : strlen(jid));
    dom = at ? at + 1 : jid;
    if (at) {
        out->local = jid;
        out->local_len = (size_t)(at - jid);
        if ((why = check_local(out->local, out->local_len)) != NULL)
            return why;
    }
    out->domain = dom;
    out->domain_len = slash ? (size_t)(slash - dom) : strlen(dom);
    if ((why = check_domain(out->domain, out->domain_len)) != NULL)
        return why;
    if (slash) {
        out->resource = slash + 1;
        out->resource_len = strlen(slash + 1);
        if ((why = check_resource(out->resource, out->resource_len)) != NULL)
            return why;
    }
    return NULL;
}

int mx_jid_valid(const char *jid)
{
    return mx_jid_parse(jid, NULL) == NULL;
}

int mx_jid_is_bare_user(const char *jid)
{
    mx_jid_parts p;

    return mx_jid_parse(jid, &p) == NULL && p.local && !p.resource;
}

int mx_jid_bare(const char *jid, char *buf, size_t bufsize)
{
    mx_jid_parts p;
    size_t len;

    if (mx_jid_parse(jid, &p) != NULL)
        return -1;
    len = (p.local ? p.local_len + 1 : 0) + p.domain_len;
    if (len + 1 > bufsize)
        return -1;
    memcpy(buf, p.local ? p.local : p.domain, len);
    buf[len] = '\0';
    return (int)len;
}

int mx_jid_same_bare(const char *a, const char *b)
{
    mx_jid_parts pa, pb;

    if (mx_jid_parse(a, &pa) || mx_jid_parse(b, &pb))
        return 0;
    if (!pa.local != !pb.local || pa.local_len != pb.local_len
        || pa.domain_len != pb.domain_len)
        return 0;
    if (pa.local && memcmp(pa.local, pb.local, pa.local_len) != 0)
        return 0;
    return strncasecmp(pa.domain, pb.domain, pa.domain_len) == 0;
}
