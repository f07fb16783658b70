/* SPDX-License-Identifier: Apache-2.0 */
/* mod_xmpp: App Engine's XMPP service for any httpd.
 *
 * Each server or virtual host with "XMPPEngine On" is an app with one XMPP
 * session, held by one child at a time (mod_xmpp_holder.c). This file holds
 * the module declaration and the hooks that tie the parts together. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
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
#include "mod_xmpp_inject.h"
#include "mod_xmpp_status.h"
#include "mod_xmpp_store.h"

/* ---- start-up ---- */

/* A name for the app's spool subdirectory: the JID, with every byte but
 * [A-Za-z0-9@._-] written as %XX. '%' itself is encoded, so two JIDs never
 * get one name; a JID made of those characters alone keeps the name that
 * earlier versions gave it. */
static const char *app_key(apr_pool_t *p, const char *jid)
{
    static const char hex[] = "0123456789ABCDEF";
    char *k = apr_palloc(p, strlen(jid) * 3 + 1), *o = k;
    const unsigned char *c;

    for (c = (const unsigned char *)jid; *c; c++) {
        if (apr_isalnum(*c) || strchr("@._-", *c)) {
            *o++ = (char)*c;
            continue;
        }
        *o++ = '%';
        *o++ = hex[*c >> 4];
        *o++ = hex[*c & 15];
    }
    *o = '\0';
    return k;
}

/* The name earlier versions gave: anything else turned into '_', so that
 * a+b@x and a_b@x shared one directory (see adopt_old_dir). */
static const char *old_app_key(apr_pool_t *p, const char *jid)
{
    char *k = apr_pstrdup(p, jid), *c;

    for (c = k; *c; c++)
        if (!apr_isalnum((unsigned char)*c) && !strchr("@._-", *c))
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

/* ---- the spool ----
 *
 * The parent usually runs as root, and User owns everything inside an
 * app's directory, so User can replace any entry there by a link (to
 * /etc/shadow, say) between two starts. Hence the parent follows no link in
 * the spool: it opens each step with O_NOFOLLOW relative to the directory
 * it already holds, checks that it got what it expects, and changes only
 * what it opened (fchown). The spool root stays root's, so User cannot
 * replace an app's directory itself either. */

#define MX_DIR_OPEN (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
#define MX_LOCK_NAME "holder.lock"

/* Log why `path` cannot be used; `what` (e.g. "is not a regular file")
 * when it is the wrong kind of entry, else taken from err. */
static void spool_fail(server_rec *s, const char *jid, const char *path,
                       int err, const char *what)
{
    if (!what)
        what = err == ELOOP ? "is a symbolic link"
               : err == ENOTDIR ? "is not a directory" : NULL;
    if (what)
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, MX_LOG_TAG "0010: %s: "
                     "%s %s, which mod_xmpp did not make (it follows no "
                     "link in XMPPSpoolDir): remove it and start httpd "
                     "again", jid, path, what);
    else
        ap_log_error(APLOG_MARK, APLOG_EMERG, APR_FROM_OS_ERROR(err), s,
                     MX_LOG_TAG "0005: %s: cannot create %s, owned by the "
                     "server's User (XMPPSpoolDir)", jid, path);
}

/* A directory opened without following a link; a link gives ELOOP (Linux
 * says ENOTDIR for one opened O_DIRECTORY | O_NOFOLLOW), for the log. */
static int open_dir_at(int dirfd, const char *name)
{
    struct stat st;
    int fd = openat(dirfd, name, MX_DIR_OPEN);

    if (fd < 0 && errno == ENOTDIR
        && fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0
        && S_ISLNK(st.st_mode))
        errno = ELOOP;
    return fd;
}

/* Started as root: the spool root becomes (or stays) root's, without
 * write access for others, and enterable by User (711): children reach
 * their app's directory by its name and never list the root. */
static int take_spool_root(server_rec *s, const char *path, int fd)
{
    struct stat st;
    mode_t want;

    if (fstat(fd, &st) != 0)
        return -1;
    want = (st.st_mode & 0755) | 0711;
    if (st.st_uid != 0 && fchown(fd, 0, (gid_t)-1) != 0)
        return -1;
    if ((st.st_mode & 07777) != want && fchmod(fd, want) != 0)
        return -1;
    if (st.st_uid != 0)
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s, MX_LOG_TAG "0011: "
                     "XMPPSpoolDir %s belonged to uid %ld; it is root's now "
                     "(mode %o): User owns only the apps' directories in it",
                     path, (long)st.st_uid, (unsigned)want);
    return 0;
}

/* XMPPSpoolDir, made if need be and opened; -1 (logged) on failure. The
 * directories above it are the administrator's, and so is a link there. */
