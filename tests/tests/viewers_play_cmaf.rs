//! User story: viewers get CMAF (HLS with fMP4 segments) whatever the encoder pushed, through
//! the real `.wasm` in the test host.
//! - fMP4 ingest (`-hls_segment_type fmp4`): media playlists with `EXT-X-MAP`, initialization
//!   segments byte-identical to the encoder's, `.m4s` segments; ffmpeg decodes every frame of
//!   both renditions, and the same from an AES-128 endpoint (segments encrypted whole).
//! - MPEG-TS ingest: the filter repackages each segment at the edge; ffmpeg decodes exactly the
//!   frames (same MD5s) it decodes from the same channel's plain HLS (TS) endpoint.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

use std::path::Path;
use std::time::Duration;

use edgepack_host::{HostOptions, RunningHost, start};
use edgepack_test_support::player::decoded_frames;
use edgepack_test_support::{artifacts, sidecar};
use sidecar::get;

const CONFIG: &str = r#"{ "store": { "cluster": "edgepack_store" },
  "channels": { "news": { "endpoints": {
    "cmaf": { "format": "cmaf", "manifest_window_seconds": 30 },
    "hls": { "format": "hls", "manifest_window_seconds": 30 },
    "secure": { "format": "hls",
      "encryption": { "method": "aes-128", "key": { "derived": { "secret": "0123456789abcdef0123" } },
                      "key_token": { "secret": "tok-0123456789abcdef" } } } } } } }"#;

/// 8 s of two renditions pushed (fMP4 or TS, a local copy in `local`), the host in front; the
/// query range that covers all of it as a VOD playlist.
fn served(dir: &Path, fmp4: bool) -> (sidecar::Sidecar, RunningHost, String) {
    let sc = sidecar::Sidecar::start(&sidecar::write_config(dir, "", ""));
    sidecar::Encoder::start(sidecar::EncoderSpec {
        two_renditions: true,
        fmp4,
        local_copy: Some(&dir.join("local")),
        ..sidecar::EncoderSpec::digest(sc.ingest, 1, 8)
    })
    .wait(Duration::from_secs(60));
    let mut o = HostOptions::new(
        artifacts::filter_wasm().unwrap(),
        CONFIG.as_bytes().to_vec(),
    );
    o.clusters = vec![("edgepack_store".into(), sc.internal)];
    let h = start(o).unwrap();
    let range = sidecar::whole_history_range(&sc.status());
    (sc, h, range)
}

/// The media playlist of `endpoint`/`rendition` and the URI of its (only) initialization segment.
fn playlist_and_map(
    h: &RunningHost,
    endpoint: &str,
    rendition: &str,
    range: &str,
) -> (String, String) {
    let pl = get(
        h.addr,
        &format!("/out/v1/news/{endpoint}/{rendition}/index.m3u8?{range}"),
    );
    assert_eq!(pl.status, 200, "{}", pl.text());
    let text = pl.text();
    let maps: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("#EXT-X-MAP:URI=\""))
        .filter_map(|l| l.strip_suffix('"'))
        .collect();
    assert_eq!(maps.len(), 1, "one initialization segment: {text}");
    let map = maps[0].to_owned();
    (text, map)
}

#[test]
fn cmaf_endpoint_plays_every_frame_of_fmp4_ingest() {
    let dir = tempfile::tempdir().unwrap();
    let (mut sc, h, range) = served(dir.path(), true);
    for v in 0..2 {
        let (text, map) = playlist_and_map(&h, "cmaf", &format!("stream_{v}"), &range);
        assert!(
            sidecar::segment_uris(&text)
                .iter()
                .all(|u| u.ends_with(".m4s"))
        );
        let init = get(h.addr, &format!("/out/v1/news/cmaf/stream_{v}/{map}"));
        assert_eq!(init.status, 200);
        assert_eq!(init.header("content-type"), Some("video/mp4"));
        assert_eq!(init.header("access-control-allow-origin"), Some("*"));
        let sent = std::fs::read(dir.path().join(format!("local/init_{v}.mp4"))).unwrap();
        assert!(
            init.body == sent,
            "the encoder's initialization segment, byte for byte"
        );
    }

    // ffmpeg as the player: the multivariant playlist, both renditions, every frame.
    let url = format!("http://{}/out/v1/news/cmaf/index.m3u8?{range}", h.addr);
    let frames = decoded_frames(&url).unwrap();
    assert_eq!(frames.len(), 2, "both renditions");
    for (stream, f) in &frames {
        assert_eq!(f.len(), 200, "stream {stream}: 8 s at 25 fps, every frame");
    }

    // AES-128 of fMP4: the same frames (viewers_play_fmp4_ingest_everywhere covers every
    // other format).
    let secure = decoded_frames(&format!(
        "http://{}/out/v1/news/secure/index.m3u8?{range}",
        h.addr
    ))
    .unwrap();
    assert_eq!(secure, frames, "AES-128 of fMP4 ingest: every frame");
    assert_eq!(h.traps(), 0);
    sc.stop();
}

#[test]
fn cmaf_endpoint_repackages_mpeg_ts_ingest_frame_for_frame() {
    let dir = tempfile::tempdir().unwrap();
    let (mut sc, h, range) = served(dir.path(), false);
    let (text, map) = playlist_and_map(&h, "cmaf", "stream_0", &range);
    assert_eq!(map, "init-ts0.mp4", "built from the period's first segment");
    let uris = sidecar::segment_uris(&text);
    assert!(uris.iter().all(|u| u.ends_with(".mp4")), "{text}");
    let init = get(h.addr, &format!("/out/v1/news/cmaf/stream_0/{map}"));
    assert_eq!(
        (init.status, init.header("content-type")),
        (200, Some("video/mp4"))
    );
    assert_eq!(&init.body[4..8], b"ftyp");
    let fragment = get(h.addr, &format!("/out/v1/news/cmaf/stream_0/{}", uris[0]));
    assert_eq!(fragment.status, 200);
    assert_eq!(&fragment.body[4..8], b"styp");

    let play = |endpoint: &str| {
        decoded_frames(&format!(
            "http://{}/out/v1/news/{endpoint}/index.m3u8?{range}",
            h.addr
        ))
        .unwrap()
    };
    let (ts, cmaf) = (play("hls"), play("cmaf"));
    assert_eq!(cmaf.len(), 2, "both renditions");
    for (stream, frames) in &ts {
        assert_eq!(frames.len(), 200, "8 s at 25 fps");
        assert_eq!(
            cmaf.get(stream),
            Some(frames),
            "stream {stream}: the same frames"
        );
    }
    assert_eq!(h.traps(), 0);
    sc.stop();
}
