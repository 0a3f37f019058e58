//! User story: viewers get MPEG-DASH — clear, `cenc` and `cbcs` — from a channel an encoder
//! pushes as plain MPEG-TS HLS, through the real `.wasm` in the test host.
//! - The MPD parses with `dash-mpd-core` and says what the channel is: both variants as video
//!   representations with the multivariant playlist's codecs and sizes, one audio adaptation set,
//!   a SegmentTimeline whose times are the segments' program date times.
//! - ffmpeg's DASH demuxer (the player) decodes exactly the frames it decodes from the same
//!   channel's HLS (TS) endpoint, video and audio.
//! - Encrypted endpoints: the MPD names the scheme, the default KID and a ClearKey license URL;
//!   the license (W3C ClearKey JSON, token-guarded) carries that KID's key; with it ffmpeg
//!   decrypts every frame, with a wrong key it does not; a license request without a valid token
//!   is refused.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use edgepack_host::{HostOptions, start};
use edgepack_test_support::player::{decoded, decoded_with};
use edgepack_test_support::sidecar;
use sidecar::get;

const CONFIG: &str = r#"{ "store": { "cluster": "edgepack_store" },
  "channels": { "news": { "endpoints": {
    "hls": { "format": "hls", "manifest_window_seconds": 30 },
    "dash": { "format": "dash", "manifest_window_seconds": 30 },
    "dash-cenc": { "format": "dash", "manifest_window_seconds": 30,
      "encryption": { "method": "cenc", "key_rotation_interval_seconds": 0,
                      "key": { "derived": { "secret": "0123456789abcdef0123" } },
                      "key_token": { "secret": "tok-0123456789abcdef" } } },
    "dash-cbcs": { "format": "dash", "manifest_window_seconds": 30,
      "encryption": { "method": "cbcs", "key_rotation_interval_seconds": 0,
                      "key": { "static": { "key_hex": "2b7e151628aed2a6abf7158809cf4f3c" } },
                      "key_token": { "secret": "tok-0123456789abcdef" } } } } } } }"#;

/// The frames as a set of per-stream MD5 lists, for comparing players that number streams
/// differently.
fn streams(frames: BTreeMap<u32, Vec<String>>) -> Vec<Vec<String>> {
    let mut v: Vec<Vec<String>> = frames.into_values().collect();
    v.sort();
    v
}

