-- SPDX-License-Identifier: Apache-2.0
-- wrk script: the same request over and over (a GET, or a POST of a body
-- read from a file), counting answers of status 200 that contain EXPECT.
--   wrk ... -s wrk_req.lua URL -- METHOD PATH EXPECT [CONTENT_TYPE BODY_FILE]
-- done() prints one line "WRK key=value ...", times in microseconds.
local threads = {}

function setup(thread)
    table.insert(threads, thread)
end

function init(args)
    local method, path, ctype, file = args[1], args[2], args[4], args[5]
    expect = args[3]
    local body, headers = nil, {}
    if file then
        local f = assert(io.open(file, "rb"))
        body = f:read("*a")
        f:close()
        headers["Content-Type"] = ctype
    end
    req = wrk.format(method, path, headers, body)
    ok, bad = 0, 0
end

function request()
    return req
end

function response(status, headers, body)
    if status == 200 and string.find(body, expect, 1, true) then
        ok = ok + 1
    else
        bad = bad + 1
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
