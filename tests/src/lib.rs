//! edgepack's proxy-wasm test host and the end-to-end tests.
//!
//! Not implemented yet: the test host and the end-to-end tests with the filter are issue #4.
//! The store sidecar's own end-to-end tests with a real ffmpeg encoder live in
//! `store-sidecar/tests/`.
