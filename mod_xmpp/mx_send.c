/* SPDX-License-Identifier: Apache-2.0 */
/* mx_send: see mx_send.h */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#if defined(__linux__) && defined(__GLIBC__) \
    && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 25))
#include <sys/random.h>
#define MX_HAVE_GETRANDOM 1
#endif

#include <libxml/parser.h>
#include <libxml/tree.h>

#ifdef MX_SEND_XML_DLOPEN
#include <dlfcn.h>
#endif

#include "mx_jid.h"
#include "mx_send.h"
#include "mx_xmltext.h"

/* The libxml2 functions used here, called through this table: bound at
 * link time normally; loaded on first use when built with
 * MX_SEND_XML_DLOPEN (the xmpp-send command), because loading libxml2 and
 * ICU costs a short-lived command more than everything else a plain send
 * does, and only --raw-xml needs them. */
typedef struct {
    void (*init)(void);
    xmlParserCtxtPtr (*new_ctxt)(void);
    xmlDocPtr (*read)(xmlParserCtxtPtr, const char *, int, const char *,
                      const char *, int);
    void (*free_doc)(xmlDocPtr);
    void (*free_ctxt)(xmlParserCtxtPtr);
} xml_api;

#ifndef MX_SEND_XML_DLOPEN
static const xml_api xml_linked = {
    xmlInitParser, xmlNewParserCtxt, xmlCtxtReadMemory, xmlFreeDoc,
    xmlFreeParserCtxt
};

static const xml_api *xml_get(void)
{
    return &xml_linked;
}
#else
#ifndef MX_LIBXML2_SONAME
#define MX_LIBXML2_SONAME "libxml2.so.2"
#endif

/* Not thread-safe: the command that uses it has one thread. */
static const xml_api *xml_get(void)
{
    static xml_api api;
    static int state; /* 0 not tried, 1 loaded, -1 failed */
    void *h;

    if (state)
        return state > 0 ? &api : NULL;
    state = -1;
    if (!(h = dlopen(MX_LIBXML2_SONAME, RTLD_NOW | RTLD_LOCAL)))
        return NULL;
    api.init = (void (*)(void))dlsym(h, "xmlInitParser");
    api.new_ctxt = (xmlParserCtxtPtr (*)(void))dlsym(h, "xmlNewParserCtxt");
    api.read = (xmlDocPtr (*)(xmlParserCtxtPtr, const char *, int,
                              const char *, const char *, int))
               dlsym(h, "xmlCtxtReadMemory");
    api.free_doc = (void (*)(xmlDocPtr))dlsym(h, "xmlFreeDoc");
    api.free_ctxt = (void (*)(xmlParserCtxtPtr))dlsym(h, "xmlFreeParserCtxt");
    if (!api.init || !api.new_ctxt || !api.read || !api.free_doc
        || !api.free_ctxt)
        return NULL;
    api.init();
    state = 1;
    return &api;
}
#endif

static const char *const message_types[] = {
    "chat", "error", "groupchat", "headline", "normal", NULL
};
static const char *const presence_types[] = {
    "available", "unavailable", "probe", NULL
};
static const char *const presence_shows[] = {
    "chat", "away", "dnd", "xa", NULL
};

static int in_list(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(s, *list) == 0)
            return 1;
    return 0;
}

void mx_send_init(void)
{
    const xml_api *x = xml_get();

    if (x)
        x->init();
}

const char *mx_err_name(mx_err e)
{
    switch (e) {
    case MX_ERR_NO_BODY:        return "NoBodyError";
    case MX_ERR_INVALID_JID:    return "InvalidJidError";
    case MX_ERR_INVALID_TYPE:   return "InvalidTypeError";
    case MX_ERR_INVALID_XML:    return "InvalidXmlError";
    case MX_ERR_INVALID_SHOW:   return "InvalidShowError";
    case MX_ERR_INVALID_STATUS: return "InvalidStatusError";
    case MX_OK:                 break;
    }
    return NULL;
}

/* ---- sender and recipient addresses ---- */

/* Component mode: the app owns every address of its domain. */
static mx_err check_from_component(const mx_jid_parts *from,
                                   const char *domain)
{
    if (from->domain_len != strlen(domain)
        || strncasecmp(from->domain, domain, from->domain_len) != 0)
        return MX_ERR_INVALID_JID;
    return MX_OK;
}

/* Client mode: the bare JID, or the full JID of the app's own session
 * (a stanza from another resource would claim a session we do not have). */
