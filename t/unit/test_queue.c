/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the outbound queue on disk: the spool (mx_spool), the
 * full flag (mx_full) and the item format (mx_item). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "unit.h"
#include "mx_ops.h"
#include "mx_full.h"
#include "mx_item.h"
#include "mx_presence.h"
#include "mx_spool.h"
#include "mx_addr_roster.h"
#include "mx_send.h"

#define N_ITEMS 1000

static char base[256];

/* A fresh queue directory under base. */
static const char *new_queue(const char *name)
{
    static char path[300];

    snprintf(path, sizeof(path), "%s/%s", base, name);
    mkdir(path, 0700);
    return path;
}

static void touch(const char *dir, const char *sub, const char *name)
{
    char path[1024];
    int fd;

    snprintf(path, sizeof(path), "%s/%s/%s", dir, sub, name);
    fd = open(path, O_WRONLY | O_CREAT, 0600);
    if (fd >= 0)
        close(fd);
}

static int exists(const char *dir, const char *sub, const char *name)
{
    char path[1024];
    struct stat st;

    snprintf(path, sizeof(path), "%s/%s/%s", dir, sub, name);
    return stat(path, &st) == 0;
}

static void test_order(void)
{
    static char names[N_ITEMS][MX_QUEUE_NAME_SIZE];
    const char *q = new_queue("order");
    char data[32], **list;
    size_t n, i;
    int ok = 1, same = 1;

    for (i = 0; i < N_ITEMS; i++) {
        snprintf(data, sizeof(data), "item %zu", i);
        ok &= mx_queue_put(q, data, strlen(data), 0, names[i],
                           sizeof(names[i]), NULL, 0) == 0;
    }
    CHECK(ok);
    CHECK(mx_queue_name_valid(names[0]));
    CHECK(mx_queue_count(q) == N_ITEMS);
    CHECK(mx_queue_list(q, 2 * N_ITEMS, &list, &n) == 0);
    CHECK(n == N_ITEMS);
    for (i = 0; i < n && i < N_ITEMS; i++)
        same &= strcmp(list[i], names[i]) == 0;
    CHECK(same);
    mx_queue_free_list(list, n);

    /* only the oldest, however many there are */
    CHECK(mx_queue_list(q, 10, &list, &n) == 0);
    CHECK(n == 10);
    for (i = 0, same = 1; i < n; i++)
        same &= strcmp(list[i], names[i]) == 0;
    CHECK(same);
    mx_queue_free_list(list, n);
    CHECK(mx_queue_list(q, 0, &list, &n) == 0 && n == 0 && list == NULL);

    /* the oldest after removing the first 500 */
    for (i = 0; i < N_ITEMS / 2; i++)
        mx_queue_remove(q, names[i]);
    CHECK(mx_queue_list(q, 1, &list, &n) == 0 && n == 1);
    CHECK_STR(list[0], names[N_ITEMS / 2]);
    mx_queue_free_list(list, n);
    CHECK(mx_queue_count(q) == N_ITEMS / 2);
}

static void test_read_remove(void)
{
    static const char data[] = "MX1 stanza\n<message>\0binary\xff</message>";
    const char *q = new_queue("rw");
    char name[MX_QUEUE_NAME_SIZE], *back;
    size_t len;

    CHECK(mx_queue_put(q, data, sizeof(data) - 1, 1, name, sizeof(name),
                       NULL, 0) == 0);
    CHECK(mx_queue_read(q, name, &back, &len) == 0);
    CHECK(len == sizeof(data) - 1 && memcmp(back, data, len) == 0);
    CHECK(back[len] == '\0');
    free(back);
    CHECK(mx_queue_put(q, "", 0, 1, NULL, 0, NULL, 0) == 0); /* empty is fine */
    CHECK(mx_queue_count(q) == 2);
    CHECK(mx_queue_remove(q, name) == 0);
    CHECK(mx_queue_count(q) == 1);
    CHECK(mx_queue_remove(q, name) == 0); /* already gone */
    CHECK(mx_queue_read(q, name, &back, &len) == -1 && errno == ENOENT);
    CHECK(mx_queue_read(q, "../FULL", &back, &len) == -1 && errno == EINVAL);
    CHECK(mx_queue_remove(q, "x") == -1 && errno == EINVAL);
    CHECK(!exists(q, "tmp", name));
}

