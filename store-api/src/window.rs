//! Which segments of a rendition's history a request sees: the live window (with a delay) or a
//! time-shifted `[start, end]` range. The store cuts its view with it and the filter shows the
//! same range, so both agree on every edge. Cost: O(answer + log history) — program date times
//! never decrease along a store timeline, so the ends of a range are found by binary search.

use std::ops::Range;

use crate::Segment;

/// What kind of playlist the window makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowKind {
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

/// Anything on a timeline: a playlist's segment, a store's index entry.
pub trait Timed {
    /// Program date time, epoch ms.
    fn pdt_ms(&self) -> Option<i64>;
    /// Duration in seconds.
    fn duration(&self) -> f64;
    /// End in epoch ms: the PDT plus the duration, rounded to the millisecond.
    fn end_ms(&self) -> Option<i64> {
        self.pdt_ms()
            .and_then(|p| crate::extrapolate_pdt_ms(p, self.duration(), false))
    }
}

impl Timed for Segment<'_> {
    fn pdt_ms(&self) -> Option<i64> {
        self.pdt_ms
    }
    fn duration(&self) -> f64 {
        self.duration
    }
}

/// Selects a contiguous range of `segments` (sorted by sequence, program date times never
/// decreasing).
///
/// - Live: the newest segments available at `now - delay` whose durations add up to at least
///   the window (all of them when there are fewer). With no delay every listed segment counts as
///   available, so clock skew between encoder and edge cannot hide the live edge.
/// - Time-shift: segments that start at or after `start` and end at or before `end`.
pub fn select<T: Timed>(segments: &[T], spec: &WindowSpec) -> (Range<usize>, WindowKind) {
    select_by(segments.len(), |i| segments.get(i), spec)
}

/// [`select`] over any indexed sequence (a store's `VecDeque` of entries): `at(i)` is the
/// `i`-th of `len` items.
pub fn select_by<'t, T: Timed + 't>(
    len: usize,
    at: impl Fn(usize) -> Option<&'t T>,
    spec: &WindowSpec,
) -> (Range<usize>, WindowKind) {
    // Saturating: the store takes `now` and `delay` from a query (found by fuzzing).
    let horizon = spec.now_ms.saturating_sub(spec.delay_ms);
    let available = |s: &T| spec.delay_ms == 0 || s.end_ms().is_some_and(|e| e <= horizon);
    // The count of the prefix where `pred` holds (it holds on a prefix: times never decrease).
    let prefix = |pred: &dyn Fn(&T) -> bool| {
        let (mut lo, mut hi) = (0, len);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if at(mid).is_some_and(pred) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    };
    let Some(start) = spec.start_ms else {
        let last = prefix(&available);
        let mut first = last;
        let mut total = 0.0;
        while first > 0 && total * 1000.0 < spec.window_ms as f64 {
            first -= 1;
            total += at(first).map_or(0.0, Timed::duration);
        }
        return (first..last, WindowKind::Live);
    };
    let end = spec.end_ms.unwrap_or(i64::MAX);
    let kind = if end <= horizon {
        WindowKind::Vod
    } else {
        WindowKind::Event
    };
    let first = prefix(&|s: &T| s.pdt_ms().is_none_or(|p| p < start));
    let mut last = first;
    while let Some(s) = at(last) {
        let inside = s.pdt_ms().is_some_and(|p| p >= start) && s.end_ms().is_some_and(|e| e <= end);
        if !inside || !available(s) {
            break;
        }
        last += 1;
    }
    (first..last, kind)
}

/// The key period of a program date time: ÷ the rotation interval (0: one period forever).
pub fn key_period(pdt_ms: i64, rotation_seconds: u64) -> u64 {
    if rotation_seconds == 0 || pdt_ms < 0 {
        return 0;
    }
    (pdt_ms as u64 / 1000) / rotation_seconds
}

/// What a request asks of a rendition's history: the [`WindowSpec`] that cuts the store's view,
/// and the endpoint's key rotation (its runs — one discontinuity, one key period — name the
/// initialization segments and periods the filter writes). The query of
/// `/store/v1/{channel}/{rendition}/index.m3u8`; without one the store answers the whole
/// history.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ViewQuery {
    pub spec: WindowSpec,
    pub rotation_seconds: u64,
}

