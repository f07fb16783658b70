/* SPDX-License-Identifier: Apache-2.0 */
/* mod_xmpp_store: see mod_xmpp_store.h.
 *
 * Two tables, made when missing (the same SQL for PostgreSQL and SQLite;
 * apr_dbd turns %s into each driver's placeholders):
 *   mx_subscription (app, address, contact, sub_from, sub_to)
 *   mx_presence     (app, address, contact, resource, presence_show,
 *                    status, updated)
 * app is the component's domain (several apps may share a database),
 * address and contact lowercased bare JIDs, resource the full JID of one
 * of the contact's sessions, updated microseconds since 1970, zero-padded
 * (so that text order is time order in both databases). A contact is
 * available while it has a row; the newest row's show is its show.
 *
 * One bit is set or cleared per statement (no read-modify-write), so two
 * hosts changing a pair at once do not undo each other.
 *
 * mod_dbd is not linked: its optional functions are looked up, and
 * statements are prepared on each connection the first time we use it
 * (kept in the connection's own table of prepared statements), since
 * statements given to mod_dbd at configuration time would make its
 * connections fail while our tables do not exist yet.
 *
 * With XMPPPresenceCache, contacts' presence is in a mod_socache provider
 * instead of mx_presence: one entry per address and contact,
 * "mx|APP|ADDRESS|CONTACT" -> lines "UPDATED\tSHOW\tRESOURCE\n" (at most
 * MX_STORE_RESOURCES_MAX), kept a day after the last change. An update
 * reads, changes and writes the entry back: two hosts updating one
 * contact's entry at the same moment may lose one resource's line until
 * its next presence (the cache has no transactions). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "apr_atomic.h"
#include "apr_dbd.h"
#include "apr_optional.h"
#include "apr_strings.h"
#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "ap_provider.h"
#include "ap_socache.h"
#include "mod_dbd.h"

#include "mod_xmpp_config.h"
#include "mod_xmpp_store.h"
#include "mx_jid.h"
#include "mx_plines.h"
#include "mx_presence.h"

APLOG_USE_MODULE(xmpp);

#define ADDR_MAX (2 * MX_JID_PART_MAX + 2)

static APR_OPTIONAL_FN_TYPE(ap_dbd_open) *dbd_open;
static APR_OPTIONAL_FN_TYPE(ap_dbd_close) *dbd_close;
static APR_OPTIONAL_FN_TYPE(ap_dbd_acquire) *dbd_acquire;

/* ---- statements ---- */

enum {
    S_SUB_GET, S_SUB_COUNT, S_SUB_SET_FROM, S_SUB_SET_TO, S_SUB_CLEAR_FROM,
    S_SUB_CLEAR_TO, S_SUB_DROP, S_SUB_OF, S_SUB_ALL_FROM, S_SUB_ALL_TO,
    S_PRES_COUNT, S_PRES_PUT, S_PRES_DEL, S_PRES_DEL_ALL, S_PRES_GET,
    S_N
};

#define PAIR "app = %s AND address = %s AND contact = %s"

static const char *const statements[S_N] = {
    "SELECT sub_from, sub_to FROM mx_subscription WHERE " PAIR,
    "SELECT COUNT(*) FROM mx_subscription WHERE app = %s",
    "INSERT INTO mx_subscription (app, address, contact, sub_from, sub_to) "
    "VALUES (%s, %s, %s, 1, 0) ON CONFLICT (app, address, contact) "
    "DO UPDATE SET sub_from = 1",
    "INSERT INTO mx_subscription (app, address, contact, sub_from, sub_to) "
    "VALUES (%s, %s, %s, 0, 1) ON CONFLICT (app, address, contact) "
    "DO UPDATE SET sub_to = 1",
    "UPDATE mx_subscription SET sub_from = 0 WHERE " PAIR,
    "UPDATE mx_subscription SET sub_to = 0 WHERE " PAIR,
    "DELETE FROM mx_subscription WHERE " PAIR
    " AND sub_from = 0 AND sub_to = 0",
    "SELECT address, contact FROM mx_subscription WHERE app = %s "
    "AND address = %s AND sub_from = 1",
    "SELECT address, contact FROM mx_subscription WHERE app = %s "
    "AND sub_from = 1",
    "SELECT address, contact FROM mx_subscription WHERE app = %s "
    "AND sub_to = 1",
    "SELECT COUNT(*) FROM mx_presence WHERE " PAIR " AND resource <> %s",
    "INSERT INTO mx_presence (app, address, contact, resource, "
    "presence_show, status, updated) VALUES (%s, %s, %s, %s, %s, %s, %s) "
    "ON CONFLICT (app, address, contact, resource) DO UPDATE SET "
    "presence_show = excluded.presence_show, status = excluded.status, "
    "updated = excluded.updated",
    "DELETE FROM mx_presence WHERE " PAIR " AND resource = %s",
    "DELETE FROM mx_presence WHERE " PAIR,
    "SELECT presence_show FROM mx_presence WHERE " PAIR
    " ORDER BY updated DESC LIMIT 1",
};

