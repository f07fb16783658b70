/* SPDX-License-Identifier: Apache-2.0 */
/* mx_log: see mx_log.h */
#include <stdarg.h>
#include <stdio.h>

#include "mx_log.h"

static mx_log_fn *log_fn;
static void *log_baton;

void mx_log_set(mx_log_fn *fn, void *baton)
{
    log_fn = fn;
    log_baton = baton;
}

void mx_log(void *ctx, int level, const char *fmt, ...)
{
    char line[1024];
    va_list ap;

    if (!log_fn)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    log_fn(log_baton, ctx, level, line);
}
