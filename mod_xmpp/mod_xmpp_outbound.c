/* SPDX-License-Identifier: Apache-2.0 */
/* mod_xmpp_outbound: see mod_xmpp_outbound.h.
 *
 * Acks. libstrophe 0.12's own stream management loses and duplicates
 * stanzas, so it is disabled and we speak XEP-0198 ourselves: <enable/>
 * after login, count every stanza sent after it, ask with <r/> in batches
 * (every MX_ACK_EVERY stanzas, or MX_ACK_IDLE_MS after the last), and remove
 * a queue item once <a h=.../> covers it. A server without stream
 * management gets ping IQs as barriers instead: an IQ answer means all sent
 * before it arrived. After a reconnect, everything not acknowledged is sent
 * again; each message carries an origin-id (XEP-0359) so a receiver can
 * drop the duplicate.
 *
 * Any XMPP user can send us an iq result with any id: an answer counts
 * only when it comes from the server (mx_out_from_server) and carries an
 * id it could only have learnt from our request (random per session). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "apr_general.h"
#include "apr_strings.h"
#include "httpd.h"
#include "http_log.h"

#include "mod_xmpp_outbound.h"
#include "mx_jid.h"
#include "mx_item.h"
#include "mx_spool.h"
#include "mx_addr_roster.h"

APLOG_USE_MODULE(xmpp);

#define MX_NS_SM          "urn:xmpp:sm:3"
#define MX_WINDOW         256  /* items sent and not yet acknowledged */
#define MX_ACK_EVERY      32   /* ask for an ack after this many stanzas */
#define MX_ACK_IDLE_MS    50   /* ... or this long after the last send */
#define MX_BATCH_BYTES    65536 /* hand libstrophe at most this at once */
#define MX_POISON_ENDS    2     /* stream errors with one item alone in
                                 * flight before it is set aside */

typedef struct {
    mx_seq record;           /* journal number of the item */
    apr_uint32_t seq;        /* stanza count when it was sent */
    int skipped;             /* set aside, not sent: not counted as sent */
} mx_flight;

struct mx_out {
    mx_app *app;
    mx_qserver *q;
    mx_jreader *reader;      /* the journal, from the first unacknowledged */
    xmpp_ctx_t *ctx;
    xmpp_conn_t *conn;
    apr_pool_t *pool;        /* lives as long as o */
    apr_pool_t *scratch;     /* cleared on every pump */
    int sm;                  /* 1: acks by XEP-0198; 0: by ping barriers */
    apr_uint32_t out_seq;    /* stanzas sent since <enable/> */
    apr_uint32_t requested;  /* out_seq when we last asked for an ack */
    apr_uint32_t in_seq;     /* stanzas received since <enabled/> */
    apr_uint32_t in_asked;   /* in_seq at the server's last <r/> */
    apr_uint32_t in_acked;   /* the h we told it last */
    apr_uint32_t (*handled)(void *, apr_uint32_t);
    void *handled_ud;
    unsigned long elements;  /* top-level elements received, all kinds */
    apr_time_t last_send, last_error;
    mx_flight flight[MX_WINDOW];
    int head, len;           /* ring of items in flight */
    char *batch;             /* stanzas of this pump, sent as one write */
    size_t batch_len, batch_size;
    /* After the server closed a session with a stream error while items
     * were in flight, they go again one at a time, each confirmed, so an
     * item the server refuses (too large for it, say) shows itself: alone
     * in flight at MX_POISON_ENDS such closes, it is set aside instead of
     * blocking every item behind it forever. */
    mx_seq careful_to;       /* one at a time up to this record */
    mx_seq suspect;          /* alone in flight at the last such close */
    int suspect_ends;
    char suspect_why[256];   /* the last such close */
    char ack_prefix[MX_OUT_ID_SIZE + 1]; /* "mx-ack-<random>-", per session */
    char ack_token[MX_OUT_ID_SIZE];      /* its random part, for the log */
};

static void ack_inbound(mx_out *o);

/* ---- queue bookkeeping ---- */

/* The server has handled every stanza up to number h. */
static void acked(mx_out *o, apr_uint32_t h)
{
    long done = 0;
    mx_seq last = 0;

    while (o->len > 0) {
        mx_flight *f = &o->flight[o->head];

        if ((apr_int32_t)(h - f->seq) < 0)
            break;
        last = f->record;
        if (f->record == o->suspect)
            o->suspect = 0; /* it went through after all */
        o->head = (o->head + 1) % MX_WINDOW;
        o->len--;
        done += !f->skipped;
    }
    if (last) /* the queue thread writes it down, removes old segments */
        mx_qserver_set_acked(o->q, last);
    if (done)
        mx_shared_count(o->app->shared->sent, done);
}

