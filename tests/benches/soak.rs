//! Soak under load (#16 §4), `make soak`: for `EDGEPACK_SOAK_SECONDS` (default 600) two ffmpeg
//! encoders push live HLS (two renditions) to both inputs of a channel, input 1 is killed at 40 %
//! of the run (failover to input 2), and `EDGEPACK_SOAK_VIEWERS` (default 1000) simulated viewers
//! watch through the test host (4 worker VMs, optimized builds of the host and the sidecar): each
//! refreshes its playlist or MPD every target duration (2 s) and fetches what a player fetches —
//! the newest segment, initialization segments, AES-128 keys, ClearKey licenses — spread over
//! every endpoint kind (HLS clear, HLS AES-128, CMAF, DASH cenc). One keep-alive connection per
//! viewer; viewers join over the first 20 s.
//!
//! Reports requests and latency (p50/p99) per kind, every non-2xx answer by kind, status and
//! reason, and every 10 s the sidecar's and the host's RSS, each worker VM's linear memory and the
//! host's trap count. Fails on a trap, or a kind of request that never succeeded; never on
//! timing or memory figures (they are reported).
//!
//! Run by `make test` once in a quick mode (20 s, 40 viewers, debug builds) so it cannot rot.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // benchmark harness

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use edgepack_test_support::sidecar::{
    Encoder, EncoderSpec, Sidecar, address_in, ready_line, wait_for, write_config,
};
use edgepack_test_support::{artifacts, clearkey, summary};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

const CONFIG: &str = r#"{ "store": { "cluster": "edgepack_store" },
  "channels": { "news": { "endpoints": {
    "hls": { "format": "hls", "manifest_window_seconds": 30 },
    "secure": { "format": "hls", "manifest_window_seconds": 30,
      "encryption": { "method": "aes-128", "key_rotation_interval_seconds": 20,
        "key": { "derived": { "secret": "0123456789abcdef0123" } },
        "key_token": { "secret": "tok-0123456789abcdef" } } },
    "cmaf": { "format": "cmaf", "manifest_window_seconds": 30 },
    "dash": { "format": "dash", "manifest_window_seconds": 30,
      "encryption": { "method": "cenc", "key_rotation_interval_seconds": 20,
        "key": { "derived": { "secret": "0123456789abcdef0123" } },
        "key_token": { "secret": "tok-0123456789abcdef" } } } } } } }"#;

#[derive(Clone, Copy)]
enum Viewer {
    Hls,
    Secure,
    Cmaf,
    Dash,
}

/// Every answer, by kind of request.
#[derive(Default)]
struct Stats {
    latencies: BTreeMap<&'static str, Vec<u32>>,
    /// (kind, status, first reason seen) → count, for every answer that is not 2xx.
    refused: BTreeMap<(&'static str, u16), (u64, String)>,
    /// Connections that failed (reset, refused): by kind.
    failed: BTreeMap<&'static str, u64>,
}

type Shared = Arc<Mutex<Stats>>;

/// One viewer's keep-alive connection.
struct Conn {
    addr: SocketAddr,
    sender: Option<hyper::client::conn::http1::SendRequest<Full<Bytes>>>,
}

impl Conn {
    async fn request(
        &mut self,
        stats: &Shared,
        kind: &'static str,
        method: &str,
        path: &str,
        body: Vec<u8>,
    ) -> Option<Vec<u8>> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            let stream = tokio::net::TcpStream::connect(self.addr).await.ok()?;
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .ok()?;
            tokio::spawn(conn);
            self.sender = Some(sender);
        }
        let sender = self.sender.as_mut()?;
        let req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "edge.example")
            .body(Full::new(Bytes::from(body)))
            .ok()?;
        let started = Instant::now();
        let answer = async {
            let r = sender.send_request(req).await.ok()?;
            let status = r.status().as_u16();
            let body = r.into_body().collect().await.ok()?.to_bytes().to_vec();
            Some((status, body))
        }
        .await;
        let mut s = stats.lock().unwrap();
        let Some((status, body)) = answer else {
            *s.failed.entry(kind).or_default() += 1;
            self.sender = None;
            return None;
        };
        s.latencies
            .entry(kind)
            .or_default()
            .push(started.elapsed().as_micros() as u32);
        if (200..300).contains(&status) {
            Some(body)
        } else {
            let e = s.refused.entry((kind, status)).or_insert_with(|| {
                (
                    0,
                    String::from_utf8_lossy(&body)
                        .trim()
                        .chars()
                        .take(120)
                        .collect(),
                )
            });
            e.0 += 1;
            None
        }
    }
}

