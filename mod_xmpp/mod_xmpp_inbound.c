/* SPDX-License-Identifier: Apache-2.0 */
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
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <strophe.h>

#include "apr_portable.h"
#include "apr_strings.h"
#include "apr_thread_pool.h"
#include "httpd.h"
#include "http_log.h"

#include "mod_xmpp_inbound.h"
#include "mod_xmpp_inject.h"
#include "mod_xmpp_outbound.h"
#include "mx_inbound.h"
#include "mx_inq.h"
#include "mx_jid.h"
#include "mx_journal.h"
#include "mx_qclient.h"
#include "mx_item.h"
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
#define MX_IN_DONES       64       /* done bounds waiting for answers */
/* how often the inbound journal's "acked" file is rewritten (a rename
 * and a directory read): after a crash, what was done since is posted
 * again, which XMPP_ATTEMPT tells */
#define MX_IN_ACKED_MS    100
/* a stanza on its way to the committer: not handled until it has a turn */
#define MX_IN_UNKEPT      (~(apr_uint64_t)0)

/* A stanza given to a request thread, by its number in the session */
typedef struct {
    apr_uint32_t seq;
    int running;
    apr_uint64_t ticket;         /* its answer's, in the queue thread */
    apr_uint64_t kept;           /* its turn in the committer, or 0 */
} mx_pending;

/* A stanza handed to the committer thread, to be appended */
typedef struct {
    char *data;                  /* its record */
    size_t len;
    struct mx_inreq *ir;         /* for an error answer if it fails */
    apr_uint64_t turn;
} mx_tocommit;

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
    /* The inbound journal (<spool>/<app>/inbound/journal/): the holder
     * thread hands a stanza to the committer thread, which appends a
     * whole batch and makes it durable with one fdatasync (group
     * commit), off the XMPP thread; the stanza counts as handled once
     * its batch is durable; workers post from the journal. NULL: posted
     * directly (threads). Only the committer touches jw. */
    mx_journal *jw;
    pthread_t committer;
    int has_committer;
    int c_quit;                  /* under c_lock: end after a last turn */
    pthread_mutex_t c_lock;
    pthread_cond_t c_cond;       /* the committer has work, or must end */
    pthread_cond_t c_room;       /* the committer took a batch */
    mx_tocommit *c_items, *c_batch;
    size_t c_n;
    apr_uint64_t c_turns;        /* under c_lock: the last turn given */
    apr_uint64_t c_failed;       /* atomic: turns that could not be kept */
    apr_uint64_t c_durable;      /* atomic: turns up to it are durable
                                  * (or were answered with an error) */
    mx_seq durable;              /* records below it are synced */
    mx_seq recovered;            /* below it: kept by an earlier holder */
    mx_seq done;                 /* every record up to it is done */
    mx_seq acked_set;            /* what the journal was told of it */
    apr_time_t acked_at;         /* when */
    /* Done bounds waiting for their answers to be in the outbound
     * journal: (bound, the highest answer ticket up to it), oldest
     * first. A worker goes on with its sender's next stanza at once;
     * the journal forgets a record only when its answer is stored. */
    struct { mx_seq bound; apr_uint64_t ticket; } dones[MX_IN_DONES];
    size_t ndones;
    apr_uint64_t max_ticket;
    apr_time_t refused_logged;   /* the last "queue full" log line */
    pthread_mutex_t run_lock;    /* the window and the reader */
    pthread_cond_t run_cond;
    mx_inq *window;
    mx_jreader *jr;
    mx_jreader *jr2;             /* reads deferred records again */
    pthread_t *workers;
    int nworkers;
    volatile int active;         /* workers not yet ended */
    volatile int quit;
};

/* One inbound stanza and its request. Allocated with malloc: it crosses
 * from the holder thread to a request thread. */
typedef struct mx_inreq {
    mx_inject q;                 /* the request and its answer */
    mx_inbound *in;
    apr_uint32_t gen, seq;       /* the session, the stanza's number */
    apr_uint64_t ticket;         /* of its answer in the queue thread */
    char *path;                  /* a kept stanza's: q.path points here */
    int tries;                   /* a kept stanza's, by this holder */
    apr_time_t first_try;
} mx_inreq;

/* ---- the stanza ---- */

