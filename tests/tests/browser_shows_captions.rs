//! User story: a viewer turns captions on in the browser. ffmpeg pushes video whose H.264
//! carries CEA-608 captions on channel 1 (`Cue k` shown each second, as a broadcast encoder
//! passes a source's captions through); the endpoints map channel 1 (`captions`). In Debian's
//! headless Chromium, with the caption text read from the cues the players make:
//! - hls.js on the hls endpoint shows the captions (its CEA-608 track);
//! - shaka-player selects the hls endpoint's `CLOSED-CAPTIONS` channel and the dash endpoint's
//!   `Accessibility` channel (`en`) and shows the same cues, in order, a second apart.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod live;

use edgepack_test_support::sidecar;
use edgepack_tests::browser;

const CONFIG: &str = r#"{ "store": { "cluster": "edgepack_store" },
  "channels": { "news": { "endpoints": {
    "hls": { "format": "hls", "manifest_window_seconds": 30,
      "captions": [ { "channel": 1, "language": "eng", "name": "English CC" } ] },
    "dash": { "format": "dash", "manifest_window_seconds": 30,
      "captions": [ { "channel": 1, "language": "eng" } ] } } } } }"#;

/// The numbers `k` of the `Cue k` captions a player reported, with their start.
fn cues(seen: &serde_json::Value, key: &str) -> Vec<(u64, f64)> {
    seen[key]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| {
            // shaka-player wraps the text in WebVTT class spans for the 608 colours.
            let mut text = String::new();
            let mut in_tag = false;
            for ch in c["text"].as_str()?.chars() {
                match ch {
                    '<' => in_tag = true,
                    '>' => in_tag = false,
                    _ if !in_tag => text.push(ch),
                    _ => {}
                }
            }
            let k = text.trim().strip_prefix("Cue ")?.parse().ok()?;
            Some((k, c["start"].as_f64()?))
        })
        .collect()
}

#[test]
fn hls_js_and_shaka_player_show_the_captions() {
    let live = live::with_encoder(
        |ingest| sidecar::Encoder::start_captions(ingest, 60),
        CONFIG,
        browser::page_with_players(("/subtitles.html", "subtitles.html")).unwrap(),
    );
    let h = &live.host;
    let page = format!(
        "http://{addr}/subtitles.html?cc=1&hls=http://{addr}/out/v1/news/hls/index.m3u8&mpd=http://{addr}/out/v1/news/dash/index.mpd",
        addr = h.addr
    );
    let seen = browser::play(&page, 16).unwrap();
    eprintln!("{seen}");
    assert!(seen["fatal"].is_null(), "{seen}");
    for (key, tracks) in [
        ("hlsCues", None),
        ("shakaCues", Some("shakaTracks")),
        ("dashCues", Some("dashTracks")),
    ] {
        if let Some(tracks) = tracks {
            assert_eq!(seen[tracks][0]["mimeType"], "application/cea-608", "{seen}");
            assert_eq!(seen[tracks][0]["language"], "en", "{seen}");
        }
        let shown = cues(&seen, key);
        assert!(shown.len() >= 4, "{key}: {seen}");
        for pair in shown.windows(2) {
            let ((k0, s0), (k1, s1)) = (pair[0], pair[1]);
            assert_eq!(k1, k0 + 1, "{key}: {shown:?}");
            assert!((s1 - s0 - 1.0).abs() < 0.1, "{key}: {shown:?}");
        }
    }
    live.finish();
}