/// A URI from a playlist at `base` (a path), as a player resolves it.
fn resolve(base: &str, uri: &str) -> String {
    if let Some(rest) = uri.split_once("://").map(|(_, r)| r) {
        return rest[rest.find('/').unwrap_or(rest.len())..].to_owned();
    }
    if uri.starts_with('/') {
        return uri.to_owned();
    }
    let mut parts: Vec<&str> = base
        .rsplit_once('/')
        .map_or("", |(d, _)| d)
        .split('/')
        .collect();
    for p in uri.split('/') {
        match p {
            ".." => {
                parts.pop();
            }
            "." => {}
            p => parts.push(p),
        }
    }
    parts.join("/")
}

fn attribute<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let start = line.find(&format!("{name}=\""))? + name.len() + 2;
    line[start..].split('"').next()
}

/// The newest video segment of an MPD: in its last Period, the first SegmentTemplate's media URL
/// for the first Representation at the last time of its SegmentTimeline.
fn newest_dash_segment(mpd: &str) -> Option<String> {
    // The last period (one per key period): its first AdaptationSet is the video.
    let mpd = &mpd[mpd.rfind("<Period")?..];
    let template = &mpd[mpd.find("<SegmentTemplate")?..];
    let media = attribute(template, "media")?;
    let timeline = &template[..template.find("</SegmentTimeline>")?];
    let mut time = 0u64;
    let mut last = None;
    for s in timeline.split("<S ").skip(1) {
        if let Some(t) = attribute(s, "t") {
            time = t.parse().ok()?;
        }
        let d: u64 = attribute(s, "d")?.parse().ok()?;
        let r: u64 = attribute(s, "r").map_or(Some(0), |r| r.parse().ok())?;
        last = Some(time + r * d);
        time += (r + 1) * d;
    }
    let representation = &mpd[mpd.find("<Representation ")?..];
    let id = attribute(representation, "id")?;
    Some(
        media
            .replace("$RepresentationID$", id)
            .replace("$Time$", &last?.to_string()),
    )
}

