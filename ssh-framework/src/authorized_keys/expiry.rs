//! `expiry-time=` values: OpenSSH's `YYYYMMDD[HHMM[SS]]` with an optional `Z`
//! or `UTC`, read as UTC (see `KeyOptions::expiry_time`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The instant `value` names, or `None` when it is not a valid time (OpenSSH
/// also refuses exactly 1970-01-01 00:00:00, its "no expiry").
pub(super) fn parse(value: &str) -> Option<SystemTime> {
    // Compared as bytes: the suffixes are ASCII, so cutting before them
    // stays on a character boundary whatever precedes them.
    let bytes = value.as_bytes();
    let digits = if bytes.len() > 1 && bytes[bytes.len() - 1].eq_ignore_ascii_case(&b'z') {
        &value[..value.len() - 1]
    } else if bytes.len() > 3 && bytes[bytes.len() - 3..].eq_ignore_ascii_case(b"utc") {
        &value[..value.len() - 3]
    } else {
        value
    };
    if !matches!(digits.len(), 8 | 12 | 14) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let field = |at: usize, len: usize| -> i64 { digits.get(at..at + len).map_or(0, |s| s.parse().unwrap_or(0)) };
    let (year, month, day) = (field(0, 4), field(4, 2), field(6, 2));
    let (hour, minute, second) = (field(8, 2), field(10, 2), field(12, 2));
    // strptime's ranges (a leap second is allowed and rolls over).
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let secs = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
    match secs {
        0 => None,
        s if s > 0 => Some(UNIX_EPOCH + Duration::from_secs(s as u64)),
        s => Some(UNIX_EPOCH - Duration::from_secs(s.unsigned_abs())),
    }
}

/// `YYYYMMDDHHMMSSZ` (a time before 1970 is written as 1970-01-01).
pub(super) fn format(at: SystemTime) -> String {
    let secs = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}{m:02}{d:02}{:02}{:02}{:02}Z", rem / 3600, rem / 60 % 60, rem % 60)
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_openssh_forms_and_refuses_the_rest() {
        let at = |s: u64| Some(UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(parse("20000101Z"), at(946_684_800));
        assert_eq!(parse("20000101"), at(946_684_800));
        assert_eq!(parse("200001010000UTC"), at(946_684_800));
        assert_eq!(parse("20240229235959z"), at(1_709_251_199));
        assert_eq!(parse("19700101"), None);
        for bad in ["2024022", "20240230", "20241301", "20240101246000", "2024-01-01", "", "Z", "+0240101", "20240101é"]
        {
            assert_eq!(parse(bad), None, "{bad}");
        }
        assert_eq!(format(UNIX_EPOCH + Duration::from_secs(1_709_251_199)), "20240229235959Z");
    }
}
