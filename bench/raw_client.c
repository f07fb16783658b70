/* SPDX-License-Identifier: Apache-2.0 */
/* raw_client: the bench's XMPP client, in C with libstrophe, so that the
 * client side is never what limits a figure. One mode per run:
 *
 *   recv      count chat messages whose body starts with "--prefix ";
 *             stop at --count distinct bodies (or --idle seconds without
 *             one, or --timeout)
 *   converse  send --count messages "<prefix> <i>" to --to, at most
 *             --window unanswered at a time; match each answer by <i>
 *             (the reply's body contains "<prefix> <i>"; an error answer
 *             carries our id), write each round trip (microseconds) to
 *             --lat-file
 *   echo      answer every chat message with "re: <body>" (the baseline
 *             of a bot that is not behind mod_xmpp)
 *
 * converse --wait-go 1: once READY, wait (bounded by --timeout) for SIGUSR1
 * before the first send, so that several clients start together after
 * all have logged in (test 11).
 *
 * Common: --jid --resource --port --ca, password in BENCH_PASS. Output on
 * stdout, one line each: "READY t cpu=s" once logged in and available
 * (the CPU seconds used so far: the login's), then "DONE key=value..."
 * (times in monotonic seconds); "ERROR why" on failure.
 */
#include <stdint.h>
#include <sys/resource.h>

#include "bench_xmpp.h"

static volatile sig_atomic_t go;

static void on_go(int sig)
{
    (void)sig;
    go = 1;
}

/* CPU seconds (user + system) this process has used */
static double cpu_used(void)
{
    struct rusage ru;

    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec)
           + (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* Body text of a message stanza (caller frees with xmpp_free), or NULL */
static char *bx_body(bx_session *s, xmpp_stanza_t *st)
{
    xmpp_stanza_t *b = xmpp_stanza_get_child_by_name(st, "body");

    (void)s;
    return b ? xmpp_stanza_get_text(b) : NULL;
}

typedef struct {
    bx_session s;
    const char *prefix;
    size_t plen;
    long count;
    /* recv */
    uint64_t *seen;     /* open addressing set of body hashes */
    size_t seen_size;
    long total, unique, errors;
    double first, last;
    /* converse */
    double *sent_at;    /* per message, 0 once answered */
    long sent, replies, err_answers, dups, stray;
    double t0, last_answer;
    FILE *lat;
    /* ready round trip */
    int ready;
} bx_client;

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ULL;

    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
    return h ? h : 1;
}

/* 1 when h was not in the set yet */
static int seen_add(bx_client *c, uint64_t h)
{
    size_t i = (size_t)h & (c->seen_size - 1);

    while (c->seen[i]) {
        if (c->seen[i] == h)
            return 0;
        i = (i + 1) & (c->seen_size - 1);
    }
    c->seen[i] = h;
    return 1;
}

static int on_ready(xmpp_conn_t *conn, xmpp_stanza_t *st, void *ud)
{
    bx_client *c = ud;
    const char *id = xmpp_stanza_get_id(st);

    (void)conn;
    if (id && !strcmp(id, "bench-ready")) {
        c->ready = 1;
        return 0;
    }
    return 1;
}

/* Available presence, then a ping: once it is answered, the server has
 * handled the presence (a stream is handled in order). */
static void go_available(bx_client *c)
{
    double limit = bx_now() + 10.0;

    xmpp_handler_add(c->s.conn, on_ready, NULL, "iq", NULL, c);
    xmpp_send_raw_string(c->s.conn, "<presence/>");
    xmpp_send_raw_string(c->s.conn, "<iq type=\"get\" id=\"bench-ready\">"
                         "<ping xmlns=\"urn:xmpp:ping\"/></iq>");
    while (!c->ready && !c->s.ended && !bx_stop && bx_now() < limit)
        xmpp_run_once(c->s.ctx, 10);
    if (!c->ready)
        bx_die("no answer to the ready ping");
    printf("READY %.6f cpu=%.3f\n", bx_now(), cpu_used());
    fflush(stdout);
}

