/* SPDX-License-Identifier: Apache-2.0 */
/* mod_xmpp_inject: one request run through httpd's ordinary processing
 * on a connection mod_xmpp made (no client, no socket), its answer kept.
 * No libstrophe here: the stanza arrives as plain strings. */
#ifndef MOD_XMPP_INJECT_H
#define MOD_XMPP_INJECT_H

#include "httpd.h"
#include "mod_xmpp_app.h"
#include "mod_xmpp_authz.h"

#define MX_INJECT_MAX_REPLY (256 * 1024) /* longer answers are not kept */

/* One stanza's request and its answer. The strings are malloc'd (they
 * cross from the holder thread to a request thread); mx_inject_clear
 * frees them, not the struct. */
typedef struct {
    mx_conn_mark mark;           /* first: what Require xmpp-internal sees */
    mx_app *app;
    apr_sockaddr_t *local_addr;  /* an address the app's host listens on */
    int kind;                    /* mx_inbound_kind */
    const char *path;            /* under XMPPInboundPath */
    char *name, *type, *id;      /* of the stanza */
    char *from, *to, *body, *show, *status, *stanza;
    char *command, *arg;
    int attempt;                 /* XMPP_ATTEMPT: 1, 2, ... */
    char stanza_id[80];          /* XMPP_STANZA_ID: the same on a repeat */
    /* the request, served by XMPP_IN */
    char *request;
    size_t request_len, request_off;
    /* the answer, kept by XMPP_OUT and XMPP_REPLY */
    int status_code;
    int saw_status;
    char *ctype;
    char *reply;
    size_t reply_len;
    int reply_too_long;
    const void *reply_owner;     /* the XMPP_REPLY filter that keeps it */
    int retry_after;             /* a 503's Retry-After, seconds; 0 none */
} mx_inject;

/* An address the app's host listens on, for mx_inject.local_addr */
apr_sockaddr_t *mx_inject_local_addr(mx_app *app, apr_pool_t *p);

/* Build the request's bytes (a multipart POST) from the stanza's fields.
 * Returns 0, or -1 out of memory. */
int mx_inject_build(mx_inject *ir);

/* Run the request in the calling thread; the answer lands in ir (status
 * 500 when it could not run). May be called again for another try. */
void mx_inject_run(mx_inject *ir, apr_thread_t *thread);

void mx_inject_clear(mx_inject *ir);

/* CGI variables of an injected request (fixups); nothing on others */
void mx_inject_set_env(request_rec *r);

/* child_init: the pieces every injected request shares */
void mx_inject_child_init(apr_pool_t *pchild);
void mx_inject_register_hooks(apr_pool_t *p);

#endif
