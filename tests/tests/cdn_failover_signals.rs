//! Telling the CDN when to fail over (#14 §2, MediaPackage's forced endpoint errors): Debian's
//! ffmpeg pushes a live two-rendition stream to the store sidecar and stops; the real
//! `edgepack_filter.wasm` in the proxy-wasm test host answers the manifests of endpoints with
//! `endpoint_errors` with an error and a reason once they would freeze, while an endpoint without
//! them keeps its frozen 200. Then one rendition comes back after a pause (a one-rendition encoder):
//! its window has a hole and the other rendition is left behind — `incomplete_manifest`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

use std::time::Duration;

use edgepack_test_support::sidecar;
use sidecar::{Encoder, EncoderSpec, Sidecar, get, wait_for, write_config};

const CONFIG: &str = r#"{ "store": { "cluster": "edgepack_store", "playlist_cache_ms": 0 },
  "channels": { "news": { "endpoints": {
    "plain": { "format": "hls" },
    "failover": { "format": "hls",
      "endpoint_errors": ["stale_manifest", "incomplete_manifest", "missing_drm_key"] },
    "holes": { "format": "hls", "endpoint_errors": ["incomplete_manifest"] },
    "dash": { "format": "dash", "endpoint_errors": ["stale_manifest"],
      "endpoint_error_status": 503, "stale_manifest_target_durations": 2 } } } } }"#;

#[test]
fn a_stopped_encoder_and_a_holed_window_answer_errors_a_cdn_fails_over_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut sc = Sidecar::start(&write_config(dir.path(), "", ""));
    let h = edgepack_tests::edge(sc.internal, CONFIG.as_bytes(), 1);
    let at = |path: &str| get(h.addr, path);

    // Live: every manifest answers 200 while the encoder pushes.
    let encoder = Encoder::start(EncoderSpec {
        two_renditions: true,
        ..EncoderSpec::digest(sc.ingest, 1, 8)
    });
    wait_for(Duration::from_secs(30), "the live edge", || {
        (at("/out/v1/news/failover/stream_1/index.m3u8").status == 200).then_some(())
    });
    for path in [
        "/out/v1/news/failover/stream_0/index.m3u8",
        "/out/v1/news/dash/index.mpd",
        "/out/v1/news/holes/stream_0/index.m3u8",
    ] {
        let r = at(path);
        assert_eq!(r.status, 200, "{path} while live: {}", r.text());
    }
    encoder.wait(Duration::from_secs(60));

    // The encoder stopped: 3 target durations (2 s) later the failover endpoint's playlists are
    // 404 with the reason; the DASH endpoint (2 target durations, 503) too; an endpoint without
    // endpoint_errors keeps answering its frozen playlist.
    let stale = wait_for(Duration::from_secs(20), "a stale manifest", || {
        let r = at("/out/v1/news/failover/stream_0/index.m3u8");
        (r.status != 200).then_some(r)
    });
    assert_eq!(stale.status, 404, "{}", stale.text());
    assert!(
        stale
            .text()
            .starts_with("stale manifest: the store has received no new segment"),
        "{}",
        stale.text()
    );
    assert_eq!(stale.header("cache-control"), Some("no-store"));
    assert_eq!(stale.header("access-control-allow-origin"), Some("*"));
    // The other rendition's last segment may have come a moment later: it goes stale as well.
    let other = wait_for(Duration::from_secs(5), "the other rendition stale", || {
        let r = at("/out/v1/news/failover/stream_1/index.m3u8");
        (r.status != 200).then_some(r)
    });
    assert_eq!(other.status, 404, "{}", other.text());
    let mpd = at("/out/v1/news/dash/index.mpd");
    assert_eq!(mpd.status, 503, "{}", mpd.text());
    assert!(
        mpd.text()
            .contains("stale_manifest after 2 target durations"),
        "{}",
        mpd.text()
    );
    let frozen = at("/out/v1/news/plain/stream_0/index.m3u8");
    assert_eq!(frozen.status, 200, "no endpoint_errors: {}", frozen.text());
    assert_eq!(
        at("/out/v1/news/holes/stream_0/index.m3u8").status,
        200,
        "only incomplete_manifest, and the window is whole"
    );
    assert_eq!(
        at("/out/v1/news/failover/index.m3u8").status,
        200,
        "the multivariant playlist names renditions, it does not freeze"
    );

    // One rendition comes back after the pause (numbered further on): its window now has a
    // hole, and the other rendition is left behind.
    Encoder::start(EncoderSpec {
        start_number: 1000,
        ..EncoderSpec::digest(sc.ingest, 1, 6)
    })
    .wait(Duration::from_secs(60));
    let holed = at("/out/v1/news/holes/stream_0/index.m3u8");
    assert_eq!(holed.status, 404, "{}", holed.text());
    assert!(
        holed.text().starts_with("incomplete manifest: ")
            && holed
                .text()
                .contains("s of media are missing after segment"),
        "{}",
        holed.text()
    );
    let behind = at("/out/v1/news/holes/stream_1/index.m3u8");
    assert_eq!(behind.status, 404, "{}", behind.text());
    assert!(
        behind
            .text()
            .contains("while other renditions of the channel go on"),
        "{}",
        behind.text()
    );
    assert_eq!(at("/out/v1/news/plain/stream_0/index.m3u8").status, 200);
    // A range in the past is never judged.
    let status = sc.status();
    let range = sidecar::whole_history_range(&status);
    let past = at(&format!(
        "/out/v1/news/failover/stream_1/index.m3u8?{range}"
    ));
    assert_eq!(past.status, 200, "{}", past.text());
    assert!(past.text().contains("#EXT-X-ENDLIST"));
    assert_eq!(h.traps(), 0);
    sc.stop();
}
