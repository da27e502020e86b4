//! Dates as operators type them (CLI flags, CSV import rows, any later console) and as ferry
//! shows them. Records keep epoch seconds; this is the one place that turns text into them.
//!
//! Accepted, surrounding spaces ignored:
//! - `YYYY-MM-DD`: the start of that day, UTC;
//! - an RFC 3339 time, `YYYY-MM-DDTHH:MM:SS` followed by `Z` or an offset such as `+02:00`
//!   (`t`/`z` or a space for `T` are fine, seconds may be left out, fractions of a second are
//!   dropped, a leap second `:60` is read as `:59`);
//! - epoch seconds, a plain integer.
//!
//! Refused, each with an error that says why: impossible calendar dates (`2026-02-31`), a time
//! without an offset (it would silently mean UTC to us and local time to the operator), `24:00`,
//! bracketed time zone names (there is no time zone database here, and a name that disagreed
//! with the offset would be ignored without a word), and anything outside the years 0000 to
//! 9999, so that every accepted value prints back as a four-digit-year RFC 3339 time.

use jiff::SignedDuration;
use jiff::civil::{self, Date, DateTime};
use jiff::fmt::temporal::Pieces;

/// 1970-01-01T00:00:00, the origin of epoch seconds.
const UNIX_EPOCH: DateTime = civil::datetime(1970, 1, 1, 0, 0, 0, 0);
/// 0000-01-01T00:00:00Z, the earliest accepted instant.
const EARLIEST: i64 = -62_167_219_200;
/// 9999-12-31T23:59:59Z, the latest accepted instant.
const LATEST: i64 = 253_402_300_799;
/// What to type, for the errors that cannot name a single wrong part.
const FORMS: &str = "use YYYY-MM-DD, an RFC 3339 time with Z or an offset \
                     (2031-03-01T10:00:00Z, 2031-03-01T10:00:00+02:00) or epoch seconds";

/// Why some text is not a date.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DateError {
    #[error("no date given: {FORMS}")]
    Empty,
    #[error("{text:?} is not a date: {FORMS}")]
    Unrecognised { text: String },
    #[error("{text:?}: the year must have four digits (0000 to 9999)")]
    Year { text: String },
    #[error("{text:?}: there is no month {month} (months run from 01 to 12)")]
    Month { text: String, month: i8 },
    #[error(
        "{text:?}: there is no day {day} in {} {year}, which has {days} days{}",
        month_name(*.month),
        if *.month == 2 && *.days == 28 { " (not a leap year)" } else { "" }
    )]
    Day {
        text: String,
        year: i16,
        month: i8,
        day: i8,
        days: i8,
    },
    #[error("{text:?}: hour 24 is not accepted; write 00:00 of the next day")]
    Hour24 { text: String },
    #[error("{text:?} is not a valid time: {reason}")]
    Time { text: String, reason: String },
    #[error("{text:?} has no UTC offset: end it with Z for UTC or an offset such as +02:00")]
    NoOffset { text: String },
    #[error("{text:?}: time zone names are not read; give the UTC offset alone (Z, +02:00)")]
    TimeZoneName { text: String },
    #[error("{text:?}: a UTC offset must be less than 24 hours")]
    Offset { text: String },
    #[error("{text:?} is outside the years 0000 to 9999 (UTC)")]
    OutOfRange { text: String },
}