static void inreq_free(mx_inreq *ir)
{
    mx_inject_clear(&ir->q);
    free(ir->path);
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

/* Act on what ir's request answered: a reply, or the sender told of a
 * failure (after `tries` when it was tried more than once). */
static void answer_or_error(mx_inreq *ir)
{
    mx_app *app = ir->in->app;
    int code = ir->q.status_code;
    int unavailable = code == HTTP_SERVICE_UNAVAILABLE;

    if (code < 400) {
        answer(ir);
        return;
    }
    /* 4xx: nobody handles the path (404), or it is protected (403):
     * the configuration's fault, said so, and the sender told */
    ap_log_error(APLOG_MARK, APLOG_ERR, 0, app->s, MX_LOG_TAG "0504: %s: "
                 "the handler of %s%s answered %d to a %s from %s%s",
                 app->jid, mx_conf_inbound_path(app->conf), ir->q.path,
                 code, ir->q.name, ir->q.from,
                 code >= 500 && ir->tries > 1 ? " (after retries)"
                 : unavailable ? " (after retries)"
                 : code == HTTP_NOT_FOUND
                 ? "; map a handler to that path (not retried)"
                 : code == HTTP_FORBIDDEN
                 ? "; the inbound path needs Require xmpp-internal (not "
                   "retried)" : "");
    mx_shared_count(app->shared->in_failed, 1);
    error_answer(ir, unavailable ? "wait" : "cancel",
                 code < 500 || unavailable ? "service-unavailable"
                 : "internal-server-error",
                 "the application could not handle this message");
}

/* Without the journal: run ir's request (503 retried), then act on the
 * answer. */
static void handle(mx_inreq *ir, apr_thread_t *t)
{
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
    answer_or_error(ir);
}

/* ---- what the server is told we handled ---- */

/* Stanza seq of this session went to a request thread (running), or was
 * answered at once (its answer's ticket). Untracked when out of memory:
 * then it counts as handled, as everything did before. */
static void pending_add(mx_inbound *in, apr_uint32_t seq, int running,
                        apr_uint64_t ticket, apr_uint64_t kept)
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
        in->pend[in->npend].kept = kept;
        in->pend[in->npend++].ticket = ticket;
    }
    pthread_mutex_unlock(&in->ack_lock);
}

/* Stanza seq of this session is the committer's turn (unless it was
 * answered already) */
static void pending_kept(mx_inbound *in, apr_uint32_t seq, apr_uint64_t turn)
{
    size_t i;

    pthread_mutex_lock(&in->ack_lock);
    for (i = in->npend; i > 0; i--) {
        if (in->pend[i - 1].seq == seq) {
            if (in->pend[i - 1].kept == MX_IN_UNKEPT)
                in->pend[i - 1].kept = turn;
            break;
        }
    }
    pthread_mutex_unlock(&in->ack_lock);
}

/* The request of ir is over (or its stanza could not be kept); its
 * answer (if any) has ticket. */
