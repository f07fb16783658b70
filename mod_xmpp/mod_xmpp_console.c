/* SPDX-License-Identifier: Apache-2.0 */
/* mod_xmpp_console: an HTML page per app, as App Engine's development
 * console had: the connection's state, recent traffic, the roster and
 * the contacts' presence, and forms that simulate an inbound message,
 * presence or subscription (posted to the app's handlers as if they had
 * arrived; their answers are queued like real ones). Whoever may use it
 * is ordinary access control's business: it can make the app send. What
 * access control cannot see is a browser posting for another site's
 * page; POSTs need the token of one of our pages and are refused when
 * the browser says another site made them. */
#include <stdlib.h>
#include <string.h>

#include "apr_general.h"
#include "apr_lib.h"
#include "apr_sha1.h"
#include "apr_strings.h"
#include "apr_file_info.h"
#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "util_script.h"

#include "mod_xmpp_api.h"
#include "mod_xmpp_app.h"
#include "mod_xmpp_console.h"
#include "mod_xmpp_inbound.h"
#include "mx_queue.h"
#include "mx_send.h"

APLOG_USE_MODULE(xmpp);

#define MX_CONSOLE_MAX_FORM (256 * 1024)
#define MX_TOKEN_HOURS 12         /* how long a page's forms may be sent */

/* ---- form tokens ----
 * The forms carry "<time>-<HMAC-SHA1(key, console|jid|time)>". Another
 * site's page cannot read ours, so it cannot have one. The key is drawn
 * by the parent when it reads the configuration, before it forks: every
 * child of the generation has it (a page and its POST often reach
 * different children), it is never written anywhere, and a restart
 * draws a new one, ending the old pages' tokens. */
static unsigned char token_key[32];

static int console_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                               apr_pool_t *ptemp, server_rec *s)
{
    apr_status_t rv = apr_generate_random_bytes(token_key,
                                                sizeof(token_key));

    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, MX_LOG_TAG "0601: no "
                     "random bytes for the console's form tokens");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    return OK;
}

/* HMAC (RFC 2104) with SHA-1, the hash APR has; the key is shorter
 * than SHA-1's block, so it is used as is. */
static void hmac_sha1(const unsigned char *key, size_t klen, const char *msg,
                      unsigned char mac[APR_SHA1_DIGESTSIZE])
{
    unsigned char pad[64];
    apr_sha1_ctx_t c;
    size_t i;

    for (i = 0; i < sizeof(pad); i++)
        pad[i] = (unsigned char)((i < klen ? key[i] : 0) ^ 0x36);
    apr_sha1_init(&c);
    apr_sha1_update_binary(&c, pad, sizeof(pad));
    apr_sha1_update_binary(&c, (const unsigned char *)msg,
                           (unsigned int)strlen(msg));
    apr_sha1_final(mac, &c);
    for (i = 0; i < sizeof(pad); i++)
        pad[i] ^= 0x36 ^ 0x5c;
    apr_sha1_init(&c);
    apr_sha1_update_binary(&c, pad, sizeof(pad));
    apr_sha1_update_binary(&c, mac, APR_SHA1_DIGESTSIZE);
    apr_sha1_final(mac, &c);
}

/* The token of app's forms made at sec (Unix time) */
static const char *token_at(request_rec *r, const mx_app *app,
                            apr_int64_t sec)
{
    unsigned char mac[APR_SHA1_DIGESTSIZE];
    char hex[2 * APR_SHA1_DIGESTSIZE + 1];

    hmac_sha1(token_key, sizeof(token_key),
              apr_psprintf(r->pool, "console|%s|%" APR_INT64_T_FMT,
                           app->jid, sec), mac);
    ap_bin2hex(mac, sizeof(mac), hex);
    return apr_psprintf(r->pool, "%" APR_INT64_T_FMT "-%s", sec, hex);
}

/* Equal strings, in a time that does not tell how much of them is */
static int same_secret(const char *a, const char *b)
{
    size_t n = strlen(a), i;
    unsigned char diff = 0;

    if (n != strlen(b))
        return 0;
    for (i = 0; i < n; i++)
        diff |= (unsigned char)(a[i] ^ b[i]);
    return diff == 0;
}

/* NULL if tok is a token of app's page made in the last hours, else
 * what is wrong with it (for the log: it names no secret) */
static const char *token_problem(request_rec *r, const mx_app *app,
                                 const char *tok)
{
    apr_int64_t now = apr_time_sec(apr_time_now()), sec;
    char *end;

    if (!tok || !*tok)
        return "no token";
    sec = apr_strtoi64(tok, &end, 10);
    if (end == tok || *end != '-' || sec <= 0
        || !same_secret(tok, token_at(r, app, sec)))
        return "a wrong token";
    if (sec > now + 60 || now - sec > MX_TOKEN_HOURS * 3600)
        return "an expired token";
    return NULL;
}

