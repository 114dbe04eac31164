//! Human words for the codes the data holds — payment statuses, channels, roles, refund
//! states, event kinds, sources, callback kinds and outcomes, audit actions — in the page's
//! language. An unknown code is shown as it is, so a new one never breaks a page.

use super::Ui;

impl Ui {
    /// A payment status.
    pub fn status<'a>(&self, code: &'a (impl AsRef<str> + ?Sized)) -> &'a str {
        let c = &self.t.codes;
        match code.as_ref() {
            "pending" => c.status_pending,
            "paid" => c.status_paid,
            "closed" => c.status_closed,
            "refunded" => c.status_refunded,
            other => other,
        }
    }

    /// A payment channel.
    pub fn channel<'a>(&self, code: &'a (impl AsRef<str> + ?Sized)) -> &'a str {
        let c = &self.t.codes;
        match code.as_ref() {
            "wechat" => c.channel_wechat,
            "alipay" => c.channel_alipay,
            other => other,
        }
    }

    /// What a payment pays for.
    pub fn purpose<'a>(&self, code: &'a (impl AsRef<str> + ?Sized)) -> &'a str {
        match code.as_ref() {
            "donation" => self.t.codes.purpose_donation,
            "backing" => self.t.codes.purpose_backing,
            "mall_order" => self.t.codes.purpose_mall_order,
            other => other,
        }
    }

    /// An account's role.
    pub fn role<'a>(&self, code: &'a (impl AsRef<str> + ?Sized)) -> &'a str {
        let c = &self.t.codes;
        match code.as_ref() {
            "user" => c.role_user,
            "merchant" => c.role_merchant,
            "reviewer" => c.role_reviewer,
            "admin" => c.role_admin,
            other => other,
        }
    }

    /// A refund's status.
    pub fn refund_status<'a>(&self, code: &'a (impl AsRef<str> + ?Sized)) -> &'a str {
        let c = &self.t.codes;
        match code.as_ref() {
            "processing" => c.refund_processing,
            "succeeded" => c.refund_succeeded,
            "failed" => c.refund_failed,
            other => other,
        }
    }

    /// `payments.late_payment`: keep or refund.
    pub fn late_policy<'a>(&self, code: &'a (impl AsRef<str> + ?Sized)) -> &'a str {
        match code.as_ref() {
            "keep" => self.t.codes.late_keep,
            "refund" => self.t.codes.late_refund,
            other => other,
        }
    }

    /// A payment event's kind.
    pub fn event<'a>(&self, code: &'a (impl AsRef<str> + ?Sized)) -> &'a str {
        let c = &self.t.codes;
        match code.as_ref() {
            "created" => c.event_created,
            "paid" => c.event_paid,
            "paid_late" => c.event_paid_late,
            "second_payment" => c.event_second_payment,
            "closed" => c.event_closed,
            "refund_requested" => c.event_refund_requested,
            "refund_succeeded" => c.event_refund_succeeded,
            "refund_failed" => c.event_refund_failed,
            "cancel_requested" => c.event_cancel_requested,
            "cancelled" => c.event_cancelled,
            "create_failed" => c.event_create_failed,
            "create_abandoned" => c.event_create_abandoned,
            other => other,
        }
    }

    /// Where a payment event came from.
    pub fn source<'a>(&self, code: &'a (impl AsRef<str> + ?Sized)) -> &'a str {
        let c = &self.t.codes;
        match code.as_ref() {
            "api" => c.source_api,
            "callback" => c.source_callback,
            "reconcile" => c.source_reconcile,
            "admin" => c.source_admin,
            "sandbox" => c.source_sandbox,
            other => other,
        }
    }

    /// A stored callback's kind.
    pub fn callback_kind<'a>(&self, code: &'a (impl AsRef<str> + ?Sized)) -> &'a str {
        let c = &self.t.codes;
        match code.as_ref() {
            "payment" => c.kind_payment,
            "refund" => c.kind_refund,
            "other" => c.kind_other,
            other => other,
        }
    }

    /// A stored callback's outcome: applied, or refused with the reason as recorded.
    pub fn outcome(&self, code: impl AsRef<str>) -> String {
        match code.as_ref() {
            "applied" => self.t.codes.outcome_applied.to_string(),
            "refused" => self.t.codes.outcome_refused.to_string(),
            why => format!("{}: {why}", self.t.codes.outcome_refused),
        }
    }

    /// A payment's subject as the provider shows it (`捐赠 · 通用捐赠`), its purpose word in
    /// the page's language.
    pub fn subject(&self, description: impl AsRef<str>) -> String {
        let description = description.as_ref();
        match description.strip_prefix("捐赠 · ") {
            Some(rest) => format!("{} · {rest}", self.t.codes.purpose_donation),
            None => description.to_string(),
        }
    }

    /// An audit action.
    pub fn action<'a>(&self, code: &'a (impl AsRef<str> + ?Sized)) -> &'a str {
        let c = &self.t.codes;
        match code.as_ref() {
            "category.create" => c.action_category_create,
            "category.update" => c.action_category_update,
            "category.delete" => c.action_category_delete,
            "category.reorder" => c.action_category_reorder,
            "settings.update" => c.action_settings_update,
            "payment.refund" => c.action_payment_refund,
            "user.update" => c.action_user_update,
            "community_post_hide" => c.action_community_post_hide,
            "community_post_unhide" => c.action_community_post_unhide,
            "community_comment_hide" => c.action_community_comment_hide,
            "community_comment_unhide" => c.action_community_comment_unhide,
            "community_post_pin" => c.action_community_post_pin,
            "community_post_delete" => c.action_community_post_delete,
            "community_comment_delete" => c.action_community_comment_delete,
            "community_report_dismiss" => c.action_community_report_dismiss,
            "community_board_create" => c.action_community_board_create,
            "community_board_update" => c.action_community_board_update,
            other => other,
        }
    }
}
