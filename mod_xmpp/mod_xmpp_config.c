/* SPDX-License-Identifier: Apache-2.0 */
/* mod_xmpp configuration: defaults, merging, directive setters.
 *
 * Every setter checks its value at parse time, so `apachectl configtest`
 * refuses a bad value with a message that names the directive and says
 * what it accepts. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "apr_strings.h"
#include "apr_lib.h"
#include "httpd.h"
#include "http_config.h"
#include "http_log.h"

#include "mod_xmpp_config.h"
#include "mx_jid.h"

#ifndef MX_DEFAULT_SPOOL_DIR
#define MX_DEFAULT_SPOOL_DIR "/var/lib/apache2/xmpp"
#endif

extern module AP_MODULE_DECLARE_DATA xmpp_module;

void *mx_create_srv_conf(apr_pool_t *p, server_rec *s)
{
    mx_srv_conf *c = apr_pcalloc(p, sizeof(*c));

    c->engine = MX_UNSET;
    c->tls = MX_UNSET;
    c->tls_verify = MX_UNSET;
    c->inbound = MX_UNSET;
    c->dev_mode = MX_UNSET;
    c->queue_limit = MX_UNSET;
    c->inbound_threads = MX_UNSET;
    c->inbound_queue_limit = MX_UNSET;
    c->inbound_tries = MX_UNSET;
    c->inbound_retry_secs = MX_UNSET;
    c->state_store = MX_UNSET;
    return c;
}

#define MX_MERGE_PTR(f) c->f = add->f ? add->f : base->f
#define MX_MERGE_INT(f) c->f = add->f != MX_UNSET ? add->f : base->f

void *mx_merge_srv_conf(apr_pool_t *p, void *basev, void *addv)
{
    mx_srv_conf *base = basev, *add = addv;
    mx_srv_conf *c = apr_pcalloc(p, sizeof(*c));

    /* An app is exactly a server that says "XMPPEngine On" itself: a virtual
     * host inheriting it would be a second app with the same address. The
     * app's identity (JID, password) is not inherited either; connection
     * settings (server, TLS, spool) are, so they can be set once. */
    c->engine = add->engine;
    c->defined_in = add->defined_in;
    c->jid = add->jid;
    c->password_file = add->password_file;
    c->component = add->component;
    c->component_secret_file = add->component_secret_file;
    MX_MERGE_PTR(resource);
    MX_MERGE_PTR(servers);
    MX_MERGE_INT(tls);
    MX_MERGE_PTR(tls_ca_file);
    MX_MERGE_INT(tls_verify);
    MX_MERGE_INT(inbound);
    MX_MERGE_PTR(inbound_path);
    MX_MERGE_PTR(spool_dir);
    MX_MERGE_INT(dev_mode);
    MX_MERGE_INT(queue_limit);
    MX_MERGE_INT(inbound_threads);
    MX_MERGE_INT(inbound_queue_limit);
    MX_MERGE_INT(inbound_tries);
    MX_MERGE_INT(inbound_retry_secs);
    MX_MERGE_INT(state_store);
    MX_MERGE_PTR(presence_cache);
    return c;
}

mx_srv_conf *mx_conf(const server_rec *s)
{
    return ap_get_module_config(s->module_config, &xmpp_module);
}

/* The typed getters: the value set, else the default. One line each below
 * defines mx_conf_<field> as mod_xmpp_config.h declares it. */
#define MX_GET_STR(field, dflt) \
    const char *mx_conf_##field(const mx_srv_conf *c) \
    { \
        return c->field ? c->field : (dflt); \
    }
#define MX_GET_INT(field, dflt) \
    int mx_conf_##field(const mx_srv_conf *c) \
    { \
        return c->field != MX_UNSET ? c->field : (dflt); \
    }

