/* SPDX-License-Identifier: Apache-2.0 */
/* mx_ops: App Engine's four send operations on top of the queue, shared by
 * every way in (xmpp-send, the xmpp-api handler, the optional functions),
 * so that all of them validate and answer alike.
 * Portable: no httpd, no APR. */
#ifndef MX_OPS_H
#define MX_OPS_H

#include <stddef.h>

#include "mx_send.h"

/* Per recipient, as App Engine's send_message returned them */
typedef enum {
    MX_NO_ERROR = 0, MX_INVALID_JID, MX_OTHER_ERROR
} mx_status;

const char *mx_status_name(mx_status st); /* "NO_ERROR", ... */

/* Who sends, and where the queue is */
typedef struct {
    const char *queue_dir;   /* the app's spool directory */
    const char *app_jid;     /* bare */
    const char *app_resource;
    int sync;                /* fsync each item (durability); 1 normally */
    /* get_presence from elsewhere than the spool's files (a store shared
     * by several hosts): NULL for the files. Called with the checked
     * from_jid (or NULL) and jid; sets *available and show (unavailable
     * when unknown, or when the store cannot be read: it logs that). */
    int (*presence)(void *ud, const char *from_jid, const char *jid,
                    int *available, char *show, size_t showsize);
    void *presence_ud;
} mx_sender;

/* Outcome of one operation: err is MX_OK unless the call as a whole was
 * refused (App Engine raised an exception then: mx_err_name(err)), and
 * why/detail explains it for people. */
typedef struct {
    mx_err err;
    char why[256];
} mx_result;

/* send_message: one queue item per valid recipient; statuses[i] for
 * jids[i]. All recipients invalid is InvalidJidError, as on App Engine. */
void mx_op_send_message(const mx_sender *s, const char *const *jids,
                        size_t njids, const char *body, const char *from_jid,
                        const char *type, int raw_xml, mx_status *statuses,
                        mx_result *res);

/* send_invite: a presence subscription request to jid. */
void mx_op_send_invite(const mx_sender *s, const char *jid,
                       const char *from_jid, mx_status *status,
                       mx_result *res);

/* send_presence: jid may be "subscribers" (one presence to every
 * subscriber, sent by the holder from the roster). */
void mx_op_send_presence(const mx_sender *s, const char *jid,
                         const char *status_text, const char *from_jid,
                         const char *type, const char *show,
                         mx_status *status, mx_result *res);

/* get_presence: what the holder last saw of jid. *available is 0 for an
 * unknown contact; show is "" when none was given. */
void mx_op_get_presence(const mx_sender *s, const char *jid,
                        const char *from_jid, int *available, char *show,
                        size_t showsize, mx_result *res);

#endif
