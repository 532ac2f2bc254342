//! Time inputs: a date or a date and time in a record (`schema.time`) read as the calendar and
//! clock it was written in, and turned into inputs a model can use (time of day, day of week,
//! time of year).
//!
//! Read as written: `2013-01-01T10:00:00Z` and `2013-01-01 10:00:00+05:00` both give ten
//! o'clock (no time zone conversion: the local clock is what traffic, demand or prices follow;
//! a producer writing UTC gets UTC's clock, still periodic). A number (JSON, or a number's
//! text) is a Unix time (seconds, or milliseconds from 10^11 up) read in UTC, except eight
//! digits that make a date (`20130131`).
//!
//! The inputs of a time field, per part: `day`: sin and cos of the time of day (23:59 is next
//! to 00:00); `week`: seven 0/1 inputs, Monday to Sunday; `year`: sin and cos of the day of
//! the year. A missing value gives NaN for the sin and cos (imputed by the model's
//! normaliser) and no weekday; a value with a date and no time gives NaN for `day`, a time
//! with no date NaN for `week` and `year`.
//! Measured with `relearn eval` (defaults, model seeds 1-4, 2026-12-06), metro interstate
//! traffic's `date_time` as these three parts: MAE 391.6 -> 304.1; as hour, weekday and month
//! numbers 354.9; as sin and cos of the weekday with a weekend flag instead of seven inputs
//! 312.1.

use std::f64::consts::TAU;

/// One part of the inputs a time field gives (`schema.time[].parts`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum TimePart {
    /// The time of day: two inputs (sin and cos over 24 hours).
    Day,
    /// The day of the week: seven 0/1 inputs, Monday first.
    Week,
    /// The time of year: two inputs (sin and cos over 365.25 days).
    Year,
}

impl TimePart {
    /// Every part, in input order.
    pub const ALL: [TimePart; 3] = [TimePart::Day, TimePart::Week, TimePart::Year];

    /// How many inputs this part gives.
    pub fn width(self) -> usize {
        match self {
            TimePart::Day | TimePart::Year => 2,
            TimePart::Week => 7,
        }
    }

    /// The TOML spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            TimePart::Day => "day",
            TimePart::Week => "week",
            TimePart::Year => "year",
        }
    }

    /// The inputs' name suffixes.
    fn names(self) -> &'static [&'static str] {
        match self {
            TimePart::Day => &["day_sin", "day_cos"],
            TimePart::Week => &["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
            TimePart::Year => &["year_sin", "year_cos"],
        }
    }
}

/// A field read as a time (`[[schema.time]]`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeField {
    /// The field (a CSV column or a JSON key).
    pub field: String,
    /// The inputs it gives, in this order; default all three.
    #[serde(default = "all_parts")]
    pub parts: Vec<TimePart>,
}

fn all_parts() -> Vec<TimePart> {
    TimePart::ALL.to_vec()
}

impl TimeField {
    /// A field giving every part.
    pub fn new(field: impl Into<String>) -> TimeField {
        TimeField {
            field: field.into(),
            parts: all_parts(),
        }
    }

    /// How many inputs this field gives.
    pub fn width(&self) -> usize {
        self.parts.iter().map(|p| p.width()).sum()
    }

    /// The inputs' names: `<field>:day_sin`, `<field>:mon`, `<field>:year_cos`...
    pub fn names(&self) -> impl Iterator<Item = String> + '_ {
        self.parts
            .iter()
            .flat_map(|p| p.names())
            .map(|s| format!("{}:{s}", self.field))
    }

    /// Writes this field's inputs for `time` (None: missing) into `out` (`width()` long).
    pub fn write(&self, time: Option<&Civil>, out: &mut [f32]) {
        let mut at = 0;
        for &part in &self.parts {
            let block = &mut out[at..at + part.width()];
            at += part.width();
            match part {
                TimePart::Day => match time.and_then(|t| t.hours) {
                    Some(h) => cycle(h / 24.0, block),
                    None => block.fill(f32::NAN),
                },
                TimePart::Week => {
                    block.fill(0.0);
                    if let Some(w) = time.and_then(Civil::weekday) {
                        block[w as usize] = 1.0;
                    }
                }
                TimePart::Year => match time.and_then(Civil::year_fraction) {
                    Some(f) => cycle(f, block),
                    None => block.fill(f32::NAN),
                },
            }
        }
    }
}

