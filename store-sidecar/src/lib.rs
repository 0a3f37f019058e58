//! `edgepack-store`: the store sidecar. Encoders push live HLS to it (WebDAV/HTTP PUT with Digest
//! or Basic credentials, two redundant inputs per channel); the edgepack filter in Envoy reads a
//! normalized view of every channel from it.
//!
//! The binary (`main.rs`) is a thin CLI over this library: load [`Settings`], open an [`App`],
//! serve [`ingest_router`] and [`internal_router`], run [`housekeeping`].

pub mod auth;
pub mod bucket;
pub mod channel;
pub mod config;
pub mod disk;
pub mod ingest_path;
pub mod media_kind;
pub mod metrics;
pub mod server;
pub mod source_playlist;

pub use config::Settings;
pub use server::{
    ApiError, App, StartupError, housekeeping, ingest_router, internal_router, serve,
};