MX_GET_STR(resource, MX_DEFAULT_RESOURCE)
MX_GET_STR(inbound_path, MX_DEFAULT_INBOUND_PATH)
MX_GET_STR(spool_dir, MX_DEFAULT_SPOOL_DIR)
MX_GET_INT(tls, MX_TLS_REQUIRED)
MX_GET_INT(tls_verify, 1)
MX_GET_INT(inbound, MX_DEFAULT_INBOUND)
MX_GET_INT(dev_mode, 0)
MX_GET_INT(inbound_threads, MX_DEFAULT_IN_THREADS)
MX_GET_INT(inbound_queue_limit, MX_DEFAULT_IN_QUEUE_LIMIT)
MX_GET_INT(inbound_tries, MX_DEFAULT_IN_TRIES)
MX_GET_INT(inbound_retry_secs, MX_DEFAULT_IN_RETRY_SECS)
MX_GET_INT(queue_limit, MX_DEFAULT_QUEUE_LIMIT)

int mx_conf_is_component(const mx_srv_conf *c)
{
    return c->component || c->component_secret_file;
}

/* ---- helpers ---- */

static mx_srv_conf *cmd_conf(cmd_parms *cmd)
{
    return mx_conf(cmd->server);
}

static const char *cmd_err(cmd_parms *cmd, const char *fmt, const char *arg,
                           const char *accepted)
{
    return apr_psprintf(cmd->pool, "%s: %s '%s'; %s", cmd->cmd->name, fmt,
                        arg, accepted);
}

/* A file we must be able to read at startup (as the user httpd starts as). */
static const char *check_file(cmd_parms *cmd, const char *arg, const char **out)
{
    const char *path = ap_server_root_relative(cmd->pool, arg);
    apr_finfo_t fi;

    if (!path)
        return cmd_err(cmd, "invalid path", arg, "give a file name");
    if (apr_stat(&fi, path, APR_FINFO_TYPE, cmd->pool) != APR_SUCCESS)
        return cmd_err(cmd, "file does not exist:", path,
                       "give the path of an existing, readable file");
    if (fi.filetype != APR_REG)
        return cmd_err(cmd, "not a regular file:", path,
                       "give the path of an existing, readable file");
    *out = path;
    return NULL;
}

static const char *parse_port(const char *s, int *port)
{
    char *end;
    long v;

    if (!*s || !apr_isdigit(*s))
        return "port is not a number";
    v = strtol(s, &end, 10);
    if (*end || v < 1 || v > 65535)
        return "port must be 1..65535";
    *port = (int)v;
    return NULL;
}

const char *mx_parse_server(apr_pool_t *p, const char *arg,
                            const char **host, int *port)
{
    const char *colon, *end;

    *port = 0;
    if (!*arg)
        return "empty host";
    if (*arg == '[') {
        end = strchr(arg, ']');
        if (!end || end == arg + 1)
            return "unterminated IPv6 address";
        *host = apr_pstrndup(p, arg + 1, (apr_size_t)(end - arg - 1));
        if (end[1] == '\0')
            return NULL;
        if (end[1] != ':')
            return "junk after IPv6 address";
        return parse_port(end + 2, port);
    }
    colon = strchr(arg, ':');
    if (colon && strchr(colon + 1, ':'))
        return "an IPv6 address must be written in brackets, [::1]:5222";
    *host = colon ? apr_pstrndup(p, arg, (apr_size_t)(colon - arg)) : arg;
    if (!**host)
        return "empty host";
    if (strpbrk(*host, " /@\t"))
        return "host name contains a space, '/' or '@'";
    return colon ? parse_port(colon + 1, port) : NULL;
}

/* ---- setters ---- */

static const char *mx_set_engine(cmd_parms *cmd, void *dc, int flag)
{
    mx_srv_conf *c = cmd_conf(cmd);

    c->engine = flag;
    c->defined_in = apr_psprintf(cmd->pool, "%s:%d",
                                 cmd->directive->filename,
                                 cmd->directive->line_num);
    return NULL;
}

/* arg as a bare address into *out: a user's, user@domain (user 1), or a
 * domain alone (user 0). what names it in the messages, give says what to
 * give instead of an invalid one, give_bare instead of one of the other
 * form. */