static void pending_done(mx_inbound *in, apr_uint32_t gen, apr_uint32_t seq,
                         apr_uint64_t ticket)
{
    size_t i;

    pthread_mutex_lock(&in->ack_lock);
    for (i = 0; gen == in->gen && i < in->npend; i++) {
        if (in->pend[i].seq == seq) {
            in->pend[i].running = 0;
            in->pend[i].kept = 0;
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
    apr_uint64_t durable = __atomic_load_n(&in->c_durable,
                                           __ATOMIC_ACQUIRE);
    apr_uint32_t h = received;
    size_t i = 0;

    /* what the server is told of must be on disk: its batch synced */
    pthread_mutex_lock(&in->ack_lock);
    while (i < in->npend) {
        mx_pending *pd = &in->pend[i];

        if (pd->running || pd->ticket > stored
            || (pd->kept && pd->kept > durable)) {
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
    ir->q.attempt = 1;
    if (!ir->q.name || !ir->q.stanza) {
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
/* The sender is told the app is busy. Frees ir; returns its answer's
 * ticket. */
static apr_uint64_t resource_constraint(mx_inreq *ir)
{
    apr_uint64_t ticket;

    mx_shared_count(ir->in->app->shared->in_failed, 1);
    error_answer(ir, "wait", "resource-constraint",
                 "the application is busy; try again later");
    ticket = ir->ticket;
    inreq_free(ir);
    return ticket;
}

static apr_uint64_t busy_answer(mx_inreq *ir)
{
    mx_inbound *in = ir->in;

    ap_log_error(APLOG_MARK, APLOG_ERR, 0, in->app->s, MX_LOG_TAG "0506: "
                 "%s: %d inbound requests are waiting already; the %s from "
                 "%s gets an error answer", in->app->jid, MX_IN_QUEUE,
                 ir->q.name, ir->q.from);
    return resource_constraint(ir);
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

/* ---- kept stanzas: the inbound journal ---- */

#define MX_IN_WINDOW     256      /* kept stanzas in memory, at most */
/* of them, one sender's (fairness: a sender whose handler hangs takes
 * no more places); the rest of its backlog is read again from disk */
#define MX_IN_PER_SENDER 32
/* deferred records remembered (16 bytes each); beyond, reading waits */
#define MX_IN_DEFERRED   65536
#define MX_IN_IDLE_MS    200      /* a worker looks again after this */

/* The stanza's own id when it can go in a header as it is; else one made
 * of the journal record's number, the same on every try. */
static void set_stanza_id(mx_inject *q, mx_seq rec)
{
    const char *p;
    int ok = q->id && *q->id && strlen(q->id) < sizeof(q->stanza_id);

    for (p = q->id; ok && *p; p++)
        ok = *p > 0x20 && *p < 0x7f;
    if (ok)
        snprintf(q->stanza_id, sizeof(q->stanza_id), "%s", q->id);
    else
        snprintf(q->stanza_id, sizeof(q->stanza_id), "mx-%llu", rec);
}

#define MX_IN_COMMIT_MAX 4096     /* stanzas waiting for the committer */

static void dones_settle(mx_inbound *in);
static apr_uint64_t resource_constraint(mx_inreq *ir);

void mx_inbound_flush(mx_inbound *in)
{
    /* nothing of the journal on the XMPP thread: the committer thread
     * syncs, settles the done bounds and writes the acked file */
    (void)in;
}

/* Stanzas kept (or on their way to the journal) and not yet done */
static mx_seq kept_backlog(mx_inbound *in)
{
    /* each turn that is not refused becomes one record, in order:
     * counted from the turns, a stanza the committer is writing is
     * counted once, whether or not its record is there yet */
    return in->recovered - 1
           + (mx_seq)(__atomic_load_n(&in->c_turns, __ATOMIC_ACQUIRE)
                      - __atomic_load_n(&in->c_failed, __ATOMIC_ACQUIRE))
           - __atomic_load_n(&in->done, __ATOMIC_ACQUIRE);
}

/* The backlog is at XMPPInboundQueueLimit: the sender is told at once;
 * the log says so once a second, not once a stanza. */
static apr_uint64_t refuse_full(mx_inreq *ir)
{
    mx_inbound *in = ir->in;
    apr_time_t now = apr_time_now();

    if (now - in->refused_logged >= apr_time_from_sec(1)) {
        in->refused_logged = now;
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, in->app->s, MX_LOG_TAG "0571: "
                     "%s: %d inbound stanzas are waiting for their handler "
                     "(XMPPInboundQueueLimit); the %s from %s and others "
                     "get an error answer", in->app->jid,
                     mx_conf_inbound_queue_limit(in->app->conf), ir->q.name,
                     ir->q.from);
    }
    return resource_constraint(ir);
}

/* Holder thread: hand ir to the committer (which owns it from then on).
 * Returns its turn (it counts as handled once the committer has made
 * that turn durable), or 0 when it cannot be kept (ir is still the
 * caller's). Waits while the committer's queue is full: a disk slower
 * than the server holds the XMPP loop back, memory stays bounded. */
static apr_uint64_t keep(mx_inbound *in, mx_inreq *ir)
{
    mx_inrec r = { ir->q.kind, (char *)ir->q.path, ir->q.name, ir->q.type,
                   ir->q.id, ir->q.from, ir->q.to, ir->q.body, ir->q.show,
                   ir->q.status, ir->q.stanza };
    char *data;
    size_t len;
    apr_uint64_t turn = 0;

    if (!(data = mx_inrec_encode(&r, &len)))
        return 0;
    pthread_mutex_lock(&in->c_lock);
    while (in->c_n == MX_IN_COMMIT_MAX)
        pthread_cond_wait(&in->c_room, &in->c_lock);
    if (in->has_committer) {
        turn = ++in->c_turns;
        in->c_items[in->c_n].data = data;
        in->c_items[in->c_n].len = len;
        in->c_items[in->c_n].ir = ir;
        in->c_items[in->c_n++].turn = turn;
        if (in->c_n == 1)
            pthread_cond_signal(&in->c_cond);
    }
    pthread_mutex_unlock(&in->c_lock);
    if (!turn)
        free(data);
    return turn;
}

/* Committer: a batch that could not be appended; each sender is told
 * (nothing is dropped unseen) */
static void commit_failed(mx_inbound *in, mx_tocommit *b, size_t n,
                          const char *err)
{
    size_t i;

    ap_log_error(APLOG_MARK, APLOG_ERR, 0, in->app->s, MX_LOG_TAG "0572: "
                 "%s: cannot keep %zu inbound stanzas in the journal: %s; "
                 "their senders get an error answer (check the spool "
                 "directory's disk)", in->app->jid, n, err);
    for (i = 0; i < n; i++) {
        mx_inreq *ir = b[i].ir;
        apr_uint32_t gen = ir->gen, seq = ir->seq;

        pending_done(in, gen, seq, resource_constraint(ir));
        b[i].ir = NULL;
    }
    __atomic_add_fetch(&in->c_failed, n, __ATOMIC_RELEASE);
}

/* Committer: append a batch and make it durable with one sync */
static void commit_batch(mx_inbound *in, mx_tocommit *b, size_t n,
                         int *dirty)
{
    const char *data[512];
    size_t len[512], i, k;
    char err[256];
    mx_seq first;

    for (i = 0; i < n; i += k) {
        for (k = 0; k < 512 && i + k < n; k++) {
            data[k] = b[i + k].data;
            len[k] = b[i + k].len;
        }
        if (mx_journal_append(in->jw, data, len, k, &first, err,
                              sizeof(err)) != 0)
            commit_failed(in, b + i, k, err);
        else
            *dirty = 1;
    }
    for (i = 0; i < n; i++) {
        free(b[i].data);
        if (b[i].ir)
            inreq_free(b[i].ir);
    }
}

/* Committer: make what was appended durable. It then counts as handled,
 * and the workers may post it. Returns 0, or -1 (logged). */
static int commit_sync(mx_inbound *in, apr_uint64_t turn, int *dirty)
{
    char err[256];

    if (*dirty && mx_journal_sync(in->jw, err, sizeof(err)) != 0) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, in->app->s, MX_LOG_TAG "0570: "
                     "%s: cannot sync the inbound journal: %s; stanzas "
                     "stay unacknowledged", in->app->jid, err);
        return -1;
    }
    if (*dirty) {
        *dirty = 0;
        pthread_mutex_lock(&in->run_lock);
        __atomic_store_n(&in->durable, mx_journal_next(in->jw),
                         __ATOMIC_RELEASE);
        pthread_cond_signal(&in->run_cond); /* one looks; it wakes more */
        pthread_mutex_unlock(&in->run_lock);
    }
    __atomic_store_n(&in->c_durable, turn, __ATOMIC_RELEASE);
    return 0;
}

/* Committer: the journal forgets what is done; a crash before this
 * posts it again, which the handler can tell by XMPP_ATTEMPT */
static void commit_acked(mx_inbound *in, int now_anyway)
{
    mx_seq done;
    apr_time_t now = apr_time_now();

    dones_settle(in);
    done = __atomic_load_n(&in->done, __ATOMIC_ACQUIRE);
    if (done > in->acked_set
        && (now_anyway
            || now - in->acked_at >= apr_time_from_msec(MX_IN_ACKED_MS))
        && mx_journal_set_acked(in->jw, done) == 0) {
        __atomic_store_n(&in->acked_set, done, __ATOMIC_RELEASE);
        in->acked_at = now;
    }
}

/* The committer thread: takes whatever the holder thread handed over
 * since its last turn (group commit: one write and one fdatasync per
 * batch, however many stanzas). It runs until the holder ends
 * (mx_inbound_end): while the holder stops, stanzas still come in until
 * the stream is closed, and the acked bound is then written at once. */
static void *committer_main(void *data)
{
    mx_inbound *in = data;
    mx_tocommit *batch;
    apr_uint64_t turn = 0;
    size_t n;
    int dirty = 0, failing = 0;
    struct timespec ts;
    long long until;

    pthread_mutex_lock(&in->c_lock);
    for (;;) {
        if (!in->c_n && !in->c_quit) {
            until = apr_time_as_msec(apr_time_now())
                    + (failing ? 100 : MX_IN_ACKED_MS);
            ts.tv_sec = (time_t)(until / 1000);
            ts.tv_nsec = (long)(until % 1000) * 1000000L;
            pthread_cond_timedwait(&in->c_cond, &in->c_lock, &ts);
        }
        batch = in->c_items; /* swap: the holder fills the other one */
        in->c_items = in->c_batch;
        in->c_batch = batch;
        n = in->c_n;
        in->c_n = 0;
        if (n)
            turn = batch[n - 1].turn;
        pthread_cond_broadcast(&in->c_room);
        pthread_mutex_unlock(&in->c_lock);
        commit_batch(in, batch, n, &dirty);
        failing = commit_sync(in, turn, &dirty) != 0;
        if (failing) /* tried again, not in a loop of log lines */
            apr_sleep(apr_time_from_msec(500));
        commit_acked(in, in->stopping);
        pthread_mutex_lock(&in->c_lock);
        if (in->c_quit && !in->c_n)
            break;
    }
    pthread_mutex_unlock(&in->c_lock);
    return NULL;
}

/* A kept record as a request to post. NULL when it is not one. */
static mx_inreq *inreq_from_record(mx_inbound *in, const char *data,
                                   size_t len, mx_seq rec)
{
    mx_inreq *ir = calloc(1, sizeof(*ir));
    mx_inrec r;

    if (!ir || mx_inrec_decode(data, len, &r) != 0) {
        free(ir);
        return NULL;
    }
    ir->q.mark.magic = mx_authz_marker;
    ir->q.app = in->app;
    ir->q.local_addr = in->local_addr;
    ir->in = in;
    ir->q.kind = r.kind;
    ir->q.path = ir->path = r.path;
    ir->q.name = r.name; ir->q.type = r.type; ir->q.id = r.id;
    ir->q.from = r.from; ir->q.to = r.to; ir->q.body = r.body;
    ir->q.show = r.show; ir->q.status = r.status; ir->q.stanza = r.stanza;
    if (ir->q.body && !strcmp(ir->q.name, "message"))
        mx_inbound_command(ir->q.body, &ir->q.command, &ir->q.arg);
    /* kept by an earlier holder: it may have been posted already */
    ir->q.attempt = rec < in->recovered ? 2 : 1;
    set_stanza_id(&ir->q, rec);
    return ir;
}

/* The sender of a kept stanza, as the window tells senders apart */
static const char *sender_key(const mx_inreq *ir, char *bare, size_t size)
{
    if (mx_jid_bare(ir->q.from, bare, size) < 0)
        snprintf(bare, size, "%s", ir->q.from);
    return bare;
}

/* Under run_lock: read deferred records again for the senders that have
 * room (mx_inq), with a reader of their own, up to where the main
 * reader is. */
static void window_rescan(mx_inbound *in)
{
    mx_seq from = mx_inq_rescan(in->window), end, seq;
    char dir[1024], *data, bare[3072];
    size_t len;
    mx_inreq *ir;
    int rc;

    if (!from)
        return;
    end = mx_jreader_position(in->jr);
    snprintf(dir, sizeof(dir), "%s/inbound", in->app->dir);
    if (!in->jr2 && mx_jreader_open(dir, from, &in->jr2) != 0)
        in->jr2 = NULL;
    else if (in->jr2 && (mx_jreader_position(in->jr2) > from
                         || from - mx_jreader_position(in->jr2) > 1024)
             && mx_jreader_seek(in->jr2, from) != 0) {
        mx_jreader_close(in->jr2);
        in->jr2 = NULL;
    }
    while (in->jr2 && mx_jreader_position(in->jr2) < end
           && mx_inq_wanted(in->window, mx_jreader_position(in->jr2)) >= 0) {
        rc = mx_jreader_next(in->jr2, end, &data, &len, &seq);
        if (rc == -1 && errno == EILSEQ)
            continue; /* the main reader said so */
        if (rc != 1)
            break;
        if (mx_inq_wanted(in->window, seq) == 1) {
            ir = inreq_from_record(in, data, len, seq);
            if (ir && !mx_inq_readd(in->window, seq,
                                    sender_key(ir, bare, sizeof(bare)), ir))
                inreq_free(ir);
            if (!ir) {
                ap_log_error(APLOG_MARK, APLOG_ERR, 0, in->app->s, MX_LOG_TAG
                             "0579: %s: out of memory for inbound journal "
                             "record %" APR_UINT64_T_FMT "; skipped",
                             in->app->jid, (apr_uint64_t)seq);
                mx_inq_readd(in->window, seq, NULL, NULL);
            }
        }
        free(data);
    }
    mx_inq_rescan_end(in->window);
}

/* Under run_lock: read durable records into the window while it has
 * room. A record that cannot be read is logged and counts as done. */
static void window_fill(mx_inbound *in)
{
    mx_seq limit = __atomic_load_n(&in->durable, __ATOMIC_ACQUIRE), seq;
    char *data, bare[3072];
    size_t len;
    mx_inreq *ir;
    int rc;

    window_rescan(in);
    while (mx_inq_room(in->window)) {
        rc = mx_jreader_next(in->jr, limit, &data, &len, &seq);
        if (rc == -1 && errno == EILSEQ)
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, in->app->s, MX_LOG_TAG
                         "0573: %s: inbound journal record %" APR_UINT64_T_FMT
                         " is damaged and skipped", in->app->jid,
                         (apr_uint64_t)seq);
        if (rc != 1)
            return;
        ir = inreq_from_record(in, data, len, seq);
        free(data);
        if (!ir) {
            /* skipped: a later record's bound covers it */
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, in->app->s, MX_LOG_TAG
                         "0577: %s: inbound journal record %" APR_UINT64_T_FMT
                         " is not a stanza (or no memory); skipped",
                         in->app->jid, (apr_uint64_t)seq);
            continue;
        }
        rc = mx_inq_offer(in->window, seq, sender_key(ir, bare, sizeof(bare)),
                          ir);
        if (rc != 1)
            inreq_free(ir); /* deferred: read again when its turn comes */
        if (rc < 0) {
            /* no memory: read again later (the bound must not pass it) */
            mx_jreader_seek(in->jr, seq);
            return;
        }
    }
}

/* The wait before the next try of a failed request, in microseconds, or
 * -1 when its tries are used up. Doubling from a first wait chosen so
 * that the tries span XMPPInboundRetry's seconds; a 503's Retry-After
 * instead when it gives one. */
static apr_interval_time_t retry_wait(mx_inreq *ir)
{
    mx_srv_conf *conf = ir->in->app->conf;
    int tries = mx_conf_inbound_tries(conf);
    apr_time_t budget = apr_time_from_sec(mx_conf_inbound_retry_secs(conf));
    apr_time_t left = ir->first_try + budget - apr_time_now();
    apr_interval_time_t first, wait;
    int shift;

    if (ir->tries >= tries || ir->in->quit)
        return -1;
    shift = tries - 1 > 20 ? 20 : tries - 1;
    first = budget / ((1 << shift) - 1 > 0 ? (1 << shift) - 1 : 1);
    wait = first << (ir->tries - 1 > 20 ? 20 : ir->tries - 1);
    if (ir->q.status_code == HTTP_SERVICE_UNAVAILABLE && ir->q.retry_after)
        wait = apr_time_from_sec(ir->q.retry_after);
    if (wait > left) /* the last tries come quicker, not later */
        wait = left > apr_time_from_msec(100) ? left : apr_time_from_msec(100);
    return wait;
}

/* One try of a kept stanza. Returns 0 when it is done (answered, or its
 * error sent), else when to try again (apr time); -1: leave it to the
 * next holder (stopping mid-retry). */
static apr_time_t kept_try(mx_inreq *ir, apr_thread_t *t)
{
    mx_app *app = ir->in->app;
    apr_interval_time_t wait;

    if (!ir->tries++)
        ir->first_try = apr_time_now();
    if (mx_inject_build(&ir->q) != 0)
        ir->q.status_code = HTTP_INTERNAL_SERVER_ERROR;
    else
        mx_inject_run(&ir->q, t);
    if (ir->q.status_code >= 500 && (wait = retry_wait(ir)) >= 0) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, app->s, MX_LOG_TAG "0574: "
                     "%s: the handler of %s%s answered %d to a %s from %s "
                     "(try %d); tried again in %d ms", app->jid,
                     mx_conf_inbound_path(app->conf), ir->q.path,
                     ir->q.status_code, ir->q.name, ir->q.from, ir->tries,
                     (int)apr_time_as_msec(wait));
        mx_shared_count(app->shared->in_retried, 1);
        ir->q.attempt++;
        return apr_time_now() + wait;
    }
    if (ir->q.status_code >= 500 && ir->in->quit)
        return -1;
    answer_or_error(ir);
    return 0;
}

