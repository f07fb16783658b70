/* SPDX-License-Identifier: Apache-2.0 */
/* mx_redact: keep secrets out of log lines. libstrophe logs every stanza it
 * sends and receives at debug level, SASL exchanges included; these carry
 * credentials (PLAIN carries the password itself, base64-encoded).
 * Portable: no httpd, no APR. */
#ifndef MX_REDACT_H
#define MX_REDACT_H

#include <stddef.h>

/* Copy msg into out (size outsize, always NUL-terminated, truncated if
 * needed) with the text content of SASL and component-handshake elements
 * (<auth>, <response>, <challenge>, <success>, <handshake>) replaced by
 * "[redacted]", and every occurrence of `secret` (if not NULL or empty)
 * replaced by "[redacted]". Returns out. */
char *mx_redact(const char *msg, const char *secret, char *out, size_t outsize);

#endif
