//! edgepack's Proxy-Wasm filter: just-in-time HLS packaging inside Envoy.
//!
//! This crate is the sans-IO core: every decision and transformation is plain Rust with no
//! proxy-wasm call in it, tested natively, under wasm (`wasm-bindgen-test`) and benchmarked.
//! [`packager::plan`] turns a viewer's request into an answer or a store fetch;
//! [`packager::respond`] turns the store's answer into the viewer's. The `shell` module (built
//! only for `wasm32-wasip1`, the Envoy artifact) is the one place that calls proxy-wasm.
//!
//! Modules, one job each: [`config`] (plugin JSON), [`route`] (egress paths), [`query`]
//! (MediaPackage query parameters), [`access`] (CDN identifier, IP allowlist),
//! [`media_playlist`] (reading the store's playlist), [`playlist_window`] (live window, delay,
//! time shift), [`media_rewrite`] and [`multivariant`] (writing playlists), [`crypto`] (AES-128,
//! keys, tokens).

pub mod access;
pub mod cmaf;
pub mod config;
pub mod crypto;
pub mod dash;
pub mod error;
pub mod media_playlist;
pub mod media_rewrite;
pub mod multivariant;
pub mod packager;
pub mod playlist_window;
pub mod query;
pub mod response;
pub mod route;
#[cfg(all(target_arch = "wasm32", target_os = "wasi"))]
pub mod shell;

pub use config::Settings;
pub use error::FilterError;
pub use packager::{Fetch, Job, Plan, Request, StoreAnswer, plan, respond};
pub use response::Response;
