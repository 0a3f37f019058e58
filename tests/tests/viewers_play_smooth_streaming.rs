//! User story: viewers on Smooth Streaming devices get the channel an encoder pushes as plain
//! MPEG-TS HLS, through the real `.wasm` in the test host.
//! - The client manifest says what the channel is: both variants as video QualityLevels with
//!   the bitrates and sizes of the multivariant playlist and `CodecPrivateData` from the
//!   segments, one audio stream, `c` times that are the segments' program date times.
//! - GStreamer's `mssdemux` (the player) decodes the time-shifted endpoint: exactly the video
//!   frames ffmpeg decodes from the same channel's HLS endpoint, for each QualityLevel, and
//!   exactly its audio frames.
//! - It plays the live endpoint while the encoder pushes: every frame it decodes is a frame of
//!   the channel, in order, without a gap (it replays a few after a manifest reload: its bug).
//! - Fragments carry `tfxd` (their time) and `tfrf` (the next one's, the store's newest segment's
//!   too), and are cached per edge; the fragment the newest announces is a 404 until pushed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

use std::collections::BTreeMap;

use base64::Engine as _;
use std::time::Duration;

use edgepack_host::{HostOptions, start};
use edgepack_test_support::player::{decoded, decoded_audio_f32, smooth_played};
use edgepack_test_support::sidecar;
use edgepack_tests::piff::{fragment_samples, piff_decrypt};
use edgepack_tests::xml_attr as attr;
use sidecar::get;

const CONFIG: &str = r#"{ "store": { "cluster": "edgepack_store" },
  "channels": { "news": { "endpoints": {
    "hls": { "format": "hls", "manifest_window_seconds": 30 },
    "mss": { "format": "mss", "manifest_window_seconds": 30 },
    "mss-cenc": { "format": "mss", "manifest_window_seconds": 30,
      "encryption": { "method": "cenc", "key_rotation_interval_seconds": 0,
                      "key": { "static": { "key_hex": "2b7e151628aed2a6abf7158809cf4f3c" } },
                      "key_token": { "secret": "tok-0123456789abcdef" } } } } } } }"#;

const KEY: [u8; 16] = [
    0x2b, 0x7e, 0x15, 0x16, 0x28, 0xae, 0xd2, 0xa6, 0xab, 0xf7, 0x15, 0x88, 0x09, 0xcf, 0x4f, 0x3c,
];

