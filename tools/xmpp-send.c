/* SPDX-License-Identifier: Apache-2.0 */
/* xmpp-send: App Engine's send_message, send_invite, send_presence and
 * get_presence for CGI and shell scripts (SPEC section 3.1).
 *
 * It validates with the same code as the module (mx_send), then hands
 * each stanza to the app's durable queue (mx_queue_submit: the holding
 * child's socket, else the spool); the process holding the app's XMPP
 * connection sends it. NO_ERROR means "durably queued".
 * Inside a CGI script started by mod_xmpp it needs no options: the
 * environment names the queue and the app. Exit status: 0 all NO_ERROR,
 * 1 some recipient failed, 2 usage or validation error. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mx_jid.h"
#include "mx_addr_roster.h"
#include "mx_ops.h"
#include "mx_presence.h"
#include "mx_send.h"

#define EXIT_SOME_FAILED 1
#define EXIT_USAGE 2
/* a body larger than this is surely a mistake (and no server takes it) */
#define BODY_MAX (10 * 1024 * 1024)

static const char usage_text[] =
    "usage: xmpp-send message [--from JID] [--type T] [--raw-xml] JID... [-- BODY]\n"
    "       xmpp-send invite [--from JID] JID\n"
    "       xmpp-send presence [--from JID] [--type T] [--show S] [--status TEXT]\n"
    "                          JID|subscribers\n"
    "       xmpp-send get-presence [--from JID] JID...\n"
    "       xmpp-send --help\n"
    "\n"
    "Sends through the durable outbound queue of a mod_xmpp app, with App\n"
    "Engine's rules. Without BODY (nothing after --), the body is read from\n"
    "standard input, less one trailing newline. Several words after -- are\n"
    "joined with spaces.\n"
    "  message types: chat (default), error, groupchat, headline, normal\n"
    "  presence types: available (default), unavailable, probe\n"
    "  presence show: chat, away, dnd, xa; status: at most 1024 characters\n"
    "  --raw-xml   BODY is XML inserted as the children of <message>\n"
    "  --from JID  the app's bare JID or JID/RESOURCE (default JID/RESOURCE);\n"
    "              a component: any NAME@DOMAIN[/RES] or DOMAIN (RESOURCE added\n"
    "              when none is given)\n"
    "\n"
    "Environment (set by mod_xmpp for CGI scripts), and options overriding it:\n"
    "  XMPP_QUEUE     --queue DIR     the app's queue directory\n"
    "  XMPP_JID       --jid JID       the app's bare JID (a domain for a component)\n"
    "  XMPP_RESOURCE  --resource R    the app's resource (default bot)\n"
    "\n"
    "Prints \"JID STATUS\" per recipient, STATUS being NO_ERROR (durably\n"
    "queued), INVALID_JID or OTHER_ERROR; get-presence prints\n"
    "\"JID available [SHOW]\" or \"JID unavailable\" per JID (with several\n"
    "JIDs an invalid one is \"JID INVALID_JID\", exit 1).\n"
    "Exit status: 0 all NO_ERROR, 1 some not, 2 usage or validation error\n"
    "(the message names App Engine's error, e.g. InvalidTypeError).\n";

typedef struct {
    const char *cmd;
    const char *queue, *app_jid, *resource;
    const char *from, *type, *show, *status;
    int raw_xml, has_type, has_show, has_status, dashdash;
    char **words;           /* JIDs, in argument order */
    size_t nwords;
    char **body_words;      /* after "--" */
    size_t nbody_words;
} options;

/* The queue and the app, resolved from options and environment. */
typedef struct {
    const char *queue;
    const char *app_jid;
    const char *resource;
} sender;

static void usage_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));
static void validation_error(mx_err e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));

static void usage_error(const char *fmt, ...)
{
    va_list ap;

    fputs("xmpp-send: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nTry 'xmpp-send --help'.\n", stderr);
    exit(EXIT_USAGE);
}

/* A validation error: App Engine's exception name, then the detail. */
static void validation_error(mx_err e, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "xmpp-send: %s: ", mx_err_name(e));
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(EXIT_USAGE);
}

/* ---- arguments ---- */

static int is_opt(const char *arg, const char *name, const char **inline_val)
{
    size_t n = strlen(name);

    if (strncmp(arg, name, n) != 0)
        return 0;
    if (arg[n] == '\0') {
        *inline_val = NULL;
        return 1;
    }
    if (arg[n] == '=') {
        *inline_val = arg + n + 1;
        return 1;
    }
    return 0;
}

