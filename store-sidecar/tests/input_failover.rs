//! User story: two redundant encoders push the same channel to inputs 1 and 2; when encoder 1
//! dies, the sidecar switches to input 2 within 2 × target duration and the served media playlist
//! keeps advancing with no sequence gap.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

use std::time::{Duration, Instant};

use edgepack_test_support::sidecar::*;

fn last_sequence(sc: &Sidecar) -> Option<u64> {
    sc.status()["renditions"][0]["last_sequence"].as_u64()
}

#[test]
fn killing_encoder_1_fails_over_to_input_2_without_a_gap() {
    let dir = tempfile::tempdir().unwrap();
    let mut sc = Sidecar::start(&write_config(dir.path(), "", ""));
    let spec = |input: u8, seconds: u32| EncoderSpec::digest(sc.ingest, input, seconds);
    let mut enc1 = Encoder::start(spec(1, 60));
    wait_for(Duration::from_secs(20), "input 1 to publish", || {
        (sc.status()["active_input"] == 1).then_some(())
    });
    let enc2 = Encoder::start(spec(2, 22));
    // Both publish: input 2's copies attach to the same sequences; input 1 stays active.
    wait_for(Duration::from_secs(20), "input 2 to publish", || {
        (sc.status()["inputs"][1]["publishing"] == true).then_some(())
    });
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        sc.status()["active_input"],
        1,
        "no flapping while both publish"
    );
    let before_kill = last_sequence(&sc).unwrap();

    enc1.kill();
    let killed = Instant::now();
    let failover_after = sc.status()["failover_after_seconds"].as_f64().unwrap();
    assert_eq!(failover_after, 4.0, "2 × EXT-X-TARGETDURATION:2");
    wait_for(Duration::from_secs(15), "failover to input 2", || {
        (sc.status()["active_input"] == 2).then_some(())
    });
    let took = killed.elapsed().as_secs_f64();
    // The last segment from input 1 arrived before the kill, so the switch is due at most
    // failover_after after the kill; allow for the 250 ms check period and a loaded machine.
    assert!(took <= failover_after + 2.0, "failover took {took:.1} s");

    // The playlist keeps advancing from input 2.
    wait_for(
        Duration::from_secs(15),
        "playlist to advance past the kill",
        || (last_sequence(&sc)? >= before_kill + 3).then_some(()),
    );
    enc2.wait(Duration::from_secs(60));
    let pl = String::from_utf8(sc.get_ok("/store/v1/news/stream_0/index.m3u8")).unwrap();
    let uris = segment_uris(&pl);
    let first: u64 = tag_value(&pl, "#EXT-X-MEDIA-SEQUENCE")
        .unwrap()
        .parse()
        .unwrap();
    for (i, uri) in uris.iter().enumerate() {
        assert_eq!(uri, &format!("{}.ts", first + i as u64), "{pl}");
    }
    assert!(
        !pl.contains("#EXT-X-DISCONTINUITY\n"),
        "no gap, no discontinuity: {pl}"
    );
    // Every listed segment is served, the newest ones from input 2.
    for uri in &uris {
        let r = sc.get(&format!("/store/v1/news/stream_0/{uri}"));
        assert_eq!(r.status, 200, "{uri}");
        assert_eq!(r.header("x-edgepack-active-input"), Some("2"));
    }
    let last = sc.get(&format!("/store/v1/news/stream_0/{}", uris.last().unwrap()));
    assert_eq!(last.header("x-edgepack-served-input"), Some("2"));
    let status = sc.status();
    assert_eq!(status["failovers"], 1);
    let metrics = String::from_utf8(sc.get_ok("/metrics")).unwrap();
    assert!(
        metrics.contains("edgepack_store_failovers_total{channel=\"news\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("edgepack_store_active_input{channel=\"news\"} 2"));
    sc.stop();
}
