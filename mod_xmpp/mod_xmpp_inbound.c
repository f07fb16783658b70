/* mod_xmpp_inbound: each inbound stanza of an enabled kind becomes a POST
 * to XMPPInboundPath + its path (mod_xmpp_inject runs it), and what the
 * handler answered becomes a reply or an error for the sender.
 *
 * Requests run on a small pool of threads of the holding child, so a slow
 * handler does not stall the XMPP connection; when its queue is full the
 * sender gets an error. Answers (replies, errors) go through the durable
 * outbound queue, like every send. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <strophe.h>

#include "apr_strings.h"
#include "apr_thread_pool.h"
#include "httpd.h"
#include "http_log.h"

#include "mod_xmpp_inbound.h"
#include "mod_xmpp_inject.h"
#include "mod_xmpp_outbound.h"
#include "mx_inbound.h"
#include "mx_jid.h"
#include "mx_qclient.h"
#include "mx_queue.h"
#include "mx_send.h"
#include "mx_xmltext.h"

APLOG_USE_MODULE(xmpp);

extern module AP_MODULE_DECLARE_DATA xmpp_module;

#define MX_IN_QUEUE       64       /* stanzas waiting for a thread */
/* the stanza an answer becomes: below what servers take from a client
 * (Prosody's c2s_stanza_size_limit and ejabberd's max_stanza_size are
 * 256 KiB), less room for what the server adds */
#define MX_IN_MAX_STANZA  (255 * 1024)
#define MX_IN_RETRIES     3        /* for 503 answers */
#define MX_IN_RETRY_MS    500      /* doubled each time */

/* A stanza given to a request thread, by its number in the session */
typedef struct {
    apr_uint32_t seq;
    int running;
    apr_uint64_t ticket;         /* its answer's, in the queue thread */
} mx_pending;

struct mx_inbound {
    mx_app *app;
    mx_qserver *queue;           /* this child's queue thread */
    apr_pool_t *pool;
    apr_sockaddr_t *local_addr;  /* an address the app's host listens on */
    apr_thread_pool_t *threads;
    volatile int stopping;
    /* What the server is told we handled (XEP-0198 h) stops before the
     * first stanza whose request has not finished, or whose answer is
     * not in the journal yet: if the child dies, the server still has
     * it and bounces it to its sender (or keeps it offline) instead of
     * its loss going unseen. */
    pthread_mutex_t ack_lock;
    apr_uint32_t gen;            /* the session; numbers restart with it */
    mx_pending *pend;
    size_t npend, cappend;
    int kept;                    /* a stanza left unhandled (stopping) */
    apr_uint32_t kept_seq;
};

/* One inbound stanza and its request. Allocated with malloc: it crosses
 * from the holder thread to a request thread. */
typedef struct mx_inreq {
    mx_inject q;                 /* the request and its answer */
    mx_inbound *in;
    apr_uint32_t gen, seq;       /* the session, the stanza's number */
    apr_uint64_t ticket;         /* of its answer in the queue thread */
} mx_inreq;

/* ---- the stanza ---- */

static void inreq_free(mx_inreq *ir)
{
    mx_inject_clear(&ir->q);
    free(ir);
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* Text of a child element, malloc'd, or NULL */
static char *child_text(xmpp_ctx_t *ctx, xmpp_stanza_t *st, const char *name)
{
    xmpp_stanza_t *c = xmpp_stanza_get_child_by_name(st, name);
    char *t = c ? xmpp_stanza_get_text(c) : NULL;
    char *out = dup_or_null(t);

    if (t)
        xmpp_free(ctx, t);
    return out;
}

/* Put an answer in the outbound queue; log when it cannot be. *ticket:
 * the queue thread's, for the acknowledgement to wait for. */
static void queue_answer(mx_inbound *in, char *stanza, const char *what,
                         apr_uint64_t *ticket)
{
    char err[256];

    if (!stanza)
        return;
    /* handed to this child's queue thread without waiting for it: the
     * stanza it answers was acknowledged to the server on receipt, so a
     * crash loses the exchange either way (a send that says NO_ERROR is
     * another matter, and waits for the disk); the console's simulation
     * has no queue thread of its own and goes the senders' way */
    if (in->queue && mx_qserver_put_local(in->queue, MX_ITEM_STANZA, stanza,
                                          strlen(stanza), ticket) == 0) {
        free(stanza);
        return;
    }
    if (mx_queue_submit(in->app->dir, MX_ITEM_STANZA, stanza, strlen(stanza),
                        0, err, sizeof(err)) != 0)
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, in->app->s, MX_LOG_TAG
                     "0501: %s: cannot queue the %s: %s", in->app->jid,
                     what, err);
    free(stanza);
}

