//! User story: the filter configuration shipped in `envoy/envoy.yaml` works — the test host runs
//! the real `.wasm` with exactly that JSON, and ffmpeg plays both demo endpoints (clear and
//! AES-128) from a live push.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

#[path = "../../store-sidecar/tests/common/mod.rs"]
mod sidecar;

use std::time::Duration;

use edgepack_tests::{HostOptions, artifacts, start};

/// The block scalar under `configuration: … value: |` in envoy.yaml.
fn plugin_json() -> String {
    let yaml = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../envoy/envoy.yaml"))
        .unwrap();
    let mut lines = yaml.lines().skip_while(|l| l.trim() != "value: |");
    let header = lines.next().unwrap();
    let indent = header.len() - header.trim_start().len();
    lines
        .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > indent)
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn demo_endpoints_play() {
    let json = plugin_json();
    assert!(json.contains("\"secure\""), "{json}");
    let dir = tempfile::tempdir().unwrap();
    let mut sc = sidecar::Sidecar::start(&sidecar::write_config(dir.path(), "", ""));
    sidecar::Encoder::start(sidecar::EncoderSpec {
        two_renditions: true,
        ..sidecar::EncoderSpec::digest(sc.ingest, 1, 6)
    })
    .wait(Duration::from_secs(60));
    let mut o = HostOptions::new(artifacts::filter_wasm().unwrap(), json.into_bytes());
    o.clusters = vec![("edgepack_store".into(), sc.internal)];
    let h = start(o).unwrap();
    let status = sc.status();
    let first = status["renditions"][0]["first_program_date_time"]
        .as_str()
        .unwrap()
        .to_owned();
    let seconds = status["renditions"][0]["duration_seconds"]
        .as_f64()
        .unwrap();
    let expected = (seconds * 25.0).round() as usize;
    let start_s = chrono::DateTime::parse_from_rfc3339(&first)
        .unwrap()
        .timestamp();
    let end_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for endpoint in ["hls", "secure"] {
        let url = format!(
            "http://{}/out/v1/news/{endpoint}/index.m3u8?start={start_s}&end={end_s}",
            h.addr
        );
        let frames = edgepack_tests::player::decoded_frames(&url)
            .unwrap_or_else(|e| panic!("{endpoint}: {e}"));
        // Every rendition, every frame.
        assert_eq!(frames.len(), 2, "{endpoint}");
        let frames = frames.values().next().map_or(0, Vec::len);
        assert_eq!(frames, expected, "{endpoint}: every frame decoded");
    }
    assert_eq!(h.traps(), 0);
    sc.stop();
}
