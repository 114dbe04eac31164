//! The `backing` purpose: how the payment engine reaches crowdfunding. Each hook runs on the
//! engine's transaction of the payment's transition and hands over to `backing`, which keeps
//! the reward units and the project's progress exact; the project events those write drop
//! the cached answers on every instance when the transaction commits. Its payer goes back to
//! the project backed.

use std::ops::RangeInclusive;

use deadpool_postgres::Transaction;

use super::backing;
use crate::pay::policy::PaymentPolicy;
use crate::pay::purpose::{BackTo, Hook, Lookup, PaymentRef, Purpose, Verdict, WayBack};
use crate::store::Store;

pub use super::back::NAME;

/// The project of a backing, by the backing's primary key.
const PROJECT_OF: &str = "SELECT project_id FROM backings WHERE order_no = $1";

/// Crowdfunding backings, as the engine sees them.
#[derive(Debug, Default)]
pub struct Backing;

impl Purpose for Backing {
    fn name(&self) -> &'static str {
        NAME
    }

    /// A backer chooses the amount, as a donor does: `payments.min_amount` ..= `max_amount`.
    fn amount_bounds(&self, policy: &PaymentPolicy) -> RangeInclusive<i64> {
        policy.min_amount_fen..=policy.max_amount_fen
    }

    /// Counted when the project is live and it was paid by the deadline; a payment that
    /// landed after its order closed or was cancelled (its unit went back), or after the
    /// end, is refunded in full and never counted.
    fn on_paid<'a>(&'a self, tx: &'a Transaction<'_>, payment: &'a PaymentRef) -> Hook<'a, Verdict> {
        Box::pin(async move {
            let lapsed = payment.late || payment.cancelled;
            Ok(backing::on_paid(tx, &payment.order_no, lapsed).await?)
        })
    }

    /// The reward unit the create held goes back, once.
    fn on_closed<'a>(&'a self, tx: &'a Transaction<'_>, payment: &'a PaymentRef) -> Hook<'a, ()> {
        Box::pin(async move { Ok(backing::on_closed(tx, &payment.order_no).await?) })
    }

    /// Progress follows the refund; the backer hears of it.
    fn on_refunded<'a>(&'a self, tx: &'a Transaction<'_>, payment: &'a PaymentRef, amount_fen: i64) -> Hook<'a, ()> {
        Box::pin(async move { Ok(backing::on_refunded(tx, &payment.order_no, amount_fen).await?) })
    }

    /// Nothing to undo (a refund moves progress only once it succeeds); audited, the
    /// project's cached settlement dropped, the backer told.
    fn on_refund_failed<'a>(
        &'a self,
        tx: &'a Transaction<'_>,
        payment: &'a PaymentRef,
        refund_no: &'a str,
        amount_fen: i64,
    ) -> Hook<'a, ()> {
        Box::pin(async move { Ok(backing::on_refund_failed(tx, &payment.order_no, refund_no, amount_fen).await?) })
    }

    /// Back to the project backed (home, as a donation, for a payment with no backing).
    fn way_back<'a>(&'a self, store: &'a Store, order_no: &'a str) -> Lookup<'a, WayBack> {
        Box::pin(async move {
            let client = store.client().await?;
            let statement = client.prepare_cached(PROJECT_OF).await?;
            let project: Option<i64> = client.query_opt(&statement, &[&order_no]).await?.map(|r| r.get(0));
            Ok(project.map_or_else(WayBack::home, |id| WayBack {
                to: BackTo::Project,
                href: format!("/projects/{id}"),
            }))
        })
    }
}
