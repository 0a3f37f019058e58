//! User story: a viewer switches the audio language in the browser. ffmpeg pushes one video and
//! an audio group (English default, French) live; in Debian's headless Chromium hls.js lists
//! both `audioTracks` from the HLS endpoint and switches to French (then fetches French audio
//! segments), and shaka-player lists both languages of the DASH endpoint, selects French
//! (`selectAudioLanguage`) and plays it; both keep playing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod live;

use edgepack_tests::browser;

const CONFIG: &str = r#"{ "store": { "cluster": "edgepack_store" },
  "channels": { "news": { "endpoints": {
    "hls": { "format": "hls", "manifest_window_seconds": 30 },
    "dash": { "format": "dash", "manifest_window_seconds": 30 } } } } }"#;

#[test]
fn hls_js_and_shaka_player_switch_to_french() {
    let live = live::live_languages(
        60,
        CONFIG,
        browser::page_with_players(("/audio_tracks.html", "audio_tracks.html")).unwrap(),
    );
    let h = &live.host;
    let page = format!(
        "http://{addr}/audio_tracks.html?hls=http://{addr}/out/v1/news/hls/index.m3u8&mpd=http://{addr}/out/v1/news/dash/index.mpd",
        addr = h.addr
    );
    let seen = browser::play(&page, 16).unwrap();
    eprintln!("{seen}");
    assert!(seen["fatal"].is_null(), "{seen}");
    let langs: Vec<&str> = seen["hlsTracks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["lang"].as_str().unwrap())
        .collect();
    assert_eq!(langs, ["eng", "fra"], "{seen}");
    assert_eq!(seen["hlsTracks"][0]["default"], true, "{seen}");
    assert_eq!(seen["hlsSwitchedTo"], "fra", "{seen}");
    assert!(seen["hlsFrench"].as_u64().unwrap() >= 1, "{seen}");
    let mut shaka: Vec<&str> = seen["shakaLanguages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    shaka.sort();
    // shaka-player names languages by their shortest code.
    assert_eq!(shaka, ["en", "fr"], "{seen}");
    assert_eq!(seen["shakaActive"], "fr", "{seen}");
    assert!(seen["shakaFrench"].as_u64().unwrap() >= 1, "{seen}");
    assert!(
        seen["hlsAdvanced"].as_f64().unwrap() >= 5.0,
        "hls.js plays on: {seen}"
    );
    assert!(
        seen["shakaAdvanced"].as_f64().unwrap() >= 5.0,
        "shaka-player plays on: {seen}"
    );
    live.finish();
}
