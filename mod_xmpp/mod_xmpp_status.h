/* SPDX-License-Identifier: Apache-2.0 */
/* mod_xmpp_status: the mod_xmpp section of /server-status */
#ifndef MOD_XMPP_STATUS_H
#define MOD_XMPP_STATUS_H

#include "httpd.h"

#include "mod_xmpp_app.h"

void mx_status_register_hooks(apr_pool_t *p);

#endif
