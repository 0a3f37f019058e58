//! Query parameters compatible with MediaPackage, so existing player URLs keep working:
//! `aws.manifestfilter`, `aws.manifestsettings`, `start`, `end`, and our key `token`.

use chrono::DateTime;
use percent_encoding::percent_decode_str;

use crate::error::FilterError;

/// Longest accepted `aws.manifestfilter` / `aws.manifestsettings` value (MediaPackage's limit).
pub const MAX_FILTER_LEN: usize = 1024;
/// Longest accepted time-shift range.
pub const MAX_RANGE_MS: i64 = 24 * 3600 * 1000;
const INT_MAX: u64 = 2_147_483_647;

/// The query parameters edgepack reads; others (cache busters, CDN tokens) are ignored.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Query {
    pub manifest_filter: Option<String>,
    pub manifest_settings: Option<String>,
    pub start: Option<String>,
    pub end: Option<String>,
    pub token: Option<String>,
    /// The raw `name=value` pairs a child playlist needs to see the same window.
    pub carry: Vec<String>,
}

impl Query {
    /// Parses a raw query string (without `?`).
    pub fn parse(raw: &str) -> Result<Self, FilterError> {
        let mut q = Query::default();
        for pair in raw.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let key = percent_decode_str(k)
                .decode_utf8_lossy()
                .to_ascii_lowercase();
            let value = percent_decode_str(&v.replace('+', "%20"))
                .decode_utf8()
                .map_err(|_| {
                    FilterError::BadRequest(format!("query parameter {key} is not UTF-8"))
                })?
                .into_owned();
            let slot = match key.as_str() {
                "aws.manifestfilter" => &mut q.manifest_filter,
                "aws.manifestsettings" => &mut q.manifest_settings,
                "start" => &mut q.start,
                "end" => &mut q.end,
                "token" => &mut q.token,
                _ => continue,
            };
            if slot.is_some() {
                return Err(FilterError::BadRequest(format!(
                    "query parameter {key} is repeated"
                )));
            }
            *slot = Some(value);
            if matches!(key.as_str(), "aws.manifestsettings" | "start" | "end") {
                q.carry.push(pair.to_owned());
            }
        }
        Ok(q)
    }
}

/// An inclusive numeric range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    pub min: f64,
    pub max: f64,
}

impl Range {
    /// True when `v` is inside.
    pub fn contains(&self, v: f64) -> bool {
        v >= self.min && v <= self.max
    }
}

/// A parsed `aws.manifestfilter`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ManifestFilter {
    pub video_bitrate: Option<Vec<Range>>,
    pub video_height: Option<Vec<Range>>,
    pub video_framerate: Option<Vec<Range>>,
    pub video_codec: Option<Vec<String>>,
    pub audio_bitrate: Option<Vec<Range>>,
    pub audio_channels: Option<Vec<Range>>,
    pub audio_sample_rate: Option<Vec<Range>>,
    pub audio_codec: Option<Vec<String>>,
    pub audio_language: Option<Vec<String>>,
    pub subtitle_language: Option<Vec<String>>,
}

/// Video codecs a filter may name, with the `CODECS` prefixes they match.
pub const VIDEO_CODECS: &[(&str, &[&str])] = &[
    ("h264", &["avc1", "avc3"]),
    ("h265", &["hvc1", "hev1"]),
    ("av1", &["av01"]),
    ("vp9", &["vp09"]),
];
/// Audio codecs a filter may name, with the `CODECS` values they match.
pub const AUDIO_CODECS: &[(&str, &[&str])] = &[
    ("aacl", &["mp4a.40.2", "mp4a.40.1"]),
    ("aach", &["mp4a.40.5", "mp4a.40.29"]),
    ("ac-3", &["ac-3"]),
    ("ec-3", &["ec-3"]),
];

fn bad(msg: String) -> FilterError {
    FilterError::BadRequest(msg)
}

