//! Helpers shared by edgepack's tests and benchmarks: the artifacts they load, the real sidecar
//! and ffmpeg encoders to drive, ffmpeg as the player, a ClearKey client, benchmark inputs and
//! `make bench`'s summary rows.

pub mod artifacts;
pub mod clearkey;
pub mod fixtures;
pub mod player;
pub mod sidecar;
pub mod summary;
