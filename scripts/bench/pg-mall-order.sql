-- The SQL of one checkout (POST /api/mall/orders, one SKU, quantity 1, no coupon), as the
-- server runs it, with literal values: what PostgreSQL alone does for a mall order on this
-- cluster, in the server's round trips (statements the server sends together without
-- waiting are a pgbench pipeline here). In the server's order:
--   src/mall/orders/checkout.rs  quote (QUOTE_SKUS), before the transaction;
--   src/pay/create.rs            Engine::open/start (BEGIN, then the statement BEGIN), with
--   src/mall/orders/checkout.rs  RESERVE in the same round trip;
--   src/pay/create.rs            Engine::submit: COMMIT, [the provider call], STORE_CODE_URL;
--   src/mall/orders/mod.rs       read (the order, ITEMS, TIMELINE in one round trip) for the
--                                201 answer.
-- Only the provider call and the HTTP around it are left out. Variables (pgbench -D), from
-- scripts/bench/writes-seed.sql: users, ubase, abase (first buyer and address ids: buyer k
-- owns address abase + k), sku_lo, sku_hi, prod_lo (SKU sku_lo + k belongs to product
-- prod_lo + k), merchant. The item's name, specs and price, the address and the description
-- are the seed's, which every SKU and buyer share. Needs -M extended or prepared (pipelines).
\set u random(0, :users - 1)
\set buyer :ubase + :u
\set addr :abase + :u
\set sku random(:sku_lo, :sku_hi)
\set product :prod_lo + (:sku - :sku_lo)
\set n random(1, 1000000000000)
SELECT s.id, s.product_id, p.name, s.specs, p.images[1], s.price_fen, s.active AND p.listed, p.merchant_id
  FROM mall_skus s JOIN mall_products p ON p.id = s.product_id WHERE s.id = ANY (ARRAY[:sku]::bigint[]) ORDER BY s.id;
-- (In the event below, the space after the last colon keeps pgbench from reading ":false"
-- as a variable.)
\startpipeline
BEGIN;
WITH p AS (
        INSERT INTO payments (order_no, purpose, channel, amount_fen, description, expires_at, next_check_at)
        VALUES ('pgbm' || :client_id::text || '_' || :n::text, 'mall_order', 'wechat', 1990, '商城订单 · 写入基准商品',
                now() + interval '15 minutes', now() + interval '30 seconds')
        ON CONFLICT (order_no) DO NOTHING
        RETURNING order_no)
     INSERT INTO payment_events (order_no, kind, to_status, amount_fen, source)
     SELECT order_no, 'created', 'pending', 1990, 'api' FROM p;
