//! User story: a viewer's browser plays the live Smooth Streaming endpoint — dash.js with its
//! Smooth Streaming handler (`dash.mss.min.js`), in Debian's headless Chromium, while ffmpeg
//! pushes MPEG-TS: the manifest's `CodecPrivateData` makes its initialization segments, the
//! fragments' `tfxd`/`tfrf` boxes carry the timeline forward (dash.js never reloads a live
//! Smooth manifest: every fragment, the store's newest segment's too, must announce the next).
//! Playback advances at least 5 s in 14 s with no error, video and audio, 4 s (two segments)
//! behind the live edge.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod live;

use std::path::Path;

use edgepack_host::DirectResponse;
use edgepack_tests::browser;

const CONFIG: &str = r#"{ "store": { "cluster": "edgepack_store" },
  "channels": { "news": { "endpoints": {
    "mss": { "format": "mss", "manifest_window_seconds": 30 } } } } }"#;

/// The test page and dash.js with its Smooth Streaming handler, answered by the proxy on routes
/// where the filter is off.
fn player_routes() -> Vec<DirectResponse> {
    [
        ("/eme.html", "eme.html", "text/html"),
        (
            "/dash.all.min.js",
            "node_modules/dashjs/dist/modern/umd/dash.all.min.js",
            "application/javascript",
        ),
        (
            "/dash.mss.min.js",
            "node_modules/dashjs/dist/modern/umd/dash.mss.min.js",
            "application/javascript",
        ),
    ]
    .into_iter()
    .map(|(path, file, ct)| browser::file_route(path, Path::new(file), ct).unwrap())
    .collect()
}

#[test]
fn dash_js_plays_live_smooth_streaming() {
    let live = live::live(60, false, CONFIG, player_routes());
    let h = &live.host;
    let page = format!(
        "http://{addr}/eme.html?player=dashjs-mss&liveDelay=4&mpd=http://{addr}/out/v1/news/mss/Manifest",
        addr = h.addr
    );
    let played = browser::play(&page, 14).unwrap();
    eprintln!("dash.js Smooth Streaming: {played}");
    assert!(played["fatal"].is_null(), "{played}");
    assert!(
        played["advanced"].as_f64().unwrap() >= 5.0,
        "playback must advance 5 s: {played}"
    );
    assert!(
        played["audioBytes"].as_u64().unwrap() > 0,
        "the audio stream plays too: {played}"
    );
    live.finish();
}
