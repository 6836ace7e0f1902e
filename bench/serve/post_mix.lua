-- wrk script: POSTs the files listed in the file named by the first script argument to
-- /v1/scan, round-robin (each thread starts at a different file), and prints one JSON line with
-- requests/s, latency percentiles and error counts when done.
--   wrk -t N -c N -d 20s -s bench/serve/post_mix.lua http://127.0.0.1:PORT -- LISTFILE
local bodies, names = {}, {}
local counter = 0

function init(args)
  for path in io.lines(args[1]) do
    local f = assert(io.open(path, "rb"))
    bodies[#bodies + 1] = f:read("*a")
    f:close()
    names[#names + 1] = path:match("[^/]+$")
  end
  counter = math.random(#bodies)
end

function request()
  counter = counter % #bodies + 1
  return wrk.format("POST", "/v1/scan?name=" .. names[counter], {["Content-Type"] = "application/octet-stream"},
                    bodies[counter])
end

function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  io.write(string.format(
    '{"requests":%d,"seconds":%.3f,"requests_per_s":%.1f,"bytes":%d,"p50_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f,' ..
    '"non_2xx":%d,"socket_errors":%d}\n',
    summary.requests, seconds, summary.requests / seconds, summary.bytes, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
