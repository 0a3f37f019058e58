//! User story: where Docker is not available, `make run-local` (envoy/run-local.sh) starts the
//! store, the test host with envoy.yaml's filter configuration and two encoders; the URLs it
//! prints serve the player page and a stream ffmpeg decodes frame by frame; stopping it stops
//! everything it started. Run here on free ports with this build's binaries.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

use sidecar::get;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use edgepack_test_support::{artifacts, sidecar};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn run_local_starts_serves_and_stops_everything() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let host_bin = artifacts::host_binary().unwrap();
    let bin_dir = host_bin.parent().unwrap();
    let store_bin = sidecar::store_binary();
    assert_eq!(
        store_bin.parent().unwrap().canonicalize().unwrap(),
        bin_dir.canonicalize().unwrap(),
        "both binaries in one directory"
    );
    // The assets directory, laid out as Envoy mounts it (`make assets`).
    let run = tempfile::tempdir().unwrap();
    let assets = run.path().join("edgepack");
    std::fs::create_dir_all(assets.join("player")).unwrap();
    std::fs::copy(
        artifacts::filter_wasm().unwrap(),
        assets.join("edgepack_filter.wasm"),
    )
    .unwrap();
    std::fs::copy(
        repo.join("envoy/player/index.html"),
        assets.join("player/index.html"),
    )
    .unwrap();
    for (from, to) in [
        ("hls.js/dist/hls.min.js", "hls.min.js"),
        (
            "shaka-player/dist/shaka-player.compiled.js",
            "shaka-player.compiled.js",
        ),
    ] {
        std::fs::copy(
            repo.join("tests/browser/node_modules").join(from),
            assets.join("player").join(to),
        )
        .unwrap();
    }

    let (port, admin, ingest, internal) = (free_port(), free_port(), free_port(), free_port());
    let mut script = Command::new("bash")
        .arg(repo.join("envoy/run-local.sh"))
        .env("EDGEPACK_PORT", port.to_string())
        .env("EDGEPACK_ADMIN_PORT", admin.to_string())
        .env("EDGEPACK_INGEST_PORT", ingest.to_string())
        .env("EDGEPACK_INTERNAL_PORT", internal.to_string())
        .env("EDGEPACK_BIN_DIR", bin_dir)
        .env("EDGEPACK_ASSETS", &assets)
        .env("EDGEPACK_RUN_DIR", run.path().join("run"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(script.stdout.take().unwrap());
    let mut printed = String::new();
    while !printed.contains("Ctrl-C stops everything") {
        let mut line = String::new();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "run-local.sh ended early:\n{printed}"
        );
        printed.push_str(&line);
    }
    let edge = SocketAddr::from(([127, 0, 0, 1], port));
    assert!(printed.contains(&format!(
        "http://127.0.0.1:{port}/out/v1/news/secure/index.m3u8"
    )));

    let page = get(edge, "/");
    assert_eq!(page.status, 200);
    assert!(page.text().contains("edgepack demo player"));

    // Both encoders publish; wait for 8 s of video, then play what is there.
    let store = SocketAddr::from(([127, 0, 0, 1], internal));
    let status = sidecar::wait_for(Duration::from_secs(40), "8 s of video", || {
        let s: serde_json::Value =
            serde_json::from_slice(&get(store, "/store/v1/news/status").body).ok()?;
        let both = s["inputs"]
            .as_array()?
            .iter()
            .all(|i| i["publishing"].as_bool() == Some(true));
        (both && s["renditions"][0]["segments"].as_u64()? >= 4).then_some(s)
    });
    let first = status["renditions"][0]["first_program_date_time"]
        .as_str()
        .unwrap();
    let start_s = chrono::DateTime::parse_from_rfc3339(first)
        .unwrap()
        .timestamp();
    let end_s = start_s + 8;
    let url = format!("http://{edge}/out/v1/news/secure/index.m3u8?start={start_s}&end={end_s}");
    let frames = edgepack_test_support::player::decoded_frames(&url).unwrap();
    assert_eq!(frames.len(), 2, "both renditions");
    let n = frames.values().next().map_or(0, Vec::len);
    assert!(
        (150..=250).contains(&n),
        "about 8 s of 25 fps decoded, got {n} frames"
    );

    // Stopping the script (Ctrl-C in a terminal; TERM here) stops everything it started.
    let pid = script.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let exit = script.wait().unwrap();
    assert!(exit.success(), "{exit}");
    for (what, p) in [
        ("host", port),
        ("admin", admin),
        ("ingest", ingest),
        ("store", internal),
    ] {
        sidecar::wait_for(Duration::from_secs(5), what, || {
            TcpStream::connect(("127.0.0.1", p)).is_err().then_some(())
        });
    }
    let ffmpeg_left = Command::new("pgrep")
        .args(["-f", &format!("127.0.0.1:{ingest}/in/v1/news")])
        .output()
        .unwrap();
    assert!(
        ffmpeg_left.stdout.is_empty(),
        "encoders still running: {}",
        String::from_utf8_lossy(&ffmpeg_left.stdout)
    );
}
