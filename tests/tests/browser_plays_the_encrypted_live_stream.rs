//! User story: a viewer's browser plays the AES-128 live stream. hls.js (npm) in Debian's
//! headless Chromium, driven by playwright-core, loads the demo player page (`envoy/player/`,
//! served by the proxy on a route where the filter is off, as `envoy/envoy.yaml` does) and plays
//! `/out/v1/news/secure/index.m3u8` while ffmpeg is pushing live: `currentTime` advances at least
//! 5 s within 10 s of playing with no fatal error. With every key token tampered, playback fails
//! with a key error. And hls.js plays a `cmaf` endpoint (fMP4 segments with `EXT-X-MAP`) live,
//! from fMP4 ingest and from MPEG-TS ingest repackaged by the filter; the page's DASH tab
//! (shaka-player) plays the `cenc` endpoint with licenses from its ClearKey server.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod live;

use edgepack_host::DirectResponse;
use edgepack_tests::browser;

const CONFIG: &str = r#"{ "store": { "cluster": "edgepack_store" },
  "channels": { "news": { "endpoints": {
    "secure": { "format": "hls", "manifest_window_seconds": 30,
      "encryption": { "method": "aes-128", "key_rotation_interval_seconds": 10,
                      "key": { "derived": { "secret": "0123456789abcdef0123" } },
                      "key_token": { "secret": "tok-0123456789abcdef", "ttl_seconds": 300 } } } } } } }"#;

/// The demo player page and hls.js, answered by the proxy itself on routes where the filter is
/// off — as `envoy/envoy.yaml` serves them with `direct_response`.
fn player_routes() -> Vec<DirectResponse> {
    browser::page_with_players(("/", "../../envoy/player/index.html")).unwrap()
}

#[test]
fn hls_js_in_chromium_plays_aes128_live_and_fails_with_wrong_keys() {
    let live = live::live(60, false, CONFIG, player_routes());
    let h = &live.host;
    let page = format!("http://{}/?endpoint=secure", h.addr);

    // 12 s: time for hls.js to start, then at least 10 s of playing.
    let good = browser::play(&page, 12).unwrap();
    eprintln!("good stream: {good}");
    assert!(good["fatal"].is_null(), "{good}");
    // Keys rotate every 10 s: what was played spans more than one key period.
    assert!(good["keysLoaded"].as_u64().unwrap() >= 2, "{good}");
    assert!(
        good["currentTime"].as_f64().unwrap() >= 5.0,
        "playback must advance 5 s: {good}"
    );

    let bad = browser::play(&format!("{page}&tamper=1"), 12).unwrap();
    eprintln!("tampered keys: {bad}");
    assert!(
        !bad["fatal"].is_null() || bad["currentTime"].as_f64().unwrap() < 1.0,
        "{bad}"
    );
    assert!(bad["keyErrors"].as_u64().unwrap() > 0, "{bad}");
    live.finish();
}

/// hls.js plays a live `cmaf` endpoint, the encoder pushing fMP4 or MPEG-TS (repackaged).
fn hls_js_plays_cmaf_live(fmp4: bool) {
    let config = r#"{ "store": { "cluster": "edgepack_store" },
      "channels": { "news": { "endpoints": {
        "cmaf": { "format": "cmaf", "manifest_window_seconds": 30 } } } } }"#;
    let live = live::live(60, fmp4, config, player_routes());
    let h = &live.host;
    let state = browser::play(&format!("http://{}/?endpoint=cmaf", h.addr), 12).unwrap();
    eprintln!("cmaf (fmp4 ingest: {fmp4}): {state}");
    assert!(state["fatal"].is_null(), "{state}");
    assert!(
        state["advanced"].as_f64().unwrap() >= 5.0,
        "playback must advance 5 s: {state}"
    );
    live.finish();
}

#[test]
fn hls_js_in_chromium_plays_cmaf_live_from_fmp4_ingest() {
    hls_js_plays_cmaf_live(true);
}

#[test]
fn hls_js_in_chromium_plays_cmaf_live_repackaged_from_mpeg_ts() {
    hls_js_plays_cmaf_live(false);
}

/// The demo page's DASH tab: shaka-player plays the `cenc` endpoint live, licenses from the
/// endpoint's ClearKey server across key rotations; with tampered license tokens it fails with a
/// DRM error.
#[test]
fn demo_page_plays_dash_cenc_live_with_shaka_player() {
    let config = r#"{ "store": { "cluster": "edgepack_store" },
      "channels": { "news": { "endpoints": {
        "dash": { "format": "dash", "manifest_window_seconds": 30,
          "encryption": { "method": "cenc", "key_rotation_interval_seconds": 10,
                          "key": { "derived": { "secret": "0123456789abcdef0123" } },
                          "key_token": { "secret": "tok-0123456789abcdef" } } } } } } }"#;
    let live = live::live(60, false, config, player_routes());
    let h = &live.host;
    let page = format!("http://{}/?endpoint=dash", h.addr);
    let good = browser::play(&page, 14).unwrap();
    eprintln!("demo page, dash: {good}");
    assert!(good["fatal"].is_null(), "{good}");
    assert!(good["keysLoaded"].as_u64().unwrap() >= 1, "{good}");
    assert!(
        good["advanced"].as_f64().unwrap() >= 5.0,
        "playback must advance 5 s: {good}"
    );
    let bad = browser::play(&format!("{page}&tamper=1"), 12).unwrap();
    eprintln!("demo page, dash, tampered license tokens: {bad}");
    assert!(
        !bad["fatal"].is_null() && bad["keyErrors"].as_u64().unwrap() > 0,
        "{bad}"
    );
    live.finish();
}