#[test]
fn dash_endpoints_play_every_frame_clear_and_encrypted() {
    let dir = tempfile::tempdir().unwrap();
    let sc_config = sidecar::write_config(dir.path(), "", "");
    let mut sc = sidecar::Sidecar::start(&sc_config);
    sidecar::Encoder::start(sidecar::EncoderSpec {
        two_renditions: true,
        ..sidecar::EncoderSpec::digest(sc.ingest, 1, 8)
    })
    .wait(Duration::from_secs(60));
    let mut o = HostOptions::new(
        edgepack_test_support::artifacts::filter_wasm().unwrap(),
        CONFIG.as_bytes().to_vec(),
    );
    o.clusters = vec![("edgepack_store".into(), sc.internal)];
    let h = start(o).unwrap();
    let range = sidecar::whole_history_range(&sc.status());
    let store_pl = String::from_utf8(sc.get_ok("/store/v1/news/stream_0/index.m3u8")).unwrap();
    let first_pdt = sidecar::tag_value(&store_pl, "#EXT-X-PROGRAM-DATE-TIME").unwrap();
    let first_pdt_ms = chrono::DateTime::parse_from_rfc3339(first_pdt)
        .unwrap()
        .timestamp_millis() as u64;

    // The store finds a rendition's segment by its program date time (DASH's `$Time$`).
    let by_time = sc.get(&format!("/store/v1/news/stream_0/at/{first_pdt_ms}.ts"));
    assert_eq!(by_time.status, 200, "{}", by_time.text());
    let first_seq = sidecar::segment_uris(&store_pl)[0]
        .trim_end_matches(".ts")
        .to_owned();
    assert_eq!(
        by_time.header("x-edgepack-sequence"),
        Some(first_seq.as_str())
    );
    assert_eq!(
        sc.get(&format!(
            "/store/v1/news/stream_1/at/{}.ts",
            first_pdt_ms - 1_000_000
        ))
        .status,
        404
    );

    // The manifest: what a DASH client needs, parsed by dash-mpd-core.
    let mpd_url = |ep: &str| format!("http://{}/out/v1/news/{ep}/index.mpd?{range}", h.addr);
    let r = get(h.addr, &format!("/out/v1/news/dash/index.mpd?{range}"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/dash+xml"));
    let mpd = dash_mpd_core::parse(&r.text()).unwrap();
    assert_eq!(
        mpd.mpdtype.as_deref(),
        Some("static"),
        "a past time range is static"
    );
    assert_eq!(mpd.periods.len(), 1, "{}", r.text());
    let sets = &mpd.periods[0].adaptations;
    assert_eq!(sets.len(), 2, "video and audio: {}", r.text());
    let video = sets
        .iter()
        .find(|a| a.contentType.as_deref() == Some("video"))
        .unwrap();
    assert_eq!(video.representations.len(), 2);
    let mut ids: Vec<&str> = video
        .representations
        .iter()
        .map(|r| r.id.as_deref().unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids, ["stream_0", "stream_1"]);
    assert!(
        video
            .representations
            .iter()
            .all(|r| r.codecs.as_deref().is_some_and(|c| c.starts_with("avc1.")))
    );
    let template = video.SegmentTemplate.as_ref().unwrap();
    assert_eq!(template.timescale, Some(90_000));
    let s = &template.SegmentTimeline.as_ref().unwrap().segments;
    assert_eq!(
        s[0].t,
        Some(first_pdt_ms * 90),
        "times are program date times"
    );
    let count: i64 = s.iter().map(|s| 1 + s.r.unwrap_or(0)).sum();
    assert_eq!(count, 4, "8 s in 2 s segments: {}", r.text());

    // ffmpeg plays the MPD: the same video and audio frames as the HLS endpoint.
    let hls_url = format!("http://{}/out/v1/news/hls/index.m3u8?{range}", h.addr);
    let hls_video = streams(decoded(&hls_url, "0:v").unwrap());
    let dash_video = streams(decoded(&mpd_url("dash"), "0:v").unwrap());
    assert_eq!(dash_video.len(), 2, "both representations");
    assert!(dash_video.iter().all(|f| f.len() == 200), "8 s at 25 fps");
    assert_eq!(dash_video, hls_video, "the same pictures");
    let hls_audio = streams(decoded(&hls_url, "0:a").unwrap());
    let dash_audio = streams(decoded(&mpd_url("dash"), "0:a").unwrap());
    assert_eq!(dash_audio.len(), 1);
    assert!(dash_audio[0].len() > 300, "8 s of 48 kHz AAC");
    assert!(hls_audio.contains(&dash_audio[0]), "the same sound");

    for (ep, scheme) in [("dash-cenc", "cenc"), ("dash-cbcs", "cbcs")] {
        let r = get(h.addr, &format!("/out/v1/news/{ep}/index.mpd?{range}"));
        assert_eq!(r.status, 200, "{}", r.text());
        let mpd = dash_mpd_core::parse(&r.text()).unwrap();
        let video = &mpd.periods[0].adaptations[0];
        let mp4protection = video
            .ContentProtection
            .iter()
            .find(|c| c.schemeIdUri == "urn:mpeg:dash:mp4protection:2011")
            .unwrap();
        assert_eq!(mp4protection.value.as_deref(), Some(scheme));
        let kid = mp4protection.default_KID.clone().unwrap().replace('-', "");
        let clearkey = video
            .ContentProtection
            .iter()
            .find(|c| c.schemeIdUri == "urn:uuid:e2719d58-a985-b3c9-781a-b030af78d30e")
            .unwrap();
        // DASH-IF's `dashif:Laurl` (dash-mpd-core files the capitalised name separately).
        let laurl = clearkey
            .laurl
            .as_ref()
            .or(clearkey.clearkey_laurl.as_ref())
            .and_then(|l| l.content.clone())
            .unwrap();
        // Absolute, on the host the manifest was asked from (`host: edge` in these requests).
        let path = laurl
            .strip_prefix("http://edge")
            .unwrap_or_else(|| panic!("absolute license URL: {laurl}"));
        // The license, as EME's ClearKey asks for it: a POST naming the key ids.
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let post = |path: &str, body: &str| {
            let request = format!(
                "POST {path} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                h.addr,
                body.len()
            );
            sidecar::raw(h.addr, request.as_bytes())
        };
        let request = edgepack_test_support::clearkey::request(&kid).unwrap();
        let license = post(path, &request);
        assert_eq!(license.status, 200, "{}", license.text());
        assert_eq!(license.header("content-type"), Some("application/json"));
        let json: serde_json::Value = serde_json::from_slice(&license.body).unwrap();
        assert_eq!(json["keys"][0]["kty"], "oct");
        let key_hex = edgepack_test_support::clearkey::key(&license.body, &kid).unwrap();
        if ep == "dash-cbcs" {
            assert_eq!(key_hex, "2b7e151628aed2a6abf7158809cf4f3c");
        }
        // Refusals say why: no token, a malformed request, a key id of another endpoint.
        let unguarded = path.split('?').next().unwrap();
        assert_eq!(post(unguarded, &request).status, 403, "no token, no key");
        let r = post(path, "{}");
        assert_eq!(r.status, 400, "{}", r.text());
        assert!(r.text().contains("kids"), "{}", r.text());
        let other = b64.encode([7u8; 16]);
        let r = post(path, &format!(r#"{{"kids":["{other}"]}}"#));
        assert_eq!(r.status, 404, "{}", r.text());
        assert_eq!(
            get(h.addr, path).status,
            405,
            "GET is not a license request"
        );

        let decrypted = streams(
            decoded_with(&["-cenc_decryption_key", &key_hex], &mpd_url(ep), "0:v").unwrap(),
        );
        assert_eq!(decrypted, dash_video, "{ep}: every frame decrypted");
        let audio = streams(
            decoded_with(&["-cenc_decryption_key", &key_hex], &mpd_url(ep), "0:a").unwrap(),
        );
        assert_eq!(audio, dash_audio, "{ep}: every audio frame decrypted");
        let wrong = decoded_with(
            &["-cenc_decryption_key", "00000000000000000000000000000000"],
            &mpd_url(ep),
            "0:v",
        );
        assert!(
            wrong.map_or(true, |f| streams(f) != dash_video),
            "{ep}: a wrong key does not give the pictures"
        );
    }
    assert_eq!(h.traps(), 0);
    sc.stop();
}
