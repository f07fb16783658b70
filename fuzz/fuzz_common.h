/* SPDX-License-Identifier: Apache-2.0 */
/* Include this first (it defines _XOPEN_SOURCE for nftw).
 * Helpers shared by the fuzz targets: splitting the input into fields, a
 * private temporary directory, and libxml2's verdict on a stanza.
 * Header-only (static functions): each target is one file plus the core. */
#ifndef MX_FUZZ_COMMON_H
#define MX_FUZZ_COMMON_H

#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

/* A failed property: libFuzzer records abort() as a crash and keeps the
 * input. The message says which property. */
#define FUZZ_ASSERT(cond)                                                  \
    do {                                                                   \
        if (!(cond)) {                                                     \
            fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__,      \
                    __LINE__, #cond);                                      \
            abort();                                                       \
        }                                                                  \
    } while (0)

/* The input cut at each 0x01 byte into up to max NUL-terminated fields
 * (a field keeps any NUL byte inside it; C-string APIs see up to it).
 * Fields the input has no bytes for are NULL: "absent" is an input the
 * APIs take too. lens[i] is the field's length. Free with fields_free. */
static size_t fields_split(const uint8_t *data, size_t size, char **f,
                           size_t *lens, size_t max)
{
    size_t n = 0, start = 0, i;

    for (i = 0; i < max; i++) {
        f[i] = NULL;
        lens[i] = 0;
    }
    for (i = 0; i <= size && n < max; i++) {
        if (i == size || data[i] == 0x01) {
            f[n] = malloc(i - start + 1);
            if (!f[n])
                abort();
            memcpy(f[n], data + start, i - start);
            f[n][i - start] = '\0';
            lens[n] = i - start;
            n++;
            start = i + 1;
        }
    }
    return n;
}

static void fields_free(char **f, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        free(f[i]);
}

/* ---- a private directory, removed at exit ---- */

/* path made to hold exactly the n bytes at p */
static void fuzz_put_file(const char *path, const void *p, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

    if (fd < 0)
        abort();
    if (n && write(fd, p, n) != (ssize_t)n)
        abort();
    close(fd);
}

static char fuzz_dir_path[4096];

static int rm_one(const char *path, const struct stat *st, int flag,
                  struct FTW *ftw)
{
    (void)st; (void)flag; (void)ftw;
    return remove(path);
}

static void fuzz_rm_rf(const char *path)
{
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void fuzz_dir_cleanup(void)
{
    if (fuzz_dir_path[0])
        fuzz_rm_rf(fuzz_dir_path);
}

/* $TMPDIR/mx-fuzz-XXXXXX, made once per process */
static const char *fuzz_dir(void)
{
    if (!fuzz_dir_path[0]) {
        const char *t = getenv("TMPDIR");

        snprintf(fuzz_dir_path, sizeof(fuzz_dir_path), "%s/mx-fuzz-XXXXXX",
                 t && *t ? t : "/tmp");
        if (!mkdtemp(fuzz_dir_path))
            abort();
        atexit(fuzz_dir_cleanup);
    }
    return fuzz_dir_path;
}

/* Empty the private directory (every input starts from nothing) */
static void fuzz_dir_reset(void)
{
    const char *d = fuzz_dir();

    fuzz_rm_rf(d);
    if (mkdir(d, 0700) != 0)
        abort();
}

/* ---- libxml2 ---- */

static void fuzz_xml_quiet(void *ctx, xmlErrorPtr e)
{
    (void)ctx; (void)e;
}

/* The document text parsed strictly (no recovery, no network, no entity
 * loading); NULL unless well-formed and namespace-well-formed. */
static xmlDocPtr fuzz_xml_parse(const char *text, size_t len)
{
    xmlParserCtxtPtr ctxt = xmlNewParserCtxt();
    xmlDocPtr doc;
    int ok;

    if (!ctxt)
        abort();
    ctxt->sax->serror = fuzz_xml_quiet;
    doc = xmlCtxtReadMemory(ctxt, text, (int)len, NULL, "UTF-8",
                            XML_PARSE_NONET | XML_PARSE_NOERROR
                            | XML_PARSE_NOWARNING);
    ok = doc && ctxt->wellFormed && ctxt->nsWellFormed;
    xmlFreeParserCtxt(ctxt);
    if (!ok && doc) {
        xmlFreeDoc(doc);
        doc = NULL;
    }
    return doc;
}

static int fuzz_xml_ok(const char *text)
{
    xmlDocPtr doc = fuzz_xml_parse(text, strlen(text));

    if (doc)
        xmlFreeDoc(doc);
    return doc != NULL;
}

/* A stanza a builder made: it must parse, strictly, with its root named
 * name. Returns the document (*root its root element); the input is
 * printed when it does not parse, to see why. */
static xmlDocPtr fuzz_stanza_doc(const char *st, const char *name,
                                 xmlNodePtr *root)
{
    xmlDocPtr doc = fuzz_xml_parse(st, strlen(st));

    if (!doc)
        fprintf(stderr, "not well-formed: %s\n", st);
    FUZZ_ASSERT(doc != NULL);
    *root = xmlDocGetRootElement(doc);
    FUZZ_ASSERT(*root && !strcmp((const char *)(*root)->name, name));
    return doc;
}

/* The first element named name below (or at) n, depth first */
static xmlNodePtr fuzz_xml_find(xmlNodePtr n, const char *name)
{
    xmlNodePtr hit;

    for (; n; n = n->next) {
        if (n->type == XML_ELEMENT_NODE
            && !strcmp((const char *)n->name, name))
            return n;
        if ((hit = fuzz_xml_find(n->children, name)) != NULL)
            return hit;
    }
    return NULL;
}

/* 1 when element el's attribute attr (or text content when attr is NULL)
 * is exactly want: what a receiver will read is what was sent */
static int fuzz_xml_value_is(xmlNodePtr el, const char *attr,
                             const char *want)
{
    xmlChar *v = attr ? xmlGetProp(el, (const xmlChar *)attr)
                      : xmlNodeGetContent(el);
    int same = v && !strcmp((const char *)v, want);

    xmlFree(v);
    return same;
}

static void fuzz_xml_init(void)
{
    static int done;

    if (!done) {
        xmlInitParser();
        xmlSetStructuredErrorFunc(NULL, fuzz_xml_quiet);
        done = 1;
    }
}

#endif
