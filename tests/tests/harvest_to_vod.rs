//! Live-to-VOD (#15 §3, MediaPackage's harvest jobs): Debian's ffmpeg pushes a live
//! two-rendition stream; an operator asks the store sidecar's admin API (with `curl --digest`) to
//! harvest a time range into a directory; the job reports progress and completion; the package
//! (multivariant + VOD media playlists with `EXT-X-ENDLIST`, the segments) decodes in ffmpeg frame
//! for frame like the same range played live through the real `.wasm` in the test host.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

use std::process::Command;
use std::time::Duration;

use edgepack_test_support::bucket::S3Server;
use edgepack_test_support::player::decoded_frames;
use edgepack_test_support::sidecar::{
    Encoder, EncoderSpec, Sidecar, wait_for, whole_history_range, write_config,
};

const CONFIG: &[u8] = br#"{ "store": { "cluster": "edgepack_store" },
  "channels": { "news": { "endpoints": { "hls": { "format": "hls" } } } } }"#;

/// `curl --digest` as the operator; (status, body).
fn admin(url: &str, json_body: Option<&str>) -> (u16, String) {
    let mut c = Command::new("curl");
    c.args([
        "-sS",
        "--digest",
        "-u",
        "ops:admin-pw",
        "-w",
        "\n%{http_code}",
    ]);
    if let Some(b) = json_body {
        c.args(["-H", "content-type: application/json", "--data", b]);
    }
    let out = c.arg(url).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (code.trim().parse().unwrap(), body.to_owned())
}

/// Everything stored, as a past range: (`start=…&end=…`, start, end) in epoch seconds.
fn history_range(sc: &Sidecar) -> (String, String, String) {
    let range = whole_history_range(&sc.status());
    let (start, end) = {
        let mut parts = range.split('&').map(|p| p.split('=').nth(1).unwrap());
        (
            parts.next().unwrap().to_owned(),
            parts.next().unwrap().to_owned(),
        )
    };
    (range, start, end)
}

/// Polls the harvest `job`'s report until it is no longer in progress.
fn finished(sc: &Sidecar, job: &serde_json::Value) -> serde_json::Value {
    let report_url = format!(
        "http://{}/admin/v1/harvests/{}",
        sc.ingest,
        job["id"].as_str().unwrap()
    );
    wait_for(Duration::from_secs(20), "the harvest to finish", || {
        let (s, b) = admin(&report_url, None);
        assert_eq!(s, 200, "{b}");
        let report: serde_json::Value = serde_json::from_str(&b).unwrap();
        (report["status"] != "in_progress").then_some(report)
    })
}

const ADMIN: &str = "\n[admin]\nusername = \"ops\"\npassword = \"admin-pw\"\n";

#[test]
fn a_harvested_range_plays_like_the_live_range() {
    let dir = tempfile::tempdir().unwrap();
    let harvest_dir = dir.path().join("harvest");
    let admin_section = format!("{ADMIN}harvest_dir = \"{}\"\n", harvest_dir.display());
    let mut sc = Sidecar::start(&write_config(dir.path(), &admin_section, ""));
    Encoder::start(EncoderSpec {
        two_renditions: true,
        ..EncoderSpec::digest(sc.ingest, 1, 8)
    })
    .wait(Duration::from_secs(60));
    let (range, start, end) = history_range(&sc);
    let url = format!("http://{}/admin/v1/channels/news/harvest", sc.ingest);
    let request = format!(r#"{{"start":{start},"end":{end},"destination":"news/first"}}"#);
    let (status, body) = admin(&url, Some(&request));
    assert_eq!(status, 202, "{body}");
    let job: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(job["status"], "in_progress");
    // The segments that lie wholly in the range, of both renditions.
    let segments = job["segments"].as_u64().unwrap();
    assert!(segments >= 6 && segments.is_multiple_of(2), "{job}");
    let done = finished(&sc, &job);
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["files_done"], done["files_total"], "{done}");

    // The package: a multivariant playlist and VOD media playlists, nothing of the store's own.
    let package = harvest_dir.join("news/first");
    let media = std::fs::read_to_string(package.join("stream_0/index.m3u8")).unwrap();
    assert!(media.contains("#EXT-X-PLAYLIST-TYPE:VOD\n"), "{media}");
    assert!(media.ends_with("#EXT-X-ENDLIST\n"), "{media}");
    assert!(!media.contains("EDGEPACK"), "{media}");
    assert!(
        std::fs::read_to_string(package.join("index.m3u8"))
            .unwrap()
            .contains("stream_1/index.m3u8")
    );
    // No half-written package was ever visible under its name: the work directory is gone.
    let leftovers: Vec<_> = std::fs::read_dir(&harvest_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, ["news"], "{leftovers:?}");

    // Frame for frame what the edge plays for the same range.
    let h = edgepack_tests::edge(sc.internal, CONFIG, 1);
    let live = decoded_frames(&format!(
        "http://{}/out/v1/news/hls/index.m3u8?{range}",
        h.addr
    ))
    .unwrap();
    let harvested = decoded_frames(package.join("index.m3u8").to_str().unwrap()).unwrap();
    assert_eq!(harvested.len(), 2, "both renditions");
    assert_eq!(harvested, live);
    assert_eq!(
        harvested[&0].len() as u64,
        segments / 2 * 50,
        "every frame of its 2 s segments at 25 fps"
    );

    // Refusals say why: the destination exists; a range that ends before it starts.
    let (status, body) = admin(&url, Some(&request));
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("never overwrites"), "{body}");
    let backwards = format!(r#"{{"start":{end},"end":{start},"destination":"news/second"}}"#);
    let (status, body) = admin(&url, Some(&backwards));
    assert_eq!(status, 400, "{body}");
    let (status, _) = admin(
        &format!("http://{}/admin/v1/harvests/nope", sc.ingest),
        None,
    );
    assert_eq!(status, 404);
    sc.stop();
}