static mx_err check_from_client(const char *from, const mx_jid_parts *p,
                                const char *app_bare, const char *resource)
{
    if (!mx_jid_same_bare(from, app_bare))
        return MX_ERR_INVALID_JID;
    if (!p->resource)
        return MX_OK;
    if (resource && p->resource_len == strlen(resource)
        && memcmp(p->resource, resource, p->resource_len) == 0)
        return MX_OK;
    return MX_ERR_INVALID_JID;
}

mx_err mx_check_from(const char *from_jid, const char *app_bare,
                     const char *app_resource)
{
    mx_jid_parts p, app;

    if (!from_jid || !*from_jid)
        return MX_OK;
    if (!app_bare || mx_jid_parse(app_bare, &app) != NULL || app.resource
        || mx_jid_parse(from_jid, &p) != NULL)
        return MX_ERR_INVALID_JID;
    if (!app.local)
        return check_from_component(&p, app_bare);
    return check_from_client(from_jid, &p, app_bare, app_resource);
}

mx_err mx_check_to(const char *jid)
{
    return mx_jid_valid(jid) ? MX_OK : MX_ERR_INVALID_JID;
}

/* ---- raw XML ---- */

static void xml_quiet(void *ctx, xmlErrorPtr error)
{
    (void)ctx;
    (void)error;
}

/* RFC 6120 11.1: a server answers these with a stream error, which
 * would drop the connection and every stanza queued behind this one. */
static const char *restricted_node(xmlNodePtr n)
{
    for (; n; n = n->next) {
        switch (n->type) {
        case XML_COMMENT_NODE:
            return "XMPP does not allow comments";
        case XML_PI_NODE:
            return "XMPP does not allow processing instructions";
        case XML_DTD_NODE:
        case XML_ENTITY_REF_NODE:
        case XML_ENTITY_DECL:
            return "XMPP does not allow DTDs or entity references";
        case XML_ELEMENT_NODE: {
            const char *why = restricted_node(n->children);
            if (why)
                return why;
            break;
        }
        default:
            break;
        }
    }
    return NULL;
}

/* Parse what the stanza will contain, wrapped in the element it will be
 * inserted into. The error handler is set on this parse's own context,
 * not globally: the module parses in several threads at once. */
