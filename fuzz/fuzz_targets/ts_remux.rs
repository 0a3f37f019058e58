//! MPEG-TS → CMAF, as the filter does for cmaf and DASH endpoints: demux (PAT/PMT/PES, ADTS,
//! H.264), then remux clear and under cenc and cbcs, every track selection; and each single
//! track as a Smooth Streaming fragment, clear and PIFF-encrypted. Properties: every
//! initialization segment and fragment re-parses (boxes fill their parents, every `trun` points
//! inside `mdat`, `senc` counts the `trun`'s samples), and encryption keeps the sample count and
//! the fragment's size.
#![no_main]

use edgepack_filter::cmaf::cenc::{Protection, Scheme};
use edgepack_filter::cmaf::smooth::{FragmentTime, fragment};
use edgepack_filter::cmaf::{Ingest, Select, tracks_and_runs, ts};
use edgepack_fuzz::{check_remuxes, check_smooth_fragment};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = ts::demux(data);
    for select in [Select::All, Select::Video, Select::Audio] {
        if check_remuxes(Ingest::Ts(data), select).is_none() {
            continue;
        }
        if select == Select::All {
            continue;
        }
        // Smooth Streaming: the track's run rescaled to 10 MHz, clear and under PIFF cenc.
        let at = FragmentTime {
            time: u64::MAX - 5,
            duration: 20_000_000,
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
