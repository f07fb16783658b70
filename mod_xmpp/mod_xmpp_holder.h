/* SPDX-License-Identifier: Apache-2.0 */
/* mod_xmpp_holder: in every child, one thread per app competes for the
 * app's lock; the winner (the holder) runs the app's XMPP connection. */
#ifndef MOD_XMPP_HOLDER_H
#define MOD_XMPP_HOLDER_H

#include "httpd.h"

/* child_init: start the election threads of all apps */
void mx_holder_child_init(apr_pool_t *pchild, server_rec *s);

/* child_stopping: ask the threads to close their connections cleanly */
void mx_holder_child_stopping(apr_pool_t *pchild, int graceful);

#endif
