//! The order's money, as pure functions: `total` = Σ price × quantity, the coupon's
//! `discount`, `payable = total − discount`. A `percent_off` discount is rounded down to the
//! fen; a coupon applies from its threshold; payable never drops below 0.01 (an `amount_off`
//! larger than the total leaves 0.01 to pay). All in integer fen.

/// Largest total of one order: ¥1 000 000.00 (within both providers' limits).
pub const MAX_ORDER_FEN: i64 = 100_000_000;

/// What a coupon takes off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Off {
    /// This many fen.
    Amount(i64),
    /// This percentage (1..=99) of the total, rounded down to the fen.
    Percent(i64),
}

/// A coupon's terms as pricing needs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Terms {
    pub off: Off,
    /// The total (fen) from which the coupon applies; 0 = any.
    pub threshold_fen: i64,
}

/// Why the money of an order cannot be computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PriceError {
    /// The total is below the coupon's threshold.
    BelowThreshold { threshold_fen: i64 },
    /// The total is above [`MAX_ORDER_FEN`] (or overflows).
    TooLarge,
    /// No lines, a quantity below 1 or a price below 1 fen.
    Empty,
}

/// An order's money.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub total_fen: i64,
    pub discount_fen: i64,
    pub payable_fen: i64,
}

/// The sum of `price_fen × quantity` over `lines`.
pub fn total(lines: &[(i64, i64)]) -> Result<i64, PriceError> {
    if lines.is_empty() {
        return Err(PriceError::Empty);
    }
    let mut sum: i64 = 0;
    for &(price_fen, quantity) in lines {
        if price_fen < 1 || quantity < 1 {
            return Err(PriceError::Empty);
        }
        sum = price_fen
            .checked_mul(quantity)
            .and_then(|line| sum.checked_add(line))
            .filter(|s| *s <= MAX_ORDER_FEN)
            .ok_or(PriceError::TooLarge)?;
    }
    Ok(sum)
}

/// What `terms` take off `total_fen`: refused below the threshold, never leaving less than
/// 1 fen to pay.
pub fn discount(terms: &Terms, total_fen: i64) -> Result<i64, PriceError> {
    if total_fen < terms.threshold_fen {
        return Err(PriceError::BelowThreshold {
            threshold_fen: terms.threshold_fen,
        });
    }
    let off = match terms.off {
        Off::Amount(fen) => fen.max(0),
        // ≤ MAX_ORDER_FEN × 99: no overflow; integer division rounds down.
        Off::Percent(percent) => total_fen * percent.clamp(0, 99) / 100,
    };
    Ok(off.min(total_fen - 1).max(0))
}

/// The money of an order of `lines` with an optional coupon.
pub fn totals(lines: &[(i64, i64)], coupon: Option<&Terms>) -> Result<Totals, PriceError> {
    let total_fen = total(lines)?;
    let discount_fen = match coupon {
        Some(terms) => discount(terms, total_fen)?,
        None => 0,
    };
    Ok(Totals {
        total_fen,
        discount_fen,
        payable_fen: total_fen - discount_fen,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn percent(p: i64, threshold_fen: i64) -> Terms {
        Terms {
            off: Off::Percent(p),
            threshold_fen,
        }
    }

    fn amount(fen: i64, threshold_fen: i64) -> Terms {
        Terms {
            off: Off::Amount(fen),
            threshold_fen,
        }
    }

    #[test]
    fn percent_off_rounds_the_discount_down_to_the_fen() {
        // (percent, total) → discount
        let table: &[(i64, i64, i64)] = &[
            (10, 1000, 100),
            (15, 999, 149), // 149.85 → 149
            (33, 100, 33),  // 33.00
            (33, 101, 33),  // 33.33 → 33
            (50, 3, 1),     // 1.5 → 1
            (1, 99, 0),     // 0.99 → 0: nothing off
            (99, 1, 0),     // 0.99 → 0, and payable stays 1
            (99, 2, 1),     // 1.98 → 1
            (99, 10_000, 9_900),
            (20, MAX_ORDER_FEN, MAX_ORDER_FEN / 5),
        ];
        for &(p, total_fen, want) in table {
            let got = discount(&percent(p, 0), total_fen).unwrap();
            assert_eq!(got, want, "{p}% of {total_fen}");
            assert!(total_fen - got >= 1, "{p}% of {total_fen}: payable below 0.01");
        }
    }

    #[test]
    fn a_coupon_applies_from_its_threshold_inclusive() {
        // (terms, total) → Ok(discount) or the threshold refused
        let table: &[(Terms, i64, Result<i64, PriceError>)] = &[
            (
                amount(500, 5000),
                4999,
                Err(PriceError::BelowThreshold { threshold_fen: 5000 }),
            ),
            (amount(500, 5000), 5000, Ok(500)),
            (amount(500, 5000), 5001, Ok(500)),
            (
                percent(10, 10000),
                9999,
                Err(PriceError::BelowThreshold { threshold_fen: 10000 }),
            ),
            (percent(10, 10000), 10000, Ok(1000)),
            (amount(100, 0), 1, Ok(0)),
        ];
        for (terms, total_fen, want) in table {
            assert_eq!(discount(terms, *total_fen), *want, "{terms:?} on {total_fen}");
        }
    }

    #[test]
    fn payable_is_never_below_one_fen() {
        // (amount off, total) → payable
        let table: &[(i64, i64, i64)] = &[
            (500, 500, 1),
            (500, 499, 1),
            (500, 501, 1),
            (500, 502, 2),
            (10_000_000, 1, 1),
            (1, 2, 1),
            (1, 1, 1),
        ];
        for &(off, total_fen, payable) in table {
            let t = totals(&[(total_fen, 1)], Some(&amount(off, 0))).unwrap();
            assert_eq!(t.payable_fen, payable, "{off} off {total_fen}");
            assert_eq!(t.total_fen - t.discount_fen, t.payable_fen);
        }
    }

    #[test]
    fn totals_sum_the_lines_and_refuse_empty_or_huge_orders() {
        let t = totals(&[(1999, 2), (501, 3)], None).unwrap();
        assert_eq!(
            t,
            Totals {
                total_fen: 5501,
                discount_fen: 0,
                payable_fen: 5501
            }
        );
        let t = totals(&[(1999, 2), (501, 3)], Some(&percent(15, 5000))).unwrap();
        assert_eq!((t.discount_fen, t.payable_fen), (825, 4676)); // 825.15 → 825
        assert_eq!(totals(&[], None), Err(PriceError::Empty));
        assert_eq!(totals(&[(100, 0)], None), Err(PriceError::Empty));
        assert_eq!(totals(&[(0, 1)], None), Err(PriceError::Empty));
        assert_eq!(totals(&[(MAX_ORDER_FEN, 1)], None).unwrap().total_fen, MAX_ORDER_FEN);
        assert_eq!(totals(&[(MAX_ORDER_FEN, 1), (1, 1)], None), Err(PriceError::TooLarge));
        assert_eq!(totals(&[(i64::MAX, 2)], None), Err(PriceError::TooLarge));
    }
}
