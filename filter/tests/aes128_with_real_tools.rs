//! User story: a real player decodes what the filter core encrypts. Debian's ffmpeg makes a short
//! HLS stream; a small HTTP server on loopback answers every request through the core's
//! `plan`/`respond` (store answers read from disk), so key URIs and tokens are exercised as a
//! player uses them; ffmpeg plays the AES-128 endpoint and every decoded frame matches the clear
//! source. `openssl enc -d` decrypts a segment byte-for-byte.

#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use edgepack_filter::packager::{PDT_HEADER, Plan, Request, StoreAnswer, on_store_answer, plan};
use edgepack_filter::{Response, Settings};
use edgepack_test_support::player;

const CONFIG: &str = r#"{ "store": { "cluster": "edgepack_store" },
  "channels": { "news": { "endpoints": {
    "secure": { "format": "hls", "manifest_window_seconds": 60,
      "encryption": { "method": "aes-128", "key_rotation_interval_seconds": 2,
                      "key": { "derived": { "secret": "0123456789abcdef0123" } },
                      "key_token": { "secret": "tok-0123456789abcdef", "ttl_seconds": 300 } } } } } } }"#;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The store's view of the ffmpeg output: `{sequence}.ts` URIs, PDT per segment.
struct Store {
    playlist: String,
    segments: HashMap<u64, (Vec<u8>, String)>,
}

fn make_store(dir: &Path) -> (Store, PathBuf) {
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    let status = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=160x120:rate=25",
        ])
        .args([
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
            "-t",
            "5",
        ])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "25",
            "-c:a",
            "aac",
            "-f",
            "hls",
        ])
        .args([
            "-hls_time",
            "1",
            "-hls_list_size",
            "0",
            "-hls_flags",
            "program_date_time",
        ])
        .arg("-hls_segment_filename")
        .arg(src.join("seg_%d.ts"))
        .arg(src.join("index.m3u8"))
        .status()
        .expect("ffmpeg must be installed");
    assert!(status.success());
    let source = std::fs::read_to_string(src.join("index.m3u8")).unwrap();
    let mut playlist = String::new();
    let mut segments = HashMap::new();
    let mut pdt = String::new();
    let mut seq = 0u64;
    for line in source.lines() {
        if let Some(p) = line.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
            // An hour ago, so a time-shifted range over it is entirely in the past (VOD).
            let t = chrono::DateTime::parse_from_str(p, "%Y-%m-%dT%H:%M:%S%.f%z").unwrap()
                - chrono::TimeDelta::hours(1);
            pdt = t.to_rfc3339();
            playlist.push_str(&format!("#EXT-X-PROGRAM-DATE-TIME:{pdt}\n"));
            continue;
        }
        if line.starts_with("seg_") {
            let bytes = std::fs::read(src.join(line)).unwrap();
            segments.insert(seq, (bytes, pdt.clone()));
            playlist.push_str(&format!("{seq}.ts\n"));
            seq += 1;
        } else if line != "#EXT-X-ENDLIST" {
            playlist.push_str(line);
            playlist.push('\n');
        }
    }
    assert!(segments.len() >= 5, "{source}");
    (Store { playlist, segments }, src.join("index.m3u8"))
}

fn answer(settings: &Settings, store: &Store, path_and_query: &str) -> Response {
    let none = |_: &str| None;
    let req = Request {
        method: "GET",
        path: path_and_query,
        header: &none,
        client_ip: Some("127.0.0.1".parse().unwrap()),
        now_ms: now_ms(),
    };
    match plan(settings, &req) {
        Plan::NotOurs => Response::text(404, "not ours"),
        Plan::ReadBody(_) => Response::text(405, "this server reads no request bodies"),
        Plan::Respond(r) => r,
        Plan::Fetch(f) => {
            let rest = f.path.trim_start_matches("/store/v1/news/stream_0/");
            // This store answers a view query with the whole history, which the filter cuts.
            let (status, body, pdt) = if rest.split('?').next() == Some("index.m3u8") {
                (200, store.playlist.clone().into_bytes(), None)
            } else {
                let seq: u64 = rest.trim_end_matches(".ts").parse().unwrap();
                match store.segments.get(&seq) {
                    Some((b, pdt)) => (200, b.clone(), Some(pdt.clone())),
                    None => (404, b"no such segment".to_vec(), None),
                }
            };
            let header = move |name: &str| (name == PDT_HEADER).then(|| pdt.clone()).flatten();
            match on_store_answer(
                settings,
                &f.next,
                &StoreAnswer {
                    status,
                    header: &header,
                    body: &body,
                },
                now_ms(),
            ) {
                Plan::Respond(r) => r,
                other => panic!("expected an answer, got {other:?}"),
            }
        }
    }
}

