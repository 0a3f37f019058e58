//! Helpers shared by edgepack's tests and benchmarks: the artifacts they load, the real sidecar
//! and ffmpeg encoders to drive, ffmpeg as the player, a ClearKey client, media for long fabricated
//! histories, benchmark inputs and `make bench`'s summary rows.

pub mod artifacts;
pub mod bucket;
pub mod cea608;
pub mod clearkey;
pub mod fixtures;
pub mod history;
pub mod player;
pub mod sidecar;
pub mod summary;
