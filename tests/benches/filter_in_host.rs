//! Benchmarks of the filter inside the proxy-wasm test host (`make bench`; prints figures, never
//! fails on timing). In one run:
//! 1. the same request handled by the filter compiled to wasm inside the host (wasmtime 48,
//!    Cranelift) and by the same core natively: media playlist rewrite (1 h of 2 s segments into a
//!    60 s window), AES-128 encryption of a 2 s segment (1 MB), TS → CMAF / DASH / Smooth
//!    Streaming fragments of a 2 s 720p segment, and a Smooth Streaming manifest of a 1 h window;
//! 2. requests/s and latency of encrypted 2 s segments through host + filter, against the same
//!    segment served clear by the store sidecar directly, with a load generator on loopback.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // benchmark harness

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use edgepack_filter::packager::{Plan, Request as CoreRequest, StoreAnswer, on_store_answer, plan};
use edgepack_host::vm::{CallResult, Vm, VmState};
use edgepack_host::{HostOptions, start};
use edgepack_test_support::{artifacts, fixtures, sidecar, summary};
use fixtures::{T0, store_playlist};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use wasmtime::{Engine, Module, Val};

// No playlist or segment cache: every request measures the work (the rewrite, the encryption),
// not a cache hit.
const CONFIG: &str = r#"{ "store": { "cluster": "edgepack_store", "playlist_cache_ms": 0 },
  "cache": { "megabytes": 0 },
  "channels": { "news": { "endpoints": {
    "hls": { "format": "hls", "manifest_window_seconds": 60 },
    "cmaf": { "format": "cmaf" },
    "cenc": { "format": "dash", "encryption": { "method": "cenc", "key_rotation_interval_seconds": 60,
      "key": { "derived": { "secret": "0123456789abcdef0123" } },
      "key_token": { "secret": "tok-0123456789abcdef" } } },
    "cbcs": { "format": "dash", "encryption": { "method": "cbcs", "key_rotation_interval_seconds": 60,
      "key": { "derived": { "secret": "0123456789abcdef0123" } },
      "key_token": { "secret": "tok-0123456789abcdef" } } },
    "mss": { "format": "mss", "manifest_window_seconds": 3600 },
    "secure": { "format": "hls", "encryption": { "method": "aes-128", "key_rotation_interval_seconds": 60,
      "key": { "derived": { "secret": "0123456789abcdef0123" } },
      "key_token": { "secret": "tok-0123456789abcdef" } } } } } } }"#;
const PDT: &str = "2026-11-25T06:40:00.000Z";

fn vm() -> Vm {
    let engine = Engine::default();
    let module = Module::from_file(&engine, artifacts::filter_wasm().unwrap()).unwrap();
    let linker = edgepack_host::vm::linker(&engine).unwrap();
    let state = VmState {
        name: "bench".into(),
        root_id: 1,
        plugin_config: CONFIG.as_bytes().to_vec(),
        plugin_config_open: false,
        effective: 1,
        streams: Default::default(),
        clusters: std::sync::Arc::new(
            [(
                "edgepack_store".to_owned(),
                SocketAddr::from(([127, 0, 0, 1], 9)),
            )]
            .into(),
        ),
        pending: Vec::new(),
        next_token: 0,
        call_response: None,
        metrics: Default::default(),
        metric_ids: Vec::new(),
        shared: Default::default(),
        tick_period_ms: 0,
        log_prefix: "bench".into(),
        guest: None,
    };
    Vm::start(&engine, &module, &linker, state).unwrap()
}

/// One request through the wasm filter: request headers, the store answer (with the segment's
/// program date time), the local reply.
fn in_vm(vm: &mut Vm, path: &str, body: &[u8]) -> usize {
    in_vm_steps(vm, path, &|_| (pdt_header(), body.to_vec()))
}

fn pdt_header() -> Vec<(String, String)> {
    vec![("x-edgepack-program-date-time".into(), PDT.into())]
}

/// A store answer for a request that takes several store fetches: headers and body by the
/// store path asked for.
type Answers<'a> = &'a dyn Fn(&str) -> (Vec<(String, String)>, Vec<u8>);

