/* SPDX-License-Identifier: Apache-2.0 */
/* mod_xmpp_component: see mod_xmpp_component.h.
 *
 * One flat table, "address\ncontact" -> entry, in memory (bounded by
 * MX_CROSTER_MAX, keys and entries malloc'd and freed, so churn does not
 * grow it), and one file per address on disk, rewritten durably on every
 * change: the file is the truth after a restart or a kill -9; the
 * holder's outbound side asks the table (mx_store_subscribers) for
 * send_presence to "subscribers".
 *
 * With XMPPStateStore dbd (several hosts) nothing of it is in memory:
 * every decision reads the shared store (mod_xmpp_store.h), since another
 * host may have changed a subscription or received a presence since. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "apr_hash.h"
#include "apr_strings.h"
#include "httpd.h"
#include "http_log.h"

#include "mod_xmpp_component.h"
#include "mod_xmpp_store.h"
#include "mx_jid.h"
#include "mx_presence.h"
#include "mx_spool.h"
#include "mx_addr_roster.h"
#include "mx_send.h"

APLOG_USE_MODULE(xmpp);

#define MX_CROSTER_RESOURCES 8   /* resources tracked per contact */
#define MX_ADDR_MAX (2 * MX_JID_PART_MAX + 2)

typedef struct {
    int bits;                    /* MX_ADDR_FROM | MX_ADDR_TO */
    char *online[MX_CROSTER_RESOURCES]; /* full JIDs available, malloc'd */
} mx_centry;

struct mx_croster {
    mx_app *app;
    xmpp_ctx_t *ctx;
    mx_out *out;
    apr_pool_t *pool;
    apr_pool_t *scratch;         /* cleared after every batch of sends */
    apr_hash_t *entries;         /* "address\ncontact" (malloc'd) -> entry */
    apr_time_t full_logged;
    int shared;                  /* the state is in the shared store */
};

/* ---- keys ---- */

static char *make_key(const char *addr, const char *contact)
{
    size_t a = strlen(addr), c = strlen(contact);
    char *k = malloc(a + c + 2);

    if (k) {
        memcpy(k, addr, a);
        k[a] = '\n';
        memcpy(k + a + 1, contact, c + 1);
    }
    return k;
}

static const char *key_contact(const char *key)
{
    return strchr(key, '\n') + 1;
}

static int key_is_of(const char *key, const char *addr)
{
    size_t n = strlen(addr);

    return !strncmp(key, addr, n) && key[n] == '\n';
}

/* ---- entries ---- */

static mx_centry *find(mx_croster *cr, const char *addr, const char *contact)
{
    char *k = make_key(addr, contact);
    mx_centry *e = k ? apr_hash_get(cr->entries, k, APR_HASH_KEY_STRING)
                     : NULL;

    free(k);
    return e;
}

static void log_full(mx_croster *cr, const char *addr, const char *contact)
{
    apr_time_t now = apr_time_now();

    if (now - cr->full_logged < apr_time_from_sec(60))
        return;
    cr->full_logged = now;
    ap_log_error(APLOG_MARK, APLOG_WARNING, 0, cr->app->s, MX_LOG_TAG "0330: "
                 "%s: the component keeps %d contacts over all its "
                 "addresses, its limit: %s is not added to %s (logged once "
                 "a minute)", cr->app->jid, MX_CROSTER_MAX, contact, addr);
}

/* The entry, made when there is room; NULL (logged) when full. */
static mx_centry *get_or_add(mx_croster *cr, const char *addr,
                             const char *contact)
{
    mx_centry *e = find(cr, addr, contact);
    char *k;

    if (e)
        return e;
    if (apr_hash_count(cr->entries) >= MX_CROSTER_MAX) {
        log_full(cr, addr, contact);
        return NULL;
    }
    k = make_key(addr, contact);
    e = calloc(1, sizeof(*e));
    if (!k || !e) {
        free(k);
        free(e);
        return NULL;
    }
    apr_hash_set(cr->entries, k, APR_HASH_KEY_STRING, e);
    return e;
}

static void entry_free(mx_centry *e)
{
    int i;

    for (i = 0; i < MX_CROSTER_RESOURCES; i++)
        free(e->online[i]);
    free(e);
}

/* Forget the contact once neither side is subscribed. */
static void drop_if_empty(mx_croster *cr, const char *addr,
                          const char *contact)
{
    char *k = make_key(addr, contact);
    apr_hash_index_t *hi;
    const void *stored;
    void *val;

    if (!k)
        return;
    for (hi = apr_hash_first(NULL, cr->entries); hi; hi = apr_hash_next(hi)) {
        apr_hash_this(hi, &stored, NULL, &val);
        if (!strcmp(stored, k) && ((mx_centry *)val)->bits == 0) {
            apr_hash_set(cr->entries, stored, APR_HASH_KEY_STRING, NULL);
            entry_free(val);
            free((void *)stored);
            break;
        }
    }
    free(k);
}

