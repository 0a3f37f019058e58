//! User story: an operator resets a live channel (MediaPackage's `ResetChannelState`) with the
//! admin credentials; its history is gone from the index and the disk, the encoder goes on (here
//! restarted from 0) and what it sends next is served with numbers that continue the old ones, so
//! no URL a CDN may hold ever names other bytes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

use std::net::SocketAddr;
use std::time::Duration;

use edgepack_test_support::player;
use edgepack_test_support::sidecar::*;

const ADMIN_PASSWORD: &str = "admin-pw";
const RESET: &str = "/admin/v1/channels/news/reset";

/// The sidecar's configuration with `[admin]` credentials.
fn with_admin(dir: &std::path::Path) -> std::path::PathBuf {
    let admin = format!("\n[admin]\nusername = \"ops\"\npassword = \"{ADMIN_PASSWORD}\"\n");
    write_config(dir, &admin, "")
}

fn request(addr: SocketAddr, method: &str, path: &str, auth: Option<&str>) -> Response {
    let auth = auth.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
    raw(
        addr,
        format!("{method} {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    )
}

fn push(sc: &Sidecar, tone_hz: u32) {
    Encoder::start(EncoderSpec {
        tone_hz,
        ..EncoderSpec::digest(sc.ingest, 1, 6)
    })
    .wait(Duration::from_secs(60));
}

fn files_under(dir: &std::path::Path, ext: &str) -> usize {
    let Ok(listing) = std::fs::read_dir(dir) else {
        return 0;
    };
    listing
        .map(|e| e.unwrap().path())
        .map(|p| {
            if p.is_dir() {
                files_under(&p, ext)
            } else {
                usize::from(p.extension().is_some_and(|x| x == ext))
            }
        })
        .sum()
}

#[test]
fn a_reset_clears_the_history_and_the_channel_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut sc = Sidecar::start(&with_admin(dir.path()));
    push(&sc, 440);
    let before = String::from_utf8(sc.get_ok("/store/v1/news/stream_0/index.m3u8")).unwrap();
    assert_eq!(segment_uris(&before), ["0.ts", "1.ts", "2.ts"], "{before}");

    // Refusals first: each says why, and nothing changes.
    let r = request(sc.ingest, "POST", RESET, None);
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(!r.headers_named("www-authenticate").is_empty());
    let encoder = basic("enc1", PASSWORD_1);
    assert_eq!(
        request(sc.ingest, "POST", RESET, Some(&encoder)).status,
        401
    );
    let admin = basic("ops", ADMIN_PASSWORD);
    let r = request(sc.ingest, "GET", RESET, Some(&admin));
    assert_eq!((r.status, r.header("allow")), (405, Some("POST")));
    let r = request(
        sc.ingest,
        "POST",
        "/admin/v1/channels/sports/reset",
        Some(&admin),
    );
    assert_eq!(r.status, 404);
    assert!(
        r.text().contains("unknown channel 'sports'"),
        "{}",
        r.text()
    );
    assert!(!sc.get_ok("/store/v1/news/stream_0/2.ts").is_empty());

    // The reset, with a real client's Digest.
    let out = std::process::Command::new("curl")
        .args([
            "-sS",
            "--digest",
            "-u",
            &format!("ops:{ADMIN_PASSWORD}"),
            "-X",
            "POST",
        ])
        .arg(format!("http://{}{RESET}", sc.ingest))
        .output()
        .unwrap();
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stdout)));
    assert_eq!(answer["reset"], true);
    assert_eq!(answer["segments_removed"], 3);
    assert_eq!(sc.status()["renditions"][0]["segments"], 0);
    for n in 0..3 {
        assert_eq!(
            sc.get(&format!("/store/v1/news/stream_0/{n}.ts")).status,
            404
        );
    }
    assert_eq!(files_under(&sc.data, "ts"), 0, "no segment left on disk");

    // The encoder restarts from 0 (other pictures): served after the old numbers, whole.
    push(&sc, 660);
    let after = String::from_utf8(sc.get_ok("/store/v1/news/stream_0/index.m3u8")).unwrap();
    assert_eq!(segment_uris(&after), ["3.ts", "4.ts", "5.ts"], "{after}");
    assert_eq!(tag_value(&after, "#EXT-X-MEDIA-SEQUENCE"), Some("3"));
    let mut ts = Vec::new();
    for n in 3..6 {
        ts.extend(sc.get_ok(&format!("/store/v1/news/stream_0/{n}.ts")));
    }
    let file = dir.path().join("after.ts");
    std::fs::write(&file, &ts).unwrap();
    assert_eq!(
        player::decoded_frames(file.to_str().unwrap()).unwrap()[&0].len(),
        150
    );

    // A restart of the sidecar reads back the same.
    sc.stop();
    let sc = Sidecar::start(&sc.config);
    let again = String::from_utf8(sc.get_ok("/store/v1/news/stream_0/index.m3u8")).unwrap();
    assert_eq!(segment_uris(&again), ["3.ts", "4.ts", "5.ts"], "{again}");
    let mut sc = sc;
    sc.stop();
}

#[test]
fn without_admin_credentials_the_admin_api_is_off() {
    let dir = tempfile::tempdir().unwrap();
    let mut sc = Sidecar::start(&write_config(dir.path(), "", ""));
    let r = request(sc.ingest, "POST", RESET, Some(&basic("enc1", PASSWORD_1)));
    assert_eq!(r.status, 404);
    assert!(r.text().contains("the admin API is off"), "{}", r.text());
    sc.stop();
}
