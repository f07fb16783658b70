/* SPDX-License-Identifier: Apache-2.0 */
/* mod_xmpp_api: the ways into the send operations from inside httpd:
 * the optional functions of mod_xmpp.h, the "xmpp-api" HTTP handler, and
 * the environment CGI scripts get so that xmpp-send needs no options.
 * All of them go through mx_ops, as xmpp-send does. */
#include <string.h>

#include <jansson.h>

#include "apr_lib.h"
#include "apr_network_io.h"
#include "apr_strings.h"
#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "util_script.h"

#include "mod_xmpp.h"
#include "mod_xmpp_api.h"
#include "mod_xmpp_app.h"
#include "mod_xmpp_inject.h"
#include "mod_xmpp_store.h"
#include "mx_ops.h"
#include "mx_send.h"

APLOG_USE_MODULE(xmpp);

/* The public statuses (mod_xmpp.h) are the core's (mx_ops.h), so one
 * passes through as it is */
_Static_assert(MOD_XMPP_NO_ERROR == (int)MX_NO_ERROR
               && MOD_XMPP_INVALID_JID == (int)MX_INVALID_JID
               && MOD_XMPP_OTHER_ERROR == (int)MX_OTHER_ERROR,
               "mod_xmpp.h's MOD_XMPP_* statuses differ from mx_status");

#define MX_API_MAX_BODY (1024 * 1024) /* form bodies; 100 KB messages fit */
#define MX_API_MAX_JIDS 1000

static void sender_of(const mx_app *app, mx_sender *snd)
{
    snd->queue_dir = app->dir;
    snd->app_jid = app->jid;
    snd->app_resource = mx_conf_resource(app->conf);
    snd->sync = 1;
    snd->presence = NULL;
    snd->presence_ud = NULL;
}

/* get_presence from the store several hosts share (XMPPStateStore dbd):
 * r when there is a request (its connection), else p and the server */
typedef struct {
    mx_app *app;
    request_rec *r;
    apr_pool_t *p;
} store_ctx;

static int store_presence(void *ud, const char *from_jid, const char *jid,
                          int *available, char *show, size_t showsize)
{
    store_ctx *sc = ud;

    return mx_store_presence_get(sc->app, sc->r, sc->p, from_jid, jid,
                                 available, show, showsize);
}

static void presence_of(mx_sender *snd, store_ctx *sc, mx_app *app,
                        request_rec *r, apr_pool_t *p)
{
    if (!mx_store_shared(app))
        return;
    sc->app = app;
    sc->r = r;
    sc->p = r ? r->pool : p;
    snd->presence = store_presence;
    snd->presence_ud = sc;
}

/* What an operation for an app works with (an optional function's or
 * the handler's) */
typedef struct {
    mx_app *app;
    mx_sender snd;
    mx_result res;
    mx_status st;        /* a single recipient's status */
} opt_call;

/* c for app (NULL: c->app NULL, nothing else set) */
static void call_of(mx_app *app, opt_call *c)
{
    c->app = app;
    c->st = MX_OTHER_ERROR;
    if (app)
        sender_of(app, &c->snd);
}

static const char *error_text(apr_pool_t *p, const mx_result *res)
{
    return apr_pstrcat(p, mx_err_name(res->err), ": ", res->why, NULL);
}

static void log_refused(const mx_app *app, const mx_status *st, size_t n,
                        const mx_result *res)
{
    size_t i;

    /* a queue that cannot take the item is the administrator's business */
    for (i = 0; i < n; i++)
        if (st[i] == MX_OTHER_ERROR) {
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, app->s, MX_LOG_TAG
                         "0407: %s: a send was refused with OTHER_ERROR: %s",
                         app->jid, res->why);
            return;
        }
}

/* ---- optional functions ---- */


/* How every optional function starts: *error cleared, the app of s and
 * its sender in c. 0 when s is not an app. */
static int opt_begin(server_rec *s, opt_call *c, const char **error)
{
    *error = NULL;
    call_of(mx_app_of(s), c);
    return c->app != NULL;
}

/* 1 with the refusal (App Engine's error name and reason) in *error when
 * the operation refused the request, else 0 */