/* Options with a value: "--name value" or "--name=value". */
static const char **value_slot(options *o, const char *arg, const char **val)
{
    static const struct { const char *name; size_t off; } opts[] = {
        { "--from", offsetof(options, from) },
        { "--type", offsetof(options, type) },
        { "--show", offsetof(options, show) },
        { "--status", offsetof(options, status) },
        { "--queue", offsetof(options, queue) },
        { "--jid", offsetof(options, app_jid) },
        { "--resource", offsetof(options, resource) },
    };
    size_t i;

    for (i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
        if (is_opt(arg, opts[i].name, val))
            return (const char **)((char *)o + opts[i].off);
    return NULL;
}

static void parse_option(options *o, int argc, char **argv, int *i)
{
    const char *arg = argv[*i], *val;
    const char **slot;

    if (strcmp(arg, "--raw-xml") == 0) {
        o->raw_xml = 1;
        return;
    }
    if (!(slot = value_slot(o, arg, &val)))
        usage_error("unknown option '%s'", arg);
    if (!val) {
        if (*i + 1 >= argc)
            usage_error("option '%s' needs a value", arg);
        val = argv[++*i];
    }
    *slot = val;
    o->has_type |= slot == &o->type;
    o->has_show |= slot == &o->show;
    o->has_status |= slot == &o->status;
}

static void parse_args(options *o, int argc, char **argv)
{
    int i;

    for (i = 1; i < argc; i++) {
        const char *a = argv[i];

        if (strcmp(a, "--") == 0) {
            o->dashdash = 1;
            o->body_words = argv + i + 1;
            o->nbody_words = (size_t)(argc - i - 1);
            return;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage_text, stdout);
            exit(0);
        }
        if (a[0] == '-' && a[1] == '-')
            parse_option(o, argc, argv, &i);
        else if (a[0] == '-' && a[1])
            usage_error("unknown option '%s'", a);
        else if (!o->cmd)
            o->cmd = a;
        else
            o->words[o->nwords++] = argv[i];
    }
}

/* Refuse options that mean nothing for the command: a typo should not
 * silently send something else than intended. */
static void check_options_fit(const options *o)
{
    int message = strcmp(o->cmd, "message") == 0;
    int presence = strcmp(o->cmd, "presence") == 0;

    if (o->raw_xml && !message)
        usage_error("--raw-xml is for 'message' only");
    if (o->has_type && !message && !presence)
        usage_error("--type is for 'message' and 'presence' only");
    if ((o->has_show || o->has_status) && !presence)
        usage_error("--show and --status are for 'presence' only");
    if (o->dashdash && !message)
        usage_error("a body (after --) is for 'message' only");
    if (o->nwords == 0)
        usage_error("'%s' needs a JID", o->cmd);
    if (!message && strcmp(o->cmd, "get-presence") != 0 && o->nwords > 1)
        usage_error("'%s' takes one JID", o->cmd);
}

/* ---- environment ---- */

static const char *env_or(const char *opt, const char *name, const char *dflt)
{
    const char *v = getenv(name);

    if (opt)
        return opt;
    return (v && *v) ? v : dflt;
}

static char *concat3(const char *a, const char *b, const char *c)
{
    size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
    char *s = malloc(la + lb + lc + 1);

    if (!s) {
        fputs("xmpp-send: out of memory\n", stderr);
        exit(EXIT_USAGE);
    }
    memcpy(s, a, la);
    memcpy(s + la, b, lb);
    memcpy(s + la + lb, c, lc + 1);
    return s;
}

/* The app's identity, checked: mx_ops builds the stanzas' from with it. */
static void resolve_app(const options *o, sender *s)
{
    mx_jid_parts p;
    char *full;

    s->app_jid = env_or(o->app_jid, "XMPP_JID", NULL);
    s->resource = env_or(o->resource, "XMPP_RESOURCE", "bot");
    if (!s->app_jid)
        usage_error("no app JID: set XMPP_JID or pass --jid JID");
    if (mx_jid_parse(s->app_jid, &p) != NULL || p.resource)
        usage_error("the app JID '%s' is not a valid bare JID", s->app_jid);
    full = concat3(s->app_jid, "/", s->resource);
    if (!mx_jid_valid(full))
        usage_error("the app resource '%s' is not a valid resource", s->resource);
    free(full);
    if (mx_check_from(o->from, s->app_jid, s->resource) != MX_OK)
        validation_error(MX_ERR_INVALID_JID,
                         "'%s' is not one of the app's own addresses", o->from);
}