/// Epoch seconds of a date or time an operator typed (the forms are in the module docs).
pub fn parse_date(text: &str) -> Result<i64, DateError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(DateError::Empty);
    }
    let out_of_range = || DateError::OutOfRange {
        text: text.to_owned(),
    };
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        // Only digits: epoch seconds. Parsing fails only on overflow here.
        let secs = text.parse::<i64>().map_err(|_| out_of_range())?;
        return in_range(secs).ok_or_else(out_of_range);
    }
    let date = calendar_date(text)?;
    if text.len() == 10 {
        let midnight = date.to_datetime(civil::Time::midnight());
        return in_range(seconds_since_epoch(midnight)).ok_or_else(out_of_range);
    }
    // Checked before jiff, whose message for it ("not in the required range of 0..=23") gives no
    // hint that the form, common in ISO 8601, is what is refused.
    if text.get(11..13) == Some("24") {
        return Err(DateError::Hour24 {
            text: text.to_owned(),
        });
    }
    let pieces = Pieces::parse(text).map_err(|e| DateError::Time {
        text: text.to_owned(),
        reason: e.to_string(),
    })?;
    if pieces.time_zone_annotation().is_some() {
        return Err(DateError::TimeZoneName {
            text: text.to_owned(),
        });
    }
    let Some(offset) = pieces.to_numeric_offset() else {
        return Err(DateError::NoOffset {
            text: text.to_owned(),
        });
    };
    // jiff reads offsets up to ±25:59:59 (Temporal's limit); RFC 3339's hour field stops at 23.
    if offset.seconds().unsigned_abs() >= 24 * 3600 {
        return Err(DateError::Offset {
            text: text.to_owned(),
        });
    }
    let local = pieces.date().to_datetime(pieces.time().unwrap_or_default());
    let utc = seconds_since_epoch(local) - i64::from(offset.seconds());
    in_range(utc).ok_or_else(out_of_range)
}

/// Epoch seconds as an RFC 3339 UTC time (`2031-03-01T08:00:00Z`). A stored value outside the
/// years 0000 to 9999, which [`parse_date`] never produces, is shown as the plain number.
pub fn format_date(epoch: i64) -> String {
    in_range(epoch)
        .and_then(|secs| UNIX_EPOCH.checked_add(SignedDuration::from_secs(secs)).ok())
        .map_or_else(|| epoch.to_string(), |utc| format!("{utc}Z"))
}

/// The `YYYY-MM-DD` at the start of `text`, which must end there or go on with the time after a
/// `T`, `t` or space. Checked here rather than by jiff so that each wrong part gets its own
/// message, and so that only the four-digit years of RFC 3339 get in (Temporal also reads
/// `+002026-11-24` and `20261124`).
fn calendar_date(text: &str) -> Result<Date, DateError> {
    let b = text.as_bytes();
    let shaped = b.len() >= 10
        && [0, 1, 2, 3, 5, 6, 8, 9]
            .iter()
            .all(|&i| b[i].is_ascii_digit())
        && b[4] == b'-'
        && b[7] == b'-'
        && matches!(b.get(10), None | Some(b'T' | b't' | b' '));
    if !shaped {
        let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
        let year_digits = unsigned.bytes().take_while(u8::is_ascii_digit).count();
        let looks_dated = unsigned.as_bytes().get(year_digits) == Some(&b'-');
        return Err(
            if looks_dated && (year_digits > 4 || unsigned.len() < text.len()) {
                DateError::Year {
                    text: text.to_owned(),
                }
            } else {
                DateError::Unrecognised {
                    text: text.to_owned(),
                }
            },
        );
    }
    let number = |range: std::ops::Range<usize>| {
        b[range]
            .iter()
            .fold(0_i16, |n, d| n * 10 + i16::from(d - b'0'))
    };
    // Four digits fit an i16 and two an i8, so these conversions cannot fail.
    let year = number(0..4);
    let (month, day) = (number(5..7) as i8, number(8..10) as i8);
    if !(1..=12).contains(&month) {
        return Err(DateError::Month {
            text: text.to_owned(),
            month,
        });
    }
    let days = Date::new(year, month, 1).map_or(31, |first| first.days_in_month());
    if !(1..=days).contains(&day) {
        return Err(DateError::Day {
            text: text.to_owned(),
            year,
            month,
            day,
            days,
        });
    }
    Date::new(year, month, day).map_err(|e| DateError::Time {
        text: text.to_owned(),
        reason: e.to_string(),
    })
}

/// Whole seconds from the epoch to a UTC date-time, rounded down: the second an instant falls
/// in, also before 1970 (where truncation would round up).
fn seconds_since_epoch(utc: DateTime) -> i64 {
    let since = utc.duration_since(UNIX_EPOCH);
    since.as_secs() - i64::from(since.subsec_nanos() < 0)
}

fn in_range(secs: i64) -> Option<i64> {
    (EARLIEST..=LATEST).contains(&secs).then_some(secs)
}

