//! The donation purpose. A donation holds nothing until it is paid, so it is created provider
//! first, its row written in the payment's own statement (`create_row`); its paid and refunded
//! steps keep `donation_totals` exact, a paid or refunded donation drops the cached rankings
//! on every instance, and a late donation follows `payments.late_payment`.

use std::ops::RangeInclusive;
use std::sync::Arc;

use deadpool_postgres::Transaction;

use super::rankings::{self, Rankings};
use crate::pay::policy::PaymentPolicy;
use crate::pay::purpose::{Hook, LatePayment, PaymentRef, Purpose, Verdict};
use crate::pay::status::Status;

/// `payments.purpose` of a donation.
pub const NAME: &str = "donation";

/// The donation's row, after the engine's payment and event (`$9…`): category, donor name,
/// message, anonymous, signed-in donor.
const INSERT_DONATION: &str = "INSERT INTO donations (order_no, category_id, donor_name, message, anonymous, user_id)
     SELECT order_no, $9, $10, $11, $12, $13 FROM p";

/// Donations, as the engine sees them.
#[derive(Debug)]
pub struct Donation {
    /// `rankings.timezone`: the local day a payment counts for.
    timezone: String,
    rankings: Arc<Rankings>,
}

impl Donation {
    pub fn new(timezone: &str, rankings: Arc<Rankings>) -> Donation {
        Donation {
            timezone: timezone.to_string(),
            rankings,
        }
    }
}

impl Purpose for Donation {
    fn name(&self) -> &'static str {
        NAME
    }

    /// `payments.min_amount` ..= `payments.max_amount`, as set now.
    fn amount_bounds(&self, policy: &PaymentPolicy) -> RangeInclusive<i64> {
        policy.min_amount_fen..=policy.max_amount_fen
    }

    fn late_payment(&self) -> LatePayment {
        LatePayment::Configured
    }

    fn create_row(&self) -> Option<&'static str> {
        Some(INSERT_DONATION)
    }

    fn on_paid<'a>(&'a self, tx: &'a Transaction<'_>, payment: &'a PaymentRef) -> Hook<'a, Verdict> {
        Box::pin(async move {
            let statement = tx.prepare_cached(rankings::on_paid_sql()).await?;
            tx.execute(&statement, &[&payment.order_no, &self.timezone]).await?;
            Ok(Verdict::Keep)
        })
    }

    fn on_closed<'a>(&'a self, _: &'a Transaction<'_>, _: &'a PaymentRef) -> Hook<'a, ()> {
        // Nothing was held.
        Box::pin(async { Ok(()) })
    }

    fn on_refunded<'a>(&'a self, tx: &'a Transaction<'_>, payment: &'a PaymentRef, amount_fen: i64) -> Hook<'a, ()> {
        Box::pin(async move {
            let statement = tx.prepare_cached(rankings::on_refunded_sql()).await?;
            tx.execute(&statement, &[&payment.order_no, &amount_fen, &self.timezone])
                .await?;
            Ok(())
        })
    }

    /// A paid or refunded donation changes a total; a closed one changes nothing.
    fn on_event(&self, status: Status) {
        if matches!(status, Status::Paid | Status::Refunded) {
            self.rankings.invalidate();
        }
    }
}