/* ---- recv ---- */

static int on_recv(xmpp_conn_t *conn, xmpp_stanza_t *st, void *ud)
{
    bx_client *c = ud;
    const char *type = xmpp_stanza_get_type(st);
    char *body;

    (void)conn;
    if (type && !strcmp(type, "error")) {
        c->errors++;
        return 1;
    }
    if (!(body = bx_body(&c->s, st)))
        return 1;
    if (!strncmp(body, c->prefix, c->plen) && body[c->plen] == ' ') {
        double now = bx_now();

        if (!c->total)
            c->first = now;
        c->last = now;
        c->total++;
        c->unique += seen_add(c, fnv1a(body));
    }
    xmpp_free(c->s.ctx, body);
    return 1;
}

static int run_recv(bx_client *c, int argc, char **argv)
{
    double limit = bx_now() + (double)bx_num(argc, argv, "--timeout", 300);
    double idle = (double)bx_num(argc, argv, "--idle", 10);

    c->seen_size = 1024;
    while (c->seen_size < (size_t)c->count * 2)
        c->seen_size *= 2;
    if (!(c->seen = calloc(c->seen_size, sizeof(*c->seen))))
        bx_die("out of memory");
    xmpp_handler_add(c->s.conn, on_recv, NULL, "message", NULL, c);
    go_available(c);
    while (c->unique < c->count && !c->s.ended && !bx_stop) {
        double now = bx_now();

        if (now > limit || (c->total && now - c->last > idle))
            break;
        xmpp_run_once(c->s.ctx, BX_SLICE_MS);
    }
    printf("DONE total=%ld unique=%ld errors=%ld first=%.6f last=%.6f "
           "cpu=%.3f\n", c->total, c->unique, c->errors, c->first, c->last,
           cpu_used());
    fflush(stdout);
    return 0;
}

/* ---- converse ---- */

static void answered(bx_client *c, long i, int is_error)
{
    double now = bx_now();

    if (i < 0 || i >= c->sent) {
        c->stray++;
        return;
    }
    if (c->sent_at[i] == 0) {
        c->dups++;
        return;
    }
    if (is_error)
        c->err_answers++;
    else {
        c->replies++;
        if (c->lat)
            fprintf(c->lat, "%.0f\n", (now - c->sent_at[i]) * 1e6);
    }
    c->sent_at[i] = 0;
    c->last_answer = now;
}

static int on_answer(xmpp_conn_t *conn, xmpp_stanza_t *st, void *ud)
{
    bx_client *c = ud;
    const char *type = xmpp_stanza_get_type(st), *id, *p;
    char *body;

    (void)conn;
    if (type && !strcmp(type, "error")) {
        id = xmpp_stanza_get_id(st);
        answered(c, id && !strncmp(id, "cv", 2) ? strtol(id + 2, NULL, 10)
                                                : -1, 1);
        return 1;
    }
    if (!(body = bx_body(&c->s, st)))
        return 1;
    p = strstr(body, c->prefix);
    if (p && p[c->plen] == ' ')
        answered(c, strtol(p + c->plen + 1, NULL, 10), 0);
    else
        c->stray++;
    xmpp_free(c->s.ctx, body);
    return 1;
}

