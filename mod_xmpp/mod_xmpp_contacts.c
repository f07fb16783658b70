/* mod_xmpp_contacts: see mod_xmpp_contacts.h.
 *
 * The XMPP server keeps the roster, so it survives restarts of httpd and
 * of the holder: at login we fetch it and follow its pushes. Subscribers
 * (subscription "from" or "both") are written to <spool>/roster, one bare
 * JID a line, for the holder's "subscribers" sends. Presence is stored per
 * contact in <spool>/presence/ (mx_presence_store), where get_presence in
 * any process reads it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apr_hash.h"
#include "apr_strings.h"
#include "httpd.h"
#include "http_log.h"

#include "mod_xmpp_component.h"
#include "mod_xmpp_contacts.h"
#include "mx_jid.h"
#include "mx_queue.h"

APLOG_USE_MODULE(xmpp);

#define MX_NS_ROSTER "jabber:iq:roster"

struct mx_contacts {
    mx_app *app;
    xmpp_ctx_t *ctx;
    xmpp_conn_t *conn;
    mx_out *out;
    apr_pool_t *pool;
    apr_hash_t *subscribers;   /* bare JID -> "" */
    apr_hash_t *online;        /* bare JID -> hash of its resources online */
    mx_croster *croster;       /* component mode: the rosters we keep */
};

/* ---- the roster file ---- */

static void save_roster(mx_contacts *ct)
{
    const char *tmp = apr_pstrcat(ct->pool, ct->app->dir, "/roster.tmp", NULL);
    const char *path = apr_pstrcat(ct->pool, ct->app->dir, "/roster", NULL);
    apr_hash_index_t *hi;
    FILE *f = fopen(tmp, "w");

    if (!f) {
        ap_log_error(APLOG_MARK, APLOG_ERR, errno, ct->app->s, MX_LOG_TAG
                     "0401: %s: cannot write %s", ct->app->jid, tmp);
        return;
    }
    for (hi = apr_hash_first(NULL, ct->subscribers); hi;
         hi = apr_hash_next(hi))
        fprintf(f, "%s\n", (const char *)apr_hash_this_key(hi));
    if (fclose(f) != 0 || rename(tmp, path) != 0)
        ap_log_error(APLOG_MARK, APLOG_ERR, errno, ct->app->s, MX_LOG_TAG
                     "0402: %s: cannot write %s", ct->app->jid, path);
}

/* Record one roster item; 1 when the set of subscribers changed. */
static int roster_item(mx_contacts *ct, xmpp_stanza_t *item)
{
    const char *jid = xmpp_stanza_get_attribute(item, "jid");
    const char *sub = xmpp_stanza_get_attribute(item, "subscription");
    int subscribed = sub && (!strcmp(sub, "from") || !strcmp(sub, "both"));
    int known;
    char bare[2100];

    if (!jid || mx_jid_bare(jid, bare, sizeof(bare)) < 0)
        return 0;
    known = apr_hash_get(ct->subscribers, bare, APR_HASH_KEY_STRING) != NULL;
    if (subscribed == known)
        return 0;
    apr_hash_set(ct->subscribers, apr_pstrdup(ct->pool, bare),
                 APR_HASH_KEY_STRING, subscribed ? "" : NULL);
    return 1;
}

static int roster_items(mx_contacts *ct, xmpp_stanza_t *query)
{
    xmpp_stanza_t *item;
    int changed = 0;

    for (item = xmpp_stanza_get_children(query); item;
         item = xmpp_stanza_get_next(item))
        if (xmpp_stanza_get_name(item)
            && !strcmp(xmpp_stanza_get_name(item), "item"))
            changed |= roster_item(ct, item);
    return changed;
}

static int on_roster_result(xmpp_conn_t *conn, xmpp_stanza_t *st, void *ud)
{
    mx_contacts *ct = ud;
    xmpp_stanza_t *query = xmpp_stanza_get_child_by_ns(st, MX_NS_ROSTER);

    if (query) {
        apr_hash_clear(ct->subscribers);
        roster_items(ct, query);
        save_roster(ct);
    }
    return 0;
}

