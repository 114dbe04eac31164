//! The probe: a purchase purpose made for the tests (`sandbox` feature), shaped like the
//! real ones — units of a stock reserved at create, released on close, a payment that can no
//! longer be honoured refunded — and counting every hook it runs, so a test can see each ran
//! exactly once. Each purchase can be scripted through its row: `on_paid` answers `Refund`,
//! a step fails while it is listed in `fail`, `on_paid` waits on an advisory lock (`hold`).
//! Its tables exist only where a test made them ([`SCHEMA`]); no route creates probes. Its
//! pay page leads to [`page`], a path the pay page knows only from the probe.

use deadpool_postgres::Transaction;

use crate::error::AppError;
use crate::pay::create::{Begun, Created, Order};
use crate::pay::engine::Engine;
use crate::pay::provider::Channel;
use crate::pay::purpose::{BackTo, Hook, HookError, Lookup, PaymentRef, Purpose, Verdict, WayBack};
use crate::store::Store;

/// `payments.purpose` of a probe.
pub const NAME: &str = "probe";

/// Where the pay page of probe purchase `order_no` leads (no route serves it).
pub fn page(order_no: &str) -> String {
    format!("/probe/purchases/{order_no}")
}

/// The probe's tables (run by the tests that use it): one stock row (`id = 1`) and one row
/// per purchase, with its script and the count of each hook that ran.
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS probe_stock (
    id        integer PRIMARY KEY,
    available integer NOT NULL CHECK (available >= 0)
);
CREATE TABLE IF NOT EXISTS probe_purchases (
    order_no     text PRIMARY KEY REFERENCES payments (order_no),
    units        integer NOT NULL CHECK (units > 0),
    -- reserved → paid, or → released (closed unpaid); a late payment leaves it released.
    status       text NOT NULL DEFAULT 'reserved',
    verdict      text NOT NULL DEFAULT 'keep' CHECK (verdict IN ('keep', 'refund')),
    fail         text[] NOT NULL DEFAULT '{}',
    hold         bigint,
    paid         integer NOT NULL DEFAULT 0,
    late         boolean NOT NULL DEFAULT false,
    closed       integer NOT NULL DEFAULT 0,
    refunded     integer NOT NULL DEFAULT 0,
    refunded_fen bigint NOT NULL DEFAULT 0
);
INSERT INTO probe_stock (id, available) VALUES (1, 1000) ON CONFLICT (id) DO NOTHING;
";

/// How a probe purchase behaves.
#[derive(Debug, Clone, Default)]
pub struct Script {
    /// `on_paid` answers `Refund`.
    pub refuse: bool,
    /// Steps (`paid`, `closed`, `refunded`) that fail while listed in the row's `fail`.
    pub fail: Vec<String>,
    /// An advisory lock key `on_paid` takes (shared) before it writes: held elsewhere, the
    /// payment's transaction waits there.
    pub hold: Option<i64>,
}

/// The probe purpose.
#[derive(Debug)]
pub struct Probe;

const RESERVE: &str = "WITH s AS (
        UPDATE probe_stock SET available = available - $2 WHERE id = 1 AND available >= $2 RETURNING id)
     INSERT INTO probe_purchases (order_no, units, verdict, fail, hold) SELECT $1, $2, $3, $4, $5 FROM s";

/// Buys `units` at `unit_fen` as a module's handler would: begin, reserve, submit. With
/// `order_no` (an idempotent request's number) a purchase made before is answered as it
/// stands and nothing is reserved twice.
pub async fn buy(
    engine: &Engine,
    channel: Channel,
    units: i32,
    unit_fen: i64,
    script: &Script,
    order_no: Option<String>,
) -> Result<Created, AppError> {
    let client = engine.store.client().await?;
    let order = Order {
        purpose: NAME,
        channel,
        amount_fen: i64::from(units) * unit_fen,
        description: "探针 · probe",
        order_no,
    };
    let purchase = match engine.begin(client, order).await? {
        Begun::New(purchase) => purchase,
        Begun::Existing(created) => return Ok(created),
    };
    let verdict = if script.refuse { "refund" } else { "keep" };
    let statement = purchase
        .tx()
        .prepare_cached(RESERVE)
        .await
        .map_err(crate::store::StoreError::from)?;
    let reserved = purchase
        .tx()
        .execute(
            &statement,
            &[&purchase.order_no(), &units, &verdict, &script.fail, &script.hold],
        )
        .await
        .map_err(crate::store::StoreError::from)?;
    if reserved == 0 {
        // Dropping the purchase rolls the payment back: nothing was written.
        return Err(AppError::conflict("sold_out", "not enough probe units left"));
    }
    Ok(engine.submit(purchase).await?)
}