static const char *set_bare_jid(cmd_parms *cmd, const char *arg, int user,
                                const char *what, const char *give,
                                const char *give_bare, const char **out)
{
    mx_jid_parts parts;
    const char *why = mx_jid_parse(arg, &parts);

    if (why)
        return cmd_err(cmd, apr_psprintf(cmd->pool, "invalid %s (%s):", what,
                                         why),
                       arg, give);
    if ((parts.local != NULL) != user || parts.resource)
        return cmd_err(cmd, user ? "not a bare user address:"
                                 : "not a bare domain:", arg, give_bare);
    *out = arg;
    return NULL;
}

static const char *mx_set_jid(cmd_parms *cmd, void *dc, const char *arg)
{
    return set_bare_jid(cmd, arg, 1, "JID",
                        "give the app's bare address, user@domain",
                        "give user@domain without a resource "
                        "(the resource is set by XMPPResource)",
                        &cmd_conf(cmd)->jid);
}

static const char *mx_set_resource(cmd_parms *cmd, void *dc, const char *arg)
{
    const char *jid = apr_pstrcat(cmd->pool, "x@example.org/", arg, NULL);

    if (!*arg || !mx_jid_valid(jid))
        return cmd_err(cmd, "invalid resource", arg,
                       "give a non-empty name without control characters");
    cmd_conf(cmd)->resource = arg;
    return NULL;
}

/* One XMPPServer address onto list; NULL when fine */
static const char *add_server(cmd_parms *cmd, apr_array_header_t *list,
                              const char *word)
{
    mx_server_addr *a;
    const char *why;

    if (list->nelts == MX_MAX_SERVERS)
        return apr_psprintf(cmd->pool, "%s: more than %d addresses; give "
                            "at most %d", cmd->cmd->name, MX_MAX_SERVERS,
                            MX_MAX_SERVERS);
    a = apr_array_push(list);
    why = mx_parse_server(cmd->pool, apr_pstrdup(cmd->pool, word), &a->host,
                          &a->port);
    if (why)
        return cmd_err(cmd, apr_pstrcat(cmd->pool, why, " in", NULL), word,
                       "give host, host:port or [IPv6]:port, several "
                       "separated by spaces");
    return NULL;
}

/* XMPPServer host[:port] [host[:port]...]: the addresses are tried in
 * turn (the nodes of a cluster); a later line replaces an earlier one.
 * A quoted argument may hold several, separated by spaces. */
static const char *mx_set_server(cmd_parms *cmd, void *dc, const char *args)
{
    apr_array_header_t *list = apr_array_make(cmd->pool, 2,
                                              sizeof(mx_server_addr));
    const char *err;
    char *word, *token, *last;

    while (apr_isspace(*args))
        args++;
    while (*args) { /* ap_getword_conf skips the spaces after a word */
        word = ap_getword_conf(cmd->temp_pool, &args);
        if (!*word && (err = add_server(cmd, list, word)))
            return err; /* "" */
        for (token = apr_strtok(word, " \t", &last); token;
             token = apr_strtok(NULL, " \t", &last))
            if ((err = add_server(cmd, list, token)))
                return err;
    }
    if (list->nelts == 0)
        return apr_psprintf(cmd->pool, "%s needs at least one address: "
                            "host, host:port or [IPv6]:port",
                            cmd->cmd->name);
    cmd_conf(cmd)->servers = list;
    return NULL;
}

/* The domain a component owns: a bare domain, as the server's Component
 * section names it; every address of it is the app's. */
static const char *mx_set_component(cmd_parms *cmd, void *dc, const char *arg)
{
    return set_bare_jid(cmd, arg, 0, "domain", "give the component's domain, "
                        "e.g. bots.example.org",
                        "give the component's domain alone, without user@ "
                        "or /resource",
                        &cmd_conf(cmd)->component);
}

static const char *mx_set_tls(cmd_parms *cmd, void *dc, const char *arg)
{
    mx_srv_conf *c = cmd_conf(cmd);

    if (!strcasecmp(arg, "required"))
        c->tls = MX_TLS_REQUIRED;
    else if (!strcasecmp(arg, "optional"))
        c->tls = MX_TLS_OPTIONAL;
    else if (!strcasecmp(arg, "off"))
        c->tls = MX_TLS_OFF;
    else
        return cmd_err(cmd, "unknown value", arg,
                       "accepted: required, optional, off");
    return NULL;
}

