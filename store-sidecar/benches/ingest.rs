//! Ingest benchmark for the store sidecar (`make bench`; prints figures, never fails on timing).
//!
//! 1. Paced load: for each of the two inputs, 200 requests/s (MediaPackage v2's limit per input),
//!    alternating a 1 MB segment PUT and a playlist PUT that lists it, as an encoder does. Open
//!    loop: latency counts from the time a request was *due*, so a slow server cannot hide its
//!    queueing (no coordinated omission).
//! 2. Sustained ingest: 8 connections PUT 1 MB segments (each followed by its playlist) as fast
//!    as the sidecar takes them: bytes/s committed to disk (fsynced).
//! 3. The same sustained ingest into an S3 bucket (`[storage] kind = "s3"`; moto, a real S3 server
//!    in Python on loopback, started by the bench) against the disk in the same run: segment PUTs
//!    per second on one input and their p99. moto is no AWS S3: the figure says what the sidecar
//!    adds to a bucket's own latency, not what S3 does.
//!
//! The sidecar is the real release binary on loopback with a temporary data dir; the load
//! generator is a small keep-alive HTTP/1.1 client in this file. Basic auth (a Digest client pays
//! one extra 401 round trip per new connection, which ffmpeg does on every file).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // benchmark harness

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use edgepack_test_support::bucket::S3Server;
use edgepack_test_support::sidecar::{PASSWORD_1, PASSWORD_2, Sidecar, basic, write_config};
use edgepack_test_support::summary;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader as TokioBufReader};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

const SEGMENT_BYTES: usize = 1_000_000;
const RATE_PER_INPUT: u64 = 200;
const PACED_SECONDS: u64 = 10;
const SUSTAINED_SECONDS: u64 = 10;
const SUSTAINED_CONNECTIONS: usize = 8;

struct Conn {
    reader: TokioBufReader<TcpStream>,
}

impl Conn {
    async fn open(addr: SocketAddr) -> Conn {
        let s = TcpStream::connect(addr).await.unwrap();
        s.set_nodelay(true).unwrap();
        Conn {
            reader: TokioBufReader::new(s),
        }
    }

    /// One keep-alive PUT; returns the status (0: the connection broke).
    async fn put(&mut self, path: &str, auth: &str, body: &[u8]) -> u16 {
        self.try_put(path, auth, body).await.unwrap_or(0)
    }

