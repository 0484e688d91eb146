//! Points in time, as the domain sees them.
//!
//! A [`Timestamp`] is milliseconds since the Unix epoch, in UTC. It prints and parses as
//! RFC 3339 (`2026-11-26T13:57:50.123Z`), which is the form the API speaks. The calendar
//! arithmetic is Howard Hinnant's `days_from_civil` / `civil_from_days`, so the domain
//! needs no date crate and never reads a clock: callers pass `now` in.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

const MILLIS_PER_DAY: i64 = 86_400_000;

/// Milliseconds since 1970-01-01T00:00:00Z.
///
/// It is (de)serialized as its RFC 3339 text, written from a stack buffer and parsed from
/// the borrowed input: a run's view carries several, and the allocation and `fmt`
/// machinery of going through a `String` each way showed in `GET /runs/{id}`'s profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

/// A calendar day in UTC, used for daily quotas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UtcDate {
    /// The year, e.g. 2026.
    pub year: i32,
    /// The month, 1..=12.
    pub month: u32,
    /// The day of the month, 1..=31.
    pub day: u32,
}

impl Timestamp {
    /// The timestamp `millis` milliseconds after the epoch.
    pub const fn from_unix_millis(millis: i64) -> Self {
        Timestamp(millis)
    }

    /// Milliseconds since the epoch.
    pub const fn unix_millis(self) -> i64 {
        self.0
    }

    /// This timestamp moved by `millis` (negative moves back); saturates at the extremes.
    pub const fn plus_millis(self, millis: i64) -> Self {
        Timestamp(self.0.saturating_add(millis))
    }

    /// This timestamp moved forward by whole seconds.
    pub const fn plus_seconds(self, seconds: u64) -> Self {
        let millis = if seconds > (i64::MAX / 1000) as u64 {
            i64::MAX
        } else {
            seconds as i64 * 1000
        };
        self.plus_millis(millis)
    }

    /// Milliseconds from `earlier` to `self` (negative when `earlier` is later).
    pub const fn millis_since(self, earlier: Timestamp) -> i64 {
        self.0.saturating_sub(earlier.0)
    }

    /// The UTC calendar day this timestamp falls on.
    pub fn utc_date(self) -> UtcDate {
        civil_from_days(self.0.div_euclid(MILLIS_PER_DAY))
    }

    /// Midnight UTC at the start of the next calendar day.
    pub fn start_of_next_utc_day(self) -> Timestamp {
        Timestamp((self.0.div_euclid(MILLIS_PER_DAY) + 1) * MILLIS_PER_DAY)
    }
}

impl fmt::Display for UtcDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl Timestamp {
    /// The RFC 3339 text of a timestamp in the years 0 to 9999 (every one the system
    /// stores), written digit by digit; `None` for the years outside, which
    /// [`fmt::Display`] writes the long way.
    fn rfc3339(self) -> Option<[u8; 24]> {
        let date = self.utc_date();
        let year = u32::try_from(date.year).ok().filter(|year| *year <= 9999)?;
        let in_day = self.0.rem_euclid(MILLIS_PER_DAY) as u32;
        let mut text = *b"0000-00-00T00:00:00.000Z";
        let mut put = |at: usize, width: usize, mut value: u32| {
            for digit in text[at..at + width].iter_mut().rev() {
                *digit = b'0' + (value % 10) as u8;
                value /= 10;
            }
        };
        put(0, 4, year);
        put(5, 2, date.month);
        put(8, 2, date.day);
        put(11, 2, in_day / 3_600_000);
        put(14, 2, in_day / 60_000 % 60);
        put(17, 2, in_day / 1000 % 60);
        put(20, 3, in_day % 1000);
        Some(text)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(text) = self.rfc3339() {
            // Only ASCII digits and separators were written.
            return f.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?);
        }
        let date = self.utc_date();
        let in_day = self.0.rem_euclid(MILLIS_PER_DAY);
        let (hours, rest) = (in_day / 3_600_000, in_day % 3_600_000);
        let (minutes, rest) = (rest / 60_000, rest % 60_000);
        let (seconds, millis) = (rest / 1000, rest % 1000);
        write!(
            f,
            "{date}T{hours:02}:{minutes:02}:{seconds:02}.{millis:03}Z"
        )
    }
}

/// Why a string is not an RFC 3339 UTC timestamp.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected an RFC 3339 UTC timestamp like 2026-11-26T13:57:50.123Z, found {0:?}")]
pub struct TimestampError(String);

impl FromStr for Timestamp {
    type Err = TimestampError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        parse_rfc3339(text).ok_or_else(|| TimestampError(text.to_owned()))
    }
}

impl TryFrom<String> for Timestamp {
    type Error = TimestampError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.rfc3339() {
            Some(text) => match std::str::from_utf8(&text) {
                Ok(text) => serializer.serialize_str(text),
                Err(_) => serializer.collect_str(self),
            },
            None => serializer.collect_str(self),
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Rfc3339;
        impl serde::de::Visitor<'_> for Rfc3339 {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an RFC 3339 UTC timestamp")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Timestamp, E> {
                text.parse().map_err(E::custom)
            }
            // As the `String` it was read through before took UTF-8 bytes too.
            fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<Timestamp, E> {
                let text = std::str::from_utf8(bytes).map_err(E::custom)?;
                self.visit_str(text)
            }
        }
        deserializer.deserialize_str(Rfc3339)
    }
}