static const char *mx_set_inbound(cmd_parms *cmd, void *dc, const char *arg)
{
    mx_srv_conf *c = cmd_conf(cmd);
    int kind;

    /* cmd->info starts as NULL on every directive line: the first kind of a
     * line replaces what was set before, the others add to it */
    if (cmd->info != (void *)c)
        c->inbound = 0;
    cmd->info = c;
    if (!strcasecmp(arg, "none"))
        return NULL;
    if ((kind = mx_inbound_kind_of(arg)) != 0) {
        c->inbound |= kind;
        return NULL;
    }
    return cmd_err(cmd, "unknown kind", arg,
                   "accepted: message error subscribe presence (or "
                   "xmpp_message xmpp_error xmpp_subscribe xmpp_presence), "
                   "or none");
}

static const char *mx_set_inbound_path(cmd_parms *cmd, void *dc,
                                       const char *arg)
{
    size_t n = strlen(arg);

    if (n < 2 || arg[0] != '/' || arg[n - 1] != '/' || strpbrk(arg, "?# \t%"))
        return cmd_err(cmd, "invalid path", arg,
                       "give a URL path that starts and ends with '/', "
                       "such as /_ah/xmpp/");
    cmd_conf(cmd)->inbound_path = arg;
    return NULL;
}

static const char *mx_set_spool_dir(cmd_parms *cmd, void *dc, const char *arg)
{
    const char *path = ap_server_root_relative(cmd->pool, arg);

    if (!path || !*arg)
        return cmd_err(cmd, "invalid path", arg, "give a directory");
    cmd_conf(cmd)->spool_dir = path;
    return NULL;
}

/* A whole number in lo..hi into *out, or the refusal; `what` completes
 * "give ..." in the message. */
static const char *int_in_range(cmd_parms *cmd, const char *arg, long lo,
                                long hi, const char *what, int *out)
{
    char *end;
    long v = strtol(arg, &end, 10);

    if (!*arg || *end || v < lo || v > hi)
        return cmd_err(cmd, "invalid number", arg,
                       apr_psprintf(cmd->pool, "give %s, %ld..%ld", what, lo,
                                    hi));
    *out = (int)v;
    return NULL;
}

/* ---- table-driven setters ----
 * The command table's cmd_data names the field of mx_srv_conf they write
 * (its offset, as httpd's ap_set_*_slot do for per-directory records)
 * and, for numbers, the range accepted. */
#define MX_SLOT(field) ((void *)APR_OFFSETOF(mx_srv_conf, field))

typedef struct {
    apr_size_t offset;   /* of an int in mx_srv_conf */
    long lo, hi;
    const char *what;    /* completes "give ..." in the refusal */
} mx_int_rule;

#define MX_INT_RULE(field, lo, hi, what) \
    ((void *)&(mx_int_rule){ APR_OFFSETOF(mx_srv_conf, field), lo, hi, what })

static void *conf_slot(cmd_parms *cmd, apr_size_t offset)
{
    return (char *)cmd_conf(cmd) + offset;
}

static const char *int_rule(cmd_parms *cmd, const mx_int_rule *r,
                            const char *arg)
{
    return int_in_range(cmd, arg, r->lo, r->hi, r->what,
                        conf_slot(cmd, r->offset));
}

/* cmd_data MX_SLOT(field of a const char *): a readable file */
static const char *mx_set_file_slot(cmd_parms *cmd, void *dc,
                                    const char *arg)
{
    return check_file(cmd, arg,
                      conf_slot(cmd, (apr_size_t)(apr_uintptr_t)cmd->info));
}

/* cmd_data MX_SLOT(field of an int): On 1, Off 0 */
static const char *mx_set_flag_slot(cmd_parms *cmd, void *dc, int flag)
{
    *(int *)conf_slot(cmd, (apr_size_t)(apr_uintptr_t)cmd->info) = flag;
    return NULL;
}

