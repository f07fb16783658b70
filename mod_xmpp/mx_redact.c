/* SPDX-License-Identifier: Apache-2.0 */
/* mx_redact: see mx_redact.h */
#include <string.h>

#include "mx_redact.h"

#define MX_REDACTED "[redacted]"

static const char *const sensitive[] = {
    "auth", "response", "challenge", "success", "handshake", NULL
};

/* Writer that never overflows and always leaves room for the NUL. */
typedef struct {
    char *buf;
    size_t size, len;
} outbuf;

static void put(outbuf *o, const char *s, size_t n)
{
    size_t room = o->size - 1 - o->len;

    if (n > room)
        n = room;
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

/* If p starts an opening tag of a sensitive element, return the element
 * name's length, else 0. */
static size_t sensitive_open(const char *p)
{
    int i;
    size_t n;

    if (*p != '<')
        return 0;
    for (i = 0; sensitive[i]; i++) {
        n = strlen(sensitive[i]);
        if (strncmp(p + 1, sensitive[i], n) == 0
            && (p[1 + n] == '>' || p[1 + n] == ' ' || p[1 + n] == '/'))
            return n;
    }
    return 0;
}

/* Copy msg, blanking the content of sensitive elements. */
static void redact_elements(const char *msg, outbuf *o)
{
    const char *p = msg, *gt, *end;
    size_t n;
    char close[32];

    while (*p) {
        n = sensitive_open(p);
        gt = n ? strchr(p, '>') : NULL;
        if (!gt) {
            put(o, p, 1);
            p++;
            continue;
        }
        put(o, p, (size_t)(gt - p) + 1);
        if (gt[-1] == '/') { /* empty element */
            p = gt + 1;
            continue;
        }
        memcpy(close, "</", 2);
        memcpy(close + 2, p + 1, n);
        close[n + 2] = '\0';
        end = strstr(gt + 1, close);
        if (end != gt + 1)
            put(o, MX_REDACTED, sizeof(MX_REDACTED) - 1);
        p = end ? end : gt + 1 + strlen(gt + 1);
    }
}

char *mx_redact(const char *msg, const char *secret, char *out, size_t outsize)
{
    outbuf o = { out, outsize, 0 };
    char *hit, *from;
    size_t slen = secret ? strlen(secret) : 0;

    if (!out || outsize == 0)
        return out;
    redact_elements(msg ? msg : "", &o);
    out[o.len] = '\0';
    if (slen == 0)
        return out;
    /* the secret itself, wherever else it shows up; in place, since the
     * marker may be longer than the secret we shift the tail */
    from = out;
    while ((hit = strstr(from, secret)) != NULL) {
        size_t tail = strlen(hit + slen), mlen = sizeof(MX_REDACTED) - 1;
        size_t max_tail = outsize - 1 - (size_t)(hit - out) - mlen;

        if ((size_t)(hit - out) + mlen >= outsize) {
            *hit = '\0';
            break;
        }
        if (tail > max_tail)
            tail = max_tail;
        memmove(hit + mlen, hit + slen, tail);
        memcpy(hit, MX_REDACTED, mlen);
        hit[mlen + tail] = '\0';
        from = hit + mlen; /* the marker itself may contain the secret */
    }
    return out;
}
