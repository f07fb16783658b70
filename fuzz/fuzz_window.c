/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_window: the outbound window (mx_window) driven by a program of
 * sends, skips, requests, acks with any h, barrier answers with any id
 * (the bytes of an outside stanza's id attribute), stream errors and
 * reconnects, checked against a plain model of what it must do.
 * Properties: at most MX_WINDOW_SIZE records in flight; an ack or a
 * barrier answer removes exactly the records sent as stanzas up to its
 * number (modulo 2^32), in order, and only when the number was sent in
 * this session; an id without this session's prefix confirms nothing;
 * the acknowledged bound never goes back; the inbound h said never goes
 * down and never passes what was received.
 *
 * Input: a byte per operation (low 4 bits), some followed by operands. */
#include "fuzz_common.h"

#include "mx_window.h"

#define PREFIX "mx-ack-00112233445566778899aabbccddeeff-"

typedef struct {
    mx_seq record;
    uint32_t seq;
} model_rec;

static model_rec flight[MX_WINDOW_SIZE];
static int head, len;
static uint32_t out_seq;
static mx_seq next_record, acked_bound;
static mx_window *the_window;

static int after(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b) > 0;
}

/* what an ack of h must remove: the last record, or 0 */
static mx_seq model_cover(uint32_t h, long *sent)
{
    mx_seq last = 0;

    *sent = 0;
    while (len > 0 && !after(flight[head].seq, h)) {
        last = flight[head].record;
        head = (head + 1) % MX_WINDOW_SIZE;
        len--;
        ++*sent;
    }
    return last;
}

static void check_done(const mx_window_done *d, mx_seq want)
{
    FUZZ_ASSERT(d->last == want);
    if (d->last) {
        FUZZ_ASSERT(d->last > acked_bound);
        acked_bound = d->last;
    }
    FUZZ_ASSERT(mx_window_in_flight(the_window) == len);
}

static uint32_t get32(const uint8_t **p, const uint8_t *end)
{
    uint32_t v = 0;
    int i;

    for (i = 0; i < 4 && *p < end; i++)
        v = v << 8 | *(*p)++;
    return v;
}

static uint32_t handled_n;
static uint32_t handled(void *ud, uint32_t received)
{
    (void)ud;
    return after(handled_n, received) ? received : handled_n;
}

static void session(mx_window *w, int sm)
{
    mx_window_start(w, sm, PREFIX);
    head = len = 0;
    out_seq = 0;
    next_record = acked_bound + 1; /* the journal again from the bound */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *p = data, *end = data + size;
    mx_window *w = mx_window_new(NULL);
    mx_window_done d;
    long sent;
    long long now = 0;
    uint32_t said = 0, h;
    char id[160];

    if (!w)
        return 0;
    the_window = w;
    acked_bound = 0;
    session(w, 1);
    mx_window_set_handled(w, handled, NULL);
    while (p < end) {
        uint8_t op = *p++;

        now += op >> 4;
        switch (op & 15) {
        case 0: /* a new session, stream management or barriers */
            session(w, op >> 4 & 1);
            said = 0;
            break;
        case 1: case 2: /* send, or skip, the next record */
            if (!mx_window_may_send(w, next_record))
                break;
            FUZZ_ASSERT(len < MX_WINDOW_SIZE);
            if ((op & 15) == 1) {
                mx_window_sent_stanza(w, now);
                out_seq++;
                mx_window_sent_record(w, next_record);
            }
            else if (mx_window_skip(w, next_record) != 0) {
                FUZZ_ASSERT(len == 0);
                acked_bound = next_record;
                next_record++;
                break;
            }
            flight[(head + len) % MX_WINDOW_SIZE].record = next_record++;
            flight[(head + len++) % MX_WINDOW_SIZE].seq = out_seq;
            break;
        case 3: /* another stanza */
            mx_window_sent_stanza(w, now);
            out_seq++;
            break;
        case 4: /* an ack request */
            h = mx_window_asked(w, now);
            if (!mx_window_sm(w)) {
                out_seq++;
                FUZZ_ASSERT(h == out_seq);
            }
            FUZZ_ASSERT(mx_window_out_seq(w) == out_seq);
            break;
        case 5: case 6: /* <a h/> or a barrier of ours, h near out_seq or
                         * anything */
            h = op & 0x80 ? get32(&p, end) : out_seq - (op >> 5 & 3);
            if ((op & 15) == 5) {
                int rc = mx_window_ack(w, h, &d);

                FUZZ_ASSERT(rc == (after(h, out_seq) ? -1 : d.last != 0));
            }
            else {
                snprintf(id, sizeof(id), "%s%u", PREFIX, (unsigned)h);
                FUZZ_ASSERT(mx_window_barrier(w, id, &d)
                            == (h == 0 || after(h, out_seq) ? MX_BARRIER_BAD
                                                            : MX_BARRIER_OWN));
            }
            check_done(&d, after(h, out_seq) ? 0 : model_cover(h, &sent));
            if (d.last)
                FUZZ_ASSERT(d.sent <= sent);
            break;
        case 7: { /* any id, from the input */
            size_t n = (size_t)(end - p) < 40 ? (size_t)(end - p) : 40;
            mx_barrier_kind k;

            memcpy(id, p, n);
            id[n] = '\0';
            p += n;
            k = mx_window_barrier(w, id, &d);
            if (k != MX_BARRIER_OWN)
                check_done(&d, 0);
            else {
                FUZZ_ASSERT(!strncmp(id, PREFIX, strlen(PREFIX)));
                h = (uint32_t)strtoull(id + strlen(PREFIX), NULL, 10);
                check_done(&d, model_cover(h, &sent));
            }
            break;
        }
        case 8: /* the session ends */
            mx_window_end(w, op & 0x10 ? "policy-violation" : NULL,
                          op >> 5 & 1);
            FUZZ_ASSERT(mx_window_in_flight(w) == 0);
            session(w, op >> 6 & 1);
            said = 0;
            break;
        case 9: /* a stanza from the server */
            mx_window_received(w);
            break;
        case 10: /* the server asks what we handled */
            handled_n = op >> 4;
            h = mx_window_in_request(w);
            FUZZ_ASSERT(!after(said, h) && !after(h, mx_window_in_seq(w)));
            said = h;
            break;
        case 11:
            handled_n = mx_window_in_seq(w) - (op >> 4);
            if (mx_window_in_more(w, &h)) {
                FUZZ_ASSERT(after(h, said) && !after(h, mx_window_in_seq(w)));
                said = h;
            }
            break;
        case 12: /* a set-aside record is skipped before it is sent */
            if (mx_window_may_send(w, next_record)
                && mx_window_poisoned(w, next_record)) {
                FUZZ_ASSERT(len == 0);
                FUZZ_ASSERT(mx_window_skip(w, next_record) == next_record);
                acked_bound = next_record++;
            }
            break;
        default:
            (void)mx_window_ask_due(w, now);
            break;
        }
    }
    mx_window_free(w);
    return 0;
}