static void test_full(void)
{
    const char *q = new_queue("full");
    char err[256], name[MX_QUEUE_NAME_SIZE];

    CHECK(mx_queue_set_full(q, 0) == 0);
    CHECK(mx_queue_set_full(q, 1) == 1);
    CHECK(mx_queue_set_full(q, 1) == 0); /* already up: nothing to log */
    CHECK(mx_queue_put(q, "x", 1, 1, name, sizeof(name), err, sizeof(err))
          == MX_QUEUE_FULL);
    CHECK(strstr(err, "the outbound queue is full") == err);
    CHECK(mx_queue_count(q) == 0);
    CHECK(mx_queue_set_full_counts(q, 5, 5) == 0);
    CHECK(mx_queue_put(q, "x", 1, 1, name, sizeof(name), err, sizeof(err))
          == MX_QUEUE_FULL);
    CHECK_STR(err, "the outbound queue is full (5 items; limit 5)");
    CHECK(mx_queue_set_full(q, 0) == 0);
    CHECK(mx_queue_put(q, "x", 1, 1, name, sizeof(name), err, sizeof(err)) == 0);
    CHECK_STR(err, "");
    CHECK(mx_queue_set_full_counts(q, 7, 5) == 1);
    CHECK(mx_queue_set_full(q, 0) == 0);
}

static void test_clean_tmp(void)
{
    static const char old[] = "00000000000000000001-0000000001-00000001";
    static const char fresh[] = "00000000000000000002-0000000001-00000001";
    const char *q = new_queue("clean");
    char path[1024];
    struct timespec times[2] = { { 1000, 0 }, { 1000, 0 } };

    CHECK(mx_queue_put(q, "x", 1, 0, NULL, 0, NULL, 0) == 0); /* makes tmp/ */
    touch(q, "tmp", old);
    touch(q, "tmp", fresh);
    touch(q, "tmp", "not-an-item");
    snprintf(path, sizeof(path), "%s/tmp/%s", q, old);
    utimensat(AT_FDCWD, path, times, 0);
    snprintf(path, sizeof(path), "%s/tmp/not-an-item", q);
    utimensat(AT_FDCWD, path, times, 0);
    mx_queue_clean_tmp(q, 60);
    CHECK(!exists(q, "tmp", old));
    CHECK(exists(q, "tmp", fresh));
    CHECK(exists(q, "tmp", "not-an-item")); /* not ours: left alone */
    CHECK(mx_queue_count(q) == 1);
}

static void test_foreign(void)
{
    const char *q = new_queue("foreign");
    char **list, *back;
    size_t n;

    CHECK(mx_queue_count(q) == 0); /* no new/ yet */
    CHECK(mx_queue_list(q, 10, &list, &n) == 0 && n == 0);
    CHECK(mx_queue_put(q, "x", 1, 0, NULL, 0, NULL, 0) == 0);
    touch(q, "new", "README");
    touch(q, "new", ".hidden");
    touch(q, "new", "0000000000000000000a-0000000001-00000001");
    touch(q, "new", "00000000000000000001-0000000001-000000011");
    touch(q, "new", "00000000000000000001-0000000001-0000001");
    CHECK(mx_queue_count(q) == 1);
    CHECK(mx_queue_list(q, 10, &list, &n) == 0 && n == 1);
    mx_queue_free_list(list, n);
    CHECK(mx_queue_read(q, "README", &back, &n) == -1 && errno == EINVAL);
}

static void test_unwritable(void)
{
    char path[700], err[512], file[600];
    const char *q = new_queue("ro");
    int fd, rv;

    if (geteuid() != 0) {
        chmod(q, 0500);
        rv = mx_queue_put(q, "x", 1, 1, NULL, 0, err, sizeof(err));
        chmod(q, 0700);
        CHECK(rv == -1);
        CHECK(strstr(err, q) != NULL);
        CHECK(strstr(err, "Permission denied") != NULL);
    }
    /* root may write anywhere: a "directory" that is a file fails for all */
    snprintf(file, sizeof(file), "%s/a-file", base);
    fd = open(file, O_WRONLY | O_CREAT, 0600);
    close(fd);
    snprintf(path, sizeof(path), "%s/q", file);
    rv = mx_queue_put(path, "x", 1, 1, NULL, 0, err, sizeof(err));
    CHECK(rv == -1);
    CHECK(strstr(err, path) != NULL);
    CHECK(strstr(err, "Not a directory") != NULL);
    CHECK(mx_queue_put(base, NULL, 1, 1, NULL, 0, err, sizeof(err)) == -1);
}