static int open_spool_root(apr_pool_t *p, server_rec *s, const mx_app *app)
{
    const char *path = mx_conf_spool_dir(app->conf);
    apr_status_t rv;
    int fd;

    rv = apr_dir_make_recursive(path, APR_FPROT_UREAD | APR_FPROT_UWRITE
                                | APR_FPROT_UEXECUTE | APR_FPROT_GEXECUTE
                                | APR_FPROT_WEXECUTE, p);
    if (rv != APR_SUCCESS) {
        spool_fail(s, app->jid, path, APR_TO_OS_ERROR(rv), NULL);
        return -1;
    }
    if ((fd = open_dir_at(AT_FDCWD, path)) < 0) {
        if (errno == ELOOP)
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, MX_LOG_TAG "0012: "
                         "XMPPSpoolDir %s is a symbolic link: give the real "
                         "path of the directory", path);
        else
            spool_fail(s, app->jid, path, errno, NULL);
        return -1;
    }
    if (geteuid() == 0 && take_spool_root(s, path, fd) != 0) {
        spool_fail(s, app->jid, path, errno, NULL);
        close(fd);
        return -1;
    }
    return fd;
}

/* Children run as User and create the spool's files: hand them what we
 * opened, when we are root. */
static int give_to_user(int fd)
{
    if (geteuid() != 0)
        return 0;
    return fchown(fd, ap_unixd_config.user_id, ap_unixd_config.group_id);
}

static void close_keep_errno(int fd)
{
    int e = errno;

    close(fd);
    errno = e;
}

/* The directory `name` in dirfd, made if need be, opened without following
 * a link and given to User; -1 with errno on failure. */
static int own_dir_at(int dirfd, const char *name)
{
    int fd;

    if (mkdirat(dirfd, name, 0700) != 0 && errno != EEXIST)
        return -1;
    if ((fd = open_dir_at(dirfd, name)) < 0)
        return -1;
    if (give_to_user(fd) != 0) {
        close_keep_errno(fd);
        return -1;
    }
    return fd;
}

/* The holder's lock file in the app's directory: a plain file of its own.
 * Looked at before it is opened, so that no device or FIFO planted there is
 * ever opened; *what says what is wrong with it. */
static int own_lock_at(int dirfd, const char **what)
{
    struct stat before, st;
    int fd, had = fstatat(dirfd, MX_LOCK_NAME, &before, AT_SYMLINK_NOFOLLOW);

    if (had == 0 && !S_ISREG(before.st_mode)) {
        *what = S_ISLNK(before.st_mode) ? "is a symbolic link"
                                        : "is not a regular file";
        return -1;
    }
    fd = openat(dirfd, MX_LOCK_NAME, O_RDWR | O_CREAT | O_NOFOLLOW
                | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    if (fstat(fd, &st) != 0)
        goto fail;
    if (!S_ISREG(st.st_mode)
        || (had == 0 && (st.st_ino != before.st_ino
                         || st.st_dev != before.st_dev)))
        *what = "was replaced while it was being opened";
    else if (st.st_nlink != 1)
        *what = "has other hard links";
    if (*what || give_to_user(fd) != 0)
        goto fail;
    close(fd);
    return 0;
fail:
    close_keep_errno(fd);
    return -1;
}

/* How many apps of this configuration and spool had the directory `old`
 * under earlier versions; 0 when `old` is some app's own name now. */
static int old_name_users(apr_pool_t *p, server_rec *main_s,
                          const mx_app *app, const char *old)
{
    const char *spool = mx_conf_spool_dir(app->conf);
    server_rec *sv;
    int n = 0;

    for (sv = main_s; sv; sv = sv->next) {
        mx_srv_conf *c = mx_conf(sv);

        if (c->engine != 1 || !c->jid
            || strcmp(mx_conf_spool_dir(c), spool))
            continue;
        if (!strcmp(app_key(p, c->jid), old))
            return 0;
        n += !strcmp(old_app_key(p, c->jid), old);
    }
    return n;
}

/* An app whose JID has characters other than [A-Za-z0-9@._-] had another
 * directory name before (old_app_key). When that directory exists and the
 * new one does not, take it over if it was this app's alone (renameat
 * moves the entry, a link included, and follows nothing); else say what to
 * do. */
static void adopt_old_dir(apr_pool_t *p, server_rec *main_s,
                          const mx_app *app, int root)
{
    const char *old = old_app_key(p, app->jid);
    const char *spool = mx_conf_spool_dir(app->conf);
    struct stat st;
    int users;

    if (!strcmp(old, app->key)
        || fstatat(root, old, &st, AT_SYMLINK_NOFOLLOW) != 0
        || !S_ISDIR(st.st_mode)
        || fstatat(root, app->key, &st, AT_SYMLINK_NOFOLLOW) == 0
        || errno != ENOENT)
        return;
    users = old_name_users(p, main_s, app, old);
    if (users == 1 && renameat(root, old, root, app->key) == 0) {
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, app->s, MX_LOG_TAG "0013: "
                     "%s: spool directory %s/%s renamed to %s/%s (the new "
                     "name no other JID can share)", app->jid, spool, old,
                     spool, app->key);
        return;
    }
    ap_log_error(APLOG_MARK, APLOG_WARNING, 0, app->s, MX_LOG_TAG "0014: "
                 "%s: %s/%s, where earlier versions kept this app's queue, "
                 "%s, so it is left as it is; this app now uses %s/%s: with "
                 "httpd stopped, move the spooled files of this app from the "
                 "old new/ there, if any", app->jid, spool, old,
                 users == 0 ? "is another app's directory now"
                 : users > 1 ? "was shared by several apps (their JIDs gave "
                               "one name)"
                 : "could not be renamed", spool, app->key);
}

