//! User story (#15): a broadcaster runs input 1 on one ingest host and input 2 on another; edges
//! next to each Envoy serve the channel from the one S3-compatible bucket they share. A real S3
//! server (moto, on loopback) is the bucket; every sidecar is the real binary.
//!
//! Proves: both hosts' copies merge into one timeline that edges serve byte for byte alike;
//! `kill -9` of host A fails over to input 2 within the failover delay with no gap, and A rejoins
//! without rewriting the log; a fresh edge serves from the bucket with an empty cache, a hundred
//! viewers of one new segment cost one bucket GET; while the bucket does not answer, ingest says
//! "retry" (503) and loses nothing it acknowledged, edges answer what they have cached and 504
//! for the rest.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

use std::time::{Duration, Instant};

use edgepack_test_support::bucket::S3Server;
use edgepack_test_support::sidecar::*;

fn restart(sc: &Sidecar) -> Sidecar {
    Sidecar::start(&sc.config)
}

/// Input `input`'s bytes for media sequence `msn` (the two inputs' encodes differ).
fn segment(input: u8, msn: u64) -> Vec<u8> {
    ts_bytes(input * 100 + msn as u8, 188 * 20)
}

fn playlist(first: u64, last: u64) -> String {
    let mut t = format!("#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:{first}\n");
    for m in first..=last {
        t.push_str(&format!("#EXTINF:1.0,\ns{m}.ts\n"));
    }
    t
}

/// The encoder of `input` uploads segment `msn` and its playlist (a window of 4).
fn push(sc: &Sidecar, input: u8, msn: u64) -> Response {
    let auth = if input == 1 {
        basic("enc1", PASSWORD_1)
    } else {
        basic("enc2", PASSWORD_2)
    };
    let seg = put(
        sc.ingest,
        &format!("/in/v1/news/{input}/s{msn}.ts"),
        Some(&auth),
        &segment(input, msn),
    );
    if seg.status != 201 {
        return seg;
    }
    put(
        sc.ingest,
        &format!("/in/v1/news/{input}/stream.m3u8"),
        Some(&auth),
        playlist(msn.saturating_sub(3), msn).as_bytes(),
    )
}

fn pushed(r: Response) {
    assert!(
        r.status == 201 || r.status == 204,
        "{} {}",
        r.status,
        r.text()
    );
}

fn media_playlist(sc: &Sidecar) -> String {
    String::from_utf8(sc.get_ok("/store/v1/news/stream/index.m3u8")).unwrap()
}

fn last_sequence(sc: &Sidecar) -> Option<u64> {
    sc.status()["renditions"][0]["last_sequence"].as_u64()
}