    async fn try_put(&mut self, path: &str, auth: &str, body: &[u8]) -> std::io::Result<u16> {
        let head = format!(
            "PUT {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: {auth}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let s = self.reader.get_mut();
        s.write_all(head.as_bytes()).await?;
        s.write_all(body).await?;
        let mut line = String::new();
        self.reader.read_line(&mut line).await?;
        let Some(status) = line.split(' ').nth(1).and_then(|s| s.parse().ok()) else {
            return Ok(0);
        };
        let mut len = 0usize;
        loop {
            line.clear();
            if self.reader.read_line(&mut line).await? == 0 {
                return Ok(status);
            }
            if line == "\r\n" {
                break;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                len = v.trim().parse().unwrap_or(0);
            }
        }
        let mut sink = vec![0u8; len];
        self.reader.read_exact(&mut sink).await?;
        Ok(status)
    }
}

fn playlist(msn: u64) -> Vec<u8> {
    let first = msn.saturating_sub(4);
    let mut text = format!(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:{first}\n"
    );
    for m in first..=msn {
        text.push_str(&format!("#EXTINF:2.000000,\nseg_{m}.ts\n"));
    }
    text.into_bytes()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[derive(Default)]
struct Samples {
    segment_ms: Vec<f64>,
    playlist_ms: Vec<f64>,
    errors: u64,
}

async fn paced(addr: SocketAddr, seconds: u64) -> (Samples, f64, f64) {
    let samples = Arc::new(Mutex::new(Samples::default()));
    let segment = Arc::new(vec![0x47u8; SEGMENT_BYTES]);
    let interval = Duration::from_nanos(1_000_000_000 / RATE_PER_INPUT);
    let start = Instant::now() + Duration::from_millis(200);
    let pool_size = 48;
    let mut tasks = Vec::new();
    for input in 1..=2u8 {
        let (tx, rx) = async_channel_pool(addr, pool_size).await;
        let auth = basic(
            &format!("enc{input}"),
            if input == 1 { PASSWORD_1 } else { PASSWORD_2 },
        );
        let samples = samples.clone();
        let segment = segment.clone();
        tasks.push(tokio::spawn(async move {
            let total = RATE_PER_INPUT * seconds;
            let mut inflight = Vec::new();
            for i in 0..total {
                let due = start + interval * i as u32;
                tokio::time::sleep_until(due.into()).await;
                let (tx, rx) = (tx.clone(), rx.clone());
                let samples = samples.clone();
                let segment = segment.clone();
                let auth = auth.clone();
                inflight.push(tokio::spawn(async move {
                    let mut conn = rx.recv().await.unwrap();
                    let msn = i / 2;
                    let (status, is_segment) = if i % 2 == 0 {
                        let path = format!("/in/v1/news/{input}/seg_{msn}.ts");
                        (conn.put(&path, &auth, &segment).await, true)
                    } else {
                        let path = format!("/in/v1/news/{input}/hd.m3u8");
                        (conn.put(&path, &auth, &playlist(msn)).await, false)
                    };
                    let ms = due.elapsed().as_secs_f64() * 1000.0;
                    tx.send(conn).await.unwrap();
                    let mut s = samples.lock().await;
                    if !(200..300).contains(&status) {
                        s.errors += 1;
                    }
                    if is_segment {
                        s.segment_ms.push(ms);
                    } else {
                        s.playlist_ms.push(ms);
                    }
                }));
            }
            for t in inflight {
                t.await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = start.elapsed().as_secs_f64();
    let s = Arc::try_unwrap(samples).ok().unwrap().into_inner();
    let requests = (s.segment_ms.len() + s.playlist_ms.len()) as f64;
    let bytes = s.segment_ms.len() as f64 * SEGMENT_BYTES as f64;
    (s, requests / elapsed, bytes / elapsed)
}

/// A pool of keep-alive connections: a channel of idle ones.
async fn async_channel_pool(addr: SocketAddr, n: usize) -> (PoolTx, PoolRx) {
    let (tx, rx) = tokio::sync::mpsc::channel(n);
    for _ in 0..n {
        tx.send(Conn::open(addr).await).await.unwrap();
    }
    (PoolTx(tx), PoolRx(Arc::new(Mutex::new(rx))))
}

#[derive(Clone)]
struct PoolTx(tokio::sync::mpsc::Sender<Conn>);
impl PoolTx {
    async fn send(&self, c: Conn) -> Result<(), ()> {
        self.0.send(c).await.map_err(|_| ())
    }
}
#[derive(Clone)]
struct PoolRx(Arc<Mutex<tokio::sync::mpsc::Receiver<Conn>>>);
impl PoolRx {
    async fn recv(&self) -> Option<Conn> {
        self.0.lock().await.recv().await
    }
}

/// Segments/s and bytes/s, and each segment PUT's latency (ms, sorted).
async fn sustained(addr: SocketAddr, seconds: u64) -> (f64, f64, Vec<f64>) {
    let segment = Arc::new(vec![0x47u8; SEGMENT_BYTES]);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..SUSTAINED_CONNECTIONS {
        let segment = segment.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(addr).await;
            let auth = basic("enc1", PASSWORD_1);
            let mut n = 0u64;
            let mut ms = Vec::new();
            while Instant::now() < deadline {
                let msn = n;
                let path = format!("/in/v1/news/1/c{c}_{msn}.ts");
                let sent = Instant::now();
                let status = conn.put(&path, &auth, &segment).await;
                if !(200..300).contains(&status) {
                    // A refusal is a figure, not a crash (seen once under make test's load):
                    // said, and the step retried on a new connection.
                    println!("  connection {c}: segment {msn} refused with {status}");
                    conn = Conn::open(addr).await;
                    continue;
                }
                ms.push(sent.elapsed().as_secs_f64() * 1000.0);
                let pl = String::from_utf8(playlist(msn))
                    .unwrap()
                    .replace("seg_", &format!("c{c}_"));
                let status = conn
                    .put(&format!("/in/v1/news/1/r{c}.m3u8"), &auth, pl.as_bytes())
                    .await;
                assert!((200..300).contains(&status));
                n += 1;
            }
            (n, ms)
        }));
    }
    let mut segments = 0;
    let mut latencies = Vec::new();
    for t in tasks {
        let (n, ms) = t.await.unwrap();
        segments += n;
        latencies.extend(ms);
    }
    latencies.sort_by(f64::total_cmp);
    let secs = start.elapsed().as_secs_f64();
    (
        segments as f64 / secs,
        segments as f64 * SEGMENT_BYTES as f64 / secs,
        latencies,
    )
}

fn main() {
    // `cargo test --all-targets` runs bench binaries without `--bench`: a one-second run of each
    // load then, so the bench cannot rot; `cargo bench` (make bench) measures.
    let quick = !std::env::args().any(|a| a == "--bench");
    let (paced_seconds, sustained_seconds) = if quick {
        (1, 1)
    } else {
        (PACED_SECONDS, SUSTAINED_SECONDS)
    };
    let dir = tempfile::tempdir().unwrap();
    // One channel: the paced load uses rendition `hd` on both inputs, the sustained load its own
    // renditions on input 1, so their timelines do not interfere.
    let mut sidecar = Sidecar::start(&write_config(dir.path(), "", ""));
    let addr = sidecar.ingest;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "edgepack-store ingest benchmark ({cores} cores, loopback, data on {})",
        dir.path().display()
    );
    let (mut s, rps, bps) = rt.block_on(paced(addr, paced_seconds));
    s.segment_ms.sort_by(f64::total_cmp);
    s.playlist_ms.sort_by(f64::total_cmp);
    println!(
        "paced: target {} req/s ({} per input x 2, 1 MB segment + playlist alternating) for {paced_seconds} s",
        RATE_PER_INPUT * 2,
        RATE_PER_INPUT
    );
    println!(
        "  achieved {rps:.0} req/s, {:.1} MB/s ingest, {} errors",
        bps / 1e6,
        s.errors
    );
    println!(
        "  1 MB segment PUT latency: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (n={})",
        percentile(&s.segment_ms, 0.5),
        percentile(&s.segment_ms, 0.99),
        s.segment_ms.last().copied().unwrap_or(f64::NAN),
        s.segment_ms.len()
    );
    println!(
        "  playlist PUT latency:     p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (n={})",
        percentile(&s.playlist_ms, 0.5),
        percentile(&s.playlist_ms, 0.99),
        s.playlist_ms.last().copied().unwrap_or(f64::NAN),
        s.playlist_ms.len()
    );
    let target = (RATE_PER_INPUT * 2) as f64;
    summary::row(
        "sidecar ingest, paced PUTs on both inputs (vs target rate)",
        &format!("{rps:.0} req/s"),
        Some(&format!("{target:.0} req/s")),
        Some(rps / target),
    );
    summary::row(
        "sidecar ingest, 1 MB segment PUT p99 under that load",
        &format!("{:.0} ms", percentile(&s.segment_ms, 0.99)),
        None,
        None,
    );
    let (segs, bytes, disk_ms) = rt.block_on(sustained(addr, sustained_seconds));
    println!(
        "sustained: {SUSTAINED_CONNECTIONS} connections, 1 MB segment + playlist per step, {sustained_seconds} s"
    );
    println!(
        "  {segs:.0} segments/s, {:.1} MB/s committed (fsynced)",
        bytes / 1e6
    );
    summary::row(
        "sidecar ingest, sustained, committed with fsync",
        &format!("{:.0} MB/s", bytes / 1e6),
        None,
        None,
    );
    sidecar.stop();

    // The same into a bucket, in this run.
    let s3 = S3Server::start(dir.path(), "bench");
    let s3_dir = dir.path().join("s3");
    std::fs::create_dir_all(&s3_dir).unwrap();
    let mut on_s3 = Sidecar::start(&write_config(&s3_dir, &s3.storage_section(), ""));
    let (s3_segs, s3_bytes, s3_ms) = rt.block_on(sustained(on_s3.ingest, sustained_seconds));
    on_s3.stop();
    let (disk_p99, s3_p99) = (percentile(&disk_ms, 0.99), percentile(&s3_ms, 0.99));
    println!(
        "sustained into an S3 bucket (moto on loopback), {SUSTAINED_CONNECTIONS} connections on input 1:"
    );
    println!(
        "  {s3_segs:.0} segments/s ({:.1} MB/s), 1 MB PUT p99 {s3_p99:.0} ms; disk: {segs:.0} segments/s, p99 {disk_p99:.0} ms",
        s3_bytes / 1e6
    );
    summary::row(
        "sidecar ingest to S3 (moto), 1 MB segment PUTs/s on one input (vs disk)",
        &format!("{s3_segs:.0}/s"),
        Some(&format!("{segs:.0}/s")),
        Some(s3_segs / segs),
    );
    summary::row(
        "sidecar ingest to S3 (moto), 1 MB segment PUT p99 (vs disk)",
        &format!("{s3_p99:.0} ms"),
        Some(&format!("{disk_p99:.0} ms")),
        Some(s3_p99 / disk_p99),
    );
}
