-- An example mod_xmpp bot as a mod_lua handler.
--
--   LuaMapHandler "^/_ah/xmpp/message/chat/$" /path/to/examples/bot.lua
--
-- The inbound message arrives as a multipart/form-data POST (fields from,
-- to, body, stanza), which r:parsebody() splits; a text/plain answer goes
-- back to the sender as the chat reply.
function handle(r)
    local form = r:parsebody(1024 * 1024) or {}
    local body = form["body"] or ""
    r.content_type = "text/plain; charset=UTF-8"
    -- App Engine's command split: "/cmd rest" (or "\cmd rest")
    local cmd, arg = body:match("^[/\\](%S*)%s*(.-)%s*$")
    if cmd == "help" then
        r:puts("I am the Lua bot. Try /reverse TEXT.")
    elseif cmd == "reverse" then
        r:puts(arg:reverse())
    else
        r:puts("Lua heard " .. (form["from"] or "?") .. ": " .. body)
    end
    return apache2.OK
end