/* Under run_lock: every record up to bound is done once the answers so
 * far are stored. When the list is full its newest entry grows: a later
 * bound waiting for a later ticket is only more careful. */
static void dones_push(mx_inbound *in, mx_seq bound)
{
    size_t i = in->ndones < MX_IN_DONES ? in->ndones++ : MX_IN_DONES - 1;

    in->dones[i].bound = bound;
    in->dones[i].ticket = in->max_ticket;
}

/* Holder thread: the highest done bound whose answers are all stored */
static void dones_settle(mx_inbound *in)
{
    apr_uint64_t stored = in->queue ? mx_qserver_stored(in->queue)
                                    : ~(apr_uint64_t)0;
    size_t n = 0;

    pthread_mutex_lock(&in->run_lock);
    while (n < in->ndones && in->dones[n].ticket <= stored)
        n++;
    if (n) {
        __atomic_store_n(&in->done, in->dones[n - 1].bound,
                         __ATOMIC_RELEASE);
        memmove(in->dones, in->dones + n,
                (in->ndones - n) * sizeof(in->dones[0]));
        in->ndones -= n;
    }
    pthread_mutex_unlock(&in->run_lock);
}

/* Under run_lock: the outcome of a try of record seq */
static void kept_outcome(mx_inbound *in, mx_seq seq, mx_inreq *ir,
                         apr_time_t again)
{
    mx_seq bound;

    if (again > 0) {
        mx_inq_retry(in->window, seq, apr_time_as_msec(again));
        return;
    }
    if (again < 0) /* never done here: the next holder posts it */
        return;
    mx_inq_done(in->window, seq);
    if (ir->ticket > in->max_ticket)
        in->max_ticket = ir->ticket;
    inreq_free(ir);
    if ((bound = mx_inq_advance(in->window)) != 0)
        dones_push(in, bound);
    /* its sender's next may run: this worker looks first, and wakes
     * another when it finds work (waking all on every answer cost more
     * than the request on two cores) */
}

