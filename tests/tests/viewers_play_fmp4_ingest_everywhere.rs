//! User story: an encoder pushes fMP4 (CMAF) HLS — ffmpeg's `-hls_segment_type fmp4`, video and
//! AAC in each rendition — and every endpoint format serves it, clear and encrypted, through the
//! real `.wasm` in the test host. The reference is the clear hls endpoint, which passes the
//! encoder's fMP4 through untouched; every other endpoint repackages it at the edge (the store
//! names each segment's initialization segment, the filter reads both):
//! - AES-128 hls: ffmpeg fetches the key and decodes exactly the reference's frames; the
//!   initialization segment is declared before the key and served clear.
//! - DASH, clear and `cenc`: ffmpeg's DASH demuxer decodes the reference's frames (with the key;
//!   without it, not).
//! - CMAF HLS `cbcs`: the playlist's initialization segment and fragments, joined as a player
//!   appends them, decrypt (ffmpeg `-decryption_key`) to the reference's frames.
//! - Smooth Streaming: GStreamer's `mssdemux` decodes both QualityLevels' frames and the sound;
//!   the PIFF `cenc` endpoint's fragments decrypt with the key to the clear endpoint's samples.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

use std::collections::BTreeMap;
use std::time::Duration;

use edgepack_host::{HostOptions, start};
use edgepack_test_support::player::{
    decoded, decoded_audio_f32, decoded_with, piped_frames, smooth_played,
};
use edgepack_test_support::{artifacts, sidecar};
use edgepack_tests::piff::{fragment_samples, piff_decrypt};
use edgepack_tests::xml_attr;
use sidecar::get;

const KEY: &str = "2b7e151628aed2a6abf7158809cf4f3c";

const CONFIG: &str = r#"{ "store": { "cluster": "edgepack_store" },
  "channels": { "news": { "endpoints": {
    "hls": { "format": "hls", "manifest_window_seconds": 30 },
    "hls-aes": { "format": "hls", "manifest_window_seconds": 30,
      "encryption": { "method": "aes-128", "key": { "derived": { "secret": "0123456789abcdef0123" } },
                      "key_token": { "secret": "tok-0123456789abcdef" } } },
    "cmaf-cbcs": { "format": "cmaf", "manifest_window_seconds": 30,
      "encryption": { "method": "cbcs", "key_rotation_interval_seconds": 0,
                      "key": { "static": { "key_hex": "2b7e151628aed2a6abf7158809cf4f3c" } },
                      "key_token": { "secret": "tok-0123456789abcdef" } } },
    "dash": { "format": "dash", "manifest_window_seconds": 30 },
    "dash-cenc": { "format": "dash", "manifest_window_seconds": 30,
      "encryption": { "method": "cenc", "key_rotation_interval_seconds": 0,
                      "key": { "static": { "key_hex": "2b7e151628aed2a6abf7158809cf4f3c" } },
                      "key_token": { "secret": "tok-0123456789abcdef" } } },
    "mss": { "format": "mss", "manifest_window_seconds": 30 },
    "mss-cenc": { "format": "mss", "manifest_window_seconds": 30,
      "encryption": { "method": "cenc", "key_rotation_interval_seconds": 0,
                      "key": { "static": { "key_hex": "2b7e151628aed2a6abf7158809cf4f3c" } },
                      "key_token": { "secret": "tok-0123456789abcdef" } } } } } } }"#;

/// Per-stream frame MD5 lists, sorted: players number streams differently.
fn streams(frames: BTreeMap<u32, Vec<String>>) -> Vec<Vec<String>> {
    let mut v: Vec<Vec<String>> = frames.into_values().collect();
    v.sort();
    v
}