/// Serves the core on loopback until the test ends; returns the base URL.
fn serve(settings: Arc<Settings>, store: Arc<Store>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let (settings, store) = (settings.clone(), store.clone());
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    return;
                }
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).is_err() || h == "\r\n" || h.is_empty() {
                        break;
                    }
                }
                let target = line.split(' ').nth(1).unwrap_or("/").to_owned();
                let r = answer(&settings, &store, &target);
                let mut head = format!(
                    "HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n",
                    r.status,
                    r.body.len()
                );
                for (k, v) in &r.headers {
                    head.push_str(&format!("{k}: {v}\r\n"));
                }
                head.push_str("\r\n");
                let _ = conn.write_all(head.as_bytes());
                let _ = conn.write_all(&r.body);
            });
        }
    });
    format!("http://{addr}")
}

#[test]
fn ffmpeg_plays_the_aes128_endpoint_frame_identical_and_openssl_decrypts() {
    let dir = tempfile::tempdir().unwrap();
    let (store, clear_playlist) = make_store(dir.path());
    let settings = Arc::new(Settings::from_json(CONFIG.as_bytes()).unwrap());
    let store = Arc::new(store);
    let base = serve(settings.clone(), store.clone());

    // A time-shifted range in the past is a VOD playlist: ffmpeg plays it from the start.
    let first_pdt = chrono::DateTime::parse_from_rfc3339(&store.segments[&0].1)
        .unwrap()
        .timestamp();
    let url = format!(
        "{base}/out/v1/news/secure/stream_0/index.m3u8?start={first_pdt}&end={}",
        first_pdt + 60
    );
    let playlist = answer(&settings, &store, url.trim_start_matches(&base));
    let text = String::from_utf8(playlist.body.clone()).unwrap();
    assert_eq!(playlist.status, 200, "{text}");
    assert!(text.contains("#EXT-X-ENDLIST"), "{text}");
    assert!(
        text.matches("#EXT-X-KEY:METHOD=AES-128").count() >= 2,
        "2 s rotation over 5 s: {text}"
    );

    let clear = player::decoded_frames(clear_playlist.to_str().unwrap()).unwrap();
    let decrypted = player::decoded_frames(&url).unwrap();
    assert_eq!(clear.len(), 1, "one video stream");
    assert_eq!(clear[&0].len(), 125, "5 s at 25 fps");
    assert_eq!(
        decrypted, clear,
        "every frame decodes, identical to the clear source"
    );

    // A token is bound to its key: presented for another key it is refused.
    let key_line = text.lines().find(|l| l.starts_with("#EXT-X-KEY")).unwrap();
    let token = key_line
        .split("token=")
        .nth(1)
        .unwrap()
        .trim_end_matches('"');
    let other = answer(
        &settings,
        &store,
        &format!("/out/v1/news/secure/key/0?token={token}"),
    );
    assert_eq!(other.status, 403);

    // openssl decrypts one encrypted segment back to the exact source bytes.
    let seg = answer(&settings, &store, "/out/v1/news/secure/stream_0/3.ts");
    assert_eq!(seg.status, 200);
    let enc_path = dir.path().join("3.enc");
    std::fs::write(&enc_path, &seg.body).unwrap();
    let period = chrono::DateTime::parse_from_rfc3339(&store.segments[&3].1)
        .unwrap()
        .timestamp() as u64
        / 2;
    let key =
        edgepack_filter::crypto::key_for(&settings.channels["news"]["secure"], period).unwrap();
    let out = Command::new("openssl")
        .args([
            "enc",
            "-d",
            "-aes-128-cbc",
            "-K",
            &hex::encode(key),
            "-iv",
            &format!("{:032x}", 3u128),
        ])
        .arg("-in")
        .arg(&enc_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, store.segments[&3].0);
}
