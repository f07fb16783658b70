/* SPDX-License-Identifier: Apache-2.0 */
/* mx_jid: see mx_jid.h */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <strings.h>

#include <idn-free.h>
#include <idna.h>
#include <stringprep.h>

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

/* The part, NUL-terminated, prepared by libidn's stringprep profile into a
 * malloc'd *out. Unassigned code points are allowed (flags 0), as servers
 * do: the tables are Unicode 3.2 and would refuse every newer character,
 * emoji included. Returns NULL, or why the part is refused. */
static const char *prep(const char *p, size_t len, const char *profile,
                        char **out, const char *why)
{
    char in[MX_JID_PART_MAX + 1];
    int rc;

    *out = NULL;
    memcpy(in, p, len);
    in[len] = '\0';
    rc = stringprep_profile(in, out, profile, 0);
    if (rc == STRINGPREP_MALLOC_ERROR)
        return "out of memory checking the address";
    if (rc != STRINGPREP_OK) {
        *out = NULL;
        return why;
    }
    return NULL;
}

/* Check the part with a profile; what it maps the part to must still be a
 * part (not empty, not too long). */
static const char *prep_check(const char *p, size_t len, const char *profile,
                              const char *why)
{
    char *out;
    const char *err = prep(p, len, profile, &out, why);
    size_t n;

    if (err)
        return err;
    n = strlen(out);
    idn_free(out);
    return (n == 0 || n > MX_JID_PART_MAX) ? why : NULL;
}

/* 1 when one of the bytes is a C0 control, DEL or (with space) a space */
static int has_control(const char *p, size_t len, int space)
{
    size_t i;

    for (i = 0; i < len; i++)
        if ((unsigned char)p[i] < 0x20 || p[i] == 0x7F
            || (space && p[i] == ' '))
            return 1;
    return 0;
}

/* The first checks of a localpart or a resource, and their reasons */
typedef struct {
    int space;              /* spaces are refused too */
    const char *empty, *too_long, *control;
} part_rule;

static const part_rule local_rule = {
    1, "empty localpart", "localpart longer than 1023 bytes",
    "localpart contains a space or control character"
};
static const part_rule resource_rule = {
    0, "empty resource", "resource longer than 1023 bytes",
    "resource contains a control character"
};

/* Not empty, at most MX_JID_PART_MAX bytes, no control character */
static const char *check_part(const char *p, size_t len, const part_rule *r)
{
    if (len == 0)
        return r->empty;
    if (len > MX_JID_PART_MAX)
        return r->too_long;
    if (has_control(p, len, r->space))
        return r->control;
    return NULL;
}

/* localpart: RFC 7622 forbids these in addition to spaces and controls;
 * nodeprep (what servers apply) decides about the rest of Unicode */
static const char *check_local(const char *p, size_t len)
{
    static const char forbidden[] = "\"&'/:<>@";
    const char *why = check_part(p, len, &local_rule);
    size_t i;

    if (why)
        return why;
    for (i = 0; i < len; i++)
        if (memchr(forbidden, p[i], sizeof(forbidden) - 1))
            return "localpart contains one of \" & ' / : < > @";
    if (!mx_utf8_valid_xml(p, len))
        return "localpart is not valid UTF-8";
    return prep_check(p, len, "Nodeprep",
                      "localpart contains a character nodeprep forbids");
}

/* "[IPv6 address]", as in URIs (RFC 3986 IP-literal, no zone) */
static const char *check_ip6(const char *p, size_t len)
{
    char addr[INET6_ADDRSTRLEN];
    struct in6_addr a;

    if (len < 3 || p[len - 1] != ']' || len - 2 >= sizeof(addr))
        return "bad IPv6 literal domain";
    memcpy(addr, p + 1, len - 2);
    addr[len - 2] = '\0';
    return inet_pton(AF_INET6, addr, &a) == 1 ? NULL
                                               : "bad IPv6 literal domain";
}

/* The ASCII (ACE) form of a host name: letters, digits, '-' (not at either
 * end of a label) and '_' (some private names have it), labels of 1 to 63
 * bytes. */
static const char *check_ace(const char *ace)
{
    size_t n;

    for (;;) {
        n = strspn(ace, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                        "0123456789-_");
        if (n == 0 || n > 63)
            return "domain has a label that is empty or longer than 63 bytes";
        if (ace[0] == '-' || ace[n - 1] == '-')
            return "domain has a label that begins or ends with '-'";
        if (ace[n] == '\0')
            return NULL;
        if (ace[n] != '.')
            return "domain contains a character not allowed in a host name";
        ace += n + 1;
    }
}

