-- wrk: POST /api/mall/orders, one SKU, quantity 1, no coupon: the checkout's hot path.
-- Arguments (after --): the buyers file ("TOKEN ADDRESS_ID" a line, signed-in buyers and
-- one of their own addresses) and the SKUs file (one SKU id a line), as
-- scripts/bench/writes.sh writes them. Each request is the next buyer's, for the next SKU,
-- so the orders spread over the users and the SKUs' rows as real buyers' would.
local buyers, skus, i = {}, {}, 0

function init(args)
   for line in io.lines(args[1]) do
      local token, address = line:match("^(%S+) (%S+)$")
      buyers[#buyers + 1] = { token = token, address = address }
   end
   for line in io.lines(args[2]) do
      skus[#skus + 1] = line
   end
end

function request()
   i = i + 1
   local buyer = buyers[i % #buyers + 1]
   local body = '{"items":[{"sku_id":' .. skus[i % #skus + 1] .. ',"quantity":1}],"address_id":'
      .. buyer.address .. ',"channel":"wechat"}'
   return wrk.format("POST", "/api/mall/orders",
      { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. buyer.token }, body)
end
