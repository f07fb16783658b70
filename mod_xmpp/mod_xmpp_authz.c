/* SPDX-License-Identifier: Apache-2.0 */
/* mod_xmpp_authz: the "xmpp-internal" authorization provider. It grants
 * access only to requests that mod_xmpp injected for inbound stanzas; they
 * are recognized by a marker in their connection's module config, which no
 * header, query string or body can forge. */
#include "httpd.h"
#include "http_config.h"
#include "http_request.h"
#include "mod_auth.h"

#include "mod_xmpp_authz.h"

extern module AP_MODULE_DECLARE_DATA xmpp_module;

const char mx_authz_marker[] = "mod_xmpp inbound";

int mx_authz_is_internal(const conn_rec *c)
{
    const mx_conn_mark *mark = ap_get_module_config(c->conn_config,
                                                    &xmpp_module);

    return mark && mark->magic == mx_authz_marker;
}

static authz_status internal_check(request_rec *r, const char *require_line,
                                   const void *parsed)
{
    return mx_authz_is_internal(r->connection) ? AUTHZ_GRANTED
                                               : AUTHZ_DENIED;
}

/* "Require xmpp-internal" takes no argument: refuse one at configtest,
 * since a reader could take "Require xmpp-internal bot@example.org" for
 * a restriction to one app that it is not. */
static const char *internal_parse(cmd_parms *cmd, const char *require_line,
                                  const void **parsed)
{
    if (require_line && *ap_getword_conf(cmd->temp_pool, &require_line))
        return "Require xmpp-internal takes no arguments (it grants "
               "exactly the requests mod_xmpp injects, for any app)";
    return NULL;
}

static const authz_provider internal_provider = {
    internal_check,
    internal_parse,
};

void mx_authz_register_hooks(apr_pool_t *p)
{
    ap_register_auth_provider(p, AUTHZ_PROVIDER_GROUP, "xmpp-internal",
                              AUTHZ_PROVIDER_VERSION, &internal_provider,
                              AP_AUTH_INTERNAL_PER_CONF);
}
