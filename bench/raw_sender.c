/* SPDX-License-Identifier: Apache-2.0 */
/* raw_sender: the baseline of the sending benchmark. Logs in as another
 * account over TLS with libstrophe and sends --count chat messages to --to
 * as fast as the connection takes them: no queue on disk, no acks.
 *
 *   BENCH_PASS=... raw_sender --jid bob@localhost --port P --ca CA \
 *       --to alice@localhost --count N --prefix TAG
 *
 * Prints "START t" (monotonic seconds) just before the first message and
 * "SENT t n" once libstrophe has written them all to the socket; the
 * receiver (raw_client recv) says when the last one arrived. The stanzas
 * have the shape of mod_xmpp's (id, body, origin-id). */
#include "bench_xmpp.h"

#define QUEUE_HIGH 512  /* stanzas waiting in libstrophe before we pause */

int main(int argc, char **argv)
{
    bx_session s = { 0 };
    const char *to = bx_opt(argc, argv, "--to", NULL);
    const char *prefix = bx_opt(argc, argv, "--prefix", "raw");
    long count = bx_num(argc, argv, "--count", 1000), i = 0;
    double limit, t0;

    if (!to || count < 1)
        bx_die("--to and --count are required");
    bx_login(&s, argc, argv);
    limit = bx_now() + (double)bx_num(argc, argv, "--timeout", 120);
    t0 = bx_now();
    printf("START %.6f\n", t0);
    fflush(stdout);
    while (i < count && !s.ended && !bx_stop && bx_now() < limit) {
        while (i < count && xmpp_conn_send_queue_len(s.conn) < QUEUE_HIGH) {
            xmpp_send_raw_string(s.conn,
                                 "<message to=\"%s\" type=\"chat\" "
                                 "id=\"rs%ld\"><body>%s %ld</body>"
                                 "<origin-id xmlns=\"urn:xmpp:sid:0\" "
                                 "id=\"rs%ld\"/></message>",
                                 to, i, prefix, i, i);
            i++;
        }
        xmpp_run_once(s.ctx, BX_SLICE_MS);
    }
    while (xmpp_conn_send_queue_len(s.conn) > 0 && !s.ended && !bx_stop
           && bx_now() < limit)
        xmpp_run_once(s.ctx, BX_SLICE_MS);
    printf("SENT %.6f %ld\n", bx_now(), i);
    fflush(stdout);
    bx_logout(&s);
    return i == count ? 0 : 1;
}
