-- SPDX-License-Identifier: Apache-2.0
-- Dump handler for mod_xmpp's inbound tests, the mod_lua twin of
-- t/cgi-bin/inbound.cgi.
--
-- Writes what it received as one JSON file into the directory named by
-- the MX_DUMP_DIR variable (SetEnv): the XMPP_* variables, the request
-- line and headers it saw, and the raw request body (hex), then answers
-- according to XMPP_COMMAND:
--
--   /status N ...   status N (text/plain body, none for 204)
--   /empty ...      200, text/plain, empty body
--   /stanza ...     200, application/xmpp+xml
--   /sleep N ...    sleep N seconds, then "lua slept: <XMPP_ARG>"
--   /ms N ...       sleep N milliseconds, then "lua heard: <XMPP_ARG>"
--   /fail N ...     500 while XMPP_ATTEMPT <= N, then
--                   "lua heard after failing: <XMPP_ARG>"
--   /score NAME     "NAME has 42 points"
--   /bad KIND ...   an answer that cannot be sent as it is (see
--                   t/cgi-bin/inbound.cgi): utf8, ctrl, two, malformed
--   anything else   messages and errors: "lua heard: <XMPP_ARG>";
--                   presence and subscriptions: 204

local VARS = { "XMPP_FROM", "XMPP_TO", "XMPP_KIND", "XMPP_COMMAND",
               "XMPP_ARG", "XMPP_JID", "XMPP_RESOURCE", "MX_DUMP_DIR",
               "XMPP_ATTEMPT", "XMPP_STANZA_ID" }

local function jstr(s)
    if s == nil then
        return "null"
    end
    s = tostring(s)
    local out = s:gsub('[%c"\\]', function(c)
        if c == '"' then
            return '\\"'
        elseif c == "\\" then
            return "\\\\"
        end
        return string.format("\\u%04x", c:byte())
    end)
    return '"' .. out .. '"'
end

local function hex(s)
    return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

local function xml_escape(s)
    return (s:gsub("[&<>'\"]", { ["&"] = "&amp;", ["<"] = "&lt;",
                                 [">"] = "&gt;", ["'"] = "&apos;",
                                 ['"'] = "&quot;" }))
end

