//! `crowdfunding.*`: the campaign window, settlement timing and delivery. Its own struct and
//! checks, so the module's keys stay together.

use serde::{Deserialize, Serialize};

/// The longest campaign, from now to its deadline (contract: "+ 90 days").
pub const MAX_DURATION_SECS: u64 = 90 * 24 * 3600;

/// `crowdfunding.*`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Crowdfunding {
    /// Shortest campaign: a deadline at least this many seconds after the project is saved
    /// or submitted.
    pub min_duration_secs: u64,
    /// Days after shipping that a reward counts as delivered (the owner may then mark it,
    /// and the settlement job does).
    pub auto_deliver_days: u32,
    /// Seconds between two passes of the settlement job on each instance.
    pub settle_interval_secs: u64,
    /// Seconds after the deadline before a project is settled: a payment made before the
    /// deadline whose callback is still on its way is counted if it lands within them.
    pub settle_grace_secs: u64,
}

impl Default for Crowdfunding {
    fn default() -> Self {
        Crowdfunding {
            min_duration_secs: 86_400,
            auto_deliver_days: 15,
            settle_interval_secs: 5,
            settle_grace_secs: 60,
        }
    }
}

/// Reports every rule `c` breaks through `bad(key, problem, fix)`.
pub fn validate(c: &Crowdfunding, bad: &mut impl FnMut(&'static str, String, &str)) {
    if !(1..MAX_DURATION_SECS).contains(&c.min_duration_secs) {
        bad(
            "crowdfunding.min_duration_secs",
            format!("{} is outside 1..{MAX_DURATION_SECS} (90 days)", c.min_duration_secs),
            "set e.g. 86400 (one day)",
        );
    }
    if !(1..=365).contains(&c.auto_deliver_days) {
        bad(
            "crowdfunding.auto_deliver_days",
            format!("{} is outside 1..=365", c.auto_deliver_days),
            "set e.g. 15",
        );
    }
    if !(1..=3600).contains(&c.settle_interval_secs) {
        bad(
            "crowdfunding.settle_interval_secs",
            format!("{} is outside 1..=3600", c.settle_interval_secs),
            "set e.g. 5",
        );
    }
    if c.settle_grace_secs > 86_400 {
        bad(
            "crowdfunding.settle_grace_secs",
            format!("{} is over 86400 (a day)", c.settle_grace_secs),
            "set e.g. 60",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_pass_and_each_bound_is_named() {
        let mut problems = Vec::new();
        validate(&Crowdfunding::default(), &mut |key, _, _| problems.push(key));
        assert!(problems.is_empty(), "{problems:?}");
        let wrong = Crowdfunding {
            min_duration_secs: 0,
            auto_deliver_days: 0,
            settle_interval_secs: 0,
            settle_grace_secs: 100_000,
        };
        validate(&wrong, &mut |key, _, _| problems.push(key));
        assert_eq!(
            problems,
            [
                "crowdfunding.min_duration_secs",
                "crowdfunding.auto_deliver_days",
                "crowdfunding.settle_interval_secs",
                "crowdfunding.settle_grace_secs"
            ]
        );
    }
}
