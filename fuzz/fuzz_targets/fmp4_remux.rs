//! fMP4 (CMAF) ingest → CMAF, as the filter does for DASH, Smooth Streaming and encrypted cmaf
//! endpoints: the input is a two-byte length, an initialization segment of that length, then a
//! media segment. Both are read back into tracks and samples (`moov`, `trex`, edit lists, `avcC`,
//! `esds`, `moof`/`traf`/`trun`, sample data) and written again clear and under cenc and cbcs,
//! every track selection. Properties: no panic; what is written re-parses (boxes fill their
//! parents, every `trun` points inside `mdat`, `senc` counts the `trun`'s samples); encryption
//! keeps the sample count.
#![no_main]

use edgepack_filter::cmaf::cenc::{Protection, Scheme};
use edgepack_filter::cmaf::{Ingest, Select, fmp4, remux_select};
use edgepack_fuzz::{check_fragment, check_init};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((head, rest)) = data.split_first_chunk::<2>() else {
        return;
    };
    let n = usize::from(u16::from_be_bytes(*head)).min(rest.len());
    let (init, segment) = rest.split_at(n);
    let _ = fmp4::read_init(init);
    for select in [Select::All, Select::Video, Select::Audio] {
        let _ = fmp4::described(init, select);
        let ingest = Ingest::Fmp4 { init, segment };
        let Ok(clear) = remux_select(ingest, 7, Some(edgepack_fuzz::T0), None, select) else {
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
            let sealed = match remux_select(ingest, 7, Some(edgepack_fuzz::T0), Some(&p), select) {
                Ok(s) => s,
                Err(e) => panic!("{scheme:?} refused what clear took: {e}"),
            };
            let n = check_fragment(&sealed.fragment)
                .unwrap_or_else(|e| panic!("{scheme:?} fragment: {e}"));
            assert_eq!(n, samples, "{scheme:?} changed the sample count");
        }
    }
});
