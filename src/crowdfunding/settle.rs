//! The settlement rule as a pure function (contract: "Crowdfunding", money rules): below the
//! first goal a project fails and every backing gets back what it has left; otherwise the
//! highest goal reached is settled and, with `surplus: refund`, `raised − settled` goes back
//! pro rata to what each backing has left, in whole fen by the largest-remainder method —
//! summing exactly to the surplus and never more than a backing has left. The job in
//! `settlement` feeds it the rows and writes what it returns.

/// What happens to money above the highest goal reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surplus {
    /// Refunded pro rata (the default).
    Refund,
    /// Kept by the project.
    Keep,
}

impl Surplus {
    pub fn parse(text: &str) -> Option<Surplus> {
        match text {
            "refund" => Some(Surplus::Refund),
            "keep" => Some(Surplus::Keep),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Surplus::Refund => "refund",
            Surplus::Keep => "keep",
        }
    }
}

/// How a project ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Below the first goal: every backing is refunded what it has left.
    Failed,
    /// `goal` (an index) is the highest reached; `settled_fen` its amount.
    Succeeded { goal: usize, settled_fen: i64 },
}

/// A settlement: the outcome, what it was decided on, and the refund of each backing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub outcome: Outcome,
    /// The money the decision counted: the sum of what the backings have left.
    pub basis_fen: i64,
    /// Fen to refund to each backing, in the order given (0 = nothing).
    pub refunds: Vec<i64>,
}

impl Plan {
    /// Fen the project keeps once every refund went through.
    pub fn kept_fen(&self) -> i64 {
        self.basis_fen - self.refunds.iter().sum::<i64>()
    }
}

/// Settles `goals` (fen, strictly rising) against backings that have `lefts` fen each (what
/// they paid less what was refunded or is being refunded), given in the order that breaks
/// ties between equal remainders (earliest payment first).
pub fn plan(goals: &[i64], lefts: &[i64], surplus: Surplus) -> Plan {
    let basis_fen: i64 = lefts.iter().map(|l| (*l).max(0)).sum();
    let reached = goals.iter().rposition(|goal| *goal <= basis_fen);
    match reached {
        None => Plan {
            outcome: Outcome::Failed,
            basis_fen,
            refunds: lefts.iter().map(|l| (*l).max(0)).collect(),
        },
        Some(goal) => {
            let settled_fen = goals[goal];
            let refunds = match surplus {
                Surplus::Keep => vec![0; lefts.len()],
                Surplus::Refund => pro_rata(basis_fen - settled_fen, lefts, basis_fen),
            };
            Plan {
                outcome: Outcome::Succeeded { goal, settled_fen },
                basis_fen,
                refunds,
            }
        }
    }
}