fn metric(sc: &Sidecar, line_start: &str) -> f64 {
    let text = String::from_utf8(sc.get_ok("/metrics")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(line_start))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

#[test]
fn two_ingest_hosts_and_edges_share_one_bucket() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = S3Server::start(dir.path(), "edgepack");
    let mut a = s3.sidecar_in_channel(
        dir.path(),
        "a",
        "role = \"ingest\"\ningest_inputs = [1]",
        "failover_after_seconds = 2",
    );
    let b = s3.sidecar_in_channel(
        dir.path(),
        "b",
        "role = \"ingest\"\ningest_inputs = [2]",
        "failover_after_seconds = 2",
    );
    let mut edge1 = s3.sidecar_in_channel(
        dir.path(),
        "edge1",
        "role = \"edge\"",
        "failover_after_seconds = 2",
    );

    // Each host takes only its own input.
    let wrong = push(&a, 2, 0);
    assert_eq!(wrong.status, 421, "{}", wrong.text());
    assert!(
        wrong.text().contains("ingested by another sidecar"),
        "{}",
        wrong.text()
    );
    assert_eq!(push(&edge1, 1, 0).status, 421, "an edge takes no uploads");

    for msn in 0..4 {
        pushed(push(&a, 1, msn));
        pushed(push(&b, 2, msn));
    }
    wait_for(
        Duration::from_secs(10),
        "the edge to follow both hosts",
        || {
            let st = edge1.status();
            (st["renditions"][0]["last_sequence"] == 3
                && st["inputs"][0]["publishing"] == true
                && st["inputs"][1]["publishing"] == true)
                .then_some(())
        },
    );
    assert_eq!(edge1.status()["active_input"], 1);
    // One timeline: the edge and both hosts number and serve alike; input 1's bytes (active).
    let pl = media_playlist(&edge1);
    assert_eq!(segment_uris(&pl), ["0.ts", "1.ts", "2.ts", "3.ts"], "{pl}");
    wait_for(Duration::from_secs(5), "the hosts to agree", || {
        (media_playlist(&a) == pl && media_playlist(&b) == pl).then_some(())
    });
    for seq in 0..4u64 {
        let path = format!("/store/v1/news/stream/{seq}.ts");
        let body = edge1.get_ok(&path);
        assert_eq!(body, segment(1, seq), "segment {seq} from the edge");
        assert_eq!(b.get_ok(&path), body, "host B serves input 1's copy too");
    }
    // In the bucket: each upload under its content hash, the index as numbered log objects.
    let media = s3.keys("news/media/");
    assert_eq!(media.len(), 8, "{media:?}");
    let log = s3.keys("news/log/");
    assert!(!log.is_empty(), "the index log is in the bucket");

    // Host A dies: input 2 takes over within the failover delay (2 s), the timeline goes on.
    a.kill9();
    let killed = Instant::now();
    let mut msn = 4;
    let failover = loop {
        pushed(push(&b, 2, msn));
        msn += 1;
        std::thread::sleep(Duration::from_millis(500));
        if edge1.status()["active_input"] == 2 {
            break killed.elapsed();
        }
        assert!(killed.elapsed() < Duration::from_secs(10), "no failover");
    };
    assert!(
        failover <= Duration::from_millis(2000 + 1500),
        "failover took {failover:?}"
    );
    for _ in 0..2 {
        pushed(push(&b, 2, msn));
        msn += 1;
    }
    let last = msn - 1;
    wait_for(Duration::from_secs(5), "the edge to follow B", || {
        (last_sequence(&edge1) == Some(last)).then_some(())
    });
    let uris = segment_uris(&media_playlist(&edge1));
    let expected: Vec<String> = (0..=last).map(|s| format!("{s}.ts")).collect();
    assert_eq!(uris, expected, "contiguous, no gap");
    assert_eq!(
        edge1.get_ok(&format!("/store/v1/news/stream/{last}.ts")),
        segment(2, last),
        "input 2's bytes after the failover"
    );

    // The index is snapshotted as it grows; log objects two snapshots old are gone.
    let snapshots = s3.keys("news/snapshot/");
    assert!(!snapshots.is_empty(), "no snapshot written");
    let log = s3.keys("news/log/");
    assert!(
        !log.iter().any(|k| k.ends_with("/00000000000000000000")),
        "superseded log objects deleted: {log:?}"
    );

    // A restarts from its disk: it reads the snapshot and the log after it, rewrites nothing.
    let log_before = s3.keys("news/log/");
    let a = restart(&a);
    assert_eq!(media_playlist(&a), media_playlist(&edge1));
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        s3.keys("news/log/"),
        log_before,
        "A rejoined without writing"
    );

    // A fresh edge (empty cache): a hundred viewers of the newest segment, one bucket GET.
    let edge2 = s3.sidecar_in_channel(
        dir.path(),
        "edge2",
        "role = \"edge\"",
        "failover_after_seconds = 2",
    );
    assert_eq!(media_playlist(&edge2), media_playlist(&edge1));
    let newest = format!("/store/v1/news/stream/{last}.ts");
    let gets_before = metric(
        &edge2,
        "edgepack_store_bucket_requests_total{op=\"media_get\"} ",
    );
    std::thread::scope(|s| {
        let viewers: Vec<_> = (0..100).map(|_| s.spawn(|| edge2.get(&newest))).collect();
        for v in viewers {
            let r = v.join().unwrap();
            assert_eq!(r.status, 200);
            assert_eq!(r.body, segment(2, last));
        }
    });
    let gets = metric(
        &edge2,
        "edgepack_store_bucket_requests_total{op=\"media_get\"} ",
    ) - gets_before;
    assert_eq!(gets, 1.0, "100 concurrent viewers cost one bucket GET");

    // Killing an edge leaves the other serving; restarted, it serves again from the bucket.
    edge1.kill9();
    assert_eq!(edge2.get(&newest).status, 200);
    let edge1 = restart(&edge1);
    assert_eq!(edge1.get_ok(&newest), segment(2, last));

    // The bucket stops answering for 10 s.
    s3.pause();
    let paused = Instant::now();
    let refused = push(&b, 2, msn);
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert_eq!(refused.header("retry-after"), Some("2"));
    assert!(
        refused.text().contains("send it again"),
        "{}",
        refused.text()
    );
    // Cached: served; not cached (segment 0 on edge 2): 504, not a hang.
    assert_eq!(edge2.get(&newest).status, 200);
    let uncached = edge2.get("/store/v1/news/stream/0.ts");
    assert_eq!(uncached.status, 504, "{}", uncached.text());
    assert!(
        uncached.text().contains("the bucket did not answer"),
        "{}",
        uncached.text()
    );
    assert!(!media_playlist(&edge2).is_empty(), "playlists from memory");
    std::thread::sleep(Duration::from_secs(10).saturating_sub(paused.elapsed()));
    s3.resume();
    // The encoder retries; everything acknowledged before is there, then the retried segment.
    wait_for(
        Duration::from_secs(15),
        "ingest to take uploads again",
        || (push(&b, 2, msn).status / 100 == 2).then_some(()),
    );
    wait_for(Duration::from_secs(10), "the edges to follow", || {
        (last_sequence(&edge1) == Some(msn) && last_sequence(&edge2) == Some(msn)).then_some(())
    });
    let uris = segment_uris(&media_playlist(&edge1));
    let expected: Vec<String> = (0..=msn).map(|s| format!("{s}.ts")).collect();
    assert_eq!(uris, expected, "nothing lost, no gap");
    assert_eq!(edge2.get_ok("/store/v1/news/stream/0.ts"), segment(1, 0));

    // Edge 2 is cut off (frozen) while the log moves on past two snapshots and its objects are
    // deleted: back, it starts again from the newest snapshot and follows.
    let snapshot_gets = |e: &Sidecar| {
        metric(
            e,
            "edgepack_store_bucket_requests_total{op=\"snapshot_get\"} ",
        )
    };
    let before = snapshot_gets(&edge2);
    signal(&edge2, "-STOP");
    for m in msn + 1..msn + 13 {
        pushed(push(&b, 2, m));
    }
    let last = msn + 12;
    wait_for(Duration::from_secs(10), "edge 1 to follow", || {
        (last_sequence(&edge1) == Some(last)).then_some(())
    });
    signal(&edge2, "-CONT");
    wait_for(Duration::from_secs(20), "edge 2 to catch up", || {
        (last_sequence(&edge2) == Some(last)).then_some(())
    });
    assert!(
        snapshot_gets(&edge2) > before,
        "edge 2 read a snapshot again"
    );
    assert_eq!(media_playlist(&edge2), media_playlist(&edge1));
    drop(a);
}

