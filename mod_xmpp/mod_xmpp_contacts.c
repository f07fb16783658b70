/* SPDX-License-Identifier: Apache-2.0 */
/* mod_xmpp_contacts: see mod_xmpp_contacts.h.
 *
 * The XMPP server keeps the roster, so it survives restarts of httpd and
 * of the holder: at login we fetch it and follow its pushes. Subscribers
 * (subscription "from" or "both") are written to <spool>/roster, one bare
 * JID a line, read back when the holder starts (a "subscribers" send
 * queued before it may go before the server's roster arrives); the sends
 * themselves ask the table in memory (mx_store_subscribers). Presence is stored per
 * contact in <spool>/presence/ (mx_presence), where get_presence in any
 * process reads it.
 *
 * Only contacts whose presence the server gives us (subscription "to" or
 * "both") have presence kept, at most MX_CONTACTS_PRESENCE_MAX of them,
 * and a status of at most MX_PRESENCE_STATUS_MAX characters: anyone may
 * send us presence, and what strangers send must not make state grow.
 * The table of contacts is mx_roster's: memory per contact, freed when it
 * goes, and no per-stanza allocation that outlives the stanza. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "httpd.h"
#include "http_log.h"

#include "mod_xmpp_component.h"
#include "mod_xmpp_contacts.h"
#include "mod_xmpp_store.h"
#include "mx_spool.h"
#include "mx_file.h"
#include "mx_jid.h"
#include "mx_presence.h"
#include "mx_roster.h"

APLOG_USE_MODULE(xmpp);

#define MX_NS_ROSTER "jabber:iq:roster"

/* Contacts whose presence is kept; beyond, presence is dropped (logged) */
#define MX_CONTACTS_PRESENCE_MAX 10000
/* Resources followed per contact (a server limits sessions per account;
 * a remote one might not) */
#define MX_CONTACTS_RESOURCES_MAX 64

#define BARE_SIZE (2 * MX_JID_PART_MAX + 2)

struct mx_contacts {
    mx_app *app;
    xmpp_ctx_t *ctx;
    xmpp_conn_t *conn;
    mx_out *out;
    mx_roster *roster;
    char roster_id[MX_OUT_ID_SIZE]; /* of this session's roster request */
    mx_croster *croster;       /* component mode: the rosters we keep */
};

/* ---- the roster file ---- */

/* One write of the whole list, made in memory (mx_roster's format): a
 * roster of thousands of subscribers is not thousands of system calls. */
static int fill_roster(int fd, void *baton)
{
    mx_contacts *ct = baton;
    size_t len = 0;
    char *text = mx_roster_subscribers_text(ct->roster, &len);
    int rv;

    if (!text)
        return -1;
    rv = mx_write_all(fd, text, len);
    free(text);
    return rv;
}

static void save_roster(mx_contacts *ct)
{
    char tmp[PATH_MAX], path[PATH_MAX];
    int n = snprintf(tmp, sizeof(tmp), "%s/roster.tmp", ct->app->dir);

    snprintf(path, sizeof(path), "%s/roster", ct->app->dir);
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        /* the spool path leaves room: never, in fact */
        ap_log_error(APLOG_MARK, APLOG_ERR, ENAMETOOLONG, ct->app->s,
                     MX_LOG_TAG "0307: %s: cannot write %s", ct->app->jid,
                     tmp);
        return;
    }
    /* not synced: the roster is fetched again at every login */
    if (mx_file_replace_with(path, tmp, 0, fill_roster, ct) != 0)
        ap_log_error(APLOG_MARK, APLOG_ERR, errno, ct->app->s, MX_LOG_TAG
                     "0308: %s: cannot write %s", ct->app->jid, path);
}

/* ---- the roster ---- */

static void remove_presence(mx_contacts *ct, const char *bare)
{
    if (mx_presence_remove(ct->app->dir, bare) != 0)
        ap_log_error(APLOG_MARK, APLOG_ERR, errno, ct->app->s, MX_LOG_TAG
                     "0302: %s: cannot remove the presence of %s",
                     ct->app->jid, bare);
}