static void log_read_error(mx_app *app, int err)
{
    ap_log_error(APLOG_MARK, APLOG_ERR, err, app->s, MX_LOG_TAG "0256: %s: "
                 "cannot read the outbound journal in %s/journal", app->jid,
                 app->dir);
}

/* Start again from the first item not acknowledged. */
static void rewind_queue(mx_out *o)
{
    o->head = o->len = 0;
    if (mx_jreader_seek(o->reader, mx_qserver_acked(o->q) + 1) != 0)
        log_read_error(o->app, errno);
}

/* The next durable item: 1 with its data (free it), 0 when none, -1 on a
 * read error (logged at most once a second; try again later). */
static int next_item(mx_out *o, char **data, size_t *len, mx_seq *record)
{
    int rc = mx_jreader_next(o->reader, mx_qserver_committed(o->q), data,
                             len, record);
    apr_time_t now;

    if (rc >= 0)
        return rc;
    if (errno == EILSEQ) {
        mx_seq lost = mx_jreader_position(o->reader) - *record;

        ap_log_error(APLOG_MARK, APLOG_ERR, 0, o->app->s, MX_LOG_TAG "0251: "
                     "%s: the outbound journal is damaged at item %"
                     APR_UINT64_T_FMT ": %" APR_UINT64_T_FMT " item(s) "
                     "skipped, sending goes on from item %" APR_UINT64_T_FMT
                     " (look in %s/journal)", o->app->jid,
                     (apr_uint64_t)*record, (apr_uint64_t)lost,
                     (apr_uint64_t)mx_jreader_position(o->reader),
                     o->app->dir);
        mx_shared_count(o->app->shared->failed, (long)lost);
        return 0;
    }
    now = apr_time_now();
    if (now - o->last_error > apr_time_from_sec(1)) {
        if (errno == ENODATA)
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, o->app->s, MX_LOG_TAG
                         "0252: %s: the outbound journal is damaged at item %"
                         APR_UINT64_T_FMT "; sending waits for the next "
                         "intact item after it (look in %s/journal)",
                         o->app->jid, (apr_uint64_t)*record, o->app->dir);
        else
            log_read_error(o->app, errno);
    }
    o->last_error = now;
    return -1;
}

/* ---- sending ---- */

/* Stanzas go out together: one libstrophe send, so one TLS record and one
 * write for a whole batch instead of one per stanza, for us and for the
 * server that reads them. */
static void flush_batch(mx_out *o)
{
    if (o->batch_len == 0)
        return;
    /* libstrophe 0.12 also reads what it sends as a C string (its log of
     * what was sent): without the NUL it reads past the buffer. The NUL
     * is not sent (len excludes it), and no item contains one. */
    o->batch[o->batch_len] = '\0';
    xmpp_send_raw(o->conn, o->batch, o->batch_len);
    o->batch_len = 0;
}

static void emit(mx_out *o, const char *data, size_t len)
{
    if (o->batch_len + len > o->batch_size) {
        size_t size = o->batch_len + len > MX_BATCH_BYTES
                      ? o->batch_len + len : MX_BATCH_BYTES;
        char *grown = realloc(o->batch, size + 1); /* + the NUL */

        if (!grown) { /* send what we have, then this one on its own (every
                       * data given here is NUL-terminated) */
            flush_batch(o);
            xmpp_send_raw(o->conn, data, len);
            return;
        }
        o->batch = grown;
        o->batch_size = size;
    }
    memcpy(o->batch + o->batch_len, data, len);
    o->batch_len += len;
    if (o->batch_len >= MX_BATCH_BYTES)
        flush_batch(o);
}

/* Stanzas are queued as a client writes them, in jabber:client. A
 * component's stream is jabber:component:accept, and Prosody drops a
 * stanza of another namespace ("Unhandled component stanza"): say the
 * component's instead, in the root element only. */
