/* mod_xmpp: App Engine's XMPP service for any httpd.
 *
 * Each server or virtual host with "XMPPEngine On" is an app with one XMPP
 * session, held by one child at a time (mod_xmpp_holder.c). This file holds
 * the module declaration and the hooks that tie the parts together. */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "apr_lib.h"
#include "apr_strings.h"
#include "apr_shm.h"
#include "apr_file_io.h"
#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "mpm_common.h"
#include "unixd.h"

#include "mod_xmpp_api.h"
#include "mod_xmpp_app.h"
#include "mod_xmpp_authz.h"
#include "mod_xmpp_config.h"
#include "mod_xmpp_console.h"
#include "mod_xmpp_holder.h"
#include "mod_xmpp_inbound.h"
#include "mod_xmpp_status.h"

apr_array_header_t *mx_apps;

/* ---- shared state ---- */

const char *mx_state_name(mx_state st)
{
    static const char *const names[] = {
        "idle", "connecting", "connected", "backing off", "dev mode",
        "stopped"
    };
    return (unsigned)st < sizeof(names) / sizeof(names[0]) ? names[st]
                                                          : "unknown";
}

void mx_shared_begin(mx_shared *sh)
{
    __atomic_add_fetch(&sh->seq, 1, __ATOMIC_ACQ_REL);
}

void mx_shared_end(mx_shared *sh)
{
    __atomic_add_fetch(&sh->seq, 1, __ATOMIC_ACQ_REL);
}

void mx_shared_read(const mx_shared *sh, mx_shared *out)
{
    apr_uint32_t before;
    int tries = 0;

    do {
        before = __atomic_load_n(&sh->seq, __ATOMIC_ACQUIRE);
        memcpy(out, (const void *)sh, sizeof(*out));
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
    } while ((before & 1 || before != __atomic_load_n(&sh->seq,
                                                      __ATOMIC_ACQUIRE))
             && ++tries < 100);
    out->server[sizeof(out->server) - 1] = '\0';
    out->last_error[sizeof(out->last_error) - 1] = '\0';
}

void mx_traffic_add(mx_shared *sh, char dir, const char *kind,
                    const char *peer, const char *text)
{
    mx_traffic *t;

    mx_shared_begin(sh);
    t = &sh->traffic[sh->traffic_next % MX_TRAFFIC_N];
    t->when = apr_time_now();
    t->dir = dir;
    apr_cpystrn(t->kind, kind ? kind : "", sizeof(t->kind));
    apr_cpystrn(t->peer, peer ? peer : "", sizeof(t->peer));
    apr_cpystrn(t->text, text ? text : "", sizeof(t->text));
    sh->traffic_next++;
    mx_shared_end(sh);
}

/* ---- start-up ---- */

/* A name for the app's spool subdirectory: the JID, with anything but
 * [A-Za-z0-9@._-] turned into '_'. */
static const char *app_key(apr_pool_t *p, const char *jid)
{
    char *k = apr_pstrdup(p, jid), *c;

    for (c = k; *c; c++)
        if (!apr_isalnum(*c) && !strchr("@._-", *c))
            *c = '_';
    return k;
}

/* The password file is read once, by the parent (usually root), so it can
 * be readable by root alone, as it should be. */
static const char *read_secret(apr_pool_t *p, server_rec *s, const char *path,
                               const char *directive, const char *what)
{
    apr_file_t *f;
    apr_finfo_t fi;
    char buf[1024];
    apr_size_t n = sizeof(buf) - 1;
    apr_status_t rv;

    rv = apr_file_open(&f, path, APR_FOPEN_READ, 0, p);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s, MX_LOG_TAG "0001: %s %s "
                     "cannot be read", directive, path);
        return NULL;
    }
    /* warned once: not in the first of the two passes over the config */
    if (ap_state_query(AP_SQ_MAIN_STATE) != AP_SQ_MS_CREATE_PRE_CONFIG
        && apr_file_info_get(&fi, APR_FINFO_PROT, f) == APR_SUCCESS
        && (fi.protection & APR_FPROT_WREAD))
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, MX_LOG_TAG "0002: %s %s "
                     "is readable by every user; make it readable by root "
                     "only (chmod 600)", directive, path);
    rv = apr_file_read_full(f, buf, n, &n);
    apr_file_close(f);
    if (rv != APR_SUCCESS && rv != APR_EOF) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s, MX_LOG_TAG "0003: %s %s "
                     "cannot be read", directive, path);
        return NULL;
    }
    /* the secret is the first line, without trailing white space */
    buf[n] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    while (n > 0 && buf[0] && apr_isspace(buf[strlen(buf) - 1]))
        buf[strlen(buf) - 1] = '\0';
    if (!buf[0]) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, MX_LOG_TAG "0004: %s %s "
                     "is empty: put the %s on its first line",
                     directive, path, what);
        return NULL;
    }
    return apr_pstrdup(p, buf);
}

