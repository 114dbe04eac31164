-- wrk: POST /api/donations (JSON), the create-donation hot path.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"amount":"12.34","channel":"wechat","category_id":1,"donor_name":"bench"}'