static void emit_stanza(mx_out *o, const char *data, size_t len)
{
    static const char client[] = " xmlns=\"jabber:client\"";
    static const char accept[] = " xmlns=\"jabber:component:accept\"";
    const char *end = memchr(data, '>', len);
    const char *at = NULL;

    if (o->app->component && end) {
        char *root = apr_pstrndup(o->scratch, data, (apr_size_t)(end - data));
        char *hit = strstr(root, client);

        /* a handler's raw answer may quote it the other way */
        if (!hit)
            hit = strstr(root, " xmlns='jabber:client'");
        at = hit ? data + (hit - root) : NULL;
    }
    if (!at) {
        emit(o, data, len);
        return;
    }
    emit(o, data, (size_t)(at - data));
    emit(o, accept, sizeof(accept) - 1);
    at += sizeof(client) - 1;
    emit(o, at, len - (size_t)(at - data));
}

static void send_counted(mx_out *o, const char *data, size_t len)
{
    emit_stanza(o, data, len);
    o->out_seq++;
    o->last_send = apr_time_now();
}

void mx_out_send_other(mx_out *o, xmpp_stanza_t *st)
{
    flush_batch(o); /* keep the order */
    xmpp_send(o->conn, st);
    o->out_seq++;
    o->last_send = apr_time_now();
}

/* A component must address every stanza (Prosody refuses one without
 * 'to') and has no server address of its own to ping: the barrier goes to
 * its own domain, so the server routes it back to us after everything
 * sent before it (on_ping_ack). */
#define MX_PING_SIZE (2 * MX_JID_PART_MAX + MX_OUT_ID_SIZE + 128)
static int component_ping(mx_out *o, char *buf, size_t size)
{
    return apr_snprintf(buf, size, "<iq type='get' from='%s' to='%s' "
                        "id='%s%u'><ping xmlns='urn:xmpp:ping'/></iq>",
                        o->app->jid, o->app->jid, o->ack_prefix,
                        o->out_seq + 1);
}

static void ask_ack(mx_out *o)
{
    static const char r[] = "<r xmlns='" MX_NS_SM "'/>";
    char ping[MX_PING_SIZE];
    int n;

    o->requested = o->out_seq;
    if (o->sm) {
        emit(o, r, sizeof(r) - 1);
        return;
    }
    /* the IQ itself is stanza number out_seq + 1: its answer covers it */
    if (o->app->component)
        n = component_ping(o, ping, sizeof(ping));
    else
        n = apr_snprintf(ping, sizeof(ping), "<iq type='get' id='%s%u'>"
                         "<ping xmlns='urn:xmpp:ping'/></iq>", o->ack_prefix,
                         o->out_seq + 1);
    emit(o, ping, (size_t)n);
    o->out_seq++;
    o->requested = o->out_seq;
}

static void between(const char *s, const char *start, const char *end,
                    char *buf, size_t size);

/* A component's subscribers are per address: the roster the module
 * keeps for the bare form of the stanza's from (mx_addr_roster.h). */
static int read_subscribers(mx_out *o, const char *stanza, char **roster)
{
    char from[3100], dir[4096];
    size_t len;

    if (!o->app->component)
        return mx_queue_read_file(o->app->dir, "roster", roster, &len);
    between(stanza, " from=\"", "\"", from, sizeof(from));
    if (mx_addr_roster_dir(o->app->dir, *from ? from : o->app->jid, dir,
                      sizeof(dir)) != 0)
        return -1;
    return mx_queue_read_file(dir, "roster", roster, &len);
}

/* 1 when a "subscribers" item's stanza is a presence element, so that a
 * to= can go right after its name */
static int is_presence(const char *stanza, size_t len)
{
    static const char name[] = "<presence";
    size_t n = sizeof(name) - 1;

    return len > n && !memcmp(stanza, name, n)
           && (stanza[n] == ' ' || stanza[n] == '/' || stanza[n] == '>');
}

/* Send one subscriber copy per line of the roster file. The file is the
 * holder's own, but a line goes into an attribute: only a valid JID, and
 * escaped, so no line can change the stanza. */
static void send_to_subscribers(mx_out *o, const char *stanza)
{
    char *roster = NULL, *line, *last;
    const char *rest, *contact;

    if (read_subscribers(o, stanza, &roster) != 0)
        return; /* nobody subscribed yet */
    rest = stanza + strlen("<presence"); /* is_presence() said so */
    for (line = apr_strtok(roster, "\r\n", &last); line;
         line = apr_strtok(NULL, "\r\n", &last)) {
        char *copy;

        contact = line;
        if (o->app->component
            && !(mx_addr_roster_line(line, &contact) & MX_ADDR_FROM))
            continue; /* only the address is subscribed to it */
        if (!mx_jid_valid(contact))
            continue;
        copy = apr_psprintf(o->scratch, "<presence to=\"%s\"%s",
                            ap_escape_html(o->scratch, contact), rest);
        send_counted(o, copy, strlen(copy));
    }
    free(roster);
}