static void test_items(void)
{
    const char *q = new_queue("items");
    char name[MX_QUEUE_NAME_SIZE], *data, *item;
    mx_queue_item it;
    size_t len;

    data = mx_queue_item_make(MX_ITEM_STANZA, "<message/>", 10, &len);
    CHECK_STR(data, "MX1 stanza\n<message/>");
    CHECK(len == strlen(data));
    CHECK(mx_queue_item_parse(data, len, &it) == 0);
    CHECK(it.kind == MX_ITEM_STANZA && it.stanza_len == 10);
    CHECK(strncmp(it.stanza, "<message/>", 10) == 0);
    free(data);
    data = mx_queue_item_make(MX_ITEM_SUBSCRIBERS, "<presence/>", 11, &len);
    CHECK_STR(data, "MX1 subscribers\n<presence/>");
    CHECK(mx_queue_item_parse(data, len, &it) == 0);
    CHECK(it.kind == MX_ITEM_SUBSCRIBERS);
    free(data);
    CHECK(mx_queue_item_make((mx_item_kind)7, "x", 1, &len) == NULL);
    CHECK(mx_queue_item_parse("MX2 stanza\n<m/>", 15, &it) == -1);
    CHECK(mx_queue_item_parse("MX1 other\n<m/>", 14, &it) == -1);
    CHECK(mx_queue_item_parse("MX1 stanza\n", 11, &it) == -1);
    CHECK(mx_queue_item_parse("MX1 stanza", 10, &it) == -1);
    CHECK(mx_queue_item_parse("", 0, &it) == -1);

    item = mx_queue_item_make(MX_ITEM_STANZA, "<m/>", 4, &len);
    CHECK(item != NULL);
    CHECK(item && mx_queue_put(q, item, len, 1, name, sizeof(name), NULL, 0)
          == 0);
    free(item);
    CHECK(mx_queue_read(q, name, &data, &len) == 0);
    CHECK(mx_queue_item_parse(data, len, &it) == 0);
    CHECK(it.stanza_len == 4 && memcmp(it.stanza, "<m/>", 4) == 0);
    free(data);
    CHECK(mx_queue_set_aside(q, name) == 0);
    CHECK(mx_queue_count(q) == 0);
    CHECK(exists(q, "bad", name));
}

static void test_read_file(void)
{
    const char *q = new_queue("files");
    char path[1024], *data;
    size_t len;
    FILE *f;

    snprintf(path, sizeof(path), "%s/roster", q);
    f = fopen(path, "w");
    fputs("a@example.org\nb@example.org\n", f);
    fclose(f);
    CHECK(mx_queue_read_file(q, "roster", &data, &len) == 0);
    CHECK_STR(data, "a@example.org\nb@example.org\n");
    CHECK(len == 28);
    free(data);
    CHECK(mx_queue_read_file(q, "nothing", &data, &len) == -1 && errno == ENOENT);
    CHECK(mx_queue_read_file(q, "../x", &data, &len) == -1 && errno == EINVAL);
    CHECK(mx_queue_read_file(q, "a/../../x", &data, &len) == -1 && errno == EINVAL);
    CHECK(mx_queue_read_file(q, "/etc/passwd", &data, &len) == -1 && errno == EINVAL);
    CHECK(mx_queue_read_file(q, "", &data, &len) == -1 && errno == EINVAL);
}

static void test_presence(void)
{
    const char *q = new_queue("presence");
    char show[16], *status, path[1024], *data;
    int available;

    CHECK(mx_presence_load(q, "u@example.org", &available, show, sizeof(show),
                           &status) == 1);
    CHECK(!available && status == NULL);
    CHECK(mx_presence_store(q, "Alice@Example.ORG/phone", 1, "away",
                            "out\nfor lunch") == 0);
    CHECK(mx_presence_path(q, "alice@example.org", path, sizeof(path)) == 0);
    CHECK(strstr(path, "/presence/alice@example.org") != NULL);
    CHECK(mx_queue_read_file(q, "presence/alice@example.org", &data, NULL) == 0);
    CHECK_STR(data, "available\naway\nout\nfor lunch");
    free(data);
    CHECK(mx_presence_load(q, "alice@example.org/other", &available, show,
                           sizeof(show), &status) == 0);
    CHECK(available);
    CHECK_STR(show, "away");
    CHECK_STR(status, "out\nfor lunch");
    free(status);
    CHECK(mx_presence_store(q, "alice@example.org", 0, NULL, NULL) == 0);
    CHECK(mx_presence_load(q, "ALICE@example.org", &available, show,
                           sizeof(show), NULL) == 0);
    CHECK(!available && show[0] == '\0');
    CHECK(mx_presence_load(q, "bad jid", &available, NULL, 0, NULL) == -1);
    CHECK(mx_presence_store(q, "@x", 1, NULL, NULL) == -1);
}

