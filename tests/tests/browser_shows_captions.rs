//! User story: a viewer turns captions on in the browser. ffmpeg pushes video whose H.264
//! carries CEA-608 captions on channel 1 (`Cue k` shown each second, as a broadcast encoder
//! passes a source's captions through) as MPEG-TS or as fMP4; the endpoints map channel 1
//! (`captions`). In Debian's headless Chromium, with the caption text read from the cues the
//! players make:
//! - hls.js on the hls endpoint shows the captions (its CEA-608 track; MPEG-TS ingest);
//! - shaka-player selects the hls endpoint's `CLOSED-CAPTIONS` channel (MPEG-TS ingest) and the
//!   dash endpoint's `Accessibility` channel (`en`, either ingest) and shows the same cues, in
//!   order, a second apart;
//! - shaka-player does the same on the `cenc` DASH endpoint, keys through EME ClearKey: it reads
//!   the captions from the encrypted fragments themselves (before the CDM decrypts them), so the
//!   SEI must stay clear.
//!
//! shaka-player's CEA-608 parser takes a whole `mdat` for one track's H.264 NAL units, so it
//! fails (error 3000) on fragments that carry video and audio together: the hls endpoint of
//! fMP4 ingest (the encoder's muxed fragments, passed through) and the cmaf endpoints of a
//! channel with muxed audio. hls.js 1.7.4 showed no caption cue from the encoder's fMP4 (the
//! hls endpoint of fMP4 ingest) in our runs. Those endpoints' captions are read by ffmpeg in
//! `viewers_read_captions` (the `cbcs` one decrypted).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod live;

use edgepack_test_support::sidecar;
use edgepack_tests::browser;

const CONFIG: &str = r#"{ "store": { "cluster": "edgepack_store" },
  "channels": { "news": { "endpoints": {
    "hls": { "format": "hls", "manifest_window_seconds": 30,
      "captions": [ { "channel": 1, "language": "eng", "name": "English CC" } ] },
    "dash": { "format": "dash", "manifest_window_seconds": 30,
      "captions": [ { "channel": 1, "language": "eng" } ] },
    "dash-cenc": { "format": "dash", "manifest_window_seconds": 30,
      "captions": [ { "channel": 1, "language": "eng" } ],
      "encryption": { "method": "cenc", "key": { "derived": { "secret": "0123456789abcdef0123" } },
                      "key_token": { "secret": "tok-0123456789abcdef" } } } } } } }"#;

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

/// The players on the page `query` names (`cc=1` and manifests), for 16 s: each player's
/// cues (`{key}Cues`) are `Cue k` in order, a second apart, and (`{key}Tracks`) its first text
/// track is the CEA-608 channel, English.
fn players_show_the_cues(
    addr: std::net::SocketAddr,
    ingest: &str,
    query: &str,
    players: &[(&str, bool)],
) {
    let page = format!("http://{addr}/subtitles.html?cc=1&{query}");
    let seen = browser::play(&page, 16).unwrap();
    eprintln!("{ingest} ingest, {query}: {seen}");
    assert!(seen["fatal"].is_null(), "{ingest} ingest: {seen}");
    for &(key, lists_tracks) in players {
        if lists_tracks {
            let tracks = &seen[format!("{key}Tracks")];
            assert_eq!(
                tracks[0]["mimeType"], "application/cea-608",
                "{ingest}: {seen}"
            );
            assert_eq!(tracks[0]["language"], "en", "{ingest}: {seen}");
        }
        let advanced = seen[format!("{key}Advanced")].as_f64().unwrap();
        assert!(advanced >= 5.0, "{ingest} {key} plays: {seen}");
        let shown = cues(&seen, &format!("{key}Cues"));
        assert!(shown.len() >= 4, "{ingest} {key}: {seen}");
        for pair in shown.windows(2) {
            let ((k0, s0), (k1, s1)) = (pair[0], pair[1]);
            assert_eq!(k1, k0 + 1, "{ingest} {key}: {shown:?}");
            assert!((s1 - s0 - 1.0).abs() < 0.1, "{ingest} {key}: {shown:?}");
        }
    }
}

/// A live captioned channel pushed as MPEG-TS or (`fmp4`) fMP4: the clear endpoints with
/// hls.js and shaka-player, then the encrypted DASH endpoint with shaka-player.
fn players_show_the_captions(fmp4: bool) {
    let live = live::with_encoder(
        |ingest| sidecar::Encoder::start_captions_as(ingest, 60, fmp4),
        CONFIG,
        browser::page_with_players(("/subtitles.html", "subtitles.html")).unwrap(),
    );
    let a = live.host.addr;
    let ingest = if fmp4 { "fMP4" } else { "MPEG-TS" };
    let url =
        |endpoint: &str, manifest: &str| format!("http://{a}/out/v1/news/{endpoint}/{manifest}");
    players_show_the_cues(
        a,
        ingest,
        &if fmp4 {
            format!("mpd={}", url("dash", "index.mpd"))
        } else {
            format!(
                "hls={}&mpd={}",
                url("hls", "index.m3u8"),
                url("dash", "index.mpd")
            )
        },
        if fmp4 {
            &[("dash", true)]
        } else {
            &[("hls", false), ("shaka", true), ("dash", true)]
        },
    );
    players_show_the_cues(
        a,
        ingest,
        &format!("mpd={}", url("dash-cenc", "index.mpd")),
        &[("dash", true)],
    );
    live.finish();
}

// One test, the two ingests one after the other: two live channels and two browsers at once
// would share two cores.
#[test]
fn hls_js_and_shaka_player_show_the_captions_of_either_ingest() {
    players_show_the_captions(false);
    players_show_the_captions(true);
}
