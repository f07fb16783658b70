/* SPDX-License-Identifier: Apache-2.0 */
/* mod_xmpp_queue: see mod_xmpp_queue.h.
 *
 * Order. An item that reached the spool (no holder was listening) must
 * not be overtaken by one that its sender queued later over the socket.
 * The spool is read when the holder starts, before and after it begins to
 * listen, and again before every batch for which inotify has reported an
 * arrival in new/: a sender that saw its spooled item accepted and then
 * used the socket has renamed the item into new/ before its socket
 * request was read, so the event is there to be seen.
 *
 * Trust. Anything that runs as httpd's User can write to the socket and
 * the spool, not only xmpp-send and mx_ops: every item from there is
 * checked here as mx_queue_item_check says (the checks of the senders,
 * again) before it reaches the journal. A refused item is answered BAD
 * on the socket, and set aside in bad/ when found in the spool; either
 * way the items behind it go on. */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "apr_strings.h"
#include "httpd.h"
#include "http_log.h"

#include "mod_xmpp_queue.h"
#include "mx_batch.h"
#include "mx_qclient.h"
#include "mx_queue.h"

APLOG_USE_MODULE(xmpp);

#define MX_Q_CLIENTS      256   /* connections kept open at once */
#define MX_Q_IDLE_SECS    60    /* an idle connection is closed after */
#define MX_Q_POLL_MS      100
#define MX_Q_SPOOL_MS     250   /* read the spool even without inotify */
#define MX_Q_COUNT_MS     1000  /* refresh the "full" flag's counts */
#define MX_Q_SPOOL_BATCH  512
#define MX_Q_LOCAL_MAX    4096  /* answers waiting for the queue thread */

typedef struct {
    int fd;
    char *buf;
    size_t len, cap;
    time_t last;
    int dead;
    int ready;           /* poll saw something, or just accepted */
} mx_qconn;

typedef struct {
    mx_qconn *c;           /* NULL: handed in by this process, no answer */
    const char *item;
    size_t len;
    const char *refused;   /* why the item is not taken, or NULL */
} mx_qreq;

typedef struct {
    char *item;
    size_t len;
} mx_qlocal;

struct mx_qserver {
    mx_app *app;
    mx_journal *j;
    pthread_t thread;
    int started;
    volatile int stop;
    int listen_fd, ino_fd;
    char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    mx_seq committed;      /* atomic: below this, appended (and synced,
                            * but for this process's own answers) */
    mx_seq acked;          /* atomic: set by the XMPP loop */
    mx_seq acked_written;
    int full;
    apr_time_t last_spool, last_count, last_house, last_read_error;
    mx_qconn conns[MX_Q_CLIENTS];
    int nconns;
    mx_qreq *reqs;
    size_t nreqs, capreqs;
    /* items handed in by this process's threads (mx_qserver_put_local) */
    pthread_mutex_t lock;
    int wake_fd;             /* eventfd: there are some */
    int ready_fd;            /* eventfd: committed moved (for the loop) */
    mx_qlocal *local, *taken;
    size_t nlocal, ntaken;
    apr_uint64_t tickets;    /* under lock: the last one handed out */
    apr_uint64_t taken_upto; /* tickets up to this were taken */
    apr_uint64_t stored;     /* atomic: ... and are in the journal */
};

mx_seq mx_qserver_committed(mx_qserver *q)
{
    return __atomic_load_n(&q->committed, __ATOMIC_ACQUIRE);
}

void mx_qserver_set_acked(mx_qserver *q, mx_seq seq)
{
    __atomic_store_n(&q->acked, seq, __ATOMIC_RELEASE);
}

mx_seq mx_qserver_acked(mx_qserver *q)
{
    return __atomic_load_n(&q->acked, __ATOMIC_ACQUIRE);
}