fn month_name(month: i8) -> &'static str {
    const NAMES: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    usize::try_from(month - 1)
        .ok()
        .and_then(|i| NAMES.get(i))
        .copied()
        .unwrap_or("month")
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOV_24_2026: i64 = 1_795_478_400;

    #[test]
    fn every_accepted_form_gives_its_exact_epoch_seconds() {
        let cases: &[(&str, i64)] = &[
            ("1970-01-01", 0),
            ("2026-11-24", NOV_24_2026),
            ("  2026-11-24\n", NOV_24_2026),
            ("2024-02-29", 1_709_164_800),
            ("2024-12-31T23:59:59Z", 1_735_689_599),
            ("2026-11-24T01:02:03Z", NOV_24_2026 + 3723),
            ("2026-11-24t01:02:03z", NOV_24_2026 + 3723),
            ("2026-11-24 01:02:03Z", NOV_24_2026 + 3723),
            ("2026-11-24T01:02Z", NOV_24_2026 + 3720),
            ("2026-11-24T01:02:03.999Z", NOV_24_2026 + 3723),
            ("2026-11-24T01:02:03,5Z", NOV_24_2026 + 3723),
            ("2031-03-01T10:00:00+02:00", 1_930_118_400),
            ("2031-03-01T08:00:00Z", 1_930_118_400),
            ("2026-11-24T01:00:00-05:00", NOV_24_2026 + 6 * 3600),
            ("2026-11-24T00:30:00+01:00", NOV_24_2026 - 1800),
            ("2026-11-24T10:00:00-00:00", NOV_24_2026 + 10 * 3600),
            (
                "2026-11-24T10:00:00+05:30",
                NOV_24_2026 + 10 * 3600 - 19_800,
            ),
            ("2026-11-24T23:59:60Z", NOV_24_2026 + 86_399),
            ("1795478400", NOV_24_2026),
            ("0", 0),
            ("-86400", -86_400),
            ("1969-12-31T23:59:59.5Z", -1),
            ("0000-01-01", EARLIEST),
            ("9999-12-31", 253_402_214_400),
            ("9999-12-31T23:59:59Z", LATEST),
            ("253402300799", LATEST),
        ];
        for &(text, epoch) in cases {
            assert_eq!(parse_date(text), Ok(epoch), "{text:?}");
        }
    }

    #[test]
    fn an_offset_names_the_same_instant_as_its_utc_time() {
        assert_eq!(
            parse_date("2031-03-01T10:00:00+02:00"),
            parse_date("2031-03-01T08:00:00Z")
        );
    }

    #[test]
    fn impossible_calendar_dates_are_refused_naming_the_wrong_part() {
        let cases: &[(&str, &str)] = &[
            (
                "2026-02-31",
                "there is no day 31 in February 2026, which has 28 days (not a leap year)",
            ),
            (
                "2025-02-29",
                "there is no day 29 in February 2025, which has 28 days (not a leap year)",
            ),
            (
                "2026-04-31",
                "there is no day 31 in April 2026, which has 30 days",
            ),
            ("2026-04-00", "there is no day 0 in April 2026"),
            ("2026-13-01", "there is no month 13"),
            ("2026-00-10", "there is no month 0"),
            (
                "2026-02-31T10:00:00Z",
                "there is no day 31 in February 2026",
            ),
        ];
        for &(text, message) in cases {
            let err = parse_date(text).expect_err(text).to_string();
            assert!(err.contains(message), "{text:?}: {err}");
            assert!(err.contains(text), "{text:?}: {err}");
        }
    }

    #[test]
    fn every_refused_input_gets_the_error_for_its_problem() {
        let unrecognised = |t: &str| DateError::Unrecognised { text: t.into() };
        let time = |t: &str| matches!(parse_date(t), Err(DateError::Time { .. }));
        assert_eq!(parse_date(""), Err(DateError::Empty));
        assert_eq!(parse_date("   "), Err(DateError::Empty));
        for text in [
            "tomorrow",
            "2026-11",
            "2026-1-5",
            "2026/11/24",
            "24-11-2026",
            "2026-11-24Z",
            "20261124T100000Z",
            "2026-11-24x",
            "２０２６-11-24",
            "2026-11-2é",
            "-",
            "+",
            "1e9",
        ] {
            assert_eq!(parse_date(text), Err(unrecognised(text)), "{text:?}");
        }
        for text in ["99999-01-01", "+002026-11-24", "-0001-01-01"] {
            let want = DateError::Year { text: text.into() };
            assert_eq!(parse_date(text), Err(want), "{text:?}");
        }
        for text in [
            "2026-11-24T25:00:00Z",
            "2026-11-24T10:61:00Z",
            "2026-11-24T",
            "2026-11-24T10:00:00Zjunk",
            "2026-11-24T10:00:00.Z",
            "2026-11-24Té",
        ] {
            assert!(time(text), "{text:?}: {:?}", parse_date(text));
        }
        let cases = [
            (
                "2026-11-24T24:00:00Z",
                DateError::Hour24 { text: "".into() },
            ),
            ("2026-11-24T24:00Z", DateError::Hour24 { text: "".into() }),
            (
                "2026-11-24T10:00:00",
                DateError::NoOffset { text: "".into() },
            ),
            ("2026-11-24 10:00", DateError::NoOffset { text: "".into() }),
            (
                "2026-11-24T10:00:00+02:00[Europe/Paris]",
                DateError::TimeZoneName { text: "".into() },
            ),
            (
                "2026-11-24T10:00:00Z[UTC]",
                DateError::TimeZoneName { text: "".into() },
            ),
            (
                "2026-11-24T10:00:00+24:00",
                DateError::Offset { text: "".into() },
            ),
            (
                "2026-11-24T10:00:00-25:59",
                DateError::Offset { text: "".into() },
            ),
        ];
        for (text, want) in cases {
            let got = parse_date(text);
            assert_eq!(
                std::mem::discriminant(&got.clone().expect_err(text)),
                std::mem::discriminant(&want),
                "{text:?}: {got:?}"
            );
        }
    }

    #[test]
    fn instants_outside_the_years_0000_to_9999_are_refused_without_panicking() {
        for text in [
            "9999-12-31T23:59:59-00:01",
            "0000-01-01T00:00:00+00:01",
            "253402300800",
            "-62167219201",
            "99999999999999999999999",
            "-99999999999999999999999",
            &i64::MAX.to_string(),
            &i64::MIN.to_string(),
        ] {
            assert_eq!(
                parse_date(text),
                Err(DateError::OutOfRange { text: text.into() }),
                "{text:?}"
            );
        }
    }

    #[test]
    fn messages_say_what_to_do() {
        let message = |t: &str| parse_date(t).expect_err(t).to_string();
        assert!(message("tomorrow").contains("YYYY-MM-DD"));
        assert!(message("2026-11-24T10:00:00").contains("end it with Z for UTC"));
        assert!(message("2026-11-24T24:00:00Z").contains("00:00 of the next day"));
        assert!(message("99999-01-01").contains("four digits"));
        assert!(message("2026-11-24T25:00:00Z").contains("hour"));
    }

    #[test]
    fn the_range_bounds_are_the_first_and_last_second_of_years_0000_and_9999() {
        let at = |y, m, d, h, min, s| seconds_since_epoch(civil::datetime(y, m, d, h, min, s, 0));
        assert_eq!(at(0, 1, 1, 0, 0, 0), EARLIEST);
        assert_eq!(at(9999, 12, 31, 23, 59, 59), LATEST);
    }

    #[test]
    fn epochs_are_shown_as_rfc_3339_utc() {
        assert_eq!(format_date(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_date(-1), "1969-12-31T23:59:59Z");
        assert_eq!(format_date(1_930_118_400), "2031-03-01T08:00:00Z");
        assert_eq!(format_date(1_709_164_800), "2024-02-29T00:00:00Z");
        assert_eq!(format_date(EARLIEST), "0000-01-01T00:00:00Z");
        assert_eq!(format_date(LATEST), "9999-12-31T23:59:59Z");
    }

    #[test]
    fn an_epoch_beyond_the_calendar_is_shown_as_the_plain_number() {
        assert_eq!(format_date(i64::MAX), i64::MAX.to_string());
        assert_eq!(format_date(i64::MIN), i64::MIN.to_string());
        assert_eq!(format_date(LATEST + 1), (LATEST + 1).to_string());
    }

    #[test]
    fn what_is_shown_parses_back_to_the_same_second() {
        for epoch in [EARLIEST, -1, 0, 1, NOV_24_2026, 1_930_118_400, LATEST] {
            assert_eq!(parse_date(&format_date(epoch)), Ok(epoch), "{epoch}");
        }
    }
}
