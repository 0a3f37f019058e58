//! A live channel for browser tests: the store sidecar, ffmpeg pushing two renditions to input 1
//! for a while (MPEG-TS or fMP4), and the test host running the real `.wasm` with a plugin
//! configuration and the player routes, once three segments are in the store.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

pub use edgepack_test_support::sidecar;

use std::time::Duration;

use edgepack_host::{DirectResponse, HostOptions, RunningHost, start};
use edgepack_test_support::artifacts;

/// What a live test holds; dropping it stops the encoder and the sidecar.
pub struct Live {
    pub host: RunningHost,
    pub store: sidecar::Sidecar,
    _encoder: sidecar::Encoder,
    _dir: tempfile::TempDir,
}

/// Starts the channel: `seconds` of live encoding (`fmp4` segments or MPEG-TS), and the host
/// with `config` (plugin JSON) and `routes`.
pub fn live(seconds: u32, fmp4: bool, config: &str, routes: Vec<DirectResponse>) -> Live {
    with_encoder(
        |ingest| {
            sidecar::Encoder::start(sidecar::EncoderSpec {
                two_renditions: true,
                fmp4,
                ..sidecar::EncoderSpec::digest(ingest, 1, seconds)
            })
        },
        config,
        routes,
    )
}

/// [`live`] of a channel with alternative audio: one video rendition and English and French
/// audio renditions in one group ([`sidecar::Encoder::start_languages`]).
pub fn live_languages(seconds: u32, config: &str, routes: Vec<DirectResponse>) -> Live {
    with_encoder(
        |ingest| sidecar::Encoder::start_languages(ingest, seconds),
        config,
        routes,
    )
}

/// [`live`] of a channel with English WebVTT subtitles ([`sidecar::Encoder::start_subtitles`]).
/// The video as MPEG-TS or (`fmp4`) fMP4 segments.
pub fn live_subtitles(seconds: u32, fmp4: bool, config: &str, routes: Vec<DirectResponse>) -> Live {
    with_encoder(
        |ingest| sidecar::Encoder::start_subtitles_as(ingest, seconds, fmp4),
        config,
        routes,
    )
}

pub fn with_encoder(
    encoder: impl FnOnce(std::net::SocketAddr) -> sidecar::Encoder,
    config: &str,
    routes: Vec<DirectResponse>,
) -> Live {
    let dir = tempfile::tempdir().unwrap();
    let store = sidecar::Sidecar::start(&sidecar::write_config(dir.path(), "", ""));
    let encoder = encoder(store.ingest);
    sidecar::wait_for(Duration::from_secs(30), "three segments", || {
        (store.status()["renditions"][0]["segments"].as_u64()? >= 3).then_some(())
    });
    let mut o = HostOptions::new(
        artifacts::filter_wasm().unwrap(),
        config.as_bytes().to_vec(),
    );
    o.clusters = vec![("edgepack_store".into(), store.internal)];
    o.direct_responses = routes;
    Live {
        host: start(o).unwrap(),
        store,
        _encoder: encoder,
        _dir: dir,
    }
}

impl Live {
    /// Checks that the filter never trapped, then stops the sidecar cleanly.
    pub fn finish(mut self) {
        assert_eq!(self.host.traps(), 0);
        self.store.stop();
    }
}
