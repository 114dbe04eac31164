//! Purposes: what a payment is for — a donation, a crowdfunding backing, a mall order. Each
//! business module implements [`Purpose`] once and `app.rs` registers it by name in the
//! engine's [`Purposes`]; the engine runs its hooks inside the transactions of the payment's
//! own transitions (each in a savepoint: a failing hook never rolls the money back, see
//! `pay::outbox`) and never imports the module. This is the one place modules meet the engine.
//! A purpose also says where its payer goes back to from the pay page ([`WayBack`]).

use std::future::Future;
use std::ops::RangeInclusive;
use std::pin::Pin;
use std::sync::Arc;

use deadpool_postgres::Transaction;

use super::policy::PaymentPolicy;
use super::provider::Channel;
use super::status::Status;
use crate::store::{Store, StoreError};

/// What a hook fails with: any error (`?` on a `tokio_postgres::Error` or a `String` works).
pub type HookError = Box<dyn std::error::Error + Send + Sync>;

/// A hook's future, borrowing the transaction it runs in.
pub type Hook<'a, T> = Pin<Box<dyn Future<Output = Result<T, HookError>> + Send + 'a>>;

/// A read of a purpose's own rows outside any transition (see [`Purpose::way_back`]).
pub type Lookup<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// The largest amount both providers take in one order: WeChat Pay's `amount.total` is a
/// 32-bit integer of fen (Alipay's limit, 100 000 000.00 yuan, is higher).
pub const PROVIDER_MAX_FEN: i64 = i32::MAX as i64;

/// The payment a hook is about, as it stands inside the hook's transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentRef {
    pub order_no: String,
    pub channel: Channel,
    /// The whole payment, fen.
    pub amount_fen: i64,
    /// It was paid after its order had closed (`on_closed` ran before, so what the order
    /// held is released).
    pub late: bool,
    /// The buyer asked to cancel it while it was pending ([`Engine::cancel`]). A payment that
    /// lands on it anyway is refunded in full whatever `on_paid` answers, and `on_closed`
    /// will not run for it (it is paid): `on_paid` releases what the order holds.
    ///
    /// [`Engine::cancel`]: super::engine::Engine::cancel
    pub cancelled: bool,
    /// Refunded so far, fen (in `on_refunded`: this refund included).
    pub refunded_fen: i64,
}

/// What `on_paid` says about a payment that landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The purchase is honoured: the money stays.
    Keep,
    /// It can no longer be honoured (stock gone, project ended, order cancelled): the engine
    /// queues a full refund in the same transaction, audited, and submits it after commit;
    /// the reconcile job retries it until the provider settles it. The text is the refund's
    /// reason (shown to operators and sent to the provider).
    Refund(String),
}

/// What happens to a payment that lands after its order closed (unpaid, expired or cancelled).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LatePayment {
    /// Refunded in full automatically (purchases: what the order held was released).
    Refund,
    /// As `payments.late_payment` says: kept and flagged `late`, or refunded (donations).
    Configured,
}

/// What a payment was for, as its pay page leads the payer back to it: the page's header
/// marks the section this names, and its buttons and thanks use its words. The pay layer
/// names the kind; `ui` maps it to a header section and texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackTo {
    /// A gift: the Donate section, "back to the home page" (after a closed one "donate
    /// again") and the donor thanked.
    Donation,
    /// A crowdfunding project backed: the Projects section, "back to the project".
    Project,
    /// A purchase: the Mall section, "view your order".
    Order,
}

/// Where the pay page of a payment leads once it is paid, closed or refunded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WayBack {
    pub to: BackTo,
    /// A path on this site.
    pub href: String,
}

impl WayBack {
    /// A donation's: the home page.
    pub fn home() -> WayBack {
        WayBack {
            to: BackTo::Donation,
            href: "/".to_string(),
        }
    }
}

