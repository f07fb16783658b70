/* SPDX-License-Identifier: Apache-2.0 */
/* mod_xmpp_holder: one XMPP session per app, whatever the MPM and the
 * number of children.
 *
 * Election. Every child runs one thread per app that tries, every
 * MX_ELECT_POLL_MS, to take an exclusive flock() on <spool>/<app>/holder.lock.
 * The winner holds the app's connection until the child stops; the kernel
 * releases the lock when the holder dies, however it dies (kill -9
 * included), and another child takes over at its next poll. The lock file
 * is never removed and lives in the spool directory, which outlives
 * restarts: a new generation after a graceful restart waits for the old
 * holder to finish closing instead of opening a second session. (A mutex
 * from ap_mutex_register is created anew per generation, which would let
 * the old and the new holder overlap.)
 *
 * Connection. libstrophe is not thread-safe: the holder thread alone owns
 * its xmpp_ctx_t. It calls xmpp_run_once with a short timeout, because TLS
 * records buffered inside OpenSSL are only seen on the next call.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <strophe.h>

#include "apr_strings.h"
#include "apr_thread_proc.h"
#include "apr_time.h"
#include "httpd.h"
#include "http_log.h"
#include "ap_mpm.h"

#include "mod_xmpp_app.h"
#include "mod_xmpp_contacts.h"
#include "mod_xmpp_holder.h"
#include "mod_xmpp_inbound.h"
#include "mod_xmpp_outbound.h"
#include "mod_xmpp_queue.h"
#include "mx_backoff.h"
#include "mx_redact.h"

APLOG_USE_MODULE(xmpp);

#define MX_ELECT_POLL_MS   200   /* how often a non-holder tries the lock */
#define MX_RUN_ONCE_MS     5     /* longest wait of the holder's loop */
#define MX_CLOSE_ACK_MS    2000  /* wait for the server to confirm on stop */
#define MX_CLOSE_END_MS    1000  /* wait for the server's </stream> */
#define MX_JOIN_MS         4000  /* child exit waits this long for a thread */
#define MX_STABLE_SECS     10    /* a session this long resets the backoff */
#define MX_NEXT_SERVER_MS  100   /* pause before the next XMPPServer address */
#define MX_KEEPALIVE_IDLE  60
#define MX_KEEPALIVE_INTVL 20
#define MX_KEEPALIVE_CNT   3
#define MX_WHITESPACE_SECS 30    /* a space to the server when this long... */
#define MX_USER_TIMEOUT_MS 30000 /* ...unacknowledged this long: dead path */

typedef struct mx_holder {
    mx_app *app;
    apr_thread_t *thread;
    volatile int stop;
    volatile int done;
    int lock_fd;
    /* below: the holder thread only */
    int sock;              /* the XMPP socket, -1 when none */
    xmpp_ctx_t *ctx;
    xmpp_conn_t *conn;
    xmpp_log_t log;
    mx_qserver *queue;     /* the queue thread and its journal */
    mx_out *out;           /* the outbound queue's sending side */
    mx_contacts *contacts; /* roster, presence, subscriptions */
    mx_inbound *inbound;   /* stanzas to requests */
    int logged_in;         /* CONNECT seen on the current conn */
    int ended;             /* DISCONNECT seen on the current conn */
    int auth_failed;       /* libstrophe reported a SASL failure */
    int sm_offered;        /* -1 not known, else whether the features after
                            * login offered stream management (XEP-0198) */
    int tls_demanded;      /* the server's features said STARTTLS required */
    int stream_error;      /* the server ended the session with one: 1,
                            * 2 when it may be about a stanza we sent */
    int cert_failed;
    int ever_logged_in;
    apr_time_t login_time; /* of the current conn */
    apr_time_t last_space; /* whitespace keepalive last sent */
    unsigned int failures; /* consecutive failed rounds of attempts */
    int server;            /* index of the XMPPServer address in use */
    int round_failed;      /* addresses failed in a row in this round */
    char lib_error[256];   /* libstrophe's last error line */
    char error[256];       /* why the current conn ended */
} mx_holder;

static apr_array_header_t *holders; /* of mx_holder*, this child */

/* The thread running libstrophe, for callbacks that get no user data. */
static __thread mx_holder *current;

/* ---- shared state ---- */

