-- Pending donations for callback.sql to pay: pgbcb1 … pgbcbN (N = :n), and the sequence that
-- hands them out one per transaction.
CREATE SEQUENCE IF NOT EXISTS bench_callback_seq;
WITH p AS (
        INSERT INTO payments (order_no, purpose, channel, amount_fen, code_url, description, expires_at, next_check_at)
        SELECT 'pgbcb' || i, 'donation', 'wechat', 1234, 'weixin://wxpay/bizpayurl?pr=pgbench00', '捐赠 · 综合',
               now() + interval '15 minutes', now() + interval '1 day'
          FROM generate_series(1, :n) AS i
        RETURNING order_no),
     e AS (
        INSERT INTO payment_events (order_no, kind, to_status, amount_fen, source)
        SELECT order_no, 'created', 'pending', 1234, 'api' FROM p)
     INSERT INTO donations (order_no, category_id, donor_name, message, anonymous)
     SELECT order_no, 1, 'donor' || (random() * 40)::int, '', false FROM p;
