-- SPDX-License-Identifier: Apache-2.0
-- wrk script: POST send_message with a unique body per request.
--   wrk ... -s wrk_send.lua URL -- PATH JID PREFIX QUOTA STATIC
-- JID is form-encoded (alice%40localhost). Bodies are "PREFIX <thread>-<n>".
-- QUOTA > 0: each thread POSTs exactly QUOTA messages, then stops once
-- their answers are in (extra requests meanwhile are GETs of STATIC) and
-- prints "QUOTA <thread>"; wrk itself runs until its -d unless it gets
-- SIGINT, which bench.py sends once every thread has said so.
-- done() prints one line "WRK key=value ...", times in microseconds.
local threads = {}

function setup(thread)
    table.insert(threads, thread)
    thread:set("tid", #threads)
end

function init(args)
    path, jid, prefix = args[1], args[2], args[3]
    quota = tonumber(args[4]) or 0
    static_req = wrk.format("GET", args[5] or "/")
    headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }
    n, ok, bad = 0, 0, 0
    first = true
end

function request()
    -- wrk calls request() once on the first thread, before it runs, to see
    -- whether it pipelines, and never sends that one: a GET, not a POST
    if first or (quota > 0 and n >= quota) then
        first = false
        return static_req
    end
    n = n + 1
    return wrk.format("POST", path, headers,
                      "jid=" .. jid .. "&body=" .. prefix .. "+" .. tid .. "-" .. n)
end

function response(status, headers, body)
    if status == 200 and string.find(body, "NO_ERROR", 1, true) then
        ok = ok + 1
    elseif status ~= 200 or string.find(body, "statuses", 1, true) then
        bad = bad + 1
    else
        return -- a GET of STATIC after the quota
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
