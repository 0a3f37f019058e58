//! User story: what ships in `envoy/` works together. The demo encoder script (`envoy/encoder.sh`,
//! the one the compose demo and `make run-local` run) pushes to both inputs with Digest
//! credentials; the test host runs the real `.wasm` with exactly the plugin JSON, stats tags and
//! player routes of `envoy/envoy.yaml`; ffmpeg plays the three demo endpoints (clear, AES-128 and
//! CMAF repackaged from TS) and its DASH + cenc endpoint (key from its ClearKey license server),
//! every frame and the same frames, and GStreamer its Smooth Streaming endpoint, the same
//! pictures; the player page is served; `/stats/prometheus` shows the filter's metrics with
//! the labels the bootstrap's `stats_tags` extract.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

use sidecar::get;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use edgepack_host::access_log::{AccessLog, Sink};
use edgepack_host::bootstrap::Bootstrap;
use edgepack_host::{DirectResponse, HostOptions, start};
use edgepack_test_support::{artifacts, sidecar};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `envoy/encoder.sh` for one input, `seconds` long.
fn encoder(ingest: SocketAddr, input: u8, seconds: u32) -> std::process::Child {
    let (user, pass) = if input == 1 {
        ("enc1", sidecar::PASSWORD_1)
    } else {
        ("enc2", sidecar::PASSWORD_2)
    };
    Command::new("sh")
        .arg(repo().join("envoy/encoder.sh"))
        .env("EDGEPACK_INGEST", format!("http://{ingest}"))
        .env("EDGEPACK_INPUT", input.to_string())
        .env("EDGEPACK_USERNAME", user)
        .env("EDGEPACK_PASSWORD", pass)
        .env("EDGEPACK_SECONDS", seconds.to_string())
        .env("EDGEPACK_SIZE", "320x240")
        .stdin(Stdio::null())
        .spawn()
        .unwrap()
}

/// The bootstrap names container paths; these are the same files in the repo.
fn local(container_path: &Path) -> PathBuf {
    match container_path.file_name().and_then(|n| n.to_str()) {
        Some("index.html") => repo().join("envoy/player/index.html"),
        Some("hls.min.js") => repo().join("tests/browser/node_modules/hls.js/dist/hls.min.js"),
        Some("shaka-player.compiled.js") => {
            repo().join("tests/browser/node_modules/shaka-player/dist/shaka-player.compiled.js")
        }
        _ => panic!(
            "unexpected file in envoy.yaml: {}",
            container_path.display()
        ),
    }
}