/* Spool files are created by children, which run as User: hand the
 * directories (and the lock file) to that user when we start as root. */
static apr_status_t make_owned(apr_pool_t *p, const char *path, int is_dir)
{
    apr_status_t rv;
    apr_file_t *f;

    if (is_dir)
        rv = apr_dir_make_recursive(path, APR_FPROT_UREAD | APR_FPROT_UWRITE
                                    | APR_FPROT_UEXECUTE, p);
    else if ((rv = apr_file_open(&f, path, APR_FOPEN_CREATE | APR_FOPEN_WRITE,
                                 APR_FPROT_UREAD | APR_FPROT_UWRITE, p))
             == APR_SUCCESS)
        apr_file_close(f);
    if (rv == APR_SUCCESS && geteuid() == 0
        && chown(path, ap_unixd_config.user_id, ap_unixd_config.group_id))
        rv = APR_FROM_OS_ERROR(errno);
    return rv;
}

static int prepare_dir(apr_pool_t *p, server_rec *s, mx_app *app)
{
    static const char *const subdirs[] = { "", "/new", "/tmp", "/presence",
                                           NULL };
    /* XMPPSpoolDir itself is mod_xmpp's: User must be able to enter it */
    const char *path = mx_conf_spool_dir(app->conf);
    apr_status_t rv = make_owned(p, path, 1);
    int i;

    for (i = 0; subdirs[i] && rv == APR_SUCCESS; i++) {
        path = apr_pstrcat(p, app->dir, subdirs[i], NULL);
        rv = make_owned(p, path, 1);
    }
    if (rv == APR_SUCCESS)
        rv = make_owned(p, path = app->lock_path, 0);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s, MX_LOG_TAG "0005: %s: "
                     "cannot create %s, owned by the server's User "
                     "(XMPPSpoolDir)", app->jid, path);
        return 0;
    }
    return 1;
}

static mx_app *make_app(apr_pool_t *p, server_rec *s, mx_srv_conf *c, int idx)
{
    mx_app *app = apr_pcalloc(p, sizeof(*app));

    app->index = idx;
    app->s = s;
    app->conf = c;
    app->component = mx_conf_is_component(c);
    app->jid = app->component ? c->component : c->jid;
    app->full_jid = apr_pstrcat(p, app->jid, "/", mx_conf_resource(c), NULL);
    app->key = app_key(p, app->jid);
    app->dir = apr_pstrcat(p, mx_conf_spool_dir(c), "/", app->key, NULL);
    app->lock_path = apr_pstrcat(p, app->dir, "/holder.lock", NULL);
    app->password = app->component
        ? read_secret(p, s, c->component_secret_file, MX_CMD_COMPONENT_SECRET,
                      "secret")
        : read_secret(p, s, c->password_file, MX_CMD_PASSWORD_FILE,
                      "password");
    if (!app->password || !prepare_dir(p, s, app))
        return NULL;
    return app;
}

static int same_app(const mx_srv_conf *a, const mx_srv_conf *b)
{
    const char *ja = mx_conf_is_component(a) ? a->component : a->jid;
    const char *jb = mx_conf_is_component(b) ? b->component : b->jid;

    return ja && jb && !strcasecmp(ja, jb);
}

/* Client mode (one account) and component mode (a whole domain) are two
 * identities: an app has one. */
static int both_modes(const mx_srv_conf *c)
{
    return (c->jid || c->password_file) && mx_conf_is_component(c);
}

/* Exactly one of the two modes, complete. NULL when fine, else what to
 * say after "XMPPEngine On (file:line) ". */