fn parse_ranges(
    name: &str,
    value: &str,
    max: u64,
    decimals: bool,
) -> Result<Vec<Range>, FilterError> {
    value
        .split(',')
        .map(|part| {
            let part = part.trim();
            let (a, b) = part.split_once('-').unwrap_or((part, part));
            let num = |s: &str| -> Result<f64, FilterError> {
                let s = s.trim();
                let ok = !s.is_empty()
                    && s.bytes()
                        .all(|c| c.is_ascii_digit() || (decimals && c == b'.'));
                let v: f64 = ok.then(|| s.parse().ok()).flatten().ok_or_else(|| {
                    bad(format!("aws.manifestfilter {name}: '{s}' is not a number"))
                })?;
                if v > max as f64 {
                    return Err(bad(format!(
                        "aws.manifestfilter {name}: {s} is above the maximum {max}"
                    )));
                }
                Ok(v)
            };
            let (min, max) = (num(a)?, num(b)?);
            if min > max {
                return Err(bad(format!(
                    "aws.manifestfilter {name}: range {part} is reversed"
                )));
            }
            Ok(Range { min, max })
        })
        .collect()
}

fn parse_list(
    name: &str,
    value: &str,
    allowed: Option<&[(&str, &[&str])]>,
) -> Result<Vec<String>, FilterError> {
    let mut out = Vec::new();
    for v in value.split(',') {
        let v = v.trim().to_ascii_lowercase();
        if v.is_empty() {
            return Err(bad(format!("aws.manifestfilter {name}: empty value")));
        }
        if let Some(allowed) = allowed
            && !allowed.iter().any(|(n, _)| *n == v)
        {
            let names: Vec<&str> = allowed.iter().map(|(n, _)| *n).collect();
            return Err(bad(format!(
                "aws.manifestfilter {name}: '{v}' is not one of {}",
                names.join(", ")
            )));
        }
        out.push(v);
    }
    Ok(out)
}

impl ManifestFilter {
    /// Parses MediaPackage's grammar: `name:value;name:value`, ranges `a-b`, lists `x,y`,
    /// case-insensitive, at most 1024 characters.
    pub fn parse(raw: &str) -> Result<Self, FilterError> {
        if raw.len() > MAX_FILTER_LEN {
            return Err(bad(format!(
                "aws.manifestfilter is {} characters, over the limit of {MAX_FILTER_LEN}",
                raw.len()
            )));
        }
        let mut f = ManifestFilter::default();
        for item in raw.split(';') {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            let (name, value) = item
                .split_once(':')
                .ok_or_else(|| bad(format!("aws.manifestfilter: '{item}' is not name:value")))?;
            let name = name.trim().to_ascii_lowercase();
            if value.contains(':') || value.trim().is_empty() {
                return Err(bad(format!("aws.manifestfilter: '{item}' is malformed")));
            }
            macro_rules! set {
                ($field:ident, $v:expr) => {{
                    if f.$field.is_some() {
                        return Err(bad(format!("aws.manifestfilter: {name} is given twice")));
                    }
                    f.$field = Some($v);
                }};
            }
            match name.as_str() {
                "video_bitrate" => set!(video_bitrate, parse_ranges(&name, value, INT_MAX, false)?),
                "video_height" => set!(video_height, parse_ranges(&name, value, 32_767, false)?),
                "video_framerate" => set!(video_framerate, parse_ranges(&name, value, 999, true)?),
                "video_codec" => set!(video_codec, parse_list(&name, value, Some(VIDEO_CODECS))?),
                "audio_bitrate" => set!(audio_bitrate, parse_ranges(&name, value, INT_MAX, false)?),
                "audio_channels" => {
                    set!(audio_channels, parse_ranges(&name, value, 32_767, false)?)
                }
                "audio_sample_rate" => {
                    set!(
                        audio_sample_rate,
                        parse_ranges(&name, value, INT_MAX, false)?
                    )
                }
                "audio_codec" => set!(audio_codec, parse_list(&name, value, Some(AUDIO_CODECS))?),
                "audio_language" => set!(audio_language, parse_list(&name, value, None)?),
                "subtitle_language" => set!(subtitle_language, parse_list(&name, value, None)?),
                _ => {
                    return Err(bad(format!(
                        "aws.manifestfilter: unknown parameter '{name}'; known: video_bitrate, video_height, video_framerate, video_codec, audio_bitrate, audio_channels, audio_sample_rate, audio_codec, audio_language, subtitle_language"
                    )));
                }
            }
        }
        if f == ManifestFilter::default() {
            return Err(bad("aws.manifestfilter is empty".into()));
        }
        Ok(f)
    }
}

/// Time-shift and window overrides of one request, all times in epoch milliseconds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TimeShift {
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
    pub window_seconds: Option<u64>,
    pub delay_seconds: Option<u64>,
}