static void resolve_queue(const options *o, sender *s)
{
    s->queue = env_or(o->queue, "XMPP_QUEUE", NULL);
    if (!s->queue)
        usage_error("no queue directory: set XMPP_QUEUE or pass --queue DIR");
}

/* ---- results ---- */

/* What mx_ops needs from the queue and the app (both checked) */
static mx_sender resolve_sender(const options *o)
{
    sender s;
    mx_sender snd = { 0 }; /* presence NULL: get-presence reads the files */

    resolve_queue(o, &s);
    resolve_app(o, &s);
    snd.queue_dir = s.queue;
    snd.app_jid = s.app_jid;
    snd.app_resource = s.resource;
    snd.sync = 1;
    return snd;
}

/* Print a status line per recipient (reasons on stderr); a refused call
 * is a validation error. Returns the exit status. */
static int report(const mx_result *res, const char *const *jids,
                  const mx_status *st, size_t n)
{
    size_t i;
    int failed = 0;

    if (res->err != MX_OK)
        validation_error(res->err, "%s", res->why);
    for (i = 0; i < n; i++) {
        if (st[i] == MX_INVALID_JID)
            fprintf(stderr, "xmpp-send: '%s' is not a valid JID: %s\n",
                    jids[i], mx_jid_parse(jids[i], NULL));
        else if (st[i] != MX_NO_ERROR)
            fprintf(stderr, "xmpp-send: %s: %s\n", jids[i], res->why);
        printf("%s %s\n", jids[i], mx_status_name(st[i]));
        failed |= st[i] != MX_NO_ERROR;
    }
    return failed ? EXIT_SOME_FAILED : 0;
}

/* ---- the body of a message ---- */

static char *join_words(char **w, size_t n)
{
    size_t i, len = 0;
    char *s, *p;

    for (i = 0; i < n; i++)
        len += strlen(w[i]) + 1;
    if (!(s = p = malloc(len + 1)))
        return NULL;
    *p = '\0';
    for (i = 0; i < n; i++) {
        if (i)
            *p++ = ' ';
        p = stpcpy(p, w[i]);
    }
    return s;
}

/* The whole of standard input, less one trailing newline: what `echo`
 * and here-documents add is not part of the message. */
