-- wrk script of bench/bench_license_api.py: wrk URL -- MODE KEY DOMAIN USERS RUN_ID
--   check:    GET /api/v1/licenses/check?email=userNNNNN@DOMAIN, cycling through the USERS activated users
--   check-new: GET /api/v1/licenses/check?email=unknown-RUN_ID-N@DOMAIN, an email never asked before
--   activate: POST /api/v1/licenses/activate {"email": "new-RUN_ID-N@DOMAIN"}, a new email each time
-- Prints wrk's numbers as one line of JSON at the end.

local mode, domain, users, run_id
local counter = 0

function init(args)
  mode, domain, users, run_id = args[1], args[3], tonumber(args[4]), args[5]
  wrk.headers["Authorization"] = "Bearer " .. args[2]
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  counter = counter + 1
  if mode == "activate" then
    return wrk.format("POST", "/api/v1/licenses/activate", nil,
                      string.format('{"email": "new-%s-%d@%s"}', run_id, counter, domain))
  end
  if mode == "check-new" then
    return wrk.format("GET", string.format("/api/v1/licenses/check?email=unknown-%s-%d@%s", run_id, counter, domain))
  end
  return wrk.format("GET", string.format("/api/v1/licenses/check?email=user%05d@%s", counter % users, domain))
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "status_errors": %d, "socket_errors": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), errors.status,
    errors.connect + errors.read + errors.write + errors.timeout))
end
