//! User story: a channel keeps a 14-day startover window, and viewers still get the live edge
//! and any time-shifted range of it. Fourteen days of two renditions of 2 s segments (604,800
//! per rendition) are written in the store's own on-disk form in seconds — real ffmpeg segments
//! cycled by hard links, program date times contiguous up to now (`fabricate_history`) — and
//! the real sidecar starts on them; the real `edgepack_filter.wasm` in the test host serves
//! them. ffmpeg as the player decodes every frame of the live edge and of a range from day one,
//! clear and AES-128. The live playlist holds its window, not the history.
//!
//! The store tools are optimized builds: over a million index entries are written and read
//! back, which unoptimized code does ten times slower.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use edgepack_host::{HostOptions, RunningHost, start};
use edgepack_test_support::history::{FOURTEEN_DAYS_SECONDS, FRAME_RATE, fabricate};
use edgepack_test_support::player::{decoded, decoded_live};
use edgepack_test_support::{artifacts, sidecar};
use sidecar::{Sidecar, get, segment_uris, tag_value, write_config};

const RENDITIONS: usize = 2;
const SEGMENT_SECONDS: u32 = 2;
/// The endpoints' live window.
const WINDOW_SECONDS: u32 = 60;

fn config() -> Vec<u8> {
    format!(
        r#"{{ "store": {{ "cluster": "edgepack_store", "authority": "store", "timeout_ms": 5000 }},
      "channels": {{ "news": {{ "endpoints": {{
        "hls": {{ "format": "hls", "manifest_window_seconds": {WINDOW_SECONDS},
                  "program_date_time_interval_seconds": 2 }},
        "secure": {{ "format": "hls", "manifest_window_seconds": {WINDOW_SECONDS},
          "encryption": {{ "method": "aes-128", "key_rotation_interval_seconds": 30,
                          "key": {{ "derived": {{ "secret": "0123456789abcdef0123" }} }},
                          "key_token": {{ "secret": "tok-0123456789abcdef", "ttl_seconds": 300 }} }} }} }} }} }} }}"#
    )
    .into_bytes()
}

fn host(wasm: PathBuf, store: SocketAddr) -> RunningHost {
    let mut o = HostOptions::new(wasm, config());
    o.clusters = vec![("edgepack_store".into(), store)];
    o.workers = 2;
    start(o).unwrap()
}

/// The EXTINF durations of a media playlist, in seconds.
fn total_seconds(playlist: &str) -> f64 {
    playlist
        .lines()
        .filter_map(|l| l.strip_prefix("#EXTINF:"))
        .map(|d| d.trim_end_matches(',').parse::<f64>().unwrap())
        .sum()
}

