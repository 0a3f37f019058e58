//! proptest strategies for timelines, shared by this crate's tests and the filter's (feature
//! `strategies`; never in a build that ships).

use proptest::prelude::*;

use crate::Segment;

/// Segments with random durations, gaps in PDT and discontinuities, as a store would list.
pub fn timeline() -> impl Strategy<Value = Vec<Segment<'static>>> {
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
                    duration_text: format!("{:.3}", f64::from(dur_ms) / 1000.0).into(),
                    pdt_ms: Some(t),
                    pdt_tagged: true,
                    discontinuity,
                    disc_seq: disc,
                    uri: format!("{}.ts", 1000 + i).into(),
                    ..Default::default()
                };
                t += i64::from(dur_ms);
                s
            })
            .collect()
    })
}