/// A live encoder, then GStreamer on the live and the time-shifted Smooth Streaming endpoint.
#[test]
fn smooth_streaming_plays_live_and_time_shifted_frame_for_frame() {
    let dir = tempfile::tempdir().unwrap();
    let sc_config = sidecar::write_config(dir.path(), "", "");
    let mut sc = sidecar::Sidecar::start(&sc_config);
    let encoder = sidecar::Encoder::start(sidecar::EncoderSpec {
        two_renditions: true,
        ..sidecar::EncoderSpec::digest(sc.ingest, 1, 24)
    });
    let mut o = HostOptions::new(
        edgepack_test_support::artifacts::filter_wasm().unwrap(),
        CONFIG.as_bytes().to_vec(),
    );
    o.clusters = vec![("edgepack_store".into(), sc.internal)];
    let h = start(o).unwrap();

    // Live, while the encoder pushes: once 4 segments are in, play for 10 s.
    sidecar::wait_for(Duration::from_secs(60), "4 segments", || {
        let pl = sc.get("/store/v1/news/stream_0/index.m3u8");
        (pl.status == 200 && sidecar::segment_uris(&pl.text()).len() >= 4).then_some(())
    });
    let live_url = format!("http://{}/out/v1/news/mss/Manifest", h.addr);
    let live = smooth_played(&live_url, 100_000, 10).unwrap();
    assert!(!live.ended, "a live manifest plays until stopped");
    encoder.wait(Duration::from_secs(60));
    // The encoder's last segment may be published a moment after it exits (its playlist and
    // segment uploads race): all 12 in both renditions before the history's range is taken.
    sidecar::wait_for(Duration::from_secs(10), "12 segments", || {
        let whole = ["stream_0", "stream_1"].iter().all(|r| {
            let pl = sc.get(&format!("/store/v1/news/{r}/index.m3u8"));
            pl.status == 200 && sidecar::segment_uris(&pl.text()).len() >= 12
        });
        whole.then_some(())
    });

    // The whole history, time-shifted: a past range is not live.
    let range = sidecar::whole_history_range(&sc.status());
    let r = get(h.addr, &format!("/out/v1/news/mss/Manifest?{range}"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("content-type"),
        Some("application/vnd.ms-sstr+xml")
    );
    let m = r.text();
    assert_eq!(
        attr(&m, "SmoothStreamingMedia", "TimeScale", 0),
        Some("10000000")
    );
    assert_eq!(attr(&m, "SmoothStreamingMedia", "IsLive", 0), None, "{m}");
    let multivariant = String::from_utf8(sc.get_ok("/store/v1/news/index.m3u8")).unwrap();
    let store_pl = String::from_utf8(sc.get_ok("/store/v1/news/stream_0/index.m3u8")).unwrap();
    let first_pdt = sidecar::tag_value(&store_pl, "#EXT-X-PROGRAM-DATE-TIME").unwrap();
    let first_pdt_ms = chrono::DateTime::parse_from_rfc3339(first_pdt)
        .unwrap()
        .timestamp_millis();
    let first_t = (first_pdt_ms - 1_577_836_800_000) * 10_000;
    let video = m.find("<StreamIndex Type=\"video\"").unwrap();
    assert_eq!(
        attr(&m, "c", "t", video),
        Some(first_t.to_string().as_str())
    );
    assert_eq!(attr(&m, "c", "d", video), Some("20000000"));
    assert_eq!(attr(&m, "StreamIndex", "QualityLevels", video), Some("2"));
    let mut bitrates = Vec::new();
    let mut at = video;
    while let Some(b) = attr(&m, "QualityLevel", "Bitrate", at) {
        let level = at + m[at..].find("<QualityLevel ").unwrap();
        if level > m[video..].find("</StreamIndex>").unwrap() + video {
            break;
        }
        // SPS and PPS in Annex B.
        let cpd = attr(&m, "QualityLevel", "CodecPrivateData", level).unwrap();
        assert!(
            cpd.starts_with("0000000167") && cpd.contains("0000000168"),
            "{cpd}"
        );
        bitrates.push(b.parse::<u32>().unwrap());
        at = level + 1;
    }
    // Each variant's BANDWIDTH; the encoder states the same for both, so the second is made
    // unique (a fragment URL's bitrate names one variant).
    let bandwidths: Vec<u32> = multivariant
        .split("BANDWIDTH=")
        .skip(1)
        .map(|b| b.split(',').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(bandwidths[0], bandwidths[1], "{multivariant}");
    assert_eq!(bitrates, [bandwidths[0], bandwidths[0] + 1], "{m}");
    let audio = m.find("<StreamIndex Type=\"audio\"").unwrap();
    assert_eq!(attr(&m, "QualityLevel", "FourCC", audio), Some("AACL"));
    assert_eq!(
        attr(&m, "QualityLevel", "SamplingRate", audio),
        Some("48000")
    );
    assert_eq!(
        attr(&m, "QualityLevel", "CodecPrivateData", audio),
        Some("1188"),
        "AAC LC, 48 kHz, mono (the test tone)"
    );

    // The same frames as the HLS endpoint, for each QualityLevel.
    let hls_url = format!("http://{}/out/v1/news/hls/index.m3u8?{range}", h.addr);
    let hls: BTreeMap<u32, Vec<String>> = decoded(&hls_url, "0:v").unwrap();
    let hls: Vec<Vec<String>> = hls.into_values().collect();
    assert!(
        hls.iter().all(|f| f.len() >= 24 * 25),
        "24 s at 25 fps: {:?}",
        hls.iter().map(Vec::len).collect::<Vec<_>>()
    );
    // The muxed audio (the same in both variants): every AAC frame as 32-bit float.
    let hls_audio = decoded_audio_f32(&hls_url)
        .unwrap()
        .into_values()
        .next()
        .unwrap();
    assert!(hls_audio.len() > 24 * 46, "24 s of 48 kHz AAC");
    let shifted_url = format!("http://{}/out/v1/news/mss/Manifest?{range}", h.addr);
    let mut played = Vec::new();
    // mssdemux takes the highest QualityLevel under its connection speed, else the lowest.
    for (b, kbps) in bitrates.iter().zip([1, 100_000]) {
        let p = smooth_played(&shifted_url, kbps, 90).unwrap();
        assert!(p.ended, "a past range ends");
        assert_eq!(
            p.audio[0], hls_audio,
            "the HLS endpoint's sound, frame for frame"
        );
        assert!(
            hls.contains(&p.video),
            "QualityLevel {b}: the HLS endpoint's frames"
        );
        played.push(p.video);
    }
    assert_ne!(played[0], played[1], "each QualityLevel is its own variant");

    // Live: frames of the channel, in order, none skipped. GStreamer's mssdemux (1.22) re-seeks
    // to a stale position when it reloads a live manifest after following `tfrf` announcements,
    // and plays a few fragments again: a step back is its replay, never a step forward.
    assert!(
        live.video.len() >= 5 * 25,
        "{} frames in 10 s",
        live.video.len()
    );
    let whole = hls
        .iter()
        .find(|f| f.contains(&live.video[0]))
        .expect("the live frames are the channel's");
    let mut at = whole.iter().position(|f| *f == live.video[0]).unwrap();
    let mut replays = 0;
    for (i, frame) in live.video.iter().enumerate().skip(1) {
        if whole.get(at + 1) == Some(frame) {
            at += 1;
            continue;
        }
        let back = whole[..=at]
            .iter()
            .rposition(|f| f == frame)
            .unwrap_or_else(|| panic!("live frame {i} skips ahead or is not this variant's"));
        replays += 1;
        assert!(replays <= 3, "live: replayed {replays} times");
        at = back;
    }
    // A fragment: tfxd states its time; tfrf the next one's. Cached on the edge after.
    let path = format!(
        "/out/v1/news/mss/QualityLevels({})/Fragments(video={first_t})",
        bitrates[0]
    );
    let f = get(h.addr, &path);
    assert_eq!(f.status, 200, "{}", f.text());
    assert_eq!(f.header("content-type"), Some("video/mp4"));
    let tfxd = [
        0x6D, 0x1D, 0x9B, 0x05, 0x42, 0xD5, 0x44, 0xE6, 0x80, 0xE2, 0x14, 0x1D, 0xAF, 0xF7, 0x57,
        0xB2,
    ];
    let at = f.body.windows(16).position(|w| w == tfxd).unwrap();
    let time = u64::from_be_bytes(f.body[at + 20..at + 28].try_into().unwrap());
    let duration = u64::from_be_bytes(f.body[at + 28..at + 36].try_into().unwrap());
    assert_eq!((time, duration), (first_t as u64, 20_000_000));
    assert_eq!(get(h.addr, &path).body, f.body, "the same bytes again");
    let tfrf = [
        0xD4, 0x80, 0x7E, 0xF2, 0xCA, 0x39, 0x46, 0x95, 0x8E, 0x54, 0x26, 0xCB, 0x9E, 0x46, 0xA7,
        0x9F,
    ];
    // tfrf (version 1): its entry count, then the next fragment's time and duration.
    let announced = |body: &[u8]| {
        let at = body
            .windows(16)
            .position(|w| w == tfrf)
            .expect("a tfrf box")
            + 20;
        let u64_at = |i: usize| u64::from_be_bytes(body[i..i + 8].try_into().unwrap());
        (body[at], u64_at(at + 1), u64_at(at + 9))
    };
    assert_eq!(
        announced(&f.body),
        (1, first_t as u64 + 20_000_000, 20_000_000),
        "announces the next"
    );
    assert_eq!(
        f.header("cache-control"),
        Some("max-age=1209600, immutable")
    );
    // The store's newest segment (the encoder stopped after 12): its fragment announces the
    // next all the same, at its end, as long — live clients learn the edge only from `tfrf`
    // (dash.js never reloads a live Smooth manifest) — and is as immutable as any. The fragment
    // it announces is not there yet: 404, not kept, so the player's retry finds it once pushed.
    let newest_t = first_t + 11 * 20_000_000;
    let newest = get(
        h.addr,
        &format!(
            "/out/v1/news/mss/QualityLevels({})/Fragments(video={newest_t})",
            bitrates[0]
        ),
    );
    assert_eq!(newest.status, 200, "{}", newest.text());
    assert_eq!(
        announced(&newest.body),
        (1, newest_t as u64 + 20_000_000, 20_000_000)
    );
    assert_eq!(
        newest.header("cache-control"),
        Some("max-age=1209600, immutable")
    );
    let next = get(
        h.addr,
        &format!(
            "/out/v1/news/mss/QualityLevels({})/Fragments(video={})",
            bitrates[0],
            newest_t + 20_000_000
        ),
    );
    assert_eq!(next.status, 404, "{}", next.text());
    assert_eq!(next.header("cache-control"), Some("no-store"));
    // What does not exist: a clear 404.
    let missing = get(
        h.addr,
        &format!("/out/v1/news/mss/QualityLevels(12345)/Fragments(video={first_t})"),
    );
    assert_eq!(missing.status, 404);
    assert!(
        missing
            .text()
            .contains("no video QualityLevel has bitrate 12345")
    );
    let before = get(
        h.addr,
        &format!(
            "/out/v1/news/mss/QualityLevels({})/Fragments(video={})",
            bitrates[0],
            first_t - 3_600 * 10_000_000
        ),
    );
    assert_eq!(before.status, 404, "{}", before.text());

    // Encrypted (PIFF cenc): the manifest carries a PlayReady ProtectionHeader naming the key
    // id; the fragments, decrypted with the key, are the clear endpoint's samples exactly.
    let r = get(h.addr, &format!("/out/v1/news/mss-cenc/Manifest?{range}"));
    assert_eq!(r.status, 200, "{}", r.text());
    let e = r.text();
    assert_eq!(
        attr(&e, "ProtectionHeader", "SystemID", 0),
        Some("9A04F079-9840-4286-AB92-E65BE0885F95")
    );
    // The PlayReady object: length, one record (type 1), the UTF-16LE WRMHEADER with the KID
    // in GUID byte order — the endpoint's key id.
    let object = base64::engine::general_purpose::STANDARD
        .decode(
            e.split("SystemID=\"9A04F079-9840-4286-AB92-E65BE0885F95\">")
                .nth(1)
                .unwrap()
                .split('<')
                .next()
                .unwrap(),
        )
        .unwrap();
    let units: Vec<u16> = object[10..]
        .chunks(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    let wrm = String::from_utf16(&units).unwrap();
    let guid = base64::engine::general_purpose::STANDARD
        .decode(
            wrm.split("<KID>")
                .nth(1)
                .unwrap()
                .split('<')
                .next()
                .unwrap(),
        )
        .unwrap();
    let settings = edgepack_filter::config::Settings::from_json(CONFIG.as_bytes()).unwrap();
    let kid = edgepack_filter::crypto::kid_for(&settings.channels["news"]["mss-cenc"], 0);
    let mut expected = kid.to_vec();
    expected[..4].reverse();
    expected[4..6].reverse();
    expected[6..8].reverse();
    assert_eq!(guid, expected, "{wrm}");
    let (without, _) = e.split_once("<Protection>").unwrap();
    assert!(m.starts_with(without), "otherwise the clear manifest");
    for (stream, bitrate) in [("video", bitrates[0]), ("audio", 128_000)] {
        let file = format!("QualityLevels({bitrate})/Fragments({stream}={first_t})");
        let clear = get(h.addr, &format!("/out/v1/news/mss/{file}"));
        let encrypted = get(h.addr, &format!("/out/v1/news/mss-cenc/{file}"));
        assert_eq!(encrypted.status, 200, "{}", encrypted.text());
        let (_, clear_samples) = fragment_samples(&clear.body);
        let (_, sealed) = fragment_samples(&encrypted.body);
        assert_ne!(sealed, clear_samples, "{stream}: encrypted");
        assert_eq!(
            piff_decrypt(&encrypted.body, &KEY),
            clear_samples,
            "{stream}: the key gives back the clear samples"
        );
        let mut wrong = KEY;
        wrong[0] ^= 1;
        assert_ne!(piff_decrypt(&encrypted.body, &wrong), clear_samples);
    }
    assert_eq!(h.traps(), 0);
    sc.stop();
}