/// Parses `start`/`end` values: epoch seconds or ISO 8601.
fn parse_time(name: &str, v: &str) -> Result<i64, FilterError> {
    let v = v.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        let secs: i64 = v
            .parse()
            .map_err(|_| bad(format!("{name}={v} is too large")))?;
        return secs
            .checked_mul(1000)
            .ok_or_else(|| bad(format!("{name}={v} is too large")));
    }
    DateTime::parse_from_rfc3339(v)
        .or_else(|_| DateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .map(|t| t.timestamp_millis())
        .map_err(|_| {
            bad(format!(
                "{name}={v} is neither epoch seconds nor ISO 8601 (2026-11-25T14:00:00Z)"
            ))
        })
}

impl TimeShift {
    /// Reads `aws.manifestsettings` and plain `start`/`end`.
    pub fn from_query(q: &Query) -> Result<Self, FilterError> {
        let mut t = TimeShift::default();
        if let Some(s) = &q.manifest_settings {
            if s.len() > MAX_FILTER_LEN {
                return Err(bad("aws.manifestsettings is over 1024 characters".into()));
            }
            for item in s.split(';').map(str::trim).filter(|i| !i.is_empty()) {
                let (k, v) = item.split_once(':').ok_or_else(|| {
                    bad(format!("aws.manifestsettings: '{item}' is not name:value"))
                })?;
                let k = k.trim().to_ascii_lowercase();
                let dup = || bad(format!("aws.manifestsettings: {k} is given twice"));
                let secs = |v: &str| -> Result<u64, FilterError> {
                    v.trim().parse().map_err(|_| {
                        bad(format!(
                            "aws.manifestsettings: {k}:{v} is not a number of seconds"
                        ))
                    })
                };
                match k.as_str() {
                    "manifest_window_seconds" => {
                        if t.window_seconds.replace(secs(v)?).is_some() {
                            return Err(dup());
                        }
                    }
                    "time_delay" => {
                        if t.delay_seconds.replace(secs(v)?).is_some() {
                            return Err(dup());
                        }
                    }
                    "start" => {
                        if t.start_ms.replace(parse_time("start", v)?).is_some() {
                            return Err(dup());
                        }
                    }
                    "end" => {
                        if t.end_ms.replace(parse_time("end", v)?).is_some() {
                            return Err(dup());
                        }
                    }
                    _ => {
                        return Err(bad(format!(
                            "aws.manifestsettings: unknown setting '{k}'; known: manifest_window_seconds, start, end, time_delay"
                        )));
                    }
                }
            }
        }
        if let Some(s) = &q.start
            && t.start_ms.replace(parse_time("start", s)?).is_some()
        {
            return Err(bad(
                "start is given twice (query and aws.manifestsettings)".into()
            ));
        }
        if let Some(e) = &q.end
            && t.end_ms.replace(parse_time("end", e)?).is_some()
        {
            return Err(bad(
                "end is given twice (query and aws.manifestsettings)".into()
            ));
        }
        if t.window_seconds.is_some_and(|w| w == 0 || w > 86_400) {
            return Err(bad("manifest_window_seconds must be 1..=86400".into()));
        }
        if t.delay_seconds.is_some_and(|d| d > 86_400) {
            return Err(bad("time_delay must be 0..=86400".into()));
        }
        match (t.start_ms, t.end_ms) {
            (None, Some(_)) => return Err(bad("end needs a start".into())),
            (Some(s), Some(e)) if e <= s => {
                return Err(bad("end must be after start".into()));
            }
            (Some(s), Some(e)) if e - s > MAX_RANGE_MS => {
                return Err(bad("a time-shift range is at most 24 hours long".into()));
            }
            _ => {}
        }
        Ok(t)
    }

    /// [`TimeShift::from_query`] at `now_ms`: a range with only `start` runs to now, and obeys
    /// the same 24-hour limit as one with `end` (a `start` days back would ask for days of
    /// segments in one playlist).
    pub fn from_query_at(q: &Query, now_ms: i64) -> Result<Self, FilterError> {
        let t = Self::from_query(q)?;
        if let (Some(s), None) = (t.start_ms, t.end_ms)
            && now_ms.saturating_sub(s) > MAX_RANGE_MS
        {
            return Err(bad(
                "a time-shift range is at most 24 hours long: with start more than 24 hours ago, give an end too".into(),
            ));
        }
        Ok(t)
    }

