/* SPDX-License-Identifier: Apache-2.0 */
/* mod_xmpp_app: the registry of apps and the state they share between
 * httpd's children. Every glue file finds its app and reads or publishes
 * the shared record here, so none of them has to call into another's
 * hooks for it. */
#include <errno.h>
#include <signal.h>
#include <string.h>

#include "apr_strings.h"
#include "httpd.h"

#include "mod_xmpp_app.h"

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

/* A holder killed with -9 cannot say it is gone: notice it here, so the
 * page does not show a dead connection as connected. */
void mx_shared_check_holder(mx_shared *snap)
{
    if (snap->holder_pid > 0 && snap->state != MX_ST_IDLE
        && snap->state != MX_ST_STOPPED
        && kill((pid_t)snap->holder_pid, 0) != 0 && errno == ESRCH) {
        apr_snprintf(snap->last_error, sizeof(snap->last_error),
                     "the holding child (pid %" APR_INT64_T_FMT ") is gone; "
                     "another child takes over", snap->holder_pid);
        snap->state = MX_ST_IDLE;
        snap->connected_since = 0;
    }
}

/* ---- the app of a server ---- */

mx_app *mx_app_of(const server_rec *s)
{
    int i;

    for (i = 0; mx_apps && i < mx_apps->nelts; i++) {
        mx_app *app = APR_ARRAY_IDX(mx_apps, i, mx_app *);

        if (app->s == s)
            return app;
    }
    return NULL;
}

/* A request in a server that is no app uses the only app there is, if
 * there is exactly one: the common single-app setup needs no thought. */
mx_app *mx_app_for_request(request_rec *r)
{
    mx_app *app = mx_app_of(r->server);

    if (!app && mx_apps && mx_apps->nelts == 1)
        app = APR_ARRAY_IDX(mx_apps, 0, mx_app *);
    return app;
}
