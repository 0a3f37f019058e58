//! User story: a viewer turns subtitles on in the browser. ffmpeg pushes one variant and an
//! English WebVTT rendition live (cue `Cue k` on second `k` of its timeline, from `k.1` s to
//! `k.9` s); in Debian's headless Chromium:
//! - hls.js lists the subtitle track (`eng`) of the hls endpoint, loads its cues with their text,
//!   and places each on the video's timeline: cue `k` starts 0.1 s after second `k` of the
//!   encoder, i.e. `k − 2n + 0.1` s after the start of video segment `n` (2 s segments,
//!   numbered as ffmpeg numbers them), within 0.1 s;
//! - shaka-player lists the same track (`en`), loads the cues in order, one second apart, on the
//!   grid of its video segments (a cue `k` with `k` even starts 0.1 s after a segment start,
//!   modulo the 2 s segment length);
//! - the same subtitles as WebVTT in fMP4 (`wvtt`): shaka-player on the cmaf endpoint and on
//!   the dash endpoint (a text AdaptationSet) loads the cues the same way, on the grid of its
//!   video segments (hls.js reads no WebVTT in fMP4: video-dev/hls.js#6273);
//! - the same subtitles as TTML on the mss endpoint (a text StreamIndex): dash.js with its
//!   Smooth Streaming handler lists the track (`eng`) and loads the cues the same way;
//! - on the encrypted endpoints — CMAF HLS `cbcs` and DASH `cenc`, the video's keys through EME
//!   ClearKey — shaka-player loads the (clear) subtitles the same way while it plays;
//! - CEA-608 caption channels the endpoint maps (`captions`): shaka-player lists the hls
//!   endpoint's `CLOSED-CAPTIONS` channel and the dash endpoint's `Accessibility` channel as
//!   CEA-608 text tracks with their language. (This encoder embeds no CEA-608 data, so no
//!   caption cue is shown: `browser_shows_captions` shows them.)
//!
//! hls.js and shaka-player keep playing on the hls endpoint.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod live;

use edgepack_tests::browser;

const CONFIG: &str = r#"{ "store": { "cluster": "edgepack_store" },
  "channels": { "news": { "endpoints": {
    "hls": { "format": "hls", "manifest_window_seconds": 30,
      "captions": [ { "channel": 1, "language": "eng", "name": "English CC" } ] },
    "cmaf": { "format": "cmaf", "manifest_window_seconds": 30 },
    "mss": { "format": "mss", "manifest_window_seconds": 30 },
    "dash": { "format": "dash", "manifest_window_seconds": 30,
      "captions": [ { "channel": 1, "language": "eng" }, { "channel": 3, "language": "fra" } ] },
    "cmaf-cbcs": { "format": "cmaf", "manifest_window_seconds": 30,
      "encryption": { "method": "cbcs", "key": { "derived": { "secret": "0123456789abcdef0123" } },
                      "key_token": { "secret": "tok-0123456789abcdef" } } },
    "dash-cenc": { "format": "dash", "manifest_window_seconds": 30,
      "encryption": { "method": "cenc", "key": { "derived": { "secret": "0123456789abcdef0123" } },
                      "key_token": { "secret": "tok-0123456789abcdef" } } } } } } }"#;

/// (k, start, end) of each `Cue k` a player reported.
fn cues(seen: &serde_json::Value, key: &str) -> Vec<(u64, f64, f64)> {
    seen[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let k = c["text"]
                .as_str()
                .unwrap()
                .strip_prefix("Cue ")
                .unwrap_or_else(|| panic!("{c}"))
                .parse()
                .unwrap();
            (k, c["start"].as_f64().unwrap(), c["end"].as_f64().unwrap())
        })
        .collect()
}

#[test]
fn hls_js_shaka_player_and_dash_js_show_the_subtitles_in_time() {
    show_subtitles(false);
}

/// The same with fMP4 video: the clear cmaf endpoint passes the video through on the encoder's
/// own timeline, and places the cues on it; the other formats repackage it.
#[test]
fn the_same_with_fmp4_video() {
    show_subtitles(true);
}

/// A player's cues (`{key}Cues`): `Cue k` in order a second apart, on the grid of the video's
/// segments (`{key}BufferStart`).
fn on_the_video_grid(seen: &serde_json::Value, key: &str) {
    let cues_key = format!("{key}Cues");
    let player_cues = cues(seen, &cues_key);
    assert!(player_cues.len() >= 5, "{cues_key}: {seen}");
    for pair in player_cues.windows(2) {
        let ((k0, s0, _), (k1, s1, _)) = (pair[0], pair[1]);
        assert_eq!(k1, k0 + 1, "{cues_key}: {player_cues:?}");
        assert!((s1 - s0 - 1.0).abs() < 0.01, "{cues_key}: {player_cues:?}");
    }
    let buffer_start = seen[format!("{key}BufferStart")].as_f64().unwrap();
    let (k, start, _) = player_cues[0];
    // Where second 0 of the encoder's timeline lies, by the cue; video segments start 0.02 s
    // after even seconds of it.
    let origin = start - 0.1 - k as f64;
    let phase = (buffer_start - origin).rem_euclid(2.0);
    assert!(
        !(0.15..1.85).contains(&phase),
        "{cues_key}: video segments start {phase:.3} s after an even second of the cues' timeline"
    );
}