/// A business module's side of its payments. Every hook runs on the engine's transaction,
/// after the payment's own conditional UPDATE, with the payment row locked, inside a
/// savepoint; so it runs exactly once per transition, and its writes commit with the
/// transition or not at all. A hook:
/// - may read and write the module's own tables through `tx` (`prepare_cached`), and call
///   services that write in the caller's transaction (notifications, mail, audit);
/// - must not commit, roll back, make network calls or wait on anything but the database,
///   and must not touch `payments`, `payment_events` or `refunds` (the engine owns them);
/// - may fail: its writes are rolled back to the savepoint, the payment still commits, and
///   the step is retried from `purpose_outbox` (with backoff, shown to operators) until it
///   succeeds — so it must give the same result when run again later. Later steps of the
///   same order wait behind it, so a purpose always sees paid → refunded in order.
pub trait Purpose: Send + Sync + 'static {
    /// The `payments.purpose` value: lower case letters, digits and `_`, at most 32.
    fn name(&self) -> &'static str;

    /// The amounts (fen) an order may have under `policy`. Default: whatever the providers
    /// take (a purchase's amount is computed by its module).
    fn amount_bounds(&self, policy: &PaymentPolicy) -> RangeInclusive<i64> {
        let _ = policy;
        1..=PROVIDER_MAX_FEN
    }

    /// What happens to a payment that lands after its order closed. Default: refunded.
    /// `on_paid` runs for it either way (with `late = true`), so the module's numbers see it
    /// before its refund reaches `on_refunded`.
    fn late_payment(&self) -> LatePayment {
        LatePayment::Refund
    }

    /// For [`Engine::create`] (provider first, then one statement): the purpose's own INSERT,
    /// written as the last part of a statement whose CTE `p` holds the new payment's
    /// `order_no`, its parameters numbered from [`FIRST_ROW_PARAM`], e.g.
    /// `INSERT INTO donations (order_no, category_id) SELECT order_no, $9 FROM p`.
    /// `None` (the default): the purpose creates through `begin`/`submit`.
    ///
    /// [`Engine::create`]: super::engine::Engine::create
    fn create_row(&self) -> Option<&'static str> {
        None
    }

    /// The payment turned paid (pending → paid, or closed → paid with `payment.late`).
    fn on_paid<'a>(&'a self, tx: &'a Transaction<'_>, payment: &'a PaymentRef) -> Hook<'a, Verdict>;

    /// The payment closed unpaid (expired, cancelled, or its provider order could not be
    /// made): release what the create reserved.
    fn on_closed<'a>(&'a self, tx: &'a Transaction<'_>, payment: &'a PaymentRef) -> Hook<'a, ()>;

    /// A refund of `amount_fen` succeeded (partial or full; `payment.refunded_fen` includes
    /// it): the module's derived numbers follow.
    fn on_refunded<'a>(&'a self, tx: &'a Transaction<'_>, payment: &'a PaymentRef, amount_fen: i64) -> Hook<'a, ()>;

    /// Refund `refund_no` of `amount_fen` failed for good (the provider refused it, confirmed
    /// by its books): the money stays with the payment and nothing is retried. The module
    /// undoes what it did while the refund was asked (an order back from `refunding`) and
    /// tells the payer. A refund that succeeds later after all still reaches `on_refunded`.
    /// Default: nothing.
    fn on_refund_failed<'a>(
        &'a self,
        tx: &'a Transaction<'_>,
        payment: &'a PaymentRef,
        refund_no: &'a str,
        amount_fen: i64,
    ) -> Hook<'a, ()> {
        let _ = (tx, payment, refund_no, amount_fen);
        Box::pin(async { Ok(()) })
    }

    /// Where the pay page of `order_no` (a payment of this purpose) leads its payer back to.
    /// Called on every render of a pay page; a purpose that needs its own row for it reads
    /// it by primary key from `store` (no transaction, nothing locked). Default: a donation's,
    /// the home page, without a read.
    fn way_back<'a>(&'a self, store: &'a Store, order_no: &'a str) -> Lookup<'a, WayBack> {
        let _ = (store, order_no);
        Box::pin(async { Ok(WayBack::home()) })
    }

    /// On every instance, after a payment of this purpose changed to `status` (from the
    /// event bus, also after an outbox retry applied a step): drop what the module keeps in
    /// memory that this changes (cached rankings, progress). Must be quick; no I/O.
    fn on_event(&self, status: Status) {
        let _ = status;
    }
}

/// The first `$n` a [`Purpose::create_row`] statement may use (the engine's are `$1..$8`).
pub const FIRST_ROW_PARAM: usize = 9;

/// The engine's part of a provider-first create: the payment and its `created` event, with
/// the purpose's row appended. `$1` order_no, `$2` purpose, `$3` channel, `$4` amount,
/// `$5` code_url, `$6` description, `$7` expires_at, `$8` next_check_at.
const CREATE_PREFIX: &str = "WITH p AS (
        INSERT INTO payments (order_no, purpose, channel, amount_fen, code_url, description, expires_at, next_check_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
        ON CONFLICT (order_no) DO NOTHING
        RETURNING order_no),
     e AS (
        INSERT INTO payment_events (order_no, kind, to_status, amount_fen, source)
        SELECT order_no, 'created', 'pending', $4, 'api' FROM p
        RETURNING order_no)";