/* Copy what follows `start` in s up to `end` (or nothing) into buf. */
static void between(const char *s, const char *start, const char *end,
                    char *buf, size_t size)
{
    const char *a = strstr(s, start), *b;

    buf[0] = '\0';
    if (!a)
        return;
    a += strlen(start);
    b = strstr(a, end);
    if (b && size > 0) {
        size_t n = (size_t)(b - a) < size - 1 ? (size_t)(b - a) : size - 1;

        memcpy(buf, a, n);
        buf[n] = '\0';
    }
}

/* For the console's recent traffic: element, recipient, body. */
static void record_sent(mx_out *o, const char *stanza, int subscribers)
{
    char kind[16], peer[96], text[160];

    between(stanza, "<", " ", kind, sizeof(kind));
    between(stanza, " to=\"", "\"", peer, sizeof(peer));
    between(stanza, "<body>", "</body>", text, sizeof(text));
    if (!text[0])
        between(stanza, "<status>", "</status>", text, sizeof(text));
    mx_traffic_add(o->app->shared, '>', kind,
                   subscribers ? "(subscribers)" : peer, text);
}

/* Keep a copy of item record in D/bad/ for a human; for the log: " and
 * is kept in PATH", or why it could not be kept. */
static const char *keep_bad(mx_out *o, mx_seq record, const char *data,
                            size_t len)
{
    char *bad = apr_pstrcat(o->scratch, o->app->dir, "/bad", NULL);
    char *name = apr_psprintf(o->scratch, "journal-%" APR_UINT64_T_FMT
                              ".xml", (apr_uint64_t)record);
    char *path = apr_pstrcat(o->scratch, bad, "/", name, NULL);
    int fd, kept = 0;

    if ((mkdir(bad, 0700) == 0 || errno == EEXIST)
        && (fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600))
           >= 0) {
        kept = write(fd, data, len) == (ssize_t)len;
        close(fd);
    }
    return kept ? apr_pstrcat(o->scratch, " and is kept in ", path, NULL)
                : apr_pstrcat(o->scratch, " (and could not be kept in ", bad,
                              ")", NULL);
}

/* An item that is not sent: it leaves the queue with the items sent
 * before it (at once when none is in flight), counted as failed. */
static void skip_item(mx_out *o, mx_seq record)
{
    mx_flight *f;

    mx_shared_count(o->app->shared->failed, 1);
    if (o->len == 0) {
        mx_qserver_set_acked(o->q, record);
        return;
    }
    f = &o->flight[(o->head + o->len++) % MX_WINDOW];
    f->record = record;
    f->seq = o->out_seq; /* covered by the ack of what went before */
    f->skipped = 1;
}

/* The item the server closed the stream on, every time it was sent
 * alone: keep it in D/bad/ for a human, log why, count it as failed and
 * go on with the items behind it (all before it are acknowledged). */
static void set_aside(mx_out *o, mx_seq record, const char *stanza,
                      size_t len)
{
    ap_log_error(APLOG_MARK, APLOG_ERR, 0, o->app->s, MX_LOG_TAG "0257: %s: "
                 "the server closed the stream each time outbound item %"
                 APR_UINT64_T_FMT " (%" APR_SIZE_T_FMT " bytes) was sent "
                 "alone, last: %s; it is not sent again%s", o->app->jid,
                 (apr_uint64_t)record, len, o->suspect_why,
                 keep_bad(o, record, stanza, len));
    skip_item(o, record);
    o->suspect = 0;
    o->suspect_ends = 0;
}

/* What must never be sent, whoever wrote the journal: a NUL byte makes
 * libstrophe send what follows it in memory; a subscribers item that is
 * not a presence element would be cut in the wrong place. NULL when the
 * item may go. */
static const char *unsendable(const char *data, size_t len,
                              const mx_queue_item *item)
{
    if (memchr(data, '\0', len))
        return "contains a NUL byte";
    if (item->kind == MX_ITEM_SUBSCRIBERS
        && !is_presence(item->stanza, item->stanza_len))
        return "is a presence to subscribers that is no <presence>";
    return NULL;
}

/* Send the next durable item. 1 when one was sent (or dealt with), 0
 * when there is none, -1 to try again later. */
