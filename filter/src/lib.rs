//! edgepack's Proxy-Wasm filter: just-in-time HLS packaging inside Envoy.
//!
//! This crate is the sans-IO core: every decision and transformation is plain Rust with no
//! proxy-wasm call in it, tested natively, under wasm (`wasm-bindgen-test`) and benchmarked.
//! [`packager::plan`] turns a viewer's request into an answer or a store fetch;
//! [`packager::on_store_answer`] turns the store's answer into the viewer's (or the next fetch).
//! The `shell` module (built only for `wasm32-wasip1`, the Envoy artifact) is the one place that
//! calls proxy-wasm.
//!
//! Modules, one job each: [`config`] (plugin JSON → validated endpoints), [`route`] (egress
//! paths: parsed and built), [`query`] (MediaPackage query parameters), [`access`] (CDN
//! identifier, IP allowlist), [`media_playlist`] (the store's playlist, read through the store
//! contract), [`playlist_window`] (live window, delay, time shift), [`key_periods`] (key periods
//! and runs, shared by HLS and DASH), [`media_rewrite`] and [`multivariant`] (writing HLS
//! playlists), [`dash`] (writing MPDs), [`cmaf`] (MPEG-TS → CMAF, common encryption),
//! [`aes128`] (AES-128 CBC and CTR, vector-permute AES on wasm SIMD128), [`crypto`] (HLS
//! encryption, keys, tokens), [`http_policy`] (CORS, cache lifetimes, error bodies),
//! [`packager`] (request → plan → answer, one module per kind of answer), [`webvtt`]
//! (subtitle segments' timestamp mapping).

pub mod access;
pub mod access_log;
pub mod ad_markers;
pub mod aes128;
pub mod cmaf;
pub mod config;
pub mod crypto;
pub mod dash;
pub mod endpoint_errors;
pub mod error;
pub mod http_policy;
pub mod key_periods;
pub mod media_playlist;
pub mod media_rewrite;
pub mod mss;
pub mod multivariant;
pub mod packager;
pub mod playlist_window;
pub mod query;
pub mod response;
pub mod route;
pub mod segment_cache;
#[cfg(all(target_arch = "wasm32", target_os = "wasi"))]
pub mod shell;
pub mod store_cache;
pub mod webvtt;

pub use config::Settings;
pub use error::FilterError;
pub use packager::{Fetch, Job, Plan, Request, Step, StoreAnswer, on_store_answer, plan, respond};
pub use response::Response;