static const char *raw_xml_problem(const char *body)
{
    static const char head[] = "<message xmlns=\"jabber:client\">";
    static const char tail[] = "</message>";
    size_t blen = strlen(body), len = sizeof(head) - 1 + blen + sizeof(tail) - 1;
    const xml_api *x = xml_get();
    xmlParserCtxtPtr ctxt;
    xmlDocPtr doc;
    const char *why = NULL;
    char *text;

    if (!x)
        return "libxml2, needed to check the XML, cannot be loaded";
    if (len > (size_t)0x7fffffff)
        return "the XML is too large";
    if (!(text = malloc(len + 1)))
        return "out of memory";
    memcpy(text, head, sizeof(head) - 1);
    memcpy(text + sizeof(head) - 1, body, blen);
    memcpy(text + sizeof(head) - 1 + blen, tail, sizeof(tail));
    if (!(ctxt = x->new_ctxt())) {
        free(text);
        return "out of memory";
    }
    ctxt->sax->serror = xml_quiet;
    /* no XML_PARSE_NOENT / DTDLOAD: nothing is loaded or expanded */
    doc = x->read(ctxt, text, (int)len, NULL, "UTF-8",
                  XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (!doc || !ctxt->wellFormed)
        why = "the XML is not well-formed";
    else if (!ctxt->nsWellFormed)
        why = "the XML uses an undeclared namespace prefix";
    else if (doc->intSubset || doc->extSubset)
        why = "XMPP does not allow DTDs";
    else
        why = restricted_node(doc->children);
    if (doc)
        x->free_doc(doc);
    x->free_ctxt(ctxt);
    free(text);
    return why;
}

mx_err mx_message_check(const char *body, const char *type, int raw_xml,
                        const char **why)
{
    const char *dummy;

    if (!why)
        why = &dummy;
    *why = NULL;
    if (!body || !*body) {
        *why = "the message has no body";
        return MX_ERR_NO_BODY;
    }
    if (type && !in_list(type, message_types)) {
        *why = "the message type is not one of chat, error, groupchat, headline, normal";
        return MX_ERR_INVALID_TYPE;
    }
    if (!mx_utf8_valid_xml(body, strlen(body))) {
        *why = "the body is not UTF-8 or has characters XML does not allow";
        return MX_ERR_INVALID_XML;
    }
    if (raw_xml && (*why = raw_xml_problem(body)) != NULL)
        return MX_ERR_INVALID_XML;
    return MX_OK;
}

/* libxml2's xmlDocGetRootElement, which the dlopen table lacks */
static xmlNodePtr first_element(xmlNodePtr n)
{
    while (n && n->type != XML_ELEMENT_NODE)
        n = n->next;
    return n;
}

/* The root of a stanza sent as it is: it inherits the stream's default
 * namespace, jabber:client; any other is not a stanza to the server. */
static const char *stanza_root_problem(xmlNodePtr root)
{
    static const char *const names[] = { "message", "presence", "iq", NULL };

    if (!root || root->type != XML_ELEMENT_NODE)
        return "there is no element";
    if (!in_list((const char *)root->name, names))
        return "the element is not <message>, <presence> or <iq>";
    if (root->ns && (root->ns->prefix
                     || strcmp((const char *)root->ns->href, "jabber:client")))
        return "the stanza is not in the jabber:client namespace "
               "(no prefix, no other xmlns)";
    return NULL;
}

/* Parse the text as a document of its own: libxml2 then refuses a second
 * element (XML_ERR_DOCUMENT_END), which the stream would take as a
 * second stanza. */
static const char *stanza_parse_problem(const xml_api *x, const char *xml)
{
    xmlParserCtxtPtr ctxt;
    xmlDocPtr doc;
    const char *why = NULL;

    if (!(ctxt = x->new_ctxt()))
        return "out of memory";
    ctxt->sax->serror = xml_quiet;
    doc = x->read(ctxt, xml, (int)strlen(xml), NULL, "UTF-8",
                  XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if ((!doc || !ctxt->wellFormed) && ctxt->errNo == XML_ERR_DOCUMENT_END)
        why = "there is more than one element, or text after the stanza";
    else if (!doc || !ctxt->wellFormed)
        why = "the XML is not well-formed";
    else if (!ctxt->nsWellFormed)
        why = "the XML uses an undeclared namespace prefix";
    else if (doc->intSubset || doc->extSubset)
        why = "XMPP does not allow DTDs";
    else if (!(why = restricted_node(doc->children)))
        why = stanza_root_problem(first_element(doc->children));
    if (doc)
        x->free_doc(doc);
    x->free_ctxt(ctxt);
    return why;
}

const char *mx_stanza_problem(const char *xml)
{
    const xml_api *x = xml_get();
    const char *p = xml;

    if (!x)
        return "libxml2, needed to check the XML, cannot be loaded";
    if (!mx_utf8_valid_xml(xml, strlen(xml)))
        return "the XML is not UTF-8 or has characters XML does not allow";
    if (strlen(xml) > (size_t)0x7fffffff)
        return "the XML is too large";
    /* an XML declaration mid-stream is a stream error (RFC 6120 11.5) */
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
        p++;
    if (p[0] != '<' || p[1] == '?' || p[1] == '!')
        return "the answer does not start with an element";
    return stanza_parse_problem(x, xml);
}

/* ---- presence ---- */

/* Code points in valid UTF-8: every byte but continuation bytes. */
static size_t utf8_chars(const char *s)
{
    size_t n = 0;

    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            n++;
    return n;
}

mx_err mx_presence_check(const char *type, const char *show,
                         const char *status)
{
    if (type && !in_list(type, presence_types))
        return MX_ERR_INVALID_TYPE;
    if (show && *show && !in_list(show, presence_shows))
        return MX_ERR_INVALID_SHOW;
    if (status && (!mx_utf8_valid_xml(status, strlen(status))
                   || utf8_chars(status) > MX_STATUS_MAX_CHARS))
        return MX_ERR_INVALID_STATUS;
    return MX_OK;
}

/* ---- stanza text ---- */

/* Stanzas are built in an mx_sbuf (mx_xmltext.h) */
typedef mx_sbuf sbuf;

static void sb_str(sbuf *b, const char *s)
{
    mx_sbuf_put(b, s, strlen(s));
}

/* The strings up to a NULL, one after the other */
static void sb_cat(sbuf *b, ...)
{
    va_list ap;
    const char *s;

    va_start(ap, b);
    while ((s = va_arg(ap, const char *)))
        sb_str(b, s);
    va_end(ap);
}

/* Escape for text and attribute values alike, by mx_xml_ref's rules;
 * runs that need none are copied at once. */
static void sb_esc(sbuf *b, const char *s, int attr)
{
    const char *run = s, *rep;

    for (; *s; s++) {
        if (!(rep = mx_xml_ref(*s, attr)))
            continue;
        mx_sbuf_put(b, run, (size_t)(s - run));
        sb_str(b, rep);
        run = s + 1;
    }
    mx_sbuf_put(b, run, (size_t)(s - run));
}

static void sb_attr(sbuf *b, const char *name, const char *value)
{
    if (!value)
        return;
    sb_cat(b, " ", name, "=\"", NULL);
    sb_esc(b, value, 1);
    sb_str(b, "\"");
}

static void sb_elem(sbuf *b, const char *name, const char *text)
{
    if (!text || !*text)
        return;
    sb_cat(b, "<", name, ">", NULL);
    sb_esc(b, text, 0);
    sb_cat(b, "</", name, ">", NULL);
}

/* Opens <name xmlns="jabber:client" from to type id (no '>' yet). */
static void sb_open(sbuf *b, const char *name, const char *from,
                    const char *to, const char *type, const char *id)
{
    sb_cat(b, "<", name, " xmlns=\"jabber:client\"", NULL);
    sb_attr(b, "from", from);
    sb_attr(b, "to", to);
    sb_attr(b, "type", type);
    sb_attr(b, "id", id);
}

static void sb_origin_id(sbuf *b, const char *id)
{
    if (!id)
        return;
    sb_str(b, "<origin-id xmlns=\"urn:xmpp:sid:0\"");
    sb_attr(b, "id", id);
    sb_str(b, "/>");
}

char *mx_message_stanza(const char *from, const char *to, const char *type,
                        const char *body, int raw_xml, const char *id)
{
    sbuf b = { NULL, 0, 0, 0 };

    if (!to || !body)
        return NULL;
    sb_open(&b, "message", from, to, type ? type : "chat", id);
    sb_str(&b, ">");
    if (raw_xml)
        sb_str(&b, body);
    else
        sb_elem(&b, "body", body);
    sb_origin_id(&b, id);
    sb_str(&b, "</message>");
    return mx_sbuf_done(&b);
}

char *mx_presence_stanza(const char *from, const char *to, const char *type,
                         const char *show, const char *status,
                         const char *id)
{
    sbuf b = { NULL, 0, 0, 0 };
    int unavailable, probe;

    if (type && strcmp(type, "available") == 0)
        type = NULL;
    unavailable = type && strcmp(type, "unavailable") == 0;
    probe = type && strcmp(type, "probe") == 0;
    if (unavailable || probe)
        show = NULL;
    if (probe)
        status = NULL;
    sb_open(&b, "presence", from, to, type, id);
    if ((!show || !*show) && (!status || !*status)) {
        sb_str(&b, "/>");
        return mx_sbuf_done(&b);
    }
    sb_str(&b, ">");
    sb_elem(&b, "show", show);
    sb_elem(&b, "status", status);
    sb_str(&b, "</presence>");
    return mx_sbuf_done(&b);
}

char *mx_invite_stanza(const char *from, const char *to, const char *id)
{
    sbuf b = { NULL, 0, 0, 0 };

    if (!to)
        return NULL;
    sb_open(&b, "presence", from, to, "subscribe", id);
    sb_str(&b, "/>");
    return mx_sbuf_done(&b);
}

/* ---- ids ---- */

static int random_bytes(unsigned char *buf, size_t n)
{
    size_t got = 0;
    ssize_t r;
    int fd;

#ifdef MX_HAVE_GETRANDOM
    while (got < n) {
        r = getrandom(buf + got, n - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break; /* ENOSYS on old kernels: fall back to the device */
        got += (size_t)r;
    }
    if (got == n)
        return 0;
#endif
    if ((fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC)) < 0)
        return -1;
    while (got < n) {
        r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    return got == n ? 0 : -1;
}

int mx_new_id(char *buf, size_t size)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char r[16];
    size_t i;

    if (!buf || size < MX_ID_SIZE || random_bytes(r, sizeof(r)) != 0)
        return -1;
    memcpy(buf, "mx-", 3);
    for (i = 0; i < sizeof(r); i++) {
        buf[3 + 2 * i] = hex[r[i] >> 4];
        buf[4 + 2 * i] = hex[r[i] & 15];
    }
    buf[3 + 2 * sizeof(r)] = '\0';
    return 0;
}