static const char *esc(request_rec *r, const char *s)
{
    return ap_escape_html(r->pool, s ? s : "");
}

static void row(request_rec *r, const char *k, const char *v)
{
    ap_rprintf(r, "<tr><th>%s</th><td>%s</td></tr>\n", k, esc(r, v));
}

static void show_state(request_rec *r, const mx_app *app, const mx_shared *sh)
{
    char since[APR_RFC822_DATE_LEN] = "-";

    if (sh->connected_since)
        apr_rfc822_date(since, sh->connected_since);
    ap_rputs("<h2>Connection</h2>\n<table>\n", r);
    row(r, "State", mx_state_name(sh->state));
    row(r, "Mode", app->component ? "component (XEP-0114): every address "
                                    "of the domain is the app's" : "client");
    row(r, app->component ? "Domain" : "JID", app->component ? app->jid
                                                             : app->full_jid);
    row(r, "Server", sh->server);
    row(r, "Connected since", since);
    row(r, "Reconnects", apr_psprintf(r->pool, "%" APR_UINT64_T_FMT,
                                      sh->reconnects));
    row(r, "Queued / sent / received / failed",
        apr_psprintf(r->pool, "%" APR_UINT64_T_FMT " / %" APR_UINT64_T_FMT
                     " / %" APR_UINT64_T_FMT " / %" APR_UINT64_T_FMT,
                     sh->queued, sh->sent, sh->received, sh->failed));
    /* the backlog kept on disk for the handlers (the inbound journal) */
    row(r, "Inbound waiting / running / retried / failed",
        apr_psprintf(r->pool, "%" APR_UINT64_T_FMT " / %" APR_UINT64_T_FMT
                     " / %" APR_UINT64_T_FMT " / %" APR_UINT64_T_FMT,
                     sh->in_waiting, sh->in_running, sh->in_retried,
                     sh->in_failed));
    row(r, "Last error", sh->last_error);
    ap_rputs("</table>\n", r);
}

static void show_traffic(request_rec *r, const mx_shared *sh)
{
    apr_uint32_t n = sh->traffic_next, i;
    char when[APR_CTIME_LEN];

    ap_rputs("<h2>Recent traffic</h2>\n<table>\n<tr><th>Time</th><th></th>"
             "<th>Kind</th><th>With</th><th>Text</th></tr>\n", r);
    for (i = 0; i < n && i < MX_TRAFFIC_N; i++) {
        const mx_traffic *t = &sh->traffic[(n - 1 - i) % MX_TRAFFIC_N];

        apr_ctime(when, t->when);
        ap_rprintf(r, "<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td>"
                   "<td>%s</td></tr>\n", esc(r, when),
                   t->dir == '<' ? "in" : "out", esc(r, t->kind),
                   esc(r, t->peer), esc(r, t->text));
    }
    if (n == 0)
        ap_rputs("<tr><td colspan=\"5\">nothing yet</td></tr>\n", r);
    ap_rputs("</table>\n", r);
}

/* A component's rosters, one per address (mx_addr_roster.h): "address:
 * contact state" lines. (Its contacts' presence is kept per address, and
 * not listed here.) */
static void show_component_rosters(request_rec *r, const mx_app *app)
{
    const char *base = apr_pstrcat(r->pool, app->dir, "/addresses", NULL);
    char *roster;
    size_t len;
    apr_dir_t *dir;
    apr_finfo_t fi;

    if (apr_dir_open(&dir, base, r->pool) != APR_SUCCESS)
        return;
    while (apr_dir_read(&fi, APR_FINFO_NAME | APR_FINFO_TYPE, dir)
           == APR_SUCCESS) {
        if (fi.filetype != APR_DIR || fi.name[0] == '.'
            || mx_queue_read_file(apr_pstrcat(r->pool, base, "/", fi.name,
                                              NULL), "roster", &roster,
                                  &len) != 0)
            continue;
        ap_rprintf(r, "%s:\n%s", esc(r, fi.name), esc(r, roster));
        free(roster);
    }
    apr_dir_close(dir);
}