impl From<Timestamp> for String {
    fn from(ts: Timestamp) -> String {
        ts.to_string()
    }
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fff…](Z|±HH:MM)`.
fn parse_rfc3339(text: &str) -> Option<Timestamp> {
    let bytes = text.as_bytes();
    if bytes.len() < 20 || bytes[4] != b'-' || bytes[7] != b'-' || bytes[13] != b':' {
        return None;
    }
    if !matches!(bytes[10], b'T' | b't' | b' ') || bytes[16] != b':' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        part.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut rest = &text[19..];
    let mut millis = 0i64;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        for (i, b) in fraction.bytes().take(3).take(digits).enumerate() {
            millis += i64::from(b - b'0') * [100, 10, 1][i];
        }
        rest = &fraction[digits..];
    }
    let offset_minutes = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            if rest.len() != 6 || rest.as_bytes()[3] != b':' {
                return None;
            }
            let hours: i64 = rest[1..3].parse().ok()?;
            let minutes: i64 = rest[4..6].parse().ok()?;
            sign * (hours * 60 + minutes)
        }
    };
    let days = days_from_civil(year, month as u32, day as u32);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    Some(Timestamp(seconds * 1000 + millis))
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

fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn civil_from_days(days: i64) -> UtcDate {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    UtcDate {
        year: year as i32,
        month,
        day,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn formats_as_rfc3339_with_milliseconds() {
        let ts = Timestamp::from_unix_millis(1_764_165_470_123);
        assert_eq!(ts.to_string(), "2025-11-26T13:57:50.123Z");
        assert_eq!(
            Timestamp::from_unix_millis(0).to_string(),
            "1970-01-01T00:00:00.000Z"
        );
    }

    #[test]
    fn parses_offsets_and_fractions() {
        let a: Timestamp = "2025-11-26T14:57:50.1+01:00".parse().unwrap();
        assert_eq!(a.unix_millis(), 1_764_165_470_100);
        assert!("2025-02-29T00:00:00Z".parse::<Timestamp>().is_err());
        assert!("2024-02-29T00:00:00Z".parse::<Timestamp>().is_ok());
        assert!("yesterday".parse::<Timestamp>().is_err());
    }

    #[test]
    fn the_next_utc_day_starts_at_midnight() {
        let ts: Timestamp = "2026-12-31T23:59:59.999Z".parse().unwrap();
        assert_eq!(ts.utc_date().to_string(), "2026-12-31");
        assert_eq!(
            ts.start_of_next_utc_day().to_string(),
            "2027-01-01T00:00:00.000Z"
        );
    }

    #[test]
    fn serde_speaks_the_rfc3339_text_and_refuses_anything_else() {
        let ts = Timestamp::from_unix_millis(1_764_165_470_123);
        let json = serde_json::to_string(&ts).unwrap();
        assert_eq!(json, "\"2025-11-26T13:57:50.123Z\"");
        assert_eq!(serde_json::from_str::<Timestamp>(&json).unwrap(), ts);
        // An escaped string (not borrowable from the input) parses too.
        let escaped = "\"2025-11-26T13:57:50.123\\u005a\"";
        assert_eq!(serde_json::from_str::<Timestamp>(escaped).unwrap(), ts);
        let err = serde_json::from_str::<Timestamp>("\"yesterday\"").unwrap_err();
        assert!(
            err.to_string()
                .contains("expected an RFC 3339 UTC timestamp"),
            "{err}"
        );
        assert!(serde_json::from_str::<Timestamp>("17").is_err());
        let bytes = serde::de::value::BytesDeserializer::<serde::de::value::Error>::new(
            b"2025-11-26T13:57:50.123Z",
        );
        assert_eq!(Timestamp::deserialize(bytes).unwrap(), ts);
        // Years past 9999 take the long way, both ways.
        let far = Timestamp::from_unix_millis(253_402_300_800_000);
        assert_eq!(far.to_string(), "10000-01-01T00:00:00.000Z");
        assert_eq!(
            serde_json::to_string(&far).unwrap(),
            "\"10000-01-01T00:00:00.000Z\""
        );
    }

    proptest! {
        #[test]
        fn the_fast_text_is_the_long_text(millis in 0i64..253_402_300_799_999) {
            let ts = Timestamp::from_unix_millis(millis);
            let date = ts.utc_date();
            let in_day = millis.rem_euclid(MILLIS_PER_DAY);
            let long = format!(
                "{date}T{:02}:{:02}:{:02}.{:03}Z",
                in_day / 3_600_000, in_day / 60_000 % 60, in_day / 1000 % 60, in_day % 1000
            );
            prop_assert_eq!(ts.to_string(), long);
        }

        #[test]
        fn display_and_parse_round_trip(millis in -62_135_596_800_000i64..253_402_300_799_999) {
            let ts = Timestamp::from_unix_millis(millis);
            prop_assert_eq!(ts.to_string().parse::<Timestamp>().unwrap(), ts);
        }
    }
}