static int send_next(mx_out *o)
{
    char *data;
    size_t len;
    mx_seq record;
    mx_queue_item item;
    const char *why;
    int rc = next_item(o, &data, &len, &record);

    if (rc <= 0)
        return rc;
    if (mx_queue_item_parse(data, len, &item) != 0) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, o->app->s, MX_LOG_TAG "0253: "
                     "%s: outbound item %" APR_UINT64_T_FMT " is not an "
                     "item of this version of mod_xmpp; skipped%s",
                     o->app->jid, (apr_uint64_t)record,
                     keep_bad(o, record, data, len));
        skip_item(o, record);
        free(data);
        return 1;
    }
    if ((why = unsendable(data, len, &item)) != NULL) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, o->app->s, MX_LOG_TAG "0258: "
                     "%s: outbound item %" APR_UINT64_T_FMT " (%"
                     APR_SIZE_T_FMT " bytes) %s; it is not sent%s",
                     o->app->jid, (apr_uint64_t)record, len, why,
                     keep_bad(o, record, data, len));
        skip_item(o, record);
        free(data);
        return 1;
    }
    if (record == o->suspect && o->suspect_ends >= MX_POISON_ENDS
        && o->len == 0) {
        set_aside(o, record, item.stanza, item.stanza_len);
        free(data);
        return 1;
    }
    if (item.kind == MX_ITEM_SUBSCRIBERS)
        send_to_subscribers(o, item.stanza);
    else
        send_counted(o, item.stanza, item.stanza_len);
    record_sent(o, item.stanza, item.kind == MX_ITEM_SUBSCRIBERS);
    free(data);
    o->flight[(o->head + o->len) % MX_WINDOW].record = record;
    o->flight[(o->head + o->len) % MX_WINDOW].seq = o->out_seq;
    o->flight[(o->head + o->len) % MX_WINDOW].skipped = 0;
    o->len++;
    return 1;
}

void mx_out_pump(mx_out *o)
{
    apr_time_t now = apr_time_now();

    apr_pool_clear(o->scratch);
    for (;;) {
        int careful = mx_jreader_position(o->reader) <= o->careful_to;

        if (o->len >= MX_WINDOW || (careful && o->len > 0)
            || send_next(o) != 1)
            break;
        if (careful || o->out_seq - o->requested >= MX_ACK_EVERY)
            ask_ack(o);
    }
    if (o->out_seq != o->requested
        && now - o->last_send >= apr_time_from_msec(MX_ACK_IDLE_MS))
        ask_ack(o);
    ack_inbound(o);
    flush_batch(o);
}

/* ---- dev mode ---- */

static void dev_line(mx_out *o, const char *label, const char *value)
{
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, o->app->s, "    %s", label);
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, o->app->s, "       %s",
                 value ? value : "");
}

/* A text message's children are exactly <body> and the origin-id that
 * mx_message_stanza adds; anything else was given as raw XML. Returns
 * the raw children as text (malloc'd), or NULL for a text message. */
static char *raw_children(mx_out *o, xmpp_ctx_t *ctx, xmpp_stanza_t *st)
{
    xmpp_stanza_t *c;
    char *buf, *all = NULL, *grown;
    size_t len, total = 0;
    int bodies = 0, others = 0;

    for (c = xmpp_stanza_get_children(st); c; c = xmpp_stanza_get_next(c)) {
        const char *n = xmpp_stanza_get_name(c);

        if (!n || !strcmp(n, "origin-id"))
            continue;
        if (!strcmp(n, "body") && xmpp_stanza_get_children(c)
            && xmpp_stanza_is_text(xmpp_stanza_get_children(c))
            && !xmpp_stanza_get_next(xmpp_stanza_get_children(c)))
            bodies++;
        else
            others++;
    }
    if (others == 0 && bodies <= 1)
        return NULL;
    for (c = xmpp_stanza_get_children(st); c; c = xmpp_stanza_get_next(c)) {
        const char *n = xmpp_stanza_get_name(c);

        if ((n && !strcmp(n, "origin-id"))
            || xmpp_stanza_to_text(c, &buf, &len) != XMPP_EOK)
            continue;
        if ((grown = realloc(all, total + len + 1)) != NULL) {
            all = grown;
            memcpy(all + total, buf, len);
            total += len;
            all[total] = '\0';
        }
        xmpp_free(ctx, buf);
    }
    return all;
}