/// With `[storage] kind = "s3"` a two-minute range goes to a bucket prefix: the package, fetched
/// with the S3 API, decodes in ffmpeg frame for frame like the live range at the edge; a
/// destination that exists is refused, another bucket too.
#[test]
fn a_harvest_into_the_bucket_plays_like_the_live_range() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = S3Server::start(dir.path(), "live");
    let mut sc = Sidecar::start(&write_config(
        dir.path(),
        &format!("{ADMIN}{}", s3.storage_section()),
        "",
    ));
    // Two minutes of live content (the store dates segments as they arrive).
    Encoder::start(EncoderSpec {
        two_renditions: true,
        ..EncoderSpec::digest(sc.ingest, 1, 120)
    })
    .wait(Duration::from_secs(180));
    let (range, start, end) = history_range(&sc);
    let url = format!("http://{}/admin/v1/channels/news/harvest", sc.ingest);
    let request =
        format!(r#"{{"start":{start},"end":{end},"destination":"s3://live/vod/news-1"}}"#);
    let (status, body) = admin(&url, Some(&request));
    assert_eq!(status, 202, "{body}");
    let job: serde_json::Value = serde_json::from_str(&body).unwrap();
    let done = finished(&sc, &job);
    assert_eq!(done["status"], "succeeded", "{done}");
    let keys = s3.keys("vod/news-1/");
    assert_eq!(
        keys.len() as u64,
        done["files_total"].as_u64().unwrap(),
        "{keys:?}"
    );

    let h = edgepack_tests::edge(sc.internal, CONFIG, 1);
    let live = decoded_frames(&format!(
        "http://{}/out/v1/news/hls/index.m3u8?{range}",
        h.addr
    ))
    .unwrap();
    // Fetched with the S3 API (the objects are private), then played.
    let package = dir.path().join("package");
    s3.download("vod/news-1/", &package);
    let media = std::fs::read_to_string(package.join("stream_0/index.m3u8")).unwrap();
    assert!(media.ends_with("#EXT-X-ENDLIST\n"), "{media}");
    let harvested = decoded_frames(package.join("index.m3u8").to_str().unwrap()).unwrap();
    assert_eq!(harvested.len(), 2, "both renditions");
    assert_eq!(harvested, live);
    // Every frame of the segments that lie wholly in the range: two minutes, give or take the
    // segment still arriving at its end.
    let segments = done["segments"].as_u64().unwrap();
    assert!(segments >= 2 * 58, "{done}");
    assert_eq!(harvested[&0].len() as u64, segments / 2 * 50);

    let (status, body) = admin(&url, Some(&request));
    assert_eq!(status, 409, "{body}");
    let elsewhere = request.replace("s3://live/", "s3://other/");
    let (status, body) = admin(&url, Some(&elsewhere));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("its own bucket"), "{body}");
    sc.stop();
}