#[test]
fn a_fourteen_day_window_plays_live_and_from_day_one() {
    let (store, fabricator) = artifacts::optimized_store_tools().unwrap();
    // Built before the history is written, so the live edge is still now when it plays.
    let wasm = artifacts::filter_wasm().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // The data directory of `write_config`.
    let written = fabricate(
        &fabricator,
        &dir.path().join("data"),
        "news",
        RENDITIONS,
        (FOURTEEN_DAYS_SECONDS / 3600) as f64,
        SEGMENT_SECONDS,
    )
    .unwrap();
    eprintln!("14 days written: {written}");
    let segments = written["segments_per_rendition"].as_u64().unwrap();
    assert_eq!(segments, FOURTEEN_DAYS_SECONDS / u64::from(SEGMENT_SECONDS));
    let started = Instant::now();
    let sc = Sidecar::start_binary(
        &store,
        &write_config(
            dir.path(),
            "",
            &format!("startover_window_seconds = {FOURTEEN_DAYS_SECONDS}\n"),
        ),
    );
    eprintln!(
        "sidecar read the 14-day index back in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let status = sc.status();
    let renditions = status["renditions"].as_array().unwrap();
    assert_eq!(renditions.len(), RENDITIONS, "{status}");
    for r in renditions {
        // The window is full: the oldest segments leave it as time passes, a few so far.
        let kept = r["segments"].as_u64().unwrap();
        assert!(kept <= segments && kept + 300 > segments, "{r}");
        assert_eq!(r["last_sequence"].as_u64(), Some(segments - 1), "{r}");
    }
    let first_pdt = renditions[0]["first_program_date_time"].as_str().unwrap();
    let first_s = chrono::DateTime::parse_from_rfc3339(first_pdt)
        .unwrap()
        .timestamp();
    let h = host(wasm, sc.internal);

    // The live playlist: the newest minute, numbered as the history, a few KB — not the 600,000
    // segments behind it.
    let fetched = Instant::now();
    let live = get(h.addr, "/out/v1/news/hls/stream_0/index.m3u8");
    eprintln!(
        "live playlist over a 14-day history: {} bytes in {} ms",
        live.body.len(),
        fetched.elapsed().as_millis()
    );
    let text = live.text();
    assert_eq!(live.status, 200, "{text}");
    let uris = segment_uris(&text);
    let per_window = (WINDOW_SECONDS / SEGMENT_SECONDS) as usize;
    assert!(
        (per_window - 1..=per_window + 1).contains(&uris.len()),
        "{text}"
    );
    assert!(live.body.len() < 8 * 1024, "{text}");
    assert!(!text.contains("#EXT-X-ENDLIST"), "a live playlist: {text}");
    assert_eq!(
        uris.last().map(String::as_str),
        Some(&*format!("{}.ts", segments - 1))
    );
    let newest = text
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:"))
        .unwrap();
    assert_eq!(
        Some(newest),
        written["last_program_date_time"].as_str(),
        "the live edge is the history's newest segment: {text}"
    );
    let now_s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let newest_s = chrono::DateTime::parse_from_rfc3339(newest)
        .unwrap()
        .timestamp();
    eprintln!("the live edge is {} s old", now_s - newest_s);

    // The live edge plays: 40 s of it from the window's oldest segment, every frame, each
    // rendition (ffmpeg plays one live rendition at a time: given the multivariant playlist, it
    // interleaves the two by timestamps, which restart with each cycle of the fabricated
    // history, and waits on one for a reload); the AES-128 endpoint decodes to the very same
    // frames.
    let play_seconds = 40;
    for r in 0..RENDITIONS {
        let live_url = |endpoint: &str| {
            format!(
                "http://{}/out/v1/news/{endpoint}/stream_{r}/index.m3u8",
                h.addr
            )
        };
        let clear = decoded_live(&live_url("hls"), "0:v", play_seconds).unwrap();
        assert_eq!(
            clear.get(&0).map(Vec::len),
            Some((play_seconds * FRAME_RATE) as usize),
            "stream_{r}: {play_seconds} s of the live edge decoded"
        );
        let secure = decoded_live(&live_url("secure"), "0:v", play_seconds).unwrap();
        assert_eq!(
            secure, clear,
            "stream_{r}: AES-128 live edge, the same frames"
        );
    }

    // A minute from day one, an hour after the oldest segment: a VOD playlist of that range
    // alone, every frame decoded, clear and AES-128.
    let start = first_s + 3600;
    let range = format!("start={start}&end={}", start + 60);
    let day_one = get(
        h.addr,
        &format!("/out/v1/news/hls/stream_0/index.m3u8?{range}"),
    );
    let text = day_one.text();
    assert_eq!(day_one.status, 200, "{text}");
    assert!(text.contains("#EXT-X-ENDLIST"), "{text}");
    let uris = segment_uris(&text);
    assert!((29..=31).contains(&uris.len()), "a minute: {text}");
    let first_seq: u64 = tag_value(&text, "#EXT-X-MEDIA-SEQUENCE")
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        first_seq > 1000 && first_seq < 3000,
        "an hour into day one: {text}"
    );
    let seconds = total_seconds(&text);
    let url = |endpoint: &str| {
        format!(
            "http://{}/out/v1/news/{endpoint}/index.m3u8?{range}",
            h.addr
        )
    };
    let clear = decoded(&url("hls"), "0:v").unwrap();
    assert_eq!(clear.len(), RENDITIONS, "{:?}", clear.keys());
    for (stream, frames) in &clear {
        assert_eq!(
            frames.len(),
            (seconds * f64::from(FRAME_RATE)).round() as usize,
            "stream {stream}: every frame of {seconds} s from day one decoded"
        );
    }
    let secure = decoded(&url("secure"), "0:v").unwrap();
    assert_eq!(secure, clear, "AES-128 day one: the same frames");
    assert_eq!(h.traps(), 0);

    // 1.2 million directory entries: removing them is part of the test's time, one rendition
    // per thread (each directory is locked on its own).
    drop(sc);
    let removing = Instant::now();
    let renditions_dir = dir.path().join("data/news/renditions");
    std::thread::scope(|s| {
        for item in std::fs::read_dir(&renditions_dir).unwrap() {
            let path = item.unwrap().path();
            s.spawn(move || std::fs::remove_dir_all(path).unwrap());
        }
    });
    drop(dir);
    eprintln!("store removed in {:.1} s", removing.elapsed().as_secs_f64());
}
