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
    c->server_port = MX_UNSET;
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
    MX_MERGE_PTR(server_host);
    MX_MERGE_INT(server_port);
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

const char *mx_conf_resource(const mx_srv_conf *c)
{
    return c->resource ? c->resource : MX_DEFAULT_RESOURCE;
}

int mx_conf_is_component(const mx_srv_conf *c)
{
    return c->component || c->component_secret_file;
}

int mx_conf_tls(const mx_srv_conf *c)
{
    return c->tls != MX_UNSET ? c->tls : MX_TLS_REQUIRED;
}

int mx_conf_tls_verify(const mx_srv_conf *c)
{
    return c->tls_verify != MX_UNSET ? c->tls_verify : 1;
}

int mx_conf_inbound(const mx_srv_conf *c)
{
    return c->inbound != MX_UNSET ? c->inbound : MX_DEFAULT_INBOUND;
}

const char *mx_conf_inbound_path(const mx_srv_conf *c)
{
    return c->inbound_path ? c->inbound_path : MX_DEFAULT_INBOUND_PATH;
}

const char *mx_conf_spool_dir(const mx_srv_conf *c)
{
    return c->spool_dir ? c->spool_dir : MX_DEFAULT_SPOOL_DIR;
}

int mx_conf_dev_mode(const mx_srv_conf *c)
{
    return c->dev_mode != MX_UNSET ? c->dev_mode : 0;
}

int mx_conf_inbound_threads(const mx_srv_conf *c)
{
    return c->inbound_threads != MX_UNSET ? c->inbound_threads
                                          : MX_DEFAULT_IN_THREADS;
}

int mx_conf_inbound_queue_limit(const mx_srv_conf *c)
{
    return c->inbound_queue_limit != MX_UNSET ? c->inbound_queue_limit
                                              : MX_DEFAULT_IN_QUEUE_LIMIT;
}

int mx_conf_inbound_tries(const mx_srv_conf *c)
{
    return c->inbound_tries != MX_UNSET ? c->inbound_tries
                                        : MX_DEFAULT_IN_TRIES;
}

int mx_conf_inbound_retry_secs(const mx_srv_conf *c)
{
    return c->inbound_retry_secs != MX_UNSET ? c->inbound_retry_secs
                                             : MX_DEFAULT_IN_RETRY_SECS;
}

