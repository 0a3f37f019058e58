//! Edge sidecar benchmark (`make bench`; prints figures, never fails on timing), #15:
//!
//! 1. Segment GETs/s from an edge sidecar's memory cache vs from the bucket: `wrk -t1 -c8` pinned
//!    to core 1, the edge pinned to core 0 (`taskset`), over 40 segments of 430 KB (a 1.5 Mbit/s
//!    2 s segment) that an ingest sidecar wrote to the bucket. "Bucket": an edge with
//!    `segment_cache_megabytes = 0`, so every GET is a bucket GET (wrk's Lua script cycles the
//!    segments, so concurrent requests rarely share one).
//! 2. Bucket GETs when 100 viewers ask a fresh edge for the same new segment at once (goal: 1).
//!
//! The bucket is moto (a real S3 server in Python on loopback): the "bucket" row measures moto as
//! much as the sidecar; the cache row and the coalescing count are the sidecar's own.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // benchmark harness

use std::path::Path;
use std::process::Command;

use edgepack_test_support::bucket::S3Server;
use edgepack_test_support::sidecar::{PASSWORD_1, Sidecar, basic, put, ts_bytes};
use edgepack_test_support::summary;

const SEGMENTS: u64 = 40;
const SEGMENT_BYTES: usize = 430 * 1024;

/// Pins a running process to `core` (no-op on one core).
fn pin(pid: Option<u32>, core: &str) {
    if let Some(pid) = pid
        && std::thread::available_parallelism().map_or(1, |n| n.get()) >= 2
    {
        let _ = Command::new("taskset")
            .args(["-cp", core, &pid.to_string()])
            .output();
    }
}

/// wrk over every segment of the edge; requests/s.
fn wrk(edge: &Sidecar, seconds: u32, dir: &Path) -> f64 {
    let script = dir.join("segments.lua");
    std::fs::write(
        &script,
        format!(
            "local n = 0\nrequest = function()\n  n = (n % {SEGMENTS}) + 1\n  return wrk.format(\"GET\", \"/store/v1/news/stream/\" .. (n - 1) .. \".ts\")\nend\n"
        ),
    )
    .unwrap();
    let mut cmd = if std::thread::available_parallelism().map_or(1, |n| n.get()) >= 2 {
        let mut c = Command::new("taskset");
        c.args(["-c", "1", "wrk"]);
        c
    } else {
        Command::new("wrk")
    };
    let out = cmd
        .args(["-t1", "-c8", &format!("-d{seconds}s"), "-s"])
        .arg(&script)
        .arg(format!("http://{}", edge.internal))
        .output()
        .expect("wrk (apt-get install wrk)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("Non-2xx"), "{text}");
    text.lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or_else(|| panic!("wrk printed no rate: {text}"))
}

fn media_gets(edge: &Sidecar) -> f64 {
    let text = String::from_utf8(edge.get_ok("/metrics")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("edgepack_store_bucket_requests_total{op=\"media_get\"} "))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    let seconds = if quick { 1 } else { 10 };
    let dir = tempfile::tempdir().unwrap();
    let s3 = S3Server::start(dir.path(), "bench");
    let ingest = s3.sidecar(dir.path(), "ingest", "role = \"ingest\"");
    let auth = basic("enc1", PASSWORD_1);
    let mut playlist = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n".to_owned();
    for m in 0..SEGMENTS {
        let r = put(
            ingest.ingest,
            &format!("/in/v1/news/1/s{m}.ts"),
            Some(&auth),
            &ts_bytes(m as u8, SEGMENT_BYTES),
        );
        assert_eq!(r.status, 201, "{}", r.text());
        playlist.push_str(&format!("#EXTINF:2.0,\ns{m}.ts\n"));
    }
    let r = put(
        ingest.ingest,
        "/in/v1/news/1/stream.m3u8",
        Some(&auth),
        playlist.as_bytes(),
    );
    assert!(r.status / 100 == 2, "{}", r.text());

    let cached = s3.sidecar(dir.path(), "cached", "role = \"edge\"");
    let uncached = s3.sidecar(
        dir.path(),
        "uncached",
        "role = \"edge\"\nsegment_cache_megabytes = 0",
    );
    for edge in [&cached, &uncached] {
        pin(edge.pid(), "0");
        // Warm: the edge has the index; the cached one every segment.
        for m in 0..SEGMENTS {
            edge.get_ok(&format!("/store/v1/news/stream/{m}.ts"));
        }
    }
    let from_cache = wrk(&cached, seconds, dir.path());
    let before = media_gets(&uncached);
    let from_bucket = wrk(&uncached, seconds, dir.path());
    let bucket_gets = media_gets(&uncached) - before;
    println!(
        "edge sidecar, {SEGMENTS} segments of {} KB, wrk -t1 -c8 {seconds} s:",
        SEGMENT_BYTES / 1024
    );
    println!("  from its memory cache: {from_cache:.0} GETs/s");
    println!(
        "  from the bucket (moto), cache off: {from_bucket:.0} GETs/s ({bucket_gets:.0} bucket GETs)"
    );
    summary::row(
        "edge sidecar, 430 KB segment GETs/s from its cache (vs from the bucket, moto)",
        &format!("{from_cache:.0}/s"),
        Some(&format!("{from_bucket:.0}/s")),
        Some(from_cache / from_bucket),
    );

    // 100 viewers, one new segment, a fresh edge.
    let fresh = s3.sidecar(dir.path(), "fresh", "role = \"edge\"");
    let before = media_gets(&fresh);
    let newest = format!("/store/v1/news/stream/{}.ts", SEGMENTS - 1);
    std::thread::scope(|s| {
        let viewers: Vec<_> = (0..100).map(|_| s.spawn(|| fresh.get(&newest))).collect();
        for v in viewers {
            assert_eq!(v.join().unwrap().status, 200);
        }
    });
    let gets = media_gets(&fresh) - before;
    println!("  100 concurrent viewers of one new segment: {gets:.0} bucket GET(s)");
    summary::row(
        "edge sidecar, bucket GETs for 100 concurrent viewers of one segment (goal 1)",
        &format!("{gets:.0}"),
        Some("1"),
        Some(gets),
    );
}
