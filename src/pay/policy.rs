//! Payment settings operators change at run time (admin → `payment_settings`): channels on
//! or off, amount bounds, order TTL and the late-payment policy. The effective policy is the
//! database's overrides laid over `config.yaml`; every instance reloads it when a
//! `payment_settings` event arrives (and after every event-bus reconnect), and the instance
//! that made the change applies it before answering. Switching a channel off stops new
//! orders only: orders already created on it are still queried, closed and refunded.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use deadpool_postgres::GenericClient;
use serde::Serialize;

use crate::pay::provider::Channel;
use crate::store::{Store, StoreError};

/// What the engine and the donate form apply now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentPolicy {
    pub wechat: bool,
    pub alipay: bool,
    pub min_amount_fen: i64,
    pub max_amount_fen: i64,
    pub order_ttl: Duration,
    pub refund_late_payments: bool,
}

impl PaymentPolicy {
    /// True when new orders may be created on `channel`.
    pub fn accepts(&self, channel: Channel) -> bool {
        match channel {
            Channel::Wechat => self.wechat,
            Channel::Alipay => self.alipay,
        }
    }
}

/// The row of `payment_settings`: `None` = the configured value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Overrides {
    pub wechat_enabled: Option<bool>,
    pub alipay_enabled: Option<bool>,
    pub min_amount_fen: Option<i64>,
    pub max_amount_fen: Option<i64>,
    pub order_ttl_secs: Option<i32>,
    pub late_payment: Option<String>,
}

impl Overrides {
    /// Reads the one row (`FOR UPDATE` when `lock`, inside the caller's transaction).
    pub async fn read(client: &impl GenericClient, lock: bool) -> Result<Overrides, tokio_postgres::Error> {
        let sql = if lock {
            "SELECT wechat_enabled, alipay_enabled, min_amount_fen, max_amount_fen, order_ttl_secs, late_payment
               FROM payment_settings WHERE id = 1 FOR UPDATE"
        } else {
            "SELECT wechat_enabled, alipay_enabled, min_amount_fen, max_amount_fen, order_ttl_secs, late_payment
               FROM payment_settings WHERE id = 1"
        };
        Ok(match client.query_opt(sql, &[]).await? {
            Some(row) => Overrides {
                wechat_enabled: row.get(0),
                alipay_enabled: row.get(1),
                min_amount_fen: row.get(2),
                max_amount_fen: row.get(3),
                order_ttl_secs: row.get(4),
                late_payment: row.get(5),
            },
            None => Overrides::default(),
        })
    }

    /// Writes the row (inside the caller's transaction) and tells every instance.
    pub async fn write(&self, client: &impl GenericClient) -> Result<(), tokio_postgres::Error> {
        client
            .execute(
                "INSERT INTO payment_settings (id, wechat_enabled, alipay_enabled, min_amount_fen, max_amount_fen,
                                               order_ttl_secs, late_payment, updated_at)
                 VALUES (1, $1, $2, $3, $4, $5, $6, now())
                 ON CONFLICT (id) DO UPDATE SET wechat_enabled = $1, alipay_enabled = $2, min_amount_fen = $3,
                        max_amount_fen = $4, order_ttl_secs = $5, late_payment = $6, updated_at = now()",
                &[
                    &self.wechat_enabled,
                    &self.alipay_enabled,
                    &self.min_amount_fen,
                    &self.max_amount_fen,
                    &self.order_ttl_secs,
                    &self.late_payment,
                ],
            )
            .await?;
        crate::store::events::publish(client, r#"{"kind":"payment_settings"}"#).await
    }
}

/// The configured policy, the overrides in force and the effective result.
#[derive(Debug)]
pub struct Policy {
    /// From `config.yaml`; a channel is true only when its provider is configured.
    base: PaymentPolicy,
    state: RwLock<(Overrides, Arc<PaymentPolicy>)>,
}

