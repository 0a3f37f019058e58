//! The store contract: what the store sidecar and the filter agree on, written once.
//!
//! - [`MediaPlaylist`]: the one media playlist model — an encoder's upload as the store reads
//!   it ([`parse_ingest`]), the store's normalized view as the store writes it
//!   ([`MediaPlaylist::write_to`]) and the filter reads it ([`parse`]). Unknown tags are kept
//!   verbatim, `EXTINF` durations keep their exact text, program date times are epoch ms with
//!   one rule for a segment without its own ([`extrapolate_pdt_ms`]).
//! - [`window`]: which segments a request sees (live window, delay, time shift): the store cuts
//!   its answer with it and the filter shows the same range.
//! - [`api`]: the store's internal API (`/store/v1/…`) — one builder per path, one parser for
//!   them all ([`StorePath`]), the header names and content types.
//!
//! The crate does no I/O (bytes and strings in, structs and strings out; it never reads a clock)
//! and builds for `wasm32-wasip1`, `wasm32-unknown-unknown` and natively. Every fallible
//! function returns a `Result`: nothing here panics on any input, so the filter can call it
//! inside Envoy.

pub mod api;
pub mod cues;
mod parse;
mod pdt;
mod playlist;
pub mod scte35;
pub mod scte35_ts;
#[cfg(any(feature = "strategies", all(test, not(target_arch = "wasm32"))))]
pub mod strategies;
pub mod window;

pub use api::StorePath;
pub use parse::{
    LineError, MAX_SEGMENT_DURATION, MAX_SEQUENCE, MAX_TARGET_DURATION, PlaylistError,
    is_multivariant, parse, parse_ingest, parse_str,
};
pub use pdt::{duration_ms, extrapolate_pdt_ms, format_pdt, parse_pdt, write_pdt};
pub use playlist::{
    HEADER_TAGS, MediaPlaylist, PlaylistType, REGENERATED, RunStart, Segment, ViewContext,
    is_regenerated,
};
