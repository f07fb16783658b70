/* mod_xmpp_inbound: each inbound stanza of an enabled kind becomes a POST
 * to XMPPInboundPath + its path, run through httpd's ordinary request
 * processing in the app's virtual host (translate, access, fixups,
 * handler, logging), on a connection that has no client and no socket.
 *
 * How. A conn_rec filled by hand, with its own pool and bucket allocator,
 * goes through ap_pre_connection (modules such as mod_logio need their
 * connection state), after which the core's network filters are replaced:
 * XMPP_IN serves the request bytes, XMPP_OUT reads the status line of the
 * answer and throws the rest away. XMPP_REPLY, a content filter on the
 * request, keeps the body for the reply. Then ap_read_request and
 * ap_process_request run as for any client. The request comes from
 * 0.1.0.10 (as App Engine's own did), so "Require local" does not grant it
 * by accident; "Require xmpp-internal" does, by a mark on the connection.
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

#include "apr_strings.h"
#include "apr_thread_pool.h"
#include "httpd.h"
#include "http_config.h"
#include "http_connection.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "http_vhost.h"
#include "ap_listen.h"
#include "mod_ssl.h"
#include "util_filter.h"

#include "mod_xmpp_authz.h"
#include "mod_xmpp_inbound.h"
#include "mx_inbound.h"
#include "mx_jid.h"
#include "mx_qclient.h"
#include "mx_queue.h"
#include "mx_send.h"
#include "mx_xmltext.h"

APLOG_USE_MODULE(xmpp);

extern module AP_MODULE_DECLARE_DATA xmpp_module;

#define MX_IN_QUEUE       64       /* stanzas waiting for a thread */
#define MX_IN_MAX_REPLY   (256 * 1024)
/* the stanza an answer becomes: below what servers take from a client
 * (Prosody's c2s_stanza_size_limit and ejabberd's max_stanza_size are
 * 256 KiB), less room for what the server adds */
#define MX_IN_MAX_STANZA  (255 * 1024)
/* a CGI variable's value: Linux refuses an execve with a "NAME=value"
 * string above 128 KiB (MAX_ARG_STRLEN), and the script would not run */
#define MX_IN_ENV_MAX     (64 * 1024)
#define MX_IN_RETRIES     3        /* for 503 answers */
#define MX_IN_RETRY_MS    500      /* doubled each time */
#define MX_CLIENT_IP      "0.1.0.10"

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
    mx_conn_mark mark;           /* first: what Require xmpp-internal sees */
    mx_inbound *in;
    apr_uint32_t gen, seq;       /* the session, the stanza's number */
    apr_uint64_t ticket;         /* of its answer in the queue thread */
    int kind;
    const char *path;            /* under XMPPInboundPath */
    char *name, *type, *id;      /* of the stanza */
    char *from, *to, *body, *show, *status, *stanza;
    char *command, *arg;
    /* the request, served by XMPP_IN */
    char *request;
    size_t request_len, request_off;
    /* the answer, kept by XMPP_OUT and XMPP_REPLY */
    int status_code;
    int saw_status;
    char *ctype;
    char *reply;
    size_t reply_len;
    int reply_too_long;
    const void *reply_owner;     /* the XMPP_REPLY filter that keeps it */
} mx_inreq;

static apr_socket_t *dummy_socket;
/* each request thread reuses its allocator: one per request cost mmap and
 * munmap calls (and TLB shootdowns) on every stanza */
static __thread apr_allocator_t *thread_allocator;
static module *event_module;    /* mpm_event, if that is the MPM */
static APR_OPTIONAL_FN_TYPE(ssl_engine_disable) *disable_ssl;
static APR_OPTIONAL_FN_TYPE(ap_logio_add_bytes_out) *logio_out;
static ap_filter_rec_t *in_filter, *out_filter, *reply_filter;
static volatile apr_uint32_t conn_ids;

static const char *const kind_names[] = {
    NULL, "message", "error", NULL, "subscribe", NULL, NULL, NULL, "presence"
};

/* ---- the stanza ---- */

static void inreq_free(mx_inreq *ir)
{
    free(ir->name); free(ir->type); free(ir->id);
    free(ir->from); free(ir->to); free(ir->body);
    free(ir->show); free(ir->status); free(ir->stanza);
    free(ir->command); free(ir->arg);
    free(ir->request); free(ir->ctype); free(ir->reply);
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
    if (strcmp(ir->name, "message") || (ir->type && !strcmp(ir->type,
                                                             "error")))
        return;
    queue_answer(ir->in, mx_error_stanza(ir->name, ir->to, ir->from, ir->id,
                                         etype, cond, text),
                 "error answer", &ir->ticket);
}