static char *read_stdin(void)
{
    size_t len = 0, size = 4096;
    char *buf = malloc(size), *nb;
    ssize_t r;

    while (buf) {
        if (len + 1 >= size) {
            if (size > BODY_MAX) {
                free(buf);
                usage_error("the body is larger than %s", "10 MiB");
            }
            nb = realloc(buf, size * 2);
            if (!nb)
                free(buf);
            buf = nb;
            size *= 2;
            continue;
        }
        r = read(0, buf + len, size - len - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            usage_error("cannot read the body from standard input: %s", strerror(errno));
        if (r == 0)
            break;
        len += (size_t)r;
    }
    if (!buf)
        return NULL;
    if (len && buf[len - 1] == '\n')
        len--;
    if (len && buf[len - 1] == '\r')
        len--;
    buf[len] = '\0';
    return buf;
}

static char *message_body(const options *o)
{
    char *body = o->nbody_words ? join_words(o->body_words, o->nbody_words)
                                : read_stdin();

    if (!body) {
        fputs("xmpp-send: out of memory\n", stderr);
        exit(EXIT_USAGE);
    }
    return body;
}

/* ---- commands ---- */

static void check_single_jid(const char *jid)
{
    if (mx_check_to(jid) != MX_OK)
        validation_error(MX_ERR_INVALID_JID, "'%s' is not a valid JID: %s",
                         jid, mx_jid_parse(jid, NULL));
}

/* The checks and the queueing are mx_ops', as for every way in. */
static int cmd_message(const options *o)
{
    char *body = message_body(o);
    const char *const *jids = (const char *const *)o->words;
    mx_status *st = calloc(o->nwords + 1, sizeof(*st));
    mx_sender snd;
    mx_result res;
    int rv;

    if (!st) {
        fputs("xmpp-send: out of memory\n", stderr);
        exit(EXIT_USAGE);
    }
    snd = resolve_sender(o);
    mx_op_send_message(&snd, jids, o->nwords, body, o->from, o->type,
                       o->raw_xml, st, &res);
    rv = report(&res, jids, st, o->nwords);
    free(st);
    free(body);
    return rv;
}

/* invite and presence: one recipient */
static int cmd_one(const options *o, int invite)
{
    const char *jid = o->words[0];
    mx_status st = MX_OTHER_ERROR;
    mx_sender snd;
    mx_result res;

    if (invite)
        check_single_jid(jid);
    snd = resolve_sender(o);
    if (invite)
        mx_op_send_invite(&snd, jid, o->from, &st, &res);
    else
        mx_op_send_presence(&snd, jid, o->status, o->from, o->type, o->show,
                            &st, &res);
    return report(&res, &jid, &st, 1);
}

/* One contact's line; 0, or EXIT_SOME_FAILED when it cannot be read.
 * dir: where the contacts' presence files are (the queue directory; a
 * component's per-address directory). */
static int print_presence(const char *dir, const char *jid)
{
    char show[32];
    int available, rv;

    rv = mx_presence_load(dir, jid, &available, show, sizeof(show), NULL);
    if (rv < 0) {
        fprintf(stderr, "xmpp-send: %s: cannot read its presence: %s\n",
                jid, strerror(errno));
        printf("%s OTHER_ERROR\n", jid);
        return EXIT_SOME_FAILED;
    }
    if (rv == 0 && available)
        printf("%s available%s%s\n", jid, *show ? " " : "", show);
    else
        printf("%s unavailable\n", jid);
    return 0;
}

/* One JID: an invalid one is a validation error (exit 2), as before.
 * Several (App Engine's get_presence with a list): a line each, in order,
 * an invalid one "JID INVALID_JID" and exit 1, the others answered. */
static int cmd_get_presence(const options *o)
{
    char addr_dir[4096];
    const char *dir;
    size_t i;
    int rv = 0;
    sender s;

    if (o->nwords == 1)
        check_single_jid(o->words[0]);
    resolve_queue(o, &s);
    dir = s.queue;
    /* the app's identity is needed for --from, and to know a component:
     * its contacts' presence is kept per address (mx_addr_roster), of
     * --from or else of the domain, as mx_op_get_presence reads it */
    if (o->from || env_or(o->app_jid, "XMPP_JID", NULL)) {
        resolve_app(o, &s);
        if (!strchr(s.app_jid, '@')) {
            if (mx_addr_roster_dir(s.queue, o->from ? o->from : s.app_jid,
                                   addr_dir, sizeof(addr_dir)) != 0)
                validation_error(MX_ERR_INVALID_JID, "'%s' is not a valid "
                                 "address", o->from ? o->from : s.app_jid);
            dir = addr_dir;
        }
    }
    for (i = 0; i < o->nwords; i++) {
        if (mx_check_to(o->words[i]) != MX_OK) {
            printf("%s INVALID_JID\n", o->words[i]);
            rv = EXIT_SOME_FAILED;
        } else if (print_presence(dir, o->words[i]) != 0)
            rv = EXIT_SOME_FAILED;
    }
    return rv;
}

int main(int argc, char **argv)
{
    options o;
    int rv;

    memset(&o, 0, sizeof(o));
    if (!(o.words = calloc((size_t)argc + 1, sizeof(char *)))) {
        fputs("xmpp-send: out of memory\n", stderr);
        return EXIT_USAGE;
    }
    parse_args(&o, argc, argv);
    if (!o.cmd)
        usage_error("no command: message, invite, presence or get-presence");
    if (strcmp(o.cmd, "message") && strcmp(o.cmd, "invite")
        && strcmp(o.cmd, "presence") && strcmp(o.cmd, "get-presence"))
        usage_error("unknown command '%s'", o.cmd);
    check_options_fit(&o);
    if (o.raw_xml) /* the only use of libxml2; keeps plain sends fast */
        mx_send_init();
    if (strcmp(o.cmd, "message") == 0)
        rv = cmd_message(&o);
    else if (strcmp(o.cmd, "invite") == 0 || strcmp(o.cmd, "presence") == 0)
        rv = cmd_one(&o, strcmp(o.cmd, "invite") == 0);
    else
        rv = cmd_get_presence(&o);
    free(o.words);
    if (fflush(stdout) != 0) {
        fprintf(stderr, "xmpp-send: cannot write the result: %s\n", strerror(errno));
        return EXIT_USAGE;
    }
    return rv;
}
