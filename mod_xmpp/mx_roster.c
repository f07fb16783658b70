/* SPDX-License-Identifier: Apache-2.0 */
/* mx_roster: see mx_roster.h. A chained hash table of malloc'd contacts,
 * doubling its buckets as it fills (it never holds more than the roster
 * the server sends). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mx_jid.h"
#include "mx_roster.h"
#include "mx_xmltext.h"

typedef struct contact {
    struct contact *next;  /* in its bucket */
    unsigned int sub;      /* MX_SUB_* */
    unsigned char seen;    /* in the full roster being read */
    unsigned char stored;  /* its presence is stored */
    size_t nres;           /* resources online: full JIDs */
    char **res;
    char bare[];
} contact;

struct mx_roster {
    contact **b;
    size_t nb, count, online, stored;
    size_t max_stored, max_res;
    int full;              /* a claim was refused since there was room */
};

/* FNV-1a */
static size_t hash(const char *s)
{
    uint64_t h = 14695981039346656037ULL;

    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
    return (size_t)h;
}

/* The link that points at bare's contact, or at NULL where it would go */
static contact **link_of(const mx_roster *r, const char *bare)
{
    contact **l = &r->b[hash(bare) & (r->nb - 1)];

    while (*l && strcmp((*l)->bare, bare))
        l = &(*l)->next;
    return l;
}

static contact *find(const mx_roster *r, const char *bare)
{
    return *link_of(r, bare);
}

static int grow(mx_roster *r)
{
    size_t nb = r->nb * 2, i;
    contact **b = calloc(nb, sizeof(*b)), *c, *next;

    if (!b)
        return -1;
    for (i = 0; i < r->nb; i++)
        for (c = r->b[i]; c; c = next) {
            next = c->next;
            c->next = b[hash(c->bare) & (nb - 1)];
            b[hash(c->bare) & (nb - 1)] = c;
        }
    free(r->b);
    r->b = b;
    r->nb = nb;
    return 0;
}

mx_roster *mx_roster_create(size_t max_stored, size_t max_resources)
{
    mx_roster *r = calloc(1, sizeof(*r));

    if (!r || !(r->b = calloc(64, sizeof(*r->b)))) {
        free(r);
        return NULL;
    }
    r->nb = 64;
    r->max_stored = max_stored;
    r->max_res = max_resources;
    return r;
}

static void forget_resources(mx_roster *r, contact *c)
{
    size_t i;

    if (c->nres)
        r->online--;
    for (i = 0; i < c->nres; i++)
        free(c->res[i]);
    free(c->res);
    c->res = NULL;
    c->nres = 0;
}

/* Returns MX_ROSTER_FORGET when its presence was stored */
static int forget_presence(mx_roster *r, contact *c)
{
    forget_resources(r, c);
    if (!c->stored)
        return 0;
    c->stored = 0;
    r->stored--;
    if (r->stored < r->max_stored)
        r->full = 0;
    return MX_ROSTER_FORGET;
}

static int unlink_contact(mx_roster *r, contact **l)
{
    contact *c = *l;
    int rv = forget_presence(r, c);

    *l = c->next;
    free(c);
    r->count--;
    return rv;
}

void mx_roster_destroy(mx_roster *r)
{
    size_t i;

    if (!r)
        return;
    for (i = 0; i < r->nb; i++)
        while (r->b[i])
            unlink_contact(r, &r->b[i]);
    free(r->b);
    free(r);
}

unsigned int mx_roster_subscription(const char *sub)
{
    if (!sub)
        return 0;
    if (!strcmp(sub, "both"))
        return MX_SUB_FROM | MX_SUB_TO;
    if (!strcmp(sub, "from"))
        return MX_SUB_FROM;
    return !strcmp(sub, "to") ? MX_SUB_TO : 0;
}

static contact *add(mx_roster *r, const char *bare)
{
    size_t len = strlen(bare);
    contact *c, **l;

    if (r->count >= r->nb && grow(r) != 0)
        return NULL;
    if (!(c = calloc(1, sizeof(*c) + len + 1)))
        return NULL;
    memcpy(c->bare, bare, len + 1);
    l = link_of(r, bare);
    *l = c;
    r->count++;
    return c;
}

int mx_roster_set(mx_roster *r, const char *bare, unsigned int sub)
{
    contact **l = link_of(r, bare), *c = *l;
    unsigned int was = c ? c->sub : 0;
    int rv = ((was ^ sub) & MX_SUB_FROM) ? MX_ROSTER_SUBSCRIBERS : 0;

    if (!sub) /* "none", "remove", a pending request: nothing to keep */
        return c ? rv | unlink_contact(r, l) : rv;
    if (!c && !(c = add(r, bare)))
        return -1;
    c->sub = sub;
    c->seen = 1;
    if (!(sub & MX_SUB_TO))
        rv |= forget_presence(r, c);
    return rv;
}