/* ---- the request's bytes ---- */

/* HTTP/1.0: the answer is never chunked */
#define MX_IN_HEAD "POST %s%s HTTP/1.0\r\nHost: %s\r\nUser-Agent: mod_xmpp\r\n" \
                   "Content-Type: multipart/form-data; boundary=%s\r\n" \
                   "Content-Length: %zu\r\n\r\n"

static int build_request(mx_inreq *ir)
{
    mx_app *app = ir->in->app;
    mx_form_field f[] = {
        { "from", ir->from, ir->from ? strlen(ir->from) : 0, NULL },
        { "to", ir->to, ir->to ? strlen(ir->to) : 0, NULL },
        { "body", ir->body, ir->body ? strlen(ir->body) : 0, NULL },
        { "show", ir->show, ir->show ? strlen(ir->show) : 0, NULL },
        { "status", ir->status, ir->status ? strlen(ir->status) : 0, NULL },
        { "stanza", ir->stanza, strlen(ir->stanza), "text/xml" },
    };
    char boundary[MX_BOUNDARY_SIZE], *body;
    size_t blen;
    int hlen;

    body = mx_multipart(f, sizeof(f) / sizeof(f[0]), boundary,
                        sizeof(boundary), &blen);
    if (!body)
        return -1;
    /* on the heap, freed with the stanza: the holder's pool lives as
     * long as the app, and grew by this much with every stanza */
    hlen = snprintf(NULL, 0, MX_IN_HEAD, mx_conf_inbound_path(app->conf),
                    ir->path, app->s->server_hostname, boundary, blen);
    ir->request = hlen > 0 ? malloc((size_t)hlen + 1 + blen) : NULL;
    if (ir->request) {
        snprintf(ir->request, (size_t)hlen + 1, MX_IN_HEAD,
                 mx_conf_inbound_path(app->conf), ir->path,
                 app->s->server_hostname, boundary, blen);
        memcpy(ir->request + hlen, body, blen);
        ir->request_len = (size_t)hlen + blen;
    }
    free(body);
    return ir->request ? 0 : -1;
}

/* ---- filters ---- */

static mx_inreq *inreq_of(conn_rec *c)
{
    return mx_authz_is_internal(c) ? ap_get_module_config(c->conn_config,
                                                          &xmpp_module)
                                   : NULL;
}

/* XMPP_IN: the request line, headers and body, as a client would send */
static apr_status_t in_filter_fn(ap_filter_t *f, apr_bucket_brigade *bb,
                                 ap_input_mode_t mode,
                                 apr_read_type_e block, apr_off_t readbytes)
{
    mx_inreq *ir = f->ctx;
    const char *p = ir->request + ir->request_off;
    size_t left = ir->request_len - ir->request_off, n = left;
    const char *lf;

    if (mode == AP_MODE_EATCRLF || mode == AP_MODE_INIT)
        return APR_SUCCESS;
    if (left == 0)
        return APR_EOF;
    if (mode == AP_MODE_GETLINE) {
        lf = memchr(p, '\n', left);
        n = lf ? (size_t)(lf - p) + 1 : left;
    }
    else if (readbytes > 0 && (apr_off_t)n > readbytes) {
        n = (size_t)readbytes;
    }
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_transient_create(p, n,
                                                            f->c->bucket_alloc));
    if (mode != AP_MODE_SPECULATIVE)
        ir->request_off += n;
    return APR_SUCCESS;
}

/* XMPP_OUT: the end of the line. Reads the status code from the status
 * line and deletes every bucket, EOR included: deleting EOR ends the
 * request (it is logged, and its pool freed). */
static apr_status_t out_filter_fn(ap_filter_t *f, apr_bucket_brigade *bb)
{
    mx_inreq *ir = f->ctx;
    apr_bucket *b;
    apr_size_t total = 0;

    while (!APR_BRIGADE_EMPTY(bb)) {
        b = APR_BRIGADE_FIRST(bb);
        if (!APR_BUCKET_IS_METADATA(b)) {
            const char *data;
            apr_size_t len;

            if (apr_bucket_read(b, &data, &len, APR_BLOCK_READ)
                == APR_SUCCESS) {
                total += len;
                if (!ir->saw_status && len > 12 && !strncmp(data, "HTTP/", 5)) {
                    const char *sp = memchr(data, ' ', len);

                    ir->saw_status = 1;
                    ir->status_code = sp ? atoi(sp + 1) : 500;
                }
            }
        }
        apr_bucket_delete(b);
    }
    if (total && logio_out)
        logio_out(f->c, (apr_off_t)total);
    return APR_SUCCESS;
}

