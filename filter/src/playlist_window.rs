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
                map: None,
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

#[cfg(all(test, not(target_arch = "wasm32")))]
mod properties {
    use super::*;
    use proptest::prelude::*;

    /// Segments with random durations, gaps in PDT and discontinuities, as a store would list.
    fn arb_segments() -> impl Strategy<Value = Vec<Segment>> {
        prop::collection::vec((500u32..10_000, 0u32..3, any::<bool>()), 0..200).prop_map(|v| {
            let mut t = 1_700_000_000_000i64;
            let mut disc = 0;
            v.into_iter()
                .enumerate()
                .map(|(i, (dur_ms, gap_s, d))| {
                    let discontinuity = d && i % 7 == 0;
                    if discontinuity {
                        disc += 1;
                        t += i64::from(gap_s) * 1000;
                    }
                    let s = Segment {
                        sequence: 1000 + i as u64,
                        duration: f64::from(dur_ms) / 1000.0,
                        duration_text: format!("{:.3}", f64::from(dur_ms) / 1000.0),
                        title: String::new(),
                        pdt_ms: Some(t),
                        discontinuity,
                        disc_seq: disc,
                        source_key: None,
                        map: None,
                        tags: vec![],
                        uri: format!("{}.ts", 1000 + i),
                    };
                    t += i64::from(dur_ms);
                    s
                })
                .collect()
        })
    }

    proptest! {
        #[test]
        fn live_window_is_the_newest_contiguous_run_covering_the_window(
            segs in arb_segments(), window_s in 1i64..600
        ) {
            let spec = WindowSpec { now_ms: i64::MAX / 2, window_ms: window_s * 1000, delay_ms: 0, start_ms: None, end_ms: None };
            let (r, kind) = select(&segs, &spec);
            prop_assert_eq!(kind, Kind::Live);
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
            prop_assert_eq!(kind, Kind::Vod);
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

        #[test]
        fn written_playlists_number_and_sum_correctly(segs in arb_segments(), window_s in 1i64..600) {
            let pl = crate::media_playlist::MediaPlaylist {
                version: 3,
                target_duration: 10,
                media_sequence: 1000,
                segments: segs.clone(),
                ..Default::default()
            };
            let settings = crate::config::Settings::from_json(br#"{"store":{"cluster":"s"},"channels":{"c":{"endpoints":{"e":{"format":"hls"}}}}}"#).unwrap();
            let ep = &settings.channels["c"]["e"];
            let spec = WindowSpec { now_ms: i64::MAX / 2, window_ms: window_s * 1000, delay_ms: 0, start_ms: None, end_ms: None };
            let (r, kind) = select(&segs, &spec);
            let text = crate::media_rewrite::write(&pl, r.clone(), kind, ep, 0).unwrap();
            let reparsed = crate::media_playlist::parse(text.as_bytes()).unwrap();
            prop_assert_eq!(reparsed.segments.len(), r.len());
            if let Some(first) = segs.get(r.start).filter(|_| !r.is_empty()) {
                prop_assert_eq!(reparsed.media_sequence, first.sequence);
                prop_assert_eq!(reparsed.discontinuity_sequence, first.disc_seq);
            }
            for (a, b) in reparsed.segments.iter().zip(&segs[r.clone()]) {
                prop_assert_eq!(a.sequence, b.sequence);
                prop_assert_eq!(&a.duration_text, &b.duration_text);
                prop_assert_eq!(a.disc_seq, b.disc_seq);
            }
            let sum_in: f64 = segs[r.clone()].iter().map(|s| s.duration).sum();
            let sum_out: f64 = reparsed.segments.iter().map(|s| s.duration).sum();
            prop_assert!((sum_in - sum_out).abs() < 1e-6);
        }
    }
}