static void publish_state(mx_holder *h, mx_state st, const char *error)
{
    mx_shared *sh = h->app->shared;

    mx_shared_begin(sh);
    sh->state = st;
    sh->holder_pid = getpid();
    sh->last_change = apr_time_now();
    if (st == MX_ST_CONNECTED)
        sh->connected_since = sh->last_change;
    else
        sh->connected_since = 0;
    if (error)
        apr_cpystrn(sh->last_error, error, sizeof(sh->last_error));
    mx_shared_end(sh);
}

/* ---- logging: libstrophe -> httpd's error log ---- */

static int strophe_to_aplog(xmpp_log_level_t level)
{
    switch (level) {
    case XMPP_LEVEL_ERROR: return APLOG_INFO;   /* we log our own summary */
    case XMPP_LEVEL_WARN:  return APLOG_DEBUG;
    case XMPP_LEVEL_INFO:  return APLOG_TRACE1;
    default:               return APLOG_TRACE2; /* every stanza sent/received */
    }
}

static void strophe_log(void *ud, xmpp_log_level_t level, const char *area,
                        const char *msg)
{
    mx_holder *h = ud;
    server_rec *s = h->app->s;
    int aplevel = strophe_to_aplog(level);
    char clean[2048], cleaner[2048];

    if (level == XMPP_LEVEL_ERROR)
        mx_redact(msg, h->app->password, h->lib_error, sizeof(h->lib_error));
    /* libstrophe says "SASL <mech> auth failed" before falling back */
    if (!strncmp(msg, "SASL ", 5) && strstr(msg, "auth failed"))
        h->auth_failed = 1;
    /* libstrophe keeps the stream features to itself but logs every
     * element it receives: the features after login (those offering
     * resource binding) tell whether the server has stream management.
     * A server without it closes the stream on an <enable/>. */
    if (level == XMPP_LEVEL_DEBUG && !strncmp(msg, "RECV: <features ", 16)) {
        if (strstr(msg, "urn:ietf:params:xml:ns:xmpp-bind"))
            h->sm_offered = strstr(msg, "urn:xmpp:sm:3") != NULL;
        if (strstr(msg, "urn:ietf:params:xml:ns:xmpp-tls")
            && strstr(msg, "<required/>"))
            h->tls_demanded = 1;
    }
    if (!APLOG_IS_LEVEL(s, aplevel))
        return;
    mx_redact(msg, h->app->password, clean, sizeof(clean));
    mx_redact(clean, mx_out_log_secret(h->out), cleaner, sizeof(cleaner));
    ap_log_error(APLOG_MARK, aplevel, 0, s, "%s: libstrophe %s: %s",
                 h->app->jid, area, cleaner);
}

/* ---- socket options ---- */

/* libstrophe waits with select(): an fd at or above FD_SETSIZE would
 * corrupt memory. A busy child easily has that many open, so move the
 * socket down, or refuse. Also: close-on-exec (CGIs fork from this child),
 * TCP keepalive, so a dead peer is noticed, and no Nagle delay. */
static int mx_sockopt(xmpp_conn_t *conn, void *sockp)
{
    int *fdp = sockp, fd = *fdp, on = 1;
    int idle = MX_KEEPALIVE_IDLE, intvl = MX_KEEPALIVE_INTVL;
    int cnt = MX_KEEPALIVE_CNT;
    unsigned int user_timeout = MX_USER_TIMEOUT_MS;

    if (fd >= FD_SETSIZE) {
        int low = fcntl(fd, F_DUPFD_CLOEXEC, 3);

        if (low < 0 || low >= FD_SETSIZE) {
            if (low >= 0)
                close(low);
            if (current)
                ap_log_error(APLOG_MARK, APLOG_ERR, 0, current->app->s,
                             MX_LOG_TAG "0101: %s: no file descriptor below "
                             "%d free for the XMPP socket",
                             current->app->jid, FD_SETSIZE);
            return -1;
        }
        close(fd);
        *fdp = fd = low;
    }
    else if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
    /* what we write (the whitespace keepalive included) and the server's
     * kernel does not acknowledge within this time ends the connection:
     * a dead path or machine is noticed, not waited on for minutes */
    setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout,
               sizeof(user_timeout));
    /* stanzas are small and a reply waits on them: no Nagle delay */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
    if (current)
        current->sock = fd;
    return 0;
}

/* Acknowledge what the server sent at once. A server with Nagle on (as
 * Prosody is by default) holds its next small write until the last is
 * acknowledged; when that last was something we do not answer with data
 * (an <a/>, a presence), our delayed ACK held it up to 40 ms. Linux
 * falls back to delayed ACKs by itself, so this is renewed every turn. */