/* Tell the sender that its stanza could not be handled. Never for a
 * stanza of type error (that could loop), and only for messages: a
 * presence has no one waiting for an answer. */
static void error_answer(mx_inreq *ir, const char *etype, const char *cond,
                         const char *text)
{
    mx_app *app = ir->in->app;

    mx_shared_count(app->shared->failed, 1);
    if (strcmp(ir->q.name, "message") || (ir->q.type && !strcmp(ir->q.type,
                                                             "error")))
        return;
    queue_answer(ir->in, mx_error_stanza(ir->q.name, ir->q.to, ir->q.from, ir->q.id,
                                         etype, cond, text),
                 "error answer", &ir->ticket);
}

/* ---- what the answer means ---- */

static int is_type(const char *ctype, const char *want)
{
    size_t n = strlen(want);

    return ctype && !strncasecmp(ctype, want, n)
           && (ctype[n] == '\0' || ctype[n] == ';' || ctype[n] == ' ');
}

/* A handler's stanza, as it goes out. A component must say from which
 * of its addresses (else Prosody puts the bare domain): the one the
 * stanza answered was sent to, unless the handler chose another of its
 * own; one of another domain would make the server close the stream. */
static char *raw_answer(mx_inreq *ir)
{
    mx_app *app = ir->in->app;
    char *out;
    int bad = 0;

    if (!app->component)
        return strdup(ir->q.reply);
    out = mx_stanza_from_component(ir->q.reply, ir->q.to, app->jid, &bad);
    if (bad)
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, app->s, MX_LOG_TAG "0550: %s: "
                     "the application/xmpp+xml answer of %s%s is from an "
                     "address that is not the component's; not sent",
                     app->jid, mx_conf_inbound_path(app->conf), ir->q.path);
    return out;
}

/* An answer that cannot be sent: logged once (the stanza is answered
 * once), counted as failed, and the sender told. The stanza counts as
 * handled: sent anyway, the server would close the stream on it, and the
 * stanza, not yet acknowledged, would come back to the next session and
 * get the same answer, keeping the app offline. */
static void bad_answer(mx_inreq *ir, const char *what, const char *why,
                       const char *fix)
{
    mx_app *app = ir->in->app;
    char text[300];

    ap_log_error(APLOG_MARK, APLOG_ERR, 0, app->s, MX_LOG_TAG "0508: %s: the "
                 "%s answer of %s%s to a %s from %s cannot be sent: %s; the "
                 "sender gets an error. %s", app->jid, what,
                 mx_conf_inbound_path(app->conf), ir->q.path, ir->q.name,
                 ir->q.from ? ir->q.from : "?", why, fix);
    apr_snprintf(text, sizeof(text), "the application's answer could not be "
                 "sent: %s", why);
    error_answer(ir, "cancel", "internal-server-error", text);
}

/* An application/xmpp+xml answer goes out as it is: exactly one stanza */
static void stanza_answer(mx_inreq *ir)
{
    const char *why = memchr(ir->q.reply, '\0', ir->q.reply_len)
                      ? "it contains a NUL byte" : mx_stanza_problem(ir->q.reply);

    if (!why && ir->q.reply_len > MX_IN_MAX_STANZA)
        why = "it is larger than what XMPP servers take";
    if (why) {
        bad_answer(ir, "application/xmpp+xml", why, "Such an answer must be "
                   "exactly one <message>, <presence> or <iq> stanza, "
                   "well-formed UTF-8 XML.");
        return;
    }
    queue_answer(ir->in, raw_answer(ir), "stanza answer", &ir->ticket);
}

