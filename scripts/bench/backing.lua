-- wrk: POST /api/projects/{id}/backings of 20.00 with a reward of unlimited quantity that
-- ships (so the create reserves a unit and copies an address): the backing's hot path.
-- Arguments (after --): the buyers file ("TOKEN ADDRESS_ID" a line, signed-in users and one
-- of their own addresses), the project id and the reward id, as scripts/bench/writes.sh
-- passes them. Each request is the next user's.
local buyers, path, reward, i = {}, nil, nil, 0

function init(args)
   for line in io.lines(args[1]) do
      local token, address = line:match("^(%S+) (%S+)$")
      buyers[#buyers + 1] = { token = token, address = address }
   end
   path = "/api/projects/" .. args[2] .. "/backings"
   reward = args[3]
end

function request()
   i = i + 1
   local buyer = buyers[i % #buyers + 1]
   local body = '{"amount":"20.00","channel":"wechat","reward_id":' .. reward .. ',"address_id":'
      .. buyer.address .. '}'
   return wrk.format("POST", path,
      { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. buyer.token }, body)
end
