/* SPDX-License-Identifier: Apache-2.0 */
/* mod_xmpp_api: optional functions, the xmpp-api handler, CGI variables */
#ifndef MOD_XMPP_API_H
#define MOD_XMPP_API_H

#include "httpd.h"

#include "mod_xmpp_app.h"

/* Read a urlencoded form body with httpd's own ap_parse_form_data (at
 * most max bytes), calling add for each field in order. OK, or an HTTP
 * status. */
int mx_read_form(request_rec *r, apr_size_t max,
                 void (*add)(void *baton, const char *name,
                             const char *value),
                 void *baton);

/* Why r looks made by another site's page in a browser (its
 * Sec-Fetch-Site is not same-origin or none; else an Origin that is not
 * r's own scheme://host[:port]), or NULL. Requests with neither header
 * (curl, scripts, servers) are not. Logging is the caller's. */
const char *mx_cross_site(request_rec *r);

void mx_api_register_hooks(apr_pool_t *p);

#endif
