//! edgepack's end-to-end tests (`tests/*.rs`, each named for the user story it proves) run the
//! real `edgepack_filter.wasm` in the test host (crate `edgepack-host`) with the real sidecar and
//! ffmpeg (crate `edgepack-test-support`). This library holds only what is theirs alone: the
//! browser driver for the pages and scripts in `browser/`.

pub mod browser;
