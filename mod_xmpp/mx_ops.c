/* SPDX-License-Identifier: Apache-2.0 */
/* mx_ops: see mx_ops.h */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mx_jid.h"
#include "mx_ops.h"
#include "mx_presence.h"
#include "mx_qclient.h"
#include "mx_item.h"
#include "mx_addr_roster.h"

const char *mx_status_name(mx_status st)
{
    switch (st) {
    case MX_NO_ERROR:    return "NO_ERROR";
    case MX_INVALID_JID: return "INVALID_JID";
    default:             return "OTHER_ERROR";
    }
}

static void result(mx_result *res, mx_err err, const char *why)
{
    res->err = err;
    snprintf(res->why, sizeof(res->why), "%s", why ? why : "");
}

/* "'jid' is not a valid JID: reason" */
static void bad_jid(mx_result *res, const char *jid)
{
    const char *why = mx_jid_parse(jid, NULL);

    res->err = MX_ERR_INVALID_JID;
    snprintf(res->why, sizeof(res->why), "'%s' is not a valid JID: %s",
             jid ? jid : "", why ? why : "not a recipient");
}

/* The from address for stanzas: the app's full JID unless the caller gave
 * one of the app's own addresses. */
static int from_of(const mx_sender *s, const char *from_jid, char *buf,
                   size_t size, mx_result *res)
{
    /* a component's app_jid is its domain (mx_check_from) */
    int component = !strchr(s->app_jid, '@');

    if (mx_check_from(from_jid, s->app_jid, s->app_resource) != MX_OK) {
        res->err = MX_ERR_INVALID_JID;
        if (component)
            snprintf(res->why, sizeof(res->why), "'%s' is not one of the "
                     "app's own addresses (%s or any name@%s)", from_jid,
                     s->app_jid, s->app_jid);
        else
            snprintf(res->why, sizeof(res->why), "'%s' is not one of the "
                     "app's own addresses (%s or %s/%s)", from_jid,
                     s->app_jid, s->app_jid, s->app_resource);
        return -1;
    }
    if (!from_jid || !*from_jid)
        snprintf(buf, size, "%s/%s", s->app_jid, s->app_resource);
    else if (component && !strchr(from_jid, '/'))
        /* App Engine sent from name@app-id.appspotchat.com/bot */
        snprintf(buf, size, "%s/%s", from_jid, s->app_resource);
    else
        snprintf(buf, size, "%s", from_jid);
    return 0;
}

/* Queue one stanza; OTHER_ERROR (with the reason in res->why) when the
 * queue cannot take it. */
static mx_status put(const mx_sender *s, mx_item_kind kind, char *stanza,
                     mx_result *res)
{
    char err[256];
    int rc;

    if (!stanza) {
        snprintf(res->why, sizeof(res->why), "out of memory");
        return MX_OTHER_ERROR;
    }
    rc = mx_queue_submit(s->queue_dir, kind, stanza, strlen(stanza), s->sync,
                         err, sizeof(err));
    free(stanza);
    if (rc != 0) {
        snprintf(res->why, sizeof(res->why), "%s", err);
        return MX_OTHER_ERROR;
    }
    return MX_NO_ERROR;
}

void mx_op_send_message(const mx_sender *s, const char *const *jids,
                        size_t njids, const char *body, const char *from_jid,
                        const char *type, int raw_xml, mx_status *statuses,
                        mx_result *res)
{
    char from[3100], id[MX_ID_SIZE];
    const char *why = NULL;
    mx_err err;
    size_t i, valid = 0;

    result(res, MX_OK, NULL);
    if ((err = mx_message_check(body, type, raw_xml, &why)) != MX_OK) {
        if (err == MX_ERR_NO_BODY)
            why = "the message body is empty";
        if (err == MX_ERR_INVALID_TYPE) {
            res->err = err;
            snprintf(res->why, sizeof(res->why), "message type '%s' is not "
                     "one of chat, error, groupchat, headline, normal", type);
            return;
        }
        result(res, err, why);
        return;
    }
    if (from_of(s, from_jid, from, sizeof(from), res) != 0)
        return;
    for (i = 0; i < njids; i++)
        valid += mx_check_to(jids[i]) == MX_OK;
    if (valid == 0) { /* App Engine raised InvalidJidError then */
        if (njids == 1)
            bad_jid(res, jids[0]);
        else
            result(res, MX_ERR_INVALID_JID, njids ? "none of the recipients "
                   "is a valid JID" : "no recipient");
        return;
    }
    for (i = 0; i < njids; i++) {
        if (mx_check_to(jids[i]) != MX_OK) {
            statuses[i] = MX_INVALID_JID;
            continue;
        }
        mx_new_id(id, sizeof(id));
        statuses[i] = put(s, MX_ITEM_STANZA,
                          mx_message_stanza(from, jids[i], type, body,
                                            raw_xml, id), res);
    }
}

