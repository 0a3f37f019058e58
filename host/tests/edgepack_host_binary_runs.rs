//! User story: an engineer runs the filter locally with the `edgepack-host` binary (no Envoy):
//! it starts with a valid configuration and answers through the filter, and refuses to start —
//! as Envoy refuses the filter — when the configuration is invalid, saying why.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

use std::io::{Read, Write};
use std::process::{Command, Stdio};

use edgepack_test_support::artifacts;
use edgepack_test_support::sidecar::{address_in, ready_line};

const CONFIG: &str = r#"{ "store": { "cluster": "edgepack_store" },
  "channels": { "news": { "endpoints": { "hls": { "format": "hls" } } } } }"#;

#[test]
fn binary_serves_through_the_filter_and_refuses_a_bad_config() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = artifacts::filter_wasm().unwrap();
    let good = dir.path().join("good.json");
    std::fs::write(&good, CONFIG).unwrap();
    // A store address with nothing behind it: the filter answers 502 with a reason.
    let nothing = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_edgepack-host"))
        .arg("--wasm")
        .arg(&wasm)
        .arg("--config")
        .arg(&good)
        .args([
            "--cluster",
            &format!("edgepack_store={nothing}"),
            "--listen",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let addr = address_in(&ready_line(&mut child), "http=").to_string();
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        s,
        "GET /out/v1/news/hls/index.m3u8 HTTP/1.1\r\nHost: e\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(answer.starts_with("HTTP/1.1 502"), "{answer}");
    assert!(answer.contains("store is unavailable"), "{answer}");

    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        CONFIG.replace("\"hls\" }", "\"hls\", \"manifest_window_seconds\": 0 }"),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_edgepack-host"))
        .arg("--wasm")
        .arg(&wasm)
        .arg("--config")
        .arg(&bad)
        .args([
            "--cluster",
            "edgepack_store=127.0.0.1:9",
            "--listen",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("manifest_window_seconds"),
        "the filter's reason is shown: {err}"
    );
    assert!(err.contains("proxy_on_configure returned false"), "{err}");
}