/// Fails when the purchase's script lists `step`.
async fn scripted(tx: &Transaction<'_>, order_no: &str, step: &str) -> Result<(), HookError> {
    let row = tx
        .query_opt(
            "SELECT $2 = ANY(fail) FROM probe_purchases WHERE order_no = $1",
            &[&order_no, &step],
        )
        .await?
        .ok_or("no probe purchase for this payment")?;
    if row.get::<_, bool>(0) {
        return Err(format!("the probe was told to fail its {step} step").into());
    }
    Ok(())
}

/// Puts a reserved purchase's units back in stock (once: only from `reserved`).
async fn release(tx: &Transaction<'_>, order_no: &str) -> Result<(), HookError> {
    let released = tx
        .query_opt(
            "UPDATE probe_purchases SET status = 'released' WHERE order_no = $1 AND status = 'reserved'
             RETURNING units",
            &[&order_no],
        )
        .await?;
    if let Some(row) = released {
        tx.execute(
            "UPDATE probe_stock SET available = available + $1 WHERE id = 1",
            &[&row.get::<_, i32>(0)],
        )
        .await?;
    }
    Ok(())
}

impl Purpose for Probe {
    fn name(&self) -> &'static str {
        NAME
    }

    fn on_paid<'a>(&'a self, tx: &'a Transaction<'_>, payment: &'a PaymentRef) -> Hook<'a, Verdict> {
        Box::pin(async move {
            scripted(tx, &payment.order_no, "paid").await?;
            let row = tx
                .query_one(
                    "SELECT status, verdict, hold FROM probe_purchases WHERE order_no = $1 FOR UPDATE",
                    &[&payment.order_no],
                )
                .await?;
            if let Some(hold) = row.get::<_, Option<i64>>(2) {
                tx.execute("SELECT pg_advisory_xact_lock_shared($1)", &[&hold]).await?;
            }
            tx.execute(
                "UPDATE probe_purchases SET paid = paid + 1, late = $2 WHERE order_no = $1",
                &[&payment.order_no, &payment.late],
            )
            .await?;
            let (status, verdict): (&str, &str) = (row.get(0), row.get(1));
            if status == "released" {
                return Ok(Verdict::Refund(
                    "探针：预留已释放 (the probe's units were released before the payment)".into(),
                ));
            }
            if payment.cancelled {
                // The engine refunds it; on_closed will not run for a paid order: release here.
                release(tx, &payment.order_no).await?;
                return Ok(Verdict::Refund("探针：已取消 (the probe was cancelled)".into()));
            }
            tx.execute(
                "UPDATE probe_purchases SET status = 'paid' WHERE order_no = $1",
                &[&payment.order_no],
            )
            .await?;
            Ok(if verdict == "refund" {
                Verdict::Refund("探针：无法履约 (the probe refuses this payment)".into())
            } else {
                Verdict::Keep
            })
        })
    }

    fn on_closed<'a>(&'a self, tx: &'a Transaction<'_>, payment: &'a PaymentRef) -> Hook<'a, ()> {
        Box::pin(async move {
            scripted(tx, &payment.order_no, "closed").await?;
            release(tx, &payment.order_no).await?;
            tx.execute(
                "UPDATE probe_purchases SET closed = closed + 1 WHERE order_no = $1",
                &[&payment.order_no],
            )
            .await?;
            Ok(())
        })
    }

    fn on_refunded<'a>(&'a self, tx: &'a Transaction<'_>, payment: &'a PaymentRef, amount_fen: i64) -> Hook<'a, ()> {
        Box::pin(async move {
            scripted(tx, &payment.order_no, "refunded").await?;
            tx.execute(
                "UPDATE probe_purchases SET refunded = refunded + 1, refunded_fen = refunded_fen + $2
                  WHERE order_no = $1",
                &[&payment.order_no, &amount_fen],
            )
            .await?;
            Ok(())
        })
    }

    /// A purchase's way back, to a page of its own.
    fn way_back<'a>(&'a self, _: &'a Store, order_no: &'a str) -> Lookup<'a, WayBack> {
        let back = WayBack {
            to: BackTo::Order,
            href: page(order_no),
        };
        Box::pin(async move { Ok(back) })
    }
}