/* A text/plain answer becomes the <body> of a chat reply */
static void text_answer(mx_inreq *ir)
{
    char id[MX_ID_SIZE], buf[100];
    const char *why = mx_xml_text_problem(ir->q.reply, ir->q.reply_len, buf,
                                          sizeof(buf));
    char *stanza;

    if (why) {
        bad_answer(ir, "text/plain", why, "Such an answer must be UTF-8 text "
                   "without control characters other than tab, LF and CR "
                   "(a handler that cuts or reverses bytes can split a "
                   "character).");
        return;
    }
    mx_new_id(id, sizeof(id));
    stanza = mx_message_stanza(ir->q.to, ir->q.from, "chat", ir->q.reply, 0, id);
    if (stanza && strlen(stanza) > MX_IN_MAX_STANZA) {
        free(stanza);
        bad_answer(ir, "text/plain", "it is larger than what XMPP servers "
                   "take", "Send a shorter answer.");
        return;
    }
    queue_answer(ir->in, stanza, "reply", &ir->ticket);
}

static void answer(mx_inreq *ir)
{
    int xml = is_type(ir->q.ctype, "application/xmpp+xml");
    int text = is_type(ir->q.ctype, "text/plain") && ir->q.from && ir->q.to;

    if (ir->q.status_code != HTTP_OK || !ir->q.reply_len
        || (ir->q.type && !strcmp(ir->q.type, "error")) || (!xml && !text))
        return; /* 202, 204, empty, another type: nothing to say */
    if (ir->q.reply_too_long) {
        char why[80];

        apr_snprintf(why, sizeof(why), "it is longer than %d bytes",
                     MX_INJECT_MAX_REPLY);
        bad_answer(ir, xml ? "application/xmpp+xml" : "text/plain", why,
                   "Send a shorter answer.");
    }
    else if (xml)
        stanza_answer(ir);
    else
        text_answer(ir);
}

/* Run ir's request (503 retried), then act on the answer. */
static void handle(mx_inreq *ir, apr_thread_t *t)
{
    mx_app *app = ir->in->app;
    unsigned int wait = MX_IN_RETRY_MS;
    int attempt;

    for (attempt = 0; ; attempt++) {
        mx_inject_run(&ir->q, t);
        if (ir->q.status_code != HTTP_SERVICE_UNAVAILABLE
            || attempt >= MX_IN_RETRIES || ir->in->stopping)
            break;
        apr_sleep(apr_time_from_msec(wait));
        wait *= 2;
    }
    if (ir->q.status_code >= 400) {
        int unavailable = ir->q.status_code == HTTP_SERVICE_UNAVAILABLE;

        /* 4xx: nobody handles the path (404), or it is protected (403):
         * the configuration's fault, said so, and the sender told */
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, app->s, MX_LOG_TAG "0504: %s: "
                     "the handler of %s%s answered %d to a %s from %s%s",
                     app->jid, mx_conf_inbound_path(app->conf), ir->q.path,
                     ir->q.status_code, ir->q.name, ir->q.from,
                     unavailable ? " (after retries)"
                     : ir->q.status_code == HTTP_NOT_FOUND
                     ? "; map a handler to that path"
                     : ir->q.status_code == HTTP_FORBIDDEN
                     ? "; the inbound path needs Require xmpp-internal" : "");
        error_answer(ir, unavailable ? "wait" : "cancel",
                     ir->q.status_code < 500 ? "service-unavailable"
                     : unavailable ? "service-unavailable"
                     : "internal-server-error",
                     "the application could not handle this message");
    }
    else {
        answer(ir);
    }
}

/* ---- what the server is told we handled ---- */

/* Stanza seq of this session went to a request thread (running), or was
 * answered at once (its answer's ticket). Untracked when out of memory:
 * then it counts as handled, as everything did before. */