static void show_contacts(request_rec *r, const mx_app *app)
{
    char *roster = NULL, show[32];
    size_t len;
    apr_dir_t *dir;
    apr_finfo_t fi;
    int available;

    ap_rputs("<h2>Subscribers</h2>\n<pre>", r);
    if (app->component)
        show_component_rosters(r, app);
    else if (mx_queue_read_file(app->dir, "roster", &roster, &len) == 0) {
        ap_rputs(esc(r, roster), r);
        free(roster);
    }
    ap_rputs("</pre>\n<h2>Presence</h2>\n<table>\n", r);
    if (apr_dir_open(&dir, apr_pstrcat(r->pool, app->dir, "/presence", NULL),
                     r->pool) == APR_SUCCESS) {
        while (apr_dir_read(&fi, APR_FINFO_NAME | APR_FINFO_TYPE, dir)
               == APR_SUCCESS) {
            if (fi.filetype != APR_REG || fi.name[0] == '.'
                || mx_presence_load(app->dir, fi.name, &available, show,
                                    sizeof(show), NULL) != 0)
                continue;
            row(r, esc(r, fi.name), available
                ? apr_pstrcat(r->pool, "available ", show, NULL)
                : "unavailable");
        }
        apr_dir_close(dir);
    }
    ap_rputs("</table>\n", r);
}

static void show_forms(request_rec *r, const mx_app *app)
{
    const char *uri = esc(r, r->uri);
    /* a component owns every address of its domain: say which one */
    const char *to = !app->component ? "" : apr_psprintf(r->pool,
        "To <input name=\"to\" value=\"%s\"> ", esc(r, app->jid));
    const char *tok = apr_psprintf(r->pool, "<input type=\"hidden\" "
                                   "name=\"token\" value=\"%s\">",
                                   token_at(r, app,
                                            apr_time_sec(apr_time_now())));

    ap_rprintf(r, "<h2>Simulate</h2>\n"
        "<form method=\"post\" action=\"%s\"><fieldset><legend>Chat message"
        "</legend>%s<input type=\"hidden\" name=\"kind\" value=\"message\">"
        "From <input name=\"from\" value=\"someone@example.org/console\"> "
        "%sBody <input name=\"body\" size=\"40\"> "
        "<button>Send to %s</button></fieldset></form>\n"
        "<form method=\"post\" action=\"%s\"><fieldset><legend>Presence"
        "</legend>%s<input type=\"hidden\" name=\"kind\" value=\"presence\">"
        "From <input name=\"from\" value=\"someone@example.org/console\"> "
        "%s<select name=\"type\"><option>available</option><option>"
        "unavailable</option><option>probe</option></select> "
        "Show <select name=\"show\"><option></option><option>chat</option>"
        "<option>away</option><option>dnd</option><option>xa</option>"
        "</select> Status <input name=\"status\"> <button>Send</button>"
        "</fieldset></form>\n"
        "<form method=\"post\" action=\"%s\"><fieldset><legend>Subscription"
        "</legend>%s<input type=\"hidden\" name=\"kind\" value=\"presence\">"
        "From <input name=\"from\" value=\"someone@example.org\"> "
        "%s<select name=\"type\"><option>subscribe</option><option>subscribed"
        "</option><option>unsubscribe</option><option>unsubscribed</option>"
        "</select> <button>Send</button></fieldset></form>\n",
        uri, tok, to, esc(r, app->jid), uri, tok, to, uri, tok, to);
}

/* The stanza a form describes, or NULL with *why set */
static char *form_stanza(request_rec *r, const mx_app *app, apr_table_t *f,
                         const char **why)
{
    const char *kind = apr_table_get(f, "kind");
    const char *from = apr_table_get(f, "from");
    const char *type = apr_table_get(f, "type");
    const char *show = apr_table_get(f, "show");
    const char *to = app->component ? apr_table_get(f, "to") : NULL;
    char id[MX_ID_SIZE], *st = NULL, *out;

    mx_new_id(id, sizeof(id));
    if (!from || mx_check_to(from) != MX_OK)
        *why = "From is not a valid JID";
    else if (to && *to && mx_check_from(to, app->jid, NULL) != MX_OK)
        *why = "To is not an address of the component's domain";
    else if (kind && !strcmp(kind, "message"))
        st = mx_message_stanza(from, to && *to ? to : app->full_jid, "chat",
                               apr_table_get(f, "body"), 0, id);
    else if (kind && !strcmp(kind, "presence"))
        /* "available" has no type attribute; the others are sent as is */
        st = mx_presence_stanza(from, to && *to ? to : app->jid,
                                type && strcmp(type, "available") ? type
                                                                  : NULL,
                                show && *show ? show : NULL,
                                apr_table_get(f, "status"), id);
    else
        *why = "unknown kind";
    if (!st)
        return NULL;
    out = apr_pstrdup(r->pool, st);
    free(st);
    return out;
}

static void add_field(void *baton, const char *name, const char *value)
{
    apr_table_set(baton, name, value);
}