/* Under run_lock: sleep until woken, a retry is due, or the idle time */
static void worker_wait(mx_inbound *in, long long wake_ms)
{
    long long now = apr_time_as_msec(apr_time_now());
    long long until = now + MX_IN_IDLE_MS;
    struct timespec ts;

    if (wake_ms && wake_ms < until)
        until = wake_ms;
    ts.tv_sec = (time_t)(until / 1000);
    ts.tv_nsec = (long)(until % 1000) * 1000000L;
    pthread_cond_timedwait(&in->run_cond, &in->run_lock, &ts);
}

static void publish_counts(mx_inbound *in)
{
    mx_shared *sh = in->app->shared;

    __atomic_store_n(&sh->in_running, mx_inq_count(in->window).running,
                     __ATOMIC_RELAXED);
    __atomic_store_n(&sh->in_waiting, kept_backlog(in)
                     - mx_inq_count(in->window).running, __ATOMIC_RELAXED);
}

static void *worker_main(void *data)
{
    mx_inbound *in = data;
    apr_thread_t *t = NULL;
    apr_pool_t *p = NULL;
    apr_os_thread_t self = apr_os_thread_current();
    apr_time_t again;
    mx_seq seq;
    long long wake;
    mx_inreq *ir;

    /* an apr_thread_t for the connection's current_thread */
    if (apr_pool_create_unmanaged_ex(&p, NULL, NULL) == APR_SUCCESS)
        apr_os_thread_put(&t, &self, p);
    pthread_mutex_lock(&in->run_lock);
    while (!in->quit) {
        window_fill(in);
        ir = mx_inq_pick(in->window, apr_time_as_msec(apr_time_now()),
                         &seq, &wake);
        publish_counts(in);
        if (!ir) {
            worker_wait(in, wake);
            continue;
        }
        pthread_cond_signal(&in->run_cond); /* there may be more */
        pthread_mutex_unlock(&in->run_lock);
        again = kept_try(ir, t);
        pthread_mutex_lock(&in->run_lock);
        kept_outcome(in, seq, ir, again);
    }
    __atomic_sub_fetch(&in->active, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&in->run_lock);
    if (p)
        apr_pool_destroy(p);
    return NULL;
}

