//! H.264 as the remuxer reads it: Annex B NAL units, access units to length-prefixed samples,
//! SPS/PPS to an `avcC` and a codec string. Properties: NAL units lie inside the input, a sample
//! is the NAL units each behind its 4-byte length, a parsed SPS gives an `avcC` that starts
//! with version 1 and the SPS's profile, compatibility and level.
#![no_main]

use edgepack_filter::cmaf::h264::{nal_type, nal_units, parse_sps, sample_data};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let nals = nal_units(data);
    let range = data.as_ptr_range();
    for n in &nals {
        assert!(
            n.is_empty() || range.contains(&n.as_ptr()),
            "a NAL unit outside the input"
        );
        let _ = nal_type(n);
    }
    let (sample, _sync) = sample_data(&nals);
    let mut at = 0;
    while at < sample.len() {
        assert!(at + 4 <= sample.len(), "a truncated length prefix");
        let len = u32::from_be_bytes([sample[at], sample[at + 1], sample[at + 2], sample[at + 3]]);
        at += 4 + len as usize;
    }
    assert_eq!(at, sample.len(), "lengths do not add up to the sample");
    let sps = nals
        .iter()
        .copied()
        .find(|n| nal_type(n) == 7)
        .unwrap_or(data);
    let pps = nals
        .iter()
        .copied()
        .find(|n| nal_type(n) == 8)
        .unwrap_or(&[0x68, 0xce]);
    if let Ok(c) = parse_sps(sps, pps) {
        let avcc = c.avcc();
        assert_eq!(avcc[0], 1);
        assert_eq!(&avcc[1..4], &[c.profile, c.compatibility, c.level]);
        assert!(c.codec().starts_with("avc1."));
    }
});
