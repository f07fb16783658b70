/* SPDX-License-Identifier: Apache-2.0 */
/* mod_xmpp_inject: run one request through httpd's ordinary request
 * processing in the app's virtual host (translate, access, fixups,
 * handler, logging), on a connection that has no client and no socket,
 * and keep what it answered.
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
 * Which stanzas become requests, on which threads, and what an answer
 * means is mod_xmpp_inbound's business. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apr_strings.h"
#include "httpd.h"
#include "http_config.h"
#include "http_connection.h"
#include "http_core.h"
#include "http_protocol.h"
#include "http_request.h"
#include "http_vhost.h"
#include "ap_listen.h"
#include "mod_ssl.h"
#include "util_filter.h"

#include "mod_xmpp_inject.h"
#include "mx_inbound.h"
#include "mx_xmltext.h"

APLOG_USE_MODULE(xmpp);

extern module AP_MODULE_DECLARE_DATA xmpp_module;

/* a CGI variable's value: Linux refuses an execve with a "NAME=value"
 * string above 128 KiB (MAX_ARG_STRLEN), and the script would not run */
#define MX_IN_ENV_MAX     (64 * 1024)
#define MX_CLIENT_IP      "0.1.0.10"

static apr_socket_t *dummy_socket;
/* each request thread reuses its allocator: one per request cost mmap and
 * munmap calls (and TLB shootdowns) on every stanza */
static __thread apr_allocator_t *thread_allocator;
static module *event_module;    /* mpm_event, if that is the MPM */
static APR_OPTIONAL_FN_TYPE(ssl_engine_disable) *disable_ssl;
static APR_OPTIONAL_FN_TYPE(ap_logio_add_bytes_out) *logio_out;
static ap_filter_rec_t *in_filter, *out_filter, *reply_filter;
static volatile apr_uint32_t conn_ids;

void mx_inject_clear(mx_inject *ir)
{
    free(ir->name); free(ir->type); free(ir->id);
    free(ir->from); free(ir->to); free(ir->body);
    free(ir->show); free(ir->status); free(ir->stanza);
    free(ir->command); free(ir->arg);
    free(ir->request); free(ir->ctype); free(ir->reply);
}

/* ---- the request's bytes ---- */

/* HTTP/1.0: the answer is never chunked */
#define MX_IN_HEAD "POST %s%s HTTP/1.0\r\nHost: %s\r\nUser-Agent: mod_xmpp\r\n" \
                   "X-XMPP-Attempt: %d\r\nX-XMPP-Stanza-Id: %s\r\n" \
                   "Content-Type: multipart/form-data; boundary=%s\r\n" \
                   "Content-Length: %zu\r\n\r\n"

int mx_inject_build(mx_inject *ir)
{
    mx_app *app = ir->app;
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

    free(ir->request); /* built again for another try */
    ir->request = NULL;
    body = mx_multipart(f, sizeof(f) / sizeof(f[0]), boundary,
                        sizeof(boundary), &blen);
    if (!body)
        return -1;
    /* on the heap, freed with the stanza: the holder's pool lives as
     * long as the app, and grew by this much with every stanza */
    hlen = snprintf(NULL, 0, MX_IN_HEAD, mx_conf_inbound_path(app->conf),
                    ir->path, app->s->server_hostname, ir->attempt,
                    ir->stanza_id, boundary, blen);
    ir->request = hlen > 0 ? malloc((size_t)hlen + 1 + blen) : NULL;
    if (ir->request) {
        snprintf(ir->request, (size_t)hlen + 1, MX_IN_HEAD,
                 mx_conf_inbound_path(app->conf), ir->path,
                 app->s->server_hostname, ir->attempt, ir->stanza_id,
                 boundary, blen);
        memcpy(ir->request + hlen, body, blen);
        ir->request_len = (size_t)hlen + blen;
    }
    free(body);
    return ir->request ? 0 : -1;
}

/* ---- filters ---- */

static mx_inject *inject_of(conn_rec *c)
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
    mx_inject *ir = f->ctx;
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
    mx_inject *ir = f->ctx;
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

