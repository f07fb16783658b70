/* SPDX-License-Identifier: Apache-2.0 */
/* mx_backoff: see mx_backoff.h */
#include "mx_backoff.h"

unsigned int mx_backoff_ms(unsigned int failures, unsigned int rnd)
{
    unsigned int cap = MX_BACKOFF_MIN_MS;

    while (failures-- > 1 && cap < MX_BACKOFF_MAX_MS)
        cap *= 2;
    if (cap > MX_BACKOFF_MAX_MS)
        cap = MX_BACKOFF_MAX_MS;
    /* "equal jitter": half fixed, half random */
    return cap / 2 + rnd % (cap / 2 + 1);
}
