/* SPDX-License-Identifier: Apache-2.0 */
/* mx_item: see mx_item.h */
#include <stdlib.h>
#include <string.h>

#include "mx_item.h"
#include "mx_jid.h"
#include "mx_send.h"

#define ITEM_MAGIC "MX1 "

static const char *const item_kinds[] = { "stanza", "subscribers", NULL };

/* ---- item content ---- */

char *mx_queue_item_make(mx_item_kind kind, const char *stanza,
                         size_t stanza_len, size_t *len)
{
    const char *k;
    size_t klen, head, n;
    char *out;

    if ((unsigned int)kind > MX_ITEM_SUBSCRIBERS || !stanza)
        return NULL;
    k = item_kinds[kind];
    klen = strlen(k);
    head = sizeof(ITEM_MAGIC) - 1 + klen + 1;
    n = head + stanza_len;
    if (!(out = malloc(n + 1)))
        return NULL;
    memcpy(out, ITEM_MAGIC, sizeof(ITEM_MAGIC) - 1);
    memcpy(out + sizeof(ITEM_MAGIC) - 1, k, klen);
    out[head - 1] = '\n';
    memcpy(out + head, stanza, stanza_len);
    out[n] = '\0';
    if (len)
        *len = n;
    return out;
}

int mx_queue_item_parse(const char *data, size_t len, mx_queue_item *item)
{
    const char *k, *nl;
    size_t klen, skip;
    int i;

    if (!data || len < sizeof(ITEM_MAGIC)
        || memcmp(data, ITEM_MAGIC, sizeof(ITEM_MAGIC) - 1) != 0)
        return -1;
    k = data + sizeof(ITEM_MAGIC) - 1;
    if (!(nl = memchr(k, '\n', len - (sizeof(ITEM_MAGIC) - 1))))
        return -1;
    klen = (size_t)(nl - k);
    skip = (size_t)(nl + 1 - data);
    for (i = 0; item_kinds[i]; i++)
        if (strlen(item_kinds[i]) == klen && memcmp(k, item_kinds[i], klen) == 0)
            break;
    if (!item_kinds[i] || skip >= len)
        return -1;
    item->kind = (mx_item_kind)i;
    item->stanza = nl + 1;
    item->stanza_len = len - skip;
    return 0;
}

/* ---- item checks ---- */

static const char *const message_types[] = {
    "chat", "error", "groupchat", "headline", "normal", NULL
};
static const char *const presence_types[] = {
    "unavailable", "probe", "subscribe", "subscribed", "unsubscribe",
    "unsubscribed", "error", NULL
};
static const char *const iq_types[] = {
    "get", "set", "result", "error", NULL
};

/* The start tag at s (well-formed, so quotes pair up): its end, just
 * past '>'; *empty when it is "<.../>". */
static const char *tag_end(const char *s, int *empty)
{
    char q = 0;

    for (s++; *s; s++) {
        if (q)
            q = *s == q ? 0 : q;
        else if (*s == '"' || *s == '\'')
            q = *s;
        else if (*s == '>') {
            *empty = s[-1] == '/';
            return s + 1;
        }
    }
    return NULL;
}

/* 1 when the well-formed XML content s is exactly one element: it starts
 * at s[0] and its end tag is the last thing in s. */
static int one_element(const char *s)
{
    const char *p = s;
    int depth = 0, empty;

    if (*p != '<')
        return 0;
    while (*p) {
        if (*p != '<')
            p += strcspn(p, "<");
        else if (!strncmp(p, "<![CDATA[", 9))
            p = (p = strstr(p, "]]>")) ? p + 3 : NULL;
        else if (p[1] == '/') {
            p = (p = strchr(p, '>')) ? p + 1 : NULL;
            if (--depth == 0)
                break;
        }
        else if (p[1] == '!' || p[1] == '?')
            return 0; /* refused by the XML check already */
        else {
            p = tag_end(p, &empty);
            if (p && !empty)
                depth++;
            else if (p && depth == 0)
                break;
        }
        if (!p)
            return 0;
    }
    return depth == 0 && p && *p == '\0';
}

/* The value of attribute name in the start tag at s, unescaped, into buf:
 * 1 when there, 0 when absent, -1 when it uses a character reference or
 * does not fit (no address or type needs either). */