static const char *const tables[] = {
    "CREATE TABLE IF NOT EXISTS mx_subscription (app TEXT NOT NULL, "
    "address TEXT NOT NULL, contact TEXT NOT NULL, sub_from INTEGER NOT NULL, "
    "sub_to INTEGER NOT NULL, PRIMARY KEY (app, address, contact))",
    "CREATE TABLE IF NOT EXISTS mx_presence (app TEXT NOT NULL, "
    "address TEXT NOT NULL, contact TEXT NOT NULL, resource TEXT NOT NULL, "
    "presence_show TEXT NOT NULL, status TEXT NOT NULL, "
    "updated TEXT NOT NULL, PRIMARY KEY (app, address, contact, resource))",
};

/* Key of our statements in a connection's table (mod_dbd's labels are
 * short words: ours cannot clash with an administrator's) */
static const char *label(int i)
{
    static const char *const names[S_N] = {
        "mx_s0", "mx_s1", "mx_s2", "mx_s3", "mx_s4", "mx_s5", "mx_s6",
        "mx_s7", "mx_s8", "mx_s9", "mx_s10", "mx_s11", "mx_s12", "mx_s13",
        "mx_s14"
    };
    return names[i];
}

/* After a failed statement: prepare again before the next one */
static void not_ready(ap_dbd_t *dbd)
{
    apr_hash_set(dbd->prepared, "mx_ready", APR_HASH_KEY_STRING, NULL);
}

static void log_failed(mx_app *app, ap_dbd_t *dbd, int rv, const char *what)
{
    not_ready(dbd);
    ap_log_error(APLOG_MARK, APLOG_ERR, 0, app->s, MX_LOG_TAG "0354: "
                 "%s: the shared store (%s) failed to %s: %s", app->jid,
                 apr_dbd_name(dbd->driver), what,
                 apr_dbd_error(dbd->driver, dbd->handle, rv));
}

/* Each preparation's statements get names of their own on the server
 * ("mx_s3_17"): a connection that libpq reset under mod_dbd (the
 * database restarted) keeps its ap_dbd_t and its table of statements
 * but has lost them on the server: a failed statement is tried again
 * on the connection prepared anew (exec_stmt); new names cannot clash
 * with the old ones where the server still has them. */
static apr_uint32_t preparations;

/* Tables and statements on this connection, once. 0, or -1 (logged). */
static int ready(mx_app *app, ap_dbd_t *dbd)
{
    apr_dbd_prepared_t *st;
    apr_uint32_t gen;
    int i, n, tries;

    if (apr_hash_get(dbd->prepared, "mx_ready", APR_HASH_KEY_STRING))
        return 0;
    for (i = 0; i < (int)(sizeof(tables) / sizeof(tables[0])); i++) {
        /* two hosts creating a table at once: one of them may fail; a
         * connection the server closed is opened again by the check
         * (libpq), or the database is gone: not a matter of rights */
        for (tries = 0; tries < 2; tries++) {
            if (apr_dbd_query(dbd->driver, dbd->handle, &n, tables[i]) == 0)
                break;
            if (apr_dbd_check_conn(dbd->driver, dbd->pool,
                                   dbd->handle) != 0) {
                log_failed(app, dbd, -1, "reach the database");
                return -1;
            }
        }
        if (tries == 2) {
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, app->s, MX_LOG_TAG "0350: "
                         "%s: cannot create the tables of the shared store "
                         "(%s): %s (when it is about rights: give the "
                         "DBDParams user the right to create tables, or "
                         "create them as the README says)",
                         app->jid, apr_dbd_name(dbd->driver),
                         apr_dbd_error(dbd->driver, dbd->handle, -1));
            return -1;
        }
    }
    gen = apr_atomic_inc32(&preparations);
    for (i = 0; i < S_N; i++) {
        st = NULL;
        if (apr_dbd_prepare(dbd->driver, dbd->pool, dbd->handle,
                            statements[i],
                            apr_psprintf(dbd->pool, "%s_%u", label(i), gen),
                            &st) != 0 || !st) {
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, app->s, MX_LOG_TAG "0351: "
                         "%s: cannot prepare a statement of the shared store "
                         "(%s): %s", app->jid, apr_dbd_name(dbd->driver),
                         apr_dbd_error(dbd->driver, dbd->handle, -1));
            return -1;
        }
        apr_hash_set(dbd->prepared, label(i), APR_HASH_KEY_STRING, st);
    }
    apr_hash_set(dbd->prepared, "mx_ready", APR_HASH_KEY_STRING, "");
    return 0;
}