/// Writes sin and cos of a fraction of a cycle.
fn cycle(fraction: f64, out: &mut [f32]) {
    let a = TAU * fraction;
    out[0] = a.sin() as f32;
    out[1] = a.cos() as f32;
}

/// A calendar date and a clock time as written (either may be absent, not both).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Civil {
    /// Year, month (1-12), day (1-31).
    pub date: Option<(i32, u32, u32)>,
    /// Hours since midnight, with minutes and seconds as a fraction (0 <= h < 24).
    pub hours: Option<f64>,
}

impl Civil {
    /// Monday = 0 .. Sunday = 6.
    pub fn weekday(&self) -> Option<u32> {
        let (y, m, d) = self.date?;
        // 1970-01-01 was a Thursday (3).
        Some((days_from_civil(y, m, d) + 3).rem_euclid(7) as u32)
    }

    /// The time since January 1st as a fraction of 365.25 days.
    pub fn year_fraction(&self) -> Option<f64> {
        let (y, m, d) = self.date?;
        let day = days_from_civil(y, m, d) - days_from_civil(y, 1, 1);
        Some((day as f64 + self.hours.unwrap_or(0.0) / 24.0) / 365.25)
    }

    /// The UTC calendar time of a Unix time in seconds.
    pub fn from_unix_seconds(seconds: f64) -> Option<Civil> {
        if !seconds.is_finite() || seconds.abs() > 1e13 {
            return None;
        }
        let days = (seconds / 86_400.0).floor();
        let (y, m, d) = civil_from_days(days as i64);
        Some(Civil {
            date: Some((y, m, d)),
            hours: Some((seconds - days * 86_400.0) / 3_600.0),
        })
    }