static int run_converse(bx_client *c, int argc, char **argv)
{
    const char *to = bx_opt(argc, argv, "--to", NULL);
    const char *lat = bx_opt(argc, argv, "--lat-file", NULL);
    long window = bx_num(argc, argv, "--window", 1);
    double limit, idle = (double)bx_num(argc, argv, "--idle", 15);

    if (!to || window < 1)
        bx_die("--to and a --window of at least 1 are required");
    if (!(c->sent_at = calloc((size_t)c->count, sizeof(double))))
        bx_die("out of memory");
    if (lat && !(c->lat = fopen(lat, "w")))
        bx_die("cannot write %s", lat);
    if (bx_num(argc, argv, "--wait-go", 0))
        signal(SIGUSR1, on_go);
    else
        go = 1;
    xmpp_handler_add(c->s.conn, on_answer, NULL, "message", NULL, c);
    go_available(c);
    limit = bx_now() + (double)bx_num(argc, argv, "--timeout", 300);
    while (!go && !c->s.ended && !bx_stop && bx_now() < limit)
        xmpp_run_once(c->s.ctx, BX_SLICE_MS);
    if (!go)
        bx_die("no SIGUSR1 (--wait-go) before the timeout");
    c->t0 = c->last_answer = bx_now();
    while (!c->s.ended && !bx_stop) {
        double now = bx_now();
        long open = c->sent - c->replies - c->err_answers;

        if (c->sent == c->count && open == 0)
            break;
        if (now > limit || now - c->last_answer > idle)
            break;
        while (c->sent < c->count && open < window) {
            c->sent_at[c->sent] = bx_now();
            xmpp_send_raw_string(c->s.conn,
                                 "<message to=\"%s\" type=\"chat\" "
                                 "id=\"cv%ld\"><body>%s %ld</body>"
                                 "</message>", to, c->sent, c->prefix,
                                 c->sent);
            c->sent++;
            open++;
        }
        xmpp_run_once(c->s.ctx, BX_SLICE_MS);
    }
    if (c->lat)
        fclose(c->lat);
    printf("DONE sent=%ld replies=%ld errors=%ld dups=%ld stray=%ld "
           "first=%.6f last=%.6f cpu=%.3f\n", c->sent, c->replies,
           c->err_answers, c->dups, c->stray, c->t0, c->last_answer,
           cpu_used());
    fflush(stdout);
    return 0;
}

/* ---- echo ---- */

static int on_echo(xmpp_conn_t *conn, xmpp_stanza_t *st, void *ud)
{
    bx_client *c = ud;
    const char *type = xmpp_stanza_get_type(st);
    const char *from = xmpp_stanza_get_from(st);
    xmpp_stanza_t *reply;
    char *body, *text;

    if ((type && !strcmp(type, "error")) || !from
        || !(body = bx_body(&c->s, st)))
        return 1;
    if ((text = malloc(strlen(body) + 5)) != NULL) {
        strcpy(text, "re: ");
        strcat(text, body);
        reply = xmpp_message_new(c->s.ctx, "chat", from, NULL);
        xmpp_message_set_body(reply, text);
        xmpp_send(conn, reply);
        xmpp_stanza_release(reply);
        free(text);
        c->total++;
    }
    xmpp_free(c->s.ctx, body);
    return 1;
}

static int run_echo(bx_client *c, int argc, char **argv)
{
    double limit = bx_now() + (double)bx_num(argc, argv, "--timeout", 600);

    xmpp_handler_add(c->s.conn, on_echo, NULL, "message", NULL, c);
    go_available(c);
    while (!c->s.ended && !bx_stop && bx_now() < limit)
        xmpp_run_once(c->s.ctx, BX_SLICE_MS);
    printf("DONE echoed=%ld cpu=%.3f\n", c->total, cpu_used());
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    static bx_client c;
    const char *mode = argc > 1 ? argv[1] : "";
    int rv;

    c.prefix = bx_opt(argc, argv, "--prefix", "bench");
    c.plen = strlen(c.prefix);
    c.count = bx_num(argc, argv, "--count", 1000);
    if (c.count < 1 || (strcmp(mode, "recv") && strcmp(mode, "converse")
                        && strcmp(mode, "echo")))
        bx_die("usage: raw_client recv|converse|echo --jid JID --port P "
               "--ca FILE [--count N] [--prefix P] ... (BENCH_PASS)");
    bx_login(&c.s, argc, argv);
    if (!strcmp(mode, "recv"))
        rv = run_recv(&c, argc, argv);
    else if (!strcmp(mode, "converse"))
        rv = run_converse(&c, argc, argv);
    else
        rv = run_echo(&c, argc, argv);
    bx_logout(&c.s);
    return rv;
}