/* XMPP_REPLY: keep the answer's body and type for the reply. On any other
 * request it has no sender to answer, and passes everything on. */
static apr_status_t reply_filter_fn(ap_filter_t *f, apr_bucket_brigade *bb)
{
    mx_inreq *ir = inreq_of(f->c);
    request_rec *r = f->r;
    apr_bucket *b;

    /* no sender to answer, or added twice (by mod_xmpp and by the
     * configuration): pass the response on untouched */
    if (!ir || (ir->reply_owner && ir->reply_owner != f)) {
        ap_remove_output_filter(f);
        return ap_pass_brigade(f->next, bb);
    }
    ir->reply_owner = f;
    if (!ir->ctype && r->content_type)
        ir->ctype = strdup(r->content_type);
    for (b = APR_BRIGADE_FIRST(bb); b != APR_BRIGADE_SENTINEL(bb);
         b = APR_BUCKET_NEXT(b)) {
        const char *data;
        apr_size_t len;
        char *grown;

        if (APR_BUCKET_IS_METADATA(b)
            || apr_bucket_read(b, &data, &len, APR_BLOCK_READ) != APR_SUCCESS)
            continue;
        if (ir->reply_len + len > MX_IN_MAX_REPLY) {
            ir->reply_too_long = 1;
            continue;
        }
        if (!(grown = realloc(ir->reply, ir->reply_len + len + 1)))
            continue;
        ir->reply = grown;
        memcpy(ir->reply + ir->reply_len, data, len);
        ir->reply_len += len;
        ir->reply[ir->reply_len] = '\0';
    }
    return ap_pass_brigade(f->next, bb);
}

static void insert_reply_filter(request_rec *r)
{
    if (inreq_of(r->connection))
        ap_add_output_filter_handle(reply_filter, NULL, r, r->connection);
}

/* ---- the connection ---- */

/* An address the app's host listens on, so that ap_update_vhost_given_ip
 * picks its address set; the Host header then picks it by name. */
static apr_sockaddr_t *local_addr_of(mx_app *app, apr_pool_t *p)
{
    server_rec *s = app->s;

    if (s->is_virtual && s->addrs && s->addrs->host_addr) {
        apr_sockaddr_t *sa = s->addrs->host_addr;

        if (s->addrs->host_port && sa->port != s->addrs->host_port)
            apr_sockaddr_info_get(&sa, sa->hostname, sa->family,
                                  s->addrs->host_port, 0, p);
        return sa;
    }
    return ap_listeners ? ap_listeners->bind_addr : NULL;
}

static conn_rec *make_conn(mx_inreq *ir, apr_pool_t *pool,
                           apr_thread_t *thread)
{
    conn_rec *c = apr_pcalloc(pool, sizeof(*c));
    apr_sockaddr_t *client;

    c->pool = pool;
    c->base_server = ir->in->app->s;
    c->conn_config = ap_create_conn_config(pool);
    c->notes = apr_table_make(pool, 5);
    c->bucket_alloc = apr_bucket_alloc_create(pool);
    c->local_addr = ir->in->local_addr;
    c->current_thread = thread;
    if (!c->local_addr)
        return NULL;
    apr_sockaddr_ip_get(&c->local_ip, c->local_addr);
    apr_sockaddr_info_get(&client, MX_CLIENT_IP, APR_INET, 0, 0, pool);
    c->client_addr = client;
    c->client_ip = MX_CLIENT_IP;
    /* above the ids MPMs give real connections */
    c->id = (long)(0x40000000L | __atomic_add_fetch(&conn_ids, 1,
                                                    __ATOMIC_RELAXED));
    c->keepalive = AP_CONN_CLOSE;
    c->keepalives = 1;
    /* no socket to poll: keep mpm_event from trying */
    c->clogging_input_filters = 1;
    c->sbh = NULL;
    ap_set_module_config(c->conn_config, &xmpp_module, ir);
    /* mpm_event's request hooks use their connection state unchecked */
    if (event_module)
        ap_set_module_config(c->conn_config, event_module,
                             apr_pcalloc(pool, 4096));
    return c;
}

