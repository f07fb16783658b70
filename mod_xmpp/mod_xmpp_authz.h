/* mod_xmpp_authz: "Require xmpp-internal" */
#ifndef MOD_XMPP_AUTHZ_H
#define MOD_XMPP_AUTHZ_H

#include "httpd.h"

/* Mark c as a connection mod_xmpp made itself for an inbound stanza.
 * Nothing a client sends can set this: it lives in conn_config. */
void mx_authz_mark_internal(conn_rec *c);

void mx_authz_register_hooks(apr_pool_t *p);

#endif
