-- POSTs signed deliveries read from a file (one "signature<TAB>body" per line),
-- in order, starting at a given line: wrk's Lua cannot compute an HMAC, so the
-- deliveries are signed beforehand, each a distinct event.
-- wrk ... -s post.lua URL -- FILE START

local deliveries = {}
local index = 0

function init(args)
  for line in io.lines(args[1]) do
    local tab = line:find("\t", 1, true)
    deliveries[#deliveries + 1] = { line:sub(1, tab - 1), line:sub(tab + 1) }
  end
  index = (tonumber(args[2]) or 0) % #deliveries
end

function request()
  index = index % #deliveries + 1
  local delivery = deliveries[index]
  return wrk.format("POST", nil, {
    ["Content-Type"] = "application/json",
    ["User-Agent"] = "kreuzberg-webhook/1.0",
    ["X-Webhook-Signature"] = delivery[1],
  }, delivery[2])
end