static const char *mode_problem(apr_pool_t *p, const mx_srv_conf *c)
{
    int client = c->jid || c->password_file;

    if (mx_conf_is_component(c)) {
        if (c->component && c->component_secret_file)
            return NULL;
        return apr_pstrcat(p, "needs ", c->component ? MX_CMD_COMPONENT_SECRET
                           : MX_CMD_COMPONENT, " (component mode)", NULL);
    }
    if (!client)
        return "needs " MX_CMD_JID " and " MX_CMD_PASSWORD_FILE " (client "
               "mode) or " MX_CMD_COMPONENT " and " MX_CMD_COMPONENT_SECRET
               " (component mode)";
    if (c->jid && c->password_file)
        return NULL;
    return apr_pstrcat(p, "needs ", !c->jid ? MX_CMD_JID
                       : MX_CMD_PASSWORD_FILE, NULL);
}

/* What only the whole configuration can tell; run by configtest too. */
static int mx_check_config(apr_pool_t *pconf, apr_pool_t *plog,
                           apr_pool_t *ptemp, server_rec *s)
{
    server_rec *sv, *other;
    const char *why;

    for (sv = s; sv; sv = sv->next) {
        mx_srv_conf *c = mx_conf(sv);

        if (c->engine != 1)
            continue;
        if (both_modes(c)) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, sv, MX_LOG_TAG "0030: "
                         "XMPPEngine On (%s) has both client mode (%s, %s) "
                         "and component mode (%s, %s); an app is one or the "
                         "other: remove one pair", c->defined_in, MX_CMD_JID,
                         MX_CMD_PASSWORD_FILE, MX_CMD_COMPONENT,
                         MX_CMD_COMPONENT_SECRET);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        if ((why = mode_problem(ptemp, c)) != NULL) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, sv, MX_LOG_TAG "0007: "
                         "XMPPEngine On (%s) %s", c->defined_in, why);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        for (other = s; other != sv; other = other->next) {
            mx_srv_conf *oc = mx_conf(other);

            if (oc->engine == 1 && same_app(oc, c)) {
                ap_log_error(APLOG_MARK, APLOG_EMERG, 0, sv, MX_LOG_TAG
                             "0008: %s is the app of two servers (%s and "
                             "%s); give each its own XMPPJID or "
                             "XMPPComponent",
                             mx_conf_is_component(c) ? c->component : c->jid,
                             oc->defined_in, c->defined_in);
                return HTTP_INTERNAL_SERVER_ERROR;
            }
        }
    }
    return OK;
}

static int mx_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                          apr_pool_t *ptemp, server_rec *s)
{
    apr_shm_t *shm;
    apr_status_t rv;
    mx_shared *sh;
    server_rec *sv;
    mx_app *app;
    int i;

    mx_apps = apr_array_make(pconf, 2, sizeof(mx_app *));
    for (sv = s; sv; sv = sv->next) {
        mx_srv_conf *c = mx_conf(sv);

        if (c->engine != 1)
            continue;
        if (!(app = make_app(pconf, sv, c, mx_apps->nelts)))
            return HTTP_INTERNAL_SERVER_ERROR;
        APR_ARRAY_PUSH(mx_apps, mx_app *) = app;
    }
    if (mx_apps->nelts == 0)
        return OK;
    rv = apr_shm_create(&shm, sizeof(mx_shared) * mx_apps->nelts, NULL, pconf);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s, MX_LOG_TAG "0009: "
                     "cannot create shared memory for the status");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    sh = apr_shm_baseaddr_get(shm);
    memset(sh, 0, sizeof(mx_shared) * mx_apps->nelts);
    for (i = 0; i < mx_apps->nelts; i++)
        APR_ARRAY_IDX(mx_apps, i, mx_app *)->shared = sh + i;
    return OK;
}

static void mx_child_init(apr_pool_t *pchild, server_rec *s)
{
    if (!mx_apps || mx_apps->nelts == 0)
        return;
    mx_inbound_child_init(pchild);
    mx_holder_child_init(pchild, s);
}

static void mx_register_hooks(apr_pool_t *p)
{
    ap_hook_check_config(mx_check_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(mx_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(mx_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_stopping(mx_holder_child_stopping, NULL, NULL,
                           APR_HOOK_MIDDLE);
    mx_status_register_hooks(p);
    mx_authz_register_hooks(p);
    mx_api_register_hooks(p);
    mx_inbound_register_hooks(p);
    mx_console_register_hooks(p);
}

AP_DECLARE_MODULE(xmpp) = {
    STANDARD20_MODULE_STUFF,
    NULL,               /* per-directory config */
    NULL,
    mx_create_srv_conf,
    mx_merge_srv_conf,
    mx_cmds,
    mx_register_hooks,
    AP_MODULE_FLAG_NONE
};