static apr_dbd_prepared_t *stmt(ap_dbd_t *dbd, int i)
{
    return apr_hash_get(dbd->prepared, label(i), APR_HASH_KEY_STRING);
}

/* The request's own connection when the request is in the app's server
 * (mod_dbd's settings are per server), else one of the app's server,
 * given back with give_back; r is set to NULL then. */
static ap_dbd_t *take(mx_app *app, request_rec **rp, apr_pool_t *p)
{
    request_rec *r = *rp && (*rp)->server == app->s ? *rp : NULL;
    ap_dbd_t *dbd;

    if (!dbd_open || !dbd_acquire) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, app->s, MX_LOG_TAG "0352: "
                     "%s: %s dbd needs mod_dbd: LoadModule dbd_module",
                     app->jid, MX_CMD_STATE_STORE);
        return NULL;
    }
    *rp = r;
    dbd = r ? dbd_acquire(r) : dbd_open(p, app->s);
    if (!dbd) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, app->s, MX_LOG_TAG "0353: "
                     "%s: no connection to the shared store (mod_dbd's "
                     "DBDriver, DBDParams; mod_dbd logs why)", app->jid);
        return NULL;
    }
    if (ready(app, dbd) != 0) {
        if (!r)
            dbd_close(app->s, dbd);
        return NULL;
    }
    return dbd;
}

static void give_back(mx_app *app, request_rec *r, ap_dbd_t *dbd)
{
    if (!r && dbd)
        dbd_close(app->s, dbd);
}

/* Statement i, with results into *res (read at random: errors surface
 * here, not as a short read) or, res NULL, changing rows. A failure is
 * tried once more on the connection prepared anew: when libpq connected
 * again under mod_dbd (the database restarted), the first statement
 * finds the server without our prepared statements. 0, or -1 (logged) */
static int exec_stmt(mx_app *app, ap_dbd_t *dbd, apr_pool_t *p, int i,
                     int nargs, const char **args, const char *what,
                     apr_dbd_results_t **res)
{
    int tries, n = 0, rv = 0;

    for (tries = 0; tries < 2; tries++) {
        if (tries > 0) {
            not_ready(dbd);
            if (ready(app, dbd) != 0)
                return -1;
        }
        if (res) {
            *res = NULL;
            rv = apr_dbd_pselect(dbd->driver, p, dbd->handle, res,
                                 stmt(dbd, i), 1, nargs, args);
        }
        else
            rv = apr_dbd_pquery(dbd->driver, p, dbd->handle, &n,
                                stmt(dbd, i), nargs, args);
        if (rv == 0)
            return 0;
    }
    log_failed(app, dbd, rv, what);
    return -1;
}

/* A statement that changes rows */
static int run(mx_app *app, apr_pool_t *p, int i, int nargs,
               const char **args, const char *what)
{
    request_rec *none = NULL;
    ap_dbd_t *dbd = take(app, &none, p);
    int rv;

    if (!dbd)
        return -1;
    rv = exec_stmt(app, dbd, p, i, nargs, args, what, NULL);
    give_back(app, NULL, dbd);
    return rv;
}

typedef void row_fn(apr_pool_t *p, const apr_dbd_driver_t *d,
                    apr_dbd_row_t *row, void *ud);

/* A statement that reads rows: fn for each */
static int select_rows(mx_app *app, request_rec *r, apr_pool_t *p, int i,
                       int nargs, const char **args, const char *what,
                       row_fn *fn, void *ud)
{
    ap_dbd_t *dbd = take(app, &r, p);
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    int rv;

    if (!dbd)
        return -1;
    rv = exec_stmt(app, dbd, p, i, nargs, args, what, &res);
    if (rv == 0)
        while (apr_dbd_get_row(dbd->driver, p, res, &row, -1) == 0)
            fn(p, dbd->driver, row, ud);
    give_back(app, r, dbd);
    return rv;
}