/* Holder: open the inbound journal and start the workers. Returns 0, or
 * -1 (logged): then stanzas are posted directly, as without a journal. */
static int kept_start(mx_inbound *in)
{
    char dir[1024], err[256];
    int i, n = mx_conf_inbound_threads(in->app->conf);

    snprintf(dir, sizeof(dir), "%s/inbound", in->app->dir);
    if ((mkdir(dir, 0700) != 0 && errno != EEXIST)
        || mx_journal_open(dir, 0, &in->jw, err, sizeof(err)) != 0) {
        ap_log_error(APLOG_MARK, APLOG_ERR, errno, in->app->s, MX_LOG_TAG
                     "0575: %s: cannot open the inbound journal in %s: %s; "
                     "inbound stanzas are posted without it", in->app->jid,
                     dir, err);
        in->jw = NULL;
        return -1;
    }
    in->recovered = in->durable = mx_journal_next(in->jw);
    in->done = in->acked_set = mx_journal_acked(in->jw);
    if (!(in->window = mx_inq_new(MX_IN_WINDOW, MX_IN_PER_SENDER,
                                  MX_IN_DEFERRED))
        || mx_jreader_open(dir, in->done + 1, &in->jr) != 0
        || !(in->workers = calloc((size_t)n, sizeof(*in->workers)))
        || !(in->c_items = calloc(MX_IN_COMMIT_MAX, sizeof(*in->c_items)))
        || !(in->c_batch = calloc(MX_IN_COMMIT_MAX, sizeof(*in->c_batch)))) {
        mx_journal_close(in->jw);
        in->jw = NULL;
        return -1;
    }
    pthread_mutex_init(&in->run_lock, NULL);
    pthread_cond_init(&in->run_cond, NULL);
    pthread_mutex_init(&in->c_lock, NULL);
    pthread_cond_init(&in->c_cond, NULL);
    pthread_cond_init(&in->c_room, NULL);
    if (pthread_create(&in->committer, NULL, committer_main, in) != 0) {
        ap_log_error(APLOG_MARK, APLOG_ERR, errno, in->app->s, MX_LOG_TAG
                     "0580: %s: cannot start the inbound journal's thread; "
                     "inbound stanzas are posted without the journal",
                     in->app->jid);
        mx_journal_close(in->jw);
        in->jw = NULL;
        return -1;
    }
    in->has_committer = 1;
    for (i = 0; i < n; i++)
        if (pthread_create(&in->workers[in->nworkers], NULL, worker_main, in)
            == 0)
            in->nworkers++;
    in->active = in->nworkers;
    if (in->recovered - 1 > in->done)
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, in->app->s, MX_LOG_TAG
                     "0576: %s: %" APR_UINT64_T_FMT " inbound stanzas kept by "
                     "an earlier holder are posted again (XMPP_ATTEMPT 2)",
                     in->app->jid,
                     (apr_uint64_t)(in->recovered - 1 - in->done));
    return 0;
}

