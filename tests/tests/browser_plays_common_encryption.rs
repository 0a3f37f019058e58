//! User story: a viewer's browser plays the common-encrypted live stream through EME ClearKey —
//! no DRM vendor, the keys come from the endpoint itself, guarded by tokens. In Debian's headless
//! Chromium (playwright-core), while ffmpeg pushes MPEG-TS and keys rotate every 10 s:
//! - shaka-player plays DASH `cbcs` and dash.js plays DASH `cenc`, licenses from the URL the MPD
//!   names (`dashif:Laurl`), a new period and license per key;
//! - shaka-player plays CMAF HLS `cbcs` (`EXT-X-KEY:METHOD=SAMPLE-AES,KEYFORMAT="identity"`).
//!
//! Playback advances at least 5 s in 14 s with no error. With every key rewritten to a wrong one,
//! none plays.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod live;

use std::path::Path;

use edgepack_host::DirectResponse;
use edgepack_tests::browser;

const CONFIG: &str = r#"{ "store": { "cluster": "edgepack_store" },
  "channels": { "news": { "endpoints": {
    "dash-cenc": { "format": "dash", "manifest_window_seconds": 30,
      "encryption": { "method": "cenc", "key_rotation_interval_seconds": 10,
                      "key": { "derived": { "secret": "0123456789abcdef0123" } },
                      "key_token": { "secret": "tok-0123456789abcdef" } } },
    "dash-cbcs": { "format": "dash", "manifest_window_seconds": 30,
      "encryption": { "method": "cbcs", "key_rotation_interval_seconds": 10,
                      "key": { "derived": { "secret": "0123456789abcdef0123" } },
                      "key_token": { "secret": "tok-0123456789abcdef" } } },
    "cmaf-cbcs": { "format": "cmaf", "manifest_window_seconds": 30,
      "encryption": { "method": "cbcs", "key_rotation_interval_seconds": 10,
                      "key": { "derived": { "secret": "0123456789abcdef0123" } },
                      "key_token": { "secret": "tok-0123456789abcdef" } } } } } } }"#;

/// The test page and both players, answered by the proxy on routes where the filter is off.
fn player_routes() -> Vec<DirectResponse> {
    [
        ("/eme.html", "eme.html", "text/html"),
        (
            "/shaka-player.compiled.js",
            "node_modules/shaka-player/dist/shaka-player.compiled.js",
            "application/javascript",
        ),
        (
            "/dash.all.min.js",
            "node_modules/dashjs/dist/modern/umd/dash.all.min.js",
            "application/javascript",
        ),
    ]
    .into_iter()
    .map(|(path, file, ct)| browser::file_route(path, Path::new(file), ct).unwrap())
    .collect()
}

#[test]
fn shaka_player_and_dash_js_play_encrypted_live_dash_with_clearkey() {
    let live = live::live(90, false, CONFIG, player_routes());
    let h = &live.host;
    for (player, ep, manifest) in [
        ("shaka", "dash-cbcs", "index.mpd"),
        ("dashjs", "dash-cenc", "index.mpd"),
        ("shaka", "cmaf-cbcs", "index.m3u8"),
    ] {
        let page = format!(
            "http://{addr}/eme.html?player={player}&mpd=http://{addr}/out/v1/news/{ep}/{manifest}",
            addr = h.addr
        );
        let good = browser::play(&page, 14).unwrap();
        eprintln!("{player} {ep}: {good}");
        assert!(good["fatal"].is_null(), "{player}: {good}");
        assert!(good["licenses"].as_u64().unwrap() >= 1, "{player}: {good}");
        assert!(
            good["advanced"].as_f64().unwrap() >= 5.0,
            "{player}: playback must advance 5 s: {good}"
        );
        let bad = browser::play(&format!("{page}&tamper=1"), 12).unwrap();
        eprintln!("{player} {ep}, wrong key: {bad}");
        assert!(bad["licenses"].as_u64().unwrap() >= 1, "{player}: {bad}");
        assert!(
            !bad["fatal"].is_null() || bad["advanced"].as_f64().unwrap() < 1.0,
            "{player}: a wrong key must not play: {bad}"
        );
    }
    live.finish();
}