static int opt_refused(apr_pool_t *p, const mx_result *res,
                       const char **error)
{
    if (res->err == MX_OK)
        return 0;
    *error = error_text(p, res);
    return 1;
}

/* What every send function answers: a refusal, else the statuses
 * (OTHER_ERRORs logged). */
static apr_status_t opt_result(apr_pool_t *p, const mx_app *app,
                               const mx_result *res, const mx_status *st,
                               int n, int *statuses, const char **error)
{
    int i;

    if (opt_refused(p, res, error))
        return APR_EINVAL;
    log_refused(app, st, (size_t)n, res);
    for (i = 0; i < n; i++)
        statuses[i] = st[i]; /* the same values: see above */
    return APR_SUCCESS;
}

static apr_status_t mod_xmpp_send_message(server_rec *s, apr_pool_t *p,
                                          const char *const *jids, int njids,
                                          const char *body,
                                          const char *from_jid,
                                          const char *type, int raw_xml,
                                          int *statuses, const char **error)
{
    opt_call c;
    mx_status *st;

    if (!opt_begin(s, &c, error))
        return APR_ENOENT;
    if (njids < 1) {
        *error = "InvalidJidError: no recipient";
        return APR_EINVAL;
    }
    st = apr_pcalloc(p, sizeof(*st) * njids);
    mx_op_send_message(&c.snd, jids, (size_t)njids, body, from_jid, type,
                       raw_xml, st, &c.res);
    return opt_result(p, c.app, &c.res, st, njids, statuses, error);
}

/* One recipient: an invitation (only jid and from_jid count) or a
 * presence */
typedef struct {
    int invite;
    const char *jid, *from_jid, *status_text, *type, *show;
} one_send;

static void send_one(opt_call *c, const one_send *o)
{
    if (o->invite)
        mx_op_send_invite(&c->snd, o->jid, o->from_jid, &c->st, &c->res);
    else
        mx_op_send_presence(&c->snd, o->jid, o->status_text, o->from_jid,
                            o->type, o->show, &c->st, &c->res);
}

static apr_status_t opt_send_one(server_rec *s, apr_pool_t *p,
                                 const one_send *o, int *status,
                                 const char **error)
{
    opt_call c;

    if (!opt_begin(s, &c, error))
        return APR_ENOENT;
    send_one(&c, o);
    return opt_result(p, c.app, &c.res, &c.st, 1, status, error);
}

static apr_status_t mod_xmpp_send_invite(server_rec *s, apr_pool_t *p,
                                         const char *jid, const char *from_jid,
                                         int *status, const char **error)
{
    one_send o = { 1, jid, from_jid, NULL, NULL, NULL };

    return opt_send_one(s, p, &o, status, error);
}

static apr_status_t mod_xmpp_send_presence(server_rec *s, apr_pool_t *p,
                                           const char *jid,
                                           const char *status_text,
                                           const char *from_jid,
                                           const char *type,
                                           const char *show, int *status,
                                           const char **error)
{
    one_send o = { 0, jid, from_jid, status_text, type, show };

    return opt_send_one(s, p, &o, status, error);
}

static apr_status_t mod_xmpp_get_presence(server_rec *s, apr_pool_t *p,
                                          const char *jid,
                                          const char *from_jid,
                                          int *available, const char **show,
                                          const char **error)
{
    opt_call c;
    char buf[16];
    store_ctx sc;

    if (!opt_begin(s, &c, error))
        return APR_ENOENT;
    presence_of(&c.snd, &sc, c.app, NULL, p);
    mx_op_get_presence(&c.snd, jid, from_jid, available, buf, sizeof(buf),
                       &c.res);
    if (opt_refused(p, &c.res, error))
        return APR_EINVAL;
    *show = apr_pstrdup(p, buf);
    return APR_SUCCESS;
}