unsigned int mx_roster_get(const mx_roster *r, const char *bare)
{
    contact *c = find(r, bare);

    return c ? c->sub : 0;
}

void mx_roster_begin(mx_roster *r)
{
    size_t i;
    contact *c;

    for (i = 0; i < r->nb; i++)
        for (c = r->b[i]; c; c = c->next)
            c->seen = 0;
}

void mx_roster_end(mx_roster *r,
                   void (*gone)(const char *bare, int stored, void *ud),
                   void *ud)
{
    contact **l;
    size_t i;

    for (i = 0; i < r->nb; i++)
        for (l = &r->b[i]; *l;) {
            if ((*l)->seen) {
                l = &(*l)->next;
                continue;
            }
            if (gone)
                gone((*l)->bare, (*l)->stored, ud);
            unlink_contact(r, l);
        }
}

/* Index of full among c's resources, c->nres when absent */
static size_t res_index(const contact *c, const char *full)
{
    size_t i;

    for (i = 0; i < c->nres && strcmp(c->res[i], full); i++)
        ;
    return i;
}

/* Follow one more resource; beyond max_res (or without memory) it is not
 * followed, though the contact is online anyway. */
static void res_add(mx_roster *r, contact *c, const char *full)
{
    char **res, *dup;

    if (c->nres >= r->max_res
        || !(res = realloc(c->res, (c->nres + 1) * sizeof(*res))))
        return;
    c->res = res;
    if (!(dup = strdup(full)))
        return;
    if (c->nres == 0)
        r->online++;
    c->res[c->nres++] = dup;
}

long mx_roster_resource(mx_roster *r, const char *bare, const char *full,
                        int available)
{
    contact *c = find(r, bare);
    size_t i;

    if (!c || !(c->sub & MX_SUB_TO))
        return -1;
    i = res_index(c, full);
    if (available && i == c->nres)
        res_add(r, c, full);
    else if (!available && i < c->nres) {
        free(c->res[i]);
        c->res[i] = c->res[c->nres - 1];
        if (--c->nres == 0) {
            free(c->res);
            c->res = NULL;
            r->online--;
        }
    }
    return (long)c->nres;
}

int mx_roster_claim(mx_roster *r, const char *bare)
{
    contact *c = find(r, bare);

    if (!c || !(c->sub & MX_SUB_TO))
        return 0;
    if (c->stored)
        return 1;
    if (r->stored >= r->max_stored) {
        if (r->full)
            return 0;
        r->full = 1;
        return -1;
    }
    c->stored = 1;
    r->stored++;
    return 1;
}

void mx_roster_clear_presence(mx_roster *r)
{
    size_t i;
    contact *c;

    for (i = 0; i < r->nb; i++)
        for (c = r->b[i]; c; c = c->next)
            forget_presence(r, c);
}

void mx_roster_each(const mx_roster *r,
                    void (*fn)(const char *bare, unsigned int sub, void *ud),
                    void *ud)
{
    size_t i;
    contact *c;

    for (i = 0; i < r->nb; i++)
        for (c = r->b[i]; c; c = c->next)
            fn(c->bare, c->sub, ud);
}

size_t mx_roster_count(const mx_roster *r)
{
    return r->count;
}

size_t mx_roster_online(const mx_roster *r)
{
    return r->online;
}

size_t mx_roster_stored(const mx_roster *r)
{
    return r->stored;
}

static void add_subscriber(const char *bare, unsigned int sub, void *ud)
{
    if (sub & MX_SUB_FROM) {
        mx_sbuf_put(ud, bare, strlen(bare));
        mx_sbuf_put(ud, "\n", 1);
    }
}

char *mx_roster_subscribers_text(const mx_roster *r, size_t *len)
{
    mx_sbuf t = { NULL, 0, 0, 0 };

    mx_roster_each(r, add_subscriber, &t);
    if (!mx_sbuf_done(&t) && (t.failed || !(t.buf = calloc(1, 1))))
        return NULL; /* out of memory; nothing put: "" */
    *len = t.len;
    return t.buf;
}

long mx_roster_read_subscribers(mx_roster *r, char *text)
{
    char bare[2 * MX_JID_PART_MAX + 2], *line, *next;
    long n = 0;

    for (line = text; line && *line; line = next) {
        if ((next = strchr(line, '\n')) != NULL)
            *next++ = '\0';
        if (mx_jid_bare_prep(line, bare, sizeof(bare)) < 0
            || strcmp(bare, line))
            continue;
        if (mx_roster_set(r, bare, mx_roster_get(r, bare) | MX_SUB_FROM) < 0)
            return -1;
        n++;
    }
    return n;
}