impl ViewQuery {
    /// `window=…&delay=…[&now=…][&start=…][&end=…]&rotation=…`, all in ms but the rotation
    /// (seconds). `now` only matters with a delay: without one, the query of a live window never
    /// changes, and the store's answer can be revalidated by ETag.
    pub fn to_query(&self) -> String {
        let s = &self.spec;
        let mut q = format!("window={}&delay={}", s.window_ms, s.delay_ms);
        if s.delay_ms > 0 {
            q.push_str(&format!("&now={}", s.now_ms));
        }
        if let Some(v) = s.start_ms {
            q.push_str(&format!("&start={v}"));
        }
        if let Some(v) = s.end_ms {
            q.push_str(&format!("&end={v}"));
        }
        q.push_str(&format!("&rotation={}", self.rotation_seconds));
        q
    }

    /// Reads a query written by [`ViewQuery::to_query`]; `Ok(None)` for an empty query.
    pub fn parse(query: &str) -> Result<Option<Self>, String> {
        if query.is_empty() {
            return Ok(None);
        }
        let mut spec = WindowSpec {
            now_ms: 0,
            window_ms: 0,
            delay_ms: 0,
            start_ms: None,
            end_ms: None,
        };
        let mut rotation_seconds = 0;
        for pair in query.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let n = || {
                v.parse::<i64>()
                    .map_err(|_| format!("view query: {k}={v} is not a whole number"))
            };
            match k {
                "window" => spec.window_ms = n()?,
                "delay" => spec.delay_ms = n()?,
                "now" => spec.now_ms = n()?,
                "start" => spec.start_ms = Some(n()?),
                "end" => spec.end_ms = Some(n()?),
                "rotation" => {
                    rotation_seconds = u64::try_from(n()?)
                        .map_err(|_| format!("view query: rotation={v} is negative"))?;
                }
                _ => return Err(format!("view query: unknown parameter '{k}'")),
            }
        }
        if spec.window_ms < 0 || spec.delay_ms < 0 {
            return Err("view query: window and delay are not negative".into());
        }
        Ok(Some(Self {
            spec,
            rotation_seconds,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn segs(n: u64, dur: f64, t0: i64) -> Vec<Segment<'static>> {
        (0..n)
            .map(|i| Segment {
                sequence: 100 + i,
                duration: dur,
                duration_text: format!("{dur:.6}").into(),
                pdt_ms: Some(t0 + (i as f64 * dur * 1000.0) as i64),
                pdt_tagged: true,
                uri: format!("{}.ts", 100 + i).into(),
                ..Default::default()
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
        assert_eq!(select(&s, &spec(60_000)), (25..30, WindowKind::Live));
        assert_eq!(
            select(&s[..3], &spec(60_000)),
            (0..3, WindowKind::Live),
            "fewer than a window"
        );
        assert_eq!(select::<Segment>(&[], &spec(0)), (0..0, WindowKind::Live));
        let delayed = WindowSpec {
            delay_ms: 20_000,
            ..spec(60_000)
        };
        // Available at t=40 s: segments ending by 40 s are 0..20.
        assert_eq!(select(&s, &delayed), (15..20, WindowKind::Live));
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
        assert_eq!(select(&s, &past), (5..10, WindowKind::Vod));
        let unaligned = WindowSpec {
            start_ms: Some(9_000),
            end_ms: Some(20_500),
            ..spec(60_000)
        };
        assert_eq!(select(&s, &unaligned), (5..10, WindowKind::Vod));
        let future = WindowSpec {
            start_ms: Some(50_000),
            end_ms: Some(90_000),
            ..spec(60_000)
        };
        assert_eq!(select(&s, &future), (25..30, WindowKind::Event));
        let open = WindowSpec {
            start_ms: Some(50_000),
            ..spec(60_000)
        };
        assert_eq!(select(&s, &open), (25..30, WindowKind::Event));
        let before = WindowSpec {
            start_ms: Some(-50_000),
            end_ms: Some(-40_000),
            ..spec(60_000)
        };
        assert_eq!(select(&s, &before).0.len(), 0);
    }

    /// Found by fuzzing (`fuzz/fuzz_targets/store_media_playlist.rs`): `now - delay` overflowed
    /// for a `now` near the bottom of i64 (the store reads both from a query).
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn extreme_clocks_do_not_overflow() {
        let s = segs(5, 2.0, 1_000);
        for (now, delay, expected) in [(i64::MIN, 1, 0), (i64::MIN, i64::MAX, 0), (i64::MAX, 1, 5)]
        {
            let spec = WindowSpec {
                now_ms: now,
                delay_ms: delay,
                ..spec(0)
            };
            assert_eq!(
                select(&s, &spec).0.len(),
                expected,
                "now {now} delay {delay}"
            );
        }
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod properties {
    use super::*;
    use crate::strategies::timeline as arb_segments;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn live_window_is_the_newest_contiguous_run_covering_the_window(
            segs in arb_segments(), window_s in 1i64..600
        ) {
            let spec = WindowSpec { now_ms: i64::MAX / 2, window_ms: window_s * 1000, delay_ms: 0, start_ms: None, end_ms: None };
            let (r, kind) = select(&segs, &spec);
            prop_assert_eq!(kind, WindowKind::Live);
            prop_assert_eq!(r.end, segs.len());
            let total: f64 = segs[r.clone()].iter().map(|s| s.duration).sum();
            if r.start > 0 {
                prop_assert!(total * 1000.0 >= (window_s * 1000) as f64);
                // Minimal: without its first segment the window would be too short.
                // (Sums of f64 durations in another order differ in the last bits: allow that.)
                let without_first = total - segs[r.start].duration;
                prop_assert!(without_first * 1000.0 < (window_s * 1000) as f64 + 1e-6);
            }
        }

        #[test]
        fn time_shift_keeps_segments_inside_the_range(
            segs in arb_segments(), a in 0i64..2_000_000, len in 1i64..86_400_000
        ) {
            let start = 1_700_000_000_000 + a;
            let end = start + len;
            let spec = WindowSpec { now_ms: i64::MAX / 2, window_ms: 60_000, delay_ms: 0, start_ms: Some(start), end_ms: Some(end) };
            let (r, kind) = select(&segs, &spec);
            prop_assert_eq!(kind, WindowKind::Vod);
            let w = &segs[r.clone()];
            for s in w {
                prop_assert!(s.pdt_ms.unwrap() >= start && s.end_ms().unwrap() <= end);
            }
            // Contiguous sequences, monotonic discontinuity numbers.
            for pair in w.windows(2) {
                prop_assert_eq!(pair[1].sequence, pair[0].sequence + 1);
                prop_assert!(pair[1].disc_seq >= pair[0].disc_seq);
            }
            // Maximal at the front: the segment before the range starts before `start`.
            if r.start > 0 && !w.is_empty() {
                prop_assert!(segs[r.start - 1].pdt_ms.unwrap() < start);
            }
        }
    }
}

#[cfg(test)]
mod query {
    use super::*;

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn view_queries_read_back() {
        let live = ViewQuery {
            spec: WindowSpec {
                now_ms: 5,
                window_ms: 60_000,
                delay_ms: 0,
                start_ms: None,
                end_ms: None,
            },
            rotation_seconds: 60,
        };
        assert_eq!(live.to_query(), "window=60000&delay=0&rotation=60");
        let back = ViewQuery::parse(&live.to_query()).unwrap().unwrap();
        assert_eq!(back.spec.window_ms, 60_000);
        assert_eq!(back.rotation_seconds, 60);
        let shifted = ViewQuery {
            spec: WindowSpec {
                now_ms: 9,
                window_ms: 1,
                delay_ms: 2,
                start_ms: Some(-3),
                end_ms: Some(4),
            },
            rotation_seconds: 0,
        };
        assert_eq!(ViewQuery::parse(&shifted.to_query()), Ok(Some(shifted)));
        assert_eq!(ViewQuery::parse(""), Ok(None));
        assert!(ViewQuery::parse("window=x").is_err());
        assert!(ViewQuery::parse("nope=1").is_err());
        assert!(ViewQuery::parse("window=-1").is_err());
        assert_eq!(key_period(59_999, 60), 0);
        assert_eq!(key_period(60_000, 60), 1);
    }
}