/* Several contacts at once; an invalid JID gets valid[i] = 0. */
static apr_status_t mod_xmpp_get_presences(server_rec *s, apr_pool_t *p,
                                           int n, const char *const *jids,
                                           const char *from_jid,
                                           int *available,
                                           const char **show, int *valid,
                                           const char **error)
{
    opt_call c;
    char buf[16];
    int i;
    store_ctx sc;

    if (!opt_begin(s, &c, error))
        return APR_ENOENT;
    presence_of(&c.snd, &sc, c.app, NULL, p);
    if (mx_check_from(from_jid, c.snd.app_jid, c.snd.app_resource)
        != MX_OK) {
        *error = apr_psprintf(p, "InvalidJidError: '%s' is not one of the "
                              "app's own addresses", from_jid);
        return APR_EINVAL;
    }
    for (i = 0; i < n; i++) {
        mx_op_get_presence(&c.snd, jids[i], from_jid, &available[i], buf,
                           sizeof(buf), &c.res);
        valid[i] = c.res.err == MX_OK;
        if (c.res.err != MX_ERR_INVALID_JID
            && opt_refused(p, &c.res, error))
            return APR_EINVAL;
        show[i] = apr_pstrdup(p, buf);
    }
    return APR_SUCCESS;
}

/* ---- requests from other sites' pages ---- */

/* Whether "host[:port]" a and b name the same place; a missing port is
 * dflt (what browsers leave out of both Origin and Host). */
static int same_host_port(apr_pool_t *p, const char *a, const char *b,
                          apr_port_t dflt)
{
    char *ha, *hb, *scope;
    apr_port_t pa, pb;

    if (apr_parse_addr_port(&ha, &scope, &pa, a, p) != APR_SUCCESS || !ha
        || scope
        || apr_parse_addr_port(&hb, &scope, &pb, b, p) != APR_SUCCESS
        || !hb)
        return 0;
    return !strcasecmp(ha, hb) && (pa ? pa : dflt) == (pb ? pb : dflt);
}

/* Whether Origin (scheme://host[:port], nothing else) is r's own. */
static int own_origin(request_rec *r, const char *origin)
{
    const char *scheme = ap_http_scheme(r);
    const char *host = apr_table_get(r->headers_in, "Host");
    size_t n = strlen(scheme);

    if (!host)
        host = r->hostname;
    return host && !strncasecmp(origin, scheme, n)
           && !strncmp(origin + n, "://", 3) && !strchr(origin + n + 3, '/')
           && same_host_port(r->pool, origin + n + 3, host,
                             strcasecmp(scheme, "https") ? 80 : 443);
}

const char *mx_cross_site(request_rec *r)
{
    const char *site = apr_table_get(r->headers_in, "Sec-Fetch-Site");
    const char *origin = apr_table_get(r->headers_in, "Origin");
    const char *host = apr_table_get(r->headers_in, "Host");

    /* the browser's own verdict, where it gives one: it also holds behind
     * a proxy that rewrites Host. same-site is refused too: a sibling
     * subdomain may be someone else's. none: typed in, a bookmark. */
    if (site)
        return strcasecmp(site, "same-origin") && strcasecmp(site, "none")
               ? apr_psprintf(r->pool, "Sec-Fetch-Site: %.40s", site) : NULL;
    /* no Origin: no browser (curl, a script, a server), or one that
     * predates both headers */
    if (!origin || own_origin(r, origin))
        return NULL;
    return apr_psprintf(r->pool, "Origin %.100s is not %s://%.100s", origin,
                        ap_http_scheme(r), host ? host : r->hostname);
}

/* ---- the xmpp-api handler ---- */

typedef struct {
    apr_array_header_t *jids;   /* const char *, in order */
    apr_table_t *args;          /* the other parameters, last one wins */
    const char *op;             /* send_message, ... */
} api_params;

static void add_param(api_params *ap, const char *name, const char *value)
{
    if (!strcmp(name, "jid") || !strcmp(name, "jids"))
        APR_ARRAY_PUSH(ap->jids, const char *) = value;
    else
        apr_table_set(ap->args, name, value);
}

/* Query string parameters (GET), decoded like a form. */
static void parse_query(request_rec *r, api_params *ap)
{
    char *args = apr_pstrdup(r->pool, r->args ? r->args : ""), *pair, *last;

    for (pair = apr_strtok(args, "&", &last); pair;
         pair = apr_strtok(NULL, "&", &last)) {
        char *eq = strchr(pair, '=');
        char *val = eq ? eq + 1 : "";

        if (eq)
            *eq = '\0';
        if (ap_unescape_urlencoded(pair) == OK
            && ap_unescape_urlencoded(val) == OK)
            add_param(ap, pair, val);
    }
}