static void pending_add(mx_inbound *in, apr_uint32_t seq, int running,
                        apr_uint64_t ticket)
{
    mx_pending *grown;

    pthread_mutex_lock(&in->ack_lock);
    if (in->npend == in->cappend) {
        size_t cap = in->cappend ? in->cappend * 2 : 64;

        if ((grown = realloc(in->pend, cap * sizeof(*grown))) != NULL) {
            in->pend = grown;
            in->cappend = cap;
        }
    }
    if (in->npend < in->cappend) {
        in->pend[in->npend].seq = seq;
        in->pend[in->npend].running = running;
        in->pend[in->npend++].ticket = ticket;
    }
    pthread_mutex_unlock(&in->ack_lock);
}

/* The request of ir is over; its answer (if any) has ticket. */
static void pending_done(mx_inbound *in, apr_uint32_t gen, apr_uint32_t seq,
                         apr_uint64_t ticket)
{
    size_t i;

    pthread_mutex_lock(&in->ack_lock);
    for (i = 0; gen == in->gen && i < in->npend; i++) {
        if (in->pend[i].seq == seq) {
            in->pend[i].running = 0;
            in->pend[i].ticket = ticket;
            break;
        }
    }
    pthread_mutex_unlock(&in->ack_lock);
}

apr_uint32_t mx_inbound_handled(void *data, apr_uint32_t received)
{
    mx_inbound *in = data;
    apr_uint64_t stored = in->queue ? mx_qserver_stored(in->queue)
                                    : ~(apr_uint64_t)0;
    apr_uint32_t h = received;
    size_t i = 0;

    pthread_mutex_lock(&in->ack_lock);
    while (i < in->npend) {
        mx_pending *pd = &in->pend[i];

        if (pd->running || pd->ticket > stored) {
            if ((apr_int32_t)(pd->seq - 1 - h) < 0)
                h = pd->seq - 1;
            i++;
        }
        else {
            *pd = in->pend[--in->npend]; /* finished: forget it */
        }
    }
    if (in->kept && (apr_int32_t)(in->kept_seq - 1 - h) < 0)
        h = in->kept_seq - 1;
    pthread_mutex_unlock(&in->ack_lock);
    return h;
}

static void *APR_THREAD_FUNC request_task(apr_thread_t *t, void *data)
{
    mx_inreq *ir = data;

    handle(ir, t);
    pending_done(ir->in, ir->gen, ir->seq, ir->ticket);
    inreq_free(ir);
    return NULL;
}

/* ---- the holder's side ---- */

/* libstrophe's parser keeps xml:lang as "lang", and the stanza's
 * namespace is the stream's default: give both back, so that the stanza
 * part is the stanza as received. */
static void restore_xml(xmpp_stanza_t *st, int top)
{
    const char *lang = xmpp_stanza_get_attribute(st, "lang");
    xmpp_stanza_t *c;
    char *copy;

    if (lang && (copy = strdup(lang)) != NULL) {
        xmpp_stanza_del_attribute(st, "lang");
        xmpp_stanza_set_attribute(st, "xml:lang", copy);
        free(copy);
    }
    if (top && !xmpp_stanza_get_ns(st))
        xmpp_stanza_set_ns(st, "jabber:client");
    /* children of the stanza's own namespace (body, subject, status...);
     * a "lang" of a foreign element is its own business */
    for (c = xmpp_stanza_get_children(st); c; c = xmpp_stanza_get_next(c))
        if (xmpp_stanza_is_tag(c) && !xmpp_stanza_get_ns(c))
            restore_xml(c, 0);
}

