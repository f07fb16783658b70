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
 * drop the duplicate. Which records are in flight, when to ask and what
 * an answer covers is plain state in mx_window.c; this file reads the
 * journal, writes to libstrophe and tells it what happened.
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
#include <time.h>
#include <unistd.h>

#include "apr_general.h"
#include "apr_strings.h"
#include "httpd.h"
#include "http_log.h"

#include "mod_xmpp_outbound.h"
#include "mod_xmpp_trace.h"
#include "mx_jid.h"
#include "mx_log.h"
#include "mx_queue.h"
#include "mx_addr_roster.h"
#include "mx_window.h"

APLOG_USE_MODULE(xmpp);

#define MX_NS_SM          "urn:xmpp:sm:3"
#define MX_BATCH_BYTES    65536 /* hand libstrophe at most this at once */

struct mx_out {
    mx_app *app;
    mx_qserver *q;
    mx_jreader *reader;      /* the journal, from the first unacknowledged */
    xmpp_ctx_t *ctx;
    xmpp_conn_t *conn;
    apr_pool_t *pool;        /* lives as long as o */
    apr_pool_t *scratch;     /* cleared on every pump */
    mx_window *w;            /* in flight, acks, set-aside (mx_window.h) */
    unsigned long elements;  /* top-level elements received, all kinds */
    apr_time_t last_error;
    char *batch;             /* stanzas of this pump, sent as one write */
    size_t batch_len, batch_size;
    /* what was sent, for the console (mod_xmpp_trace.h) */
    void (*on_sent)(mx_app *app, const char *stanza, int subscribers);
    char ack_prefix[MX_OUT_ID_SIZE + 1]; /* "mx-ack-<random>-", per session */
    char ack_token[MX_OUT_ID_SIZE];      /* its random part, for the log */
};

static void ack_inbound(mx_out *o);

/* ---- queue bookkeeping ---- */

/* The window's clock: milliseconds, monotonic */
static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* An acknowledgement removed records from the window. */
static void acked(mx_out *o, const mx_window_done *d)
{
    if (d->last) /* the queue thread writes it down, removes old segments */
        mx_qserver_set_acked(o->q, d->last);
    if (d->sent)
        mx_shared_count(o->app->shared->sent, d->sent);
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
    mx_window_sent_stanza(o->w, now_ms());
}

void mx_out_send_other(mx_out *o, xmpp_stanza_t *st)
{
    flush_batch(o); /* keep the order */
    xmpp_send(o->conn, st);
    mx_window_sent_stanza(o->w, now_ms());
}

/* A component must address every stanza (Prosody refuses one without
 * 'to') and has no server address of its own to ping: the barrier goes to
 * its own domain, so the server routes it back to us after everything
 * sent before it (on_ping_ack). With several hosts connected as the
 * same domain, the server may route it to another host: the window then
 * sends another after a while (mx_window.h, "Barriers with several
 * hosts"). */
#define MX_PING_SIZE (2 * MX_JID_PART_MAX + MX_OUT_ID_SIZE + 128)
static int component_ping(mx_out *o, char *buf, size_t size, apr_uint32_t n)
{
    return apr_snprintf(buf, size, "<iq type='get' from='%s' to='%s' "
                        "id='%s%u'><ping xmlns='urn:xmpp:ping'/></iq>",
                        o->app->jid, o->app->jid, o->ack_prefix, n);
}