fn signal(sc: &Sidecar, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([sig, &sc.pid().unwrap().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig}");
}

/// Retention in the bucket: what leaves the startover window leaves the bucket, and edges
/// follow the prune.
#[test]
fn the_window_is_pruned_in_the_bucket_too() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = S3Server::start(dir.path(), "edgepack");
    let d = dir.path().join("all");
    std::fs::create_dir_all(&d).unwrap();
    let sc = Sidecar::start(&write_config(
        &d,
        &s3.storage_section(),
        "startover_window_seconds = 3",
    ));
    let edge = s3.sidecar_in_channel(
        dir.path(),
        "edge",
        "role = \"edge\"",
        "failover_after_seconds = 2",
    );
    for msn in 0..3 {
        pushed(push(&sc, 1, msn));
    }
    assert_eq!(s3.keys("news/media/").len(), 3);
    std::thread::sleep(Duration::from_secs(4));
    pushed(push(&sc, 1, 3));
    // Pruning runs every 5 s.
    wait_for(Duration::from_secs(10), "the prune at the edge", || {
        (segment_uris(&media_playlist(&edge)) == ["3.ts"]).then_some(())
    });
    wait_for(
        Duration::from_secs(5),
        "the bucket to drop pruned media",
        || (s3.keys("news/media/").len() == 1).then_some(()),
    );
    assert_eq!(edge.get_ok("/store/v1/news/stream/3.ts"), segment(1, 3));
    assert_eq!(edge.get("/store/v1/news/stream/0.ts").status, 404);
}