static mx_inreq *inreq_from_stanza(mx_inbound *in, xmpp_ctx_t *ctx,
                                   xmpp_stanza_t *st, const char *path,
                                   int kind)
{
    mx_inreq *ir = calloc(1, sizeof(*ir));
    xmpp_stanza_t *copy;
    char *text = NULL;
    size_t len;

    if (!ir)
        return NULL;
    ir->q.mark.magic = mx_authz_marker;
    ir->in = in;
    ir->q.app = in->app;
    ir->q.local_addr = in->local_addr;
    ir->q.kind = kind;
    ir->q.path = path;
    ir->q.name = dup_or_null(xmpp_stanza_get_name(st));
    ir->q.type = dup_or_null(xmpp_stanza_get_type(st));
    ir->q.id = dup_or_null(xmpp_stanza_get_id(st));
    ir->q.from = dup_or_null(xmpp_stanza_get_from(st));
    ir->q.to = dup_or_null(xmpp_stanza_get_to(st));
    if (!ir->q.to)
        ir->q.to = strdup(in->app->full_jid);
    if (!strcmp(ir->q.name, "message")) {
        ir->q.body = child_text(ctx, st, "body");
        if (ir->q.body)
            mx_inbound_command(ir->q.body, &ir->q.command, &ir->q.arg);
    }
    else {
        ir->q.show = child_text(ctx, st, "show");
        ir->q.status = child_text(ctx, st, "status");
    }
    copy = xmpp_stanza_copy(st);
    if (copy) {
        restore_xml(copy, 1);
        if (xmpp_stanza_to_text(copy, &text, &len) == XMPP_EOK) {
            ir->q.stanza = strdup(text);
            xmpp_free(ctx, text);
        }
        xmpp_stanza_release(copy);
    }
    if (!ir->q.name || !ir->q.stanza || mx_inject_build(&ir->q) != 0) {
        inreq_free(ir);
        return NULL;
    }
    return ir;
}

typedef struct {
    mx_inbound *in;
    xmpp_ctx_t *ctx;
    mx_out *out;                 /* numbers the stanzas (its handler runs
                                  * before ours) */
} handler_ctx;

/* No thread free and the queue full: the sender is told. Frees ir;
 * returns its answer's ticket. */
static apr_uint64_t busy_answer(mx_inreq *ir)
{
    mx_inbound *in = ir->in;
    apr_uint64_t ticket;

    ap_log_error(APLOG_MARK, APLOG_ERR, 0, in->app->s, MX_LOG_TAG "0506: "
                 "%s: %d inbound requests are waiting already; the %s from "
                 "%s gets an error answer", in->app->jid, MX_IN_QUEUE,
                 ir->q.name, ir->q.from);
    error_answer(ir, "wait", "resource-constraint",
                 "the application is busy; try again later");
    ticket = ir->ticket;
    inreq_free(ir);
    return ticket;
}

/* A component that stops cannot leave a stanza to the next session: the
 * server counts it delivered once written to our socket. A message gets
 * an error its sender can act on (queued, so it goes out at the latest
 * with the next session); a presence has no one waiting for an answer. */
static void bounce_stopping(mx_inbound *in, xmpp_stanza_t *st)
{
    const char *type = xmpp_stanza_get_type(st);
    apr_uint64_t ticket;

    if (strcmp(xmpp_stanza_get_name(st), "message")
        || (type && !strcmp(type, "error")) || !xmpp_stanza_get_from(st))
        return;
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, in->app->s, MX_LOG_TAG "0551: "
                 "%s: stopping: the message from %s to %s is answered with "
                 "an error (a component cannot leave it to the next "
                 "session)", in->app->jid, xmpp_stanza_get_from(st),
                 xmpp_stanza_get_to(st) ? xmpp_stanza_get_to(st) : "?");
    queue_answer(in, mx_error_stanza("message", xmpp_stanza_get_to(st)
                                     ? xmpp_stanza_get_to(st) : in->app->jid,
                                     xmpp_stanza_get_from(st),
                                     xmpp_stanza_get_id(st), "wait",
                                     "recipient-unavailable",
                                     "the application is restarting; try "
                                     "again"),
                 "error answer", &ticket);
}

/* Stopping: a component bounces the stanza, a client leaves it (and all
 * after it) unacknowledged. Returns 1 when st was dealt with so. */