/* A host name, internationalized or not: IDNA's ToASCII (nameprep and
 * punycode, from libidn) gives the form DNS would look up, whose labels
 * must then be sane. An IPv4 address is a host name of digits. */
static const char *check_host(const char *p, size_t len)
{
    char in[MX_JID_PART_MAX + 1], *ace = NULL;
    const char *why;
    int rc;

    if (has_control(p, len, 1))
        return "domain contains a space or control character";
    if (!mx_utf8_valid_xml(p, len))
        return "domain is not valid UTF-8";
    if (p[len - 1] == '.') /* servers strip a trailing dot; refuse it */
        return "domain ends with a dot";
    memcpy(in, p, len);
    in[len] = '\0';
    rc = idna_to_ascii_8z(in, &ace, IDNA_ALLOW_UNASSIGNED);
    if (rc == IDNA_MALLOC_ERROR)
        return "out of memory checking the address";
    if (rc != IDNA_SUCCESS)
        why = "domain is not a valid host name";
    else
        why = check_ace(ace);
    if (ace)
        idn_free(ace);
    return why;
}

static const char *check_domain(const char *p, size_t len)
{
    if (len == 0)
        return "empty domain";
    if (len > MX_JID_PART_MAX)
        return "domain longer than 1023 bytes";
    if (p[0] == '[')
        return check_ip6(p, len);
    return check_host(p, len);
}

/* resource: anything printable (spaces too); resourceprep decides about
 * the rest of Unicode */
static const char *check_resource(const char *p, size_t len)
{
    const char *why = check_part(p, len, &resource_rule);

    if (why)
        return why;
    if (!mx_utf8_valid_xml(p, len))
        return "resource is not valid UTF-8";
    return prep_check(p, len, "Resourceprep",
                      "resource contains a character resourceprep forbids");
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

/* Append the part prepared by profile (or, with NULL, with ASCII letters
 * in lower case) to buf at *at; -1 when refused or when it does not fit. */
static int append_prep(char *buf, size_t bufsize, size_t *at, const char *p,
                       size_t len, const char *profile)
{
    char *out = NULL;
    size_t n, i;

    if (profile && prep(p, len, profile, &out, "") != NULL)
        return -1;
    n = out ? strlen(out) : len;
    if (*at + n + 1 > bufsize) {
        idn_free(out);
        return -1;
    }
    memcpy(buf + *at, out ? out : p, n);
    for (i = *at; !out && i < *at + n; i++)
        if (buf[i] >= 'A' && buf[i] <= 'Z')
            buf[i] = (char)(buf[i] - 'A' + 'a');
    idn_free(out);
    *at += n;
    buf[*at] = '\0';
    return 0;
}

/* Nameprep label by label, as IDNA does: its bidi rule is about one
 * label ("n.\u079f" is a valid name, though no one string of it passes) */
static int append_domain_prep(char *buf, size_t bufsize, size_t *at,
                              const char *d, size_t len)
{
    const char *end = d + len, *dot;

    for (;;) {
        dot = memchr(d, '.', (size_t)(end - d));
        if (append_prep(buf, bufsize, at, d, (size_t)((dot ? dot : end) - d),
                        "Nameprep") != 0)
            return -1;
        if (!dot)
            return 0;
        if (append_prep(buf, bufsize, at, ".", 1, NULL) != 0)
            return -1;
        d = dot + 1;
    }
}

int mx_jid_bare_prep(const char *jid, char *buf, size_t bufsize)
{
    mx_jid_parts p;
    size_t at = 0;

    if (mx_jid_parse(jid, &p) != NULL || bufsize == 0)
        return -1;
    if (p.local && (append_prep(buf, bufsize, &at, p.local, p.local_len,
                                "Nodeprep") != 0
                    || append_prep(buf, bufsize, &at, "@", 1, NULL) != 0))
        return -1;
    if (p.domain[0] == '[')
        return append_prep(buf, bufsize, &at, p.domain, p.domain_len, NULL)
               ? -1 : (int)at;
    if (append_domain_prep(buf, bufsize, &at, p.domain, p.domain_len) != 0)
        return -1;
    return (int)at;
}

int mx_jid_lower_bare(const char *jid, char *buf, size_t bufsize)
{
    char *c;

    if (!jid || mx_jid_bare(jid, buf, bufsize) < 0)
        return -1;
    for (c = buf; *c; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c - 'A' + 'a');
    return 0;
}
