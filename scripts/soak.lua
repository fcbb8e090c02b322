-- Mixed load of scripts/soak.sh for wrk: reads (health, a config path, metrics), config
-- updates, rate-limiter checks over a bounded key set, single and batched durable event
-- appends, and event queries, in a fixed weighted cycle. Deletes and the acknowledged-event
-- check run beside it (scripts/soak.py). Each connection pauses SOAK_DELAY_MS between its
-- requests (a load that leaves the 2-core machine some air; 0 = as fast as it goes).
-- done() prints one line "soak-status 2xx=N 429=N 4xx=N 5xx=N" that soak.py checks.

local delay_ms = tonumber(os.getenv("SOAK_DELAY_MS") or "2")
-- SOAK_UNIQUE=1 (soak.sh --unique): a type per event, a key and an identity per limiter check;
-- the caps' 503s are counted apart (soak-capped)
local unique = os.getenv("SOAK_UNIQUE") == "1"
local n = 0
local threads = {}

s2xx, s429, s4xx, s5xx, s503 = 0, 0, 0, 0, 0

local json = {["Content-Type"] = "application/json"}

local function event(i)
  local t = unique and ("soak.u" .. i) or "soak.wrk"
  return '{"type":"' .. t .. '","correlation_id":"w' .. (i % 1000) ..
         '","data":{"i":' .. i .. ',"pad":"' .. string.rep("x", i % 200) .. '"}}'
end

local function batch(i)
  local parts = {}
  for k = 1, 10 do parts[k] = event(i * 10 + k) end
  return '{"events":[' .. table.concat(parts, ",") .. ']}'
end

-- weight, generator
local mix = {
  {6, function(i) return wrk.format("GET", "/health") end},
  {6, function(i) return wrk.format("GET", "/v1/config/interface.max_results") end},
  {1, function(i) return wrk.format("GET", "/metrics") end},
  {1, function(i) return wrk.format("PUT", "/v1/config/dev.debug_mode", json,
                                     (i % 2 == 0) and "true" or "false") end},
  {1, function(i) return wrk.format("PUT", "/v1/config/interface.max_results", json,
                                     (i % 2 == 0) and "1000" or "500") end},
  -- 20 000 keys each checked now and then (their cells expire and are swept) and one hot key
  -- over its limit (429s)
  {8, function(i)
    if unique then -- a key and an identity of its own, live for a minute
      return wrk.format("POST", "/v1/limiter/check", json,
                        '{"identity":"id-' .. i .. '","key":"soak-u' .. i ..
                        '","limit":50,"window_ms":60000}')
    end
    return wrk.format("POST", "/v1/limiter/check", json,
                      '{"key":"soak-' .. ((i % 3 == 0) and "hot" or (i % 20000)) ..
                      '","limit":50,"window_ms":1000}') end},
  {4, function(i) return wrk.format("POST", "/v1/events", json, event(i)) end},
  {1, function(i) return wrk.format("POST", "/v1/events/batch", json, batch(i)) end},
  {2, function(i) return wrk.format("GET", "/v1/events?type=soak.wrk&limit=20&order=desc") end},
  {1, function(i) return wrk.format("GET", "/v1/events?correlation_id=w" .. (i % 1000) ..
                                     "&limit=10") end},
  {1, function(i) return wrk.format("GET", "/v1/events/stats") end},
}
local cycle = {}
for _, m in ipairs(mix) do
  for _ = 1, m[1] do cycle[#cycle + 1] = m[2] end
end

function setup(thread)
  threads[#threads + 1] = thread
end

function request()
  n = n + 1
  return cycle[(n % #cycle) + 1](n)
end

function delay()
  return delay_ms
end

function response(status, headers, body)
  if unique and status == 503 then
    s503 = s503 + 1
  elseif status >= 500 then
    s5xx = s5xx + 1
  elseif status == 429 then
    s429 = s429 + 1
  elseif status >= 400 then
    s4xx = s4xx + 1
  else
    s2xx = s2xx + 1
  end
end

function done(summary, latency, requests)
  local a, b, c, d, e = 0, 0, 0, 0, 0
  for _, t in ipairs(threads) do
    a = a + t:get("s2xx")
    b = b + t:get("s429")
    c = c + t:get("s4xx")
    d = d + t:get("s5xx")
    e = e + t:get("s503")
  end
  io.write(string.format("soak-status 2xx=%d 429=%d 4xx=%d 5xx=%d\n", a, b, c, d))
  io.write(string.format("soak-capped 503=%d\n", e))
end
