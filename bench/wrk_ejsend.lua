-- SPDX-License-Identifier: Apache-2.0
-- wrk script: ejabberd's own HTTP API, POST /api/send_message (JSON), a
-- unique body per request: the peer baseline of test 11.
--   wrk ... -s wrk_ejsend.lua URL -- PATH FROM TO PREFIX QUOTA STATIC
-- Bodies are "PREFIX <thread>-<n>" ('+' in PREFIX stands for a space, as
-- in wrk_send.lua's form encoding). QUOTA > 0: each thread POSTs exactly
-- QUOTA messages, then GETs STATIC (a path ejabberd answers 404, not
-- counted) until wrk gets SIGINT, after "QUOTA <thread>".
-- done() prints "WRK key=value ..." like wrk_send.lua.
local threads = {}

function setup(thread)
    table.insert(threads, thread)
    thread:set("tid", #threads)
end

function init(args)
    path, from, to = args[1], args[2], args[3]
    prefix = string.gsub(args[4], "+", " ")
    quota = tonumber(args[5]) or 0
    static_req = wrk.format("GET", args[6] or "/")
    headers = { ["Content-Type"] = "application/json" }
    n, ok, bad = 0, 0, 0
    first = true
end

function request()
    -- as in wrk_send.lua: the first request() is never sent
    if first or (quota > 0 and n >= quota) then
        first = false
        return static_req
    end
    n = n + 1
    return wrk.format("POST", path, headers, string.format(
        '{"type":"chat","from":"%s","to":"%s","subject":"","body":"%s %d-%d"}',
        from, to, prefix, tid, n))
end

function response(status, headers, body)
    if status == 200 and body == "0" then
        ok = ok + 1
    elseif status == 404 then
        return -- a GET of STATIC after the quota
    else
        bad = bad + 1
    end
    if quota > 0 and ok + bad == quota then
        io.write("QUOTA " .. tid .. "\n")
        io.stdout:flush()
        wrk.thread:stop()
    end
end

function done(summary, latency, requests)
    local ok_all, bad_all = 0, 0
    for _, t in ipairs(threads) do
        ok_all = ok_all + t:get("ok")
        bad_all = bad_all + t:get("bad")
    end
    io.write(string.format(
        "WRK duration=%d requests=%d ok=%d bad=%d errors=%d p50=%d p99=%d mean=%.0f\n",
        summary.duration, summary.requests, ok_all, bad_all,
        summary.errors.connect + summary.errors.read + summary.errors.write
        + summary.errors.status + summary.errors.timeout,
        latency:percentile(50), latency:percentile(99), latency.mean))
end
