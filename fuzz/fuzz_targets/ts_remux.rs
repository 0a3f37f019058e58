//! MPEG-TS → CMAF, as the filter does for cmaf and DASH endpoints: demux (PAT/PMT/PES, ADTS,
//! H.264), then remux clear and under cenc and cbcs, every track selection; and each single
//! track as a Smooth Streaming fragment, clear and PIFF-encrypted. Properties: every
//! initialization segment and fragment re-parses (boxes fill their parents, every `trun` points
//! inside `mdat`, `senc` counts the `trun`'s samples), and encryption keeps the sample count and
//! the fragment's size.
#![no_main]

use edgepack_filter::cmaf::cenc::{Protection, Scheme};
use edgepack_filter::cmaf::smooth::{FragmentTime, fragment};
use edgepack_filter::cmaf::{Select, remux_select, tracks_and_runs, ts};
use edgepack_fuzz::{check_fragment, check_init, check_smooth_fragment};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = ts::demux(data);
    for select in [Select::All, Select::Video, Select::Audio] {
        let Ok(clear) = remux_select(data, 7, Some(edgepack_fuzz::T0), None, select) else {
            continue;
        };
        let samples = check_fragment(&clear.fragment).unwrap_or_else(|e| panic!("fragment: {e}"));
        let tracks = check_init(&clear.init_segment()).unwrap_or_else(|e| panic!("init: {e}"));
        assert_eq!(tracks, clear.tracks.len());
        for scheme in [Scheme::Cenc, Scheme::Cbcs] {
            let p = Protection {
                scheme,
                key: [7; 16],
                kid: [9; 16],
                iv_base: u64::MAX - 3,
                constant_iv: [1; 16],
            };
            let sealed = match remux_select(data, 7, Some(edgepack_fuzz::T0), Some(&p), select) {
                Ok(s) => s,
                Err(e) => panic!("{scheme:?} refused what clear took: {e}"),
            };
            let n = check_fragment(&sealed.fragment)
                .unwrap_or_else(|e| panic!("{scheme:?} fragment: {e}"));
            assert_eq!(n, samples, "{scheme:?} changed the sample count");
            check_init(&sealed.init_segment()).unwrap_or_else(|e| panic!("{scheme:?} init: {e}"));
        }
        if select == Select::All {
            continue;
        }
        // Smooth Streaming: the track's run rescaled to 10 MHz, clear and under PIFF cenc.
        let at = FragmentTime {
            time: u64::MAX - 5,
            duration: 20_000_000,
            announce_next: true,
        };
        let cenc = Protection {
            scheme: Scheme::Cenc,
            key: [7; 16],
            kid: [9; 16],
            iv_base: 3,
            constant_iv: [0; 16],
        };
        for protection in [None, Some(&cenc)] {
            let (tracks, runs) = tracks_and_runs(data, Some(edgepack_fuzz::T0), protection, select)
                .unwrap_or_else(|e| panic!("tracks refused what the remux took: {e}"));
            for (t, r) in tracks.iter().zip(&runs) {
                let f = fragment(8, r, t.timescale, at);
                let n = check_smooth_fragment(&f).unwrap_or_else(|e| panic!("smooth: {e}"));
                assert_eq!(n, r.samples.len());
            }
        }
    }
});
