-- The SQL of one backing (POST /api/projects/{id}/backings with a reward of unlimited
-- quantity that ships, so a unit is reserved and the address copied), as the server runs
-- it, with literal values: what PostgreSQL alone does for a backing on this cluster, in the
-- server's round trips (statements the server sends together without waiting are a pgbench
-- pipeline here). In the server's order:
--   src/crowdfunding/back.rs  check: PROJECT (with the reward and the address), before the
--                             transaction;
--   src/pay/create.rs         Engine::open/start (BEGIN, then the statement BEGIN), with
--   src/crowdfunding/back.rs  RESERVE (project held live, unit, backing, the `project`
--                             event) in the same round trip;
--   src/pay/create.rs         Engine::submit: COMMIT, [the provider call], STORE_CODE_URL;
--   src/crowdfunding/back.rs  answer: BACKING, for the 201 answer.
-- Only the provider call and the HTTP around it are left out. Variables (pgbench -D), from
-- scripts/bench/writes-seed.sql: users, ubase, abase (buyer k owns address abase + k),
-- project, reward. The amount (20.00), the address and the description are the ones
-- scripts/bench/backing.lua sends and the seed stores. Needs -M extended or prepared
-- (pipelines).
\set u random(0, :users - 1)
\set buyer :ubase + :u
\set addr :abase + :u
\set n random(1, 1000000000000)
SELECT p.title, p.status, p.deadline > now(), r.title, r.min_amount_fen, r.ships,
       a.name, a.phone, a.region, a.detail
  FROM projects p
  LEFT JOIN project_rewards r ON r.id = :reward AND r.project_id = p.id
  LEFT JOIN addresses a ON a.id = :addr AND a.user_id = :buyer
 WHERE p.id = :project;
\startpipeline
BEGIN;
WITH p AS (
        INSERT INTO payments (order_no, purpose, channel, amount_fen, description, expires_at, next_check_at)
        VALUES ('pgbb' || :client_id::text || '_' || :n::text, 'backing', 'wechat', 2000, '众筹 · 写入基准项目',
                now() + interval '15 minutes', now() + interval '30 seconds')
        ON CONFLICT (order_no) DO NOTHING
        RETURNING order_no)
     INSERT INTO payment_events (order_no, kind, to_status, amount_fen, source)
     SELECT order_no, 'created', 'pending', 2000, 'api' FROM p;
WITH live AS MATERIALIZED (
        SELECT 1 FROM projects WHERE id = :project AND status = 'live' AND deadline > now() FOR SHARE),
     unit AS (
        UPDATE project_rewards SET reserved = reserved + 1
         WHERE id = :reward AND project_id = :project AND (quantity IS NULL OR reserved + taken < quantity)
           AND EXISTS (SELECT 1 FROM live)
        RETURNING 1),
     made AS (
        INSERT INTO backings (order_no, project_id, user_id, reward_id, amount_fen, message, anonymous,
               unit, ship_name, ship_phone, ship_region, ship_detail, shipping)
        SELECT 'pgbb' || :client_id::text || '_' || :n::text, :project, :buyer, :reward, 2000, '', false,
               'reserved', '基准买家', '13800000000', '上海市 浦东新区', '世纪大道 100 号', 'pending'
         WHERE EXISTS (SELECT 1 FROM live) AND EXISTS (SELECT 1 FROM unit)
        RETURNING 1),
     told AS MATERIALIZED (
        SELECT pg_notify('zhifu_events', '{"kind":"project","id":' || :project::text || '}') FROM made)
SELECT EXISTS (SELECT 1 FROM live), (SELECT count(*) FROM unit), (SELECT count(*) FROM made),
       (SELECT count(*) FROM told);
\endpipeline
COMMIT;
UPDATE payments SET code_url = 'weixin://wxpay/bizpayurl?pr=pgbench00', next_check_at = now() + interval '15 seconds',
                    updated_at = now()
 WHERE order_no = 'pgbb' || :client_id::text || '_' || :n::text AND status = 'pending' AND code_url IS NULL;
SELECT b.project_id, b.reward_id, r.title, b.amount_fen, b.message, b.anonymous, b.shipping
  FROM backings b LEFT JOIN project_rewards r ON r.id = b.reward_id
 WHERE b.order_no = 'pgbb' || :client_id::text || '_' || :n::text;
