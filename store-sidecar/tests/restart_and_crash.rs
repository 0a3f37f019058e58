//! User stories: the sidecar restarts (cleanly, or killed with -9 in the middle of an upload) and
//! comes back with its index, playlists and segments intact, nothing half-written visible.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use edgepack_test_support::sidecar::*;

fn served(sc: &Sidecar) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let master = sc.get_ok("/store/v1/news/index.m3u8");
    for variant in segment_uris(&String::from_utf8(master.clone()).unwrap()) {
        let rendition = variant.trim_end_matches("/index.m3u8").to_owned();
        let pl = sc.get_ok(&format!("/store/v1/news/{variant}"));
        for uri in segment_uris(&String::from_utf8(pl.clone()).unwrap()) {
            let path = format!("/store/v1/news/{rendition}/{uri}");
            out.push((path.clone(), sc.get_ok(&path)));
        }
        out.push((variant, pl));
    }
    out.push(("index.m3u8".into(), master));
    out
}

#[test]
fn restart_keeps_history_and_numbering_continues() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "", "");
    let mut sc = Sidecar::start(&config);
    Encoder::start(EncoderSpec {
        two_renditions: true,
        ..EncoderSpec::digest(sc.ingest, 1, 6)
    })
    .wait(Duration::from_secs(60));
    let before = served(&sc);
    let status_before = sc.status();
    assert!(before.len() >= 2 * 3 + 3);
    sc.stop();

    let mut sc = Sidecar::start(&config);
    assert_eq!(
        served(&sc),
        before,
        "playlists and segments survive a restart"
    );
    let status_after = sc.status();
    assert_eq!(status_after["renditions"], status_before["renditions"]);
    assert_eq!(status_after["active_input"], 1);

    // The encoder restarts too, with numbering that jumps ahead (as with
    // -hls_start_number_source epoch): history is kept, numbering stays contiguous and the
    // jump becomes a discontinuity.
    Encoder::start(EncoderSpec {
        two_renditions: true,
        start_number: 1000,
        // 6 s, three segments: the assertion below needs two of them even when the last
        // upload is cut short on a loaded machine.
        ..EncoderSpec::digest(sc.ingest, 1, 6)
    })
    .wait(Duration::from_secs(60));
    let pl = String::from_utf8(sc.get_ok("/store/v1/news/stream_0/index.m3u8")).unwrap();
    let uris = segment_uris(&pl);
    for (i, uri) in uris.iter().enumerate() {
        assert_eq!(uri, &format!("{i}.ts"), "{pl}");
    }
    assert_eq!(pl.matches("#EXT-X-DISCONTINUITY\n").count(), 1, "{pl}");
    assert!(uris.len() >= 5, "{pl}");
    sc.stop();
}

#[test]
fn kill_9_during_an_upload_leaves_nothing_partial() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "", "");
    let mut sc = Sidecar::start(&config);
    let ok = basic("enc1", PASSWORD_1);
    let playlist = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:2.0,\ns0.ts\n#EXTINF:2.0,\ns1.ts\n";
    assert_eq!(
        put(
            sc.ingest,
            "/in/v1/news/1/s0.ts",
            Some(&ok),
            &ts_bytes(1, 5000)
        )
        .status,
        201
    );
    assert_eq!(
        put(
            sc.ingest,
            "/in/v1/news/1/hd.m3u8",
            Some(&ok),
            playlist.as_bytes()
        )
        .status,
        201
    );
    let before = served(&sc);

    // s1.ts starts uploading (the playlist already lists it), half its body arrives, then the
    // sidecar is killed.
    let mut s = TcpStream::connect(sc.ingest).unwrap();
    write!(
        s,
        "PUT /in/v1/news/1/s1.ts HTTP/1.1\r\nHost: x\r\nAuthorization: {ok}\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .unwrap();
    write!(s, "1000\r\n").unwrap();
    s.write_all(&[2u8; 4096]).unwrap();
    write!(s, "\r\n").unwrap();
    s.flush().unwrap();
    let tmp = sc.data.join("news/tmp");
    wait_for(
        Duration::from_secs(10),
        "the upload to reach the disk",
        || {
            std::fs::read_dir(&tmp)
                .unwrap()
                .filter_map(Result::ok)
                .any(|e| e.metadata().map(|m| m.len() >= 4096).unwrap_or(false))
                .then_some(())
        },
    );
    sc.kill9();
    drop(s);

    // A torn journal line, as a kill in the middle of an append would leave.
    let journal = sc.data.join("news/renditions/hd/journal.jsonl");
    std::fs::OpenOptions::new()
        .append(true)
        .open(&journal)
        .unwrap()
        .write_all(b"{\"op\":\"put\",\"entry\":{\"seq\":1,")
        .unwrap();

    let mut sc = Sidecar::start(&config);
    assert_eq!(
        served(&sc),
        before,
        "the index is what it was before the crash"
    );
    assert_eq!(
        std::fs::read_dir(sc.data.join("news/tmp")).unwrap().count(),
        0
    );
    assert!(!sc.data.join("news/incoming/1/s1.ts").exists());
    assert_eq!(sc.get("/store/v1/news/hd/1.ts").status, 404);
    // The journal was repaired: every line parses.
    for line in std::fs::read_to_string(&journal).unwrap().lines() {
        serde_json::from_str::<serde_json::Value>(line).unwrap();
    }
    // The encoder retries the upload: now it is published.
    assert_eq!(
        put(
            sc.ingest,
            "/in/v1/news/1/s1.ts",
            Some(&ok),
            &ts_bytes(3, 6000)
        )
        .status,
        201
    );
    assert_eq!(sc.get_ok("/store/v1/news/hd/1.ts"), ts_bytes(3, 6000));
    sc.stop();
}