/* Roster pushes: the server tells us of every change. */
static int on_roster_push(xmpp_conn_t *conn, xmpp_stanza_t *st, void *ud)
{
    mx_contacts *ct = ud;
    xmpp_stanza_t *query = xmpp_stanza_get_child_by_ns(st, MX_NS_ROSTER);
    xmpp_stanza_t *reply;
    const char *from = xmpp_stanza_get_from(st);
    const char *type = xmpp_stanza_get_type(st);

    /* only our own server may push (RFC 6121 2.1.6) */
    if (!query || !type || strcmp(type, "set")
        || (from && !mx_jid_same_bare(from, ct->app->jid)))
        return 1;
    if (roster_items(ct, query))
        save_roster(ct);
    reply = xmpp_iq_new(ct->ctx, "result", xmpp_stanza_get_id(st));
    mx_out_send_other(ct->out, reply);
    xmpp_stanza_release(reply);
    return 1;
}

/* Every IQ get or set needs an answer (RFC 6120 8.2.3): pings get theirs,
 * roster pushes are answered above, anything else is an error. */
static int on_iq(xmpp_conn_t *conn, xmpp_stanza_t *st, void *ud)
{
    mx_contacts *ct = ud;
    const char *type = xmpp_stanza_get_type(st);
    xmpp_stanza_t *payload = xmpp_stanza_get_children(st), *reply;
    const char *ns = payload ? xmpp_stanza_get_ns(payload) : NULL;
    const char *from = xmpp_stanza_get_from(st);

    while (payload && !xmpp_stanza_is_tag(payload)) {
        payload = xmpp_stanza_get_next(payload);
        ns = payload ? xmpp_stanza_get_ns(payload) : NULL;
    }
    if (!type || (strcmp(type, "get") && strcmp(type, "set"))
        || (ns && !strcmp(ns, MX_NS_ROSTER)) || mx_out_is_own_ping(ct->out, st))
        return 1;
    if (ns && !strcmp(ns, "urn:xmpp:ping")) {
        reply = xmpp_iq_new(ct->ctx, "result", xmpp_stanza_get_id(st));
        if (from)
            xmpp_stanza_set_to(reply, from);
        /* a component answers from the address that was asked */
        if (ct->app->component && xmpp_stanza_get_to(st))
            xmpp_stanza_set_from(reply, xmpp_stanza_get_to(st));
    }
    else {
        reply = xmpp_stanza_reply_error(st, "cancel",
                                        "service-unavailable", NULL);
    }
    if (reply) {
        mx_out_send_other(ct->out, reply);
        xmpp_stanza_release(reply);
    }
    return 1;
}

/* ---- presence ---- */

static void send_presence_to(mx_contacts *ct, const char *to,
                             const char *type)
{
    xmpp_stanza_t *p = xmpp_presence_new(ct->ctx);

    xmpp_stanza_set_to(p, to);
    if (type)
        xmpp_stanza_set_type(p, type);
    mx_out_send_other(ct->out, p);
    xmpp_stanza_release(p);
}

static char *child_text(xmpp_stanza_t *st, const char *name)
{
    xmpp_stanza_t *c = xmpp_stanza_get_child_by_name(st, name);

    return c ? xmpp_stanza_get_text(c) : NULL;
}

/* A contact is available while any of its resources is: remember which
 * are online, and store the latest presence of one that is (or the
 * unavailable one, when none is left). */
static int track_resource(mx_contacts *ct, const char *bare,
                          const char *from, int available)
{
    apr_hash_t *res = apr_hash_get(ct->online, bare, APR_HASH_KEY_STRING);

    if (!res) {
        if (!available)
            return 0;
        res = apr_hash_make(ct->pool);
        apr_hash_set(ct->online, apr_pstrdup(ct->pool, bare),
                     APR_HASH_KEY_STRING, res);
    }
    if (available) {
        if (!apr_hash_get(res, from, APR_HASH_KEY_STRING))
            apr_hash_set(res, apr_pstrdup(ct->pool, from),
                         APR_HASH_KEY_STRING, "");
    }
    else {
        apr_hash_set(res, from, APR_HASH_KEY_STRING, NULL);
    }
    return (int)apr_hash_count(res);
}

