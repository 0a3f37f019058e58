//! The store's media playlist (what the filter reads on every playlist request): parse, and
//! - write → parse gives the same model (the store writes with the code the filter reads with);
//! - the filter's reader takes what the contract's reader takes;
//! - a window over it is a contiguous, in-bounds run of its segments, live or time-shifted.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use edgepack_store_api::window::{WindowSpec, select};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (playlist, spec) = split(data);
    let Ok(parsed) = edgepack_store_api::parse(playlist) else {
        return;
    };
    let mut written = String::new();
    parsed.write_to(&mut written);
    let again = match edgepack_store_api::parse_str(&written) {
        Ok(p) => p,
        Err(e) => panic!("the store cannot read what it wrote: {e}\n{written}"),
    };
    assert_eq!(parsed, again, "write → parse changed the model:\n{written}");
    assert!(
        edgepack_filter::media_playlist::parse(playlist).is_ok(),
        "the filter refuses what the store contract accepts"
    );
    let Some(spec) = spec else { return };
    let (range, _) = select(&parsed.segments, &spec);
    assert!(range.start <= range.end && range.end <= parsed.segments.len());
    for pair in parsed.segments[range].windows(2) {
        assert_eq!(
            pair[0].sequence + 1,
            pair[1].sequence,
            "a hole in the window"
        );
    }
});

/// The playlist, then (after a NUL, which no playlist contains) the bytes of a window.
fn split(data: &[u8]) -> (&[u8], Option<WindowSpec>) {
    let Some(nul) = data.iter().position(|b| *b == 0) else {
        return (data, None);
    };
    let mut u = Unstructured::new(&data[nul + 1..]);
    let spec = (|| -> arbitrary::Result<WindowSpec> {
        Ok(WindowSpec {
            now_ms: i64::arbitrary(&mut u)?,
            window_ms: u32::arbitrary(&mut u)?.into(),
            delay_ms: u32::arbitrary(&mut u)?.into(),
            start_ms: Option::<i64>::arbitrary(&mut u)?,
            end_ms: Option::<i64>::arbitrary(&mut u)?,
        })
    })();
    (&data[..nul], spec.ok())
}
