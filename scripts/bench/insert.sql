-- The create-donation INSERT (src/donate/create.rs, INSERT_DONATION) with literal values, as
-- pgbench runs it: the database's own ceiling for creating donations on this cluster.
\set n random(1, 1000000000000)
WITH p AS (
        INSERT INTO payments (order_no, purpose, channel, amount_fen, code_url, description, expires_at, next_check_at)
        VALUES ('pgbi' || :client_id::text || '_' || :n::text, 'donation', 'wechat', 1234,
                'weixin://wxpay/bizpayurl?pr=pgbench00', '捐赠 · 综合',
                now() + interval '15 minutes', now() + interval '1 day')
        RETURNING order_no),
     e AS (
        INSERT INTO payment_events (order_no, kind, to_status, amount_fen, source)
        SELECT order_no, 'created', 'pending', 1234, 'api' FROM p)
     INSERT INTO donations (order_no, category_id, donor_name, message, anonymous)
     SELECT order_no, 1, 'bench', '', false FROM p;