/* Log a stanza the way App Engine's development server logged sends. */
static void dev_log(mx_out *o, xmpp_ctx_t *ctx, const char *text)
{
    xmpp_stanza_t *st = xmpp_stanza_new_from_string(ctx, text);
    const char *name = st ? xmpp_stanza_get_name(st) : NULL;
    const char *type = st ? xmpp_stanza_get_type(st) : NULL;
    xmpp_stanza_t *child;
    char *body;

    if (!name) {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, o->app->s,
                     "Sending an XMPP stanza: %s", text);
    }
    else if (!strcmp(name, "message")) {
        char *raw = raw_children(o, ctx, st);

        body = raw ? NULL : xmpp_message_get_body(st);
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, o->app->s,
                     "Sending an XMPP Message:");
        dev_line(o, "From:", xmpp_stanza_get_from(st));
        dev_line(o, "Body:", raw ? raw : body);
        dev_line(o, "Type:", type ? type : "chat");
        dev_line(o, "Raw Xml:", raw ? "True" : "False");
        dev_line(o, "To JIDs:", xmpp_stanza_get_to(st));
        if (body)
            xmpp_free(ctx, body);
        free(raw);
    }
    else if (type && !strcmp(type, "subscribe")) {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, o->app->s,
                     "Sending an XMPP Invite:");
        dev_line(o, "From:", xmpp_stanza_get_from(st));
        dev_line(o, "To:", xmpp_stanza_get_to(st));
    }
    else {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, o->app->s,
                     "Sending an XMPP Presence:");
        dev_line(o, "From:", xmpp_stanza_get_from(st));
        dev_line(o, "To:", xmpp_stanza_get_to(st) ? xmpp_stanza_get_to(st)
                                                  : "subscribers");
        dev_line(o, "Type:", type ? type : "available");
        child = xmpp_stanza_get_child_by_name(st, "show");
        body = child ? xmpp_stanza_get_text(child) : NULL;
        dev_line(o, "Show:", body);
        if (body)
            xmpp_free(ctx, body);
        child = xmpp_stanza_get_child_by_name(st, "status");
        body = child ? xmpp_stanza_get_text(child) : NULL;
        dev_line(o, "Status:", body);
        if (body)
            xmpp_free(ctx, body);
    }
    if (st)
        xmpp_stanza_release(st);
}

void mx_out_dev_pump(mx_out *o, xmpp_ctx_t *ctx)
{
    char *data;
    size_t len;
    mx_seq record, last = 0;
    mx_queue_item item;

    while (next_item(o, &data, &len, &record) == 1) {
        if (mx_queue_item_parse(data, len, &item) == 0)
            dev_log(o, ctx, item.stanza);
        free(data);
        mx_shared_count(o->app->shared->sent, 1);
        last = record;
    }
    if (last)
        mx_qserver_set_acked(o->q, last);
}

/* ---- XEP-0198 ---- */

static int on_sm_enabled(xmpp_conn_t *conn, xmpp_stanza_t *st, void *ud)
{
    mx_out *o = ud;

    o->sm = 1;
    o->in_seq = o->in_asked = o->in_acked = 0;
    return 1;
}

static int on_sm_failed(xmpp_conn_t *conn, xmpp_stanza_t *st, void *ud)
{
    mx_out *o = ud;

    ap_log_error(APLOG_MARK, APLOG_INFO, 0, o->app->s, MX_LOG_TAG "0254: "
                 "%s: the server refused stream management; using ping "
                 "round trips to confirm delivery", o->app->jid);
    o->sm = 0;
    ask_ack(o);
    flush_batch(o);
    return 1;
}

static int on_sm_ack(xmpp_conn_t *conn, xmpp_stanza_t *st, void *ud)
{
    const char *h = xmpp_stanza_get_attribute(st, "h");

    if (h)
        acked(ud, (apr_uint32_t)strtoul(h, NULL, 10));
    return 1;
}

/* How many of the server's stanzas are handled (never fewer than said) */
static apr_uint32_t in_handled(mx_out *o)
{
    apr_uint32_t h = o->handled ? o->handled(o->handled_ud, o->in_seq)
                                : o->in_seq;

    return (apr_int32_t)(h - o->in_acked) < 0 ? o->in_acked : h;
}

static void send_in_ack(mx_out *o, apr_uint32_t h)
{
    char a[64];
    int n = apr_snprintf(a, sizeof(a), "<a xmlns='" MX_NS_SM "' h='%u'/>",
                         h);

    emit(o, a, (size_t)n);
    o->in_acked = h;
}