static void publish(mx_qserver *q)
{
    mx_seq next = mx_journal_next(q->j);
    uint64_t one = 1;

    if (__atomic_exchange_n(&q->committed, next, __ATOMIC_ACQ_REL) != next
        && write(q->ready_fd, &one, sizeof(one)) < 0) {
        /* the counter is up already: the loop wakes anyway */
    }
}

int mx_qserver_ready_fd(mx_qserver *q)
{
    return q->ready_fd;
}

void mx_qserver_ready_clear(mx_qserver *q)
{
    uint64_t n;

    if (read(q->ready_fd, &n, sizeof(n)) < 0) {
        /* EAGAIN: nothing was new */
    }
}

static long queued(mx_qserver *q)
{
    return (long)(mx_journal_next(q->j) - 1 - mx_qserver_acked(q));
}

/* ---- the spool ---- */

static void drain_inotify(mx_qserver *q)
{
    char buf[4096];

    while (q->ino_fd >= 0 && read(q->ino_fd, buf, sizeof(buf)) > 0)
        ;
}

/* A spooled item that must not be sent: out of the way of the items
 * behind it, kept for a human, logged, counted as failed. */
static void refuse_spooled(mx_qserver *q, const char *name, const char *why)
{
    int kept = mx_queue_set_aside(q->app->dir, name) == 0;

    ap_log_error(APLOG_MARK, APLOG_ERR, 0, q->app->s, MX_LOG_TAG "0219: %s: "
                 "the spooled item %s is refused (%s); %s", q->app->jid,
                 name, why, kept ? "moved aside to bad/"
                                 : "it could not be moved to bad/ and is "
                                   "removed");
    if (!kept) /* else refused and logged again at every look at new/ */
        mx_queue_remove(q->app->dir, name);
    mx_shared_count(q->app->shared->failed, 1);
}

/* Move up to one batch of spooled items into the journal. 1 when there
 * may be more, 0 when done, -1 on error (logged; the items stay). */
static int spool_batch(mx_qserver *q)
{
    char **names, **data, err[512];
    size_t n, i, *lens, good = 0;
    const char *why;
    int rc = 0;

    if (mx_queue_list(q->app->dir, MX_Q_SPOOL_BATCH, &names, &n) != 0)
        return -1;
    if (n == 0) {
        mx_queue_free_list(names, n);
        return 0;
    }
    data = calloc(n, sizeof(*data));
    lens = calloc(n, sizeof(*lens));
    if (!data || !lens) {
        rc = -1;
        goto done;
    }
    for (i = 0; i < n; i++) {
        int rd = mx_queue_read(q->app->dir, names[i], &data[good],
                               &lens[good]);

        if (rd != 0 && errno == EFBIG) { /* never read, never sent */
            refuse_spooled(q, names[i], "larger than 16 MiB");
            free(names[i]);
            names[i] = NULL;
            continue;
        }
        if (rd != 0) {
            /* gone meanwhile, or unreadable: left where it is, never
             * removed unread */
            if (errno != ENOENT && apr_time_now() - q->last_read_error
                                   > apr_time_from_sec(60)) {
                ap_log_error(APLOG_MARK, APLOG_ERR, errno, q->app->s,
                             MX_LOG_TAG "0216: %s: cannot read the spooled "
                             "item %s/new/%s; it stays there", q->app->jid,
                             q->app->dir, names[i]);
                q->last_read_error = apr_time_now();
            }
            free(names[i]);
            names[i] = NULL;
            continue;
        }
        if (mx_queue_item_check(data[good], lens[good], q->app->jid,
                                mx_conf_resource(q->app->conf), &why) != 0) {
            refuse_spooled(q, names[i], why);
            free(data[good]);
            data[good] = NULL;
            free(names[i]);
            names[i] = NULL;
            continue;
        }
        good++;
    }
    if (good && (mx_journal_append(q->j, (const char *const *)data, lens,
                                   good, NULL, err, sizeof(err)) != 0
                 || mx_journal_sync(q->j, err, sizeof(err)) != 0)) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, q->app->s, MX_LOG_TAG
                     "0211: %s: cannot move spooled items into the "
                     "journal: %s", q->app->jid, err);
        rc = -1;
        goto done;
    }
    publish(q);
    /* in the journal now; a crash before these removals sends a copy */
    for (i = 0; i < n; i++)
        if (names[i])
            mx_queue_remove(q->app->dir, names[i]);
    rc = n == MX_Q_SPOOL_BATCH;
