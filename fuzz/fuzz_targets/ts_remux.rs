//! MPEG-TS → CMAF, as the filter does for cmaf and DASH endpoints: demux (PAT/PMT/PES, ADTS,
//! H.264), then remux clear and under cenc and cbcs, every track selection. Properties: every
//! initialization segment and fragment re-parses (boxes fill their parents, every `trun` points
//! inside `mdat`, `senc` counts the `trun`'s samples), and encryption keeps the sample count and
//! the fragment's size.
#![no_main]

use edgepack_filter::cmaf::cenc::{Protection, Scheme};
use edgepack_filter::cmaf::{Select, remux_select, ts};
use edgepack_fuzz::{check_fragment, check_init};
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
    }
});