int mx_read_form(request_rec *r, apr_size_t max,
                 void (*add)(void *baton, const char *name,
                             const char *value),
                 void *baton)
{
    apr_array_header_t *pairs = NULL;
    int i, rc;

    rc = ap_parse_form_data(r, NULL, &pairs, -1, max);
    if (rc != OK)
        return rc;
    for (i = 0; pairs && i < pairs->nelts; i++) {
        ap_form_pair_t *pair = &APR_ARRAY_IDX(pairs, i, ap_form_pair_t);
        apr_off_t len;
        apr_size_t size;
        char *buf;

        apr_brigade_length(pair->value, 1, &len);
        size = (apr_size_t)len;
        buf = apr_palloc(r->pool, size + 1);
        apr_brigade_flatten(pair->value, buf, &size);
        buf[size] = '\0';
        add(baton, pair->name, buf);
    }
    return OK;
}

static void add_body_param(void *baton, const char *name, const char *value)
{
    api_params *ap = baton;

    add_param(ap, name, value);
}

static int send_json(request_rec *r, int status, json_t *j)
{
    char *text = json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII);

    json_decref(j);
    if (!text)
        return HTTP_INTERNAL_SERVER_ERROR;
    r->status = status;
    ap_set_content_type(r, "application/json");
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    ap_rputs(text, r);
    ap_rputc('\n', r);
    free(text);
    return OK;
}

static int send_error(request_rec *r, int status, const char *name,
                      const char *why)
{
    return send_json(r, status, json_pack("{s:s, s:s}", "error", name,
                                          "message", why));
}

static int send_statuses(request_rec *r, const char *const *jids,
                         const mx_status *st, size_t n)
{
    json_t *js = json_array(), *ss = json_array();
    size_t i;

    for (i = 0; i < n; i++) {
        json_array_append_new(js, json_string(jids[i]));
        json_array_append_new(ss, json_string(mx_status_name(st[i])));
    }
    return send_json(r, HTTP_OK, json_pack("{s:o, s:o}", "jids", js,
                                           "statuses", ss));
}

static int api_result(request_rec *r, const opt_call *c,
                      const char *const *jids, const mx_status *st, size_t n)
{
    if (c->res.err != MX_OK)
        return send_error(r, HTTP_BAD_REQUEST, mx_err_name(c->res.err),
                          c->res.why);
    log_refused(c->app, st, n, &c->res);
    return send_statuses(r, jids, st, n);
}

static int api_send_message(request_rec *r, opt_call *c, api_params *ap)
{
    mx_status *st;
    const char *raw = apr_table_get(ap->args, "raw_xml");
    size_t n = (size_t)ap->jids->nelts;

    if (n == 0)
        return send_error(r, HTTP_BAD_REQUEST, "InvalidJidError",
                          "no recipient: give one or more jid parameters");
    if (n > MX_API_MAX_JIDS)
        return send_error(r, HTTP_BAD_REQUEST, "InvalidJidError",
                          "too many recipients in one call (at most 1000)");
    st = apr_pcalloc(r->pool, sizeof(*st) * n);
    mx_op_send_message(&c->snd, (const char *const *)ap->jids->elts, n,
                       apr_table_get(ap->args, "body"),
                       apr_table_get(ap->args, "from_jid"),
                       apr_table_get(ap->args, "message_type"),
                       raw && (!strcasecmp(raw, "true") || !strcmp(raw, "1")
                               || !strcasecmp(raw, "on")),
                       st, &c->res);
    return api_result(r, c, (const char *const *)ap->jids->elts, st, n);
}

static const char *single_jid(api_params *ap)
{
    return ap->jids->nelts == 1 ? APR_ARRAY_IDX(ap->jids, 0, const char *)
                                : NULL;
}