/* ---- the roster files ---- */

static void save(mx_croster *cr, const char *addr)
{
    apr_pool_t *p;
    apr_hash_index_t *hi;
    apr_array_header_t *lines;
    const char *text;

    apr_pool_create(&p, cr->pool);
    lines = apr_array_make(p, 16, sizeof(const char *));
    for (hi = apr_hash_first(p, cr->entries); hi; hi = apr_hash_next(hi)) {
        const char *k = apr_hash_this_key(hi);
        mx_centry *e = apr_hash_this_val(hi);

        if (key_is_of(k, addr) && mx_addr_roster_state_name(e->bits))
            APR_ARRAY_PUSH(lines, const char *) = apr_pstrcat(
                p, key_contact(k), " ", mx_addr_roster_state_name(e->bits), "\n",
                NULL);
    }
    /* one copy of the whole, not one per line */
    text = apr_array_pstrcat(p, lines, 0);
    if (mx_addr_roster_save(cr->app->dir, addr, text, strlen(text)) != 0)
        ap_log_error(APLOG_MARK, APLOG_ERR, errno, cr->app->s, MX_LOG_TAG
                     "0331: %s: cannot write the roster of %s in "
                     "%s/addresses", cr->app->jid, addr, cr->app->dir);
    apr_pool_destroy(p);
}

static void load_address(mx_croster *cr, const char *addr)
{
    char dir[4096], *text = NULL, *line, *last, lower[MX_ADDR_MAX];
    const char *contact;
    size_t len;
    int bits;
    mx_centry *e;

    if (mx_addr_roster_dir(cr->app->dir, addr, dir, sizeof(dir)) != 0
        || mx_queue_read_file(dir, "roster", &text, &len) != 0)
        return;
    for (line = apr_strtok(text, "\n", &last); line;
         line = apr_strtok(NULL, "\n", &last))
        if ((bits = mx_addr_roster_line(line, &contact)) != 0
            && mx_jid_lower_bare(contact, lower, sizeof(lower)) == 0
            && (e = get_or_add(cr, addr, lower)) != NULL)
            e->bits = bits;
    free(text);
}

static void load(mx_croster *cr)
{
    const char *path = apr_pstrcat(cr->pool, cr->app->dir, "/addresses",
                                   NULL);
    char addr[MX_ADDR_MAX];
    apr_dir_t *d;
    apr_finfo_t fi;

    if (apr_dir_open(&d, path, cr->pool) != APR_SUCCESS)
        return; /* nobody subscribed yet */
    while (apr_dir_read(&fi, APR_FINFO_NAME | APR_FINFO_TYPE, d)
           == APR_SUCCESS)
        if (fi.filetype == APR_DIR && fi.name[0] != '.'
            && mx_jid_lower_bare(fi.name, addr, sizeof(addr)) == 0
            && !strcmp(addr, fi.name))
            load_address(cr, addr);
    apr_dir_close(d);
}

/* ---- stanzas ---- */

static void send_presence(mx_croster *cr, const char *from, const char *to,
                          const char *type)
{
    xmpp_stanza_t *p = xmpp_presence_new(cr->ctx);

    xmpp_stanza_set_from(p, from);
    xmpp_stanza_set_to(p, to);
    if (type)
        xmpp_stanza_set_type(p, type);
    mx_out_send_other(cr->out, p);
    xmpp_stanza_release(p);
}

/* The app's presence from an address: its full form, as every stanza
 * the app sends by default (resource XMPPResource, bot). */
static void send_available(mx_croster *cr, const char *addr, const char *to,
                           const char *type)
{
    char *full = apr_pstrcat(cr->scratch, addr, "/",
                             mx_conf_resource(cr->app->conf), NULL);

    send_presence(cr, full, to, type);
}

/* Shared store: 1 when the pair is kept or there is room for it, 0 when
 * full (logged), -1 when the store cannot tell (logged). */
static int shared_room(mx_croster *cr, const char *addr, const char *contact)
{
    int bits;
    long n;

    if (mx_store_sub_get(cr->app, cr->scratch, addr, contact, &bits) != 0)
        return -1;
    if (bits)
        return 1;
    if (mx_store_sub_count(cr->app, cr->scratch, &n) != 0)
        return -1;
    if (n < MX_CROSTER_MAX)
        return 1;
    log_full(cr, addr, contact);
    return 0;
}

