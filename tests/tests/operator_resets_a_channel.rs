//! An operator resets a live channel (#14 §3, MediaPackage's `ResetChannelState`): Debian's
//! ffmpeg pushes to the store sidecar, viewers play through the real `edgepack_filter.wasm` in
//! the proxy-wasm test host; the admin request clears the history; the encoder restarts from 0
//! and the same edge, not restarted, serves what comes next — after the old numbers, decoded
//! whole by ffmpeg as the player.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

use std::time::Duration;

use edgepack_test_support::{player, sidecar};
use sidecar::{
    Encoder, EncoderSpec, Sidecar, basic, get, raw, segment_uris, wait_for, write_config,
};

const CONFIG: &[u8] = br#"{ "store": { "cluster": "edgepack_store" },
  "channels": { "news": { "endpoints": { "hls": { "format": "hls" } } } } }"#;

fn push(sc: &Sidecar, tone_hz: u32) {
    Encoder::start(EncoderSpec {
        tone_hz,
        ..EncoderSpec::digest(sc.ingest, 1, 6)
    })
    .wait(Duration::from_secs(60));
}

#[test]
fn after_a_reset_the_edge_serves_what_comes_next() {
    let dir = tempfile::tempdir().unwrap();
    let admin = "\n[admin]\nusername = \"ops\"\npassword = \"admin-pw\"\n";
    let mut sc = Sidecar::start(&write_config(dir.path(), admin, ""));
    let h = edgepack_tests::edge(sc.internal, CONFIG, 2);
    let playlist = format!("http://{}/out/v1/news/hls/stream_0/index.m3u8", h.addr);
    let uris = || segment_uris(&get(h.addr, "/out/v1/news/hls/stream_0/index.m3u8").text());

    push(&sc, 440);
    let old = wait_for(Duration::from_secs(10), "the first run at the edge", || {
        let u = uris();
        (u.len() == 3).then_some(u)
    });

    let r = raw(
        sc.ingest,
        format!(
            "POST /admin/v1/channels/news/reset HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            basic("ops", "admin-pw")
        )
        .as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());

    // Within the edge's playlist cache the old run leaves its playlists.
    wait_for(Duration::from_secs(10), "the reset at the edge", || {
        uris().is_empty().then_some(())
    });

    // The encoder restarts from 0: the edge, as it is, serves the new run under new URLs.
    push(&sc, 660);
    let new = wait_for(
        Duration::from_secs(10),
        "the second run at the edge",
        || {
            let u = uris();
            (u.len() == 3).then_some(u)
        },
    );
    assert!(new.iter().all(|u| !old.contains(u)), "{old:?} then {new:?}");
    // (The encoder stopped: ffmpeg follows the live playlist, so it plays less than all of it.)
    let frames = player::decoded_live(&playlist, "0:v", 4).unwrap();
    assert_eq!(
        frames[&0].len(),
        100,
        "4 s at 25 fps from the new run's first segment"
    );
    sc.stop();
}