    /// True when the request asks for anything but the endpoint's defaults.
    pub fn is_time_shifted(&self) -> bool {
        self.start_ms.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(raw: &str) -> u16 {
        match ManifestFilter::parse(raw) {
            Ok(_) => 200,
            Err(e) => e.status(),
        }
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn mediapackage_filter_rules() {
        let f = ManifestFilter::parse(
            "video_bitrate:0-3000000;AUDIO_LANGUAGE:fr,en-US,de;video_codec:H264",
        )
        .unwrap();
        assert_eq!(
            f.video_bitrate.unwrap()[0],
            Range {
                min: 0.0,
                max: 3_000_000.0
            }
        );
        assert_eq!(f.audio_language.unwrap(), vec!["fr", "en-us", "de"]);
        assert_eq!(f.video_codec.unwrap(), vec!["h264"]);
        assert_eq!(
            status("audio_language:dahlia"),
            200,
            "unknown list value is fine"
        );
        assert_eq!(status("video_framerate:23.976-30"), 200);
        assert_eq!(
            status("audio_sample_rate:0-48000;audio_sample_rate:0-48000"),
            400
        );
        assert_eq!(status("donut_type:rhododendron"), 400);
        assert_eq!(status("audio_sample_rate:300-0"), 400);
        assert_eq!(status("audio_sample_rate:0-2147483648"), 400);
        assert_eq!(status("audio_sample_rate:0-2147483647"), 200);
        assert_eq!(status("audio_sample_rate:is:0-44100"), 400);
        assert_eq!(status(&format!("audio_language:{}", "a".repeat(1100))), 400);
        assert_eq!(
            status("video_codec:mpeg2"),
            400,
            "codec lists are constrained"
        );
        assert_eq!(status("video_bitrate:abc"), 400);
        assert_eq!(status("video_bitrate"), 400);
        assert_eq!(status(""), 400);
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn query_parsing_and_repeats() {
        let q = Query::parse(
            "aws.manifestfilter=video_bitrate%3A0-100%3Baudio_language%3Aen&start=1700000000&x=1",
        )
        .unwrap();
        assert_eq!(
            q.manifest_filter.as_deref(),
            Some("video_bitrate:0-100;audio_language:en")
        );
        assert_eq!(q.carry, vec!["start=1700000000"]);
        let e = Query::parse("aws.manifestfilter=a:1&aws.manifestfilter=b:2").unwrap_err();
        assert_eq!(e.status(), 400);
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn time_shift_rules() {
        let ts = |raw: &str| TimeShift::from_query(&Query::parse(raw).unwrap());
        let t = ts("start=2026-11-25T14:00:00Z&end=1795615500").unwrap();
        assert_eq!(t.start_ms, Some(1_795_615_200_000));
        assert_eq!(t.end_ms, Some(1_795_615_500_000));
        let t =
            ts("aws.manifestsettings=manifest_window_seconds:30;time_delay:10;start:1700000000")
                .unwrap();
        assert_eq!(
            (t.window_seconds, t.delay_seconds, t.start_ms),
            (Some(30), Some(10), Some(1_700_000_000_000))
        );
        for bad in [
            "start=100&end=50",
            "start=0&end=90000",
            "end=100",
            "start=yesterday",
            "aws.manifestsettings=start:1;start:2",
            "aws.manifestsettings=start:1&start=1",
            "aws.manifestsettings=foo:1",
            "aws.manifestsettings=manifest_window_seconds:0",
        ] {
            assert_eq!(ts(bad).unwrap_err().status(), 400, "{bad}");
        }
    }

    /// #16 §3: a time-shift with only `start` runs to now and obeys the same 24-hour limit as
    /// one with `end`.
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn a_start_without_end_is_limited_to_24_hours_back() {
        let now = 1_795_615_200_000;
        let at = |raw: &str| TimeShift::from_query_at(&Query::parse(raw).unwrap(), now);
        let day = MAX_RANGE_MS / 1000;
        let start = |back: i64| format!("start={}", now / 1000 - back);
        assert!(at(&start(day)).is_ok());
        let e = at(&start(day + 1)).unwrap_err();
        assert_eq!(e.status(), 400);
        assert!(e.to_string().contains("give an end too"), "{e}");
        // With an end, the range is what counts, however long ago.
        let old = format!("{}&end={}", start(10 * day), now / 1000 - 9 * day);
        assert!(at(&old).is_ok());
        assert!(at("start=0").is_err());
    }
}