/* send_invite and send_presence (exactly one jid: see api_ops) */
static int api_send_one(request_rec *r, opt_call *c, api_params *ap)
{
    one_send o = { !strcmp(ap->op, "send_invite"), single_jid(ap),
                   apr_table_get(ap->args, "from_jid"),
                   apr_table_get(ap->args, "status"),
                   apr_table_get(ap->args, "presence_type"),
                   apr_table_get(ap->args, "presence_show") };

    send_one(c, &o);
    return api_result(r, c, &o.jid, &c->st, 1);
}

/* Several jids (App Engine's get_presence with a list): an answer each,
 * in order, {"jid", "valid", "available", "show"}; an invalid JID is
 * valid false rather than the 400 it is alone.  A from_jid that is not
 * the app's is still a 400: it concerns every JID. */
static int api_get_presences(request_rec *r, opt_call *c, api_params *ap)
{
    json_t *js = json_array(), *ps = json_array();
    mx_result *res = &c->res;
    int i, available;
    char show[16];
    const char *from = apr_table_get(ap->args, "from_jid");
    store_ctx sc;

    presence_of(&c->snd, &sc, c->app, r, NULL);
    for (i = 0; i < ap->jids->nelts; i++) {
        const char *jid = APR_ARRAY_IDX(ap->jids, i, const char *);

        mx_op_get_presence(&c->snd, jid, from, &available, show,
                           sizeof(show), res);
        if (res->err != MX_OK && (res->err != MX_ERR_INVALID_JID
                                  || mx_check_from(from, c->snd.app_jid,
                                                   c->snd.app_resource)
                                     != MX_OK)) {
            json_decref(js);
            json_decref(ps);
            return send_error(r, HTTP_BAD_REQUEST, mx_err_name(res->err),
                              res->why);
        }
        json_array_append_new(js, json_string(jid));
        json_array_append_new(ps, json_pack("{s:s, s:b, s:b, s:s}", "jid",
                                            jid, "valid", res->err == MX_OK,
                                            "available", available,
                                            "show", show));
    }
    return send_json(r, HTTP_OK, json_pack("{s:o, s:o}", "jids", js,
                                           "presences", ps));
}

static int api_get_presence(request_rec *r, opt_call *c, api_params *ap)
{
    store_ctx sc;
    int available = 0;
    char show[16];
    const char *jid = single_jid(ap);

    if (ap->jids->nelts > 1)
        return api_get_presences(r, c, ap);
    if (!jid)
        return send_error(r, HTTP_BAD_REQUEST, "InvalidJidError",
                          "give at least one jid parameter");
    presence_of(&c->snd, &sc, c->app, r, NULL);
    mx_op_get_presence(&c->snd, jid, apr_table_get(ap->args, "from_jid"),
                       &available, show, sizeof(show), &c->res);
    if (c->res.err != MX_OK)
        return send_error(r, HTTP_BAD_REQUEST, mx_err_name(c->res.err),
                          c->res.why);
    return send_json(r, HTTP_OK, json_pack("{s:s, s:b, s:s}", "jid", jid,
                                           "available", available,
                                           "show", show));
}

static const struct {
    const char *name;
    int post_only;
    const char *one_jid;   /* the refusal unless exactly one jid, or NULL */
    int (*fn)(request_rec *r, opt_call *c, api_params *ap);
} api_ops[] = {
    { "send_message", 1, NULL, api_send_message },
    { "send_invite", 1, "give exactly one jid parameter", api_send_one },
    { "send_presence", 1, "give exactly one jid parameter (or subscribers)",
      api_send_one },
    { "get_presence", 0, NULL, api_get_presence },
    { NULL, 0, NULL, NULL }
};

/* Parameters come from the query string and a urlencoded body only.
 * A body of another type used to be ignored silently, so a text/plain
 * form from any page could send with its parameters in the query. */
static int readable_body(request_rec *r)
{
    const char *ct = apr_table_get(r->headers_in, "Content-Type");
    const char *form = "application/x-www-form-urlencoded";
    size_t n = strlen(form);

    if (!ap_request_has_body(r))
        return 1;
    return ct && !strncasecmp(ct, form, n)
           && (ct[n] == '\0' || ct[n] == ';' || apr_isspace(ct[n]));
}

/* DECLINED, or the refusal (sent) of a request whose parameters are
 * not to be read at all */
