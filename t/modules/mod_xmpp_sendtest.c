/* SPDX-License-Identifier: Apache-2.0 */
/* mod_xmpp_sendtest: a test-only module that calls mod_xmpp's optional
 * functions (mod_xmpp.h) the way another module would, so that the
 * integration tests (t/test_send.py) can check the C API.
 *
 * Built by the tests with `apxs -c` into a temporary directory; never
 * installed.  With
 *
 *     <Location /sendtest>
 *         SetHandler xmpp-sendtest
 *         Require local
 *     </Location>
 *
 * a POST of a form (application/x-www-form-urlencoded) with
 *
 *     op       send_message | send_invite | send_presence | get_presence
 *              | get_presences (several jids)
 *     jid      recipient (repeatable for send_message)
 *     body, from_jid, type, raw_xml (0/1), status, show
 *
 * calls the function; a parameter that is absent is passed as NULL.  The
 * answer is text/plain:
 *
 *     found 1            the optional function was retrieved
 *     rc SUCCESS|EINVAL|ENOENT|<number>
 *     error <the error string, or "(null)">
 *     status <jid> <NO_ERROR|INVALID_JID|OTHER_ERROR>   (one per jid)
 *     available <0|1>    (get_presence)
 *     show <show>        (get_presence)
 *     presence <jid> <valid 0|1> <available 0|1> <show or ->
 *                        (get_presences, one per jid)
 */
#include <string.h>

#include "apr_strings.h"
#include "httpd.h"
#include "http_config.h"
#include "http_protocol.h"
#include "util_script.h"

#include "mod_xmpp.h"

module AP_MODULE_DECLARE_DATA xmpp_sendtest_module;

#define MAX_FORM (4 * 1024 * 1024)

typedef struct {
    apr_array_header_t *jids;
    apr_table_t *args;
} form;

static int read_form(request_rec *r, form *f)
{
    apr_array_header_t *pairs = NULL;
    int i, rc;

    f->jids = apr_array_make(r->pool, 4, sizeof(const char *));
    f->args = apr_table_make(r->pool, 8);
    rc = ap_parse_form_data(r, NULL, &pairs, -1, MAX_FORM);
    if (rc != OK)
        return rc;
    for (i = 0; pairs && i < pairs->nelts; i++) {
        ap_form_pair_t *pair = &APR_ARRAY_IDX(pairs, i, ap_form_pair_t);
        apr_off_t len;
        apr_size_t size;
        char *buf;

        apr_brigade_length(pair->value, 1, &len);
        size = (apr_size_t)len;
        buf = apr_palloc(r->pool, size + 1);
        apr_brigade_flatten(pair->value, buf, &size);
        buf[size] = '\0';
        if (!strcmp(pair->name, "jid"))
            APR_ARRAY_PUSH(f->jids, const char *) = buf;
        else
            apr_table_set(f->args, pair->name, buf);
    }
    return OK;
}

static const char *rc_name(apr_status_t rc)
{
    if (rc == APR_SUCCESS)
        return "SUCCESS";
    if (rc == APR_EINVAL)
        return "EINVAL";
    if (rc == APR_ENOENT)
        return "ENOENT";
    return "OTHER";
}

static const char *st_name(int st)
{
    switch (st) {
    case MOD_XMPP_NO_ERROR:    return "NO_ERROR";
    case MOD_XMPP_INVALID_JID: return "INVALID_JID";
    case MOD_XMPP_OTHER_ERROR: return "OTHER_ERROR";
    default:                   return "UNKNOWN";
    }
}