/* ---- outside bytes ---- */

/* A column that must be a normalized bare JID: NULL when it is not */
static const char *jid_column(const apr_dbd_driver_t *d, apr_dbd_row_t *row,
                              int col)
{
    const char *v = apr_dbd_get_entry(d, row, col);
    char norm[ADDR_MAX];

    if (!v || strlen(v) >= sizeof(norm)
        || mx_jid_lower_bare(v, norm, sizeof(norm)) || strcmp(norm, v))
        return NULL;
    return v;
}

static int skipped_logged;

static void log_skipped(mx_app *app, const char *what)
{
    if (skipped_logged++ % 1000 == 0) /* not a line per row */
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, app->s, MX_LOG_TAG "0355: "
                     "%s: skipped a row of the shared store with %s (not "
                     "written by mod_xmpp? delete it)", app->jid, what);
}

/* ---- the presence cache (mod_socache) ---- */

#define CACHE_LINE_MAX (20 + 1 + 4 + 1 + 3 * MX_JID_PART_MAX + 2 + 1)
#define CACHE_VALUE_MAX (MX_STORE_RESOURCES_MAX * CACHE_LINE_MAX)
#define CACHE_KEEP apr_time_from_sec(86400)

typedef struct {
    const ap_socache_provider_t *prov;
    ap_socache_instance_t *inst;
    server_rec *s;
} presence_cache;

static presence_cache *caches;   /* per app index; NULL entries: none */
static int ncaches;

static presence_cache *cache_of(const mx_app *app)
{
    return app->index >= 0 && app->index < ncaches && caches[app->index].inst
           ? &caches[app->index] : NULL;
}

static unsigned char *cache_key(apr_pool_t *p, mx_app *app,
                                const char *addr, const char *contact,
                                unsigned int *len)
{
    char *k = apr_pstrcat(p, "mx|", app->jid, "|", addr, "|", contact,
                          NULL);

    *len = (unsigned int)strlen(k);
    return (unsigned char *)k;
}

typedef mx_pline cache_line;

static int good_show(const char *v)
{
    return mx_pline_show_ok(v);
}

/* The entry's lines, checked (outside bytes: another host, or anyone
 * with access to the cache, wrote them). Returns how many, -1 on an
 * error of the cache (logged). */
static int cache_read(mx_app *app, presence_cache *pc, apr_pool_t *p,
                      const unsigned char *key, unsigned int klen,
                      cache_line *lines)
{
    unsigned int len = CACHE_VALUE_MAX;
    unsigned char *data = apr_palloc(p, CACHE_VALUE_MAX + 1);
    apr_status_t rv;
    int n, bad = 0;

    rv = pc->prov->retrieve(pc->inst, app->s, key, klen, data, &len, p);
    if (rv == APR_NOTFOUND)
        return 0;
    if (rv != APR_SUCCESS || len > CACHE_VALUE_MAX) {
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, app->s, MX_LOG_TAG "0359: "
                     "%s: cannot read the presence cache (%s)", app->jid,
                     app->conf->presence_cache);
        return -1;
    }
    data[len] = '\0';
    n = mx_plines_parse((char *)data, lines, MX_STORE_RESOURCES_MAX, &bad);
    if (bad)
        log_skipped(app, "a line of the presence cache that is not "
                    "\"time show resource\"");
    return n;
}

static int cache_write(mx_app *app, presence_cache *pc, apr_pool_t *p,
                       const unsigned char *key, unsigned int klen,
                       const cache_line *lines, int n)
{
    apr_array_header_t *parts;
    const char *text;
    apr_status_t rv;
    int i;

    if (n == 0)
        rv = pc->prov->remove(pc->inst, app->s, key, klen, p);
    else {
        parts = apr_array_make(p, n, sizeof(const char *));
        for (i = 0; i < n; i++)
            APR_ARRAY_PUSH(parts, const char *) = apr_pstrcat(
                p, lines[i].updated, "\t", lines[i].show, "\t",
                lines[i].resource, "\n", NULL);
        text = apr_array_pstrcat(p, parts, 0);
        rv = pc->prov->store(pc->inst, app->s, key, klen,
                             apr_time_now() + CACHE_KEEP,
                             (unsigned char *)text,
                             (unsigned int)strlen(text), p);
    }
    if (rv != APR_SUCCESS && !(n == 0 && rv == APR_NOTFOUND)) {
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, app->s, MX_LOG_TAG "0360: "
                     "%s: cannot write the presence cache (%s)", app->jid,
                     app->conf->presence_cache);
        return -1;
    }
    return 0;
}