static int api_refused(request_rec *r)
{
    const char *why = mx_cross_site(r);

    if (why) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, MX_LOG_TAG "0405: "
                      "xmpp-api: refused %s %s: a request made by another "
                      "site's page (%s)", r->method, r->uri, why);
        return send_error(r, HTTP_FORBIDDEN, "CrossSiteRequest",
                          apr_pstrcat(r->pool, "refused: a request made by "
                                      "another site's page (", why, ")",
                                      NULL));
    }
    if (r->method_number == M_POST && !readable_body(r)) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, MX_LOG_TAG "0406: "
                      "xmpp-api: refused %s %s: a body of type %.100s",
                      r->method, r->uri,
                      apr_table_get(r->headers_in, "Content-Type")
                      ? apr_table_get(r->headers_in, "Content-Type")
                      : "(none)");
        return send_error(r, HTTP_UNSUPPORTED_MEDIA_TYPE,
                          "UnsupportedMediaType", "send the parameters as "
                          "application/x-www-form-urlencoded (or in the "
                          "query string, without a body)");
    }
    return DECLINED;
}

static int api_handler(request_rec *r)
{
    const char *op;
    api_params ap;
    opt_call c;
    mx_app *app;
    int i, rc;

    if (strcmp(r->handler, "xmpp-api"))
        return DECLINED;
    op = strrchr(r->uri, '/');
    op = op ? op + 1 : r->uri;
    for (i = 0; api_ops[i].name && strcmp(api_ops[i].name, op); i++)
        ;
    if (!api_ops[i].name)
        return send_error(r, HTTP_NOT_FOUND, "UnknownOperation",
                          "use send_message, send_invite, send_presence or "
                          "get_presence");
    r->allowed = (AP_METHOD_BIT << M_POST) | (api_ops[i].post_only ? 0
                  : (AP_METHOD_BIT << M_GET));
    if (r->method_number != M_POST
        && (api_ops[i].post_only || r->method_number != M_GET))
        return HTTP_METHOD_NOT_ALLOWED;
    if (!(app = mx_app_for_request(r)))
        return send_error(r, HTTP_NOT_FOUND, "NoAppError",
                          "this server has no XMPPEngine On");
    if ((rc = api_refused(r)) != DECLINED)
        return rc;
    ap.jids = apr_array_make(r->pool, 4, sizeof(const char *));
    ap.args = apr_table_make(r->pool, 8);
    ap.op = op;
    parse_query(r, &ap);
    if (r->method_number == M_POST
        && (rc = mx_read_form(r, MX_API_MAX_BODY, add_body_param, &ap)) != OK)
        return rc;
    if (api_ops[i].one_jid && ap.jids->nelts != 1)
        return send_error(r, HTTP_BAD_REQUEST, "InvalidJidError",
                          api_ops[i].one_jid);
    call_of(app, &c);
    return api_ops[i].fn(r, &c, &ap);
}

/* ---- the environment of CGI scripts ---- */

/* What xmpp-send needs, and nothing secret: the queue directory (writable
 * by User, as the script is), the app's address and resource. */
static int api_fixups(request_rec *r)
{
    mx_app *app = mx_app_for_request(r);

    if (!app)
        return DECLINED;
    mx_inject_set_env(r);
    apr_table_setn(r->subprocess_env, "XMPP_QUEUE", app->dir);
    apr_table_setn(r->subprocess_env, "XMPP_JID", app->jid);
    apr_table_setn(r->subprocess_env, "XMPP_RESOURCE",
                   mx_conf_resource(app->conf));
    return DECLINED;
}

void mx_api_register_hooks(apr_pool_t *p)
{
    APR_REGISTER_OPTIONAL_FN(mod_xmpp_send_message);
    APR_REGISTER_OPTIONAL_FN(mod_xmpp_send_invite);
    APR_REGISTER_OPTIONAL_FN(mod_xmpp_send_presence);
    APR_REGISTER_OPTIONAL_FN(mod_xmpp_get_presence);
    APR_REGISTER_OPTIONAL_FN(mod_xmpp_get_presences);
    ap_hook_handler(api_handler, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_fixups(api_fixups, NULL, NULL, APR_HOOK_MIDDLE);
}