/* cmd_data MX_INT_RULE(...): a whole number in the rule's range */
static const char *mx_set_int_slot(cmd_parms *cmd, void *dc, const char *arg)
{
    return int_rule(cmd, cmd->info, arg);
}

static const mx_int_rule inbound_tries_rule = {
    APR_OFFSETOF(mx_srv_conf, inbound_tries), 1, 100,
    "how often a failing inbound request is tried in all"
};
static const mx_int_rule inbound_retry_secs_rule = {
    APR_OFFSETOF(mx_srv_conf, inbound_retry_secs), 1, 86400,
    "the most seconds from an inbound request's first try to its last"
};

/* XMPPInboundRetry tries [max-seconds] */
static const char *mx_set_inbound_retry(cmd_parms *cmd, void *dc,
                                        const char *tries, const char *secs)
{
    const char *err = int_rule(cmd, &inbound_tries_rule, tries);

    if (!err && secs)
        err = int_rule(cmd, &inbound_retry_secs_rule, secs);
    return err;
}

/* XMPPStateStore spool|dbd */
static const char *mx_set_state_store(cmd_parms *cmd, void *dc,
                                      const char *arg)
{
    if (!strcasecmp(arg, "spool"))
        cmd_conf(cmd)->state_store = MX_STORE_SPOOL;
    else if (!strcasecmp(arg, "dbd"))
        cmd_conf(cmd)->state_store = MX_STORE_DBD;
    else
        return cmd_err(cmd, "invalid store", arg, "give spool (files in "
                       MX_CMD_SPOOL_DIR ", one host) or dbd (mod_dbd's "
                       "DBDriver and DBDParams, shared by several hosts)");
    return NULL;
}

/* XMPPPresenceCache provider[:args]: the provider is looked up once every
 * module is loaded (mod_xmpp_store's configtest check) */
static const char *mx_set_presence_cache(cmd_parms *cmd, void *dc,
                                         const char *arg)
{
    const char *c;

    for (c = arg; *c && *c != ':'; c++)
        if (!apr_isalnum(*c) && *c != '_' && *c != '-')
            break;
    if (c == arg || (*c && *c != ':'))
        return cmd_err(cmd, "invalid cache", arg, "give a mod_socache "
                       "provider and its arguments, such as "
                       "redis:127.0.0.1:6379 or memcache:127.0.0.1:11211");
    cmd_conf(cmd)->presence_cache = arg;
    return NULL;
}

int mx_conf_state_store(const mx_srv_conf *c)
{
    return c->state_store == MX_UNSET ? MX_STORE_SPOOL : c->state_store;
}

/* ---- the command table ----
 * What `httpd -L` says of each directive, and what a refused number says
 * to give instead */