static void ack_quickly(mx_holder *h)
{
    int on = 1;

    if (h->sock >= 0 && !h->ended)
        setsockopt(h->sock, IPPROTO_TCP, TCP_QUICKACK, &on, sizeof(on));
}

static int mx_certfail(const xmpp_tlscert_t *cert, const char *const errormsg)
{
    if (current) {
        current->cert_failed = 1;
        apr_snprintf(current->lib_error, sizeof(current->lib_error), "%s",
                     errormsg ? errormsg : "unknown reason");
    }
    return 0; /* refuse: certificates are verified unless XMPPTLSVerify Off */
}

/* ---- connection events ---- */

static const char *stream_error_name(xmpp_error_type_t t)
{
    static const char *const names[] = {
        "bad-format", "bad-namespace-prefix", "conflict",
        "connection-timeout", "host-gone", "host-unknown",
        "improper-addressing", "internal-server-error", "invalid-from",
        "invalid-id", "invalid-namespace", "invalid-xml", "not-authorized",
        "policy-violation", "remote-connection-failed", "resource-constraint",
        "restricted-xml", "see-other-host", "system-shutdown",
        "undefined-condition", "unsupported-encoding",
        "unsupported-stanza-type", "unsupported-version",
        "xml-not-well-formed"
    };
    return (unsigned)t < sizeof(names) / sizeof(names[0]) ? names[t]
                                                          : "unknown";
}

/* The stream errors a component meets at its handshake, in words that
 * say what to fix. 1 when h->error is written. */
static int describe_component_end(mx_holder *h, const xmpp_stream_error_t *se)
{
    mx_app *app = h->app;

    if (se->type == XMPP_SE_NOT_AUTHORIZED && !h->logged_in)
        apr_snprintf(h->error, sizeof(h->error),
                     "the server refused the component secret for %s (check "
                     "XMPPComponentSecretFile and the server's component "
                     "secret)", app->jid);
    else if (se->type == XMPP_SE_HOST_UNKNOWN)
        apr_snprintf(h->error, sizeof(h->error),
                     "the server has no component %s (host-unknown): check "
                     "XMPPComponent and the server's configuration",
                     app->jid);
    else if (se->type == XMPP_SE_CONFLICT)
        apr_snprintf(h->error, sizeof(h->error),
                     "the server refused the connection: another component "
                     "is connected for %s (conflict)", app->jid);
    else
        return 0;
    return 1;
}

/* Why did the connection end? One sentence an administrator can act on. */
static void describe_end(mx_holder *h, int error,
                         const xmpp_stream_error_t *se)
{
    mx_app *app = h->app;

    if (se && app->component && describe_component_end(h, se))
        return;
    if (se && se->type == XMPP_SE_CONFLICT)
        apr_snprintf(h->error, sizeof(h->error),
                     "the server closed the session: another client logged "
                     "in as %s (conflict)", app->full_jid);
    else if (se)
        apr_snprintf(h->error, sizeof(h->error),
                     "the server closed the stream: %s%s%s",
                     stream_error_name(se->type), se->text ? ": " : "",
                     se->text ? se->text : "");
    else if (h->cert_failed)
        apr_snprintf(h->error, sizeof(h->error),
                     "TLS: the server's certificate is not trusted (%s); "
                     "set XMPPTLSCAFile to the CA that issued it",
                     h->lib_error);
    else if (h->tls_demanded && !h->logged_in
             && mx_conf_tls(app->conf) == MX_TLS_OFF)
        apr_snprintf(h->error, sizeof(h->error),
                     "could not log in: the server requires TLS (STARTTLS) "
                     "and XMPPTLS is off; set XMPPTLS required (or "
                     "optional)");
    else if (h->auth_failed && !h->logged_in)
        apr_snprintf(h->error, sizeof(h->error),
                     "login failed: the server refused the password for %s "
                     "(check XMPPPasswordFile and the account)", app->jid);
    else if (error)
        apr_snprintf(h->error, sizeof(h->error), "connection failed: %s",
                     strerror(error));
    else if (!h->logged_in)
        apr_snprintf(h->error, sizeof(h->error), "could not log in: %s",
                     *h->lib_error ? h->lib_error : "connection closed");
    else
        apr_snprintf(h->error, sizeof(h->error),
                     "the server closed the connection");
}

/* Stream errors a stanza of ours can cause (too large, bad XML, bad
 * addressing): not a conflict, a shutdown or a timeout. */