static int stopping_branch(mx_inbound *in, xmpp_stanza_t *st, apr_uint32_t seq)
{
    const char *name = xmpp_stanza_get_name(st), *from;

    if (!in->stopping || !name)
        return 0;
    if (in->app->component) {
        /* no acknowledgement to hold back: the sender is told instead */
        bounce_stopping(in, st);
        return 1;
    }
    if (strcmp(name, "message") && strcmp(name, "presence"))
        return 0;
    from = xmpp_stanza_get_from(st);
    /* not handled: not acknowledged either, from here on */
    pthread_mutex_lock(&in->ack_lock);
    if (!in->kept) {
        in->kept = 1;
        in->kept_seq = seq;
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, in->app->s, MX_LOG_TAG "0507: "
                     "%s: stopping: the %s from %s (and any after it) is "
                     "left unacknowledged; the server delivers it to the "
                     "next session, or bounces it", in->app->jid, name,
                     from ? from : "?");
    }
    pthread_mutex_unlock(&in->ack_lock);
    return 1;
}

/* Whether st is a contact's message or presence of an enabled kind: then
 * 1, its path and kind. Every contact's stanza is recorded as traffic. */
static int filter(mx_inbound *in, xmpp_ctx_t *ctx, xmpp_stanza_t *st,
                  const char **path, int *kind)
{
    mx_app *app = in->app;
    const char *name = xmpp_stanza_get_name(st);
    const char *from = xmpp_stanza_get_from(st);
    const char *type = xmpp_stanza_get_type(st);
    xmpp_stanza_t *body;
    char *text;
    int has_body;

    /* the app's own presence (the server's echo, its other resources)
     * is not a contact's; a message from another resource of the app's
     * account is posted like any */
    if (!name || (strcmp(name, "message") && strcmp(name, "presence"))
        || !from || !strcmp(from, app->full_jid)
        || (!strcmp(name, "presence") && mx_jid_same_bare(from, app->jid)))
        return 0;
    body = xmpp_stanza_get_child_by_name(st, "body");
    text = body ? xmpp_stanza_get_text(body) : NULL;
    has_body = text && *text;
    mx_traffic_add(app->shared, '<', type ? type : name, from,
                   text ? text : "");
    if (text)
        xmpp_free(ctx, text);
    return mx_inbound_route(name, type, has_body, path, kind) == 0
           && (*kind & mx_conf_inbound(app->conf));
}

/* Hand stanza seq to a request thread, or answer "busy" when none is
 * free and the queue is full. */
static void dispatch(mx_inbound *in, xmpp_ctx_t *ctx, xmpp_stanza_t *st,
                     const char *path, int kind, apr_uint32_t seq)
{
    mx_inreq *ir;

    mx_shared_count(in->app->shared->received, 1);
    ir = inreq_from_stanza(in, ctx, st, path, kind);
    if (!ir) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, in->app->s, MX_LOG_TAG "0505: "
                     "%s: out of memory for an inbound %s from %s",
                     in->app->jid, xmpp_stanza_get_name(st),
                     xmpp_stanza_get_from(st));
        return;
    }
    ir->gen = in->gen;
    ir->seq = seq;
    if (apr_thread_pool_tasks_count(in->threads) >= MX_IN_QUEUE) {
        pending_add(in, seq, 0, busy_answer(ir));
        return;
    }
    pending_add(in, seq, 1, 0); /* before the thread can finish it */
    if (apr_thread_pool_push(in->threads, request_task, ir, 0, NULL)
        != APR_SUCCESS)
        pending_done(in, in->gen, seq, busy_answer(ir));
}

static int on_stanza(xmpp_conn_t *conn, xmpp_stanza_t *st, void *ud)
{
    handler_ctx *hc = ud;
    apr_uint32_t seq = mx_out_in_seq(hc->out);
    const char *path;
    int kind;

    if (!stopping_branch(hc->in, st, seq)
        && filter(hc->in, hc->ctx, st, &path, &kind))
        dispatch(hc->in, hc->ctx, st, path, kind, seq);
    return 1;
}