done:
    for (i = 0; data && i < good; i++)
        free(data[i]);
    free(data);
    free(lens);
    mx_queue_free_list(names, n);
    return rc;
}

static void take_spool(mx_qserver *q)
{
    int rounds = 64; /* bounded: the rest at the next turn */

    drain_inotify(q);
    q->last_spool = apr_time_now();
    while (rounds-- > 0 && spool_batch(q) == 1)
        ;
}

/* ---- the socket ---- */

static int start_listening(mx_qserver *q)
{
    struct sockaddr_un sa;
    int fd;

    if (mx_qsock_path(q->app->dir, q->sock_path, sizeof(q->sock_path))
        != 0) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, q->app->s, MX_LOG_TAG
                     "0212: %s: the path of the queue's socket in %s is "
                     "too long for a Unix socket: senders use the spool "
                     "(slower); a shorter XMPPSpoolDir avoids it",
                     q->app->jid, q->app->dir);
        return -1;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    apr_cpystrn(sa.sun_path, q->sock_path, sizeof(sa.sun_path));
    unlink(q->sock_path); /* a former holder's; we hold the lock now */
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0
        || chmod(q->sock_path, 0600) != 0 || listen(fd, 1024) != 0) {
        ap_log_error(APLOG_MARK, APLOG_ERR, errno, q->app->s, MX_LOG_TAG
                     "0213: %s: cannot listen on %s: senders use the spool "
                     "(slower)", q->app->jid, q->sock_path);
        if (fd >= 0)
            close(fd);
        unlink(q->sock_path);
        q->sock_path[0] = '\0';
        return -1;
    }
    q->listen_fd = fd;
    return 0;
}

static void close_conn(mx_qserver *q, int i)
{
    close(q->conns[i].fd);
    free(q->conns[i].buf);
    q->conns[i] = q->conns[--q->nconns];
}

/* Room for one more connection: close the one idle longest. */
static int make_room(mx_qserver *q)
{
    int i, oldest = -1;

    if (q->nconns < MX_Q_CLIENTS)
        return 0;
    for (i = 0; i < q->nconns; i++)
        if (q->conns[i].len == 0
            && (oldest < 0 || q->conns[i].last < q->conns[oldest].last))
            oldest = i;
    if (oldest < 0)
        return -1;
    close_conn(q, oldest);
    return 0;
}