static int blames_data(xmpp_error_type_t t)
{
    switch (t) {
    case XMPP_SE_BAD_FORMAT: case XMPP_SE_BAD_NS_PREFIX:
    case XMPP_SE_IMPROPER_ADDR: case XMPP_SE_INVALID_FROM:
    case XMPP_SE_INVALID_NS: case XMPP_SE_INVALID_XML:
    case XMPP_SE_POLICY_VIOLATION: case XMPP_SE_RESTRICTED_XML:
    case XMPP_SE_UNSUPPORTED_ENCODING: case XMPP_SE_UNSUPPORTED_STANZA_TYPE:
    case XMPP_SE_XML_NOT_WELL_FORMED: case XMPP_SE_UNDEFINED_CONDITION:
        return 1;
    default:
        return 0;
    }
}

static void on_conn_event(xmpp_conn_t *conn, xmpp_conn_event_t ev, int error,
                          xmpp_stream_error_t *se, void *ud)
{
    mx_holder *h = ud;
    mx_app *app = h->app;
    xmpp_stanza_t *pres;

    if (ev == XMPP_CONN_CONNECT) {
        h->logged_in = 1;
        h->login_time = apr_time_now();
        if (h->ever_logged_in)
            mx_shared_count(app->shared->reconnects, 1);
        h->ever_logged_in = 1;
        mx_out_on_login(h->out, h->ctx, conn, h->sm_offered != 0);
        mx_contacts_on_login(h->contacts, h->ctx, conn, h->out);
        mx_inbound_on_login(h->inbound, h->ctx, conn, h->out);
        /* initial presence: contacts see the app online (a component
         * has no server broadcasting it: mx_contacts does that) */
        if (!app->component) {
            pres = xmpp_presence_new(h->ctx);
            mx_out_send_other(h->out, pres);
            xmpp_stanza_release(pres);
        }
        publish_state(h, MX_ST_CONNECTED, NULL);
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, app->s,
                     MX_LOG_TAG "0102: %s: connected to %s as %s (%s)",
                     app->jid, app->shared->server,
                     app->component ? "a component (XEP-0114)"
                                    : xmpp_conn_get_bound_jid(conn),
                     xmpp_conn_is_secured(conn) ? "TLS" : "no TLS");
    }
    else if (ev == XMPP_CONN_DISCONNECT || ev == XMPP_CONN_FAIL) {
        h->ended = 1;
        h->stream_error = !se ? 0 : blames_data(se->type) ? 2 : 1;
        describe_end(h, error, se);
    }
}

/* ---- the holder's loop ---- */

/* Sleep up to ms, waking early when asked to stop (the queue thread
 * goes on taking items meanwhile). */
static void nap(mx_holder *h, unsigned int ms)
{
    while (ms > 0 && !h->stop) {
        unsigned int step = ms > 50 ? 50 : ms;

        apr_sleep(apr_time_from_msec(step));
        ms -= step;
    }
}

static int stopping(mx_holder *h)
{
    int st = AP_MPMQ_STARTING;

    if (h->stop)
        return 1;
    ap_mpm_query(AP_MPMQ_MPM_STATE, &st);
    return st == AP_MPMQ_STOPPING;
}

/* Run the loop for up to ms, or until cond becomes true. */
static void run_until(mx_holder *h, int *cond, unsigned int ms)
{
    apr_time_t end = apr_time_now() + apr_time_from_msec(ms);

    while (!*cond && !h->ended && apr_time_now() < end)
        xmpp_run_once(h->ctx, MX_RUN_ONCE_MS);
}

/* On stop, make sure the server has everything we wrote before we go:
 * a plain disconnect after a burst loses what is still in flight. */
static void close_cleanly(mx_holder *h)
{
    xmpp_stanza_t *pres;

    if (h->logged_in && !h->ended) {
        /* answers of requests still running go out before we close */
        mx_inbound_stop(h->inbound, MX_CLOSE_ACK_MS);
        if (!mx_out_flush(h->out, MX_CLOSE_ACK_MS))
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, h->app->s,
                         MX_LOG_TAG "0103: %s: the server did not confirm "
                         "all that was sent within %d ms; what it did not "
                         "confirm stays queued", h->app->jid,
                         MX_CLOSE_ACK_MS);
        if (h->app->component) { /* a component has no broadcast */
            mx_contacts_on_close(h->contacts);
        }
        else {
            pres = xmpp_presence_new(h->ctx);
            xmpp_stanza_set_type(pres, "unavailable");
            mx_out_send_other(h->out, pres);
            xmpp_stanza_release(pres);
        }
    }
    if (!h->ended) {
        xmpp_disconnect(h->conn);
        run_until(h, &h->ended, MX_CLOSE_END_MS);
    }
}