WITH want AS (
        SELECT * FROM unnest(ARRAY[:sku]::bigint[], ARRAY[1]::int[], ARRAY[1990]::bigint[]) AS w(id, quantity, price_fen)),
     locked AS MATERIALIZED (
        SELECT id, price_fen, stock, active FROM mall_skus WHERE id = ANY (ARRAY[:sku]::bigint[]) ORDER BY id FOR UPDATE),
     checked AS (
        SELECT count(*) = 1 AS ok
          FROM want w JOIN locked l ON l.id = w.id
         WHERE l.active AND l.price_fen = w.price_fen AND l.stock >= w.quantity),
     taken AS (
        UPDATE mall_skus s SET stock = s.stock - w.quantity, updated_at = now()
          FROM want w
         WHERE s.id = w.id AND s.stock >= w.quantity AND (SELECT ok FROM checked)
        RETURNING s.id),
     held AS (
        UPDATE mall_user_coupons m SET status = 'held', order_no = 'pgbm' || :client_id::text || '_' || :n::text,
               updated_at = now()
          FROM mall_coupons c
         WHERE m.id = NULL::bigint AND m.user_id = :buyer AND m.status = 'unused' AND c.id = m.coupon_id
           AND now() >= c.valid_from AND now() < c.valid_to AND (SELECT ok FROM checked)
        RETURNING m.id),
     address AS (
        SELECT jsonb_build_object('name', name, 'phone', phone, 'region', region, 'detail', detail) AS address
          FROM addresses WHERE id = :addr AND user_id = :buyer),
     gate AS (
        SELECT (SELECT ok FROM checked)
           AND (SELECT count(*) FROM taken) = 1
           AND (NULL::bigint IS NULL OR EXISTS (SELECT 1 FROM held))
           AND EXISTS (SELECT 1 FROM address) AS go),
     made AS (
        INSERT INTO mall_orders
               (order_no, buyer_id, merchant_id, total_fen, discount_fen, payable_fen, coupon_id, address, remark)
        SELECT 'pgbm' || :client_id::text || '_' || :n::text, :buyer, :merchant, 1990, 0, 1990, NULL, a.address, ''
          FROM address a WHERE (SELECT go FROM gate)
        RETURNING order_no),
     lines AS (
        INSERT INTO mall_order_items (order_no, sku_id, product_id, name, specs, price_fen, quantity, image)
        SELECT m.order_no, i.sku_id, i.product_id, i.name, i.specs, i.price_fen, i.quantity, i.image
          FROM made m,
               unnest(ARRAY[:sku]::bigint[], ARRAY[:product]::bigint[], ARRAY['写入基准商品']::text[],
                      ARRAY['{"颜色": "红"}']::jsonb[], ARRAY[1990]::bigint[], ARRAY[1]::int[], ARRAY[NULL]::text[])
                 AS i(sku_id, product_id, name, specs, price_fen, quantity, image)
        RETURNING 1),
     step AS (
        INSERT INTO mall_order_events (order_no, kind, from_status, to_status, actor_id, source, detail)
        SELECT order_no, 'created', NULL, 'pending_payment', :buyer, 'buyer',
               '{"total_fen": 1990, "discount_fen": 0, "payable_fen": 1990, "coupon_id": null}'::jsonb FROM made
        RETURNING 1),
     uncarted AS (
        DELETE FROM mall_cart_items WHERE user_id = :buyer AND sku_id = ANY (ARRAY[:sku]::bigint[]) AND (SELECT go FROM gate)
        RETURNING 1),
     told AS MATERIALIZED (
        SELECT pg_notify('zhifu_events', '{"kind":"mall","products":[' || :product::text || '],"categories": false}')
          FROM gate WHERE go)
SELECT (SELECT array_agg(id ORDER BY id) FROM locked), (SELECT array_agg(price_fen ORDER BY id) FROM locked),
       (SELECT array_agg(stock ORDER BY id) FROM locked), (SELECT array_agg(active ORDER BY id) FROM locked),
       (SELECT count(*) FROM taken), EXISTS (SELECT 1 FROM held), EXISTS (SELECT 1 FROM address),
       (SELECT count(*) FROM made), (SELECT count(*) FROM lines), (SELECT count(*) FROM step),
       (SELECT count(*) FROM told);
\endpipeline
COMMIT;
UPDATE payments SET code_url = 'weixin://wxpay/bizpayurl?pr=pgbench00', next_check_at = now() + interval '15 seconds',
                    updated_at = now()
 WHERE order_no = 'pgbm' || :client_id::text || '_' || :n::text AND status = 'pending' AND code_url IS NULL;
\startpipeline
SELECT o.order_no, o.status, o.buyer_id, b.display_name, o.merchant_id, m.display_name,
       o.total_fen, o.discount_fen, o.payable_fen, o.coupon_id, o.address, o.remark, p.channel,
       o.carrier, o.tracking_no, o.refund_reason, o.cancel_reason, p.status, p.expires_at, o.created_at,
       o.paid_at, o.shipped_at, o.completed_at, o.cancelled_at, o.refunded_at
  FROM mall_orders o JOIN payments p ON p.order_no = o.order_no
  JOIN users b ON b.id = o.buyer_id JOIN users m ON m.id = o.merchant_id
 WHERE o.order_no = 'pgbm' || :client_id::text || '_' || :n::text;
SELECT order_no, sku_id, product_id, name, specs, price_fen, quantity, image
  FROM mall_order_items WHERE order_no = ANY (ARRAY['pgbm' || :client_id::text || '_' || :n::text]) ORDER BY order_no, sku_id;
SELECT kind, from_status, to_status, source, detail, created_at
  FROM mall_order_events WHERE order_no = 'pgbm' || :client_id::text || '_' || :n::text ORDER BY id;
\endpipeline
