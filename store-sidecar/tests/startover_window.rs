//! User story: the channel keeps exactly its startover window; older segments leave the index
//! and the disk, and numbering never goes back, even across a restart.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

use std::time::Duration;

use edgepack_test_support::sidecar::*;

#[test]
fn segments_past_the_window_are_pruned_from_index_and_disk() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "", "startover_window_seconds = 2");
    let mut sc = Sidecar::start(&config);
    let ok = basic("enc1", PASSWORD_1);
    let playlist = |msn: u64| {
        format!(
            "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:{msn}\n#EXTINF:2.0,\ns{msn}.ts\n"
        )
    };
    put(
        sc.ingest,
        "/in/v1/news/1/s0.ts",
        Some(&ok),
        &ts_bytes(1, 100),
    );
    put(
        sc.ingest,
        "/in/v1/news/1/hd.m3u8",
        Some(&ok),
        playlist(0).as_bytes(),
    );
    assert_eq!(sc.get_ok("/store/v1/news/hd/0.ts"), ts_bytes(1, 100));
    let on_disk = sc.data.join("news/renditions/hd/0-1.ts");
    assert!(on_disk.exists());

    wait_for(
        Duration::from_secs(15),
        "segment 0 to leave the window",
        || (sc.get("/store/v1/news/hd/0.ts").status == 404).then_some(()),
    );
    assert!(!on_disk.exists(), "pruned segments are deleted from disk");
    let pl = String::from_utf8(sc.get_ok("/store/v1/news/hd/index.m3u8")).unwrap();
    assert!(segment_uris(&pl).is_empty(), "{pl}");
    assert_eq!(tag_value(&pl, "#EXT-X-MEDIA-SEQUENCE"), Some("1"));

    // After a restart, numbering continues from where it was.
    sc.stop();
    let mut sc = Sidecar::start(&config);
    put(
        sc.ingest,
        "/in/v1/news/1/s5.ts",
        Some(&ok),
        &ts_bytes(5, 100),
    );
    put(
        sc.ingest,
        "/in/v1/news/1/hd.m3u8",
        Some(&ok),
        playlist(5).as_bytes(),
    );
    let pl = String::from_utf8(sc.get_ok("/store/v1/news/hd/index.m3u8")).unwrap();
    assert_eq!(segment_uris(&pl), vec!["1.ts"], "{pl}");
    assert_eq!(tag_value(&pl, "#EXT-X-MEDIA-SEQUENCE"), Some("1"));
    assert_eq!(
        tag_value(&pl, "#EXT-X-DISCONTINUITY-SEQUENCE"),
        Some("1"),
        "{pl}"
    );
    assert_eq!(sc.get_ok("/store/v1/news/hd/1.ts"), ts_bytes(5, 100));
    sc.stop();
}
