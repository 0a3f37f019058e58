//! Program date times: RFC 3339 text ⇄ epoch milliseconds, and the one rule for a segment that
//! has none of its own.
//!
//! Hand-written (no chrono) to keep the crate small in wasm. Reads what encoders write in
//! `EXT-X-PROGRAM-DATE-TIME` and what the store sends in `x-edgepack-program-date-time`:
//! `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM|±HHMM|±HH)` (`T` may also be `t` or a space, `Z` may
//! be `z`); fractions past the millisecond are dropped, as chrono's `timestamp_millis` does.
//! Writes `YYYY-MM-DDTHH:MM:SS.mmmZ`, what the store has always written.

use std::fmt;

const MS_PER_DAY: i64 = 86_400_000;
/// 0000-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z: the four-digit years of RFC 3339.
const MIN_MS: i64 = -62_167_219_200_000;
const MAX_MS: i64 = 253_402_300_799_999;

/// A duration in seconds (`EXTINF`) as whole milliseconds, rounded to the nearest.
pub fn duration_ms(duration: f64) -> i64 {
    // `as` saturates (and maps NaN to 0): no overflow whatever the input.
    (duration * 1000.0).round() as i64
}

/// The program date time (epoch ms) of a segment that has no `EXT-X-PROGRAM-DATE-TIME` of its
/// own: the previous segment's plus the previous segment's duration, or `None` when a
/// discontinuity separates the two (the new run's clock is unknown).
///
/// Both sides use this one rule: the parser applies it within a playlist, the store across its
/// timeline (it then falls back to its own clock where this gives `None`).
pub fn extrapolate_pdt_ms(
    previous_pdt_ms: i64,
    previous_duration: f64,
    discontinuity: bool,
) -> Option<i64> {
    (!discontinuity).then(|| previous_pdt_ms.saturating_add(duration_ms(previous_duration)))
}

/// Parses an RFC 3339 date-time (see the module doc for the accepted forms) into epoch ms.
pub fn parse_pdt(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let year = digits(b, 0, 4)?;
    let month = digits(b, 5, 2)?;
    let day = digits(b, 8, 2)?;
    let hour = digits(b, 11, 2)?;
    let minute = digits(b, 14, 2)?;
    let second = digits(b, 17, 2)?;
    let separators_ok = b.get(4) == Some(&b'-')
        && b.get(7) == Some(&b'-')
        && matches!(b.get(10), Some(b'T' | b't' | b' '))
        && b.get(13) == Some(&b':')
        && b.get(16) == Some(&b':');
    let fields_ok = (1..=12).contains(&month)
        && (1..=days_in_month(year, month)).contains(&day)
        && hour < 24
        && minute < 60
        // 60: a leap second, counted (as chrono does) as the first second of the next minute.
        && second <= 60;
    if !separators_ok || !fields_ok {
        return None;
    }
    let mut i = 19;
    let mut millis = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while let Some(d) = b.get(i).filter(|d| d.is_ascii_digit()) {
            if i - start < 3 {
                millis = millis * 10 + i64::from(d - b'0');
            }
            i += 1;
        }
        match i - start {
            0 => return None,
            1 => millis *= 100,
            2 => millis *= 10,
            _ => {}
        }
    }
    let offset_minutes = offset(b.get(i..)?)?;
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_minutes * 60;
    // An offset can move a date-time past year 0000 or 9999: it could not be written back.
    Some(seconds * 1000 + millis).filter(|ms| (MIN_MS..=MAX_MS).contains(ms))
}

