//! Which segments of the store's history a media playlist shows: the live window, a time delay,
//! or a time-shifted `[start, end]` range.

use std::ops::Range;

use crate::media_playlist::Segment;

/// What kind of playlist the window makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Sliding live window.
    Live,
    /// Time-shift whose end is not reached yet: grows, `EXT-X-PLAYLIST-TYPE:EVENT`.
    Event,
    /// Time-shift entirely in the past: `EXT-X-PLAYLIST-TYPE:VOD` + `EXT-X-ENDLIST`.
    Vod,
}

/// The request's view of time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowSpec {
    pub now_ms: i64,
    pub window_ms: i64,
    pub delay_ms: i64,
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
}

/// Selects a contiguous range of `segments` (sorted by sequence).
///
/// - Live: the newest segments available at `now - delay` whose durations add up to at least
///   the window (all of them when there are fewer). With no delay every listed segment counts as
///   available, so clock skew between encoder and edge cannot hide the live edge.
/// - Time-shift: segments that start at or after `start` and end at or before `end`.
pub fn select(segments: &[Segment], spec: &WindowSpec) -> (Range<usize>, Kind) {
    let horizon = spec.now_ms - spec.delay_ms;
    let available = |s: &Segment| spec.delay_ms == 0 || s.end_ms().is_some_and(|e| e <= horizon);
    let Some(start) = spec.start_ms else {
        let last = segments.iter().rposition(available).map_or(0, |i| i + 1);
        let mut first = last;
        let mut total = 0.0;
        while first > 0 && total * 1000.0 < spec.window_ms as f64 {
            first -= 1;
            total += segments[first].duration;
        }
        return (first..last, Kind::Live);
    };
    let end = spec.end_ms.unwrap_or(i64::MAX);
    let kind = if end <= horizon {
        Kind::Vod
    } else {
        Kind::Event
    };
    let Some(first) = segments
        .iter()
        .position(|s| s.pdt_ms.is_some_and(|p| p >= start))
    else {
        return (segments.len()..segments.len(), kind);
    };
    let mut last = first;
    while last < segments.len() {
        let s = &segments[last];
        let inside = s.pdt_ms.is_some_and(|p| p >= start) && s.end_ms().is_some_and(|e| e <= end);
        if !inside || !available(s) {
            break;
        }
        last += 1;
    }
    (first..last, kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn segs(n: u64, dur: f64, t0: i64) -> Vec<Segment> {
        (0..n)
            .map(|i| Segment {
                sequence: 100 + i,
                duration: dur,
                duration_text: format!("{dur:.6}"),
                title: String::new(),
                pdt_ms: Some(t0 + (i as f64 * dur * 1000.0) as i64),
                discontinuity: false,
                disc_seq: 0,
                source_key: None,
                tags: vec![],
                uri: format!("{}.ts", 100 + i),
            })
            .collect()
    }

    fn spec(now: i64) -> WindowSpec {
        WindowSpec {
            now_ms: now,
            window_ms: 10_000,
            delay_ms: 0,
            start_ms: None,
            end_ms: None,
        }
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn live_window_delay_and_partial() {
        let s = segs(30, 2.0, 0);
        assert_eq!(select(&s, &spec(60_000)), (25..30, Kind::Live));
        assert_eq!(
            select(&s[..3], &spec(60_000)),
            (0..3, Kind::Live),
            "fewer than a window"
        );
        assert_eq!(select(&[], &spec(0)), (0..0, Kind::Live));
        let delayed = WindowSpec {
            delay_ms: 20_000,
            ..spec(60_000)
        };
        // Available at t=40 s: segments ending by 40 s are 0..20.
        assert_eq!(select(&s, &delayed), (15..20, Kind::Live));
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn time_shift_vod_and_event() {
        let s = segs(30, 2.0, 0);
        let past = WindowSpec {
            start_ms: Some(10_000),
            end_ms: Some(20_000),
            ..spec(60_000)
        };
        assert_eq!(select(&s, &past), (5..10, Kind::Vod));
        let unaligned = WindowSpec {
            start_ms: Some(9_000),
            end_ms: Some(20_500),
            ..spec(60_000)
        };
        assert_eq!(select(&s, &unaligned), (5..10, Kind::Vod));
        let future = WindowSpec {
            start_ms: Some(50_000),
            end_ms: Some(90_000),
            ..spec(60_000)
        };
        assert_eq!(select(&s, &future), (25..30, Kind::Event));
        let open = WindowSpec {
            start_ms: Some(50_000),
            ..spec(60_000)
        };
        assert_eq!(select(&s, &open), (25..30, Kind::Event));
        let before = WindowSpec {
            start_ms: Some(-50_000),
            end_ms: Some(-40_000),
            ..spec(60_000)
        };
        assert_eq!(select(&s, &before).0.len(), 0);
    }
}
