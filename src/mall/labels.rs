//! Words for the mall's codes in the page's language (order statuses, timeline steps, coupon
//! copies) and the texts made from its data (specs, a coupon's terms). An unknown code is
//! shown as it is.

use super::coupons::Coupon;
use crate::ui::{Ui, fill};

impl Ui {
    /// An order's status.
    pub fn order_status<'a>(&self, code: &'a (impl AsRef<str> + ?Sized)) -> &'a str {
        let m = &self.t.mall;
        match code.as_ref() {
            "pending_payment" => m.status_pending_payment,
            "paid" => m.status_paid,
            "shipped" => m.status_shipped,
            "completed" => m.status_completed,
            "cancelled" => m.status_cancelled,
            "refunding" => m.status_refunding,
            "refunded" => m.status_refunded,
            other => other,
        }
    }

    /// A step of an order's timeline.
    pub fn order_event<'a>(&self, code: &'a (impl AsRef<str> + ?Sized)) -> &'a str {
        let m = &self.t.mall;
        match code.as_ref() {
            "created" => m.event_created,
            "paid" => m.event_paid,
            "shipped" => m.event_shipped,
            "completed" => m.event_completed,
            "cancelled" => m.event_cancelled,
            "refund_requested" => m.event_refund_requested,
            "refund_refused" => m.event_refund_refused,
            "refund_approved" => m.event_refund_approved,
            "refunded" => m.event_refunded,
            "refund_failed" => m.event_refund_failed,
            "paid_after_cancel" => m.event_paid_after_cancel,
            other => other,
        }
    }

    /// Who or what made a step.
    pub fn order_source<'a>(&self, code: &'a (impl AsRef<str> + ?Sized)) -> &'a str {
        let m = &self.t.mall;
        match code.as_ref() {
            "buyer" => m.source_buyer,
            "seller" => m.source_seller,
            "admin" => m.source_admin,
            "system" => m.source_system,
            "payment" => m.source_payment,
            "expiry" => m.source_expiry,
            "provider" => m.source_provider,
            other => other,
        }
    }

    /// A claimed coupon's status.
    pub fn copy_status<'a>(&self, code: &'a (impl AsRef<str> + ?Sized)) -> &'a str {
        let m = &self.t.mall;
        match code.as_ref() {
            "unused" => m.copy_unused,
            "held" => m.copy_held,
            "used" => m.copy_used,
            "expired" => m.copy_expired,
            other => other,
        }
    }

    /// A SKU's specs as text: `颜色: 红 / 尺码: M` (empty for none).
    pub fn specs(&self, specs: &serde_json::Value) -> String {
        specs_text(specs)
    }

    /// What a coupon takes off: `减 ¥10.00`, `立减 15%`.
    pub fn coupon_off(&self, coupon: &Coupon) -> String {
        let m = &self.t.mall;
        match (&coupon.value, coupon.percent) {
            (Some(value), _) => fill(m.coupon_amount_off, &[("value", value)]),
            (None, Some(percent)) => fill(m.coupon_percent_off, &[("percent", &percent)]),
            (None, None) => String::new(),
        }
    }

    /// From what total a coupon applies.
    pub fn coupon_threshold(&self, coupon: &Coupon) -> String {
        if coupon.threshold_fen == 0 {
            self.t.mall.coupon_no_threshold.to_string()
        } else {
            fill(self.t.mall.coupon_threshold, &[("threshold", &coupon.threshold)])
        }
    }
}

/// Specs as text, in the order they are stored: `颜色: 红 / 尺码: M`.
pub fn specs_text(specs: &serde_json::Value) -> String {
    specs
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| format!("{k}: {}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(" / ")
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_read_as_text() {
        assert_eq!(
            specs_text(&serde_json::json!({"颜色": "红", "尺码": "M"})),
            "尺码: M / 颜色: 红"
        );
        assert_eq!(specs_text(&serde_json::json!({})), "");
    }
}