void mx_op_send_invite(const mx_sender *s, const char *jid,
                       const char *from_jid, mx_status *status,
                       mx_result *res)
{
    char from[3100], id[MX_ID_SIZE];

    result(res, MX_OK, NULL);
    if (from_of(s, from_jid, from, sizeof(from), res) != 0)
        return;
    if (mx_check_to(jid) != MX_OK) {
        bad_jid(res, jid);
        return;
    }
    /* a subscription is between bare JIDs: no resource added */
    snprintf(from, sizeof(from), "%s",
             from_jid && *from_jid ? from_jid : s->app_jid);
    mx_new_id(id, sizeof(id));
    *status = put(s, MX_ITEM_STANZA, mx_invite_stanza(from, jid, id), res);
}

void mx_op_send_presence(const mx_sender *s, const char *jid,
                         const char *status_text, const char *from_jid,
                         const char *type, const char *show,
                         mx_status *status, mx_result *res)
{
    char from[3100], id[MX_ID_SIZE];
    int everyone = jid && !strcmp(jid, "subscribers");
    mx_err err;

    result(res, MX_OK, NULL);
    if ((err = mx_presence_check(type, show, status_text)) != MX_OK) {
        res->err = err;
        if (err == MX_ERR_INVALID_TYPE)
            snprintf(res->why, sizeof(res->why), "presence type '%s' is not "
                     "one of available, unavailable, probe", type);
        else if (err == MX_ERR_INVALID_SHOW)
            snprintf(res->why, sizeof(res->why), "show '%s' is not one of "
                     "chat, away, dnd, xa", show);
        else
            snprintf(res->why, sizeof(res->why), "the status is longer than "
                     "%d characters or is not valid UTF-8",
                     MX_STATUS_MAX_CHARS);
        return;
    }
    if (from_of(s, from_jid, from, sizeof(from), res) != 0)
        return;
    if (!everyone && mx_check_to(jid) != MX_OK) {
        bad_jid(res, jid);
        return;
    }
    mx_new_id(id, sizeof(id));
    *status = put(s, everyone ? MX_ITEM_SUBSCRIBERS : MX_ITEM_STANZA,
                  mx_presence_stanza(from, everyone ? NULL : jid, type, show,
                                     status_text, id), res);
}

/* A component keeps each contact's presence per address (mx_addr_roster.h):
 * as the address from_jid (by default the domain) saw it. */
static void component_presence(const mx_sender *s, const char *jid,
                               const char *from_jid, int *available,
                               char *show, size_t showsize)
{
    char dir[4096];

    if (mx_addr_roster_dir(s->queue_dir, from_jid && *from_jid ? from_jid
                                                          : s->app_jid,
                      dir, sizeof(dir)) == 0)
        mx_presence_load(dir, jid, available, show, showsize, NULL);
}

void mx_op_get_presence(const mx_sender *s, const char *jid,
                        const char *from_jid, int *available, char *show,
                        size_t showsize, mx_result *res)
{
    result(res, MX_OK, NULL);
    *available = 0;
    if (showsize)
        show[0] = '\0';
    if (mx_check_from(from_jid, s->app_jid, s->app_resource) != MX_OK) {
        result(res, MX_ERR_INVALID_JID, "from_jid must be the app's own "
               "address");
        return;
    }
    if (mx_check_to(jid) != MX_OK) {
        bad_jid(res, jid);
        return;
    }
    /* a contact never seen is unavailable, as App Engine answered */
    if (s->presence) /* a store that cannot be read says so in its log */
        s->presence(s->presence_ud, from_jid, jid, available, show,
                    showsize);
    else if (!strchr(s->app_jid, '@'))
        component_presence(s, jid, from_jid, available, show, showsize);
    else
        mx_presence_load(s->queue_dir, jid, available, show, showsize, NULL);
}