static int on_sm_request(xmpp_conn_t *conn, xmpp_stanza_t *st, void *ud)
{
    mx_out *o = ud;

    o->in_asked = o->in_seq;
    send_in_ack(o, in_handled(o));
    flush_batch(o);
    return 1;
}

/* After an <r/> answered with fewer than asked: say more once more is
 * handled (an <a/> may come unasked). */
static void ack_inbound(mx_out *o)
{
    apr_uint32_t h;

    if (o->sm && (apr_int32_t)(o->in_acked - o->in_asked) < 0
        && (h = in_handled(o)) != o->in_acked)
        send_in_ack(o, h);
}

apr_uint32_t mx_out_in_seq(const mx_out *o)
{
    return o->in_seq;
}

void mx_out_set_handled(mx_out *o, apr_uint32_t (*fn)(void *, apr_uint32_t),
                        void *ud)
{
    o->handled = fn;
    o->handled_ud = ud;
}

/* Count what the server sends, for its <r/>. */
static int on_any(xmpp_conn_t *conn, xmpp_stanza_t *st, void *ud)
{
    mx_out *o = ud;
    const char *name = xmpp_stanza_get_name(st);

    o->elements++;
    if (name && (!strcmp(name, "message") || !strcmp(name, "presence")
                 || !strcmp(name, "iq")))
        o->in_seq++;
    return 1;
}

int mx_out_is_own_ping(const mx_out *o, xmpp_stanza_t *st)
{
    const char *id = xmpp_stanza_get_id(st);
    const char *type = xmpp_stanza_get_type(st);
    const char *from = xmpp_stanza_get_from(st);
    size_t plen = strlen(o->ack_prefix);

    return o->app->component && id && plen && !strncmp(id, o->ack_prefix, plen)
           && type && !strcmp(type, "get") && from
           && !strcasecmp(from, o->app->jid);
}

int mx_out_request_id(const char *purpose, char *buf, size_t size)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char r[16];
    char digits[2 * sizeof(r) + 1];
    size_t i;

    if (apr_generate_random_bytes(r, sizeof(r)) != APR_SUCCESS)
        return -1;
    for (i = 0; i < sizeof(r); i++) {
        digits[2 * i] = hex[r[i] >> 4];
        digits[2 * i + 1] = hex[r[i] & 15];
    }
    digits[2 * sizeof(r)] = '\0';
    return apr_snprintf(buf, size, "mx-%s-%s", purpose, digits)
           < (int)size - 1 ? 0 : -1;
}

/* RFC 6120 10.3.3: the server answers a request with no 'to' without a
 * 'from' or from the account's bare JID; a server domain's own answer
 * comes from the domain. */
int mx_out_from_server(const mx_app *app, xmpp_stanza_t *st)
{
    const char *from = xmpp_stanza_get_from(st);
    const char *at = strchr(app->jid, '@');

    if (!from)
        return 1;
    if (strchr(from, '/'))
        return 0;
    return mx_jid_same_bare(from, app->jid) || (at && !strchr(from, '@')
                                                && !strcasecmp(from, at + 1));
}

/* The answer to a ping barrier: a result, or an error from a server
 * without XEP-0199 (or, for a component, the ping itself, routed back);
 * any of them comes after all that was sent before it.
 * Only our own numbers of this session count. */
static int on_ping_ack(xmpp_conn_t *conn, xmpp_stanza_t *st, void *ud)
{
    mx_out *o = ud;
    const char *id = xmpp_stanza_get_id(st);
    const char *type = xmpp_stanza_get_type(st);
    size_t plen = strlen(o->ack_prefix);
    unsigned long h;
    char *end;

    if (!id || !type || (strcmp(type, "result") && strcmp(type, "error")
                             && !mx_out_is_own_ping(o, st))
        || !plen || strncmp(id, o->ack_prefix, plen) != 0
        || !mx_out_from_server(o->app, st))
        return 1;
    h = strtoul(id + plen, &end, 10);
    if (*end == '\0' && end != id + plen
        && (apr_int32_t)((apr_uint32_t)h - o->out_seq) <= 0)
        acked(o, (apr_uint32_t)h);
    return 1;
}