    /// A number as a time: eight digits that make a date are one (`20130131`, as some
    /// exports write dates); any other is a Unix time, in seconds, or milliseconds from 10^11
    /// up, read in UTC.
    pub fn from_unix(n: f64) -> Option<Civil> {
        if n.fract() == 0.0 && (10_000_101.0..=99_991_231.0).contains(&n) {
            let d = n as u32;
            let date = (d / 10_000, d / 100 % 100, d % 100);
            if let Some(date) = valid_date(date.0, date.1, date.2) {
                return Some(Civil {
                    date: Some(date),
                    hours: None,
                });
            }
        }
        Civil::from_unix_seconds(if n.abs() >= 1e11 { n / 1_000.0 } else { n })
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i32, m: u32, d: u32) -> i64 {
    let y = i64::from(y) - i64::from(m <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date `days` after 1970-01-01 (the inverse of `days_from_civil`).
fn civil_from_days(days: i64) -> (i32, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y as i32, m, d)
}

fn days_in_month(y: i32, m: u32) -> u32 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Parses a date, a time of day, or both: `2013-01-01`, `2013/1/1`, `2013-01` (the 1st),
/// `1/31/2013` (month first unless the first number is above 12), `31.01.2013` and
/// `31-01-2013` (day first), two-digit years after `/` or `.` (`31.01.13`: 2013, `70`-`99`:
/// the 1900s); `09:00`, `09:00:00`, `09:00:00.123`, or on a 12-hour clock `1:30 PM`,
/// `12:05 am`; a date and a time joined by a space or `T`, the time optionally followed by
/// `Z` or an offset (`+01:00`, `-0500`), which is not applied. None for anything else, or an impossible date or time. See [`parse_or_number`]
/// for a field that may also hold a number.
pub fn parse(text: &str) -> Option<Civil> {
    let s = text.trim();
    // A 12-hour clock (`1/31/2013 1:30:00 PM`, `12:05 am`), as US exports write times.
    let lower = s
        .get(s.len().saturating_sub(2)..)
        .map(str::to_ascii_lowercase);
    let pm = match lower.as_deref() {
        Some("am") => false,
        Some("pm") => true,
        _ => return parse_24(s),
    };
    let mut civil = parse_24(s[..s.len() - 2].trim_end())?;
    let h = civil.hours?;
    if !(1.0..13.0).contains(&h) {
        return None;
    }
    civil.hours = Some(match (pm, h >= 12.0) {
        (false, true) => h - 12.0,
        (true, false) => h + 12.0,
        _ => h,
    });
    Some(civil)
}

/// [`parse`] for a 24-hour clock: numeric dates, then dates with a month's name.
fn parse_24(s: &str) -> Option<Civil> {
    parse_numeric(s).or_else(|| {
        s.bytes()
            .any(|b| b.is_ascii_alphabetic())
            .then(|| parse_named(s))
            .flatten()
    })
}

/// A date whose month is numeric, optionally followed by a clock.
fn parse_numeric(s: &str) -> Option<Civil> {
    match s.split_once([' ', 'T']) {
        Some((d, t)) => Some(Civil {
            date: Some(parse_date(d)?),
            hours: Some(parse_clock(t.trim())?),
        }),
        None => match parse_date(s) {
            Some(date) => Some(Civil {
                date: Some(date),
                hours: None,
            }),
            None => Some(Civil {
                date: None,
                hours: Some(parse_clock(s)?),
            }),
        },
    }
}

/// [`parse`], or a number's text read as [`Civil::from_unix`] does (a CSV field holding a
/// Unix time or a `20130131` date).
pub fn parse_or_number(text: &str) -> Option<Civil> {
    parse(text).or_else(|| {
        let n = text.trim().parse::<f64>().ok()?;
        Civil::from_unix(n)
    })
}

/// English month names, matched by their first three letters or more (`Jan`, `Sept`), any case.
const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];
const WEEKDAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// The 1-based index of the name `word` abbreviates (three letters or more) in `names`.
fn named(word: &str, names: &[&str]) -> Option<u32> {
    if word.len() < 3 || !word.is_ascii() {
        return None;
    }
    (1u32..)
        .zip(names)
        .find(|(_, name)| {
            name.len() >= word.len()
                && name.as_bytes()[..word.len()].eq_ignore_ascii_case(word.as_bytes())
        })
        .map(|(i, _)| i)
}

/// A date with the month's name, as reports and logs write them: `1977-Jan` and `Jan 1977`
/// (the 1st), `31-Jan-2013`, `31 Jan 13`, `Jan 31, 2013`, `January 31 2013`, `2013-Jan-31`;
/// optionally a weekday's name first (`Thu, 31 Jan 2013`, not checked against the date), a
/// clock after the date, and a zone (`GMT`, `UTC`, `Z`, an offset) after the clock, which
/// is not applied.
fn parse_named(s: &str) -> Option<Civil> {
    let mut words = s
        .split([' ', ',', '-', '/', '.'])
        .filter(|w| !w.is_empty())
        .peekable();
    if words.peek().is_some_and(|w| named(w, &WEEKDAYS).is_some()) {
        words.next();
    }
    // At most three words make the date: a month's name and one or two numbers.
    let mut month = None;
    let mut numbers: [Option<&str>; 2] = [None, None];
    let mut month_at = 0;
    let mut count = 0;
    while count < 3 {
        let Some(w) = words.peek() else { break };
        if w.contains(':') {
            break;
        }
        if let Some(m) = named(w, &MONTHS) {
            if month.replace(m).is_some() {
                return None;
            }
            month_at = count;
        } else if w.bytes().all(|b| b.is_ascii_digit()) {
            let slot = numbers.iter_mut().find(|n| n.is_none())?;
            *slot = Some(w);
        } else {
            break;
        }
        words.next();
        count += 1;
    }
    let m = month?;
    let (y, d) = match numbers {
        // `1977-Jan`, `Jan 1977`: the 1st.
        [Some(y), None] if y.len() == 4 => (digits(y)?, 1),
        // `2013-Jan-31`
        [Some(y), Some(d)] if y.len() == 4 && month_at == 1 && d.len() <= 2 => {
            (digits(y)?, digits(d)?)
        }
        // `31-Jan-2013`, `Jan 31, 2013`, `31 Jan 13`
        [Some(d), Some(y)] if d.len() <= 2 && (y.len() == 4 || (y.len() == 2 && month_at < 2)) => {
            let mut y = digits(y)?;
            if y < 100 {
                y += if y < 70 { 2000 } else { 1900 };
            }
            (y, digits(d)?)
        }
        _ => return None,
    };
    let date = Some(valid_date(y, m, d)?);
    let hours = match words.next() {
        None => None,
        Some(clock) => {
            // Split at `-` and `.`: a negative offset is the next word, a second's fraction
            // too (a zone-like word of digits, left out).
            let hours = parse_clock(clock)?;
            let zone = words.next();
            let zone_ok = zone.is_none_or(|z| {
                ["gmt", "utc", "z"]
                    .iter()
                    .any(|n| z.eq_ignore_ascii_case(n))
                    || z.trim_start_matches('+')
                        .bytes()
                        .all(|b| b.is_ascii_digit() || b == b':')
            });
            if !zone_ok || words.next().is_some() {
                return None;
            }
            Some(hours)
        }
    };
    Some(Civil { date, hours })
}

/// Up to four ASCII digits.
fn digits(s: &str) -> Option<u32> {
    (!s.is_empty() && s.len() <= 4 && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

fn parse_date(s: &str) -> Option<(i32, u32, u32)> {
    let sep = s.bytes().find(|b| matches!(b, b'-' | b'/' | b'.'))? as char;
    // Decoded per record: the parts without a Vec (a fourth part makes it no date).
    let mut split = s.split(sep);
    let parts = [split.next(), split.next(), split.next(), split.next()];
    let (y, m, d) = match parts {
        [Some(y), Some(m), None, _] if y.len() == 4 && sep == '-' => (digits(y)?, digits(m)?, 1),
        [Some(y), Some(m), Some(d), None] if y.len() == 4 => (digits(y)?, digits(m)?, digits(d)?),
        [Some(a), Some(b), Some(y), None] if y.len() == 4 || (y.len() == 2 && sep != '-') => {
            let (a, b) = (digits(a)?, digits(b)?);
            let mut y = digits(y)?;
            if y < 100 {
                y += if y < 70 { 2000 } else { 1900 };
            }
            if sep == '/' && a <= 12 {
                (y, a, b)
            } else {
                (y, b, a)
            }
        }
        _ => return None,
    };
    valid_date(y, m, d)
}

/// The date, when it exists.
fn valid_date(y: u32, m: u32, d: u32) -> Option<(i32, u32, u32)> {
    let y = i32::try_from(y).ok()?;
    ((1..=12).contains(&m) && (1..=days_in_month(y, m)).contains(&d)).then_some((y, m, d))
}

/// `HH:MM[:SS[.fff]]` with an optional `Z`, ` UTC`, ` GMT` or `+hh:mm`/`-hhmm` after it; hours
/// since midnight.
fn parse_clock(s: &str) -> Option<f64> {
    let s = ["UTC", "GMT"]
        .iter()
        .find_map(|zone| {
            let n = s.len().checked_sub(zone.len())?;
            (s.is_char_boundary(n) && s[n..].eq_ignore_ascii_case(zone)).then(|| s[..n].trim_end())
        })
        .unwrap_or(s);
    let s = s.strip_suffix(['Z', 'z']).unwrap_or(s);
    // An offset starts at the first sign after the clock (never at position 0).
    let s = match s.find(['+', '-']) {
        Some(0) => return None,
        Some(i) => &s[..i],
        None => s,
    };
    let mut parts = s.split(':');
    let h = digits(parts.next()?).filter(|h| *h < 24)?;
    let m = digits(parts.next()?).filter(|m| *m < 60)?;
    let secs = match parts.next() {
        None => 0.0,
        Some(sec) => {
            let (whole, frac) = sec.split_once('.').unwrap_or((sec, ""));
            let whole = digits(whole).filter(|s| *s <= 60 && whole.len() == 2)?;
            if !frac.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            // The fraction's digits, last first: no string built per record.
            let fraction = frac
                .bytes()
                .rev()
                .fold(0.0, |acc, b| (acc + f64::from(b - b'0')) / 10.0);
            f64::from(whole) + fraction
        }
    };
    if parts.next().is_some() {
        return None;
    }
    Some(f64::from(h) + f64::from(m) / 60.0 + secs / 3_600.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> Option<(i32, u32, u32)> {
        parse(s).and_then(|c| c.date)
    }

    #[test]
    fn dates_are_read_in_their_usual_orders() {
        assert_eq!(date("2013-01-31"), Some((2013, 1, 31)));
        assert_eq!(date("2013/1/31"), Some((2013, 1, 31)));
        assert_eq!(date("1949-01"), Some((1949, 1, 1)));
        // Month first after `/`, unless the first number cannot be a month.
        assert_eq!(date("1/31/2013"), Some((2013, 1, 31)));
        assert_eq!(date("2/3/2013"), Some((2013, 2, 3)));
        assert_eq!(date("31/1/2013"), Some((2013, 1, 31)));
        // Day first after `.` and `-`.
        assert_eq!(date("31.01.13"), Some((2013, 1, 31)));
        assert_eq!(date("02.03.1999"), Some((1999, 3, 2)));
        assert_eq!(date("02.03.99"), Some((1999, 3, 2)));
        assert_eq!(date("02-03-2013"), Some((2013, 3, 2)));
        assert_eq!(date("2012-02-29"), Some((2012, 2, 29)));
        for bad in [
            "2013-02-29",
            "2013-13-01",
            "2013-00-10",
            "12-34-5",
            "1-2",
            "13/13/2013",
            "2013",
            "v1.2.3",
            "2013-01-01-01",
            "",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn months_are_read_by_their_names() {
        assert_eq!(date("1977-Jan"), Some((1977, 1, 1)));
        assert_eq!(date("Sep 2001"), Some((2001, 9, 1)));
        assert_eq!(date("31-Jan-2013"), Some((2013, 1, 31)));
        assert_eq!(date("31-OCT-2013"), Some((2013, 10, 31)));
        assert_eq!(date("31 Jan 13"), Some((2013, 1, 31)));
        assert_eq!(date("Jan 31, 2013"), Some((2013, 1, 31)));
        assert_eq!(date("January 31 2013"), Some((2013, 1, 31)));
        assert_eq!(date("Sept. 3, 1999"), Some((1999, 9, 3)));
        assert_eq!(date("2013-Feb-28"), Some((2013, 2, 28)));
        assert_eq!(date("Thu, 31 Jan 2013"), Some((2013, 1, 31)));
        let hours = |s: &str| parse(s).and_then(|c| c.hours);
        assert_eq!(hours("Thu, 31 Jan 2013 09:30:00 GMT"), Some(9.5));
        assert_eq!(hours("31-Jan-2013 09:30 -0500"), Some(9.5));
        assert_eq!(hours("Jan 31, 2013 1:30 PM"), Some(13.5));
        assert_eq!(hours("2013-01-31 09:30 UTC"), Some(9.5));
        assert_eq!(parse("31-Jan-2013").map(|c| c.hours), Some(None));
        // Month or weekday names alone (a categorical column) are no dates.
        for bad in [
            "may",
            "Jan",
            "mon",
            "Dec 2",
            "30 Feb 2013",
            "Jan Feb 2013",
            "31 Jan 2013 nine",
            "31 Jan 2013 09:00 soon",
            "Jan 31, 201",
            "Janx 2013",
            "ja 2013",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn clocks_and_offsets_are_read_as_written() {
        let hours = |s: &str| parse(s).and_then(|c| c.hours);
        assert_eq!(hours("09:30"), Some(9.5));
        assert_eq!(hours("2013-01-01 09:30:36"), Some(9.51));
        assert_eq!(hours("2013-01-01T09:00:00Z"), Some(9.0));
        assert_eq!(hours("2022-03-20T11:00:00+01:00"), Some(11.0));
        assert_eq!(hours("2022-03-20T11:00:00-0500"), Some(11.0));
        let ms = hours("2013-01-01T00:00:01.5").expect("fraction");
        assert!((ms - 1.5 / 3600.0).abs() < 1e-12, "{ms}");
        assert_eq!(parse("2013-01-01").map(|c| c.hours), Some(None));
        assert_eq!(parse("09:00").map(|c| c.date), Some(None));
        for bad in [
            "24:00", "09:60", "9", "1:2:3:4", "123:00", "09:00:0", "+01:00", "NYC",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
        // A 12-hour clock: 12 AM is midnight, 12 PM noon.
        assert_eq!(hours("1/31/2013 1:30:00 PM"), Some(13.5));
        assert_eq!(
            parse("1/31/2013 1:30:00 PM").and_then(|c| c.date),
            Some((2013, 1, 31))
        );
        let past_midnight = hours("12:05 am").expect("a clock");
        assert!(
            (past_midnight - 5.0 / 60.0).abs() < 1e-12,
            "{past_midnight}"
        );
        assert_eq!(hours("12:30PM"), Some(12.5));
        assert_eq!(hours("11:59 pm"), Some(23.0 + 59.0 / 60.0));
        assert_eq!(hours("9:00 AM"), Some(9.0));
        for bad in ["0:30 AM", "13:00 PM", "2013-01-01 PM", "PM", "am", "é"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn weekdays_and_unix_times_agree_with_the_calendar() {
        // 2013-01-01 was a Tuesday, 2000-02-29 a Tuesday, 1969-12-31 a Wednesday.
        for (s, w) in [
            ("2013-01-01", 1),
            ("2000-02-29", 1),
            ("1969-12-31", 2),
            ("2026-12-06", 6),
        ] {
            assert_eq!(parse(s).and_then(|c| c.weekday()), Some(w), "{s}");
        }
        // 1,357,034,400 s: 2013-01-01 10:00 UTC; the same in milliseconds.
        for n in [1_357_034_400.0, 1_357_034_400_000.0] {
            let c = Civil::from_unix(n).expect("in range");
            assert_eq!(c.date, Some((2013, 1, 1)));
            assert_eq!(c.hours, Some(10.0));
        }
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(Civil::from_unix(f64::NAN), None);
        // Eight digits that make a date are one; the text of a number is read the same way.
        assert_eq!(
            Civil::from_unix(20_130_131.0).and_then(|c| c.date),
            Some((2013, 1, 31))
        );
        assert_eq!(Civil::from_unix(20_130_131.0).map(|c| c.hours), Some(None));
        let c = parse_or_number(" 1357034400 ").expect("a Unix time");
        assert_eq!((c.date, c.hours), (Some((2013, 1, 1)), Some(10.0)));
        assert_eq!(
            parse_or_number("20130131").and_then(|c| c.date),
            Some((2013, 1, 31))
        );
        // 20131399 is no date: a Unix time in August 1970.
        assert_eq!(
            parse_or_number("20131399").and_then(|c| c.date),
            Some((1970, 8, 22))
        );
        assert_eq!(parse_or_number("2013-01-31"), parse("2013-01-31"));
        assert_eq!(parse_or_number("soon"), None);
    }

    #[test]
    fn a_field_writes_its_parts_in_order() {
        let f = TimeField::new("t");
        assert_eq!(f.width(), 11);
        let names: Vec<String> = f.names().collect();
        assert_eq!(names[0], "t:day_sin");
        assert_eq!(names[2], "t:mon");
        assert_eq!(names[10], "t:year_cos");
        let mut out = [9.0f32; 11];
        // Saturday 2026-12-05, 18:00: a quarter of a day before midnight.
        f.write(parse("2026-12-05 18:00").as_ref(), &mut out);
        assert!(
            (out[0] + 1.0).abs() < 1e-6 && out[1].abs() < 1e-6,
            "{out:?}"
        );
        assert_eq!(&out[2..9], &[0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0]);
        // Day 338 of 365.25 (0.93 of the year): sin -0.44, cos 0.90.
        assert!(
            (out[9] + 0.44).abs() < 0.01 && (out[10] - 0.90).abs() < 0.01,
            "{out:?}"
        );
        // Missing: NaN for the cycles, no weekday; a date alone: NaN for the day only.
        f.write(None, &mut out);
        assert!(out[0].is_nan() && out[1].is_nan() && out[9].is_nan() && out[10].is_nan());
        assert!(out[2..9].iter().all(|&v| v == 0.0));
        f.write(parse("2026-12-05").as_ref(), &mut out);
        assert!(out[0].is_nan() && out[7] == 1.0 && out[9].is_finite());
        let week = TimeField {
            field: "t".into(),
            parts: vec![TimePart::Week],
        };
        assert_eq!(week.names().collect::<Vec<_>>()[6], "t:sun");
    }
}
