//! Per-client-IP rate limits (GCRA token buckets, governor) on creating orders, on status
//! polls and on sign-in attempts: over the limit answers 429 with `Retry-After`. The address is the one
//! `client_ip` trusts, so a forged `X-Forwarded-For` cannot dodge or frame anyone.

use std::net::IpAddr;
use std::num::NonZeroU32;

use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use crate::config;
use crate::error::AppError;

type Limiter = RateLimiter<IpAddr, DefaultKeyedStateStore<IpAddr>, DefaultClock>;

/// What a request spends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Creating an order (a provider call and a database write).
    Create,
    /// Reading a payment's status (including long-polls), and the other public reads that
    /// can reach the database (rankings, recent donations, stats).
    Status,
    /// A sign-in attempt (password or WeChat code).
    Login,
}

/// The limiters; `None` where the configured rate is 0 (unlimited).
pub struct Limits {
    create: Option<Limiter>,
    status: Option<Limiter>,
    login: Option<Limiter>,
    clock: DefaultClock,
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limits")
            .field("create", &self.create.is_some())
            .field("status", &self.status.is_some())
            .field("login", &self.login.is_some())
            .finish()
    }
}

fn limiter(per_minute: u32, burst: u32) -> Option<Limiter> {
    let rate = NonZeroU32::new(per_minute)?;
    let burst = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
    Some(RateLimiter::dashmap(Quota::per_minute(rate).allow_burst(burst)))
}

impl Limits {
    pub fn new(settings: &config::Limits) -> Limits {
        Limits {
            create: limiter(settings.create_per_minute, settings.create_burst),
            status: limiter(settings.status_per_minute, settings.status_burst),
            login: limiter(settings.login_per_minute, settings.login_burst),
            clock: DefaultClock::default(),
        }
    }

    /// Spends one request of `kind` for `ip`, or says how long to wait.
    pub fn check(&self, kind: Kind, ip: IpAddr) -> Result<(), AppError> {
        let limiter = match kind {
            Kind::Create => &self.create,
            Kind::Status => &self.status,
            Kind::Login => &self.login,
        };
        let Some(limiter) = limiter else { return Ok(()) };
        limiter.check_key(&ip).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            AppError::RateLimited {
                retry_after_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
            }
        })
    }

    /// Forgets addresses whose buckets are full again (call periodically).
    pub fn retain_recent(&self) {
        for limiter in [&self.create, &self.status, &self.login].into_iter().flatten() {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_burst_passes_then_429_with_a_wait_and_other_addresses_are_unaffected() {
        let limits = Limits::new(&config::Limits {
            create_per_minute: 6,
            create_burst: 2,
            status_per_minute: 0,
            status_burst: 0,
            ..config::Limits::default()
        });
        let a: IpAddr = "198.51.100.1".parse().unwrap();
        let b: IpAddr = "198.51.100.2".parse().unwrap();
        assert!(limits.check(Kind::Create, a).is_ok());
        assert!(limits.check(Kind::Create, a).is_ok());
        match limits.check(Kind::Create, a) {
            Err(AppError::RateLimited { retry_after_secs }) => assert!((1..=10).contains(&retry_after_secs)),
            other => panic!("expected 429, got {other:?}"),
        }
        assert!(limits.check(Kind::Create, b).is_ok());
        for _ in 0..1000 {
            assert!(limits.check(Kind::Status, a).is_ok(), "0 means unlimited");
        }
    }
}