static void on_subscribe(mx_croster *cr, const char *addr,
                         const char *contact)
{
    mx_centry *e = NULL;
    int room = 0;

    if (cr->shared) {
        /* the store cannot be read: no answer, the contact asks again */
        if ((room = shared_room(cr, addr, contact)) < 0
            || (room > 0 && mx_store_sub_change(cr->app, cr->scratch, addr,
                                                contact, MX_ADDR_FROM, 1)))
            return;
    }
    else if ((e = get_or_add(cr, addr, contact)) != NULL) {
        e->bits |= MX_ADDR_FROM;
        save(cr, addr);
    }
    if (cr->shared ? !room : !e) { /* full: a clear no, not silence */
        send_presence(cr, addr, contact, "unsubscribed");
        return;
    }
    /* App Engine accepted every subscription, and asked back, so that
     * both sides see each other */
    send_presence(cr, addr, contact, "subscribed");
    send_presence(cr, addr, contact, "subscribe");
    send_available(cr, addr, contact, NULL);
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, cr->app->s, MX_LOG_TAG "0332: "
                 "%s: accepted the subscription of %s to %s", cr->app->jid,
                 contact, addr);
}

/* subscribed, unsubscribe, unsubscribed: one bit set or cleared */
static void change(mx_croster *cr, const char *addr, const char *contact,
                   int bit, int set)
{
    mx_centry *e;

    if (cr->shared) {
        if (!set || shared_room(cr, addr, contact) > 0)
            mx_store_sub_change(cr->app, cr->scratch, addr, contact, bit,
                                set);
        return;
    }
    e = set ? get_or_add(cr, addr, contact) : find(cr, addr, contact);
    if (!e || !!(e->bits & bit) == set)
        return;
    e->bits = set ? e->bits | bit : e->bits & ~bit;
    save(cr, addr);
    drop_if_empty(cr, addr, contact);
}

/* How many resources of the contact are online after this one's
 * presence (beyond MX_CROSTER_RESOURCES, extra ones are not tracked). */
static int track(mx_centry *e, const char *full, int available)
{
    int i, slot = -1, online = 0;

    for (i = 0; i < MX_CROSTER_RESOURCES; i++)
        if (e->online[i] && !strcmp(e->online[i], full))
            slot = i;
    if (slot >= 0 && !available) {
        free(e->online[slot]);
        e->online[slot] = NULL;
    }
    for (i = 0; slot < 0 && available && i < MX_CROSTER_RESOURCES; i++)
        if (!e->online[i]) {
            e->online[i] = strdup(full);
            break;
        }
    for (i = 0; i < MX_CROSTER_RESOURCES; i++)
        online += e->online[i] != NULL;
    return online;
}

static char *child_text(xmpp_stanza_t *st, const char *name)
{
    xmpp_stanza_t *c = xmpp_stanza_get_child_by_name(st, name);

    return c ? xmpp_stanza_get_text(c) : NULL;
}

/* Kept for get_presence(jid, from_jid=address): only of contacts in the
 * address's roster, so what a stranger sends costs nothing. */
static void store(mx_croster *cr, xmpp_stanza_t *st, const char *addr,
                  const char *contact, const char *from, int available)
{
    mx_centry *e = NULL;
    char dir[4096], *show, *status;
    int bits = 0;

    if (cr->shared) {
        /* every resource is a row: whichever host gets its presence */
        if (mx_store_sub_get(cr->app, cr->scratch, addr, contact, &bits)
            || !bits)
            return;
        show = available ? child_text(st, "show") : NULL;
        status = available ? child_text(st, "status") : NULL;
        mx_store_presence_put(cr->app, cr->scratch, addr, contact, from,
                              available, show, status);
        if (show)
            xmpp_free(cr->ctx, show);
        if (status)
            xmpp_free(cr->ctx, status);
        return;
    }
    e = find(cr, addr, contact);
    if (!e || (track(e, from, available) > 0 && !available)
        || mx_addr_roster_dir(cr->app->dir, addr, dir, sizeof(dir)) != 0)
        return; /* unknown, or another resource is still online */
    show = available ? child_text(st, "show") : NULL;
    status = child_text(st, "status");
    if (mx_presence_store(dir, from, available, show, status) != 0)
        ap_log_error(APLOG_MARK, APLOG_ERR, errno, cr->app->s, MX_LOG_TAG
                     "0333: %s: cannot store the presence of %s to %s",
                     cr->app->jid, from, addr);
    if (show)
        xmpp_free(cr->ctx, show);
    if (status)
        xmpp_free(cr->ctx, status);
}