/* Run the request; the answer lands in ir. */
static void run_request(mx_inreq *ir, apr_thread_t *thread)
{
    apr_pool_t *pool;
    conn_rec *c;
    request_rec *r;
    int rc;

    ir->request_off = 0;
    ir->saw_status = 0;
    ir->status_code = 0;
    free(ir->reply);
    free(ir->ctype);
    ir->reply = ir->ctype = NULL;
    ir->reply_len = 0;
    ir->reply_too_long = 0;
    ir->reply_owner = NULL;
    if (!thread_allocator
        && apr_allocator_create(&thread_allocator) == APR_SUCCESS)
        apr_allocator_max_free_set(thread_allocator, 1024 * 1024);
    if (!thread_allocator
        || apr_pool_create_ex(&pool, NULL, NULL, thread_allocator)
           != APR_SUCCESS) {
        ir->status_code = 500;
        return;
    }
    c = make_conn(ir, pool, thread);
    if (!c) {
        ir->status_code = 500;
        apr_pool_destroy(pool);
        return;
    }
    ap_update_vhost_given_ip(c);
    if (disable_ssl)
        disable_ssl(c);
    rc = ap_pre_connection(c, dummy_socket);
    if ((rc == OK || rc == DONE) && !c->aborted) {
        ap_filter_t *f;

        for (f = c->input_filters; f; f = f->next)
            if (!strcasecmp(f->frec->name, "core_in"))
                ap_remove_input_filter(f);
        for (f = c->output_filters; f; f = f->next)
            if (!strcasecmp(f->frec->name, "core"))
                ap_remove_output_filter(f);
        ap_add_input_filter_handle(in_filter, ir, NULL, c);
        ap_add_output_filter_handle(out_filter, ir, NULL, c);
        r = ap_read_request(c);
        if (r)
            ap_process_request(r);
    }
    if (!ir->saw_status)
        ir->status_code = 500;
    apr_pool_destroy(pool);
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
        return strdup(ir->reply);
    out = mx_stanza_from_component(ir->reply, ir->to, app->jid, &bad);
    if (bad)
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, app->s, MX_LOG_TAG "0550: %s: "
                     "the application/xmpp+xml answer of %s%s is from an "
                     "address that is not the component's; not sent",
                     app->jid, mx_conf_inbound_path(app->conf), ir->path);
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
                 mx_conf_inbound_path(app->conf), ir->path, ir->name,
                 ir->from ? ir->from : "?", why, fix);
    apr_snprintf(text, sizeof(text), "the application's answer could not be "
                 "sent: %s", why);
    error_answer(ir, "cancel", "internal-server-error", text);
}