/* Stop the workers: those in a request finish it (bounded by ms); what is
 * not done stays in the journal for the next holder. */
static void kept_stop(mx_inbound *in, apr_time_t end)
{
    size_t n;
    int i;

    pthread_mutex_lock(&in->run_lock);
    in->quit = 1;
    pthread_cond_broadcast(&in->run_cond);
    pthread_mutex_unlock(&in->run_lock);
    while (__atomic_load_n(&in->active, __ATOMIC_ACQUIRE)
           && apr_time_now() < end)
        apr_sleep(apr_time_from_msec(10));
    for (i = 0; i < in->nworkers; i++) {
        if (__atomic_load_n(&in->active, __ATOMIC_ACQUIRE))
            pthread_detach(in->workers[i]); /* still in a request */
        else
            pthread_join(in->workers[i], NULL);
    }
    in->nworkers = 0;
    /* the last answers reach the outbound journal within a commit or
     * two; until then their records are not done; the committer then
     * writes the acked bound at once (bounded: 1 s) */
    pthread_mutex_lock(&in->c_lock);
    pthread_cond_signal(&in->c_cond);
    pthread_mutex_unlock(&in->c_lock);
    for (i = 0; i < 100; i++) {
        pthread_mutex_lock(&in->run_lock);
        n = in->ndones;
        pthread_mutex_unlock(&in->run_lock);
        if (!n && __atomic_load_n(&in->acked_set, __ATOMIC_ACQUIRE)
                  >= __atomic_load_n(&in->done, __ATOMIC_ACQUIRE))
            break;
        apr_sleep(apr_time_from_msec(10));
    }
}