/* A 503's Retry-After in seconds (the delta form; a date counts as
 * none), 0 when none. A CGI's lands in err_headers_out. */
static int retry_after_of(request_rec *r)
{
    const char *v = apr_table_get(r->err_headers_out, "Retry-After");
    long n;

    if (!v)
        v = apr_table_get(r->headers_out, "Retry-After");
    n = v ? strtol(v, NULL, 10) : 0;
    return n > 0 && n < 86400 ? (int)n : 0;
}

/* XMPP_REPLY: keep the answer's body and type for the reply. On any other
 * request it has no sender to answer, and passes everything on. */
static apr_status_t reply_filter_fn(ap_filter_t *f, apr_bucket_brigade *bb)
{
    mx_inject *ir = inject_of(f->c);
    request_rec *r = f->r;
    apr_bucket *b;

    /* no sender to answer, or added twice (by mod_xmpp and by the
     * configuration): pass the response on untouched */
    if (!ir || (ir->reply_owner && ir->reply_owner != f)) {
        ap_remove_output_filter(f);
        return ap_pass_brigade(f->next, bb);
    }
    ir->reply_owner = f;
    if (r->status == HTTP_SERVICE_UNAVAILABLE && !ir->retry_after)
        ir->retry_after = retry_after_of(r);
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
        if (ir->reply_len + len > MX_INJECT_MAX_REPLY) {
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
    if (inject_of(r->connection))
        ap_add_output_filter_handle(reply_filter, NULL, r, r->connection);
}

/* ---- the connection ---- */

/* An address the app's host listens on, so that ap_update_vhost_given_ip
 * picks its address set; the Host header then picks it by name. */
apr_sockaddr_t *mx_inject_local_addr(mx_app *app, apr_pool_t *p)
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

static conn_rec *make_conn(mx_inject *ir, apr_pool_t *pool,
                           apr_thread_t *thread)
{
    conn_rec *c = apr_pcalloc(pool, sizeof(*c));
    apr_sockaddr_t *client;

    c->pool = pool;
    c->base_server = ir->app->s;
    c->conn_config = ap_create_conn_config(pool);
    c->notes = apr_table_make(pool, 5);
    c->bucket_alloc = apr_bucket_alloc_create(pool);
    c->local_addr = ir->local_addr;
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
void mx_inject_run(mx_inject *ir, apr_thread_t *thread)
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
    ir->retry_after = 0;
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

void mx_inject_set_env(request_rec *r)
{
    mx_inject *ir = inject_of(r->connection);
    const char *cut = NULL;

    if (!ir)
        return;
    set_bounded(r, "XMPP_FROM", ir->from ? ir->from : "", &cut);
    set_bounded(r, "XMPP_TO", ir->to ? ir->to : "", &cut);
    apr_table_set(r->subprocess_env, "XMPP_KIND",
                  mx_inbound_kind_name(ir->kind));
    apr_table_setn(r->subprocess_env, "XMPP_ATTEMPT",
                   apr_itoa(r->pool, ir->attempt));
    apr_table_set(r->subprocess_env, "XMPP_STANZA_ID", ir->stanza_id);
    if (ir->command)
        set_bounded(r, "XMPP_COMMAND", ir->command, &cut);
    if (ir->arg)
        set_bounded(r, "XMPP_ARG", ir->arg, &cut);
    /* so that a script can tell a cut value from a short message */
    if (cut)
        apr_table_set(r->subprocess_env, "XMPP_TRUNCATED", cut);
}

/* ---- set-up ---- */

void mx_inject_child_init(apr_pool_t *pchild)
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

void mx_inject_register_hooks(apr_pool_t *p)
{
    in_filter = ap_register_input_filter("XMPP_IN", in_filter_fn, NULL,
                                         AP_FTYPE_NETWORK);
    out_filter = ap_register_output_filter("XMPP_OUT", out_filter_fn, NULL,
                                           AP_FTYPE_NETWORK);
    reply_filter = ap_register_output_filter("XMPP_REPLY", reply_filter_fn,
                                             NULL, AP_FTYPE_CONTENT_SET);
    ap_hook_insert_filter(insert_reply_filter, NULL, NULL, APR_HOOK_MIDDLE);
}

