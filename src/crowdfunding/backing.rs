//! A backing's money effects, run inside the payment engine's transactions (the `backing`
//! purpose): paid → the reward unit taken and the project's progress raised, unless the
//! project ended (or the unit is gone after a late payment), when the payment is refunded in
//! full and never counted; closed unpaid → the reward unit released, exactly once; refunded
//! → progress lowered and the backer notified; a refund failed for good → nothing to undo
//! (asking for a refund changes no progress: only its success does), audited and the backer
//! notified. Each that moves progress locks the backing and its project row, so progress is
//! exact under any concurrency and a settlement sees every counted payment.

use deadpool_postgres::Transaction;

use super::projects::changed;
use crate::notify::{self, Actor, Kind, Notice, Target, TargetId};
use crate::pay::money::format_yuan;
use crate::pay::purpose::Verdict;
use crate::store::audit;

const PAID_STATE: &str = "SELECT b.project_id, b.user_id, b.reward_id, b.unit, b.amount_fen,
        pr.status = 'live' AND p.paid_at <= pr.deadline, b.counted
   FROM backings b JOIN payments p USING (order_no) JOIN projects pr ON pr.id = b.project_id
  WHERE b.order_no = $1 FOR UPDATE OF b, pr";

const TAKE_RESERVED: &str = "UPDATE project_rewards SET reserved = reserved - 1, taken = taken + 1 WHERE id = $1";
/// A late payment's unit was released when its order closed: take one again, if any is left.
const TAKE_AGAIN: &str = "UPDATE project_rewards SET taken = taken + 1
  WHERE id = $1 AND (quantity IS NULL OR reserved + taken < quantity) RETURNING 1";
const RELEASE_RESERVED: &str = "UPDATE project_rewards SET reserved = reserved - 1 WHERE id = $1";
const RELEASE_TAKEN: &str = "UPDATE project_rewards SET taken = taken - 1 WHERE id = $1";
const SET_UNIT: &str = "UPDATE backings SET unit = $2 WHERE order_no = $1";

const ADD_BACKER: &str = "INSERT INTO project_backers AS pb (project_id, user_id, net_fen) VALUES ($1, $2, $3)
     ON CONFLICT (project_id, user_id) DO UPDATE SET net_fen = pb.net_fen + EXCLUDED.net_fen
     RETURNING net_fen";
const SUB_BACKER: &str = "UPDATE project_backers SET net_fen = net_fen - $3
  WHERE project_id = $1 AND user_id = $2 RETURNING net_fen";
const MOVE_PROGRESS: &str =
    "UPDATE projects SET raised_fen = raised_fen + $2, backers = backers + $3, updated_at = now()
  WHERE id = $1 RETURNING raised_fen";
const COUNTED: &str = "UPDATE backings SET counted = true, raised_after_fen = $2 WHERE order_no = $1";

