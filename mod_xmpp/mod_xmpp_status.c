/* SPDX-License-Identifier: Apache-2.0 */
/* mod_xmpp_status: per app state on /server-status (HTML and ?auto),
 * read from the record the holding child publishes in shared memory, so
 * that any child can answer. Nothing secret is in that record. */

#include "httpd.h"
#include "apr_strings.h"
#include "apr_optional_hooks.h"
#include "http_protocol.h"
#include "mod_status.h"

#include "mod_xmpp_app.h"
#include "mod_xmpp_status.h"

/* ?auto keys are XMPPApp<n><Field>, n from 1 in configuration order */
static void status_auto(request_rec *r, const mx_app *app, const mx_shared *sh)
{
    apr_time_t now = apr_time_now();
    int n = app->index + 1;

    ap_rprintf(r, "XMPPApp%dJID: %s\n", n, app->jid);
    ap_rprintf(r, "XMPPApp%dMode: %s\n", n,
               app->component ? "component" : "client");
    ap_rprintf(r, "XMPPApp%dState: %s\n", n, mx_state_name(sh->state));
    ap_rprintf(r, "XMPPApp%dServer: %s\n", n, sh->server);
    ap_rprintf(r, "XMPPApp%dConnectedSince: %" APR_TIME_T_FMT "\n", n,
               sh->connected_since ? apr_time_sec(sh->connected_since) : 0);
    ap_rprintf(r, "XMPPApp%dConnectedSeconds: %" APR_TIME_T_FMT "\n", n,
               sh->connected_since ? apr_time_sec(now - sh->connected_since)
                                   : 0);
    ap_rprintf(r, "XMPPApp%dReconnects: %" APR_UINT64_T_FMT "\n", n,
               sh->reconnects);
    ap_rprintf(r, "XMPPApp%dQueued: %" APR_UINT64_T_FMT "\n", n, sh->queued);
    ap_rprintf(r, "XMPPApp%dSent: %" APR_UINT64_T_FMT "\n", n, sh->sent);
    ap_rprintf(r, "XMPPApp%dReceived: %" APR_UINT64_T_FMT "\n", n,
               sh->received);
    ap_rprintf(r, "XMPPApp%dFailed: %" APR_UINT64_T_FMT "\n", n, sh->failed);
    ap_rprintf(r, "XMPPApp%dInboundWaiting: %" APR_UINT64_T_FMT "\n", n,
               sh->in_waiting);
    ap_rprintf(r, "XMPPApp%dInboundRunning: %" APR_UINT64_T_FMT "\n", n,
               sh->in_running);
    ap_rprintf(r, "XMPPApp%dInboundRetried: %" APR_UINT64_T_FMT "\n", n,
               sh->in_retried);
    ap_rprintf(r, "XMPPApp%dInboundFailed: %" APR_UINT64_T_FMT "\n", n,
               sh->in_failed);
    ap_rprintf(r, "XMPPApp%dHolderPID: %" APR_INT64_T_FMT "\n", n,
               sh->holder_pid);
    ap_rprintf(r, "XMPPApp%dLastError: %s\n", n, sh->last_error);
}

static void status_html(request_rec *r, const mx_app *app, const mx_shared *sh)
{
    char since[APR_RFC822_DATE_LEN] = "-";

    if (sh->connected_since)
        apr_rfc822_date(since, sh->connected_since);
    ap_rprintf(r,
               "<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td>"
               "<td>%" APR_UINT64_T_FMT "</td><td>%" APR_UINT64_T_FMT "</td>"
               "<td>%" APR_UINT64_T_FMT "</td><td>%" APR_UINT64_T_FMT "</td>"
               "<td>%" APR_UINT64_T_FMT "</td>"
               "<td>%" APR_UINT64_T_FMT " / %" APR_UINT64_T_FMT " / %"
               APR_UINT64_T_FMT " / %" APR_UINT64_T_FMT "</td>"
               "<td>%s</td></tr>\n",
               ap_escape_html(r->pool, app->component
                              ? apr_pstrcat(r->pool, app->jid,
                                            " (component: every address "
                                            "of the domain)", NULL)
                              : app->jid),
               mx_state_name(sh->state),
               ap_escape_html(r->pool, sh->server), since, sh->reconnects,
               sh->queued, sh->sent, sh->received, sh->failed,
               sh->in_waiting, sh->in_running, sh->in_retried, sh->in_failed,
               ap_escape_html(r->pool, sh->last_error));
}

static int mx_status_hook(request_rec *r, int flags)
{
    mx_shared snap;
    int i;

    if (!mx_apps || mx_apps->nelts == 0)
        return OK;
    if (!(flags & AP_STATUS_SHORT))
        ap_rputs("<hr>\n<h2>mod_xmpp</h2>\n<table border=\"1\"><tr>"
                 "<th>App</th><th>State</th><th>Server</th>"
                 "<th>Connected since</th><th>Reconnects</th><th>Queued</th>"
                 "<th>Sent</th><th>Received</th><th>Failed</th>"
                 "<th>Inbound waiting / running / retried / failed</th>"
                 "<th>Last error</th></tr>\n", r);
    for (i = 0; i < mx_apps->nelts; i++) {
        const mx_app *app = APR_ARRAY_IDX(mx_apps, i, mx_app *);

        mx_shared_read(app->shared, &snap);
        mx_shared_check_holder(&snap);
        if (flags & AP_STATUS_SHORT)
            status_auto(r, app, &snap);
        else
            status_html(r, app, &snap);
    }
    if (!(flags & AP_STATUS_SHORT))
        ap_rputs("</table>\n", r);
    return OK;
}

void mx_status_register_hooks(apr_pool_t *p)
{
    APR_OPTIONAL_HOOK(ap, status_hook, mx_status_hook, NULL, NULL,
                      APR_HOOK_MIDDLE);
}