/* An application/xmpp+xml answer goes out as it is: exactly one stanza */
static void stanza_answer(mx_inreq *ir)
{
    const char *why = memchr(ir->reply, '\0', ir->reply_len)
                      ? "it contains a NUL byte" : mx_stanza_problem(ir->reply);

    if (!why && ir->reply_len > MX_IN_MAX_STANZA)
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
    const char *why = mx_xml_text_problem(ir->reply, ir->reply_len, buf,
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
    stanza = mx_message_stanza(ir->to, ir->from, "chat", ir->reply, 0, id);
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
    int xml = is_type(ir->ctype, "application/xmpp+xml");
    int text = is_type(ir->ctype, "text/plain") && ir->from && ir->to;

    if (ir->status_code != HTTP_OK || !ir->reply_len
        || (ir->type && !strcmp(ir->type, "error")) || (!xml && !text))
        return; /* 202, 204, empty, another type: nothing to say */
    if (ir->reply_too_long) {
        char why[80];

        apr_snprintf(why, sizeof(why), "it is longer than %d bytes",
                     MX_IN_MAX_REPLY);
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
        run_request(ir, t);
        if (ir->status_code != HTTP_SERVICE_UNAVAILABLE
            || attempt >= MX_IN_RETRIES || ir->in->stopping)
            break;
        apr_sleep(apr_time_from_msec(wait));
        wait *= 2;
    }
    if (ir->status_code >= 400) {
        int unavailable = ir->status_code == HTTP_SERVICE_UNAVAILABLE;

        /* 4xx: nobody handles the path (404), or it is protected (403):
         * the configuration's fault, said so, and the sender told */
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, app->s, MX_LOG_TAG "0504: %s: "
                     "the handler of %s%s answered %d to a %s from %s%s",
                     app->jid, mx_conf_inbound_path(app->conf), ir->path,
                     ir->status_code, ir->name, ir->from,
                     unavailable ? " (after retries)"
                     : ir->status_code == HTTP_NOT_FOUND
                     ? "; map a handler to that path"
                     : ir->status_code == HTTP_FORBIDDEN
                     ? "; the inbound path needs Require xmpp-internal" : "");
        error_answer(ir, unavailable ? "wait" : "cancel",
                     ir->status_code < 500 ? "service-unavailable"
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
    ir->mark.magic = mx_authz_marker;
    ir->in = in;
    ir->kind = kind;
    ir->path = path;
    ir->name = dup_or_null(xmpp_stanza_get_name(st));
    ir->type = dup_or_null(xmpp_stanza_get_type(st));
    ir->id = dup_or_null(xmpp_stanza_get_id(st));
    ir->from = dup_or_null(xmpp_stanza_get_from(st));
    ir->to = dup_or_null(xmpp_stanza_get_to(st));
    if (!ir->to)
        ir->to = strdup(in->app->full_jid);
    if (!strcmp(ir->name, "message")) {
        ir->body = child_text(ctx, st, "body");
        if (ir->body)
            mx_inbound_command(ir->body, &ir->command, &ir->arg);
    }
    else {
        ir->show = child_text(ctx, st, "show");
        ir->status = child_text(ctx, st, "status");
    }
    copy = xmpp_stanza_copy(st);
    if (copy) {
        restore_xml(copy, 1);
        if (xmpp_stanza_to_text(copy, &text, &len) == XMPP_EOK) {
            ir->stanza = strdup(text);
            xmpp_free(ctx, text);
        }
        xmpp_stanza_release(copy);
    }
    if (!ir->name || !ir->stanza || build_request(ir) != 0) {
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
                 ir->name, ir->from);
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

static int on_stanza(xmpp_conn_t *conn, xmpp_stanza_t *st, void *ud)
{
    handler_ctx *hc = ud;
    mx_inbound *in = hc->in;
    mx_app *app = in->app;
    const char *name = xmpp_stanza_get_name(st), *path, *from;
    xmpp_stanza_t *body = xmpp_stanza_get_child_by_name(st, "body");
    char *text = body ? xmpp_stanza_get_text(body) : NULL;
    int kind, has_body = text && *text;
    apr_uint32_t seq;
    mx_inreq *ir;

    from = xmpp_stanza_get_from(st);
    seq = mx_out_in_seq(hc->out);
    if (in->stopping && app->component && name) {
        /* no acknowledgement to hold back: the sender is told instead */
        bounce_stopping(in, st);
        if (text)
            xmpp_free(hc->ctx, text);
        return 1;
    }
    if (in->stopping && name && (!strcmp(name, "message")
                                 || !strcmp(name, "presence"))) {
        /* not handled: not acknowledged either, from here on */
        pthread_mutex_lock(&in->ack_lock);
        if (!in->kept) {
            in->kept = 1;
            in->kept_seq = seq;
            ap_log_error(APLOG_MARK, APLOG_INFO, 0, app->s, MX_LOG_TAG "0507: "
                         "%s: stopping: the %s from %s (and any after it) is "
                         "left unacknowledged; the server delivers it to the "
                         "next session, or bounces it", app->jid, name,
                         from ? from : "?");
        }
        pthread_mutex_unlock(&in->ack_lock);
        if (text)
            xmpp_free(hc->ctx, text);
        return 1;
    }
    /* the app's own presence (the server's echo, its other resources)
     * is not a contact's; a message from another resource of the app's
     * account is posted like any */
    if (!name || (strcmp(name, "message") && strcmp(name, "presence"))
        || !from || !strcmp(from, app->full_jid)
        || (!strcmp(name, "presence") && mx_jid_same_bare(from, app->jid))) {
        if (text)
            xmpp_free(hc->ctx, text);
        return 1; /* the server reflecting our own presence */
    }
    mx_traffic_add(app->shared, '<', xmpp_stanza_get_type(st)
                   ? xmpp_stanza_get_type(st) : name, from,
                   text ? text : "");
    if (text)
        xmpp_free(hc->ctx, text);
    if (mx_inbound_route(name, xmpp_stanza_get_type(st), has_body, &path,
                         &kind) != 0
        || !(kind & mx_conf_inbound(app->conf)))
        return 1;
    mx_shared_count(app->shared->received, 1);
    ir = inreq_from_stanza(in, hc->ctx, st, path, kind);
    if (!ir) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, app->s, MX_LOG_TAG "0505: %s: "
                     "out of memory for an inbound %s from %s", app->jid,
                     name, from);
        return 1;
    }
    ir->gen = in->gen;
    ir->seq = seq;
    if (apr_thread_pool_tasks_count(in->threads) >= MX_IN_QUEUE) {
        pending_add(in, seq, 0, busy_answer(ir));
        return 1;
    }
    pending_add(in, seq, 1, 0); /* before the thread can finish it */
    if (apr_thread_pool_push(in->threads, request_task, ir, 0, NULL)
        != APR_SUCCESS)
        pending_done(in, in->gen, seq, busy_answer(ir));
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
    in->local_addr = local_addr_of(app, in->pool);
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
    in.local_addr = local_addr_of(app, r->pool);
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
                            ir->path, NULL);
    res->status = ir->status_code;
    res->content_type = ir->ctype ? apr_pstrdup(r->pool, ir->ctype) : NULL;
    res->body = ir->reply ? apr_pstrmemdup(r->pool, ir->reply,
                                           ir->reply_len) : NULL;
    inreq_free(ir);
    return NULL;
}