static void test_roster(void)
{
    const char *q = new_queue("roster");
    char dir[1024], line[64], *data;
    const char *contact = NULL;

    CHECK(mx_addr_roster_dir(q, "Support@Comp.X/res", dir, sizeof(dir)) == 0);
    CHECK(strstr(dir, "/addresses/support@comp.x") != NULL);
    CHECK(mx_addr_roster_dir(q, "a b@comp.x", dir, sizeof(dir)) == -1);
    CHECK(mx_addr_roster_save(q, "support@comp.x", "a@x both\n", 9) == 0);
    CHECK(mx_addr_roster_save(q, "support@COMP.x", "a@x from\nb@y to\n", 17) == 0);
    CHECK(mx_queue_read_file(q, "addresses/support@comp.x/roster", &data,
                             NULL) == 0);
    CHECK_STR(data, "a@x from\nb@y to\n");
    free(data);
    CHECK(!exists(q, "addresses/support@comp.x", "roster.tmp"));
    snprintf(line, sizeof(line), "a@x both");
    CHECK(mx_addr_roster_line(line, &contact) == (MX_ADDR_FROM | MX_ADDR_TO));
    CHECK_STR(contact, "a@x");
    snprintf(line, sizeof(line), "a@x none");
    CHECK(mx_addr_roster_line(line, &contact) == 0);
    snprintf(line, sizeof(line), "a@x");
    CHECK(mx_addr_roster_line(line, &contact) == 0);
    CHECK(mx_addr_roster_state_name(MX_ADDR_TO) != NULL);
    CHECK(mx_addr_roster_state_name(0) == NULL);
}

/* The first spooled item's stanza, malloc'd (NULL if none). */
static char *first_stanza(const char *q)
{
    char **names, *data, *out = NULL;
    size_t count, len;
    mx_queue_item it;

    if (mx_queue_list(q, 10, &names, &count) != 0)
        return NULL;
    if (count && mx_queue_read(q, names[0], &data, &len) == 0) {
        if (mx_queue_item_parse(data, len, &it) == 0)
            out = strndup(it.stanza, it.stanza_len);
        free(data);
        mx_queue_remove(q, names[0]);
    }
    mx_queue_free_list(names, count);
    return out;
}

/* Component mode: app_jid is the domain; any address of it may send, with
 * the resource added when none is given, and presence is per address. */
static void test_component_ops(void)
{
    const char *q = new_queue("component");
    mx_sender snd = { q, "comp.x", "bot", 0 };
    const char *to = "a@x";
    char dir[1024], show[16], *st;
    mx_status status;
    mx_result res;
    int available = 0;

    mx_op_send_message(&snd, &to, 1, "hi", "alerts@comp.x", NULL, 0,
                       &status, &res);
    CHECK(res.err == MX_OK && status == MX_NO_ERROR);
    st = first_stanza(q);
    CHECK(st && strstr(st, " from=\"alerts@comp.x/bot\""));
    free(st);
    mx_op_send_message(&snd, &to, 1, "hi", NULL, NULL, 0, &status, &res);
    st = first_stanza(q);
    CHECK(st && strstr(st, " from=\"comp.x/bot\""));
    free(st);
    mx_op_send_invite(&snd, to, "t-42@comp.x", &status, &res);
    st = first_stanza(q);
    CHECK(st && strstr(st, " from=\"t-42@comp.x\""));
    free(st);
    mx_op_send_message(&snd, &to, 1, "hi", "alerts@x", NULL, 0, &status,
                       &res);
    CHECK(res.err == MX_ERR_INVALID_JID);
    CHECK(strstr(res.why, "any name@comp.x") != NULL);
    CHECK(mx_addr_roster_dir(q, "support@comp.x", dir, sizeof(dir)) == 0);
    CHECK(mx_addr_roster_save(q, "support@comp.x", "a@x both\n", 9) == 0);
    CHECK(mx_presence_store(dir, "a@x/r", 1, "away", NULL) == 0);
    mx_op_get_presence(&snd, "a@x", "support@comp.x", &available, show,
                       sizeof(show), &res);
    CHECK(res.err == MX_OK && available && !strcmp(show, "away"));
    mx_op_get_presence(&snd, "a@x", "other@comp.x", &available, show,
                       sizeof(show), &res);
    CHECK(res.err == MX_OK && !available);
}

