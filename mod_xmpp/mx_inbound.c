/* SPDX-License-Identifier: Apache-2.0 */
/* mx_inbound: see mx_inbound.h */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mx_inbound.h"
#include "mx_send.h"
#include "mx_xmltext.h"

static const struct {
    mx_inbound_kind kind;
    const char *name;
} kinds[] = {
    { MX_KIND_MESSAGE, "message" }, { MX_KIND_ERROR, "error" },
    { MX_KIND_SUBSCRIBE, "subscribe" }, { MX_KIND_PRESENCE, "presence" },
};
#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

const char *mx_inbound_kind_name(int kind)
{
    size_t i;

    for (i = 0; i < NKINDS; i++)
        if ((int)kinds[i].kind == kind)
            return kinds[i].name;
    return NULL;
}

int mx_inbound_kind_of(const char *name)
{
    size_t i;

    if (!strncasecmp(name, "xmpp_", 5))
        name += 5;
    for (i = 0; i < NKINDS; i++)
        if (!strcasecmp(name, kinds[i].name))
            return (int)kinds[i].kind;
    return 0;
}

int mx_inbound_route(const char *name, const char *type, int has_body,
                     const char **path, int *kind)
{
    static const char *const subscriptions[] = {
        "subscribe", "subscribed", "unsubscribe", "unsubscribed", NULL
    };
    static const char *const presences[] = {
        "unavailable", "probe", NULL
    };
    int i;

    if (!name)
        return -1;
    if (type && !strcmp(type, "error")) {
        *path = "error/";
        *kind = MX_KIND_ERROR;
        return 0;
    }
    if (!strcmp(name, "message")) {
        /* chat and normal, and no type; groupchat and headline are not
         * what App Engine posted; a message without body is a chat state
         * or a receipt, not something to answer */
        if (type && strcmp(type, "chat") && strcmp(type, "normal"))
            return -1;
        if (!has_body)
            return -1;
        *path = "message/chat/";
        *kind = MX_KIND_MESSAGE;
        return 0;
    }
    if (strcmp(name, "presence"))
        return -1;
    if (!type) {
        *path = "presence/available/";
        *kind = MX_KIND_PRESENCE;
        return 0;
    }
    for (i = 0; subscriptions[i]; i++)
        if (!strcmp(type, subscriptions[i])) {
            static const char *const paths[] = {
                "subscription/subscribe/", "subscription/subscribed/",
                "subscription/unsubscribe/", "subscription/unsubscribed/"
            };
            *path = paths[i];
            *kind = MX_KIND_SUBSCRIBE;
            return 0;
        }
    for (i = 0; presences[i]; i++)
        if (!strcmp(type, presences[i])) {
            *path = i == 0 ? "presence/unavailable/" : "presence/probe/";
            *kind = MX_KIND_PRESENCE;
            return 0;
        }
    return -1;
}

/* Python's str.strip(): white space at both ends */
static char *strip_dup(const char *s, size_t len)
{
    char *out;

    while (len && strchr(" \t\r\n\f\v", *s))
        s++, len--;
    while (len && strchr(" \t\r\n\f\v", s[len - 1]))
        len--;
    out = malloc(len + 1);
    if (out) {
        memcpy(out, s, len);
        out[len] = '\0';
    }
    return out;
}

int mx_inbound_command(const char *body, char **command, char **arg)
{
    const char *space;

    *command = *arg = NULL;
    if (!body)
        body = "";
    if (body[0] != '/' && body[0] != '\\') {
        *arg = strip_dup(body, strlen(body));
        return *arg ? 0 : -1;
    }
    /* App Engine split at the first space only */
    space = strchr(body, ' ');
    if (!space)
        space = body + strlen(body);
    *command = strip_dup(body + 1, (size_t)(space - body - 1));
    *arg = strip_dup(*space ? space + 1 : space, strlen(*space ? space + 1
                                                                : space));
    if (!*command || !*arg) {
        free(*command);
        free(*arg);
        *command = *arg = NULL;
        return -1;
    }
    return 0;
}