fn show_subtitles(fmp4: bool) {
    let live = live::live_subtitles(60, fmp4, CONFIG, {
        let mut routes = browser::page_with_players(("/subtitles.html", "subtitles.html")).unwrap();
        for (path, file) in [
            (
                "/dash.all.min.js",
                "node_modules/dashjs/dist/modern/umd/dash.all.min.js",
            ),
            (
                "/dash.mss.min.js",
                "node_modules/dashjs/dist/modern/umd/dash.mss.min.js",
            ),
        ] {
            routes.push(
                browser::file_route(path, std::path::Path::new(file), "application/javascript")
                    .unwrap(),
            );
        }
        routes
    });
    let h = &live.host;
    let page = format!(
        "http://{addr}/subtitles.html?hls=http://{addr}/out/v1/news/hls/index.m3u8&mpd=http://{addr}/out/v1/news/dash/index.mpd&cmaf=http://{addr}/out/v1/news/cmaf/index.m3u8&mss=http://{addr}/out/v1/news/mss/Manifest",
        addr = h.addr
    );
    let seen = browser::play(&page, 16).unwrap();
    eprintln!("{seen}");
    assert!(seen["fatal"].is_null(), "{seen}");

    // hls.js: the track, the cues' text and their place on the video's timeline.
    for (tracks, cues_key, fragments) in [("hlsTracks", "hlsCues", "hlsFragments")] {
        assert_eq!(seen[tracks][0]["lang"], "eng", "{tracks}: {seen}");
        let player_cues = cues(&seen, cues_key);
        assert!(player_cues.len() >= 5, "{cues_key}: {seen}");
        let mut placed = 0;
        for &(k, start, end) in &player_cues {
            assert!(
                (end - start - 0.8).abs() < 0.01,
                "{cues_key} {k}: {start}..{end}"
            );
            let n = k / 2;
            let Some(segment_start) = seen[fragments][n.to_string()].as_f64() else {
                continue;
            };
            let expected = segment_start + (k - 2 * n) as f64 + 0.1;
            assert!(
                (start - expected).abs() < 0.1,
                "{cues_key} {k} at {start}, video segment {n} at {segment_start}: expected {expected}"
            );
            placed += 1;
        }
        assert!(
            placed >= 4,
            "{cues_key} checked against their video segment: {placed}; {seen}"
        );
    }

    // shaka-player: the track, the cues in order a second apart, on the video's segment grid.
    let tracks = |key: &str, cea608: bool| -> Vec<String> {
        seen[key]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| (t["mimeType"] == "application/cea-608") == cea608)
            .map(|t| t["language"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(tracks("shakaTracks", false), ["en"], "{seen}");
    // The caption channels the endpoints announce.
    assert_eq!(tracks("shakaTracks", true), ["en"], "{seen}");
    let mut dash_captions = tracks("dashTracks", true);
    dash_captions.sort();
    assert_eq!(dash_captions, ["en", "fr"], "{seen}");
    // shaka-player, on the hls endpoint (WebVTT) and on the cmaf and dash endpoints (WebVTT in
    // fMP4): the cues in order a second apart, on the grid of the video's segments.
    // dash.js on the mss endpoint (TTML): the same.
    assert_eq!(seen["cmafTracks"][0]["language"], "en", "{seen}");
    assert_eq!(seen["mssTracks"][0]["lang"], "eng", "{seen}");
    for key in ["shaka", "cmaf", "dash", "mss"] {
        on_the_video_grid(&seen, key);
    }

    // The encrypted endpoints: the same subtitles, clear, while the video plays through
    // ClearKey.
    let page = format!(
        "http://{addr}/subtitles.html?cmaf=http://{addr}/out/v1/news/cmaf-cbcs/index.m3u8&mpd=http://{addr}/out/v1/news/dash-cenc/index.mpd",
        addr = h.addr
    );
    let encrypted = browser::play(&page, 16).unwrap();
    eprintln!("encrypted: {encrypted}");
    assert!(encrypted["fatal"].is_null(), "{encrypted}");
    assert_eq!(encrypted["cmafTracks"][0]["language"], "en", "{encrypted}");
    for key in ["cmaf", "dash"] {
        on_the_video_grid(&encrypted, key);
        let advanced = encrypted[format!("{key}Advanced")].as_f64().unwrap();
        assert!(advanced >= 5.0, "{key}: {encrypted}");
    }

    assert!(seen["hlsAdvanced"].as_f64().unwrap() >= 5.0, "{seen}");
    assert!(seen["shakaAdvanced"].as_f64().unwrap() >= 5.0, "{seen}");
    live.finish();
}