/* Several processes put at once: every item arrives, names are unique. */
static void test_processes(void)
{
    const char *q = new_queue("procs");
    char **list;
    size_t n, i;
    int k, status, dup = 0, clean = 1;
    pid_t pids[4];

    for (k = 0; k < 4; k++) {
        if ((pids[k] = fork()) == 0) {
            for (i = 0; i < 100; i++)
                if (mx_queue_put(q, "x", 1, 0, NULL, 0, NULL, 0) != 0)
                    _exit(1);
            _exit(0);
        }
    }
    for (k = 0; k < 4; k++) {
        waitpid(pids[k], &status, 0);
        clean &= WIFEXITED(status) && WEXITSTATUS(status) == 0;
    }
    CHECK(clean);
    CHECK(mx_queue_list(q, 1000, &list, &n) == 0 && n == 400);
    for (i = 1; i < n; i++)
        dup += strcmp(list[i - 1], list[i]) >= 0;
    CHECK(dup == 0);
    mx_queue_free_list(list, n);
}

static void remove_tree(void)
{
    char cmd[300];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", base);
}

/* An item of kind "stanza" (or "subscribers") with stanza st, checked as
 * the holder checks what senders give it. NULL when accepted. */
static const char *check_kind(mx_item_kind kind, const char *st, size_t len)
{
    size_t n;
    char *data = mx_queue_item_make(kind, st, len, &n);
    const char *why = "out of memory";

    if (data && mx_queue_item_check(data, n, "app@example.org", "bot", &why)
                == 0)
        why = NULL;
    free(data);
    return why;
}

static const char *check_item(const char *st)
{
    return check_kind(MX_ITEM_STANZA, st, strlen(st));
}