static long conn_flags(const mx_app *app)
{
    const mx_srv_conf *c = app->conf;
    long flags = XMPP_CONN_FLAG_DISABLE_SM; /* we count acks ourselves */

    /* XEP-0114 has no TLS; libstrophe refuses to connect a component
     * with a TLS flag set */
    if (app->component)
        return flags | XMPP_CONN_FLAG_DISABLE_TLS;
    if (mx_conf_tls(c) == MX_TLS_REQUIRED)
        flags |= XMPP_CONN_FLAG_MANDATORY_TLS;
    else if (mx_conf_tls(c) == MX_TLS_OFF)
        flags |= XMPP_CONN_FLAG_DISABLE_TLS;
    if (!mx_conf_tls_verify(c))
        flags |= XMPP_CONN_FLAG_TRUST_TLS;
    return flags;
}

/* libstrophe 0.12 (and every later version checked) allocates the
 * stream management state in xmpp_connect_client only, yet dereferences
 * it for every connection: a component crashes on the <handshake/>. The
 * state is opaque, so take the one a throw-away client connection
 * allocates; its sockopt callback refuses the socket, so that connection
 * never touches the network and ends disconnected, where libstrophe lets
 * the state go. The component connection owns it from then on and frees
 * it in xmpp_conn_release: every attempt is a fresh connection with a
 * fresh state. */
static int refuse_socket(xmpp_conn_t *conn, void *sockp)
{
    return -1;
}

static int give_sm_state(mx_holder *h, xmpp_conn_t *conn)
{
    xmpp_conn_t *donor = xmpp_conn_new(h->ctx);
    xmpp_sm_state_t *sm = NULL;
    int rc = -1;

    if (!donor)
        return -1;
    xmpp_conn_set_jid(donor, "sm@state.invalid");
    xmpp_conn_set_sockopt_callback(donor, refuse_socket);
    xmpp_connect_client(donor, "127.0.0.1", 9, on_conn_event, h);
    sm = xmpp_conn_get_sm_state(donor);
    if (sm && xmpp_conn_set_sm_state(conn, sm) == XMPP_EOK)
        rc = 0;
    else if (sm)
        xmpp_free_sm_state(sm);
    xmpp_conn_release(donor);
    return rc;
}

static int connect_component(mx_holder *h, const char *host, int port)
{
    if (give_sm_state(h, h->conn) != 0) {
        apr_cpystrn(h->error, "libstrophe gave no stream state for the "
                    "component connection", sizeof(h->error));
        return -1;
    }
    if (xmpp_connect_component(h->conn, host, (unsigned short)port,
                               on_conn_event, h) != XMPP_EOK) {
        apr_snprintf(h->error, sizeof(h->error),
                     "cannot start connecting to %s: %s",
                     h->app->shared->server,
                     *h->lib_error ? h->lib_error : "name lookup failed");
        return -1;
    }
    return 0;
}

/* The XMPPServer addresses; 1 when none is configured */
static int server_count(const mx_app *app)
{
    const apr_array_header_t *list = app->conf->servers;

    return list && list->nelts > 0 ? list->nelts : 1;
}

/* Where attempt goes: the address in use, or the mode's default */
static void server_addr(const mx_holder *h, const char **host, int *port)
{
    const apr_array_header_t *list = h->app->conf->servers;
    const mx_server_addr *a = NULL;

    if (list && list->nelts > 0)
        a = &APR_ARRAY_IDX(list, h->server % list->nelts, mx_server_addr);
    *host = a ? a->host : NULL;
    *port = a && a->port > 0 ? a->port : 0;
    /* a component connects where it is told, by default to its own
     * domain, as a client does without an SRV record */
    if (h->app->component) {
        *host = *host ? *host : h->app->jid;
        *port = *port ? *port : MX_COMPONENT_PORT;
    }
}

/* host:port as people write it ([v6]:port) */
static void format_server(char *buf, apr_size_t len, const char *host,
                          int port)
{
    apr_snprintf(buf, len, strchr(host ? host : "", ':') ? "[%s]:%d"
                                                          : "%s:%d",
                 host ? host : "(SRV)", port ? port : MX_CLIENT_PORT);
}

