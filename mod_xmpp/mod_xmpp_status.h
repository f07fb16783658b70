/* mod_xmpp_status: the mod_xmpp section of /server-status */
#ifndef MOD_XMPP_STATUS_H
#define MOD_XMPP_STATUS_H

#include "httpd.h"

#include "mod_xmpp_app.h"

/* Correct a snapshot of the shared record whose holder died without a
 * word (kill -9, a crash): idle, with a last error that says so. Every
 * page that shows the state uses it, so that they agree. */
void mx_status_check_holder(mx_shared *snap);

void mx_status_register_hooks(apr_pool_t *p);

#endif