static void test_item_check(void)
{
    static const char nul[] = "<message to=\"a@b\"><body>x\0y</body></message>";
    char *stanza, *big;
    const char *why = NULL;
    size_t n;

    /* what mx_ops makes passes */
    stanza = mx_message_stanza("app@example.org/bot", "a@b.c", "chat",
                               "1 < 2 & \"q\"", 0, "mx-1");
    CHECK(check_item(stanza) == NULL);
    free(stanza);
    stanza = mx_message_stanza("app@example.org", "a@b.c/r 'x'", NULL,
                               "<b xmlns='x'>hi</b><![CDATA[<]]>", 1, "mx-2");
    CHECK(check_item(stanza) == NULL);
    free(stanza);
    stanza = mx_presence_stanza(NULL, NULL, "unavailable", NULL, "bye", NULL);
    CHECK(check_kind(MX_ITEM_SUBSCRIBERS, stanza, strlen(stanza)) == NULL);
    free(stanza);
    stanza = mx_invite_stanza(NULL, "a@b.c", "mx-3");
    CHECK(check_item(stanza) == NULL);
    free(stanza);
    CHECK(check_item("<iq type='get' id='q'><ping xmlns='urn:xmpp:ping'/></iq>")
          == NULL);
    CHECK(check_item("<message to='a@b' type=\"normal\"/>") == NULL);
    /* the from rule of xmpp-send --from, now in the holder */
    CHECK(check_item("<message from='evil@example.org' to='a@b'/>") != NULL);
    CHECK(check_item("<message from='app@example.org/other' to='a@b'/>")
          != NULL);
    CHECK(check_item("<message from='' to='a@b'/>") != NULL);
    CHECK(check_item("<message from='app&#64;example.org' to='a@b'/>")
          != NULL);
    /* recipients, types, elements */
    CHECK(check_item("<message to='a@@b'><body>x</body></message>") != NULL);
    CHECK(check_item("<message to=\"a@b/&quot;r&gt;\"/>") == NULL);
    CHECK(check_item("<message to='a b@c'/>") != NULL);
    CHECK(check_item("<message to='a@b' type='bogus'/>") != NULL);
    CHECK(check_item("<presence to='a@b' type='chat'/>") != NULL);
    CHECK(check_item("<r xmlns='urn:xmpp:sm:3'/>") != NULL);
    CHECK(check_item("<a:message xmlns:a='jabber:client' to='a@b'/>")
          != NULL);
    CHECK(check_kind(MX_ITEM_SUBSCRIBERS, "<message/>", 10) != NULL);
    CHECK(check_kind(MX_ITEM_SUBSCRIBERS, "<presence to='a@b'/>", 20)
          != NULL);
    CHECK(check_kind(MX_ITEM_SUBSCRIBERS, "x", 1) != NULL);
    /* one element, well-formed, nothing around it */
    CHECK(check_item("<message to='a@b'/><iq type='set'/>") != NULL);
    CHECK(check_item("<message to='a@b'></message></stream:stream>") != NULL);
    CHECK(check_item(" <message to='a@b'/>") != NULL);
    CHECK(check_item("<message to='a@b'/>x") != NULL);
    CHECK(check_item("<message to='a@b'><body>x</body>") != NULL);
    CHECK(check_item("<message to='a@b'><!-- c --></message>") != NULL);
    CHECK(check_item("<message to='a@b'>\x01</message>") != NULL);
    CHECK(check_item("<message to='a@b'>\xff</message>") != NULL);
    CHECK_STR(check_kind(MX_ITEM_STANZA, nul, sizeof(nul) - 1),
              "the item contains a NUL byte");
    CHECK(mx_queue_item_check("MX1 stanza\n", 11, "app@example.org", "bot",
                              &why) == -1 && why);
    CHECK(mx_queue_item_check("MX1 stanza", 10, "app@example.org", "bot",
                              &why) == -1 && why);
    /* bounded */
    n = MX_QUEUE_ITEM_MAX;
    big = malloc(n + 1);
    CHECK(big != NULL);
    if (big) {
        memset(big, 'x', n + 1);
        memcpy(big, "MX1 stanza\n<message to='a@b'><body>", 35);
        memcpy(big + n - 17, "</body></message>", 17);
        CHECK(mx_queue_item_check(big, n + 1, "app@example.org", "bot", &why)
              == -1);
        CHECK_STR(why, "the item is larger than 16 MiB");
        /* (libxml2 refuses a text node this long itself) */
        mx_queue_item_check(big, n, "app@example.org", "bot", &why);
        CHECK(!why || strcmp(why, "the item is larger than 16 MiB") != 0);
        free(big);
    }
}

/* An item file larger than MX_QUEUE_ITEM_MAX is not read into memory. */
static void test_read_too_large(void)
{
    const char *q = new_queue("big");
    char name[MX_QUEUE_NAME_SIZE], path[1024], *back = NULL;
    size_t len;

    CHECK(mx_queue_put(q, "MX1 stanza\n<message/>", 21, 0, name,
                       sizeof(name), NULL, 0) == 0);
    snprintf(path, sizeof(path), "%s/new/%s", q, name);
    CHECK(truncate(path, (off_t)MX_QUEUE_ITEM_MAX) == 0);
    CHECK(mx_queue_read(q, name, &back, &len) == 0 && len == MX_QUEUE_ITEM_MAX);
    free(back);
    CHECK(truncate(path, (off_t)MX_QUEUE_ITEM_MAX + 1) == 0);
    CHECK(mx_queue_read(q, name, &back, &len) == -1 && errno == EFBIG);
    CHECK(mx_queue_set_aside(q, name) == 0 && exists(q, "bad", name));
}

int main(void)
{
    const char *tmp = getenv("TMPDIR");

    snprintf(base, sizeof(base), "%s/mx-queue-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(base)) {
        perror("mkdtemp");
        return 99;
    }
    test_order();
    test_read_remove();
    test_full();
    test_clean_tmp();
    test_foreign();
    test_unwritable();
    test_items();
    test_item_check();
    test_read_too_large();
    test_read_file();
    test_presence();
    test_roster();
    test_component_ops();
    test_processes();
    remove_tree();
    return UNIT_DONE();
}
