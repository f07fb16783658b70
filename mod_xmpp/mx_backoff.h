/* SPDX-License-Identifier: Apache-2.0 */
/* mx_backoff: reconnect delays, exponential with jitter, so that many
 * servers restarted together do not hammer the XMPP server in step.
 * Portable: no httpd, no APR. */
#ifndef MX_BACKOFF_H
#define MX_BACKOFF_H

#define MX_BACKOFF_MIN_MS 1000
#define MX_BACKOFF_MAX_MS 60000

/* Delay in milliseconds before attempt number `failures` (1 = after the
 * first failure). `rnd` is a random 32-bit value supplied by the caller.
 * The result lies in [cap/2, cap] with cap = min(MAX, MIN * 2^(failures-1)). */
unsigned int mx_backoff_ms(unsigned int failures, unsigned int rnd);

#endif
