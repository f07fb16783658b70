/* SPDX-License-Identifier: Apache-2.0 */
/* reply_cgi: the C CGI of the receiving benchmark. Reads the
 * multipart/form-data POST (as mod_xmpp posts an inbound message, or as
 * wrk posts the same bytes), finds the "body" part, and answers
 * "re: <body>" as text/plain, which mod_xmpp sends back as the chat reply.
 * The same work whoever calls it: no use of the XMPP_* variables. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_INPUT (1024 * 1024)

/* The value of the part named "body": after its headers' blank line, up
 * to the CRLF before the next boundary. */
static const char *body_part(char *in, size_t len, size_t *vlen)
{
    const char *name = "name=\"body\"", *p, *end;
    char *v;

    p = memmem(in, len, name, strlen(name));
    if (!p || !(v = memmem(p, len - (size_t)(p - in), "\r\n\r\n", 4)))
        return NULL;
    v += 4;
    end = memmem(v, len - (size_t)(v - in), "\r\n--", 4);
    *vlen = end ? (size_t)(end - v) : 0;
    return v;
}

int main(void)
{
    const char *cl = getenv("CONTENT_LENGTH"), *body;
    long want = cl ? strtol(cl, NULL, 10) : 0;
    size_t got = 0, n, blen = 0;
    char *in;

    if (want < 0 || want > MAX_INPUT)
        want = 0;
    in = malloc((size_t)want + 1);
    while (in && got < (size_t)want
           && (n = fread(in + got, 1, (size_t)want - got, stdin)) > 0)
        got += n;
    body = in ? body_part(in, got, &blen) : NULL;
    if (!body) {
        fputs("Status: 204 No Content\r\n\r\n", stdout);
        return 0;
    }
    fputs("Content-Type: text/plain; charset=UTF-8\r\n\r\nre: ", stdout);
    fwrite(body, 1, blen, stdout);
    return 0;
}