local function dump(r, body)
    local dir = r.subprocess_env["MX_DUMP_DIR"]
    if not dir then
        return
    end
    local parts = {}
    local env = {}
    for _, name in ipairs(VARS) do
        local v = r.subprocess_env[name]
        if v ~= nil then
            env[#env + 1] = jstr(name) .. ":" .. jstr(v)
        end
    end
    env[#env + 1] = '"REQUEST_METHOD":' .. jstr(r.method)
    env[#env + 1] = '"REQUEST_URI":' .. jstr(r.uri)
    env[#env + 1] = '"QUERY_STRING":' .. jstr(r.args or "")
    env[#env + 1] = '"REMOTE_ADDR":' .. jstr(r.useragent_ip)
    env[#env + 1] = '"HTTP_HOST":' .. jstr(r.headers_in["Host"])
    env[#env + 1] = '"SERVER_NAME":' .. jstr(r.server_name)
    env[#env + 1] = '"CONTENT_TYPE":' .. jstr(r.headers_in["Content-Type"])
    env[#env + 1] = '"CONTENT_LENGTH":' .. jstr(r.headers_in["Content-Length"])
    env[#env + 1] = '"HTTP_USER_AGENT":' .. jstr(r.headers_in["User-Agent"])
    env[#env + 1] = '"HTTP_X_XMPP_ATTEMPT":' .. jstr(r.headers_in["X-XMPP-Attempt"])
    env[#env + 1] = '"HTTP_X_XMPP_STANZA_ID":' .. jstr(r.headers_in["X-XMPP-Stanza-Id"])
    env[#env + 1] = '"MX_HANDLER":"lua"'
    parts[#parts + 1] = '"env":{' .. table.concat(env, ",") .. "}"
    parts[#parts + 1] = '"body_hex":' .. jstr(hex(body))
    parts[#parts + 1] = '"time":' .. string.format("%.6f", r:clock() / 1e6)
    local name = string.format("%.6f-lua-%s", r:clock() / 1e6,
                               tostring(math.random(1, 1e9)))
    local tmp = dir .. "/." .. name .. ".tmp"
    local f = assert(io.open(tmp, "w"))
    f:write("{" .. table.concat(parts, ",") .. "}")
    f:close()
    assert(os.rename(tmp, dir .. "/" .. name .. ".json"))
end

-- Answers that would make the server close the stream if sent
local function bad_answer(r, kind, arg)
    local to = xml_escape(r.subprocess_env["XMPP_FROM"] or "")
    if kind == "utf8" or kind == "ctrl" then
        r.content_type = "text/plain; charset=UTF-8"
        -- " caf\195\169" reversed bytewise, or a BEL
        r:puts(kind == "utf8" and arg .. "\169\195fac " or "bell \7 " .. arg)
    else
        local one = "<message to='" .. to .. "' type='chat'><body>"
                    .. xml_escape(arg) .. "</body></message>"
        r.content_type = "application/xmpp+xml"
        r:puts(kind == "two" and one .. one
               or "<message to='" .. to .. "'><body>" .. xml_escape(arg)
                  .. "</message>")
    end
    return apache2.OK
end

function handle(r)
    math.randomseed(r:clock() % 2147483647)
    local body = r:requestbody() or ""
    dump(r, body)

    local env = r.subprocess_env
    local kind = env["XMPP_KIND"]
    local command = env["XMPP_COMMAND"]
    local arg = env["XMPP_ARG"] or ""
    local first = arg:match("^(%S+)")

    if command == "status" then
        local status = tonumber(first)
        if status >= 500 then
            return status
        end
        r.status = status
        if status ~= 204 then
            r.content_type = "text/plain; charset=UTF-8"
            r:puts("lua status " .. status .. " for " .. arg)
        end
        return apache2.OK
    elseif command == "fail" then
        -- 500 for the first N tries (XMPP_ATTEMPT), then an answer
        if tonumber(env["XMPP_ATTEMPT"] or "1") <= tonumber(first) then
            return 500
        end
        r.content_type = "text/plain; charset=UTF-8"
        r:puts("lua heard after failing: " .. arg)
        return apache2.OK
    elseif command == "ms" then
        r.usleep(math.floor(tonumber(first) * 1000))
        r.content_type = "text/plain; charset=UTF-8"
        r:puts("lua heard: " .. arg)
        return apache2.OK
    elseif command == "empty" then
        r.content_type = "text/plain; charset=UTF-8"
        return apache2.OK
    elseif command == "stanza" then
        r.content_type = "application/xmpp+xml"
        r:puts("<message to='" .. xml_escape(env["XMPP_FROM"] or "")
               .. "' type='chat'><body>lua stanza answer: "
               .. xml_escape(arg) .. "</body><mx xmlns='urn:mod_xmpp:test'"
               .. " arg='" .. xml_escape(arg) .. "'>lua child</mx></message>")
        return apache2.OK
    elseif command == "sleep" then
        r.usleep(math.floor(tonumber(first) * 1000000))
        r.content_type = "text/plain; charset=UTF-8"
        r:puts("lua slept: " .. arg)
        return apache2.OK
    elseif command == "bad" then
        return bad_answer(r, first, arg)
    elseif command == "score" then
        r.content_type = "text/plain; charset=UTF-8"
        r:puts(arg .. " has 42 points")
        return apache2.OK
    elseif kind == "message" or kind == "error" then
        r.content_type = "text/plain; charset=UTF-8"
        r:puts("lua heard: " .. arg)
        return apache2.OK
    end
    r.status = 204
    return apache2.OK
end