static int cache_put(mx_app *app, presence_cache *pc, apr_pool_t *p,
                     const char *addr, const char *contact, const char *from,
                     int available, const char *show)
{
    unsigned int klen;
    unsigned char *key = cache_key(p, app, addr, contact, &klen);
    cache_line *lines = apr_pcalloc(p, sizeof(*lines)
                                       * (MX_STORE_RESOURCES_MAX + 1));
    int n = 0, i, j;

    if (available || strchr(from, '/')) {
        if ((n = cache_read(app, pc, p, key, klen, lines)) < 0)
            return -1;
        for (i = j = 0; i < n; i++) /* this resource's old line goes */
            if (strcmp(lines[i].resource, from))
                lines[j++] = lines[i];
        n = j;
    }
    if (available) {
        if (n >= MX_STORE_RESOURCES_MAX)
            return 0; /* more sessions than any server allows */
        lines[n].updated = apr_psprintf(p, "%020" APR_INT64_T_FMT,
                                        (apr_int64_t)apr_time_now());
        lines[n].show = show;
        lines[n].resource = from;
        n++;
    }
    return cache_write(app, pc, p, key, klen, lines, n);
}

static int cache_get(mx_app *app, presence_cache *pc, apr_pool_t *p,
                     const char *addr, const char *contact, int *available,
                     char *show, size_t showsize)
{
    unsigned int klen;
    unsigned char *key = cache_key(p, app, addr, contact, &klen);
    cache_line *lines = apr_pcalloc(p, sizeof(*lines)
                                       * MX_STORE_RESOURCES_MAX);
    int n = cache_read(app, pc, p, key, klen, lines);
    int newest = n > 0 ? mx_plines_newest(lines, n) : -1;

    if (newest >= 0) {
        *available = 1;
        if (showsize)
            apr_cpystrn(show, lines[newest].show, showsize);
    }
    return n < 0 ? -1 : 0;
}

/* ---- the hosts' shared state ---- */

int mx_store_shared(const mx_app *app)
{
    return app->component
           && mx_conf_state_store(app->conf) == MX_STORE_DBD;
}

typedef struct {
    int bits;
} bits_ud;

static void on_bits(apr_pool_t *p, const apr_dbd_driver_t *d,
                    apr_dbd_row_t *row, void *ud)
{
    const char *f = apr_dbd_get_entry(d, row, 0);
    const char *t = apr_dbd_get_entry(d, row, 1);

    ((bits_ud *)ud)->bits = (f && !strcmp(f, "1") ? MX_STORE_FROM : 0)
                            | (t && !strcmp(t, "1") ? MX_STORE_TO : 0);
}

int mx_store_sub_get(mx_app *app, apr_pool_t *p, const char *address,
                     const char *contact, int *bits)
{
    const char *args[] = { app->jid, address, contact };
    bits_ud b = { 0 };
    int rv = select_rows(app, NULL, p, S_SUB_GET, 3, args,
                         "read a subscription", on_bits, &b);

    *bits = b.bits;
    return rv;
}

int mx_store_sub_change(mx_app *app, apr_pool_t *p, const char *address,
                        const char *contact, int bit, int set)
{
    const char *args[] = { app->jid, address, contact };
    int i = bit == MX_STORE_FROM ? (set ? S_SUB_SET_FROM : S_SUB_CLEAR_FROM)
                                 : (set ? S_SUB_SET_TO : S_SUB_CLEAR_TO);
    int bits;

    if (run(app, p, i, 3, args, "change a subscription") != 0)
        return -1;
    if (set)
        return 0;
    if (run(app, p, S_SUB_DROP, 3, args, "remove a subscription") != 0
        || mx_store_sub_get(app, p, address, contact, &bits) != 0)
        return -1;
    /* its presence is kept only while it is in the address's roster */
    if (!bits && cache_of(app))
        return cache_put(app, cache_of(app), p, address, contact, contact,
                         0, "");
    if (!bits)
        return run(app, p, S_PRES_DEL_ALL, 3, args, "forget a presence");
    return 0;
}

static void on_count(apr_pool_t *p, const apr_dbd_driver_t *d,
                     apr_dbd_row_t *row, void *ud)
{
    const char *v = apr_dbd_get_entry(d, row, 0);

    *(long *)ud = v ? strtol(v, NULL, 10) : 0;
}

