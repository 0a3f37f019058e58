//! ADTS (AAC in MPEG-TS) as the remuxer reads it. Properties: the frames are raw AAC inside the
//! input, the AudioSpecificConfig says the sample rate index and channels the header did, and
//! the codec string is `mp4a.40.{object type}`.
#![no_main]

use edgepack_filter::cmaf::adts::frames;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok((config, frames)) = frames(data) else {
        return;
    };
    let range = data.as_ptr_range();
    for f in &frames {
        assert!(
            f.is_empty() || range.contains(&f.as_ptr()),
            "a frame outside the input"
        );
    }
    let asc = config.audio_specific_config();
    assert_eq!(asc[0] >> 3, config.object_type);
    assert_eq!(((asc[0] & 7) << 1) | (asc[1] >> 7), config.rate_index);
    assert_eq!((asc[1] >> 3) & 0xf, config.channels);
    assert_eq!(config.codec(), format!("mp4a.40.{}", config.object_type));
});