/* ---- CGI variables ---- */

/* A variable cut to MX_IN_ENV_MAX bytes, at a character boundary; its
 * name is added to *cut. A longer one would make execve fail (E2BIG), and
 * the handler would not run at all; the form part has it whole. */
static void set_bounded(request_rec *r, const char *name, const char *value,
                        const char **cut)
{
    size_t len = strlen(value), keep = mx_utf8_cut(value, len,
                                                      MX_IN_ENV_MAX);

    if (keep == len) {
        apr_table_set(r->subprocess_env, name, value);
        return;
    }
    apr_table_setn(r->subprocess_env, name,
                   apr_pstrmemdup(r->pool, value, keep));
    *cut = *cut ? apr_pstrcat(r->pool, *cut, " ", name, NULL) : name;
}

void mx_inbound_set_env(request_rec *r)
{
    mx_inreq *ir = inreq_of(r->connection);
    const char *cut = NULL;

    if (!ir)
        return;
    set_bounded(r, "XMPP_FROM", ir->from ? ir->from : "", &cut);
    set_bounded(r, "XMPP_TO", ir->to ? ir->to : "", &cut);
    apr_table_set(r->subprocess_env, "XMPP_KIND", kind_names[ir->kind]);
    if (ir->command)
        set_bounded(r, "XMPP_COMMAND", ir->command, &cut);
    if (ir->arg)
        set_bounded(r, "XMPP_ARG", ir->arg, &cut);
    /* so that a script can tell a cut value from a short message */
    if (cut)
        apr_table_set(r->subprocess_env, "XMPP_TRUNCATED", cut);
}

/* ---- set-up ---- */

void mx_inbound_child_init(apr_pool_t *pchild)
{
    module *m;
    int i;

    if (!dummy_socket)
        apr_socket_create(&dummy_socket, APR_INET, SOCK_STREAM, APR_PROTO_TCP,
                          pchild);
    for (i = 0; ap_loaded_modules[i]; i++) {
        m = ap_loaded_modules[i];
        if (!strcmp(m->name, "event.c"))
            event_module = m;
    }
    disable_ssl = APR_RETRIEVE_OPTIONAL_FN(ssl_engine_disable);
    logio_out = APR_RETRIEVE_OPTIONAL_FN(ap_logio_add_bytes_out);
}

void mx_inbound_register_hooks(apr_pool_t *p)
{
    in_filter = ap_register_input_filter("XMPP_IN", in_filter_fn, NULL,
                                         AP_FTYPE_NETWORK);
    out_filter = ap_register_output_filter("XMPP_OUT", out_filter_fn, NULL,
                                           AP_FTYPE_NETWORK);
    reply_filter = ap_register_output_filter("XMPP_REPLY", reply_filter_fn,
                                             NULL, AP_FTYPE_CONTENT_SET);
    ap_hook_insert_filter(insert_reply_filter, NULL, NULL, APR_HOOK_MIDDLE);
}
