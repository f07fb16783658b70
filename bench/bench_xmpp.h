/* SPDX-License-Identifier: Apache-2.0 */
/* bench_xmpp.h: what the bench's libstrophe programs share: a monotonic
 * clock comparable across processes (CLOCK_MONOTONIC, as Python's
 * time.monotonic()), option parsing, and a bounded TLS login.
 *
 * The account's password comes from the environment (BENCH_PASS), not the
 * command line. */
#ifndef BENCH_XMPP_H
#define BENCH_XMPP_H

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <strophe.h>

/* libstrophe loop slice: short, because TLS records already buffered in
 * OpenSSL are only seen on the next call */
#define BX_SLICE_MS 10

static volatile sig_atomic_t bx_stop;

static void bx_on_signal(int sig)
{
    (void)sig;
    bx_stop = 1;
}

static double bx_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void bx_die(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fputs("ERROR ", stdout);
    vfprintf(stdout, fmt, ap);
    fputc('\n', stdout);
    fflush(stdout);
    va_end(ap);
    exit(1);
}

/* Options are "--name value" pairs; bx_opt returns the value or dflt. */
static const char *bx_opt(int argc, char **argv, const char *name,
                          const char *dflt)
{
    int i;

    for (i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], name))
            return argv[i + 1];
    return dflt;
}

static long bx_num(int argc, char **argv, const char *name, long dflt)
{
    const char *v = bx_opt(argc, argv, name, NULL);

    return v ? strtol(v, NULL, 10) : dflt;
}

typedef struct {
    xmpp_ctx_t *ctx;
    xmpp_conn_t *conn;
    int connected;   /* logged in */
    int ended;       /* disconnected (or failed) */
    char jid[256];   /* the full JID asked for */
} bx_session;

static void bx_conn_event(xmpp_conn_t *conn, xmpp_conn_event_t ev, int err,
                          xmpp_stream_error_t *se, void *ud)
{
    bx_session *s = ud;

    (void)conn; (void)err; (void)se;
    if (ev == XMPP_CONN_CONNECT)
        s->connected = 1;
    else if (ev == XMPP_CONN_DISCONNECT || ev == XMPP_CONN_FAIL)
        s->ended = 1;
}

/* No Nagle: a client that writes its next message while the last is
 * unacknowledged would otherwise wait for the server's delayed ACK, and
 * the bench would measure that instead of the server side. */
static int bx_sockopt(xmpp_conn_t *conn, void *sockp)
{
    int fd = *(int *)sockp, one = 1;

    (void)conn;
    return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* Log in over STARTTLS (required, verified against --ca) as --jid with
 * resource --resource on 127.0.0.1:--port; gives up after --login-timeout
 * seconds. Stream management off: the bench counts by itself. */
static void bx_login(bx_session *s, int argc, char **argv)
{
    const char *jid = bx_opt(argc, argv, "--jid", NULL);
    const char *res = bx_opt(argc, argv, "--resource", "bench");
    const char *ca = bx_opt(argc, argv, "--ca", NULL);
    const char *pass = getenv("BENCH_PASS");
    long port = bx_num(argc, argv, "--port", 5222);
    double limit = bx_now() + (double)bx_num(argc, argv, "--login-timeout", 20);

    if (!jid || !pass)
        bx_die("--jid and BENCH_PASS are required");
    signal(SIGTERM, bx_on_signal);
    signal(SIGINT, bx_on_signal);
    signal(SIGPIPE, SIG_IGN);
    xmpp_initialize();
    snprintf(s->jid, sizeof(s->jid), "%s/%s", jid, res);
    s->ctx = xmpp_ctx_new(NULL, getenv("BENCH_DEBUG")
                          ? xmpp_get_default_logger(XMPP_LEVEL_DEBUG) : NULL);
    s->conn = xmpp_conn_new(s->ctx);
    xmpp_conn_set_flags(s->conn, XMPP_CONN_FLAG_MANDATORY_TLS
                                 | XMPP_CONN_FLAG_DISABLE_SM);
    xmpp_conn_set_jid(s->conn, s->jid);
    xmpp_conn_set_pass(s->conn, pass);
    xmpp_conn_set_sockopt_callback(s->conn, bx_sockopt);
    if (ca)
        xmpp_conn_set_cafile(s->conn, ca);
    if (xmpp_connect_client(s->conn, "127.0.0.1", (unsigned short)port,
                            bx_conn_event, s) != XMPP_EOK)
        bx_die("cannot connect to 127.0.0.1:%ld", port);
    while (!s->connected && !s->ended && !bx_stop && bx_now() < limit)
        xmpp_run_once(s->ctx, 10);
    if (!s->connected)
        bx_die("login as %s failed", s->jid);
}

/* Close the stream and wait (bounded) for the server's end. */
static void bx_logout(bx_session *s)
{
    double limit = bx_now() + 3.0;

    if (!s->ended) {
        xmpp_disconnect(s->conn);
        while (!s->ended && bx_now() < limit)
            xmpp_run_once(s->ctx, 10);
    }
    xmpp_conn_release(s->conn);
    xmpp_ctx_free(s->ctx);
    xmpp_shutdown();
}

#endif
