/* SPDX-License-Identifier: Apache-2.0 */
/* mx_jid: XMPP address (JID) checks and splitting, RFC 7622 in the
 * strictness an application needs: what a server would refuse is refused
 * here first, so a bad address is a clear error instead of a lost stanza
 * (or, for bytes XML does not allow, a broken stream).
 *
 * The byte rules are checked here, each with its own reason: valid UTF-8,
 * no controls, no spaces outside the resource, none of " & ' / : < > @ in
 * the localpart, at most 1023 bytes a part, an IPv6 literal in brackets
 * that inet_pton reads, host name labels of letters, digits, '-' and '_'
 * of at most 63 bytes (in their ASCII form). What Unicode allows beyond
 * that is decided by libidn's stringprep profiles, nodeprep, nameprep
 * (with IDNA ToASCII) and resourceprep (RFC 6122, the stringprep
 * predecessor of RFC 7622's PRECIS profiles, for which no C library is
 * packaged), as servers such as Prosody and ejabberd apply them.
 * Portable: no httpd, no APR; libidn. */
#ifndef MX_JID_H
#define MX_JID_H

#include <stddef.h>

#define MX_JID_PART_MAX 1023

typedef struct {
    /* pointers into the caller's buffer; lengths exclude the separators */
    const char *local;    size_t local_len;    /* NULL when absent */
    const char *domain;   size_t domain_len;
    const char *resource; size_t resource_len; /* NULL when absent */
} mx_jid_parts;

/* Split and check a JID. Returns NULL when valid, else a short English
 * reason ("empty domain", "localpart contains '<'", ...). */
const char *mx_jid_parse(const char *jid, mx_jid_parts *out);

/* 1 when jid is valid, 0 otherwise */
int mx_jid_valid(const char *jid);

/* 1 when jid is valid and bare with a localpart (user@domain): what a
 * client-mode app's own address must be */
int mx_jid_is_bare_user(const char *jid);

/* Write the bare form (local@domain or domain) of a valid jid into buf.
 * Returns the length, or -1 if it does not fit or the jid is invalid. */
int mx_jid_bare(const char *jid, char *buf, size_t bufsize);

/* mx_jid_bare, then ASCII lowercased: how a component names its
 * addresses and contacts (directories, store rows). 0, or -1 when jid is
 * NULL or not a valid JID. */
int mx_jid_lower_bare(const char *jid, char *buf, size_t bufsize);

/* Like mx_jid_bare, but the bare form as servers normalize it (nodeprep,
 * nameprep: "JÜRGEN@Müller.Example" gives "jürgen@müller.example"), so
 * that any spelling of a contact finds what the server reported for it. */
int mx_jid_bare_prep(const char *jid, char *buf, size_t bufsize);

/* 1 when the bare forms of a and b are equal (domain compared without
 * case, as servers do for ASCII domains), 0 otherwise or when invalid */
int mx_jid_same_bare(const char *a, const char *b);

/* 1 when s is valid UTF-8 without NUL and without C0 controls other
 * than TAB, LF, CR (the characters XML 1.0 allows) */
int mx_utf8_valid_xml(const char *s, size_t len);

#endif