static int sendtest_handler(request_rec *r)
{
    APR_OPTIONAL_FN_TYPE(mod_xmpp_send_message) *send_message;
    APR_OPTIONAL_FN_TYPE(mod_xmpp_send_invite) *send_invite;
    APR_OPTIONAL_FN_TYPE(mod_xmpp_send_presence) *send_presence;
    APR_OPTIONAL_FN_TYPE(mod_xmpp_get_presence) *get_presence;
    APR_OPTIONAL_FN_TYPE(mod_xmpp_get_presences) *get_presences;
    const char *op, *error = NULL, *one;
    apr_status_t rc;
    form f;
    int i, status = -1, rv;

    if (strcmp(r->handler, "xmpp-sendtest"))
        return DECLINED;
    if (r->method_number != M_POST)
        return HTTP_METHOD_NOT_ALLOWED;
    if ((rv = read_form(r, &f)) != OK)
        return rv;
    send_message = APR_RETRIEVE_OPTIONAL_FN(mod_xmpp_send_message);
    send_invite = APR_RETRIEVE_OPTIONAL_FN(mod_xmpp_send_invite);
    send_presence = APR_RETRIEVE_OPTIONAL_FN(mod_xmpp_send_presence);
    get_presence = APR_RETRIEVE_OPTIONAL_FN(mod_xmpp_get_presence);
    get_presences = APR_RETRIEVE_OPTIONAL_FN(mod_xmpp_get_presences);
    op = apr_table_get(f.args, "op");
    one = f.jids->nelts ? APR_ARRAY_IDX(f.jids, 0, const char *) : NULL;
    ap_set_content_type(r, "text/plain; charset=UTF-8");

    if (op && !strcmp(op, "send_message")) {
        int *st = apr_pcalloc(r->pool, sizeof(int) * (f.jids->nelts + 1));
        const char *raw = apr_table_get(f.args, "raw_xml");

        ap_rprintf(r, "found %d\n", send_message != NULL);
        if (!send_message)
            return OK;
        for (i = 0; i < f.jids->nelts; i++)
            st[i] = -1;
        rc = send_message(r->server, r->pool,
                          (const char *const *)f.jids->elts, f.jids->nelts,
                          apr_table_get(f.args, "body"),
                          apr_table_get(f.args, "from_jid"),
                          apr_table_get(f.args, "type"),
                          raw && !strcmp(raw, "1"), st, &error);
        ap_rprintf(r, "rc %s\nerror %s\n", rc_name(rc),
                   error ? error : "(null)");
        if (rc == APR_SUCCESS)
            for (i = 0; i < f.jids->nelts; i++)
                ap_rprintf(r, "status %s %s\n",
                           APR_ARRAY_IDX(f.jids, i, const char *),
                           st_name(st[i]));
    }
    else if (op && !strcmp(op, "send_invite")) {
        ap_rprintf(r, "found %d\n", send_invite != NULL);
        if (!send_invite)
            return OK;
        rc = send_invite(r->server, r->pool, one,
                         apr_table_get(f.args, "from_jid"), &status, &error);
        ap_rprintf(r, "rc %s\nerror %s\n", rc_name(rc),
                   error ? error : "(null)");
        if (rc == APR_SUCCESS)
            ap_rprintf(r, "status %s %s\n", one, st_name(status));
    }
    else if (op && !strcmp(op, "send_presence")) {
        ap_rprintf(r, "found %d\n", send_presence != NULL);
        if (!send_presence)
            return OK;
        rc = send_presence(r->server, r->pool, one,
                           apr_table_get(f.args, "status"),
                           apr_table_get(f.args, "from_jid"),
                           apr_table_get(f.args, "type"),
                           apr_table_get(f.args, "show"), &status, &error);
        ap_rprintf(r, "rc %s\nerror %s\n", rc_name(rc),
                   error ? error : "(null)");
        if (rc == APR_SUCCESS)
            ap_rprintf(r, "status %s %s\n", one, st_name(status));
    }
    else if (op && !strcmp(op, "get_presence")) {
        int available = -1;
        const char *show = NULL;

        ap_rprintf(r, "found %d\n", get_presence != NULL);
        if (!get_presence)
            return OK;
        rc = get_presence(r->server, r->pool, one,
                          apr_table_get(f.args, "from_jid"), &available,
                          &show, &error);
        ap_rprintf(r, "rc %s\nerror %s\n", rc_name(rc),
                   error ? error : "(null)");
        if (rc == APR_SUCCESS)
            ap_rprintf(r, "available %d\nshow %s\n", available,
                       show ? show : "(null)");
    }
    else if (op && !strcmp(op, "get_presences")) {
        int n = f.jids->nelts;
        int *available = apr_pcalloc(r->pool, sizeof(int) * (n + 1));
        int *valid = apr_pcalloc(r->pool, sizeof(int) * (n + 1));
        const char **show = apr_pcalloc(r->pool, sizeof(char *) * (n + 1));

        ap_rprintf(r, "found %d\n", get_presences != NULL);
        if (!get_presences)
            return OK;
        rc = get_presences(r->server, r->pool, n,
                           (const char *const *)f.jids->elts,
                           apr_table_get(f.args, "from_jid"), available,
                           show, valid, &error);
        ap_rprintf(r, "rc %s\nerror %s\n", rc_name(rc),
                   error ? error : "(null)");
        if (rc == APR_SUCCESS)
            for (i = 0; i < n; i++)
                ap_rprintf(r, "presence %s %d %d %s\n",
                           APR_ARRAY_IDX(f.jids, i, const char *), valid[i],
                           available[i],
                           show[i] && *show[i] ? show[i] : "-");
    }
    else {
        return HTTP_BAD_REQUEST;
    }
    return OK;
}

static void register_hooks(apr_pool_t *p)
{
    ap_hook_handler(sendtest_handler, NULL, NULL, APR_HOOK_MIDDLE);
}

module AP_MODULE_DECLARE_DATA xmpp_sendtest_module = {
    STANDARD20_MODULE_STUFF,
    NULL, NULL, NULL, NULL, NULL,
    register_hooks
};
