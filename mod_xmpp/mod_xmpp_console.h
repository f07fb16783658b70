/* SPDX-License-Identifier: Apache-2.0 */
/* mod_xmpp_console: "SetHandler xmpp-console" */
#ifndef MOD_XMPP_CONSOLE_H
#define MOD_XMPP_CONSOLE_H

#include "httpd.h"

void mx_console_register_hooks(apr_pool_t *p);

#endif