/* Stopping: a component bounces the stanza, a client leaves it (and all
 * after it) unacknowledged. Returns 1 when st was dealt with so. */
static int stopping_branch(mx_inbound *in, xmpp_stanza_t *st, apr_uint32_t seq)
{
    const char *name = xmpp_stanza_get_name(st), *from;

    if (!in->stopping || !name || in->jw)
        return 0; /* with the journal, kept as any (the committer syncs) */
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

/* Without the journal: hand ir to a request thread, or answer "busy"
 * when none is free and the queue is full. */
static void dispatch_direct(mx_inbound *in, mx_inreq *ir, apr_uint32_t seq)
{
    if (mx_inject_build(&ir->q) != 0) {
        inreq_free(ir);
        return;
    }
    if (apr_thread_pool_tasks_count(in->threads) >= MX_IN_QUEUE) {
        pending_add(in, seq, 0, busy_answer(ir), 0);
        return;
    }
    pending_add(in, seq, 1, 0, 0); /* before the thread can finish it */
    if (apr_thread_pool_push(in->threads, request_task, ir, 0, NULL)
        != APR_SUCCESS)
        pending_done(in, in->gen, seq, busy_answer(ir));
}

/* Keep stanza seq in the inbound journal (it counts as handled once
 * synced), or refuse it when the backlog is full. */
static void dispatch(mx_inbound *in, xmpp_ctx_t *ctx, xmpp_stanza_t *st,
                     const char *path, int kind, apr_uint32_t seq)
{
    mx_inreq *ir;
    apr_uint64_t turn;

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
    if (in->jw && kept_backlog(in)
                  >= (mx_seq)mx_conf_inbound_queue_limit(in->app->conf)) {
        pending_add(in, seq, 0, refuse_full(ir), 0);
        return;
    }
    if (!in->jw) {
        dispatch_direct(in, ir, seq);
        return;
    }
    /* tracked first: the committer may answer it before keep returns */
    pending_add(in, seq, 0, 0, MX_IN_UNKEPT);
    if ((turn = keep(in, ir)) != 0) {
        pending_kept(in, seq, turn);
        return;
    }
    if (in->app->component) { /* no acknowledgement to hold back */
        pending_done(in, in->gen, seq, resource_constraint(ir));
        return;
    }
    /* left unacknowledged (the server delivers it again to the next
     * session, or bounces it): so is everything after it */
    ap_log_error(APLOG_MARK, APLOG_WARNING, 0, in->app->s, MX_LOG_TAG "0578: "
                 "%s: the inbound %s from %s cannot be kept (stopping, or "
                 "out of memory); it is left unacknowledged for the next "
                 "session", in->app->jid, ir->q.name, ir->q.from);
    inreq_free(ir);
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
    if (in->jw) {
        kept_stop(in, end);
        return;
    }
    while ((apr_thread_pool_busy_count(in->threads)
            || apr_thread_pool_tasks_count(in->threads))
           && apr_time_now() < end)
        apr_sleep(apr_time_from_msec(10));
}

void mx_inbound_end(mx_inbound *in)
{
    if (!in || !in->has_committer)
        return;
    pthread_mutex_lock(&in->c_lock);
    in->c_quit = 1;
    pthread_cond_signal(&in->c_cond);
    pthread_mutex_unlock(&in->c_lock);
    pthread_join(in->committer, NULL);
    in->has_committer = 0;
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
    if (kept_start(in) == 0)
        return in;
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
    else if (!(ir = inreq_from_stanza(&in, ctx, st, path, kind))
             || mx_inject_build(&ir->q) != 0)
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