static void store_presence(mx_contacts *ct, xmpp_stanza_t *st,
                           const char *bare, const char *from, int available)
{
    char *show, *status;
    int online = track_resource(ct, bare, from, available);

    if (!available && online > 0)
        return; /* another resource is still online: keep its presence */
    show = available ? child_text(st, "show") : NULL;
    status = child_text(st, "status");
    if (mx_presence_store(ct->app->dir, from, available, show, status) != 0)
        ap_log_error(APLOG_MARK, APLOG_ERR, errno, ct->app->s, MX_LOG_TAG
                     "0403: %s: cannot store the presence of %s",
                     ct->app->jid, from);
    if (show)
        xmpp_free(ct->ctx, show);
    if (status)
        xmpp_free(ct->ctx, status);
}

static int on_presence(xmpp_conn_t *conn, xmpp_stanza_t *st, void *ud)
{
    mx_contacts *ct = ud;
    const char *from = xmpp_stanza_get_from(st);
    const char *type = xmpp_stanza_get_type(st);
    char bare[2100];

    if (ct->croster) { /* no server keeps a component's contacts */
        mx_croster_on_presence(ct->croster, st);
        return 1;
    }
    if (!from || mx_jid_bare(from, bare, sizeof(bare)) < 0
        || mx_jid_same_bare(from, ct->app->jid))
        return 1; /* our own presence, reflected by the server */
    if (!type || !strcmp(type, "unavailable")) {
        store_presence(ct, st, bare, from, !type);
    }
    else if (!strcmp(type, "subscribe")) {
        /* App Engine accepted every subscription, and asked back, so that
         * both sides see each other */
        send_presence_to(ct, bare, "subscribed");
        send_presence_to(ct, bare, "subscribe");
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, ct->app->s, MX_LOG_TAG
                     "0404: %s: accepted the subscription of %s",
                     ct->app->jid, bare);
    }
    else if (!strcmp(type, "unsubscribe")) {
        send_presence_to(ct, bare, "unsubscribed");
    }
    else if (!strcmp(type, "probe")) {
        send_presence_to(ct, from, NULL);
    }
    return 1;
}

void mx_contacts_on_login(mx_contacts *ct, xmpp_ctx_t *ctx,
                          xmpp_conn_t *conn, mx_out *out)
{
    xmpp_stanza_t *iq, *query;

    ct->ctx = ctx;
    ct->conn = conn;
    ct->out = out;
    /* the server sends every contact's presence again after login */
    apr_hash_clear(ct->online);
    xmpp_handler_add(conn, on_presence, NULL, "presence", NULL, ct);
    xmpp_handler_add(conn, on_roster_push, MX_NS_ROSTER, "iq", "set", ct);
    xmpp_handler_add(conn, on_iq, NULL, "iq", NULL, ct);
    if (ct->croster) {
        mx_croster_on_login(ct->croster, ctx, out);
        return; /* no roster at the server: the module keeps it */
    }
    iq = xmpp_iq_new(ctx, "get", "mx-roster");
    query = xmpp_stanza_new(ctx);
    xmpp_stanza_set_name(query, "query");
    xmpp_stanza_set_ns(query, MX_NS_ROSTER);
    xmpp_stanza_add_child(iq, query);
    xmpp_stanza_release(query);
    xmpp_id_handler_add(conn, on_roster_result, "mx-roster", ct);
    mx_out_send_other(out, iq);
    xmpp_stanza_release(iq);
}

mx_contacts *mx_contacts_create(mx_app *app)
{
    mx_contacts *ct = calloc(1, sizeof(*ct));

    if (!ct)
        return NULL;
    ct->app = app;
    apr_pool_create_unmanaged_ex(&ct->pool, NULL, NULL);
    ct->subscribers = apr_hash_make(ct->pool);
    ct->online = apr_hash_make(ct->pool);
    if (app->component && !(ct->croster = mx_croster_create(app))) {
        apr_pool_destroy(ct->pool);
        free(ct);
        return NULL;
    }
    return ct;
}

void mx_contacts_on_close(mx_contacts *ct)
{
    if (ct->croster)
        mx_croster_on_close(ct->croster);
}