/* Start one connection attempt. 0 when under way. */
static int start_connection(mx_holder *h)
{
    mx_app *app = h->app;
    mx_srv_conf *c = app->conf;
    const char *host;
    int port;

    server_addr(h, &host, &port);
    h->logged_in = h->ended = h->auth_failed = h->cert_failed = 0;
    h->sm_offered = app->component ? 0 : -1;
    h->tls_demanded = h->stream_error = 0;
    h->sock = -1;
    h->lib_error[0] = h->error[0] = '\0';
    h->conn = xmpp_conn_new(h->ctx);
    if (!h->conn) {
        apr_cpystrn(h->error, "out of memory", sizeof(h->error));
        return -1;
    }
    xmpp_conn_set_flags(h->conn, conn_flags(app));
    xmpp_conn_set_jid(h->conn, app->component ? app->jid : app->full_jid);
    xmpp_conn_set_pass(h->conn, app->password);
    xmpp_conn_set_sockopt_callback(h->conn, mx_sockopt);
    if (c->tls_ca_file && !app->component)
        xmpp_conn_set_cafile(h->conn, c->tls_ca_file);
    xmpp_conn_set_certfail_handler(h->conn, mx_certfail);

    mx_shared_count(app->shared->attempts, 1);
    mx_shared_begin(app->shared);
    format_server(app->shared->server, sizeof(app->shared->server), host,
                  port);
    mx_shared_end(app->shared);
    publish_state(h, MX_ST_CONNECTING, NULL);
    if (app->component)
        return connect_component(h, host, port);
    if (c->tls_ca_file && access(c->tls_ca_file, R_OK) != 0) {
        apr_snprintf(h->error, sizeof(h->error),
                     "XMPPTLSCAFile %s is not readable by the server's User: "
                     "%s", c->tls_ca_file, strerror(errno));
        return -1;
    }
    if (xmpp_connect_client(h->conn, host, (unsigned short)port,
                            on_conn_event, h) != XMPP_EOK) {
        apr_snprintf(h->error, sizeof(h->error),
                     "cannot start connecting to %s: %s",
                     app->shared->server,
                     *h->lib_error ? h->lib_error : "name lookup failed");
        return -1;
    }
    return 0;
}

static void end_connection(mx_holder *h)
{
    if (!h->conn)
        return;
    if (!h->ended)
        close_cleanly(h);
    mx_out_on_end(h->out, h->stream_error ? h->error : NULL,
                  h->stream_error == 2);
    xmpp_conn_release(h->conn);
    h->conn = NULL;
    h->sock = -1;
}

/* After a failed attempt or a lost session: with several XMPPServer
 * addresses the next one is tried at once, until every address has
 * failed in a row; then (and with one address, after every failure) the
 * usual backoff, counted in such rounds. A session that lasted starts
 * the count over; one that ended at once (another client taking the
 * resource, a server that kicks us) counts as a failure, so that such a
 * fight does not loop fast. */
static void backoff(mx_holder *h)
{
    unsigned int rnd, ms;
    int n = server_count(h->app);
    char was[160], next[160];
    const char *host;
    int port;

    if (h->logged_in && apr_time_now() - h->login_time
                        > apr_time_from_sec(MX_STABLE_SECS)) {
        h->failures = 0;
        h->round_failed = 0;
    }
    h->round_failed++;
    if (n > 1) {
        server_addr(h, &host, &port);
        format_server(was, sizeof(was), host, port);
        h->server = (h->server + 1) % n;
        server_addr(h, &host, &port);
        format_server(next, sizeof(next), host, port);
        if (h->round_failed < n) {
            publish_state(h, MX_ST_BACKOFF, h->error);
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, h->app->s,
                         MX_LOG_TAG "0110: %s: %s: %s; trying %s next",
                         h->app->jid, was, h->error, next);
            nap(h, MX_NEXT_SERVER_MS);
            return;
        }
    }
    h->round_failed = 0;
    h->failures++;
    apr_generate_random_bytes((unsigned char *)&rnd, sizeof(rnd));
    ms = mx_backoff_ms(h->failures, rnd);
    publish_state(h, MX_ST_BACKOFF, h->error);
    if (n > 1)
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, h->app->s,
                     MX_LOG_TAG "0111: %s: %s: %s; every XMPPServer address "
                     "failed in a row, trying %s in %u.%us", h->app->jid,
                     was, h->error, next, ms / 1000, (ms % 1000) / 100);
    else
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, h->app->s,
                     MX_LOG_TAG "0104: %s: %s; retrying in %u.%us",
                     h->app->jid, h->error, ms / 1000, (ms % 1000) / 100);
    nap(h, ms);
}