/* The app's directory, its new/, tmp/ and presence/ and the lock file,
 * all User's; 0 (logged) when one cannot be had. */
static int prepare_dir(apr_pool_t *p, server_rec *main_s, mx_app *app)
{
    static const char *const subdirs[] = { "new", "tmp", "presence", NULL };
    const char *path = app->dir, *what = NULL;
    int root, dir, sub, i, ok = 0;

    if ((root = open_spool_root(p, app->s, app)) < 0)
        return 0;
    adopt_old_dir(p, main_s, app, root);
    if ((dir = own_dir_at(root, app->key)) < 0)
        goto leave;
    for (i = 0; subdirs[i]; i++) {
        path = apr_pstrcat(p, app->dir, "/", subdirs[i], NULL);
        if ((sub = own_dir_at(dir, subdirs[i])) < 0)
            goto leave;
        close(sub);
    }
    path = app->lock_path;
    ok = own_lock_at(dir, &what) == 0;
leave:
    if (!ok)
        spool_fail(app->s, app->jid, path, errno, what);
    if (dir >= 0)
        close(dir);
    close(root);
    return ok;
}

/* XMPPTLS optional takes TLS only when the server offers it, and the offer
 * travels in clear: warned once, not in the first of the two passes. */
static void warn_tls_optional(server_rec *s, const mx_srv_conf *c)
{
    if (mx_conf_is_component(c) || mx_conf_tls(c) != MX_TLS_OPTIONAL
        || ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG)
        return;
    ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, MX_LOG_TAG "0015: %s: "
                 "XMPPTLS optional: anyone on the network path to the XMPP "
                 "server can strip STARTTLS from its offer, then read and "
                 "change the login and every stanza, and impersonate the "
                 "server; set XMPPTLS required (the default)", c->jid);
}

static mx_app *make_app(apr_pool_t *p, server_rec *main_s, server_rec *s,
                        mx_srv_conf *c, int idx)
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
    app->lock_path = apr_pstrcat(p, app->dir, "/" MX_LOCK_NAME, NULL);
    app->password = app->component
        ? read_secret(p, s, c->component_secret_file, MX_CMD_COMPONENT_SECRET,
                      "secret")
        : read_secret(p, s, c->password_file, MX_CMD_PASSWORD_FILE,
                      "password");
    if (!app->password || !prepare_dir(p, main_s, app))
        return NULL;
    warn_tls_optional(s, c);
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
        if (!(app = make_app(pconf, s, sv, c, mx_apps->nelts)))
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
    mx_inject_child_init(pchild);
    mx_store_child_init(pchild);
    mx_holder_child_init(pchild, s);
}

/* Our child_init after mod_dbd's: the holder thread started there may use
 * the shared store (XMPPStateStore dbd) at once, and a child's mod_dbd
 * connections exist only after mod_dbd's child_init. */
static const char *const after_dbd[] = { "mod_dbd.c", NULL };

static void mx_register_hooks(apr_pool_t *p)
{
    ap_hook_check_config(mx_check_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(mx_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(mx_child_init, after_dbd, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_stopping(mx_holder_child_stopping, NULL, NULL,
                           APR_HOOK_MIDDLE);
    mx_status_register_hooks(p);
    mx_authz_register_hooks(p);
    mx_api_register_hooks(p);
    mx_inject_register_hooks(p);
    mx_console_register_hooks(p);
    mx_store_register_hooks(p);
}

AP_DECLARE_MODULE(xmpp) = {
    STANDARD20_MODULE_STUFF,
    NULL,               /* per-directory config */
    NULL,
    mx_create_srv_conf,
    mx_merge_srv_conf,
    mx_cmds,
    mx_register_hooks,
    /* Without it httpd gives a <VirtualHost> with no XMPP directive the
     * main server's record itself, "XMPPEngine On" included: every such
     * vhost would be a second app with the main server's JID. Merged, it
     * gets XMPPEngine unset (mx_merge_srv_conf), so it is no app. */
    AP_MODULE_FLAG_ALWAYS_MERGE
};