static void ask_ack(mx_out *o)
{
    static const char r[] = "<r xmlns='" MX_NS_SM "'/>";
    char ping[MX_PING_SIZE];
    apr_uint32_t barrier = mx_window_asked(o->w, now_ms());
    int n;

    if (mx_window_sm(o->w)) {
        emit(o, r, sizeof(r) - 1);
        return;
    }
    if (o->app->component)
        n = component_ping(o, ping, sizeof(ping), barrier);
    else
        n = apr_snprintf(ping, sizeof(ping), "<iq type='get' id='%s%u'>"
                         "<ping xmlns='urn:xmpp:ping'/></iq>", o->ack_prefix,
                         barrier);
    emit(o, ping, (size_t)n);
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
    mx_seq done = mx_window_skip(o->w, record);

    mx_shared_count(o->app->shared->failed, 1);
    if (done)
        mx_qserver_set_acked(o->q, done);
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
                 (apr_uint64_t)record, len, mx_window_poison_why(o->w),
                 keep_bad(o, record, stanza, len));
    skip_item(o, record);
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
    if (mx_window_poisoned(o->w, record)) {
        set_aside(o, record, item.stanza, item.stanza_len);
        free(data);
        return 1;
    }
    if (item.kind == MX_ITEM_SUBSCRIBERS)
        send_to_subscribers(o, item.stanza);
    else
        send_counted(o, item.stanza, item.stanza_len);
    if (o->on_sent)
        o->on_sent(o->app, item.stanza, item.kind == MX_ITEM_SUBSCRIBERS);
    free(data);
    mx_window_sent_record(o->w, record);
    return 1;
}

void mx_out_pump(mx_out *o)
{
    long long now = now_ms();

    apr_pool_clear(o->scratch);
    for (;;) {
        mx_seq next = mx_jreader_position(o->reader);
        int careful = mx_window_careful(o->w, next);

        if (!mx_window_may_send(o->w, next) || send_next(o) != 1)
            break;
        if (mx_window_ask_after_record(o->w, careful))
            ask_ack(o);
    }
    if (mx_window_ask_due(o->w, now))
        ask_ack(o);
    ack_inbound(o);
    flush_batch(o);
}

/* ---- dev mode ---- */