/* Wait up to ms for the server or the queue. libstrophe's own select()
 * sees only the socket; once logged in we wait on the socket (readable,
 * or writable while libstrophe has something queued, as its select()
 * does) and on the queue's "committed" eventfd ourselves, then let
 * libstrophe work without waiting, so an item committed meanwhile goes
 * out at once instead of at the end of a slice. */
#define MX_READ_TURNS 64 /* libstrophe reads per turn, at most (256 KiB) */
static void run_once(mx_holder *h, unsigned int ms)
{
    struct pollfd p[2];
    unsigned long before;
    int turns = 0;

    if (!h->logged_in || h->sock < 0) {
        xmpp_run_once(h->ctx, ms);
        return;
    }
    p[0].fd = h->sock;
    /* what is queued for the server goes out as soon as it can */
    p[0].events = POLLIN
                  | (xmpp_conn_send_queue_len(h->conn) > 0 ? POLLOUT : 0);
    p[1].fd = mx_qserver_ready_fd(h->queue);
    p[1].events = POLLIN;
    p[0].revents = p[1].revents = 0;
    if (poll(p, 2, (int)ms) > 0 && p[1].revents)
        mx_qserver_ready_clear(h->queue);
    /* libstrophe reads at most 4 KiB per call; the rest of a TLS record
     * stays decrypted inside OpenSSL, where poll() cannot see it. Read on
     * while the calls bring stanzas, so a burst is handled now and not
     * after the next slice. */
    do {
        before = mx_out_received(h->out);
        xmpp_run_once(h->ctx, 0);
    } while (mx_out_received(h->out) != before && ++turns < MX_READ_TURNS
             && h->logged_in && !h->ended);
}

/* The loop of one connection: the server and the queue wake it; the
 * slice bounds how late timers (the idle ack request, stopping) run. */
static void run_session(mx_holder *h)
{
    apr_time_t now;

    h->last_space = apr_time_now();
    while (!h->ended && !stopping(h)) {
        run_once(h, MX_RUN_ONCE_MS);
        mx_inbound_flush(h->inbound);
        ack_quickly(h);
        if (!h->logged_in)
            continue;
        mx_out_pump(h->out);
        /* whitespace keepalive (RFC 6120 4.6.1), in both modes: a write
         * every MX_WHITESPACE_SECS, so that with TCP_USER_TIMEOUT a
         * server or path that died without closing the connection is
         * noticed within about a minute, even when nothing is sent */
        now = apr_time_now();
        if (now - h->last_space > apr_time_from_sec(MX_WHITESPACE_SECS)) {
            xmpp_send_raw(h->conn, " ", 1);
            h->last_space = now;
        }
    }
}

static void hold(mx_holder *h)
{
    mx_app *app = h->app;

    /* the queue first: senders get the socket even while disconnected */
    while (!(h->queue = mx_qserver_start(app))) {
        if (stopping(h))
            return;
        nap(h, 5000);
    }
    h->out = mx_out_create(app, h->queue);
    h->contacts = mx_contacts_create(app);
    h->inbound = mx_inbound_create(app, h->queue);
    if (h->out && h->inbound)
        mx_out_set_handled(h->out, mx_inbound_handled, h->inbound);
    h->log.handler = strophe_log;
    h->log.userdata = h;
    h->ctx = xmpp_ctx_new(NULL, &h->log);
    if (!h->out || !h->contacts || !h->inbound || !h->ctx) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, app->s,
                     MX_LOG_TAG "0105: %s: out of memory for the XMPP "
                     "context", app->jid);
        mx_inbound_end(h->inbound);
        mx_qserver_stop(h->queue);
        return;
    }
    if (mx_conf_dev_mode(app->conf)) {
        publish_state(h, MX_ST_DEVMODE, NULL);
        while (!stopping(h)) {
            mx_out_dev_pump(h->out, h->ctx);
            apr_sleep(apr_time_from_msec(20));
        }
    }
    while (!stopping(h)) {
        if (start_connection(h) == 0)
            run_session(h);
        else {
            h->ended = 1;
        }
        end_connection(h);
        if (stopping(h))
            break;
        if (h->logged_in)
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, app->s,
                         MX_LOG_TAG "0106: %s: disconnected: %s", app->jid,
                         h->error);
        backoff(h);
    }
    publish_state(h, MX_ST_STOPPED, NULL);
    xmpp_ctx_free(h->ctx);
    h->ctx = NULL;
    /* the inbound committer uses the queue (answer tickets): it ends
     * first */
    mx_inbound_end(h->inbound);
    /* after the last acks: senders use the spool until the next holder */
    mx_qserver_stop(h->queue);
    h->queue = NULL;
}

