-- What scripts/bench/writes.sh measures the two purchases against (psql -v tag=… -v users=…
-- -v products=…), under names of its own so it leaves the rest of the database alone:
-- - `users` buyers, each with one session (the server keeps only the token's SHA-256, as for
--   a real sign-in; the tokens are printed for wrk) and one default address;
-- - a merchant selling `products` products of ONE SKU each, all alike (name, specs, price,
--   no image) so pgbench's literal copy of an item is exactly what the server copies, with
--   stock for ten million orders;
-- - a live project of that merchant's, its deadline a month away, with one reward of
--   unlimited quantity that ships (so a backing reserves a unit and copies an address).
-- Each table's rows are inserted by one statement in id order. Prints, space-separated:
--   buyer USER_ID TOKEN ADDRESS_ID   (one per buyer)
--   sku SKU_ID PRODUCT_ID            (one per SKU)
--   project PROJECT_ID REWARD_ID MERCHANT_ID
\set ON_ERROR_STOP on
BEGIN;
CREATE TEMP TABLE bench_write_tokens (user_id bigint PRIMARY KEY, token text NOT NULL) ON COMMIT DROP;

INSERT INTO users (username, password_hash, display_name, role)
VALUES ('bw' || :'tag' || '_shop', 'x', '写入基准商店', 'merchant');
INSERT INTO users (username, password_hash, display_name)
SELECT 'bw' || :'tag' || '_' || g, 'x', '写入基准买家 ' || g FROM generate_series(1, :users) g ORDER BY g;

-- Tokens of our shape (zf_ and 43 URL-safe characters), random, hashed as the server hashes.
INSERT INTO bench_write_tokens (user_id, token)
SELECT id, 'zf_' || substr(md5(random()::text) || md5(random()::text), 1, 43)
  FROM users WHERE username LIKE 'bw' || :'tag' || '\_%' AND role = 'user' ORDER BY id;
INSERT INTO sessions (token_sha256, user_id, expires_at, method)
SELECT sha256(convert_to(token, 'UTF8')), user_id, now() + interval '1 day', 'password'
  FROM bench_write_tokens;

INSERT INTO addresses (user_id, name, phone, region, detail, is_default)
SELECT user_id, '基准买家', '13800000000', '上海市 浦东新区', '世纪大道 100 号', true
  FROM bench_write_tokens ORDER BY user_id;

INSERT INTO mall_categories (name) VALUES ('写入基准 ' || :'tag');
INSERT INTO mall_products (merchant_id, category_id, name, description, min_price_fen, search_text)
SELECT u.id, c.id, '写入基准商品', '每件都一样', 1990, E'写入基准商品\n每件都一样'
  FROM users u, mall_categories c, generate_series(1, :products) g
 WHERE u.username = 'bw' || :'tag' || '_shop' AND c.name = '写入基准 ' || :'tag'
 ORDER BY g;
INSERT INTO mall_skus (product_id, specs, price_fen, stock, position)
SELECT p.id, '{"颜色": "红"}', 1990, 10000000, 0
  FROM mall_products p JOIN users u ON u.id = p.merchant_id
 WHERE u.username = 'bw' || :'tag' || '_shop'
 ORDER BY p.id;

WITH p AS (
    INSERT INTO projects (owner_id, title, summary, story, deadline, status, published_at)
    SELECT id, '写入基准项目', '基准', '基准项目的故事。', now() + interval '30 days', 'live', now()
      FROM users WHERE username = 'bw' || :'tag' || '_shop'
    RETURNING id),
     g AS (
    INSERT INTO project_goals (project_id, position, amount_fen, title, description)
    SELECT id, 0, 100000000, '目标', '说明' FROM p)
INSERT INTO project_rewards (project_id, position, title, min_amount_fen, quantity, ships)
SELECT id, 0, '明信片', 1000, NULL, true FROM p;

SELECT 'buyer', t.user_id, t.token, a.id
  FROM bench_write_tokens t JOIN addresses a ON a.user_id = t.user_id ORDER BY t.user_id;
SELECT 'sku', s.id, s.product_id
  FROM mall_skus s JOIN mall_products p ON p.id = s.product_id JOIN users u ON u.id = p.merchant_id
 WHERE u.username = 'bw' || :'tag' || '_shop' ORDER BY s.id;
SELECT 'project', p.id, r.id, p.owner_id
  FROM projects p JOIN project_rewards r ON r.project_id = p.id JOIN users u ON u.id = p.owner_id
 WHERE u.username = 'bw' || :'tag' || '_shop';
COMMIT;
