//! User story: viewers get CMAF (HLS with fMP4 segments) whatever the encoder pushed, through
//! the real `.wasm` in the test host.
//! - fMP4 ingest (`-hls_segment_type fmp4`): media playlists with `EXT-X-MAP`, initialization
//!   segments byte-identical to the encoder's, `.m4s` segments; ffmpeg decodes every frame of
//!   both renditions. An AES-128 endpoint says plainly (501) that it cannot encrypt fMP4.
//! - MPEG-TS ingest: the filter repackages each segment at the edge; ffmpeg decodes exactly the
//!   frames (same MD5s) it decodes from the same channel's plain HLS (TS) endpoint.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

#[path = "../../store-sidecar/tests/common/mod.rs"]
mod sidecar;

use std::net::SocketAddr;
use std::time::Duration;

use edgepack_tests::{HostOptions, artifacts, start};

const CONFIG: &str = r#"{ "store": { "cluster": "edgepack_store" },
  "channels": { "news": { "endpoints": {
    "cmaf": { "format": "cmaf", "manifest_window_seconds": 30 },
    "hls": { "format": "hls", "manifest_window_seconds": 30 },
    "secure": { "format": "hls",
      "encryption": { "method": "aes-128", "key": { "derived": { "secret": "0123456789abcdef0123" } },
                      "key_token": { "secret": "tok-0123456789abcdef" } } } } } } }"#;

fn get(addr: SocketAddr, path: &str) -> sidecar::Response {
    sidecar::raw(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: edge\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

#[test]
fn cmaf_endpoint_plays_every_frame_of_fmp4_ingest() {
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("local");
    let mut sc = sidecar::Sidecar::start(&sidecar::write_config(dir.path(), "", ""));
    sidecar::Encoder::start(sidecar::EncoderSpec {
        two_renditions: true,
        fmp4: true,
        local_copy: Some(&local),
        ..sidecar::EncoderSpec::digest(sc.ingest, 1, 8)
    })
    .wait(Duration::from_secs(60));
    let mut o = HostOptions::new(
        artifacts::filter_wasm().unwrap(),
        CONFIG.as_bytes().to_vec(),
    );
    o.clusters = vec![("edgepack_store".into(), sc.internal)];
    let h = start(o).unwrap();

    let status = sc.status();
    let first = status["renditions"][0]["first_program_date_time"]
        .as_str()
        .unwrap();
    let start_s = chrono::DateTime::parse_from_rfc3339(first)
        .unwrap()
        .timestamp();
    // An end in the past: a VOD playlist, which ffmpeg plays from its first segment to the end.
    let end_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let range = format!("start={start_s}&end={end_s}");

    for v in 0..2 {
        let pl = get(
            h.addr,
            &format!("/out/v1/news/cmaf/stream_{v}/index.m3u8?{range}"),
        );
        assert_eq!(pl.status, 200, "{}", pl.text());
        let text = pl.text();
        let map = text
            .lines()
            .find_map(|l| l.strip_prefix("#EXT-X-MAP:URI=\""))
            .and_then(|l| l.strip_suffix('"'))
            .unwrap_or_else(|| panic!("no EXT-X-MAP: {text}"));
        assert!(
            sidecar::segment_uris(&text)
                .iter()
                .all(|u| u.ends_with(".m4s"))
        );
        let init = get(h.addr, &format!("/out/v1/news/cmaf/stream_{v}/{map}"));
        assert_eq!(init.status, 200);
        assert_eq!(init.header("content-type"), Some("video/mp4"));
        assert_eq!(init.header("access-control-allow-origin"), Some("*"));
        assert!(
            init.body == std::fs::read(local.join(format!("init_{v}.mp4"))).unwrap(),
            "the encoder's initialization segment, byte for byte"
        );
    }

    // ffmpeg as the player: the multivariant playlist, both renditions, every frame.
    let url = format!("http://{}/out/v1/news/cmaf/index.m3u8?{range}", h.addr);
    let frames = edgepack_tests::player::decoded_frames(&url).unwrap();
    assert_eq!(frames.len(), 2, "both renditions");
    for (stream, f) in &frames {
        assert_eq!(f.len(), 200, "stream {stream}: 8 s at 25 fps, every frame");
    }

    // AES-128 of fMP4 is not available: a clear 501, not a broken stream.
    let secure = get(
        h.addr,
        &format!("/out/v1/news/secure/stream_0/index.m3u8?{range}"),
    );
    assert_eq!(secure.status, 501, "{}", secure.text());
    assert!(secure.text().contains("fMP4"), "{}", secure.text());
    assert_eq!(h.traps(), 0);
    sc.stop();
}

#[test]
fn cmaf_endpoint_repackages_mpeg_ts_ingest_frame_for_frame() {
    let dir = tempfile::tempdir().unwrap();
    let mut sc = sidecar::Sidecar::start(&sidecar::write_config(dir.path(), "", ""));
    sidecar::Encoder::start(sidecar::EncoderSpec {
        two_renditions: true,
        ..sidecar::EncoderSpec::digest(sc.ingest, 1, 8)
    })
    .wait(Duration::from_secs(60));
    let mut o = HostOptions::new(
        artifacts::filter_wasm().unwrap(),
        CONFIG.as_bytes().to_vec(),
    );
    o.clusters = vec![("edgepack_store".into(), sc.internal)];
    let h = start(o).unwrap();
    let status = sc.status();
    let start_s = chrono::DateTime::parse_from_rfc3339(
        status["renditions"][0]["first_program_date_time"]
            .as_str()
            .unwrap(),
    )
    .unwrap()
    .timestamp();
    let end_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let range = format!("start={start_s}&end={end_s}");

    let pl = get(
        h.addr,
        &format!("/out/v1/news/cmaf/stream_0/index.m3u8?{range}"),
    );
    assert_eq!(pl.status, 200, "{}", pl.text());
    let text = pl.text();
    assert!(text.contains("#EXT-X-MAP:URI=\"init-ts0.mp4\""), "{text}");
    let uris = sidecar::segment_uris(&text);
    assert!(
        !uris.is_empty() && uris.iter().all(|u| u.ends_with(".mp4")),
        "{text}"
    );
    let init = get(h.addr, "/out/v1/news/cmaf/stream_0/init-ts0.mp4");
    assert_eq!(
        (init.status, init.header("content-type")),
        (200, Some("video/mp4"))
    );
    assert_eq!(&init.body[4..8], b"ftyp");
    let frag = get(h.addr, &format!("/out/v1/news/cmaf/stream_0/{}", uris[0]));
    assert_eq!(frag.status, 200);
    assert_eq!(&frag.body[4..8], b"styp");

    let ts = edgepack_tests::player::decoded_frames(&format!(
        "http://{}/out/v1/news/hls/index.m3u8?{range}",
        h.addr
    ))
    .unwrap();
    let cmaf = edgepack_tests::player::decoded_frames(&format!(
        "http://{}/out/v1/news/cmaf/index.m3u8?{range}",
        h.addr
    ))
    .unwrap();
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