#define MX_HELP_ENGINE "On: this server or virtual host is an XMPP app with its own connection (default Off)"
#define MX_HELP_JID "the app's bare address, user@domain (client mode)"
#define MX_HELP_RESOURCE "resource of the client connection (default bot)"
#define MX_HELP_PASSWORD_FILE "file holding the account's password, read at startup"
#define MX_HELP_SERVER "host[:port]... to connect to, tried in turn (default: SRV record of the JID's domain; a component: its domain, port 5347)"
#define MX_HELP_COMPONENT "component mode: the domain the app owns (XEP-0114)"
#define MX_HELP_COMPONENT_SECRET "component mode: file holding the shared secret, read at startup"
#define MX_HELP_TLS "TLS policy: required (default), optional or off"
#define MX_HELP_TLS_CA_FILE "PEM file of extra trust anchors (e.g. a private CA)"
#define MX_HELP_TLS_VERIFY "Off: accept any server certificate (default On)"
#define MX_HELP_INBOUND "inbound kinds posted to the app: message error subscribe presence (default message)"
#define MX_HELP_INBOUND_PATH "URL prefix of inbound requests (default /_ah/xmpp/)"
#define MX_HELP_SPOOL_DIR "directory of the durable outbound queue and the roster"
#define MX_HELP_DEV_MODE "On: log outbound stanzas instead of sending them"
#define MX_HELP_QUEUE_LIMIT "most items the outbound queue may hold (default 100000)"
#define MX_GIVE_QUEUE_LIMIT "the most items the outbound queue may hold"
#define MX_HELP_INBOUND_THREADS "inbound requests run at once by the holding child, per app (default 16)"
#define MX_GIVE_INBOUND_THREADS "how many inbound requests may run at once"
#define MX_HELP_INBOUND_QUEUE_LIMIT "most inbound stanzas kept waiting for their handler (default 100000)"
#define MX_GIVE_INBOUND_QUEUE_LIMIT "the most inbound stanzas kept waiting"
#define MX_HELP_STATE_STORE "where subscriptions and contacts' presence live: spool (default, one host) or dbd (mod_dbd, shared by hosts)"
#define MX_HELP_PRESENCE_CACHE "contacts' presence in a mod_socache provider shared by the hosts, e.g. redis:127.0.0.1:6379 (with XMPPStateStore dbd)"
#define MX_HELP_INBOUND_RETRY "tries of a failing inbound request (5xx, timeout) and the most seconds they take (default 5 60)"

/* One line per directive: MX_CMD_<NAME> with MX_HELP_<NAME>, for the
 * server's record (RSRC_CONF); how, the setter and its cmd_data */
#define MX_DIRECTIVE(how, name, setter, data) \
    AP_INIT_##how(MX_CMD_##name, setter, data, RSRC_CONF, MX_HELP_##name)
/* a readable file, On/Off, a whole number lo..hi into field */
#define MX_FILE(name, field) \
    MX_DIRECTIVE(TAKE1, name, mx_set_file_slot, MX_SLOT(field))
#define MX_FLAG(name, field) \
    MX_DIRECTIVE(FLAG, name, mx_set_flag_slot, MX_SLOT(field))
#define MX_INT(name, field, lo, hi) \
    MX_DIRECTIVE(TAKE1, name, mx_set_int_slot, \
                 MX_INT_RULE(field, lo, hi, MX_GIVE_##name))

const command_rec mx_cmds[] = {
    MX_DIRECTIVE(FLAG, ENGINE, mx_set_engine, NULL),
    MX_DIRECTIVE(TAKE1, JID, mx_set_jid, NULL),
    MX_DIRECTIVE(TAKE1, RESOURCE, mx_set_resource, NULL),
    MX_FILE(PASSWORD_FILE, password_file),
    MX_DIRECTIVE(RAW_ARGS, SERVER, mx_set_server, NULL),
    MX_DIRECTIVE(TAKE1, COMPONENT, mx_set_component, NULL),
    MX_FILE(COMPONENT_SECRET, component_secret_file),
    MX_DIRECTIVE(TAKE1, TLS, mx_set_tls, NULL),
    MX_FILE(TLS_CA_FILE, tls_ca_file),
    MX_FLAG(TLS_VERIFY, tls_verify),
    MX_DIRECTIVE(ITERATE, INBOUND, mx_set_inbound, NULL),
    MX_DIRECTIVE(TAKE1, INBOUND_PATH, mx_set_inbound_path, NULL),
    MX_DIRECTIVE(TAKE1, SPOOL_DIR, mx_set_spool_dir, NULL),
    MX_FLAG(DEV_MODE, dev_mode),
    MX_INT(QUEUE_LIMIT, queue_limit, 1, 100000000),
    MX_INT(INBOUND_THREADS, inbound_threads, 1, 256),
    MX_INT(INBOUND_QUEUE_LIMIT, inbound_queue_limit, 1, 100000000),
    MX_DIRECTIVE(TAKE12, INBOUND_RETRY, mx_set_inbound_retry, NULL),
    MX_DIRECTIVE(TAKE1, STATE_STORE, mx_set_state_store, NULL),
    MX_DIRECTIVE(TAKE1, PRESENCE_CACHE, mx_set_presence_cache, NULL),
    { NULL }
};
