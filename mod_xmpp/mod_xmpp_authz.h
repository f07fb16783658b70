/* SPDX-License-Identifier: Apache-2.0 */
/* mod_xmpp_authz: "Require xmpp-internal" */
#ifndef MOD_XMPP_AUTHZ_H
#define MOD_XMPP_AUTHZ_H

#include "httpd.h"

/* What mod_xmpp puts first in the module config of a connection it made
 * for an inbound stanza. Nothing a client sends can set it: it lives in
 * conn_config, and the marker's value is an address in this module. */
typedef struct {
    const void *magic;          /* mx_authz_marker */
} mx_conn_mark;

extern const char mx_authz_marker[];

/* 1 when c is a connection mod_xmpp made for an inbound stanza */
int mx_authz_is_internal(const conn_rec *c);

void mx_authz_register_hooks(apr_pool_t *p);

#endif