static int attr_value(const char *s, const char *name, char *buf,
                      size_t size)
{
    static const char *const ents[][2] = {
        { "&amp;", "&" }, { "&lt;", "<" }, { "&gt;", ">" },
        { "&quot;", "\"" }, { "&apos;", "'" }
    };
    size_t nlen = strlen(name), n = 0, i;
    const char *p = s + 1 + strcspn(s + 1, " \t\r\n/>"), *v;
    char q;

    for (;;) {
        p += strspn(p, " \t\r\n");
        if (*p == '>' || *p == '/' || !*p)
            return 0;
        v = p + strcspn(p, " \t\r\n=");
        q = *(v += strspn(v, " \t\r\n=")); /* = and spaces around it */
        if ((size_t)(p + strcspn(p, " \t\r\n=") - p) == nlen
            && !strncmp(p, name, nlen))
            break;
        p = strchr(v + 1, q) + 1;
    }
    for (v++; *v != q; ) {
        for (i = 0; *v == '&' && i < 5; i++)
            if (!strncmp(v, ents[i][0], strlen(ents[i][0])))
                break;
        if (*v == '&' && i == 5)
            return -1;
        if (n + 1 >= size)
            return -1;
        buf[n++] = *v == '&' ? ents[i][1][0] : *v;
        v += *v == '&' ? strlen(ents[i][0]) : 1;
    }
    buf[n] = '\0';
    return 1;
}

static int listed(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (!strcmp(s, *list))
            return 1;
    return 0;
}

/* The element's name, addresses and type, in a stanza that is one
 * well-formed element. */
static const char *check_stanza(const char *st, mx_item_kind kind,
                                const char *app_bare,
                                const char *app_resource)
{
    static char const *const *types[] = {
        message_types, presence_types, iq_types
    };
    static const char *const names[] = { "message", "presence", "iq", NULL };
    char addr[3 * MX_JID_PART_MAX + 3];
    size_t nlen = strcspn(st + 1, " \t\r\n/>");
    int i, has;

    for (i = 0; names[i]; i++)
        if (strlen(names[i]) == nlen && !strncmp(st + 1, names[i], nlen))
            break;
    if (!names[i])
        return "the stanza is not a <message>, <presence> or <iq>";
    if (kind == MX_ITEM_SUBSCRIBERS && i != 1)
        return "a presence to subscribers that is not a <presence>";
    if ((has = attr_value(st, "from", addr, sizeof(addr))) < 0
        || (has && (!*addr
                    || mx_check_from(addr, app_bare, app_resource) != MX_OK)))
        return "the from address is not one of the app's own addresses";
    if ((has = attr_value(st, "to", addr, sizeof(addr))) < 0
        || (has && mx_check_to(addr) != MX_OK))
        return "the recipient is not a valid JID";
    if (has && kind == MX_ITEM_SUBSCRIBERS)
        return "a presence to subscribers has a recipient";
    if ((has = attr_value(st, "type", addr, sizeof(addr))) < 0
        || (has && !listed(addr, types[i])))
        return "the stanza's type is not one its element may have";
    return NULL;
}

int mx_queue_item_check(const char *data, size_t len, const char *app_bare,
                        const char *app_resource, const char **why)
{
    mx_queue_item item;
    char *stanza;

    *why = NULL;
    if (len > MX_QUEUE_ITEM_MAX)
        *why = "the item is larger than 16 MiB";
    else if (memchr(data, '\0', len))
        *why = "the item contains a NUL byte";
    else if (mx_queue_item_parse(data, len, &item) != 0)
        *why = "not an item of this version of mod_xmpp";
    if (*why)
        return -1;
    if (!(stanza = malloc(item.stanza_len + 1))) {
        *why = "out of memory";
        return -1;
    }
    memcpy(stanza, item.stanza, item.stanza_len);
    stanza[item.stanza_len] = '\0';
    /* the raw XML check of send_message: the stanza is then one child of
     * a <message>, well-formed, without what XMPP forbids */
    if (mx_message_check(stanza, NULL, 1, why) == MX_OK)
        *why = !one_element(stanza)
               ? "the stanza is not exactly one element"
               : check_stanza(stanza, item.kind, app_bare, app_resource);
    free(stanza);
    return *why ? -1 : 0;
}