/* Record one roster item; 1 when the set of subscribers changed. */
static int roster_item(mx_contacts *ct, xmpp_stanza_t *item)
{
    const char *jid = xmpp_stanza_get_attribute(item, "jid");
    unsigned int sub = mx_roster_subscription(
        xmpp_stanza_get_attribute(item, "subscription"));
    char bare[BARE_SIZE];
    int rv;

    if (!jid || mx_jid_bare_prep(jid, bare, sizeof(bare)) < 0)
        return 0;
    if ((rv = mx_roster_set(ct->roster, bare, sub)) < 0) {
        ap_log_error(APLOG_MARK, APLOG_ERR, ENOMEM, ct->app->s, MX_LOG_TAG
                     "0305: %s: cannot record the roster item of %s",
                     ct->app->jid, bare);
        return 0;
    }
    if (rv & MX_ROSTER_FORGET)
        remove_presence(ct, bare);
    return (rv & MX_ROSTER_SUBSCRIBERS) != 0;
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

static int keep_none(const char *bare, void *ud)
{
    return 0;
}

/* A new session: every presence known goes, files too. The server sends
 * the presence of every contact online after our initial presence (which
 * follows the roster request), and a file kept from before would say
 * "available" of a contact that went offline meanwhile. */
static void forget_all_presence(mx_contacts *ct)
{
    mx_roster_clear_presence(ct->roster);
    if (mx_presence_prune(ct->app->dir, keep_none, NULL) < 0)
        ap_log_error(APLOG_MARK, APLOG_ERR, errno, ct->app->s, MX_LOG_TAG
                     "0304: %s: cannot clear %s/presence", ct->app->jid,
                     ct->app->dir);
}

static void contact_gone(const char *bare, int stored, void *ct)
{
    if (stored)
        remove_presence(ct, bare);
}

/* The whole roster: contacts not in it are gone. */
static int on_roster_result(xmpp_conn_t *conn, xmpp_stanza_t *st, void *ud)
{
    mx_contacts *ct = ud;
    xmpp_stanza_t *query = xmpp_stanza_get_child_by_ns(st, MX_NS_ROSTER);
    const char *type = xmpp_stanza_get_type(st);

    /* anyone can send us a result with our id: wait for the server's */
    if (!mx_out_from_server(ct->app, st) || !type || strcmp(type, "result"))
        return 1;
    if (!query)
        return 0;
    mx_roster_begin(ct->roster);
    roster_items(ct, query);
    mx_roster_end(ct->roster, contact_gone, ct);
    save_roster(ct);
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

/* Room for this contact's presence? Said once when there is none. */
static int room_for(mx_contacts *ct, const char *bare)
{
    int rv = mx_roster_claim(ct->roster, bare);

    if (rv < 0)
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, ct->app->s, MX_LOG_TAG
                     "0303: %s: the presence of %lu contacts is kept, the "
                     "most there is room for: the presence of %s and of "
                     "further new contacts is dropped (get_presence "
                     "answers unavailable for them) until some leave the "
                     "roster", ct->app->jid,
                     (unsigned long)mx_roster_stored(ct->roster), bare);
    return rv > 0;
}

/* Presence from a contact we are subscribed to: a contact is available
 * while any of its resources is, so store the latest presence of one that
 * is online (or the unavailable one, when none is left). From anyone else
 * (a stranger's directed presence, a contact that stopped sharing it)
 * nothing is kept. */
static void contact_presence(mx_contacts *ct, xmpp_stanza_t *st,
                             const char *from, int available)
{
    char bare[BARE_SIZE], *show, *status;
    long online;

    if (mx_jid_bare_prep(from, bare, sizeof(bare)) < 0
        || (online = mx_roster_resource(ct->roster, bare, from,
                                        available)) < 0)
        return;
    /* another resource still online: its presence stays */
    if ((!available && online > 0) || !room_for(ct, bare))
        return;
    show = available ? child_text(st, "show") : NULL;
    status = child_text(st, "status");
    if (mx_presence_store(ct->app->dir, bare, available, show, status) != 0)
        ap_log_error(APLOG_MARK, APLOG_ERR, errno, ct->app->s, MX_LOG_TAG
                     "0309: %s: cannot store the presence of %s",
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
    char bare[BARE_SIZE];

    if (ct->croster) { /* no server keeps a component's contacts */
        mx_croster_on_presence(ct->croster, st);
        return 1;
    }
    if (!from || mx_jid_bare(from, bare, sizeof(bare)) < 0
        || mx_jid_same_bare(from, ct->app->jid))
        return 1; /* our own presence, reflected by the server */
    if (!type || !strcmp(type, "unavailable")) {
        contact_presence(ct, st, from, !type);
    }
    else if (!strcmp(type, "subscribe")) {
        /* App Engine accepted every subscription, and asked back, so that
         * both sides see each other */
        send_presence_to(ct, bare, "subscribed");
        send_presence_to(ct, bare, "subscribe");
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, ct->app->s, MX_LOG_TAG
                     "0310: %s: accepted the subscription of %s",
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
    forget_all_presence(ct);
    xmpp_handler_add(conn, on_presence, NULL, "presence", NULL, ct);
    xmpp_handler_add(conn, on_roster_push, MX_NS_ROSTER, "iq", "set", ct);
    xmpp_handler_add(conn, on_iq, NULL, "iq", NULL, ct);
    if (ct->croster) {
        mx_croster_on_login(ct->croster, ctx, out);
        return; /* no roster at the server: the module keeps it */
    }
    if (mx_out_request_id("roster", ct->roster_id, sizeof(ct->roster_id))) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, ct->app->s, MX_LOG_TAG
                     "0306: %s: no random numbers for the roster request; "
                     "the roster file stays as it was", ct->app->jid);
        return;
    }
    iq = xmpp_iq_new(ctx, "get", ct->roster_id);
    query = xmpp_stanza_new(ctx);
    xmpp_stanza_set_name(query, "query");
    xmpp_stanza_set_ns(query, MX_NS_ROSTER);
    xmpp_stanza_add_child(iq, query);
    xmpp_stanza_release(query);
    xmpp_id_handler_add(conn, on_roster_result, ct->roster_id, ct);
    mx_out_send_other(out, iq);
    xmpp_stanza_release(iq);
}

/* ---- subscribers, for the outbound side ---- */

typedef struct {
    mx_store_contact_fn *fn;
    void *ud;
    const char *addr;
} each_ud;

static void one_subscriber(const char *bare, unsigned int sub, void *ud)
{
    each_ud *e = ud;

    if (sub & MX_SUB_FROM)
        e->fn(e->addr, bare, e->ud);
}

static void each_subscriber(void *local, const char *addr,
                            mx_store_contact_fn *fn, void *ud)
{
    mx_contacts *ct = local;
    each_ud e = { fn, ud, addr };

    mx_roster_each(ct->roster, one_subscriber, &e);
}

/* The subscribers of the last session until the server's roster comes */
static void load_roster(mx_contacts *ct)
{
    char *text = NULL;
    size_t len;

    if (mx_queue_read_file(ct->app->dir, "roster", &text, &len) != 0)
        return; /* nobody subscribed yet */
    if (mx_roster_read_subscribers(ct->roster, text) < 0)
        ap_log_error(APLOG_MARK, APLOG_ERR, ENOMEM, ct->app->s, MX_LOG_TAG
                     "0311: %s: cannot read back %s/roster", ct->app->jid,
                     ct->app->dir);
    free(text);
}

mx_contacts *mx_contacts_create(mx_app *app)
{
    mx_contacts *ct = calloc(1, sizeof(*ct));

    if (!ct)
        return NULL;
    ct->app = app;
    ct->roster = mx_roster_create(MX_CONTACTS_PRESENCE_MAX,
                                  MX_CONTACTS_RESOURCES_MAX);
    if (!ct->roster
        || (app->component && !(ct->croster = mx_croster_create(app)))) {
        mx_roster_destroy(ct->roster);
        free(ct);
        return NULL;
    }
    if (!app->component) {
        load_roster(ct);
        mx_store_set_local(app, each_subscriber, ct);
    }
    return ct;
}

void mx_contacts_on_close(mx_contacts *ct)
{
    if (ct->croster)
        mx_croster_on_close(ct->croster);
}
