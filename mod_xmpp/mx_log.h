/* SPDX-License-Identifier: Apache-2.0 */
/* mx_log: how the portable core logs. The core has no httpd: its lines go
 * to a function the glue sets once (mx_log_set, to one that calls
 * ap_log_error); without one they go nowhere. Each line names the object
 * it is about (ctx, given by whoever created it: the glue's app), so the
 * glue can log it for the right virtual host.
 * Portable: no httpd, no APR. */
#ifndef MX_LOG_H
#define MX_LOG_H

#ifndef MX_LOG_TAG
#define MX_LOG_TAG "XMPP" /* as the glue's (mod_xmpp_app.h) */
#endif

/* the levels of syslog, which are httpd's APLOG_* numbers too */
#define MX_LOG_ERR     3
#define MX_LOG_WARNING 4
#define MX_LOG_NOTICE  5
#define MX_LOG_INFO    6
#define MX_LOG_DEBUG   7

/* msg is the whole line, its tag included ("XMPP0260: ...") */
typedef void mx_log_fn(void *baton, void *ctx, int level, const char *msg);

/* Where the core's lines go from now on (NULL: nowhere). */
void mx_log_set(mx_log_fn *fn, void *baton);

/* Log a line about ctx (printf-style; cut at 1 KiB). */
void mx_log(void *ctx, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
