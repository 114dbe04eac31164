-- The mall's bench data (psql -v n=…): a merchant, a category and n products of three SKUs
-- each, as the mall's own writes would store them (search_text normalized, min_price_fen).
INSERT INTO users (username, password_hash, display_name, role)
VALUES ('bench_shop', 'x', '基准商店', 'merchant') ON CONFLICT DO NOTHING;
INSERT INTO mall_categories (name) VALUES ('基准') ON CONFLICT DO NOTHING;
INSERT INTO mall_products (merchant_id, category_id, name, description, min_price_fen, search_text)
SELECT u.id, c.id, '基准商品 ' || g, '每件都一样', 1990, '基准商品 ' || g || E'\n每件都一样'
  FROM users u, mall_categories c, generate_series(1, :n) g
 WHERE u.username = 'bench_shop' AND c.name = '基准';
INSERT INTO mall_skus (product_id, specs, price_fen, stock, position)
SELECT p.id, jsonb_build_object('颜色', v.color), 1990 + v.i * 100, 1000000, v.i
  FROM mall_products p, (VALUES (0, '红'), (1, '蓝'), (2, '绿')) AS v(i, color)
 WHERE p.merchant_id = (SELECT id FROM users WHERE username = 'bench_shop');