int mx_conf_queue_limit(const mx_srv_conf *c)
{
    return c->queue_limit != MX_UNSET ? c->queue_limit
                                      : MX_DEFAULT_QUEUE_LIMIT;
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

static const struct { const char *name; int bit; } inbound_kinds[] = {
    { "message", MX_IN_MESSAGE },     { "xmpp_message", MX_IN_MESSAGE },
    { "error", MX_IN_ERROR },         { "xmpp_error", MX_IN_ERROR },
    { "subscribe", MX_IN_SUBSCRIBE }, { "xmpp_subscribe", MX_IN_SUBSCRIBE },
    { "presence", MX_IN_PRESENCE },   { "xmpp_presence", MX_IN_PRESENCE },
    { NULL, 0 }
};

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

static const char *mx_set_jid(cmd_parms *cmd, void *dc, const char *arg)
{
    mx_jid_parts parts;
    const char *why = mx_jid_parse(arg, &parts);

    if (why)
        return cmd_err(cmd, apr_pstrcat(cmd->pool, "invalid JID (", why, "):",
                                        NULL),
                       arg, "give the app's bare address, user@domain");
    if (!parts.local || parts.resource)
        return cmd_err(cmd, "not a bare user address:", arg,
                       "give user@domain without a resource "
                       "(the resource is set by XMPPResource)");
    cmd_conf(cmd)->jid = arg;
    return NULL;
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

static const char *mx_set_password_file(cmd_parms *cmd, void *dc,
                                        const char *arg)
{
    return check_file(cmd, arg, &cmd_conf(cmd)->password_file);
}

static const char *mx_set_server(cmd_parms *cmd, void *dc, const char *arg)
{
    mx_srv_conf *c = cmd_conf(cmd);
    const char *why = mx_parse_server(cmd->pool, arg, &c->server_host,
                                      &c->server_port);

    if (why)
        return cmd_err(cmd, apr_pstrcat(cmd->pool, why, " in", NULL), arg,
                       "give host, host:port or [IPv6]:port");
    return NULL;
}

/* The domain a component owns: a bare domain, as the server's Component
 * section names it; every address of it is the app's. */
static const char *mx_set_component(cmd_parms *cmd, void *dc, const char *arg)
{
    mx_jid_parts parts;
    const char *why = mx_jid_parse(arg, &parts);

    if (why)
        return cmd_err(cmd, apr_pstrcat(cmd->pool, "invalid domain (", why,
                                        "):", NULL),
                       arg, "give the component's domain, e.g. "
                       "bots.example.org");
    if (parts.local || parts.resource)
        return cmd_err(cmd, "not a bare domain:", arg,
                       "give the component's domain alone, without user@ "
                       "or /resource");
    cmd_conf(cmd)->component = arg;
    return NULL;
}

static const char *mx_set_component_secret(cmd_parms *cmd, void *dc,
                                           const char *arg)
{
    return check_file(cmd, arg, &cmd_conf(cmd)->component_secret_file);
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

static const char *mx_set_tls_ca_file(cmd_parms *cmd, void *dc,
                                      const char *arg)
{
    return check_file(cmd, arg, &cmd_conf(cmd)->tls_ca_file);
}

static const char *mx_set_tls_verify(cmd_parms *cmd, void *dc, int flag)
{
    cmd_conf(cmd)->tls_verify = flag;
    return NULL;
}

static const char *mx_set_inbound(cmd_parms *cmd, void *dc, const char *arg)
{
    mx_srv_conf *c = cmd_conf(cmd);
    int i;

    /* cmd->info starts as NULL on every directive line: the first kind of a
     * line replaces what was set before, the others add to it */
    if (cmd->info != (void *)c)
        c->inbound = 0;
    cmd->info = c;
    if (!strcasecmp(arg, "none"))
        return NULL;
    for (i = 0; inbound_kinds[i].name; i++) {
        if (!strcasecmp(arg, inbound_kinds[i].name)) {
            c->inbound |= inbound_kinds[i].bit;
            return NULL;
        }
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

static const char *mx_set_dev_mode(cmd_parms *cmd, void *dc, int flag)
{
    cmd_conf(cmd)->dev_mode = flag;
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

static const char *mx_set_queue_limit(cmd_parms *cmd, void *dc,
                                      const char *arg)
{
    return int_in_range(cmd, arg, 1, 100000000,
                        "the most items the outbound queue may hold",
                        &cmd_conf(cmd)->queue_limit);
}

static const char *mx_set_inbound_threads(cmd_parms *cmd, void *dc,
                                          const char *arg)
{
    return int_in_range(cmd, arg, 1, 256,
                        "how many inbound requests may run at once",
                        &cmd_conf(cmd)->inbound_threads);
}

static const char *mx_set_inbound_queue_limit(cmd_parms *cmd, void *dc,
                                              const char *arg)
{
    return int_in_range(cmd, arg, 1, 100000000,
                        "the most inbound stanzas kept waiting",
                        &cmd_conf(cmd)->inbound_queue_limit);
}

/* XMPPInboundRetry tries [max-seconds] */
static const char *mx_set_inbound_retry(cmd_parms *cmd, void *dc,
                                        const char *tries, const char *secs)
{
    const char *err = int_in_range(cmd, tries, 1, 100, "how often a "
                                   "failing inbound request is tried in all",
                                   &cmd_conf(cmd)->inbound_tries);

    if (!err && secs)
        err = int_in_range(cmd, secs, 1, 86400, "the most seconds from an "
                           "inbound request's first try to its last",
                           &cmd_conf(cmd)->inbound_retry_secs);
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

const command_rec mx_cmds[] = {
    AP_INIT_FLAG(MX_CMD_ENGINE, mx_set_engine, NULL, RSRC_CONF,
                 "On: this server or virtual host is an XMPP app with its "
                 "own connection (default Off)"),
    AP_INIT_TAKE1(MX_CMD_JID, mx_set_jid, NULL, RSRC_CONF,
                  "the app's bare address, user@domain (client mode)"),
    AP_INIT_TAKE1(MX_CMD_RESOURCE, mx_set_resource, NULL, RSRC_CONF,
                  "resource of the client connection (default bot)"),
    AP_INIT_TAKE1(MX_CMD_PASSWORD_FILE, mx_set_password_file, NULL, RSRC_CONF,
                  "file holding the account's password, read at startup"),
    AP_INIT_TAKE1(MX_CMD_SERVER, mx_set_server, NULL, RSRC_CONF,
                  "host[:port] to connect to (default: SRV record of the "
                  "JID's domain; a component: its domain, port 5347)"),
    AP_INIT_TAKE1(MX_CMD_COMPONENT, mx_set_component, NULL, RSRC_CONF,
                  "component mode: the domain the app owns (XEP-0114)"),
    AP_INIT_TAKE1(MX_CMD_COMPONENT_SECRET, mx_set_component_secret, NULL,
                  RSRC_CONF, "component mode: file holding the shared "
                  "secret, read at startup"),
    AP_INIT_TAKE1(MX_CMD_TLS, mx_set_tls, NULL, RSRC_CONF,
                  "TLS policy: required (default), optional or off"),
    AP_INIT_TAKE1(MX_CMD_TLS_CA_FILE, mx_set_tls_ca_file, NULL, RSRC_CONF,
                  "PEM file of extra trust anchors (e.g. a private CA)"),
    AP_INIT_FLAG(MX_CMD_TLS_VERIFY, mx_set_tls_verify, NULL, RSRC_CONF,
                 "Off: accept any server certificate (default On)"),
    AP_INIT_ITERATE(MX_CMD_INBOUND, mx_set_inbound, NULL, RSRC_CONF,
                    "inbound kinds posted to the app: message error "
                    "subscribe presence (default message)"),
    AP_INIT_TAKE1(MX_CMD_INBOUND_PATH, mx_set_inbound_path, NULL, RSRC_CONF,
                  "URL prefix of inbound requests (default /_ah/xmpp/)"),
    AP_INIT_TAKE1(MX_CMD_SPOOL_DIR, mx_set_spool_dir, NULL, RSRC_CONF,
                  "directory of the durable outbound queue and the roster"),
    AP_INIT_FLAG(MX_CMD_DEV_MODE, mx_set_dev_mode, NULL, RSRC_CONF,
                 "On: log outbound stanzas instead of sending them"),
    AP_INIT_TAKE1(MX_CMD_QUEUE_LIMIT, mx_set_queue_limit, NULL, RSRC_CONF,
                  "most items the outbound queue may hold (default 100000)"),
    AP_INIT_TAKE1(MX_CMD_INBOUND_THREADS, mx_set_inbound_threads, NULL,
                  RSRC_CONF, "inbound requests run at once by the holding "
                  "child, per app (default 16)"),
    AP_INIT_TAKE1(MX_CMD_INBOUND_QUEUE_LIMIT, mx_set_inbound_queue_limit,
                  NULL, RSRC_CONF, "most inbound stanzas kept waiting for "
                  "their handler (default 100000)"),
    AP_INIT_TAKE12(MX_CMD_INBOUND_RETRY, mx_set_inbound_retry, NULL,
                   RSRC_CONF, "tries of a failing inbound request (5xx, "
                   "timeout) and the most seconds they take (default 5 60)"),
    AP_INIT_TAKE1(MX_CMD_STATE_STORE, mx_set_state_store, NULL, RSRC_CONF,
                  "where subscriptions and contacts' presence live: spool "
                  "(default, one host) or dbd (mod_dbd, shared by hosts)"),
    AP_INIT_TAKE1(MX_CMD_PRESENCE_CACHE, mx_set_presence_cache, NULL,
                  RSRC_CONF, "contacts' presence in a mod_socache provider "
                  "shared by the hosts, e.g. redis:127.0.0.1:6379 (with "
                  "XMPPStateStore dbd)"),
    { NULL }
};
