/* SPDX-License-Identifier: Apache-2.0 */
/* mod_xmpp configuration: one record per server/virtual host. */
#ifndef MOD_XMPP_CONFIG_H
#define MOD_XMPP_CONFIG_H

#include "httpd.h"
#include "http_config.h"

#include "mx_inbound.h" /* the inbound kinds */

/* Directive names, so that a typo is a compile error, not a silent miss. */
#define MX_CMD_ENGINE          "XMPPEngine"
#define MX_CMD_JID             "XMPPJID"
#define MX_CMD_RESOURCE        "XMPPResource"
#define MX_CMD_PASSWORD_FILE   "XMPPPasswordFile"
#define MX_CMD_SERVER          "XMPPServer"
#define MX_CMD_COMPONENT       "XMPPComponent"
#define MX_CMD_COMPONENT_SECRET "XMPPComponentSecretFile"
#define MX_CMD_TLS             "XMPPTLS"
#define MX_CMD_TLS_CA_FILE     "XMPPTLSCAFile"
#define MX_CMD_TLS_VERIFY      "XMPPTLSVerify"
#define MX_CMD_INBOUND         "XMPPInboundServices"
#define MX_CMD_INBOUND_PATH    "XMPPInboundPath"
#define MX_CMD_SPOOL_DIR       "XMPPSpoolDir"
#define MX_CMD_DEV_MODE        "XMPPDevMode"
#define MX_CMD_QUEUE_LIMIT     "XMPPQueueLimit"
#define MX_CMD_INBOUND_THREADS "XMPPInboundThreads"
#define MX_CMD_INBOUND_QUEUE_LIMIT "XMPPInboundQueueLimit"
#define MX_CMD_INBOUND_RETRY "XMPPInboundRetry"
#define MX_CMD_STATE_STORE    "XMPPStateStore"
#define MX_CMD_PRESENCE_CACHE "XMPPPresenceCache"

#define MX_UNSET (-1)

typedef enum { MX_TLS_REQUIRED = 0, MX_TLS_OPTIONAL, MX_TLS_OFF } mx_tls_policy;

#define MX_DEFAULT_RESOURCE     "bot"
#define MX_DEFAULT_INBOUND      MX_KIND_MESSAGE
#define MX_DEFAULT_INBOUND_PATH "/_ah/xmpp/"
#define MX_CLIENT_PORT          5222
#define MX_COMPONENT_PORT       5347
#define MX_DEFAULT_QUEUE_LIMIT  100000
#define MX_DEFAULT_IN_THREADS   16
#define MX_DEFAULT_IN_QUEUE_LIMIT 100000
#define MX_DEFAULT_IN_TRIES     5
#define MX_DEFAULT_IN_RETRY_SECS 60

/* XMPPStateStore: where subscriptions and contacts' presence live */
#define MX_STORE_SPOOL 0        /* files in the spool: one host (default) */
#define MX_STORE_DBD   1        /* mod_dbd: shared by several hosts */

/* One XMPPServer address; port 0: the mode's default */
typedef struct mx_server_addr {
    const char *host;
    int port;
} mx_server_addr;

#define MX_MAX_SERVERS 16        /* addresses one XMPPServer line may list */

typedef struct mx_srv_conf {
    int engine;                  /* not inherited: see mx_merge_srv_conf */
    const char *jid;             /* bare user@domain */
    const char *resource;
    const char *password_file;
    const char *component;       /* component mode: the domain it owns */
    const char *component_secret_file;
    apr_array_header_t *servers; /* of mx_server_addr, tried in turn;
                                  * NULL: SRV record / JID domain */
    int tls;                     /* mx_tls_policy */
    const char *tls_ca_file;
    int tls_verify;
    int inbound;                 /* mx_inbound_kind bits */
    const char *inbound_path;
    const char *spool_dir;
    int dev_mode;
    int queue_limit;             /* items in the outbound queue */
    int inbound_threads;         /* requests run at once, per app */
    int inbound_queue_limit;     /* stanzas kept waiting on disk */
    int inbound_tries;           /* of a failing handler, in all */
    int inbound_retry_secs;      /* from the first try to the last */
    int state_store;             /* MX_STORE_* */
    const char *presence_cache;  /* "provider[:args]" of mod_socache */
    const char *defined_in;      /* "file:line" of XMPPEngine On, for messages */
} mx_srv_conf;

extern const command_rec mx_cmds[];

void *mx_create_srv_conf(apr_pool_t *p, server_rec *s);
void *mx_merge_srv_conf(apr_pool_t *p, void *basev, void *addv);

/* Typed getters that apply the defaults to unset values. */
mx_srv_conf *mx_conf(const server_rec *s);
const char *mx_conf_resource(const mx_srv_conf *c);
int mx_conf_tls(const mx_srv_conf *c);
int mx_conf_tls_verify(const mx_srv_conf *c);
int mx_conf_inbound(const mx_srv_conf *c);
const char *mx_conf_inbound_path(const mx_srv_conf *c);
const char *mx_conf_spool_dir(const mx_srv_conf *c);
int mx_conf_dev_mode(const mx_srv_conf *c);
int mx_conf_queue_limit(const mx_srv_conf *c);
int mx_conf_inbound_threads(const mx_srv_conf *c);
int mx_conf_inbound_queue_limit(const mx_srv_conf *c);
int mx_conf_inbound_tries(const mx_srv_conf *c);
int mx_conf_inbound_retry_secs(const mx_srv_conf *c);
int mx_conf_state_store(const mx_srv_conf *c);

/* 1 when c is in component mode (XMPPComponent or its secret set) */
int mx_conf_is_component(const mx_srv_conf *c);

/* Parse "host", "host:port", "[v6]" or "[v6]:port". NULL when fine, else
 * the reason. */
const char *mx_parse_server(apr_pool_t *p, const char *arg,
                            const char **host, int *port);

#endif
