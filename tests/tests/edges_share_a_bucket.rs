//! User story (#15): a broadcaster pushes input 1 to ingest host A and input 2 to ingest host B;
//! two edges — each an edge sidecar beside the real `.wasm` in the test host — serve viewers from
//! the one S3-compatible bucket they share (moto, a real S3 server on loopback). Debian's ffmpeg
//! encodes both inputs (different audio tones, so the copies differ) and plays; hls.js in
//! headless Chromium plays live from an edge.
//!
//! Proves: hls.js plays live from each edge while both hosts ingest; `kill -9` of host A (and its
//! encoder) fails over to input 2 on every edge within 2 × target duration; the whole history
//! then decodes frame for frame alike from both edges with no frame missing, each segment
//! byte-identical through both; host A restarted reads the log back and rewrites nothing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

use std::time::{Duration, Instant};

use edgepack_test_support::bucket::S3Server;
use edgepack_test_support::player::decoded_frames;
use edgepack_test_support::sidecar::{
    Encoder, EncoderSpec, Sidecar, get, segment_uris, wait_for, whole_history_range,
};
use edgepack_tests::browser;

const CONFIG: &[u8] = br#"{ "store": { "cluster": "edgepack_store" },
  "channels": { "news": { "endpoints": { "hls": { "format": "hls", "manifest_window_seconds": 30 } } } } }"#;

#[test]
fn two_ingest_hosts_two_edges_one_bucket() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = S3Server::start(dir.path(), "live");
    let mut a = s3.sidecar(dir.path(), "a", "role = \"ingest\"\ningest_inputs = [1]");
    let b = s3.sidecar(dir.path(), "b", "role = \"ingest\"\ningest_inputs = [2]");
    let edge1 = s3.sidecar(dir.path(), "edge1", "role = \"edge\"");
    let edge2 = s3.sidecar(dir.path(), "edge2", "role = \"edge\"");
    let routes = || browser::page_with_players(("/", "../../envoy/player/index.html")).unwrap();
    let h1 = edgepack_tests::edge_with_routes(edge1.internal, CONFIG, 1, routes());
    let h2 = edgepack_tests::edge_with_routes(edge2.internal, CONFIG, 1, routes());

    let mut enc1 = Encoder::start(EncoderSpec::digest(a.ingest, 1, 50));
    // Input 1 publishes first: it is the active input.
    wait_for(Duration::from_secs(20), "input 1 at the edges", || {
        (edge1.status()["active_input"] == 1 && edge2.status()["active_input"] == 1).then_some(())
    });
    let enc2 = Encoder::start(EncoderSpec {
        tone_hz: 660,
        ..EncoderSpec::digest(b.ingest, 2, 46)
    });
    wait_for(Duration::from_secs(30), "both inputs at the edges", || {
        [&edge1, &edge2]
            .iter()
            .all(|e| {
                let st = e.status();
                st["inputs"][0]["publishing"] == true
                    && st["inputs"][1]["publishing"] == true
                    && st["renditions"][0]["segments"].as_u64() >= Some(3)
            })
            .then_some(())
    });

    // A browser plays live from each edge.
    for (n, h) in [(1, &h1), (2, &h2)] {
        let played = browser::play(&format!("http://{}/?endpoint=hls", h.addr), 10).unwrap();
        eprintln!("hls.js at edge {n}: {played}");
        assert!(played["fatal"].is_null(), "{played}");
        assert!(
            played["advanced"].as_f64().unwrap() >= 5.0,
            "playback must advance 5 s at edge {n}: {played}"
        );
    }
    assert_eq!(edge1.status()["active_input"], 1);

    // Host A and its encoder die.
    a.kill9();
    enc1.kill();
    let killed = Instant::now();
    wait_for(Duration::from_secs(15), "failover at both edges", || {
        [&edge1, &edge2]
            .iter()
            .all(|e| e.status()["active_input"] == 2)
            .then_some(())
    });
    let took = killed.elapsed().as_secs_f64();
    let failover_after = edge1.status()["failover_after_seconds"].as_f64().unwrap();
    assert_eq!(failover_after, 4.0, "2 × EXT-X-TARGETDURATION:2");
    // The last segment from input 1 came before the kill; the check runs every 250 ms and the
    // decision reaches the edges through the bucket (a few hundred ms more).
    assert!(took <= failover_after + 2.5, "failover took {took:.1} s");
    enc2.wait(Duration::from_secs(60));
    wait_for(Duration::from_secs(10), "the edges to agree", || {
        (edge1.status()["renditions"] == edge2.status()["renditions"]).then_some(())
    });

    // The whole history, from both edges: the same playlist, every segment byte-identical
    // through both, contiguous (no sequence missing), and every frame of it decoded alike.
    let status = edge1.status();
    let range = whole_history_range(&status);
    let path = format!("/out/v1/news/hls/stream_0/index.m3u8?{range}");
    let playlists: Vec<String> = [&h1, &h2]
        .iter()
        .map(|h| get(h.addr, &path).text())
        .collect();
    assert_eq!(playlists[0], playlists[1]);
    let uris = segment_uris(&playlists[0]);
    assert!(uris.len() >= 20, "{}", playlists[0]);
    let numbers: Vec<u64> = uris
        .iter()
        .map(|u| u.split('.').next().unwrap().parse().unwrap())
        .collect();
    assert!(
        numbers.windows(2).all(|w| w[1] == w[0] + 1),
        "no gap: {numbers:?}"
    );
    for uri in &uris {
        let p = format!("/out/v1/news/hls/stream_0/{uri}");
        let (x, y) = (get(h1.addr, &p), get(h2.addr, &p));
        assert_eq!((x.status, y.status), (200, 200), "{p}");
        assert!(x.body == y.body, "{p}: the edges serve other bytes");
    }
    let frames: Vec<_> = [&h1, &h2]
        .iter()
        .map(|h| {
            decoded_frames(&format!(
                "http://{}/out/v1/news/hls/index.m3u8?{range}",
                h.addr
            ))
            .unwrap()
        })
        .collect();
    assert_eq!(frames[0], frames[1], "both edges decode alike");
    assert_eq!(
        frames[0][&0].len(),
        uris.len() * 50,
        "every frame of its 2 s segments at 25 fps"
    );

    // Host A restarts: it reads the log back and rewrites nothing.
    let log = s3.keys("news/log/");
    let a = Sidecar::start(&a.config);
    assert_eq!(a.status()["renditions"], edge1.status()["renditions"]);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(s3.keys("news/log/"), log, "A rejoined without writing");
    assert_eq!((h1.traps(), h2.traps()), (0, 0));
    drop(b);
}
