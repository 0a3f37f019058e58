//! fMP4 (CMAF) ingest → CMAF, as the filter does for DASH, Smooth Streaming and encrypted cmaf
//! endpoints: the input is a two-byte length, an initialization segment of that length, then a
//! media segment. Both are read back into tracks and samples (`moov`, `trex`, edit lists, `avcC`,
//! `esds`, `moof`/`traf`/`trun`, sample data) and written again clear and under cenc and cbcs,
//! every track selection. Properties: no panic; what is written re-parses (boxes fill their
//! parents, every `trun` points inside `mdat`, `senc` counts the `trun`'s samples); encryption
//! keeps the sample count.
#![no_main]

use edgepack_filter::cmaf::{Ingest, Select, fmp4};
use edgepack_fuzz::check_remuxes;
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
        check_remuxes(Ingest::Fmp4 { init, segment }, select);
    }
});
