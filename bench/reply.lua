-- SPDX-License-Identifier: Apache-2.0
-- The mod_lua handler of the receiving benchmark: the multipart POST of an
-- inbound message (or the same bytes from wrk) in, "re: <body>" out as
-- text/plain, which mod_xmpp sends back as the chat reply.
function handle(r)
    local form = r:parsebody(1024 * 1024) or {}
    r.content_type = "text/plain; charset=UTF-8"
    r:puts("re: " .. (form["body"] or ""))
    return apache2.OK
end
