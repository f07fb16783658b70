/* SPDX-License-Identifier: Apache-2.0 */
/* mod_xmpp apps: one per server/virtual host with "XMPPEngine On", and the
 * state they share between httpd's children. */
#ifndef MOD_XMPP_APP_H
#define MOD_XMPP_APP_H

#include "apr_shm.h"
#include "httpd.h"

#include "mod_xmpp_config.h"

#define MX_LOG_TAG "XMPP" /* log lines start "XMPP<nnnn>:", not "AH" */

typedef enum {
    MX_ST_IDLE = 0,      /* no child holds the connection (yet) */
    MX_ST_CONNECTING,
    MX_ST_CONNECTED,
    MX_ST_BACKOFF,
    MX_ST_DEVMODE,
    MX_ST_STOPPED
} mx_state;

/* What the holding child publishes for every child to read (status page,
 * console). The state and the strings are written by the holder thread
 * only, under seq (readers retry on a torn read); the counters are added
 * to atomically by any thread (mx_shared_count). */
#define MX_TRAFFIC_N 32          /* recent stanzas kept for the console */

typedef struct {
    apr_time_t when;
    char dir;                    /* '<' received, '>' sent */
    char kind[15];               /* message, presence, subscribe, ... */
    char peer[96];
    char text[160];
} mx_traffic;

typedef struct {
    volatile apr_uint32_t seq;   /* odd while being written */
    apr_uint32_t state;          /* mx_state */
    apr_int64_t holder_pid;
    apr_time_t connected_since;  /* 0 when not connected */
    apr_time_t last_change;
    apr_uint64_t reconnects;     /* successful logins after the first */
    apr_uint64_t attempts;       /* connection attempts */
    apr_uint64_t queued, sent, received, failed;
    char server[128];            /* host:port actually used */
    char last_error[256];
    apr_uint32_t traffic_next;   /* total recorded; ring index = % N */
    mx_traffic traffic[MX_TRAFFIC_N];
    /* inbound stanzas kept on disk: waiting and running now, retries
     * and failures so far */
    apr_uint64_t in_waiting, in_running, in_retried, in_failed;
} mx_shared;

typedef struct mx_app {
    int index;
    server_rec *s;               /* the app's virtual host */
    mx_srv_conf *conf;
    int component;               /* component mode (XEP-0114) */
    const char *jid;             /* bare; a component: its domain */
    const char *full_jid;        /* with resource */
    const char *password;        /* read at startup, never logged; a
                                  * component: its shared secret */
    const char *key;             /* file-system safe name of the app */
    const char *dir;             /* spool_dir/key: queue, roster, lock */
    const char *lock_path;
    mx_shared *shared;
} mx_app;

/* The apps of this generation (set in post_config, inherited by children). */
extern apr_array_header_t *mx_apps;

/* Name of a state for humans and ?auto lines */
const char *mx_state_name(mx_state st);

/* Publish a consistent snapshot; `fn` changes the fields. */
void mx_shared_begin(mx_shared *sh);
void mx_shared_end(mx_shared *sh);
/* Record a stanza for the console (holder thread only). */
void mx_traffic_add(mx_shared *sh, char dir, const char *kind,
                    const char *peer, const char *text);

/* Add n to a counter of sh; any thread (counters are not under seq). */
#define mx_shared_count(field, n) \
    __atomic_add_fetch(&(field), (apr_uint64_t)(n), __ATOMIC_RELAXED)

/* Copy a consistent snapshot of sh into out. */
void mx_shared_read(const mx_shared *sh, mx_shared *out);

/* Correct a snapshot of the shared record whose holder died without a
 * word (kill -9, a crash): idle, with a last error that says so. Every
 * page that shows the state (status, console) uses it, so that they
 * agree. */
void mx_shared_check_holder(mx_shared *snap);

/* The app whose server is s, or NULL */
mx_app *mx_app_of(const server_rec *s);

/* The app of r's server, or the only app there is; NULL if none */
mx_app *mx_app_for_request(request_rec *r);

#endif