async fn watch(
    kind: Viewer,
    addr: SocketAddr,
    stats: Shared,
    join_after: Duration,
    until: Instant,
) {
    tokio::time::sleep(join_after).await;
    let mut c = Conn { addr, sender: None };
    let mut seen: HashSet<String> = HashSet::new();
    let (endpoint, manifest) = match kind {
        Viewer::Hls => ("hls", "stream_0/index.m3u8"),
        Viewer::Secure => ("secure", "stream_0/index.m3u8"),
        Viewer::Cmaf => ("cmaf", "stream_0/index.m3u8"),
        Viewer::Dash => ("dash", "index.mpd"),
    };
    let base = format!("/out/v1/news/{endpoint}/");
    if !matches!(kind, Viewer::Dash) {
        c.request(
            &stats,
            "multivariant",
            "GET",
            &format!("{base}index.m3u8"),
            vec![],
        )
        .await;
    }
    let manifest_path = format!("{base}{manifest}");
    while Instant::now() < until {
        let round = Instant::now();
        if let Viewer::Dash = kind {
            if let Some(mpd) = c
                .request(&stats, "mpd", "GET", &manifest_path, vec![])
                .await
            {
                let mpd = String::from_utf8_lossy(&mpd).into_owned();
                if let Ok((kid, laurl)) = clearkey::signalling(&mpd)
                    && seen.insert(kid.clone())
                {
                    let path = resolve(&manifest_path, &laurl);
                    let body = clearkey::request(&kid).unwrap().into_bytes();
                    c.request(&stats, "license", "POST", &path, body).await;
                }
                if let Some(seg) = newest_dash_segment(&mpd)
                    && seen.insert(seg.clone())
                {
                    let path = resolve(&manifest_path, &seg);
                    c.request(&stats, "dash segment", "GET", &path, vec![])
                        .await;
                }
            }
        } else if let Some(pl) = c
            .request(&stats, "media playlist", "GET", &manifest_path, vec![])
            .await
        {
            let pl = String::from_utf8_lossy(&pl).into_owned();
            let extra = pl.lines().rev().find_map(|l| {
                let (tag, kind) = if l.starts_with("#EXT-X-KEY") {
                    ("URI", "key")
                } else if l.starts_with("#EXT-X-MAP") {
                    ("URI", "init")
                } else {
                    return None;
                };
                attribute(l, tag).map(|u| (u.to_owned(), kind))
            });
            if let Some((uri, what)) = extra
                && seen.insert(uri.clone())
            {
                c.request(&stats, what, "GET", &resolve(&manifest_path, &uri), vec![])
                    .await;
            }
            if let Some(newest) = pl
                .lines()
                .rev()
                .find(|l| !l.is_empty() && !l.starts_with('#'))
                && seen.insert(newest.to_owned())
            {
                let what = match kind {
                    Viewer::Secure => "aes-128 segment",
                    Viewer::Cmaf => "cmaf segment",
                    _ => "ts segment",
                };
                c.request(
                    &stats,
                    what,
                    "GET",
                    &resolve(&manifest_path, newest),
                    vec![],
                )
                .await;
            }
        }
        let spent = round.elapsed();
        tokio::time::sleep(Duration::from_secs(2).saturating_sub(spent)).await;
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// The host's own stats from its admin listener: (traps, each worker VM's memory in bytes).
fn host_stats(admin: SocketAddr) -> (u64, Vec<u64>) {
    let text = edgepack_test_support::sidecar::get(admin, "/stats/prometheus").text();
    let mut traps = 0;
    let mut memory = Vec::new();
    for l in text.lines() {
        if let Some(v) = l.strip_prefix("edgepack_host_wasm_traps ") {
            traps = v.trim().parse().unwrap_or(0);
        } else if l.starts_with("edgepack_host_wasm_vm_memory_bytes{") {
            memory.push(l.rsplit(' ').next().unwrap_or("0").parse().unwrap_or(0));
        }
    }
    (traps, memory)
}

struct Host {
    child: Child,
    addr: SocketAddr,
    admin: SocketAddr,
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_host(
    binary: &PathBuf,
    config: &std::path::Path,
    store: SocketAddr,
    workers: usize,
) -> Host {
    let mut child = Command::new(binary)
        .arg("--wasm")
        .arg(artifacts::filter_wasm().unwrap())
        .arg("--config")
        .arg(config)
        .arg("--cluster")
        .arg(format!("edgepack_store={store}"))
        .args(["--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"])
        .args(["--workers", &workers.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let line = ready_line(&mut child);
    Host {
        addr: address_in(&line, "http="),
        admin: address_in(&line, "admin="),
        child,
    }
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let env = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let (seconds, viewers) = if full {
        (
            env("EDGEPACK_SOAK_SECONDS", 600),
            env("EDGEPACK_SOAK_VIEWERS", 1000),
        )
    } else {
        (20, 40)
    };
    let (store_bin, host_bin) = if full {
        (
            artifacts::optimized_store_tools().unwrap().0,
            artifacts::optimized_host().unwrap(),
        )
    } else {
        (
            edgepack_test_support::sidecar::store_binary(),
            artifacts::host_binary().unwrap(),
        )
    };
    println!(
        "soak: {seconds} s, {viewers} viewers, 4 worker VMs, {} builds",
        if full {
            "optimized"
        } else {
            "debug (quick mode)"
        }
    );

    let dir = tempfile::tempdir().unwrap();
    let mut store = Sidecar::start_binary(&store_bin, &write_config(dir.path(), "", ""));
    let encoder_seconds = seconds as u32 + 40;
    let spec = |input: u8| EncoderSpec {
        two_renditions: true,
        ..EncoderSpec::digest(store.ingest, input, encoder_seconds)
    };
    let mut encoder_1 = Encoder::start(spec(1));
    wait_for(Duration::from_secs(30), "input 1 to publish", || {
        (store.status()["active_input"] == 1).then_some(())
    });
    let encoder_2 = Encoder::start(spec(2));
    wait_for(Duration::from_secs(30), "three segments", || {
        (store.status()["renditions"][0]["segments"].as_u64()? >= 3).then_some(())
    });
    let config = dir.path().join("filter.json");
    std::fs::write(&config, CONFIG).unwrap();
    let host = start_host(&host_bin, &config, store.internal, 4);

    let stats: Shared = Arc::default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let ramp = Duration::from_secs(20.min(seconds / 2));
    let kinds = [Viewer::Hls, Viewer::Secure, Viewer::Cmaf, Viewer::Dash];
    let tasks: Vec<_> = (0..viewers)
        .map(|i| {
            let join_after = ramp.mul_f64(i as f64 / viewers as f64);
            rt.spawn(watch(
                kinds[i as usize % kinds.len()],
                host.addr,
                stats.clone(),
                join_after,
                until,
            ))
        })
        .collect();

    // Every 10 s: memory and traps; input 1 killed at 40 % of the run.
    println!(
        "{:>6} {:>12} {:>12} {:>28} {:>6} {:>10}",
        "t (s)", "sidecar RSS", "host RSS", "VM memory (MiB, per worker)", "traps", "requests"
    );
    let mut samples = Vec::new();
    let mut killed = false;
    let store_pid = store.pid().unwrap();
    while Instant::now() < until {
        std::thread::sleep(
            Duration::from_secs(10).min(until.saturating_duration_since(Instant::now())),
        );
        let t = started.elapsed().as_secs();
        if !killed && t >= seconds * 2 / 5 {
            encoder_1.kill();
            killed = true;
            println!("{t:>6} input 1's encoder killed: failover to input 2");
        }
        let (traps, memory) = host_stats(host.admin);
        let requests: usize = stats.lock().unwrap().latencies.values().map(Vec::len).sum();
        let sample = (rss_kib(store_pid), rss_kib(host.child.id()), memory, traps);
        let vm: Vec<String> = sample
            .2
            .iter()
            .map(|b| format!("{:.1}", *b as f64 / 1048576.0))
            .collect();
        println!(
            "{t:>6} {:>9} MiB {:>9} MiB {:>28} {:>6} {:>10}",
            sample.0 / 1024,
            sample.1 / 1024,
            vm.join(" "),
            sample.3,
            requests
        );
        samples.push(sample);
    }
    rt.block_on(async {
        for t in tasks {
            let _ = t.await;
        }
    });
    let active = store.status()["active_input"].clone();

    let s = stats.lock().unwrap();
    println!(
        "\n{:<18} {:>10} {:>10} {:>10}",
        "request", "answers", "p50 ms", "p99 ms"
    );
    let mut total = 0;
    for (kind, lat) in &s.latencies {
        let mut sorted = lat.clone();
        sorted.sort_unstable();
        total += sorted.len();
        let (p50, p99) = (percentile(&sorted, 0.5), percentile(&sorted, 0.99));
        println!("{kind:<18} {:>10} {p50:>10.1} {p99:>10.1}", sorted.len());
        summary::row(
            &format!("soak: {kind} p99 ({viewers} viewers)"),
            &format!("{p99:.1} ms"),
            None,
            None,
        );
    }
    println!("{:<18} {total:>10}", "all");
    println!("\nnot 2xx (kind, status, count, first reason):");
    for ((kind, status), (n, why)) in &s.refused {
        println!("  {kind:<18} {status} ×{n}: {why}");
    }
    for (kind, n) in &s.failed {
        println!("  {kind:<18} connection failed ×{n}");
    }
    let (first, last) = (samples.first().cloned(), samples.last().cloned());
    if let (Some(a), Some(b)) = (first, last) {
        println!(
            "\nmemory, first → last sample: sidecar {} → {} MiB, host {} → {} MiB, VMs {:?} → {:?} bytes",
            a.0 / 1024,
            b.0 / 1024,
            a.1 / 1024,
            b.1 / 1024,
            a.2,
            b.2
        );
    }
    println!("active input at the end: {active}");
    summary::row(
        &format!("soak: requests answered in {seconds} s"),
        &total.to_string(),
        None,
        None,
    );

    let (traps, _) = host_stats(host.admin);
    assert_eq!(traps, 0, "the filter trapped");
    for kind in [
        "media playlist",
        "ts segment",
        "aes-128 segment",
        "key",
        "cmaf segment",
        "mpd",
        "license",
        "dash segment",
    ] {
        let ok = s.latencies.get(kind).map_or(0, Vec::len)
            - s.refused
                .iter()
                .filter(|((k, _), _)| *k == kind)
                .map(|(_, (n, _))| *n as usize)
                .sum::<usize>();
        assert!(ok > 0, "no {kind} request succeeded");
    }
    drop(s);
    drop(host);
    drop(encoder_2);
    store.stop();
}