static void accept_all(mx_qserver *q)
{
    int fd;

    while ((fd = accept4(q->listen_fd, NULL, NULL,
                         SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
        if (make_room(q) != 0) {
            close(fd); /* the sender uses the spool */
            continue;
        }
        memset(&q->conns[q->nconns], 0, sizeof(mx_qconn));
        q->conns[q->nconns].fd = fd;
        q->conns[q->nconns].last = time(NULL);
        q->conns[q->nconns].ready = 1;
        q->nconns++;
    }
}

static void read_conn(mx_qconn *c)
{
    ssize_t n;
    size_t want, room;
    char *grown;

    for (;;) {
        if (c->cap - c->len < 4096) {
            want = c->cap ? c->cap * 2 : 8192;
            if (want > MX_JOURNAL_RECORD_MAX + 2 * MX_QREQ_MAX_HEADER)
                want = MX_JOURNAL_RECORD_MAX + 2 * MX_QREQ_MAX_HEADER;
            if (want <= c->cap) {
                c->dead = 1; /* cannot be a valid request */
                return;
            }
            if (!(grown = realloc(c->buf, want))) {
                c->dead = 1;
                return;
            }
            c->buf = grown;
            c->cap = want;
        }
        room = c->cap - c->len;
        n = recv(c->fd, c->buf + c->len, room, 0);
        if (n > 0) {
            c->len += (size_t)n;
            c->last = time(NULL);
            if ((size_t)n < room)
                return; /* drained for now; poll says when there is more */
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
            c->dead = 1;
        return;
    }
}

static void answer(mx_qconn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void answer(mx_qconn *c, const char *fmt, ...)
{
    char buf[600];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = apr_vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
    va_end(ap);
    buf[n++] = '\n';
    /* a few bytes into an empty socket buffer: cannot block; a sender
     * that is gone gets nothing (and used the spool) */
    if (send(c->fd, buf, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) != n)
        c->dead = 1;
}

static int add_req(mx_qserver *q, mx_qconn *c, const char *item,
                   size_t len, const char *refused)
{
    if (q->nreqs == q->capreqs) {
        size_t cap = q->capreqs ? q->capreqs * 2 : 64;
        mx_qreq *grown = realloc(q->reqs, cap * sizeof(*grown));

        if (!grown)
            return -1;
        q->reqs = grown;
        q->capreqs = cap;
    }
    q->reqs[q->nreqs].c = c;
    q->reqs[q->nreqs].item = item;
    q->reqs[q->nreqs].len = len;
    q->reqs[q->nreqs].refused = refused;
    q->nreqs++;
    return 0;
}

/* Take the items handed in by this process's threads. */
static void take_local(mx_qserver *q)
{
    uint64_t n;
    size_t i;

    if (read(q->wake_fd, &n, sizeof(n)) < 0 && errno != EAGAIN) {
        /* nothing to clear */
    }
    pthread_mutex_lock(&q->lock);
    q->taken = q->local;
    q->ntaken = q->nlocal;
    q->local = NULL;
    q->nlocal = 0;
    q->taken_upto = q->tickets;
    pthread_mutex_unlock(&q->lock);
    for (i = 0; i < q->ntaken; i++)
        add_req(q, NULL, q->taken[i].item, q->taken[i].len, NULL);
}

/* After commit: what was taken is in the journal (or its loss logged). */
static void free_taken(mx_qserver *q)
{
    size_t i;

    __atomic_store_n(&q->stored, q->taken_upto, __ATOMIC_RELEASE);
    for (i = 0; i < q->ntaken; i++)
        free(q->taken[i].item);
    free(q->taken);
    q->taken = NULL;
    q->ntaken = 0;
}

apr_uint64_t mx_qserver_stored(mx_qserver *q)
{
    return __atomic_load_n(&q->stored, __ATOMIC_ACQUIRE);
}

int mx_qserver_put_local(mx_qserver *q, mx_item_kind kind,
                         const char *stanza, size_t stanza_len,
                         apr_uint64_t *ticket)
{
    uint64_t one = 1;
    mx_qlocal *grown;
    size_t len;
    char *item;
    int rc = -1;

    if (!(item = mx_queue_item_make(kind, stanza, stanza_len, &len)))
        return -1;
    pthread_mutex_lock(&q->lock);
    if (q->nlocal < MX_Q_LOCAL_MAX && !q->stop
        && (grown = realloc(q->local, (q->nlocal + 1) * sizeof(*grown)))) {
        q->local = grown;
        q->local[q->nlocal].item = item;
        q->local[q->nlocal++].len = len;
        item = NULL;
        rc = 0;
        if (ticket)
            *ticket = ++q->tickets;
    }
    pthread_mutex_unlock(&q->lock);
    free(item);
    if (rc == 0 && write(q->wake_fd, &one, sizeof(one)) < 0) {
        /* the counter is already up: the thread wakes anyway */
    }
    return rc;
}

static const char not_request[] = "not a queue request";

/* Why a sender's item is refused, or NULL (logged at debug level only:
 * the sender gets the reason, and anyone could fill the log). */
static const char *checked(mx_qserver *q, const char *item, size_t len)
{
    const char *why;

    if (mx_queue_item_check(item, len, q->app->jid,
                            mx_conf_resource(q->app->conf), &why) == 0)
        return NULL;
    ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, q->app->s, MX_LOG_TAG "0220: "
                 "%s: an item on the queue socket is refused: %s",
                 q->app->jid, why);
    return why;
}

/* Gather this process's items (when its eventfd said there are some),
 * then the complete requests of every connection, in order. */
static void gather(mx_qserver *q, int local)
{
    int i;

    q->nreqs = 0;
    if (local)
        take_local(q);
    for (i = 0; i < q->nconns; i++) {
        mx_qconn *c = &q->conns[i];
        size_t at = 0, off, len;
        int rc;

        while (at < c->len
               && (rc = mx_qreq_parse(c->buf + at, c->len - at, &off,
                                      &len)) != 0) {
            if (rc == MX_QREQ_TOO_LARGE || rc < 0) {
                /* answered in turn, after what came before on c */
                add_req(q, c, NULL, 0, rc == MX_QREQ_TOO_LARGE
                        ? "the item is larger than 16 MiB" : not_request);
                c->dead = 1;
                break;
            }
            if (add_req(q, c, c->buf + at + off, len,
                        checked(q, c->buf + at + off, len)) != 0)
                return;
            at += off + len;
        }
    }
}

/* Append the gathered requests, one sync for all, then answer each
 * (which are taken, refused or synced: mx_batch.h). */
static void commit(mx_qserver *q)
{
    const char **items;
    size_t *lens, i, n = 0;
    mx_batch_req *plan;
    int limit = mx_conf_queue_limit(q->app->conf), sync = 0;
    long count = queued(q);
    char err[512];
    mx_seq first = 0;
    int rc;

    if (q->nreqs == 0)
        return;
    items = malloc(q->nreqs * sizeof(*items));
    lens = malloc(q->nreqs * sizeof(*lens));
    plan = calloc(q->nreqs, sizeof(*plan));
    if (!items || !lens || !plan) {
        apr_cpystrn(err, "out of memory", sizeof(err));
        rc = -1;
        goto answers;
    }
    for (i = 0; i < q->nreqs; i++) {
        plan[i].local = q->reqs[i].c == NULL;
        plan[i].refused = q->reqs[i].refused != NULL;
    }
    mx_batch_plan(plan, q->nreqs, count, limit, &sync);
    for (i = 0; i < q->nreqs; i++)
        if (plan[i].verdict == MX_BATCH_TAKEN) {
            items[n] = q->reqs[i].item;
            lens[n++] = q->reqs[i].len;
        }
    rc = n ? mx_journal_append(q->j, items, lens, n, &first, err,
                               sizeof(err)) : 0;
    if (rc == 0 && sync)
        rc = mx_journal_sync(q->j, err, sizeof(err));
    if (rc == 0)
        mx_batch_number(plan, q->nreqs, first);
answers:
    if (rc != 0)
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, q->app->s, MX_LOG_TAG "0214: "
                     "%s: cannot store items in the journal (senders try the "
                     "spool; %lu answers to inbound stanzas are lost): %s",
                     q->app->jid, (unsigned long)q->ntaken, err);
    else
        publish(q);
    for (i = 0; i < q->nreqs; i++) {
        if (!q->reqs[i].c)
            continue;
        if (q->reqs[i].refused)
            answer(q->reqs[i].c, "%s %s", q->reqs[i].refused == not_request
                   ? "ERR" : "BAD", q->reqs[i].refused);
        else if (plan && plan[i].verdict == MX_BATCH_FULL)
            answer(q->reqs[i].c, "FULL %ld %d", count + (long)n, limit);
        else if (rc != 0)
            answer(q->reqs[i].c, "ERR %s", err);
        else
            answer(q->reqs[i].c, "OK %" APR_UINT64_T_FMT,
                   (apr_uint64_t)plan[i].record);
    }
    free(items);
    free(lens);
    free(plan);
}

/* Drop what was answered from each connection's buffer. */
static void consume(mx_qserver *q)
{
    int i;

    for (i = 0; i < q->nconns; i++) {
        mx_qconn *c = &q->conns[i];
        size_t at = 0, off, len;

        while (at < c->len
               && mx_qreq_parse(c->buf + at, c->len - at, &off, &len) == 1)
            at += off + len;
        if (at > 0) {
            memmove(c->buf, c->buf + at, c->len - at);
            c->len -= at;
        }
        if (c->len == 0 && c->cap > 65536) { /* after a large item */
            free(c->buf);
            c->buf = NULL;
            c->cap = 0;
        }
    }
    for (i = q->nconns - 1; i >= 0; i--)
        if (q->conns[i].dead
            || (q->conns[i].len == 0
                && time(NULL) - q->conns[i].last > MX_Q_IDLE_SECS))
            close_conn(q, i);
}

/* ---- housekeeping ---- */

static void housekeeping(mx_qserver *q, apr_time_t now)
{
    mx_seq acked = mx_qserver_acked(q);
    int limit = mx_conf_queue_limit(q->app->conf);
    long n;

    if (acked != q->acked_written) {
        if (mx_journal_set_acked(q->j, acked) != 0)
            ap_log_error(APLOG_MARK, APLOG_ERR, errno, q->app->s, MX_LOG_TAG
                         "0201: %s: cannot record what the server "
                         "acknowledged in %s/journal; it may be sent again",
                         q->app->jid, q->app->dir);
        q->acked_written = acked;
    }
    n = queued(q);
    __atomic_store_n(&q->app->shared->queued, (apr_uint64_t)n,
                     __ATOMIC_RELAXED);
    if (n >= limit) {
        if (!q->full || now - q->last_count >= apr_time_from_msec(
                                                   MX_Q_COUNT_MS)) {
            if (mx_queue_set_full_counts(q->app->dir, n, limit) == 1)
                ap_log_error(APLOG_MARK, APLOG_ERR, 0, q->app->s, MX_LOG_TAG
                             "0202: %s: the outbound queue is full (%ld "
                             "items, XMPPQueueLimit %d): sends are refused "
                             "with OTHER_ERROR until it drains", q->app->jid,
                             n, limit);
            q->last_count = now;
        }
        q->full = 1;
    }
    else if (q->full) {
        mx_queue_set_full(q->app->dir, 0);
        q->full = 0;
    }
}

static void *queue_main(void *data)
{
    mx_qserver *q = data;
    struct pollfd pfd[MX_Q_CLIENTS + 3];
    int i, n, base, spool_event, local_event, wake_at;
    apr_time_t now;

    while (!q->stop) {
        n = 0;
        if (q->listen_fd >= 0) {
            pfd[n].fd = q->listen_fd;
            pfd[n++].events = POLLIN;
        }
        if (q->ino_fd >= 0) {
            pfd[n].fd = q->ino_fd;
            pfd[n++].events = POLLIN;
        }
        wake_at = n;
        pfd[n].fd = q->wake_fd;
        pfd[n++].events = POLLIN;
        base = n;
        for (i = 0; i < q->nconns; i++) {
            pfd[n].fd = q->conns[i].fd;
            pfd[n++].events = POLLIN;
        }
        if (poll(pfd, (nfds_t)n, MX_Q_POLL_MS) < 0 && errno != EINTR)
            apr_sleep(apr_time_from_msec(MX_Q_POLL_MS));
        if (q->stop)
            break;
        spool_event = 0;
        local_event = pfd[wake_at].revents != 0;
        for (i = 0; i < q->nconns; i++)
            q->conns[i].ready = pfd[base + i].revents != 0;
        for (i = 0; i < base; i++) {
            if (!(pfd[i].revents & POLLIN))
                continue;
            if (pfd[i].fd == q->listen_fd)
                accept_all(q);
            else if (pfd[i].fd == q->ino_fd)
                spool_event = 1;
        }
        for (i = 0; i < q->nconns; i++)
            if (q->conns[i].ready)
                read_conn(&q->conns[i]);
        now = apr_time_now();
        if (spool_event
            || now - q->last_spool >= apr_time_from_msec(MX_Q_SPOOL_MS))
            take_spool(q);
        gather(q, local_event);
        /* an item spooled before one of these requests was read has its
         * inotify event by now */
        if (q->nreqs && q->ino_fd >= 0) {
            struct pollfd p = { q->ino_fd, POLLIN, 0 };

            if (poll(&p, 1, 0) == 1)
                take_spool(q);
        }
        commit(q);
        free_taken(q);
        consume(q);
        if (now - q->last_house >= apr_time_from_msec(MX_Q_POLL_MS)) {
            housekeeping(q, now);
            q->last_house = now;
        }
    }
    return NULL;
}

/* ---- start and stop ---- */

mx_qserver *mx_qserver_start(mx_app *app)
{
    mx_qserver *q = calloc(1, sizeof(*q));
    char err[512], newdir[4096];

    if (!q)
        return NULL;
    q->app = app;
    q->listen_fd = q->ino_fd = -1;
    pthread_mutex_init(&q->lock, NULL);
    q->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    q->ready_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (q->wake_fd < 0 || q->ready_fd < 0) {
        ap_log_error(APLOG_MARK, APLOG_ERR, errno, app->s, MX_LOG_TAG "0215: "
                     "%s: cannot start the queue thread", app->jid);
        if (q->wake_fd >= 0)
            close(q->wake_fd);
        if (q->ready_fd >= 0)
            close(q->ready_fd);
        free(q);
        return NULL;
    }
    if (mx_journal_open(app->dir, 0, &q->j, err, sizeof(err)) != 0) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, app->s, MX_LOG_TAG "0210: "
                     "%s: cannot open the outbound journal: %s (check "
                     "XMPPSpoolDir and its owner)", app->jid, err);
        close(q->wake_fd);
        close(q->ready_fd);
        free(q);
        return NULL;
    }
    q->acked = q->acked_written = mx_journal_acked(q->j);
    publish(q);
    mx_queue_clean_tmp(app->dir, 3600);
    apr_snprintf(newdir, sizeof(newdir), "%s/new", app->dir);
    q->ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (q->ino_fd >= 0 && inotify_add_watch(q->ino_fd, newdir,
                                            IN_MOVED_TO) < 0) {
        close(q->ino_fd);
        q->ino_fd = -1;
    }
    take_spool(q);
    start_listening(q);
    take_spool(q); /* what arrived while we started to listen */
    housekeeping(q, apr_time_now());
    if (pthread_create(&q->thread, NULL, queue_main, q) != 0) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, errno, app->s, MX_LOG_TAG
                     "0221: %s: cannot start the queue thread", app->jid);
        q->stop = 1;
        mx_qserver_stop(q);
        return NULL;
    }
    q->started = 1;
    return q;
}

void mx_qserver_stop(mx_qserver *q)
{
    if (!q)
        return;
    pthread_mutex_lock(&q->lock);
    q->stop = 1; /* no more local items */
    pthread_mutex_unlock(&q->lock);
    if (q->started)
        pthread_join(q->thread, NULL);
    /* the last answers handed in */
    q->nreqs = 0;
    take_local(q);
    commit(q);
    free_taken(q);
    mx_journal_sync(q->j, NULL, 0);
    if (q->listen_fd >= 0) {
        close(q->listen_fd);
        unlink(q->sock_path);
    }
    while (q->nconns > 0)
        close_conn(q, 0);
    if (q->ino_fd >= 0)
        close(q->ino_fd);
    housekeeping(q, apr_time_now());
    mx_journal_close(q->j);
    close(q->wake_fd);
    close(q->ready_fd);
    pthread_mutex_destroy(&q->lock);
    free(q->reqs);
    free(q);
}