/// `Z`, `±HH:MM`, `±HHMM` or `±HH`, in minutes east of UTC.
fn offset(b: &[u8]) -> Option<i64> {
    let sign = match b.first()? {
        b'Z' | b'z' if b.len() == 1 => return Some(0),
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let hours = digits(b, 1, 2)?;
    let minutes = match b.len() {
        3 => 0,
        5 => digits(b, 3, 2)?,
        6 if b[3] == b':' => digits(b, 4, 2)?,
        _ => return None,
    };
    (hours < 24 && minutes < 60).then_some(sign * (hours * 60 + minutes))
}

/// The decimal number in `b[at..at + len]`, all ASCII digits.
fn digits(b: &[u8], at: usize, len: usize) -> Option<i64> {
    b.get(at..at + len)?.iter().try_fold(0, |n, d| {
        d.is_ascii_digit().then(|| n * 10 + i64::from(d - b'0'))
    })
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Howard Hinnant's `days_from_civil` / `civil_from_days` (proleptic Gregorian, day 0 = 1970-01-01).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// Writes `ms` as `YYYY-MM-DDTHH:MM:SS.mmmZ`. Only years 0000–9999 read back with
/// [`parse_pdt`] (as with every RFC 3339 reader); [`parse_pdt`] returns no other.
pub fn write_pdt<W: fmt::Write>(out: &mut W, ms: i64) -> fmt::Result {
    let (year, month, day) = civil_from_days(ms.div_euclid(MS_PER_DAY));
    let in_day = ms.rem_euclid(MS_PER_DAY);
    let fields = [
        (in_day / 3_600_000, 2),
        (in_day / 60_000 % 60, 2),
        (in_day / 1_000 % 60, 2),
        (in_day % 1_000, 3),
    ];
    if !(0..=9999).contains(&year) {
        let [h, m, s, f] = fields.map(|(v, _)| v);
        return write!(
            out,
            "{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{f:03}Z"
        );
    }
    // By hand: the store writes one per segment, and `write!` costs more than the rest.
    let mut b = *b"0000-00-00T00:00:00.000Z";
    let mut put = |end: usize, width: usize, mut v: i64| {
        for i in (end - width..end).rev() {
            // `v % 10` is 0..=9 here: every field is non-negative.
            b[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(4, 4, year);
    put(7, 2, month);
    put(10, 2, day);
    let mut start = 11;
    for (v, width) in fields {
        put(start + width, width, v);
        start += width + 1;
    }
    out.write_str(std::str::from_utf8(&b).map_err(|_| fmt::Error)?)
}

/// `ms` as `YYYY-MM-DDTHH:MM:SS.mmmZ` (the value of the store's program date time header).
pub fn format_pdt(ms: i64) -> String {
    let mut s = String::with_capacity(24);
    let _ = write_pdt(&mut s, ms);
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn reads_the_forms_encoders_and_the_store_write() {
        // ffmpeg 5.1 (`%z`), the store (`Z`, ms), RFC 3339 offsets, no fraction, microseconds.
        let t = 1_795_615_200_000;
        for text in [
            "2026-11-25T14:00:00.000+0000",
            "2026-11-25T14:00:00.000Z",
            "2026-11-25T14:00:00Z",
            "2026-11-25t14:00:00z",
            "2026-11-25 14:00:00.000000Z",
            "2026-11-25T15:00:00.000+01:00",
            "2026-11-25T15:00:00+01",
            "2026-11-25T08:30:00.000-0530",
        ] {
            assert_eq!(parse_pdt(text), Some(t), "{text}");
        }
        assert_eq!(parse_pdt("2026-11-25T14:00:00.5Z"), Some(t + 500));
        assert_eq!(parse_pdt("2026-11-25T14:00:00.04Z"), Some(t + 40));
        assert_eq!(
            parse_pdt("2026-11-25T14:00:00.1239Z"),
            Some(t + 123),
            "truncated"
        );
        assert_eq!(parse_pdt("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_pdt("0000-01-01T00:00:00Z"), Some(MIN_MS));
        assert_eq!(parse_pdt("9999-12-31T23:59:59.999Z"), Some(MAX_MS));
        assert_eq!(parse_pdt("1969-12-31T23:59:59.999Z"), Some(-1));
        assert_eq!(parse_pdt("2024-02-29T00:00:00Z"), Some(1_709_164_800_000));
        assert_eq!(
            parse_pdt("2016-12-31T23:59:60Z"),
            parse_pdt("2017-01-01T00:00:00Z"),
            "leap second"
        );
    }

    #[test]
    fn refuses_what_is_not_a_date_time() {
        for text in [
            "",
            "yesterday",
            "2026-11-25",
            "2026-11-25T14:00:00",
            "2026-11-25T14:00:00.Z",
            "2026-11-25T14:00:00.000+0",
            "2026-11-25T14:00:00.000+00:0",
            "2026-11-25T14:00:00.000Zjunk",
            "2026-13-25T14:00:00Z",
            "2025-02-29T14:00:00Z",
            "2026-11-31T14:00:00Z",
            "2026-11-25T24:00:00Z",
            "2026-11-25T14:60:00Z",
            "2026-11-25T14:00:61Z",
            "2026-11-25T14:00:00+24:00",
            "2026/11/25T14:00:00Z",
            "+026-11-25T14:00:00Z",
            "2026-11-25T14:00:00ü",
            "0000-01-01T00:00:00+00:01",
            "9999-12-31T23:59:59-00:01",
        ] {
            assert_eq!(parse_pdt(text), None, "{text:?}");
        }
    }

    #[test]
    fn writes_what_the_store_always_wrote() {
        assert_eq!(format_pdt(1_795_615_202_000), "2026-11-25T14:00:02.000Z");
        assert_eq!(format_pdt(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_pdt(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(format_pdt(1_709_164_800_123), "2024-02-29T00:00:00.123Z");
    }

    #[test]
    fn a_missing_pdt_follows_the_previous_segment_unless_discontinuous() {
        assert_eq!(extrapolate_pdt_ms(1_000, 1.96, false), Some(2_960));
        assert_eq!(extrapolate_pdt_ms(1_000, 2.0004, false), Some(3_000));
        assert_eq!(extrapolate_pdt_ms(1_000, 2.0005, false), Some(3_001));
        assert_eq!(extrapolate_pdt_ms(1_000, 2.0, true), None);
        assert_eq!(extrapolate_pdt_ms(i64::MAX, 2.0, false), Some(i64::MAX));
    }

    #[cfg(not(target_arch = "wasm32"))]
    mod against_chrono {
        use super::super::*;
        use chrono::{DateTime, FixedOffset, SecondsFormat, TimeZone, Utc};
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn writes_as_chrono_does(ms in MIN_MS..=MAX_MS) {
                let t = DateTime::<Utc>::from_timestamp_millis(ms).unwrap();
                prop_assert_eq!(format_pdt(ms), t.to_rfc3339_opts(SecondsFormat::Millis, true));
                prop_assert_eq!(parse_pdt(&format_pdt(ms)), Some(ms));
            }

            #[test]
            fn reads_as_chrono_does(
                ms in MIN_MS + 86_400_000..=MAX_MS - 86_400_000,
                offset_min in -1439i32..=1439,
                form in 0usize..4,
            ) {
                let tz = FixedOffset::east_opt(offset_min * 60).unwrap();
                let t = tz.timestamp_millis_opt(ms).unwrap();
                let text = match form {
                    0 => t.to_rfc3339_opts(SecondsFormat::Millis, false),
                    1 => t.to_rfc3339_opts(SecondsFormat::Micros, true),
                    2 => t.format("%Y-%m-%dT%H:%M:%S%.3f%z").to_string(),
                    _ => t.to_rfc3339_opts(SecondsFormat::Secs, false),
                };
                let chrono_ms = DateTime::parse_from_rfc3339(&text)
                    .or_else(|_| DateTime::parse_from_str(&text, "%Y-%m-%dT%H:%M:%S%.f%z"))
                    .unwrap()
                    .timestamp_millis();
                prop_assert_eq!(parse_pdt(&text), Some(chrono_ms), "{}", text);
            }

            #[test]
            fn never_panics(text in "[0-9T:.+Zz -]{0,40}") {
                let _ = parse_pdt(&text);
            }
        }
    }
}