void mx_croster_on_presence(mx_croster *cr, xmpp_stanza_t *st)
{
    const char *from = xmpp_stanza_get_from(st);
    const char *type = xmpp_stanza_get_type(st);
    char addr[MX_ADDR_MAX], contact[MX_ADDR_MAX];

    apr_pool_clear(cr->scratch);
    /* to one of our addresses, from someone who is not one of them */
    if (!from || mx_jid_lower_bare(xmpp_stanza_get_to(st), addr, sizeof(addr)) != 0
        || mx_jid_lower_bare(from, contact, sizeof(contact)) != 0
        || mx_check_from(addr, cr->app->jid, NULL) != MX_OK
        || mx_check_from(contact, cr->app->jid, NULL) == MX_OK)
        return;
    if (!type || !strcmp(type, "unavailable"))
        store(cr, st, addr, contact, from, !type);
    else if (!strcmp(type, "subscribe"))
        on_subscribe(cr, addr, contact);
    else if (!strcmp(type, "subscribed"))
        change(cr, addr, contact, MX_ADDR_TO, 1);
    else if (!strcmp(type, "unsubscribe")) {
        change(cr, addr, contact, MX_ADDR_FROM, 0);
        send_presence(cr, addr, contact, "unsubscribed");
    }
    else if (!strcmp(type, "unsubscribed"))
        change(cr, addr, contact, MX_ADDR_TO, 0);
    else if (!strcmp(type, "probe"))
        send_available(cr, addr, from, NULL);
}

typedef struct {
    mx_croster *cr;
    int bit;
    const char *type;
} to_all_ud;

static void to_one(const char *addr, const char *contact, void *ud)
{
    to_all_ud *t = ud;

    if (t->bit == MX_ADDR_TO)
        send_presence(t->cr, addr, contact, t->type);
    else
        send_available(t->cr, addr, contact, t->type);
}

/* Presence (type NULL: available) from each address to its subscribers,
 * or (probe) to the contacts it is subscribed to. */
static void to_all(mx_croster *cr, int bit, const char *type)
{
    apr_hash_index_t *hi;
    char addr[MX_ADDR_MAX];

    if (cr->shared) {
        to_all_ud t = { cr, bit, type };

        mx_store_sub_all(cr->app, cr->scratch, bit, to_one, &t);
        apr_pool_clear(cr->scratch);
        return;
    }
    for (hi = apr_hash_first(NULL, cr->entries); hi; hi = apr_hash_next(hi)) {
        const char *k = apr_hash_this_key(hi);
        mx_centry *e = apr_hash_this_val(hi);
        size_t n = (size_t)(strchr(k, '\n') - k);

        if (!(e->bits & bit) || n >= sizeof(addr))
            continue;
        memcpy(addr, k, n);
        addr[n] = '\0';
        if (bit == MX_ADDR_TO)
            send_presence(cr, addr, key_contact(k), type);
        else
            send_available(cr, addr, key_contact(k), type);
    }
    apr_pool_clear(cr->scratch);
}

void mx_croster_on_login(mx_croster *cr, xmpp_ctx_t *ctx, mx_out *out)
{
    apr_hash_index_t *hi;
    int i;

    cr->ctx = ctx;
    cr->out = out;
    /* the contacts tell again who is online once probed */
    for (hi = apr_hash_first(NULL, cr->entries); hi; hi = apr_hash_next(hi)) {
        mx_centry *e = apr_hash_this_val(hi);

        for (i = 0; i < MX_CROSTER_RESOURCES; i++) {
            free(e->online[i]);
            e->online[i] = NULL;
        }
    }
    to_all(cr, MX_ADDR_FROM, NULL);
    to_all(cr, MX_ADDR_TO, "probe");
}

void mx_croster_on_close(mx_croster *cr)
{
    /* with a shared store the other hosts still answer for the addresses:
     * one host stopping is no reason to tell the subscribers they went */
    if (cr->out && !cr->shared)
        to_all(cr, MX_ADDR_FROM, "unavailable");
}

/* The subscribers of addr, from memory (spool backend) */
static void each_subscriber(void *local, const char *addr,
                            mx_store_contact_fn *fn, void *ud)
{
    mx_croster *cr = local;
    apr_hash_index_t *hi;

    for (hi = apr_hash_first(NULL, cr->entries); hi; hi = apr_hash_next(hi)) {
        const char *k = apr_hash_this_key(hi);
        mx_centry *e = apr_hash_this_val(hi);

        if ((e->bits & MX_ADDR_FROM) && key_is_of(k, addr))
            fn(addr, key_contact(k), ud);
    }
}

mx_croster *mx_croster_create(mx_app *app)
{
    mx_croster *cr = calloc(1, sizeof(*cr));

    if (!cr)
        return NULL;
    cr->app = app;
    apr_pool_create_unmanaged_ex(&cr->pool, NULL, NULL);
    apr_pool_create(&cr->scratch, cr->pool);
    cr->entries = apr_hash_make(cr->pool);
    cr->shared = mx_store_shared(app);
    if (!cr->shared) {
        load(cr);
        mx_store_set_local(app, each_subscriber, cr);
    }
    return cr;
}