/* 1 when no value contains b: one pass over each (memmem is linear) */
static int boundary_free(const mx_form_field *f, size_t n, const char *b)
{
    size_t i, blen = strlen(b);

    for (i = 0; i < n; i++)
        if (f[i].value && memmem(f[i].value, f[i].len, b, blen))
            return 0;
    return 1;
}

/* A random boundary: a sender cannot know it, so cannot put it in a
 * value; one that happens to be in one (a chance of 2^-128 a try) gets
 * another. -1 when no randomness is to be had. */
static int pick_boundary(const mx_form_field *f, size_t n, char *boundary,
                         size_t size)
{
    char id[MX_ID_SIZE];
    int tries;

    for (tries = 0; tries < 4; tries++) {
        if (mx_new_id(id, sizeof(id)) != 0)
            return -1;
        snprintf(boundary, size, "mod_xmpp-%s", id + 3);
        if (boundary_free(f, n, boundary))
            return 0;
    }
    return -1;
}

char *mx_multipart(const mx_form_field *fields, size_t n, char *boundary,
                   size_t boundary_size, size_t *len)
{
    size_t i, size = 8, off = 0;
    char *out;

    if (boundary_size < MX_BOUNDARY_SIZE
        || pick_boundary(fields, n, boundary, boundary_size) != 0)
        return NULL;
    for (i = 0; i < n; i++)
        if (fields[i].value)
            size += fields[i].len + strlen(fields[i].name) + 200;
    if (!(out = malloc(size + strlen(boundary))))
        return NULL;
    for (i = 0; i < n; i++) {
        if (!fields[i].value)
            continue;
        off += (size_t)sprintf(out + off, "--%s\r\nContent-Disposition: "
                               "form-data; name=\"%s\"\r\nContent-Type: "
                               "%s\r\n\r\n", boundary, fields[i].name,
                               fields[i].content_type
                               ? fields[i].content_type
                               : "text/plain; charset=UTF-8");
        memcpy(out + off, fields[i].value, fields[i].len);
        off += fields[i].len;
        memcpy(out + off, "\r\n", 2);
        off += 2;
    }
    off += (size_t)sprintf(out + off, "--%s--\r\n", boundary);
    *len = off;
    return out;
}

char *mx_error_stanza(const char *name, const char *from, const char *to,
                      const char *id, const char *etype, const char *cond,
                      const char *text)
{
    char *efrom = mx_xml_escape_dup(from ? from : "", 1);
    char *eto = mx_xml_escape_dup(to ? to : "", 1);
    char *eid = mx_xml_escape_dup(id ? id : "", 1);
    char *etext = mx_xml_escape_dup(text ? text : "", 0);
    char *out = NULL;
    size_t size;

    if (efrom && eto && eid && etext) {
        size = strlen(efrom) + strlen(eto) + strlen(eid) + strlen(etext)
               + strlen(name) * 2 + strlen(etype) + strlen(cond) + 400;
        if ((out = malloc(size)) != NULL)
            snprintf(out, size,
                     "<%s xmlns=\"jabber:client\" type=\"error\" from=\"%s\" "
                     "to=\"%s\"%s%s%s><error type=\"%s\"><%s xmlns=\"urn:"
                     "ietf:params:xml:ns:xmpp-stanzas\"/>%s%s%s</error></%s>",
                     name, efrom, eto, id ? " id=\"" : "", eid, id ? "\"" : "",
                     etype, cond, text ? "<text xmlns=\"urn:ietf:params:xml:"
                     "ns:xmpp-stanzas\">" : "", etext, text ? "</text>" : "",
                     name);
    }
    free(efrom);
    free(eto);
    free(eid);
    free(etext);
    return out;
}

/* The value of the root element's from attribute (in buf), 1 when there
 * is one, 0 when none; the root tag is what precedes its first '>'. */