/// The payment of backing `order_no` turned paid. Counts it when its project is live and it
/// was paid by the deadline; else (and when `lapsed`: it landed after its order closed, when
/// the unit went back, or after the buyer cancelled it) says to refund it in full, and it never
/// counts. Run again after it counted, it changes nothing.
pub async fn on_paid(tx: &Transaction<'_>, order_no: &str, lapsed: bool) -> Result<Verdict, tokio_postgres::Error> {
    let Some(row) = tx.query_opt(PAID_STATE, &[&order_no]).await? else {
        return Ok(Verdict::Refund("no backing for this payment".into()));
    };
    let (project_id, user_id, reward_id, unit, amount): (i64, i64, Option<i64>, Option<String>, i64) =
        (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
    let (open, counted): (bool, bool) = (row.get(5), row.get(6));
    if counted {
        return Ok(Verdict::Keep);
    }
    if !open || lapsed {
        if let (Some(reward), Some("reserved")) = (reward_id, unit.as_deref()) {
            tx.execute(RELEASE_RESERVED, &[&reward]).await?;
            tx.execute(SET_UNIT, &[&order_no, &"released"]).await?;
            changed(tx, project_id).await?;
        }
        let why = if open {
            "订单已关闭后到账，全额退款 (paid after the order closed)"
        } else {
            "众筹已结束后到账，全额退款 (paid after the project ended)"
        };
        return Ok(Verdict::Refund(why.into()));
    }
    if let Some(reward) = reward_id {
        if unit.as_deref() == Some("reserved") {
            tx.execute(TAKE_RESERVED, &[&reward]).await?;
        } else if tx.query_opt(TAKE_AGAIN, &[&reward]).await?.is_none() {
            // Its unit went back meanwhile, and none is left.
            return Ok(Verdict::Refund("回报已售罄，全额退款 (the reward sold out)".into()));
        }
        tx.execute(SET_UNIT, &[&order_no, &"taken"]).await?;
    }
    let net: i64 = tx
        .query_one(ADD_BACKER, &[&project_id, &user_id, &amount])
        .await?
        .get(0);
    let new_backer = i32::from(net == amount);
    let raised: i64 = tx
        .query_one(MOVE_PROGRESS, &[&project_id, &amount, &new_backer])
        .await?
        .get(0);
    tx.execute(COUNTED, &[&order_no, &raised]).await?;
    changed(tx, project_id).await?;
    Ok(Verdict::Keep)
}

const CLOSED: &str = "UPDATE backings SET unit = 'released' WHERE order_no = $1 AND unit = 'reserved'
  RETURNING reward_id, project_id";

/// The payment of backing `order_no` closed unpaid: its reward unit goes back, once.
pub async fn on_closed(tx: &Transaction<'_>, order_no: &str) -> Result<(), tokio_postgres::Error> {
    if let Some(row) = tx.query_opt(CLOSED, &[&order_no]).await? {
        let (reward, project_id): (i64, i64) = (row.get(0), row.get(1));
        tx.execute(RELEASE_RESERVED, &[&reward]).await?;
        changed(tx, project_id).await?;
    }
    Ok(())
}

const REFUNDED_STATE: &str = "SELECT b.project_id, b.user_id, b.counted, b.reward_id, b.unit,
        p.refunded_fen >= b.amount_fen, pr.title
   FROM backings b JOIN payments p USING (order_no) JOIN projects pr ON pr.id = b.project_id
  WHERE b.order_no = $1 FOR UPDATE OF b, pr";

/// `amount_fen` of backing `order_no` was refunded (the payment's `refunded_fen` already
/// includes it): a counted backing lowers the progress, a backing refunded in full gives its
/// reward unit back, and the backer hears of it.
pub async fn on_refunded(tx: &Transaction<'_>, order_no: &str, amount_fen: i64) -> Result<(), tokio_postgres::Error> {
    let Some(row) = tx.query_opt(REFUNDED_STATE, &[&order_no]).await? else {
        return Ok(());
    };
    let (project_id, user_id, counted, reward_id): (i64, i64, bool, Option<i64>) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    let (unit, whole, title): (Option<String>, bool, String) = (row.get(4), row.get(5), row.get(6));
    if counted {
        let net: i64 = tx
            .query_opt(SUB_BACKER, &[&project_id, &user_id, &amount_fen])
            .await?
            .map_or(0, |r| r.get(0));
        let gone = -i32::from(net == 0);
        tx.execute(MOVE_PROGRESS, &[&project_id, &-amount_fen, &gone]).await?;
    }
    if whole && let (Some(reward), Some("taken")) = (reward_id, unit.as_deref()) {
        tx.execute(RELEASE_TAKEN, &[&reward]).await?;
        tx.execute(SET_UNIT, &[&order_no, &"released"]).await?;
    }
    let amount = format_yuan(amount_fen);
    let text = notify::bilingual(
        &format!("你对「{title}」的支持已退款 ¥{amount}"),
        &format!("A refund of ¥{amount} for your backing of “{title}” went through"),
    );
    tell_backer(tx, user_id, order_no, &text, None).await?;
    changed(tx, project_id).await?;
    Ok(())
}

const REFUND_FAILED_STATE: &str = "SELECT b.project_id, b.user_id, b.counted, pr.title, pr.raised_fen
   FROM backings b JOIN projects pr ON pr.id = b.project_id
  WHERE b.order_no = $1";

/// Refund `refund_no` of `amount_fen` of backing `order_no` failed for good: the money stays
/// with the backing. Asking for the refund (an admin's, the settlement's, or the engine's for
/// a payment that could not count) changed nothing of the backing or its project — progress
/// and the reward unit follow a refund only once it succeeds — so a counted backing is still
/// counted in `raised_fen` and `backers`, and nothing needs undoing. What did change is the
/// project's settlement (this refund now failed, no longer pending): its cached answers are
/// dropped. The audit log says what happened (actor `system`), and the backer is told, once
/// per refund.
pub async fn on_refund_failed(
    tx: &Transaction<'_>,
    order_no: &str,
    refund_no: &str,
    amount_fen: i64,
) -> Result<(), tokio_postgres::Error> {
    let statement = tx.prepare_cached(REFUND_FAILED_STATE).await?;
    let Some(row) = tx.query_opt(&statement, &[&order_no]).await? else {
        return Ok(());
    };
    let (project_id, user_id, counted): (i64, i64, bool) = (row.get(0), row.get(1), row.get(2));
    let (title, raised_fen): (String, i64) = (row.get(3), row.get(4));
    let refund = |status: &str| serde_json::json!({"refund_no": refund_no, "amount_fen": amount_fen, "status": status});
    let before = serde_json::json!({"refund": refund("processing"), "counted": counted,
                                    "project_id": project_id, "project_raised_fen": raised_fen});
    let mut after = before.clone();
    after["refund"] = refund("failed");
    let system = audit::Actor {
        user_id: None,
        name: "system",
        ip: "",
    };
    let target = format!("backing:{order_no}");
    audit::write(
        tx,
        system,
        "backing.refund_failed",
        &target,
        Some(&before),
        Some(&after),
    )
    .await?;
    let amount = format_yuan(amount_fen);
    let text = notify::bilingual(
        &format!("你对「{title}」的支持退款 ¥{amount} 未能完成，款项未退回；请联系客服"),
        &format!(
            "The refund of ¥{amount} for your backing of “{title}” could not be made and the money was not returned; please contact support"
        ),
    );
    let key = format!("refund_failed:{refund_no}");
    tell_backer(tx, user_id, order_no, &text, Some(&key)).await?;
    changed(tx, project_id).await
}

/// Tells backer `user_id` of a refund of backing `order_no` (once per `dedupe_key`, if any).
async fn tell_backer(
    tx: &Transaction<'_>,
    user_id: i64,
    order_no: &str,
    text: &str,
    dedupe_key: Option<&str>,
) -> Result<(), tokio_postgres::Error> {
    let notice = Notice {
        recipient_id: user_id,
        kind: Kind::Refund,
        actor: Actor::System,
        target: Target {
            kind: "backing",
            id: TargetId::Key(order_no),
        },
        text,
        dedupe_key,
    };
    notify::notify(tx, &notice).await.map(drop)
}