/// One request through the wasm filter, answering every store fetch it makes with `answers`.
fn in_vm_steps(vm: &mut Vm, path: &str, answers: Answers<'_>) -> usize {
    let id = vm.new_stream("127.0.0.1:5000".into()).unwrap();
    let st = vm.stream(id).unwrap();
    st.request_headers = vec![
        (":method".into(), "GET".into()),
        (":path".into(), path.into()),
        (":authority".into(), "edge".into()),
    ];
    st.request_headers_open = true;
    vm.stream_call(
        id,
        "proxy_on_request_headers",
        &[Val::I32(id as i32), Val::I32(3), Val::I32(1)],
    )
    .unwrap();
    while let Some(call) = vm.take_pending(id).pop() {
        let store_path = call
            .headers
            .iter()
            .find(|(k, _)| k == ":path")
            .map(|(_, v)| v.clone())
            .unwrap();
        let (mut headers, body) = answers(&store_path);
        headers.insert(0, (":status".into(), "200".into()));
        vm.deliver(
            call.token,
            CallResult::Response {
                headers,
                body,
                trailers: vec![],
            },
        )
        .unwrap();
    }
    let reply = vm.stream(id).unwrap().local_reply.take().expect("a reply");
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    vm.end_stream(id);
    reply.body.len()
}

/// [`in_vm_steps`] by the native core.
fn native_steps(settings: &edgepack_filter::Settings, path: &str, answers: Answers<'_>) -> usize {
    let none = |_: &str| None;
    let now = T0 + 3_600_000;
    let mut next = plan(
        settings,
        &CoreRequest {
            method: "GET",
            path,
            header: &none,
            client_ip: None,
            now_ms: now,
        },
    );
    loop {
        match next {
            Plan::Fetch(f) => {
                let (headers, body) = answers(&f.path);
                let header = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
                next = on_store_answer(
                    settings,
                    &f.next,
                    &StoreAnswer {
                        status: 200,
                        header: &header,
                        body: &body,
                    },
                    now,
                );
            }
            Plan::Respond(r) => {
                assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
                return r.body.len();
            }
            other => panic!("expected a fetch or an answer, got {other:?}"),
        }
    }
}

fn native(settings: &edgepack_filter::Settings, path: &str, body: &[u8]) -> usize {
    native_steps(settings, path, &|_| (pdt_header(), body.to_vec()))
}

fn mean_us(iterations: u32, mut f: impl FnMut() -> usize) -> f64 {
    for _ in 0..3 {
        std::hint::black_box(f());
    }
    let start = Instant::now();
    for _ in 0..iterations {
        std::hint::black_box(f());
    }
    start.elapsed().as_secs_f64() * 1e6 / f64::from(iterations)
}

