-- The callback transaction's SQL (src/pay/engine.rs apply_payment_tx, the rankings hook in
-- src/donate/rankings.rs, the NOTIFY in src/store/events.rs), one pending order per
-- transaction: what PostgreSQL alone does for a callback on this cluster.
SELECT nextval('bench_callback_seq') AS i \gset
BEGIN;
INSERT INTO callback_inbox (channel, kind, subject_id, order_no, accepted, outcome, headers, body)
     VALUES ('wechat', 'payment', 'pgbtx' || :i::text, 'pgbcb' || :i::text, true, 'applied',
             '{"wechatpay-serial":"PUB_KEY_ID_0119000001090000000000000000","wechatpay-timestamp":"1763763300"}',
             convert_to('{"id":"EV-2018022511223320873","event_type":"TRANSACTION.SUCCESS","resource":{"ciphertext":"…"}}', 'UTF8'))
     ON CONFLICT (channel, subject_id, kind) WHERE accepted DO NOTHING
     RETURNING id;
SELECT status, channel, amount_fen, transaction_id, purpose FROM payments WHERE order_no = 'pgbcb' || :i::text FOR UPDATE;
UPDATE payments SET status = 'paid', paid_at = now(), transaction_id = 'pgbtx' || :i::text,
                    late = (status = 'closed'), updated_at = now()
 WHERE order_no = 'pgbcb' || :i::text AND status IN ('pending', 'closed')
 RETURNING late;
INSERT INTO payment_events (order_no, kind, from_status, to_status, amount_fen, source, detail)
     VALUES ('pgbcb' || :i::text, 'paid', 'pending', 'paid', 1234, 'callback',
             jsonb_build_object('transaction_id', 'pgbtx' || :i::text));
INSERT INTO donation_totals AS t (category_id, donor_key, day, donor, amount_fen, count, first_paid_at)
SELECT d.category_id,
       CASE WHEN d.anonymous OR (d.user_id IS NULL AND btrim(d.donor_name) = '') THEN 'a:' || d.order_no
            WHEN d.user_id IS NOT NULL THEN 'u:' || d.user_id
            ELSE 'n:' || btrim(d.donor_name) END,
       (p.paid_at AT TIME ZONE 'Asia/Shanghai')::date,
       CASE WHEN d.anonymous OR btrim(d.donor_name) = '' THEN '匿名' ELSE btrim(d.donor_name) END,
       p.amount_fen - p.refunded_fen, 1, p.paid_at
  FROM payments p JOIN donations d USING (order_no) WHERE p.order_no = 'pgbcb' || :i::text
    ON CONFLICT (category_id, donor_key, day) DO UPDATE
   SET amount_fen = t.amount_fen + EXCLUDED.amount_fen, count = t.count + 1,
       first_paid_at = least(t.first_paid_at, EXCLUDED.first_paid_at);
SELECT pg_notify('zhifu_events', '{"kind":"payment","order_no":"pgbcb' || :i::text || '","status":"paid","purpose":"donation"}');
COMMIT;
