/* SPDX-License-Identifier: Apache-2.0 */
/* mx_batch: see mx_batch.h */
#include "mx_batch.h"

size_t mx_batch_plan(mx_batch_req *r, size_t n, long queued, long limit,
                     int *sync)
{
    size_t i, taken = 0;

    *sync = 0;
    for (i = 0; i < n; i++) {
        r[i].record = 0;
        if (r[i].refused)
            r[i].verdict = MX_BATCH_REFUSED;
        else if (!r[i].local && queued + (long)taken >= limit)
            r[i].verdict = MX_BATCH_FULL;
        else {
            r[i].verdict = MX_BATCH_TAKEN;
            taken++;
            *sync |= !r[i].local;
        }
    }
    return taken;
}

void mx_batch_number(mx_batch_req *r, size_t n, mx_seq first)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (r[i].verdict == MX_BATCH_TAKEN)
            r[i].record = first++;
}
