-- SPDX-License-Identifier: Apache-2.0
-- The handler of bench test 10: 50 ms of work per inbound message (a
-- slow application), then "re: <body>" as the chat reply.
function handle(r)
    local form = r:parsebody(1024 * 1024) or {}
    r.usleep(50000)
    r.content_type = "text/plain; charset=UTF-8"
    r:puts("re: " .. (form["body"] or ""))
    return apache2.OK
end