/// `amount` split over `weights` (summing to `total` ≥ `amount`) in proportion, whole units
/// by largest remainder: each gets the floor of its exact share, and the units left over go
/// one each to the largest remainders (ties: earlier first).
pub fn pro_rata(amount: i64, weights: &[i64], total: i64) -> Vec<i64> {
    if amount <= 0 || total <= 0 {
        return vec![0; weights.len()];
    }
    let (amount, total) = (i128::from(amount), i128::from(total));
    let mut shares = Vec::with_capacity(weights.len());
    let mut remainders = Vec::with_capacity(weights.len());
    for (i, weight) in weights.iter().enumerate() {
        let exact = amount * i128::from((*weight).max(0));
        shares.push((exact / total) as i64);
        remainders.push((exact % total, i));
    }
    let given: i64 = shares.iter().sum();
    let mut left_over = amount as i64 - given;
    // Largest remainder first; equal ones in the given order.
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (remainder, i) in remainders {
        if left_over == 0 || remainder == 0 {
            break;
        }
        shares[i] += 1;
        left_over -= 1;
    }
    shares
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn below_the_first_goal_everything_goes_back() {
        let p = plan(&[10_000, 20_000], &[3_000, 4_000], Surplus::Refund);
        assert_eq!(p.outcome, Outcome::Failed);
        assert_eq!(p.refunds, [3_000, 4_000]);
        assert_eq!(p.kept_fen(), 0);
    }

    #[test]
    fn the_highest_goal_reached_is_kept_and_the_surplus_split_by_largest_remainder() {
        // 100 fen of surplus over three equal backings: 33.33 each, the first gets the extra.
        let p = plan(&[100, 200], &[100, 100, 100], Surplus::Refund);
        assert_eq!(
            p.outcome,
            Outcome::Succeeded {
                goal: 1,
                settled_fen: 200
            }
        );
        assert_eq!(p.refunds, [34, 33, 33]);
        assert_eq!(p.kept_fen(), 200);
        // Shares 1/6, 2/6, 3/6 of 5 fen: 0.83, 1.67, 2.5 → floors 0, 1, 2; two left go to
        // 0.83 and 0.67.
        assert_eq!(pro_rata(5, &[1, 2, 3], 6), [1, 2, 2]);
        let keep = plan(&[100, 200], &[100, 100, 100], Surplus::Keep);
        assert_eq!(keep.refunds, [0, 0, 0]);
        assert_eq!(keep.kept_fen(), 300);
    }

    #[test]
    fn exactly_at_a_goal_nothing_is_refunded() {
        let p = plan(&[500, 1_000], &[400, 600], Surplus::Refund);
        assert_eq!(p.refunds, [0, 0]);
        assert_eq!(
            p.outcome,
            Outcome::Succeeded {
                goal: 1,
                settled_fen: 1_000
            }
        );
    }

    #[test]
    fn huge_amounts_do_not_overflow() {
        let lefts = [i64::MAX / 4, i64::MAX / 4, 7];
        let p = plan(&[1], &lefts, Surplus::Refund);
        assert_eq!(p.refunds.iter().sum::<i64>(), p.basis_fen - 1);
    }

    /// Goals strictly rising, backings as `(paid, refunded by an admin before the deadline)`,
    /// and the surplus policy.
    fn backed() -> impl Strategy<Value = (Vec<i64>, Vec<(i64, i64)>, bool)> {
        let goals = prop::collection::vec(1i64..100_000, 1..=5).prop_map(|mut steps| {
            let mut total = 0;
            for step in &mut steps {
                total += *step;
                *step = total;
            }
            steps
        });
        let backing = (1i64..60_000).prop_flat_map(|paid| {
            let refunded = prop_oneof![3 => Just(0i64), 1 => 0..=paid];
            (Just(paid), refunded)
        });
        (goals, prop::collection::vec(backing, 0..60), any::<bool>())
    }

    /// Goals strictly rising (1..=5 of them) and backings with what they have left.
    fn case() -> impl Strategy<Value = (Vec<i64>, Vec<i64>, bool)> {
        let goals = prop::collection::vec(1i64..200_000, 1..=5).prop_map(|mut steps| {
            let mut total = 0;
            for step in &mut steps {
                total += *step;
                *step = total;
            }
            steps
        });
        let lefts = prop::collection::vec(prop_oneof![Just(0i64), 1i64..100, 1i64..5_000_000], 0..80);
        (goals, lefts, any::<bool>())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        #[test]
        fn refunds_sum_exactly_to_what_the_rules_say_and_never_exceed_what_is_left(
            (goals, lefts, refund) in case()
        ) {
            let surplus = if refund { Surplus::Refund } else { Surplus::Keep };
            let p = plan(&goals, &lefts, surplus);
            let basis: i64 = lefts.iter().sum();
            prop_assert_eq!(p.basis_fen, basis);
            prop_assert_eq!(p.refunds.len(), lefts.len());
            for (refund, left) in p.refunds.iter().zip(&lefts) {
                prop_assert!(*refund >= 0 && refund <= left, "refund {} of {}", refund, left);
            }
            let refunded: i64 = p.refunds.iter().sum();
            match p.outcome {
                Outcome::Failed => {
                    prop_assert!(basis < goals[0]);
                    prop_assert_eq!(refunded, basis);
                    prop_assert_eq!(p.kept_fen(), 0);
                }
                Outcome::Succeeded { goal, settled_fen } => {
                    prop_assert_eq!(settled_fen, goals[goal]);
                    prop_assert!(settled_fen <= basis);
                    prop_assert!(goals.get(goal + 1).is_none_or(|next| *next > basis));
                    if refund {
                        prop_assert_eq!(refunded, basis - settled_fen);
                        prop_assert_eq!(p.kept_fen(), settled_fen);
                    } else {
                        prop_assert_eq!(refunded, 0);
                    }
                }
            }
        }

        #[test]
        fn paid_backings_some_refunded_before_the_deadline_settle_to_the_rules(
            (goals, backings, refund) in backed()
        ) {
            let surplus = if refund { Surplus::Refund } else { Surplus::Keep };
            // `raised` before the settlement: paid less the admins' refunds, as the job reads it.
            let lefts: Vec<i64> = backings.iter().map(|(paid, refunded)| paid - refunded).collect();
            let raised: i64 = lefts.iter().sum();
            let p = plan(&goals, &lefts, surplus);
            for ((paid, refunded), settlement) in backings.iter().zip(&p.refunds) {
                prop_assert!(refunded + settlement <= *paid, "refunded {} + {} of {}", refunded, settlement, paid);
            }
            let raised_after = raised - p.refunds.iter().sum::<i64>();
            match p.outcome {
                Outcome::Failed => {
                    prop_assert!(raised < goals[0]);
                    prop_assert_eq!(raised_after, 0);
                }
                Outcome::Succeeded { goal, settled_fen } => {
                    let highest = goals.iter().rposition(|g| *g <= raised);
                    prop_assert_eq!(Some(goal), highest);
                    let expected = if refund { settled_fen } else { raised };
                    prop_assert_eq!(raised_after, expected);
                }
            }
        }

        #[test]
        fn each_share_is_within_one_fen_of_its_exact_pro_rata_part(
            weights in prop::collection::vec(0i64..1_000_000, 1..60),
            cut in 0u32..=1_000,
        ) {
            let total: i64 = weights.iter().sum();
            prop_assume!(total > 0);
            let amount = total * i64::from(cut) / 1_000;
            let shares = pro_rata(amount, &weights, total);
            prop_assert_eq!(shares.iter().sum::<i64>(), amount);
            for (share, weight) in shares.iter().zip(&weights) {
                let exact = amount as f64 * *weight as f64 / total as f64;
                prop_assert!((*share as f64 - exact).abs() < 1.0 + 1e-6, "{} vs {}", share, exact);
                prop_assert!(share <= weight);
            }
        }
    }
}