/// A registered purpose and the create statement made for it once, at start-up.
pub(super) struct Registered {
    pub purpose: Arc<dyn Purpose>,
    /// The provider-first create: payment, event and the purpose's row in one statement;
    /// its row count is 0 when the order number was taken.
    pub create_sql: String,
}

/// The purposes the engine knows, by name. Built once at start-up (`app.rs`), then read only.
#[derive(Default)]
pub struct Purposes {
    entries: Vec<Registered>,
}

impl std::fmt::Debug for Purposes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|e| e.purpose.name()))
            .finish()
    }
}

/// True for a name `payments.purpose` accepts: `^[a-z][a-z0-9_]{0,31}$`.
pub fn valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    (1..=32).contains(&bytes.len())
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_')
}

impl Purposes {
    /// Adds `purpose`. Panics (at start-up) on a name that is malformed or taken: two modules
    /// claiming one name is a wiring mistake no request should meet.
    pub fn with(mut self, purpose: Arc<dyn Purpose>) -> Self {
        let name = purpose.name();
        assert!(
            valid_name(name),
            "purpose name {name:?} must match ^[a-z][a-z0-9_]{{0,31}}$"
        );
        assert!(self.get(name).is_none(), "purpose {name:?} is registered twice");
        let create_sql = match purpose.create_row() {
            Some(row) => format!("{CREATE_PREFIX}\n{row}"),
            None => format!("{CREATE_PREFIX}\nSELECT order_no FROM e"),
        };
        self.entries.push(Registered { purpose, create_sql });
        self
    }

    /// The purpose named `name`.
    pub fn get(&self, name: &str) -> Option<&dyn Purpose> {
        self.entry(name).map(|e| e.purpose.as_ref())
    }

    pub(super) fn entry(&self, name: &str) -> Option<&Registered> {
        // A handful of purposes: a scan beats hashing.
        self.entries.iter().find(|e| e.purpose.name() == name)
    }

    /// The registered names, in registration order.
    pub fn names(&self) -> Vec<&'static str> {
        self.entries.iter().map(|e| e.purpose.name()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Named(&'static str);

    impl Purpose for Named {
        fn name(&self) -> &'static str {
            self.0
        }
        fn on_paid<'a>(&'a self, _: &'a Transaction<'_>, _: &'a PaymentRef) -> Hook<'a, Verdict> {
            Box::pin(async { Ok(Verdict::Keep) })
        }
        fn on_closed<'a>(&'a self, _: &'a Transaction<'_>, _: &'a PaymentRef) -> Hook<'a, ()> {
            Box::pin(async { Ok(()) })
        }
        fn on_refunded<'a>(&'a self, _: &'a Transaction<'_>, _: &'a PaymentRef, _: i64) -> Hook<'a, ()> {
            Box::pin(async { Ok(()) })
        }
    }

    #[test]
    fn names_are_what_the_payments_table_accepts() {
        for good in ["donation", "mall_order", "b2", &"a".repeat(32)] {
            assert!(valid_name(good), "{good}");
        }
        for bad in ["", "Donation", "2b", "_x", "mall-order", "名", &"a".repeat(33)] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn purposes_are_found_by_name_and_get_a_create_statement_each() {
        let purposes = Purposes::default()
            .with(Arc::new(Named("donation")))
            .with(Arc::new(Named("backing")));
        assert_eq!(purposes.names(), ["donation", "backing"]);
        assert_eq!(purposes.get("backing").map(|p| p.name()), Some("backing"));
        assert!(purposes.get("mall_order").is_none());
        let sql = &purposes.entry("donation").unwrap().create_sql;
        assert!(sql.contains("INSERT INTO payments") && sql.ends_with("SELECT order_no FROM e"));
        assert_eq!(Named("x").amount_bounds(&test_policy()), 1..=PROVIDER_MAX_FEN);
        assert_eq!(Named("x").late_payment(), LatePayment::Refund);
    }

    #[test]
    #[should_panic(expected = "registered twice")]
    fn a_name_registered_twice_is_refused_at_start_up() {
        let _ = Purposes::default()
            .with(Arc::new(Named("donation")))
            .with(Arc::new(Named("donation")));
    }

    fn test_policy() -> PaymentPolicy {
        PaymentPolicy {
            wechat: true,
            alipay: true,
            min_amount_fen: 1,
            max_amount_fen: 100,
            order_ttl: std::time::Duration::from_secs(60),
            refund_late_payments: false,
        }
    }
}
