//! Where players start (#14 §3, `EXT-X-START`): Debian's ffmpeg pushes a live stream to the store
//! sidecar; the real `edgepack_filter.wasm` in the proxy-wasm test host answers an endpoint whose
//! `start_tag` puts players 4 s back from the live edge, and ffmpeg as the player (honouring the
//! tag) starts on exactly that segment.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

use std::time::Duration;

use edgepack_test_support::{player, sidecar};
use sidecar::{Encoder, EncoderSpec, Sidecar, get, segment_uris, wait_for, write_config};

const CONFIG: &[u8] = br#"{ "store": { "cluster": "edgepack_store" },
  "channels": { "news": { "endpoints": {
    "hls": { "format": "hls" },
    "back4": { "format": "hls", "start_tag": { "time_offset": -4 } } } } } }"#;

#[test]
fn a_player_starts_where_the_start_tag_says() {
    let dir = tempfile::tempdir().unwrap();
    let mut sc = Sidecar::start(&write_config(dir.path(), "", ""));
    let h = edgepack_tests::edge(sc.internal, CONFIG, 1);
    Encoder::start(EncoderSpec::digest(sc.ingest, 1, 8)).wait(Duration::from_secs(60));
    let media = "/out/v1/news/back4/stream_0/index.m3u8";
    let uris = wait_for(Duration::from_secs(10), "4 segments at the edge", || {
        let u = segment_uris(&get(h.addr, media).text());
        (u.len() == 4).then_some(u)
    });
    let text = get(h.addr, media).text();
    assert_eq!(text.matches("#EXT-X-START:").count(), 1, "{text}");
    assert!(text.contains("#EXT-X-START:TIME-OFFSET=-4.000\n"), "{text}");
    let multivariant = get(h.addr, "/out/v1/news/back4/index.m3u8").text();
    assert!(
        multivariant.starts_with("#EXTM3U\n#EXT-X-START:TIME-OFFSET=-4.000\n"),
        "{multivariant}"
    );
    assert!(
        !get(h.addr, "/out/v1/news/hls/stream_0/index.m3u8")
            .text()
            .contains("#EXT-X-START"),
        "an endpoint without start_tag (and an encoder without the tag) has none"
    );

    // Four 2 s segments, 4 s back from the end: the third. ffmpeg starts there; its first
    // second is that segment's first 25 frames.
    let started =
        player::decoded_live_from_start_tag(&format!("http://{}{media}", h.addr), "0:v", 1)
            .unwrap();
    let third = player::decoded_frames(&format!(
        "http://{}/out/v1/news/back4/stream_0/{}",
        h.addr, uris[2]
    ))
    .unwrap();
    assert_eq!(started[&0].len(), 25, "1 s at 25 fps");
    assert_eq!(started[&0][..], third[&0][..25], "the start tag's segment");
    let first = player::decoded_frames(&format!(
        "http://{}/out/v1/news/back4/stream_0/{}",
        h.addr, uris[0]
    ))
    .unwrap();
    assert_ne!(
        started[&0][..],
        first[&0][..25],
        "not the window's first segment"
    );
    sc.stop();
}