/// Closed-loop load: `conns` keep-alive connections GET `path` for `secs`; (req/s, p50, p99 ms).
fn load(addr: SocketAddr, path: &str, conns: usize, secs: u64) -> (f64, f64, f64) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..conns {
            let path = path.to_owned();
            tasks.push(tokio::spawn(async move {
                let connect = || async {
                    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
                    let (sender, conn) =
                        hyper::client::conn::http1::handshake(TokioIo::new(stream))
                            .await
                            .unwrap();
                    tokio::spawn(conn);
                    sender
                };
                let mut sender = connect().await;
                let mut lat = Vec::new();
                while Instant::now() < deadline {
                    let t = Instant::now();
                    let req = hyper::Request::get(path.as_str())
                        .header("host", "edge")
                        .body(Empty::<Bytes>::new())
                        .unwrap();
                    // A keep-alive connection the server closed meanwhile: open another (as a
                    // client pool does) and go on; the time counts.
                    let resp = match sender.send_request(req).await {
                        Ok(r) => r,
                        Err(_) => {
                            sender = connect().await;
                            continue;
                        }
                    };
                    assert_eq!(resp.status(), 200);
                    let _ = resp.into_body().collect().await.unwrap();
                    lat.push(t.elapsed().as_secs_f64() * 1000.0);
                }
                lat
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        let secs = start.elapsed().as_secs_f64();
        all.sort_by(f64::total_cmp);
        let pct = |p: f64| all[((all.len() as f64 - 1.0) * p) as usize];
        (all.len() as f64 / secs, pct(0.5), pct(0.99))
    })
}

fn main() {
    // `cargo test` runs benches once each without `--bench`: every path, one iteration, so a
    // bench cannot rot unnoticed; `cargo bench` (make bench) measures.
    let quick = !std::env::args().any(|a| a == "--bench");
    let n = |iterations: u32| if quick { 1 } else { iterations };
    let load_secs = if quick { 1 } else { 5 };
    let settings = edgepack_filter::Settings::from_json(CONFIG.as_bytes()).unwrap();
    let playlist = store_playlist(1800).into_bytes();
    let segment = vec![0x47u8; 1_000_000];
    let mut vm = vm();
    let pl_path = "/out/v1/news/hls/stream_0/index.m3u8";
    let seg_path = "/out/v1/news/secure/stream_0/100.ts";
    let wasm_pl = mean_us(n(100), || in_vm(&mut vm, pl_path, &playlist));
    let native_pl = mean_us(n(100), || native(&settings, pl_path, &playlist));
    let wasm_seg = mean_us(n(50), || in_vm(&mut vm, seg_path, &segment));
    let native_seg = mean_us(n(50), || native(&settings, seg_path, &segment));
    println!("filter in the test host (wasmtime 48) vs the same core native, this machine:");
    println!(
        "  media playlist rewrite, 1 h store playlist -> 60 s window: wasm {wasm_pl:.0} us, native {native_pl:.0} us, ratio {:.2}",
        wasm_pl / native_pl
    );
    println!(
        "  AES-128 of a 1 MB segment: wasm {wasm_seg:.0} us ({:.0} MB/s), native {native_seg:.0} us ({:.0} MB/s), ratio {:.2}",
        1e6 / wasm_seg,
        1e6 / native_seg,
        wasm_seg / native_seg
    );

    summary::row(
        "media playlist, 1 h history, filter in wasmtime (vs native)",
        &format!("{:.2} ms", wasm_pl / 1e3),
        Some(&format!("{:.2} ms", native_pl / 1e3)),
        Some(wasm_pl / native_pl),
    );
    summary::row(
        "AES-128 1 MB segment, filter in wasmtime (vs native)",
        &format!("{:.0} MB/s", 1e6 / wasm_seg),
        Some(&format!("{:.0} MB/s", 1e6 / native_seg)),
        Some(native_seg / wasm_seg),
    );

    // TS → CMAF of a 2 s 720p segment at 5 Mb/s, as an encoder makes it.
    let dir = tempfile::tempdir().unwrap();
    let ts_file = dir.path().join("segment.ts");
    let made = fixtures::encode_ts(&ts_file, 2);
    if made {
        let ts = std::fs::read(&ts_file).unwrap();
        let path = "/out/v1/news/cmaf/stream_0/100.mp4";
        assert!(in_vm(&mut vm, path, &ts) > ts.len() / 2, "a fragment");
        let wasm_remux = mean_us(n(50), || in_vm(&mut vm, path, &ts));
        let native_remux = mean_us(n(50), || native(&settings, path, &ts));
        let mb = ts.len() as f64;
        summary::row(
            "TS->CMAF, 2 s 720p segment, filter in wasmtime (vs native)",
            &format!("{:.0} MB/s", mb / wasm_remux),
            Some(&format!("{:.0} MB/s", mb / native_remux)),
            Some(native_remux / wasm_remux),
        );
        // A DASH video segment, repackaged and common-encrypted (MB/s of the TS read).
        for scheme in ["cenc", "cbcs"] {
            // DASH times are 90 kHz ticks of whole milliseconds.
            let path = format!("/out/v1/news/{scheme}/stream_0/v9000.mp4");
            assert!(
                in_vm(&mut vm, &path, &ts) > ts.len() / 2,
                "a video fragment"
            );
            let wasm = mean_us(n(50), || in_vm(&mut vm, &path, &ts));
            let native = mean_us(n(50), || native(&settings, &path, &ts));
            summary::row(
                &format!("TS->DASH video + {scheme}, 2 s 720p, filter in wasmtime (vs native)"),
                &format!("{:.0} MB/s", mb / wasm),
                Some(&format!("{:.0} MB/s", mb / native)),
                Some(native / wasm),
            );
        }
        // Smooth Streaming: the store's answers by path (multivariant, the 1 h playlist, the
        // segment by time), as the fragment and manifest steps ask for them.
        let multivariant = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=5000000,CODECS=\"avc1.64001f,mp4a.40.2\",RESOLUTION=1280x720\nstream_0/index.m3u8\n";
        let answers = |p: &str| -> (Vec<(String, String)>, Vec<u8>) {
            if p == "/store/v1/news/index.m3u8" {
                (vec![], multivariant.as_bytes().to_vec())
            } else if p.contains("/index.m3u8") {
                (vec![], playlist.clone())
            } else {
                let headers = [
                    ("x-edgepack-program-date-time", PDT),
                    ("x-edgepack-sequence", "100"),
                    ("x-edgepack-duration", "2.000000"),
                ];
                (
                    headers
                        .iter()
                        .map(|(k, v)| ((*k).into(), (*v).into()))
                        .collect(),
                    ts.clone(),
                )
            }
        };
        let t = edgepack_filter::mss::time_of(T0).unwrap();
        let path = format!("/out/v1/news/mss/QualityLevels(5000000)/Fragments(video={t})");
        assert!(
            in_vm_steps(&mut vm, &path, &answers) > ts.len() / 2,
            "a fragment"
        );
        let wasm = mean_us(n(50), || in_vm_steps(&mut vm, &path, &answers));
        let native = mean_us(n(50), || native_steps(&settings, &path, &answers));
        summary::row(
            "TS->Smooth Streaming video fragment, 2 s 720p, filter in wasmtime (vs native)",
            &format!("{:.0} MB/s", mb / wasm),
            Some(&format!("{:.0} MB/s", mb / native)),
            Some(native / wasm),
        );
        let path = "/out/v1/news/mss/Manifest";
        let size = in_vm_steps(&mut vm, path, &answers);
        let wasm = mean_us(n(100), || in_vm_steps(&mut vm, path, &answers));
        let native = mean_us(n(100), || native_steps(&settings, path, &answers));
        println!(
            "  Smooth Streaming manifest, 1 h window ({size} bytes): wasm {wasm:.0} us, native {native:.0} us"
        );
        summary::row(
            "Smooth Streaming manifest, 1 h window, filter in wasmtime (vs native)",
            &format!("{:.2} ms", wasm / 1e3),
            Some(&format!("{:.2} ms", native / 1e3)),
            Some(wasm / native),
        );
    }

    // Through HTTP: sidecar direct (clear) vs host + filter (encrypted), both optimized builds
    // (the quick run uses the test build of the sidecar: it proves the path, not the speed).
    if !quick {
        let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let built = std::process::Command::new(cargo)
            .current_dir(&root)
            .args(["build", "--profile", "bench", "-p", "edgepack-store"])
            .status()
            .unwrap();
        assert!(built.success());
        // SAFETY: set before any other thread of this process reads the environment.
        unsafe {
            std::env::set_var(
                "EDGEPACK_STORE_BIN",
                root.join("target/release/edgepack-store"),
            )
        };
    }
    let dir = tempfile::tempdir().unwrap();
    let sc = sidecar::Sidecar::start(&sidecar::write_config(dir.path(), "", ""));
    let auth = sidecar::basic("enc1", sidecar::PASSWORD_1);
    let seg = vec![0x47u8; 500_000]; // a 2 s segment at 2 Mb/s
    sidecar::put(sc.ingest, "/in/v1/news/1/s0.ts", Some(&auth), &seg);
    let pl = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:2.0,\ns0.ts\n";
    sidecar::put(
        sc.ingest,
        "/in/v1/news/1/hd.m3u8",
        Some(&auth),
        pl.as_bytes(),
    );
    let mut o = HostOptions::new(
        artifacts::filter_wasm().unwrap(),
        CONFIG.as_bytes().to_vec(),
    );
    o.clusters = vec![("edgepack_store".into(), sc.internal)];
    o.workers = 2;
    let h = start(o).unwrap();
    let (d_rps, d_p50, d_p99) = load(sc.internal, "/store/v1/news/hd/0.ts", 8, load_secs);
    let (h_rps, h_p50, h_p99) = load(h.addr, "/out/v1/news/secure/hd/0.ts", 8, load_secs);
    println!(
        "500 kB segments, 8 connections, 5 s each, loopback (load generator on the same cores):"
    );
    println!(
        "  sidecar direct, clear:         {d_rps:.0} req/s, p50 {d_p50:.1} ms, p99 {d_p99:.1} ms"
    );
    println!(
        "  host + filter, AES-128:        {h_rps:.0} req/s, p50 {h_p50:.1} ms, p99 {h_p99:.1} ms"
    );
    println!(
        "  ratio host+filter / direct:    req/s {:.2}, p99 {:.2}",
        h_rps / d_rps,
        h_p99 / d_p99
    );
    summary::row(
        "500 kB segments over HTTP: host+filter AES-128 (vs sidecar clear)",
        &format!("{h_rps:.0} req/s"),
        Some(&format!("{d_rps:.0} req/s")),
        Some(h_rps / d_rps),
    );
    summary::row(
        "  same, p99 latency",
        &format!("{h_p99:.0} ms"),
        Some(&format!("{d_p99:.0} ms")),
        Some(h_p99 / d_p99),
    );
    assert_eq!(h.traps(), 0);
}