#[test]
fn demo_endpoints_play() {
    let boot = Bootstrap::load(&repo().join("envoy/envoy.yaml")).unwrap();
    // One plugin configuration (the HTTPS listener repeats the same connection manager).
    let json = boot.plugin_configs[0].clone();
    assert!(boot.plugin_configs.iter().all(|c| *c == json));
    assert!(json.contains("\"secure\""), "{json}");
    assert_eq!(
        boot.wasm_files[0],
        Path::new("/etc/envoy/edgepack/edgepack_filter.wasm")
    );
    assert!(
        boot.listeners
            .iter()
            .any(|(_, a, tls)| a.port() == 10000 && !tls)
    );
    assert!(
        boot.listeners
            .iter()
            .any(|(_, a, tls)| a.port() == 10443 && *tls)
    );

    let dir = tempfile::tempdir().unwrap();
    let mut sc = sidecar::Sidecar::start(&sidecar::write_config(dir.path(), "", ""));
    let mut encoders = [encoder(sc.ingest, 1, 6), encoder(sc.ingest, 2, 6)];
    let deadline = Instant::now() + Duration::from_secs(60);
    for e in &mut encoders {
        loop {
            if let Some(status) = e.try_wait().unwrap() {
                assert!(status.success(), "encoder.sh failed: {status}");
                // ffmpeg closes its last upload without waiting for the answer: let the
                // sidecar finish indexing it.
                std::thread::sleep(Duration::from_millis(300));
                break;
            }
            assert!(Instant::now() < deadline, "encoder.sh did not finish");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let status = sc.status();
    // Both inputs published both renditions, aligned on the same media sequence numbers.
    for input in status["inputs"].as_array().unwrap() {
        assert_eq!(input["renditions"].as_array().unwrap().len(), 2, "{status}");
    }
    assert_eq!(
        status["inputs"][0]["renditions"][0]["last_media_sequence"],
        status["inputs"][1]["renditions"][0]["last_media_sequence"],
        "{status}"
    );

    let mut o = HostOptions::new(artifacts::filter_wasm().unwrap(), json.into_bytes());
    o.clusters = vec![("edgepack_store".into(), sc.internal)];
    o.stats_tags = boot.stats_tags.clone();
    // envoy.yaml's access log, its lines kept for the checks below.
    let logged = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    o.access_log = Some(
        AccessLog::from_json_format(
            boot.access_log_format.as_ref().unwrap(),
            Sink::Memory(logged.clone()),
        )
        .unwrap(),
    );
    o.direct_responses = boot
        .file_routes
        .iter()
        .map(|r| DirectResponse {
            path: r.path.clone(),
            status: r.status,
            content_type: r.content_type.clone().unwrap(),
            body: std::fs::read(local(&r.filename)).unwrap(),
        })
        .collect();
    let h = start(o).unwrap();

    let seconds = status["renditions"][0]["duration_seconds"]
        .as_f64()
        .unwrap();
    let expected = (seconds * 25.0).round() as usize;
    let range = sidecar::whole_history_range(&status);
    let mut decoded = Vec::new();
    for endpoint in ["hls", "secure", "cmaf"] {
        let url = format!(
            "http://{}/out/v1/news/{endpoint}/index.m3u8?{range}",
            h.addr
        );
        let frames = edgepack_test_support::player::decoded_frames(&url)
            .unwrap_or_else(|e| panic!("{endpoint}: {e}"));
        // Every rendition, every frame.
        assert_eq!(frames.len(), 2, "{endpoint}");
        let n = frames.values().next().map_or(0, Vec::len);
        assert_eq!(n, expected, "{endpoint}: every frame decoded");
        decoded.push(frames);
    }
    // Clear, decrypted and repackaged: the same pictures.
    assert_eq!(decoded[0], decoded[1]);
    assert_eq!(decoded[0], decoded[2]);

    // DASH with cenc: the key from the endpoint's ClearKey license server, as a browser gets it.
    // envoy.yaml rotates the key every 60 s and ffmpeg takes one key: play the longest run of
    // segments under one key, and compare with the HLS endpoint over the same range.
    let store_pl = String::from_utf8(sc.get_ok("/store/v1/news/stream_0/index.m3u8")).unwrap();
    let times: Vec<i64> = store_pl
        .lines()
        .filter_map(|l| l.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:"))
        .map(|t| {
            chrono::DateTime::parse_from_rfc3339(t)
                .unwrap()
                .timestamp_millis()
        })
        .collect();
    let mut runs: Vec<Vec<i64>> = Vec::new();
    for t in times {
        match runs.last_mut() {
            Some(run) if run[0] / 60_000 == t / 60_000 => run.push(t),
            _ => runs.push(vec![t]),
        }
    }
    let run = runs.iter().max_by_key(|r| r.len()).unwrap();
    let range = format!(
        "start={}&end={}",
        run[0] / 1000,
        (run[run.len() - 1] + 2000 + 999) / 1000
    );
    let hls = edgepack_test_support::player::decoded_frames(&format!(
        "http://{}/out/v1/news/hls/index.m3u8?{range}",
        h.addr
    ))
    .unwrap();
    let mpd = get(h.addr, &format!("/out/v1/news/dash/index.mpd?{range}"));
    assert_eq!(mpd.status, 200, "{}", mpd.text());
    let (kid, laurl) = edgepack_test_support::clearkey::signalling(&mpd.text()).unwrap();
    let path = &laurl[laurl.find("/out/v1/").unwrap()..];
    let body = edgepack_test_support::clearkey::request(&kid).unwrap();
    let license = sidecar::raw(
        h.addr,
        format!(
            "POST {path} HTTP/1.1\r\nhost: edge\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    assert_eq!(license.status, 200, "{}", license.text());
    let key = edgepack_test_support::clearkey::key(&license.body, &kid).unwrap();
    let url = format!("http://{}/out/v1/news/dash/index.mpd?{range}", h.addr);
    let dash =
        edgepack_test_support::player::decoded_with(&["-cenc_decryption_key", &key], &url, "0:v")
            .unwrap_or_else(|e| panic!("dash: {e}"));
    let sorted = |m: &std::collections::BTreeMap<u32, Vec<String>>| {
        let mut v: Vec<Vec<String>> = m.values().cloned().collect();
        v.sort();
        v
    };
    assert_eq!(
        sorted(&dash),
        sorted(&hls),
        "DASH + cenc: the same pictures"
    );
    assert_eq!(
        dash.values().next().map_or(0, Vec::len),
        run.len() * 50,
        "DASH + cenc: every frame of the run (2 s at 25 fps per segment)"
    );

    // Smooth Streaming: GStreamer plays the demo's mss endpoint over the same range, the top
    // QualityLevel's pictures being the HLS endpoint's.
    let mss = edgepack_test_support::player::smooth_played(
        &format!("http://{}/out/v1/news/mss/Manifest?{range}", h.addr),
        100_000,
        90,
    )
    .unwrap();
    assert!(mss.ended);
    assert!(
        sorted(&hls).contains(&mss.video),
        "Smooth Streaming: the same pictures"
    );

    // The player page and hls.js, from the routes where the filter is off.
    let page = get(h.addr, "/");
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(page.text().contains("edgepack demo player"));
    for script in ["/hls.min.js", "/shaka-player.compiled.js"] {
        let js = get(h.addr, script);
        assert_eq!(
            (js.status, js.header("content-type")),
            (200, Some("application/javascript")),
            "{script}"
        );
    }

    // Labels, as Prometheus sees them once Envoy applies the bootstrap's stats_tags.
    let prom = get(h.admin, "/stats/prometheus").text();
    for endpoint in ["hls", "secure"] {
        let line = prom
            .lines()
            .find(|l| {
                l.starts_with(&format!(
                    "edgepack_egress_requests{{edgepack_channel=\"news\",edgepack_endpoint=\"{endpoint}\",edgepack_status_class=\"2xx\"}} "
                ))
            })
            .unwrap_or_else(|| panic!("no labelled request counter for {endpoint}:\n{prom}"));
        let n: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(n >= 4, "{line}");
        assert!(
            prom.contains(&format!(
                "edgepack_egress_bytes{{edgepack_channel=\"news\",edgepack_endpoint=\"{endpoint}\"}} "
            )),
            "{prom}"
        );
    }
    assert!(prom.contains("# TYPE edgepack_egress_response_time_ms histogram"));

    // EgressResponseTime against a measured latency: one more request moves the histogram's
    // sum by at most what the client measured (ms, rounded up).
    let sum = |prom: &str| -> f64 {
        let prefix = "edgepack_egress_response_time_ms_sum{edgepack_channel=\"news\",edgepack_endpoint=\"cmaf\"} ";
        prom.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .map_or(0.0, |v| v.parse().unwrap())
    };
    let before = sum(&get(h.admin, "/stats/prometheus").text());
    let asked = Instant::now();
    let fresh = get(h.addr, "/out/v1/news/cmaf/stream_1/index.m3u8");
    let measured_ms = asked.elapsed().as_secs_f64() * 1000.0;
    assert_eq!(fresh.status, 200);
    let moved = sum(&get(h.admin, "/stats/prometheus").text()) - before;
    assert!(
        (0.0..=measured_ms.ceil()).contains(&moved),
        "the filter recorded {moved} ms for a request the client measured at {measured_ms:.2} ms"
    );

    // envoy.yaml's access log: a line per request with the filter's own fields.
    let lines: Vec<serde_json::Value> = logged
        .lock()
        .unwrap()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let segment = lines
        .iter()
        .find(|l| l["asset"] == "segment" && l["endpoint"] == "secure")
        .unwrap_or_else(|| panic!("no secure segment in {lines:?}"));
    assert_eq!(segment["channel"], "news");
    assert_eq!(segment["status"], 200);
    assert!(segment["bytes"].as_u64().unwrap() > 1000, "{segment}");
    assert!(
        ["served", "cached"].contains(&segment["outcome"].as_str().unwrap()),
        "{segment}"
    );
    assert!(
        segment["client"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
    assert!(segment["time"].as_str().unwrap().ends_with('Z'));
    let license = lines.iter().find(|l| l["asset"] == "license").unwrap();
    assert_eq!(
        (&license["method"], &license["status"]),
        (&"POST".into(), &200.into())
    );
    let mpd = lines.iter().find(|l| l["asset"] == "mpd").unwrap();
    assert_eq!(mpd["endpoint"], "dash");
    // The player page: logged by the proxy, without filter state (the filter is off there).
    let page = lines.iter().find(|l| l["path"] == "/").unwrap();
    assert!(
        page["channel"].is_null() && page["outcome"].is_null(),
        "{page}"
    );
    // The demo's Grafana dashboard: every query names metrics, and labels, that the filter in
    // the host and the sidecar export; the demo's Prometheus scrapes exactly those two.
    let exported = format!(
        "{}\n{}",
        get(h.admin, "/stats/prometheus").text(),
        String::from_utf8(sc.get_ok("/metrics")).unwrap()
    );
    dashboard_queries_name_exported_metrics(&exported);
    let prometheus = std::fs::read_to_string(repo().join("envoy/prometheus.yml")).unwrap();
    assert!(prometheus.contains("metrics_path: /stats/prometheus"));
    assert!(
        prometheus.contains("targets: [\"127.0.0.1:9901\"]"),
        "envoy.yaml's admin"
    );
    assert!(
        prometheus.contains("targets: [\"127.0.0.1:8081\"]"),
        "the store's internal listener"
    );
    let store_toml = std::fs::read_to_string(repo().join("envoy/edgepack-store.toml")).unwrap();
    assert!(store_toml.contains("internal_listen = \"127.0.0.1:8081\""));
    let envoy_yaml = std::fs::read_to_string(repo().join("envoy/envoy.yaml")).unwrap();
    assert!(envoy_yaml.contains("socket_address: { address: 127.0.0.1, port_value: 9901 }"));
    assert_eq!(h.traps(), 0);
    sc.stop();
}

/// Checks `envoy/grafana/edgepack-dashboard.json` against the metrics text `exported`.
fn dashboard_queries_name_exported_metrics(exported: &str) {
    let text =
        std::fs::read_to_string(repo().join("envoy/grafana/edgepack-dashboard.json")).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&text).unwrap();
    let panels = dashboard["panels"].as_array().unwrap();
    assert!(panels.len() >= 6, "MediaPackage's six metrics at least");
    let mut checked = 0;
    for panel in panels {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            // Metric names: the words outside the `by (…)` label lists.
            let by = expr.split("by (").nth(1).and_then(|r| r.split(')').next());
            let outside = by.map_or_else(|| expr.to_owned(), |b| expr.replace(b, ""));
            let words: Vec<&str> = outside
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|w| w.starts_with("edgepack_"))
                .collect();
            assert!(!words.is_empty(), "{expr}: names no edgepack metric");
            for word in words {
                let samples: Vec<&str> = exported
                    .lines()
                    .filter(|l| {
                        l.starts_with(&format!("{word}{{")) || l.starts_with(&format!("{word} "))
                    })
                    .collect();
                assert!(
                    !samples.is_empty(),
                    "{expr}: {word} is not exported:\n{exported}"
                );
                // Labels the query groups by are on the samples.
                if let Some(by) = by {
                    for label in by.split(',').map(str::trim).filter(|l| *l != "le") {
                        assert!(
                            samples.iter().any(|s| s.contains(&format!("{label}=\""))),
                            "{expr}: no {label} label on {word}"
                        );
                    }
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 9, "{checked} metric references checked");
}