/* A prefix for this session's ping ids that no one else can know. */
static void new_ack_prefix(mx_out *o)
{
    char id[MX_OUT_ID_SIZE];

    o->ack_prefix[0] = o->ack_token[0] = '\0';
    if (mx_out_request_id("ack", id, sizeof(id)) != 0) {
        /* no ping answer counts then: a stall is better than a forgery */
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, o->app->s, MX_LOG_TAG "0259: "
                     "%s: no random numbers for the ids of ping round "
                     "trips; delivery is confirmed by stream management "
                     "acks only", o->app->jid);
        return;
    }
    apr_snprintf(o->ack_prefix, sizeof(o->ack_prefix), "%s-", id);
    apr_cpystrn(o->ack_token, id + strlen("mx-ack-"), sizeof(o->ack_token));
}

const char *mx_out_log_secret(const mx_out *o)
{
    return o && o->ack_token[0] ? o->ack_token : NULL;
}

void mx_out_on_login(mx_out *o, xmpp_ctx_t *ctx, xmpp_conn_t *conn,
                     int sm_offered)
{
    o->ctx = ctx;
    o->conn = conn;
    o->sm = sm_offered; /* <failed/> switches to ping barriers */
    o->out_seq = o->requested = o->in_seq = o->in_asked = o->in_acked = 0;
    new_ack_prefix(o);
    rewind_queue(o);
    xmpp_handler_add(conn, on_sm_enabled, MX_NS_SM, "enabled", NULL, o);
    xmpp_handler_add(conn, on_sm_failed, MX_NS_SM, "failed", NULL, o);
    xmpp_handler_add(conn, on_sm_ack, MX_NS_SM, "a", NULL, o);
    xmpp_handler_add(conn, on_sm_request, MX_NS_SM, "r", NULL, o);
    xmpp_handler_add(conn, on_any, NULL, NULL, NULL, o);
    xmpp_handler_add(conn, on_ping_ack, NULL, "iq", NULL, o);
    if (sm_offered) {
        xmpp_send_raw_string(conn, "<enable xmlns='" MX_NS_SM "'/>");
        return;
    }
    if (o->app->component) {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, o->app->s, MX_LOG_TAG "0250: "
                     "%s: a component has no stream management (XEP-0198): "
                     "ping round trips confirm delivery, and inbound stanzas "
                     "cannot be confirmed as handled", o->app->jid);
        return;
    }
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, o->app->s, MX_LOG_TAG "0255: "
                 "%s: the server does not offer stream management "
                 "(XEP-0198); using ping round trips to confirm delivery, "
                 "and inbound stanzas cannot be confirmed as handled",
                 o->app->jid);
}

unsigned long mx_out_received(const mx_out *o)
{
    return o->elements;
}

void mx_out_on_end(mx_out *o, const char *stream_error, int about_data)
{
    if (stream_error && o->len > 0) {
        mx_seq first = o->flight[o->head].record;
        mx_seq last = o->flight[(o->head + o->len - 1) % MX_WINDOW].record;

        /* a conflict or a shutdown blames no item */
        if (about_data && o->len == 1 && first == o->suspect)
            o->suspect_ends++;
        else if (about_data && o->len == 1) {
            o->suspect = first;
            o->suspect_ends = 1;
        }
        if (last > o->careful_to)
            o->careful_to = last;
        apr_cpystrn(o->suspect_why, stream_error, sizeof(o->suspect_why));
    }
    o->head = o->len = 0;
    o->batch_len = 0; /* sent again from the journal next session */
    o->conn = NULL;
}

int mx_out_flush(mx_out *o, unsigned int ms)
{
    apr_time_t end = apr_time_now() + apr_time_from_msec(ms);

    if (!o->conn)
        return 0;
    if (o->out_seq != o->requested || o->len > 0)
        ask_ack(o);
    ack_inbound(o);
    flush_batch(o);
    while (o->len > 0 && xmpp_conn_is_connected(o->conn)
           && apr_time_now() < end) {
        xmpp_run_once(o->ctx, 5);
        ack_inbound(o); /* answers of the last requests, once stored */
        flush_batch(o);
    }
    return o->len == 0;
}

mx_out *mx_out_create(mx_app *app, mx_qserver *q)
{
    mx_out *o = calloc(1, sizeof(*o));

    if (!o)
        return NULL;
    o->app = app;
    o->q = q;
    if (mx_jreader_open(app->dir, mx_qserver_acked(q) + 1, &o->reader)
        != 0) {
        log_read_error(app, errno);
        free(o);
        return NULL;
    }
    apr_pool_create_unmanaged_ex(&o->pool, NULL, NULL);
    apr_pool_create(&o->scratch, o->pool);
    return o;
}