int mx_store_sub_count(mx_app *app, apr_pool_t *p, long *n)
{
    const char *args[] = { app->jid };

    *n = 0;
    return select_rows(app, NULL, p, S_SUB_COUNT, 1, args,
                       "count subscriptions", on_count, n);
}

typedef struct {
    mx_app *app;
    mx_store_contact_fn *fn;
    void *ud;
} pairs_ud;

static void on_pair(apr_pool_t *p, const apr_dbd_driver_t *d,
                    apr_dbd_row_t *row, void *ud)
{
    pairs_ud *pu = ud;
    const char *addr = jid_column(d, row, 0), *contact = jid_column(d, row, 1);

    if (!addr || !contact)
        log_skipped(pu->app, "an address or contact that is no lowercased "
                    "bare JID");
    else
        pu->fn(addr, contact, pu->ud);
}

int mx_store_sub_all(mx_app *app, apr_pool_t *p, int bit,
                     mx_store_contact_fn *fn, void *ud)
{
    const char *args[] = { app->jid };
    pairs_ud pu = { app, fn, ud };

    return select_rows(app, NULL, p, bit == MX_STORE_FROM ? S_SUB_ALL_FROM
                       : S_SUB_ALL_TO, 1, args, "read the subscriptions",
                       on_pair, &pu);
}

int mx_store_presence_put(mx_app *app, apr_pool_t *p, const char *address,
                          const char *contact, const char *from,
                          int available, const char *show,
                          const char *status)
{
    const char *args[7] = { app->jid, address, contact, from };
    presence_cache *pc = cache_of(app);
    long others = 0;
    size_t n;

    if (!show || !good_show(show))
        show = "";
    if (pc)
        return cache_put(app, pc, p, address, contact, from, available,
                         available ? show : "");
    if (!available)
        return strchr(from, '/')
               ? run(app, p, S_PRES_DEL, 4, args, "forget a presence")
               : run(app, p, S_PRES_DEL_ALL, 3, args, "forget a presence");
    if (select_rows(app, NULL, p, S_PRES_COUNT, 4, args,
                    "count a contact's resources", on_count, &others) != 0)
        return -1;
    if (others >= MX_STORE_RESOURCES_MAX)
        return 0; /* more sessions than any server allows: not followed */
    n = status ? mx_utf8_prefix(status, strlen(status),
                                MX_PRESENCE_STATUS_MAX) : 0;
    args[4] = show;
    args[5] = apr_pstrndup(p, status ? status : "", n);
    args[6] = apr_psprintf(p, "%020" APR_INT64_T_FMT,
                           (apr_int64_t)apr_time_now());
    return run(app, p, S_PRES_PUT, 7, args, "store a presence");
}

typedef struct {
    mx_app *app;
    int found;
    char *show;
    size_t showsize;
} show_ud;

static void on_show(apr_pool_t *p, const apr_dbd_driver_t *d,
                    apr_dbd_row_t *row, void *ud)
{
    show_ud *su = ud;
    const char *v = apr_dbd_get_entry(d, row, 0);

    if (!v || !good_show(v)) {
        log_skipped(su->app, "a show that is not chat, away, dnd or xa");
        v = "";
    }
    su->found = 1;
    if (su->showsize)
        apr_cpystrn(su->show, v, su->showsize);
}

int mx_store_presence_get(mx_app *app, request_rec *r, apr_pool_t *p,
                          const char *address, const char *jid,
                          int *available, char *show, size_t showsize)
{
    char addr[ADDR_MAX], contact[ADDR_MAX];
    const char *args[] = { app->jid, addr, contact };
    show_ud su = { app, 0, show, showsize };
    int rv;

    *available = 0;
    if (showsize)
        show[0] = '\0';
    if (mx_jid_lower_bare(address && *address ? address : app->jid, addr,
                   sizeof(addr)) != 0
        || mx_jid_lower_bare(jid, contact, sizeof(contact)) != 0)
        return 0; /* the caller checked them: unknown */
    if (cache_of(app))
        return cache_get(app, cache_of(app), p, addr, contact, available,
                         show, showsize);
    rv = select_rows(app, r, p, S_PRES_GET, 3, args, "read a presence",
                     on_show, &su);
    *available = su.found;
    return rv;
}

/* ---- subscribers: the one lookup ---- */

typedef struct {
    mx_store_local_fn *each;
    void *local;
} local_list;

static local_list *locals;   /* per app index, this child's holders' */
static int nlocals;

void mx_store_child_init(apr_pool_t *pchild)
{
    nlocals = mx_apps ? mx_apps->nelts : 0;
    locals = nlocals ? apr_pcalloc(pchild, sizeof(*locals) * nlocals) : NULL;
}