/* ---- election ---- */

static int take_lock(mx_holder *h)
{
    char pid[32];
    int len;

    if (h->lock_fd < 0) {
        h->lock_fd = open(h->app->lock_path, O_RDWR | O_CREAT | O_CLOEXEC,
                          0600);
        if (h->lock_fd < 0) {
            ap_log_error(APLOG_MARK, APLOG_ERR, errno, h->app->s,
                         MX_LOG_TAG "0107: %s: cannot open the lock file %s "
                         "(check XMPPSpoolDir and its owner)",
                         h->app->jid, h->app->lock_path);
            return 0;
        }
    }
    if (flock(h->lock_fd, LOCK_EX | LOCK_NB) != 0)
        return 0;
    len = apr_snprintf(pid, sizeof(pid), "%" APR_PID_T_FMT "\n", getpid());
    /* the pid in the file is for people; failing to write it is harmless */
    if (ftruncate(h->lock_fd, 0) == 0 && pwrite(h->lock_fd, pid, len, 0) < 0)
        return 1;
    return 1;
}

static void *APR_THREAD_FUNC holder_main(apr_thread_t *thread, void *data)
{
    mx_holder *h = data;
    sigset_t pipe;
    int lock_errors_logged = 0;

    /* a peer closing the socket must give EPIPE, not kill the child */
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, NULL);
    current = h;
    while (!stopping(h)) {
        if (take_lock(h)) {
            ap_log_error(APLOG_MARK, APLOG_INFO, 0, h->app->s,
                         MX_LOG_TAG "0108: %s: this child (pid %"
                         APR_PID_T_FMT ") now holds the connection",
                         h->app->jid, getpid());
            hold(h);
            break;
        }
        if (h->lock_fd < 0 && lock_errors_logged++ > 0)
            nap(h, 10000); /* logged once; keep trying, quietly */
        nap(h, MX_ELECT_POLL_MS);
    }
    if (h->lock_fd >= 0)
        close(h->lock_fd); /* releases the lock */
    h->lock_fd = -1;
    h->done = 1;
    return NULL;
}

/* Child exit: give the threads a bounded time to close cleanly. */
static apr_status_t holders_join(void *data)
{
    int i, waited = 0;
    apr_status_t rv;

    mx_holder_child_stopping(NULL, 0);
    for (i = 0; holders && i < holders->nelts; i++) {
        mx_holder *h = APR_ARRAY_IDX(holders, i, mx_holder *);

        while (!h->done && waited < MX_JOIN_MS) {
            apr_sleep(apr_time_from_msec(10));
            waited += 10;
        }
        if (h->done)
            apr_thread_join(&rv, h->thread);
    }
    return APR_SUCCESS;
}

void mx_holder_child_stopping(apr_pool_t *pchild, int graceful)
{
    int i;

    for (i = 0; holders && i < holders->nelts; i++)
        APR_ARRAY_IDX(holders, i, mx_holder *)->stop = 1;
}

void mx_holder_child_init(apr_pool_t *pchild, server_rec *s)
{
    apr_threadattr_t *attr;
    apr_status_t rv;
    int i;

    if (!mx_apps || mx_apps->nelts == 0)
        return;
    holders = apr_array_make(pchild, mx_apps->nelts, sizeof(mx_holder *));
    apr_threadattr_create(&attr, pchild);
    for (i = 0; i < mx_apps->nelts; i++) {
        /* not from pchild: a thread that overstays MX_JOIN_MS at exit must
         * not find its memory freed under it */
        mx_holder *h = calloc(1, sizeof(*h));

        if (!h)
            break;
        h->app = APR_ARRAY_IDX(mx_apps, i, mx_app *);
        h->lock_fd = h->sock = -1;
        rv = ap_thread_create(&h->thread, attr, holder_main, h, pchild);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, rv, h->app->s,
                         MX_LOG_TAG "0109: %s: cannot start the connection "
                         "thread", h->app->jid);
            continue;
        }
        APR_ARRAY_PUSH(holders, mx_holder *) = h;
    }
    apr_pool_pre_cleanup_register(pchild, NULL, holders_join);
}
