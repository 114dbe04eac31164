//! Alipay's wall-clock times: `yyyy-MM-dd HH:mm:ss` in Beijing time (UTC+08:00), as in the
//! request `timestamp`, `time_expire`, and the answers' and notifications' `gmt_*` and
//! `send_pay_date`. No other time format lives here.
//! https://opendocs.alipay.com/common/02kf5q

use time::format_description::FormatItem;
use time::macros::{format_description, offset};
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// Beijing time, the offset of every Alipay time.
pub const BEIJING: UtcOffset = offset!(+8);

const FORMAT: &[FormatItem<'static>] = format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");

/// Formats `at` as Alipay's `yyyy-MM-dd HH:mm:ss` in Beijing time (sub-seconds are dropped).
pub fn format(at: OffsetDateTime) -> String {
    at.to_offset(BEIJING)
        .format(FORMAT)
        .expect("a date-time has every component this format names")
}

/// Parses `yyyy-MM-dd HH:mm:ss` as Beijing time; `None` if it is anything else.
pub fn parse(text: &str) -> Option<OffsetDateTime> {
    PrimitiveDateTime::parse(text, FORMAT)
        .ok()
        .map(|t| t.assume_offset(BEIJING))
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn formats_any_instant_in_beijing_time() {
        assert_eq!(format(datetime!(2024-05-05 23:08:09.999 UTC)), "2024-05-06 07:08:09");
        assert_eq!(format(datetime!(2024-05-06 07:08:09 +08:00)), "2024-05-06 07:08:09");
    }

    #[test]
    fn parses_beijing_time_and_refuses_other_shapes() {
        assert_eq!(parse("2024-05-06 07:08:09"), Some(datetime!(2024-05-05 23:08:09 UTC)));
        for bad in [
            "",
            "2024-05-06",
            "2024-05-06T07:08:09",
            "2024-05-06 07:08:09+08:00",
            "2024-13-06 07:08:09",
            " 2024-05-06 07:08:09",
            "2024-05-06 07:08:09.587",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}