void mx_out_dev_pump(mx_out *o, xmpp_ctx_t *ctx)
{
    char *data;
    size_t len;
    mx_seq record, last = 0;
    mx_queue_item item;

    while (next_item(o, &data, &len, &record) == 1) {
        if (mx_queue_item_parse(data, len, &item) == 0)
            mx_trace_dev_send(o->app, ctx, item.stanza);
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

    mx_window_set_sm(o->w, 1);
    return 1;
}

static int on_sm_failed(xmpp_conn_t *conn, xmpp_stanza_t *st, void *ud)
{
    mx_out *o = ud;

    ap_log_error(APLOG_MARK, APLOG_INFO, 0, o->app->s, MX_LOG_TAG "0254: "
                 "%s: the server refused stream management; using ping "
                 "round trips to confirm delivery", o->app->jid);
    mx_window_set_sm(o->w, 0);
    ask_ack(o);
    flush_batch(o);
    return 1;
}

/* h: 1 to 10 digits, below 2^32; anything else is no count */
static int sm_count(const char *s, apr_uint32_t *h)
{
    char *end;
    unsigned long long v;

    if (!s || *s < '0' || *s > '9' || strlen(s) > 10)
        return -1;
    v = strtoull(s, &end, 10);
    if (*end != '\0' || v > 0xFFFFFFFFULL)
        return -1;
    *h = (apr_uint32_t)v;
    return 0;
}

static int on_sm_ack(xmpp_conn_t *conn, xmpp_stanza_t *st, void *ud)
{
    mx_out *o = ud;
    mx_window_done d;
    apr_uint32_t h;

    if (sm_count(xmpp_stanza_get_attribute(st, "h"), &h) == 0
        && mx_window_ack(o->w, h, &d) > 0)
        acked(o, &d);
    return 1;
}

static void send_in_ack(mx_out *o, apr_uint32_t h)
{
    char a[64];
    int n = apr_snprintf(a, sizeof(a), "<a xmlns='" MX_NS_SM "' h='%u'/>",
                         h);

    emit(o, a, (size_t)n);
}

static int on_sm_request(xmpp_conn_t *conn, xmpp_stanza_t *st, void *ud)
{
    mx_out *o = ud;

    send_in_ack(o, mx_window_in_request(o->w));
    flush_batch(o);
    return 1;
}

/* After an <r/> answered with fewer than asked: say more once more is
 * handled (an <a/> may come unasked). */
static void ack_inbound(mx_out *o)
{
    apr_uint32_t h;

    if (mx_window_in_more(o->w, &h))
        send_in_ack(o, h);
}

apr_uint32_t mx_out_in_seq(const mx_out *o)
{
    return mx_window_in_seq(o->w);
}

void mx_out_set_handled(mx_out *o, apr_uint32_t (*fn)(void *, apr_uint32_t),
                        void *ud)
{
    mx_window_set_handled(o->w, fn, ud);
}

/* Count what the server sends, for its <r/>. */
static int on_any(xmpp_conn_t *conn, xmpp_stanza_t *st, void *ud)
{
    mx_out *o = ud;
    const char *name = xmpp_stanza_get_name(st);

    o->elements++;
    if (name && (!strcmp(name, "message") || !strcmp(name, "presence")
                 || !strcmp(name, "iq")))
        mx_window_received(o->w);
    return 1;
}

/* A barrier ping of this domain: this host's, or another's connected as
 * the same component (it went out with our domain as from; the server
 * lets no one else use it). Nobody answers it: an answer would go to a
 * random host too, and nothing is gained by more traffic. */
int mx_out_is_own_ping(const mx_out *o, xmpp_stanza_t *st)
{
    const char *type = xmpp_stanza_get_type(st);
    const char *from = xmpp_stanza_get_from(st);

    return o->app->component && type && !strcmp(type, "get") && from
           && !strcasecmp(from, o->app->jid)
           && mx_window_barrier_kind(o->w, xmpp_stanza_get_id(st))
              != MX_BARRIER_NONE;
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
    const char *type = xmpp_stanza_get_type(st);
    mx_window_done d;

    if (!type || (strcmp(type, "result") && strcmp(type, "error")
                  && !mx_out_is_own_ping(o, st))
        || !mx_out_from_server(o->app, st))
        return 1;
    if (mx_window_barrier(o->w, xmpp_stanza_get_id(st), &d)
        == MX_BARRIER_OWN)
        acked(o, &d);
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
    new_ack_prefix(o);
    /* <failed/> switches to ping barriers */
    mx_window_start(o->w, sm_offered, o->ack_prefix[0] ? o->ack_prefix
                                                         : NULL);
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
    mx_window_end(o->w, stream_error, about_data);
    o->batch_len = 0; /* sent again from the journal next session */
    o->conn = NULL;
}

int mx_out_flush(mx_out *o, unsigned int ms)
{
    apr_time_t end = apr_time_now() + apr_time_from_msec(ms);

    if (!o->conn)
        return 0;
    if (mx_window_unsettled(o->w))
        ask_ack(o);
    ack_inbound(o);
    flush_batch(o);
    while (mx_window_in_flight(o->w) > 0 && xmpp_conn_is_connected(o->conn)
           && apr_time_now() < end) {
        xmpp_run_once(o->ctx, 5);
        if (mx_window_ask_due(o->w, now_ms())) /* a barrier went astray */
            ask_ack(o);
        ack_inbound(o); /* answers of the last requests, once stored */
        flush_batch(o);
    }
    return mx_window_in_flight(o->w) == 0;
}

mx_out *mx_out_create(mx_app *app, mx_qserver *q)
{
    mx_out *o = calloc(1, sizeof(*o));

    if (!o)
        return NULL;
    o->app = app;
    o->q = q;
    o->on_sent = mx_trace_sent;
    mx_log_set(mx_trace_core_log, NULL); /* the window's lines */
    if (!(o->w = mx_window_new(app))) {
        free(o);
        return NULL;
    }
    if (mx_jreader_open(app->dir, mx_qserver_acked(q) + 1, &o->reader)
        != 0) {
        log_read_error(app, errno);
        mx_window_free(o->w);
        free(o);
        return NULL;
    }
    apr_pool_create_unmanaged_ex(&o->pool, NULL, NULL);
    apr_pool_create(&o->scratch, o->pool);
    return o;
}
