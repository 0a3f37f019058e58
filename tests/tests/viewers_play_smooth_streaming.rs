//! User story: viewers on Smooth Streaming devices get the channel an encoder pushes as plain
//! MPEG-TS HLS, through the real `.wasm` in the test host.
//! - The client manifest says what the channel is: both variants as video QualityLevels with
//!   the bitrates and sizes of the multivariant playlist and `CodecPrivateData` from the
//!   segments, one audio stream, `c` times that are the segments' program date times.
//! - GStreamer's `mssdemux` (the player) decodes the time-shifted endpoint: exactly the frames
//!   ffmpeg decodes from the same channel's HLS endpoint, for each QualityLevel.
//! - It plays the live endpoint while the encoder pushes: every frame it decodes is a frame of
//!   the channel, in order, without a gap.
//! - Fragments carry `tfxd` (their time) and `tfrf` (the next one's), and are cached per edge.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

use std::collections::BTreeMap;
use std::time::Duration;

use edgepack_host::{HostOptions, start};
use edgepack_test_support::player::{decoded, smooth_played};
use edgepack_test_support::sidecar;
use sidecar::get;

const CONFIG: &str = r#"{ "store": { "cluster": "edgepack_store" },
  "channels": { "news": { "endpoints": {
    "hls": { "format": "hls", "manifest_window_seconds": 30 },
    "mss": { "format": "mss", "manifest_window_seconds": 30 } } } } }"#;

/// The attribute `name` of the first element `<{tag} …>` in `xml` at or after `from`.
fn attr<'a>(xml: &'a str, tag: &str, name: &str, from: usize) -> Option<&'a str> {
    let start = from + xml[from..].find(&format!("<{tag} "))?;
    let end = start + xml[start..].find('>')?;
    let element = &xml[start..end];
    let key = format!(" {name}=\"");
    let v = element.find(&key)? + key.len();
    Some(&element[v..v + element[v..].find('"')?])
}

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
    assert!(hls.iter().all(|f| f.len() >= 24 * 25), "24 s at 25 fps");
    let shifted_url = format!("http://{}/out/v1/news/mss/Manifest?{range}", h.addr);
    let mut played = Vec::new();
    // mssdemux takes the highest QualityLevel under its connection speed, else the lowest.
    for (b, kbps) in bitrates.iter().zip([1, 100_000]) {
        let p = smooth_played(&shifted_url, kbps, 90).unwrap();
        assert!(p.ended, "a past range ends");
        assert!(
            p.audio_buffers > 24 * 40,
            "24 s of AAC: {}",
            p.audio_buffers
        );
        assert!(
            hls.contains(&p.video),
            "QualityLevel {b}: the HLS endpoint's frames"
        );
        played.push(p.video);
    }
    assert_ne!(played[0], played[1], "each QualityLevel is its own variant");

    // Live: frames of the channel, in order, none skipped.
    assert!(
        live.video.len() >= 5 * 25,
        "{} frames in 10 s",
        live.video.len()
    );
    let whole = hls
        .iter()
        .find(|f| f.contains(&live.video[0]))
        .expect("the live frames are the channel's");
    let from = whole.iter().position(|f| *f == live.video[0]).unwrap();
    assert_eq!(
        &whole[from..from + live.video.len()],
        live.video.as_slice(),
        "live: consecutive frames of one variant"
    );

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
    sc.stop();
}