static int root_from(const char *stanza, char *buf, size_t size)
{
    const char *end = strchr(stanza, '>'), *a = stanza, *close;
    char q;

    while (end && (a = strstr(a, "from=")) != NULL && a < end) {
        if (a > stanza && strchr(" \t\r\n", a[-1]) && (a[5] == '"'
                                                     || a[5] == '\'')) {
            q = a[5];
            close = strchr(a + 6, q);
            if (!close || (size_t)(close - a - 6) >= size)
                return -1;
            memcpy(buf, a + 6, (size_t)(close - a - 6));
            buf[close - a - 6] = '\0';
            return 1;
        }
        a += 5;
    }
    return 0;
}

char *mx_stanza_from_component(const char *stanza, const char *dflt,
                               const char *domain, int *bad)
{
    char from[3100], *efrom, *out;
    size_t name_len;
    int has;

    stanza += strspn(stanza, " \t\r\n");
    name_len = strcspn(stanza + (*stanza == '<'), " \t\r\n/>") + 1;
    has = root_from(stanza, from, sizeof(from));
    *bad = 0;
    if (has != 0) {
        *bad = has < 0 || mx_check_from(from, domain, NULL) != MX_OK;
        return *bad ? NULL : strdup(stanza);
    }
    if (!(efrom = mx_xml_escape_dup(dflt, 1)))
        return NULL;
    if ((out = malloc(strlen(stanza) + strlen(efrom) + 10)) != NULL)
        sprintf(out, "%.*s from=\"%s\"%s", (int)name_len, stanza, efrom,
                stanza + name_len);
    free(efrom);
    return out;
}

/* ---- the inbound journal's records ---- */

#define MX_INREC_MAGIC "MXI1 "

static char **inrec_field(mx_inrec *r, int i)
{
    char **f[] = { &r->path, &r->name, &r->type, &r->id, &r->from, &r->to,
                   &r->body, &r->show, &r->status, &r->stanza };

    return i < (int)(sizeof(f) / sizeof(f[0])) ? f[i] : NULL;
}

char *mx_inrec_encode(const mx_inrec *r, size_t *len)
{
    mx_inrec *w = (mx_inrec *)r; /* inrec_field only reads through it */
    size_t n = 32, off;
    char **f, *out;
    int i;

    for (i = 0; (f = inrec_field(w, i)) != NULL; i++)
        n += (*f ? strlen(*f) : 0) + 2;
    if (!(out = malloc(n)))
        return NULL;
    off = (size_t)snprintf(out, n, MX_INREC_MAGIC "%d\n", r->kind);
    for (i = 0; (f = inrec_field(w, i)) != NULL; i++) {
        size_t l = *f ? strlen(*f) : 0;

        out[off++] = *f ? '+' : '-';
        memcpy(out + off, *f ? *f : "", l);
        off += l;
        out[off++] = '\0';
    }
    *len = off;
    return out;
}

int mx_inrec_decode(const char *data, size_t len, mx_inrec *r)
{
    const char *p = data, *end = data + len, *nul;
    char **f;
    int i;

    memset(r, 0, sizeof(*r));
    if (len < sizeof(MX_INREC_MAGIC) || memcmp(p, MX_INREC_MAGIC, 5))
        return -1;
    r->kind = atoi(p + 5);
    if (!(p = memchr(p, '\n', len)))
        return -1;
    for (p++, i = 0; (f = inrec_field(r, i)) != NULL; i++) {
        if (p >= end || !(nul = memchr(p, '\0', (size_t)(end - p)))
            || (*p != '+' && *p != '-'))
            goto bad;
        if (*p == '+' && !(*f = strndup(p + 1, (size_t)(nul - p - 1))))
            goto bad;
        p = nul + 1;
    }
    if (r->name && r->stanza && r->path
        && mx_inbound_kind_name(r->kind) != NULL)
        return 0;
bad:
    mx_inrec_clear(r);
    return -1;
}

void mx_inrec_clear(mx_inrec *r)
{
    char **f;
    int i;

    for (i = 0; (f = inrec_field(r, i)) != NULL; i++) {
        free(*f);
        *f = NULL;
    }
}
