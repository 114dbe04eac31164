//! Money is integer fen (`i64`) everywhere; yuan strings exist only at the edges.
//! Parsing is strict: digits, at most one dot, at most two decimals, no sign, no exponent.

use std::fmt::Write;

/// Why a yuan string was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("amount must be a decimal yuan string like \"12.34\"")]
    Malformed,
    #[error("amount has more than two decimals")]
    TooPrecise,
    #[error("amount is too large")]
    Overflow,
}

/// Largest amount accepted by the parser: 10^12 yuan, far above any limit, far below `i64::MAX`.
const MAX_FEN: i64 = 100_000_000_000_000;

/// Parses `"12.34"`, `"12.3"`, `"12"` or `"0.01"` into fen. Leading zeros are allowed
/// (`"012"`); signs, spaces, exponents, a bare dot and a trailing dot are not.
pub fn parse_yuan(text: &str) -> Result<i64, MoneyError> {
    let (int, frac) = match text.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (text, None),
    };
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) {
        return Err(MoneyError::Malformed);
    }
    let mut fen: i64 = 0;
    for b in int.bytes() {
        fen = fen
            .checked_mul(10)
            .and_then(|v| v.checked_add(i64::from(b - b'0')))
            .filter(|v| *v <= MAX_FEN / 100)
            .ok_or(MoneyError::Overflow)?;
    }
    fen *= 100;
    if let Some(frac) = frac {
        if frac.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(MoneyError::Malformed);
        }
        if frac.len() > 2 {
            return Err(MoneyError::TooPrecise);
        }
        let mut digits = frac.bytes().map(|b| i64::from(b - b'0'));
        fen += digits.next().unwrap_or(0) * 10 + digits.next().unwrap_or(0);
    }
    Ok(fen)
}

/// Formats fen as a yuan string with exactly two decimals: `1234` → `"12.34"`.
pub fn format_yuan(fen: i64) -> String {
    let mut out = String::with_capacity(24);
    if fen < 0 {
        out.push('-');
    }
    let abs = fen.unsigned_abs();
    let _ = write!(out, "{}.{:02}", abs / 100, abs % 100);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_whole_and_fractional_yuan() {
        assert_eq!(parse_yuan("12.34"), Ok(1234));
        assert_eq!(parse_yuan("12.3"), Ok(1230));
        assert_eq!(parse_yuan("12"), Ok(1200));
        assert_eq!(parse_yuan("0.01"), Ok(1));
        assert_eq!(parse_yuan("007.50"), Ok(750));
        assert_eq!(parse_yuan("0"), Ok(0));
    }

    #[test]
    fn refuses_everything_that_is_not_a_plain_decimal() {
        for bad in [
            "", ".", "1.", ".5", "-1", "+1", "1e3", " 1", "1 ", "1,00", "1.2.3", "１", "0x10",
        ] {
            assert_eq!(parse_yuan(bad), Err(MoneyError::Malformed), "{bad:?}");
        }
        assert_eq!(parse_yuan("1.234"), Err(MoneyError::TooPrecise));
        assert_eq!(parse_yuan("99999999999999999999"), Err(MoneyError::Overflow));
        assert_eq!(parse_yuan("1000000000001"), Err(MoneyError::Overflow));
    }

    #[test]
    fn formats_with_two_decimals() {
        assert_eq!(format_yuan(1234), "12.34");
        assert_eq!(format_yuan(1), "0.01");
        assert_eq!(format_yuan(0), "0.00");
        assert_eq!(format_yuan(-50), "-0.50");
        assert_eq!(format_yuan(i64::MIN), "-92233720368547758.08");
    }

    #[test]
    fn format_and_parse_round_trip() {
        for fen in [0, 1, 9, 10, 99, 100, 101, 123_456_789, MAX_FEN] {
            assert_eq!(parse_yuan(&format_yuan(fen)), Ok(fen));
        }
    }
}