impl Policy {
    pub fn new(base: PaymentPolicy) -> Policy {
        let current = Arc::new(base.clone());
        Policy {
            base,
            state: RwLock::new((Overrides::default(), current)),
        }
    }

    /// The policy in force.
    pub fn current(&self) -> Arc<PaymentPolicy> {
        Arc::clone(&self.state.read().unwrap_or_else(|e| e.into_inner()).1)
    }

    /// The configured policy, before overrides.
    pub fn base(&self) -> &PaymentPolicy {
        &self.base
    }

    /// The overrides in force.
    pub fn overrides(&self) -> Overrides {
        self.state.read().unwrap_or_else(|e| e.into_inner()).0.clone()
    }

    /// What `overrides` would make of the configured policy. A channel without a
    /// configured provider stays off whatever the override says.
    pub fn effective(&self, overrides: &Overrides) -> PaymentPolicy {
        let base = &self.base;
        PaymentPolicy {
            wechat: base.wechat && overrides.wechat_enabled.unwrap_or(true),
            alipay: base.alipay && overrides.alipay_enabled.unwrap_or(true),
            min_amount_fen: overrides.min_amount_fen.unwrap_or(base.min_amount_fen),
            max_amount_fen: overrides.max_amount_fen.unwrap_or(base.max_amount_fen),
            order_ttl: overrides
                .order_ttl_secs
                .map_or(base.order_ttl, |s| Duration::from_secs(s.max(60) as u64)),
            refund_late_payments: overrides
                .late_payment
                .as_deref()
                .map_or(base.refund_late_payments, |p| p == "refund"),
        }
    }

    /// Puts `overrides` in force; returns whether anything changed.
    pub fn apply(&self, overrides: Overrides) -> bool {
        let effective = self.effective(&overrides);
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        let changed = *state.1 != effective;
        *state = (overrides, Arc::new(effective));
        changed
    }

    /// Reads the overrides from the database and puts them in force; returns whether the
    /// effective policy changed.
    pub async fn reload(&self, store: &Store) -> Result<bool, StoreError> {
        let client = store.client().await?;
        let overrides = Overrides::read(&client, false).await.map_err(StoreError::from)?;
        Ok(self.apply(overrides))
    }
}

/// A configured policy for tests: WeChat on, Alipay not configured, 0.01..=50000.00, 15 min.
#[cfg(test)]
pub(crate) fn sample() -> PaymentPolicy {
    PaymentPolicy {
        wechat: true,
        alipay: false,
        min_amount_fen: 1,
        max_amount_fen: 5_000_000,
        order_ttl: Duration::from_secs(900),
        refund_late_payments: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> PaymentPolicy {
        sample()
    }

    #[test]
    fn overrides_lay_over_the_configuration() {
        let policy = Policy::new(base());
        assert_eq!(*policy.current(), base());
        let changed = policy.apply(Overrides {
            wechat_enabled: Some(false),
            min_amount_fen: Some(100),
            order_ttl_secs: Some(120),
            late_payment: Some("refund".into()),
            ..Overrides::default()
        });
        assert!(changed);
        let now = policy.current();
        assert!(!now.wechat);
        assert_eq!(now.min_amount_fen, 100);
        assert_eq!(now.max_amount_fen, 5_000_000, "not overridden");
        assert_eq!(now.order_ttl, Duration::from_secs(120));
        assert!(now.refund_late_payments);
        assert!(!policy.apply(policy.overrides()), "same overrides, no change");
        policy.apply(Overrides::default());
        assert_eq!(*policy.current(), base());
    }

    #[test]
    fn an_unconfigured_channel_cannot_be_switched_on() {
        let policy = Policy::new(base());
        policy.apply(Overrides {
            alipay_enabled: Some(true),
            ..Overrides::default()
        });
        assert!(!policy.current().accepts(Channel::Alipay));
        assert!(policy.current().accepts(Channel::Wechat));
    }
}