void mx_store_set_local(const mx_app *app, mx_store_local_fn *each,
                        void *local)
{
    if (app->index >= 0 && app->index < nlocals) {
        locals[app->index].each = each;
        locals[app->index].local = local;
    }
}

typedef struct {
    mx_store_contact_fn *fn;
    void *ud;
} only_ud;

int mx_store_subscribers(mx_app *app, apr_pool_t *p, const char *address,
                         mx_store_contact_fn *fn, void *ud)
{
    char addr[ADDR_MAX];

    if (mx_jid_lower_bare(address && *address ? address : app->jid, addr,
                   sizeof(addr)) != 0)
        return 0; /* not one of ours: nobody */
    if (mx_store_shared(app)) {
        const char *args[] = { app->jid, addr };
        pairs_ud pu = { app, fn, ud };

        return select_rows(app, NULL, p, S_SUB_OF, 2, args,
                           "read the subscribers", on_pair, &pu);
    }
    if (app->index >= 0 && app->index < nlocals && locals[app->index].each)
        locals[app->index].each(locals[app->index].local, addr, fn, ud);
    return 0;
}

/* ---- configuration ---- */

/* Whether a DBDriver is set among the directives from node on (one level,
 * and inside <IfModule>, <IfDefine>, <IfFile>...; not in other virtual
 * hosts). */
static int has_driver(const ap_directive_t *node)
{
    for (; node; node = node->next) {
        if (!strcasecmp(node->directive, "DBDriver"))
            return 1;
        if (node->first_child && strcasecmp(node->directive, "<VirtualHost")
            && !strncasecmp(node->directive, "<If", 3)
            && has_driver(node->first_child))
            return 1;
    }
    return 0;
}

/* The <VirtualHost> section of sv (found by its file and line) */
static const ap_directive_t *vhost_section(const ap_directive_t *node,
                                           const server_rec *sv)
{
    const ap_directive_t *found;

    for (; node; node = node->next) {
        if (!strcasecmp(node->directive, "<VirtualHost")
            && node->line_num == (int)sv->defn_line_number
            && node->filename && sv->defn_name
            && !strcmp(node->filename, sv->defn_name))
            return node;
        if (node->first_child
            && (found = vhost_section(node->first_child, sv)))
            return found;
    }
    return NULL;
}

/* The provider of "name[:args]", its args into *args */
static const ap_socache_provider_t *cache_provider(apr_pool_t *p,
                                                   const char *spec,
                                                   const char **name,
                                                   const char **args)
{
    const char *colon = strchr(spec, ':');

    *name = colon ? apr_pstrndup(p, spec, (apr_size_t)(colon - spec)) : spec;
    *args = colon ? colon + 1 : "";
    return ap_lookup_provider(AP_SOCACHE_PROVIDER_GROUP, *name,
                              AP_SOCACHE_PROVIDER_VERSION);
}

/* XMPPPresenceCache of sv: refused (logged) unless it can work. OK or an
 * error; the instance into *inst when inst is given. */
static int check_cache(apr_pool_t *pconf, apr_pool_t *ptemp, server_rec *sv,
                       mx_srv_conf *c, const ap_socache_provider_t **prov,
                       ap_socache_instance_t **inst)
{
    const char *name, *args, *err;
    ap_socache_instance_t *tmp;

    if (mx_conf_state_store(c) != MX_STORE_DBD) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, sv, MX_LOG_TAG "0361: "
                     "XMPPEngine On (%s): %s is for %s dbd (the hosts' "
                     "shared state); one host keeps presence in its spool: "
                     "remove %s or add %s dbd", c->defined_in,
                     MX_CMD_PRESENCE_CACHE, MX_CMD_STATE_STORE,
                     MX_CMD_PRESENCE_CACHE, MX_CMD_STATE_STORE);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (!(*prov = cache_provider(ptemp, c->presence_cache, &name, &args))) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, sv, MX_LOG_TAG "0362: "
                     "XMPPEngine On (%s): %s %s: no mod_socache provider "
                     "'%s'; load it (LoadModule socache_%s_module), e.g. "
                     "redis or memcache", c->defined_in,
                     MX_CMD_PRESENCE_CACHE, c->presence_cache, name, name);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if ((*prov)->flags & AP_SOCACHE_FLAG_NOTMPSAFE) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, sv, MX_LOG_TAG "0363: "
                     "XMPPEngine On (%s): %s %s: '%s' is a cache of one "
                     "machine that needs a lock, not one the hosts share; "
                     "use redis or memcache", c->defined_in,
                     MX_CMD_PRESENCE_CACHE, c->presence_cache, name);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if ((err = (*prov)->create(inst ? inst : &tmp, args, ptemp, pconf))) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, sv, MX_LOG_TAG "0364: "
                     "XMPPEngine On (%s): %s %s: %s", c->defined_in,
                     MX_CMD_PRESENCE_CACHE, c->presence_cache, err);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    return OK;
}

