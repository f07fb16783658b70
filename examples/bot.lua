-- SPDX-License-Identifier: Apache-2.0
-- An example mod_xmpp bot as a mod_lua handler.
--
--   LuaMapHandler "^/_ah/xmpp/message/chat/$" /path/to/examples/bot.lua
--
-- The inbound message arrives as a multipart/form-data POST (fields from,
-- to, body, stanza), which r:parsebody() splits; a text/plain answer goes
-- back to the sender as the chat reply.
-- Reversed by characters: reversed bytes of a UTF-8 text are not UTF-8
-- (a reply mod_xmpp cannot send). A character is a lead byte and its
-- continuation bytes; the body is UTF-8, XML guarantees it.
local function reverse_chars(s)
    local chars = {}
    for c in s:gmatch("[\1-\127\194-\244][\128-\191]*") do
        chars[#chars + 1] = c
    end
    local out = {}
    for i = #chars, 1, -1 do
        out[#out + 1] = chars[i]
    end
    return table.concat(out)
end

function handle(r)
    local form = r:parsebody(1024 * 1024) or {}
    local body = form["body"] or ""
    r.content_type = "text/plain; charset=UTF-8"
    -- App Engine's command split: "/cmd rest" (or "\cmd rest")
    local cmd, arg = body:match("^[/\\](%S*)%s*(.-)%s*$")
    if cmd == "help" then
        r:puts("I am the Lua bot. Try /reverse TEXT.")
    elseif cmd == "reverse" then
        r:puts(reverse_chars(arg))
    else
        r:puts("Lua heard " .. (form["from"] or "?") .. ": " .. body)
    end
    return apache2.OK
end