static void simulate(request_rec *r, mx_app *app, apr_table_t *f)
{
    const char *why = NULL;
    mx_sim_result res;
    char *stanza = form_stanza(r, app, f, &why);

    if (stanza && !why)
        why = mx_inbound_simulate(r, app, stanza, &res);
    ap_rputs("<h2>Result</h2>\n", r);
    if (why || !stanza) {
        ap_rprintf(r, "<p class=\"error\">Not posted: %s</p>\n",
                   esc(r, why ? why : "invalid form"));
        return;
    }
    ap_rputs("<table>\n", r);
    row(r, "Stanza", stanza);
    row(r, "Posted to", res.path);
    row(r, "Status", apr_itoa(r->pool, res.status));
    row(r, "Content-Type", res.content_type);
    row(r, "Answer", res.body);
    ap_rputs("</table>\n", r);
}

static void page_head(request_rec *r, const mx_app *app)
{
    ap_set_content_type(r, "text/html; charset=UTF-8");
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    /* no other site may frame the page (and have its buttons clicked
     * unseen); the page itself runs no script, so none may run */
    apr_table_setn(r->headers_out, "X-Frame-Options", "DENY");
    apr_table_setn(r->headers_out, "Content-Security-Policy",
                   "default-src 'none'; style-src 'unsafe-inline'; "
                   "form-action 'self'; base-uri 'none'; "
                   "frame-ancestors 'none'");
    ap_rprintf(r, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
               "<title>mod_xmpp console: %s</title><style>body{font-family:"
               "sans-serif;margin:2em}table{border-collapse:collapse}th,td{"
               "border:1px solid #ccc;padding:2px 6px;text-align:left}"
               ".error{color:#a00}</style></head><body>\n"
               "<h1>mod_xmpp console: %s</h1>\n", esc(r, app->jid),
               esc(r, app->jid));
}

/* A 403 page saying why, with the way back; nothing else of the app */
static int refuse(request_rec *r, const mx_app *app, const char *msg)
{
    r->status = HTTP_FORBIDDEN;
    page_head(r, app);
    ap_rprintf(r, "<p class=\"error\">Refused: %s</p>\n<p><a href=\"%s\">"
               "Back to the console</a></p>\n</body></html>\n", msg,
               esc(r, r->uri));
    return OK;
}

/* A POST is simulated only when a page of ours sent it: not another
 * site's (whatever it sends, it cannot have a token), with a token. */
static int post_refused(request_rec *r, const mx_app *app, apr_table_t *f)
{
    const char *why = mx_cross_site(r);

    if (why) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, MX_LOG_TAG "0602: "
                      "xmpp-console: refused a POST to %s made by another "
                      "site's page (%s)", r->uri, why);
        return refuse(r, app, apr_pstrcat(r->pool, "this form was sent by "
                                          "another site's page (",
                                          esc(r, why), ").", NULL));
    }
    if (mx_read_form(r, MX_CONSOLE_MAX_FORM, add_field, f) != OK)
        why = "a form that could not be read";
    else
        why = token_problem(r, app, apr_table_get(f, "token"));
    if (why) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, MX_LOG_TAG "0603: "
                      "xmpp-console: refused a POST to %s with %s", r->uri,
                      why);
        return refuse(r, app, apr_psprintf(r->pool, "the form came with %s. "
                      "A page's forms work for %d hours, and not after httpd "
                      "restarts: reload the console and send again.", why,
                      MX_TOKEN_HOURS));
    }
    return DECLINED;
}

static int console_handler(request_rec *r)
{
    apr_table_t *f;
    mx_app *app;
    mx_shared snap;
    int rc;

    if (strcmp(r->handler, "xmpp-console"))
        return DECLINED;
    r->allowed = (AP_METHOD_BIT << M_GET) | (AP_METHOD_BIT << M_POST);
    if (r->method_number != M_GET && r->method_number != M_POST)
        return HTTP_METHOD_NOT_ALLOWED;
    if (!(app = mx_app_for_request(r)))
        return HTTP_NOT_FOUND;
    f = apr_table_make(r->pool, 8);
    if (r->method_number == M_POST
        && (rc = post_refused(r, app, f)) != DECLINED)
        return rc;
    page_head(r, app);
    if (r->method_number == M_POST)
        simulate(r, app, f);
    mx_shared_read(app->shared, &snap);
    mx_shared_check_holder(&snap);
    show_state(r, app, &snap);
    show_forms(r, app);
    show_traffic(r, &snap);
    show_contacts(r, app);
    ap_rputs("</body></html>\n", r);
    return OK;
}

void mx_console_register_hooks(apr_pool_t *p)
{
    ap_hook_post_config(console_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(console_handler, NULL, NULL, APR_HOOK_MIDDLE);
}