static int store_check_config(apr_pool_t *pconf, apr_pool_t *plog,
                              apr_pool_t *ptemp, server_rec *s)
{
    server_rec *sv;
    const ap_socache_provider_t *prov;

    for (sv = s; sv; sv = sv->next) {
        mx_srv_conf *c = mx_conf(sv);
        const ap_directive_t *vh;

        if (c->engine != 1)
            continue;
        if (c->presence_cache
            && check_cache(pconf, ptemp, sv, c, &prov, NULL) != OK)
            return HTTP_INTERNAL_SERVER_ERROR;
        if (mx_conf_state_store(c) != MX_STORE_DBD)
            continue;
        if (!mx_conf_is_component(c)) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, sv, MX_LOG_TAG "0356: "
                         "XMPPEngine On (%s): %s dbd is for component mode "
                         "(%s); in client mode the XMPP server keeps the "
                         "roster and gives every session the presence: "
                         "remove %s", c->defined_in, MX_CMD_STATE_STORE,
                         MX_CMD_COMPONENT, MX_CMD_STATE_STORE);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        if (!ap_find_linked_module("mod_dbd.c")) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, sv, MX_LOG_TAG "0357: "
                         "XMPPEngine On (%s): %s dbd needs mod_dbd: add "
                         "LoadModule dbd_module (a2enmod dbd)",
                         c->defined_in, MX_CMD_STATE_STORE);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        vh = sv->is_virtual ? vhost_section(ap_conftree, sv) : NULL;
        if (!has_driver(ap_conftree) && !(vh && has_driver(vh->first_child))) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, sv, MX_LOG_TAG "0358: "
                         "XMPPEngine On (%s): %s dbd needs mod_dbd's "
                         "DBDriver (pgsql for several hosts, sqlite3 for "
                         "one) and DBDParams, in the server or this virtual "
                         "host", c->defined_in, MX_CMD_STATE_STORE);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    return OK;
}

static apr_status_t cache_destroy(void *data)
{
    presence_cache *pc = data;

    if (pc->inst)
        pc->prov->destroy(pc->inst, pc->s);
    pc->inst = NULL;
    return APR_SUCCESS;
}

/* Every app's presence cache, made and started (after mod_xmpp.c made
 * the apps) */
static int store_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                             apr_pool_t *ptemp, server_rec *s)
{
    struct ap_socache_hints hints = { 64, 512, apr_time_from_sec(600) };
    apr_status_t rv;
    int i;

    caches = NULL;
    ncaches = mx_apps ? mx_apps->nelts : 0;
    if (ncaches)
        caches = apr_pcalloc(pconf, sizeof(*caches) * ncaches);
    for (i = 0; i < ncaches; i++) {
        mx_app *app = APR_ARRAY_IDX(mx_apps, i, mx_app *);
        presence_cache *pc = &caches[i];

        if (!app->conf->presence_cache || !app->component)
            continue;
        pc->s = app->s;
        if (check_cache(pconf, ptemp, app->s, app->conf, &pc->prov,
                        &pc->inst) != OK)
            return HTTP_INTERNAL_SERVER_ERROR;
        rv = pc->prov->init(pc->inst, "mod_xmpp-presence", &hints, app->s,
                            pconf);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, rv, app->s, MX_LOG_TAG
                         "0365: %s: cannot start the presence cache %s",
                         app->jid, app->conf->presence_cache);
            pc->inst = NULL;
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        apr_pool_cleanup_register(pconf, pc, cache_destroy,
                                  apr_pool_cleanup_null);
    }
    return OK;
}

static void store_optional_fns(void)
{
    dbd_open = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_open);
    dbd_close = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_close);
    dbd_acquire = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_acquire);
}

void mx_store_register_hooks(apr_pool_t *p)
{
    ap_hook_check_config(store_check_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(store_post_config, NULL, NULL, APR_HOOK_LAST);
    ap_hook_optional_fn_retrieve(store_optional_fns, NULL, NULL,
                                 APR_HOOK_MIDDLE);
}
