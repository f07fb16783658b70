/* SPDX-License-Identifier: Apache-2.0 */
/* mx_qclient: see mx_qclient.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "mx_journal.h"
#include "mx_qclient.h"
#include "mx_spool.h"

#define ANSWER_MAX 512

_Static_assert(MX_QUEUE_ITEM_MAX <= MX_JOURNAL_RECORD_MAX,
               "every item the queue takes fits in a journal record");
#define TIMEOUT_SECS 10 /* a holder that does not answer: use the spool */

/* This thread's connection, kept between calls */
static __thread int conn_fd = -1;
static __thread char conn_path[sizeof(((struct sockaddr_un *)0)->sun_path)];

int mx_qsock_path(const char *dir, char *buf, size_t size)
{
    size_t max = sizeof(((struct sockaddr_un *)0)->sun_path);
    int n = snprintf(buf, size, "%s/%s", dir, MX_QSOCK_NAME);

    return n < 0 || (size_t)n >= size || (size_t)n >= max ? -1 : 0;
}

int mx_qreq_parse(const char *buf, size_t len, size_t *off,
                  size_t *item_len)
{
    const char *nl = memchr(buf, '\n', len < MX_QREQ_MAX_HEADER
                                       ? len : MX_QREQ_MAX_HEADER);
    char *end;
    unsigned long long n;

    if (!nl)
        return len < MX_QREQ_MAX_HEADER
               && (len < 4 || !memcmp(buf, "PUT ", 4)) ? 0 : -1;
    if (len < 5 || memcmp(buf, "PUT ", 4) != 0 || buf[4] < '0'
        || buf[4] > '9')
        return -1;
    n = strtoull(buf + 4, &end, 10);
    if (end != nl)
        return -1;
    if (n > MX_QUEUE_ITEM_MAX)
        return MX_QREQ_TOO_LARGE;
    *off = (size_t)(nl - buf) + 1;
    *item_len = (size_t)n;
    return len - *off >= n ? 1 : 0;
}

static void drop_conn(void)
{
    if (conn_fd >= 0)
        close(conn_fd);
    conn_fd = -1;
}

/* Connect to path. 0, or -1 when no holder listens there. */
static int connect_to(const char *path)
{
    struct sockaddr_un sa;
    struct timeval tv = { TIMEOUT_SECS, 0 };
    int fd;

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    conn_fd = fd;
    snprintf(conn_path, sizeof(conn_path), "%s", path);
    return 0;
}

static int send_all(int fd, const char *p, size_t len)
{
    ssize_t n;

    while (len > 0) {
        n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Send the request, header and item in one call (the holder wakes once);
 * a kept connection the holder has closed meanwhile fails at once and is
 * replaced once (nothing of the request reached anyone then). 0 when
 * sent, -1 when no holder listens. */
static int send_request(const char *path, const char *item, size_t len)
{
    char head[MX_QREQ_MAX_HEADER];
    int n = snprintf(head, sizeof(head), "PUT %zu\n", len), tries;
    struct iovec iov[2];
    struct msghdr msg;
    ssize_t sent = -1;
    size_t total = (size_t)n + len, done;
    int rc = 0;

    for (tries = 0; tries < 2 && sent < 0; tries++) {
        if (conn_fd >= 0 && strcmp(conn_path, path) != 0)
            drop_conn();
        if (conn_fd < 0 && connect_to(path) != 0)
            return -1;
        iov[0].iov_base = head;
        iov[0].iov_len = (size_t)n;
        iov[1].iov_base = (void *)item;
        iov[1].iov_len = len;
        memset(&msg, 0, sizeof(msg));
        msg.msg_iov = iov;
        msg.msg_iovlen = 2;
        do
            sent = sendmsg(conn_fd, &msg, MSG_NOSIGNAL);
        while (sent < 0 && errno == EINTR);
        if (sent < 0)
            drop_conn();
    }
    if (sent < 0)
        return -1;
    /* a large item may go in several parts */
    done = (size_t)sent;
    if (done < (size_t)n) {
        rc = send_all(conn_fd, head + done, (size_t)n - done);
        done = (size_t)n;
    }
    if (rc == 0 && done < total)
        rc = send_all(conn_fd, item + (done - (size_t)n), total - done);
    if (rc != 0) {
        drop_conn();
        return -1;
    }
    return 0;
}

/* Read one answer line into buf (without the newline). 0, or -1. */
static int read_answer(char *buf, size_t size)
{
    size_t got = 0;
    ssize_t n;

    while (got < size - 1) {
        n = recv(conn_fd, buf + got, size - 1 - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        got += (size_t)n;
        buf[got] = '\0';
        if (memchr(buf, '\n', got)) {
            *strchr(buf, '\n') = '\0';
            return 0;
        }
    }
    return -1;
}

/* Over the socket: 0, MX_QUEUE_FULL, -1 when refused for good (BAD), or
 * 1 to use the spool instead. */
static int submit_socket(const char *dir, const char *item, size_t len,
                         char *err, size_t errsize)
{
    char path[sizeof(conn_path)], answer[ANSWER_MAX];
    long count, limit;

    if (mx_qsock_path(dir, path, sizeof(path)) != 0
        || send_request(path, item, len) != 0)
        return 1;
    if (read_answer(answer, sizeof(answer)) != 0) {
        /* the holder went away (or hangs): it may or may not have stored
         * the item; the spool makes sure, at worst a copy is sent twice,
         * which its origin-id lets receivers drop */
        drop_conn();
        return 1;
    }
    if (!strncmp(answer, "OK ", 3))
        return 0;
    if (!strncmp(answer, "FULL ", 5)
        && sscanf(answer + 5, "%ld %ld", &count, &limit) == 2) {
        if (err && errsize)
            snprintf(err, errsize, "the outbound queue is full (%ld items; "
                     "limit %ld)", count, limit);
        return MX_QUEUE_FULL;
    }
    if (!strncmp(answer, "BAD ", 4)) {
        if (err && errsize)
            snprintf(err, errsize, "the queue refused the item: %s",
                     answer + 4);
        return -1;
    }
    return 1; /* ERR: perhaps the spool can take it */
}

int mx_queue_submit(const char *dir, mx_item_kind kind, const char *stanza,
                    size_t stanza_len, int sync, char *err, size_t errsize)
{
    size_t len;
    char *item = mx_queue_item_make(kind, stanza, stanza_len, &len);
    int rc;

    if (!item) {
        if (err && errsize)
            snprintf(err, errsize, "out of memory");
        return -1;
    }
    if (len > MX_QUEUE_ITEM_MAX) { /* the holder would refuse it */
        if (err && errsize)
            snprintf(err, errsize, "the stanza is too large (%zu bytes; "
                     "the queue takes items of up to %u)", len,
                     MX_QUEUE_ITEM_MAX);
        free(item);
        return -1;
    }
    rc = submit_socket(dir, item, len, err, errsize);
    if (rc == 1)
        rc = mx_queue_put(dir, item, len, sync, NULL, 0, err, errsize);
    free(item);
    return rc;
}