void mx_inbound_on_login(mx_inbound *in, xmpp_ctx_t *ctx, xmpp_conn_t *conn,
                         mx_out *out)
{
    handler_ctx *hc = apr_pcalloc(in->pool, sizeof(*hc));

    /* a new session counts from 0: what runs for the old one is its own */
    pthread_mutex_lock(&in->ack_lock);
    in->gen++;
    in->npend = 0;
    in->kept = 0;
    pthread_mutex_unlock(&in->ack_lock);
    hc->in = in;
    hc->ctx = ctx;
    hc->out = out;
    /* one registration: libstrophe ignores a second one of the same
     * function with the same user data, whatever the element name */
    xmpp_handler_add(conn, on_stanza, NULL, NULL, NULL, hc);
}

void mx_inbound_stop(mx_inbound *in, unsigned int ms)
{
    apr_time_t end = apr_time_now() + apr_time_from_msec(ms);

    in->stopping = 1;
    while ((apr_thread_pool_busy_count(in->threads)
            || apr_thread_pool_tasks_count(in->threads))
           && apr_time_now() < end)
        apr_sleep(apr_time_from_msec(10));
}

mx_inbound *mx_inbound_create(mx_app *app, mx_qserver *queue)
{
    mx_inbound *in = calloc(1, sizeof(*in));
    apr_size_t threads = (apr_size_t)mx_conf_inbound_threads(app->conf);

    if (!in)
        return NULL;
    in->app = app;
    in->queue = queue;
    pthread_mutex_init(&in->ack_lock, NULL);
    apr_pool_create_unmanaged_ex(&in->pool, NULL, NULL);
    in->local_addr = mx_inject_local_addr(app, in->pool);
    /* all threads from the start, and kept: a thread per stanza (the pool
     * lets idle ones exit by default) costs more than the request */
    if (apr_thread_pool_create(&in->threads, threads, threads, in->pool)
        != APR_SUCCESS) {
        free(in);
        return NULL;
    }
    apr_thread_pool_idle_max_set(in->threads, threads);
    return in;
}

/* ---- the console's simulation ---- */

const char *mx_inbound_simulate(request_rec *r, mx_app *app,
                                const char *stanza, mx_sim_result *res)
{
    mx_inbound in = { 0 };
    xmpp_ctx_t *ctx;
    xmpp_stanza_t *st;
    xmpp_stanza_t *body;
    char *text;
    const char *path, *why = NULL;
    int kind;
    mx_inreq *ir = NULL;

    memset(res, 0, sizeof(*res));
    in.app = app;
    in.pool = r->pool;
    in.local_addr = mx_inject_local_addr(app, r->pool);
    /* a context of our own: libstrophe's belongs to the holder thread */
    if (!(ctx = xmpp_ctx_new(NULL, NULL)))
        return "out of memory";
    st = xmpp_stanza_new_from_string(ctx, stanza);
    body = st ? xmpp_stanza_get_child_by_name(st, "body") : NULL;
    text = body ? xmpp_stanza_get_text(body) : NULL;
    if (!st)
        why = "not a stanza";
    else if (mx_inbound_route(xmpp_stanza_get_name(st),
                              xmpp_stanza_get_type(st), text && *text, &path,
                              &kind) != 0)
        why = "mod_xmpp does not post such a stanza (e.g. a message "
              "without body)";
    else if (!(kind & mx_conf_inbound(app->conf)))
        why = "its kind is not in XMPPInboundServices";
    else if (!(ir = inreq_from_stanza(&in, ctx, st, path, kind)))
        why = "out of memory";
    if (text)
        xmpp_free(ctx, text);
    if (st)
        xmpp_stanza_release(st);
    xmpp_ctx_free(ctx);
    if (!ir)
        return why;
    handle(ir, r->connection->current_thread);
    res->path = apr_pstrcat(r->pool, mx_conf_inbound_path(app->conf),
                            ir->q.path, NULL);
    res->status = ir->q.status_code;
    res->content_type = ir->q.ctype ? apr_pstrdup(r->pool, ir->q.ctype) : NULL;
    res->body = ir->q.reply ? apr_pstrmemdup(r->pool, ir->q.reply,
                                           ir->q.reply_len) : NULL;
    inreq_free(ir);
    return NULL;
}