#[test]
fn every_endpoint_format_serves_fmp4_ingest_clear_and_encrypted() {
    let dir = tempfile::tempdir().unwrap();
    let mut sc = sidecar::Sidecar::start(&sidecar::write_config(dir.path(), "", ""));
    sidecar::Encoder::start(sidecar::EncoderSpec {
        two_renditions: true,
        fmp4: true,
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

    // The store answers a segment whatever its container (`.media`) and names its init.
    let store_pl = String::from_utf8(sc.get_ok("/store/v1/news/stream_0/index.m3u8")).unwrap();
    let first = sidecar::segment_uris(&store_pl)[0].clone();
    let seq = first.split('.').next().unwrap();
    let seg = sc.get(&format!("/store/v1/news/stream_0/{seq}.media"));
    assert_eq!(seg.status, 200, "{}", seg.text());
    assert_eq!(seg.header("content-type"), Some("video/mp4"));
    let init_id = seg.header("x-edgepack-init").unwrap().to_owned();
    assert!(
        store_pl.contains(&format!("init-{init_id}.mp4")),
        "the init the playlist maps: {store_pl}"
    );

    let url = |ep: &str, file: &str| format!("http://{}/out/v1/news/{ep}/{file}?{range}", h.addr);
    let reference_video = streams(decoded(&url("hls", "index.m3u8"), "0:v").unwrap());
    assert_eq!(reference_video.len(), 2, "both renditions");
    assert!(
        reference_video.iter().all(|f| f.len() == 200),
        "8 s at 25 fps"
    );
    let reference_audio = streams(decoded(&url("hls", "index.m3u8"), "0:a").unwrap());

    // AES-128: segments encrypted whole, the init clear and declared before the key.
    let pl = get(
        h.addr,
        &format!("/out/v1/news/hls-aes/stream_0/index.m3u8?{range}"),
    );
    assert_eq!(pl.status, 200, "{}", pl.text());
    let text = pl.text();
    let map = text.find("#EXT-X-MAP:").unwrap();
    assert!(
        map < text.find("#EXT-X-KEY:METHOD=AES-128").unwrap(),
        "{text}"
    );
    let aes = streams(decoded(&url("hls-aes", "index.m3u8"), "0:v").unwrap());
    assert_eq!(aes, reference_video, "AES-128 of fMP4: every frame");

    // DASH, clear and cenc.
    let mpd = get(h.addr, &format!("/out/v1/news/dash/index.mpd?{range}"));
    assert_eq!(mpd.status, 200, "{}", mpd.text());
    let dash = streams(decoded(&url("dash", "index.mpd"), "0:v").unwrap());
    assert_eq!(dash, reference_video, "DASH from fMP4 ingest: every frame");
    let dash_audio = streams(decoded(&url("dash", "index.mpd"), "0:a").unwrap());
    assert_eq!(dash_audio.len(), 1);
    assert!(
        reference_audio.contains(&dash_audio[0]),
        "DASH from fMP4 ingest: the same sound"
    );
    let cenc = streams(
        decoded_with(
            &["-cenc_decryption_key", KEY],
            &url("dash-cenc", "index.mpd"),
            "0:v",
        )
        .unwrap(),
    );
    assert_eq!(cenc, reference_video, "cenc of fMP4 ingest: every frame");
    let wrong = decoded_with(
        &["-cenc_decryption_key", "00000000000000000000000000000000"],
        &url("dash-cenc", "index.mpd"),
        "0:v",
    );
    assert!(
        wrong.map_or(true, |f| streams(f) != reference_video),
        "a wrong key does not give the pictures"
    );

    // CMAF HLS cbcs: the playlist's init and fragments as a player appends them.
    let (text, file) =
        edgepack_tests::joined_fragments(h.addr, "/out/v1/news/cmaf-cbcs/stream_0", &range);
    assert!(text.contains("#EXT-X-KEY:METHOD=SAMPLE-AES,"), "{text}");
    assert_eq!(&file[4..8], b"ftyp");
    let cbcs = piped_frames(&file, KEY, "0:v").unwrap();
    assert!(
        reference_video.contains(&cbcs),
        "cbcs of fMP4 ingest: one rendition's every frame"
    );
    assert!(
        !reference_video
            .contains(&piped_frames(&file, "00000000000000000000000000000000", "0:v").unwrap()),
        "really encrypted"
    );

    // Smooth Streaming: both QualityLevels and the sound.
    let hls_audio_f32 = decoded_audio_f32(&url("hls", "index.m3u8"))
        .unwrap()
        .into_values()
        .next()
        .unwrap();
    let mut played = Vec::new();
    for kbps in [1, 100_000] {
        let p = smooth_played(&url("mss", "Manifest"), kbps, 90).unwrap();
        assert!(p.ended, "a past range ends");
        assert!(
            reference_video.contains(&p.video),
            "Smooth Streaming from fMP4 ingest: a rendition's every frame"
        );
        assert_eq!(p.audio[0], hls_audio_f32, "the same sound, frame for frame");
        played.push(p.video);
    }
    assert_ne!(
        played[0], played[1],
        "each QualityLevel is its own rendition"
    );
    // PIFF cenc (no PlayReady client here): each fragment decrypts with the key to the clear
    // endpoint's samples.
    let manifest = get(h.addr, &format!("/out/v1/news/mss/Manifest?{range}")).text();
    let bitrate = xml_attr(&manifest, "QualityLevel", "Bitrate", 0).unwrap();
    let first_t = xml_attr(&manifest, "c", "t", 0).unwrap();
    let mut key = [0u8; 16];
    for (i, b) in key.iter_mut().enumerate() {
        *b = u8::from_str_radix(&KEY[2 * i..2 * i + 2], 16).unwrap();
    }
    for (stream, bitrate) in [("video", bitrate), ("audio", "128000")] {
        let file = format!("QualityLevels({bitrate})/Fragments({stream}={first_t})");
        let clear = get(h.addr, &format!("/out/v1/news/mss/{file}"));
        let sealed = get(h.addr, &format!("/out/v1/news/mss-cenc/{file}"));
        assert_eq!((clear.status, sealed.status), (200, 200), "{file}");
        let (_, clear_samples) = fragment_samples(&clear.body);
        assert_ne!(
            fragment_samples(&sealed.body).1,
            clear_samples,
            "{stream}: encrypted"
        );
        assert_eq!(
            piff_decrypt(&sealed.body, &key),
            clear_samples,
            "{stream}: the key gives back the clear samples"
        );
    }
    assert_eq!(h.traps(), 0);
    sc.stop();
}
