/* SPDX-License-Identifier: Apache-2.0 */
/* mod_xmpp_trace: see mod_xmpp_trace.h. */
#include <stdlib.h>
#include <string.h>

#include "apr_strings.h"
#include "httpd.h"
#include "http_log.h"

#include "mod_xmpp_trace.h"
#include "mx_trace.h"

APLOG_USE_MODULE(xmpp);

/* ---- the console's record ---- */

void mx_trace_sent(mx_app *app, const char *stanza, int subscribers)
{
    mx_trace_rec rec;

    mx_trace_fields(stanza, &rec);
    mx_traffic_add(app->shared, '>', rec.kind,
                   subscribers ? "(subscribers)" : rec.peer, rec.text);
}

/* ---- XMPPDevMode ---- */

static void dev_line(mx_app *app, const char *label, const char *value)
{
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, app->s, "    %s", label);
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, app->s, "       %s",
                 value ? value : "");
}

/* A text message's children are exactly <body> and the origin-id that
 * mx_message_stanza adds; anything else was given as raw XML. Returns
 * the raw children as text (malloc'd), or NULL for a text message. */
static char *raw_children(xmpp_ctx_t *ctx, xmpp_stanza_t *st)
{
    xmpp_stanza_t *c;
    char *buf, *all = NULL, *grown;
    size_t len, total = 0;
    int bodies = 0, others = 0;

    for (c = xmpp_stanza_get_children(st); c; c = xmpp_stanza_get_next(c)) {
        const char *n = xmpp_stanza_get_name(c);

        if (!n || !strcmp(n, "origin-id"))
            continue;
        if (!strcmp(n, "body") && xmpp_stanza_get_children(c)
            && xmpp_stanza_is_text(xmpp_stanza_get_children(c))
            && !xmpp_stanza_get_next(xmpp_stanza_get_children(c)))
            bodies++;
        else
            others++;
    }
    if (others == 0 && bodies <= 1)
        return NULL;
    for (c = xmpp_stanza_get_children(st); c; c = xmpp_stanza_get_next(c)) {
        const char *n = xmpp_stanza_get_name(c);

        if ((n && !strcmp(n, "origin-id"))
            || xmpp_stanza_to_text(c, &buf, &len) != XMPP_EOK)
            continue;
        if ((grown = realloc(all, total + len + 1)) != NULL) {
            all = grown;
            memcpy(all + total, buf, len);
            total += len;
            all[total] = '\0';
        }
        xmpp_free(ctx, buf);
    }
    return all;
}

/* Log a stanza the way App Engine's development server logged sends. */
void mx_trace_dev_send(mx_app *app, xmpp_ctx_t *ctx, const char *text)
{
    xmpp_stanza_t *st = xmpp_stanza_new_from_string(ctx, text);
    const char *name = st ? xmpp_stanza_get_name(st) : NULL;
    const char *type = st ? xmpp_stanza_get_type(st) : NULL;
    xmpp_stanza_t *child;
    char *body;

    if (!name) {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, app->s,
                     "Sending an XMPP stanza: %s", text);
    }
    else if (!strcmp(name, "message")) {
        char *raw = raw_children(ctx, st);

        body = raw ? NULL : xmpp_message_get_body(st);
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, app->s,
                     "Sending an XMPP Message:");
        dev_line(app, "From:", xmpp_stanza_get_from(st));
        dev_line(app, "Body:", raw ? raw : body);
        dev_line(app, "Type:", type ? type : "chat");
        dev_line(app, "Raw Xml:", raw ? "True" : "False");
        dev_line(app, "To JIDs:", xmpp_stanza_get_to(st));
        if (body)
            xmpp_free(ctx, body);
        free(raw);
    }
    else if (type && !strcmp(type, "subscribe")) {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, app->s,
                     "Sending an XMPP Invite:");
        dev_line(app, "From:", xmpp_stanza_get_from(st));
        dev_line(app, "To:", xmpp_stanza_get_to(st));
    }
    else {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, app->s,
                     "Sending an XMPP Presence:");
        dev_line(app, "From:", xmpp_stanza_get_from(st));
        dev_line(app, "To:", xmpp_stanza_get_to(st) ? xmpp_stanza_get_to(st)
                                                  : "subscribers");
        dev_line(app, "Type:", type ? type : "available");
        child = xmpp_stanza_get_child_by_name(st, "show");
        body = child ? xmpp_stanza_get_text(child) : NULL;
        dev_line(app, "Show:", body);
        if (body)
            xmpp_free(ctx, body);
        child = xmpp_stanza_get_child_by_name(st, "status");
        body = child ? xmpp_stanza_get_text(child) : NULL;
        dev_line(app, "Status:", body);
        if (body)
            xmpp_free(ctx, body);
    }
    if (st)
        xmpp_stanza_release(st);
}

/* ---- the core's log lines ---- */

void mx_trace_core_log(void *baton, void *ctx, int level, const char *msg)
{
    mx_app *app = ctx;

    ap_log_error(APLOG_MARK, level, 0, app ? app->s : NULL, "%s", msg);
}
