//! Filter core benchmarks (criterion, native): media playlist rewrite over 1 min / 1 h / 24 h of
//! 2 s segments, the multivariant with 10 variants + a filter, and AES-128-CBC over 1 MB and 5 MB
//! segments compared in the same run with `openssl speed -evp aes-128-cbc` (this machine's
//! hardware limit). `make bench` runs it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // benchmark harness

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use edgepack_filter::packager::{Job, JobKind, StoreAnswer, respond};
use edgepack_filter::query::{ManifestFilter, TimeShift};
use edgepack_filter::{Settings, crypto};

const T0: i64 = 1_795_600_000_000;

fn settings() -> Settings {
    Settings::from_json(
        br#"{"store":{"cluster":"s"},"channels":{"news":{"endpoints":{
          "hls":{"format":"hls","manifest_window_seconds":60,"program_date_time_interval_seconds":10},
          "secure":{"format":"hls","manifest_window_seconds":60,
            "encryption":{"method":"aes-128","key_rotation_interval_seconds":60,
              "key":{"derived":{"secret":"0123456789abcdef0123"}},"key_token":{"secret":"tok-0123456789abcdef"}}}}}}}"#,
    )
    .unwrap()
}

/// A store media playlist of `n` 2 s segments, as the sidecar writes it.
fn store_playlist(n: u64) -> String {
    let mut s = String::from(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:1000\n#EXT-X-DISCONTINUITY-SEQUENCE:0\n",
    );
    for i in 0..n {
        let t = chrono::DateTime::from_timestamp_millis(T0 + i as i64 * 2000).unwrap();
        s.push_str(&format!(
            "#EXT-X-PROGRAM-DATE-TIME:{}\n#EXTINF:2.000000,\n{}.ts\n",
            t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            1000 + i
        ));
    }
    s
}

fn multivariant_10() -> String {
    let mut s = String::from("#EXTM3U\n#EXT-X-VERSION:4\n");
    for lang in ["en", "fr", "de"] {
        s.push_str(&format!(
            "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aac\",LANGUAGE=\"{lang}\",NAME=\"{lang}\",CHANNELS=\"2\",URI=\"a_{lang}/index.m3u8\"\n"
        ));
    }
    for i in 0..10u64 {
        let h = 180 + i * 90;
        s.push_str(&format!(
            "#EXT-X-STREAM-INF:BANDWIDTH={},CODECS=\"avc1.64001f,mp4a.40.2\",RESOLUTION={}x{h},FRAME-RATE=25.000,AUDIO=\"aac\"\nv{i}/index.m3u8\n",
            300_000 + i * 500_000,
            h * 16 / 9
        ));
    }
    s
}

fn job(endpoint: &str, kind: JobKind) -> Job {
    Job {
        channel: "news".into(),
        endpoint: endpoint.into(),
        kind,
    }
}

fn playlists(c: &mut Criterion) {
    let settings = settings();
    let none = |_: &str| None;
    let mut g = c.benchmark_group("media_playlist_rewrite");
    for (label, n) in [("1min", 30u64), ("1h", 1800), ("24h", 43_200)] {
        let body = store_playlist(n);
        let now = T0 + n as i64 * 2000;
        g.throughput(Throughput::Elements(n));
        let live = job(
            "hls",
            JobKind::Media {
                time: TimeShift::default(),
            },
        );
        g.bench_with_input(
            BenchmarkId::new("live_60s_window", label),
            &body,
            |b, body| {
                b.iter(|| {
                    respond(
                        &settings,
                        &live,
                        &StoreAnswer {
                            status: 200,
                            header: &none,
                            body: body.as_bytes(),
                        },
                        now,
                    )
                })
            },
        );
        let all = job(
            "secure",
            JobKind::Media {
                time: TimeShift {
                    start_ms: Some(T0),
                    end_ms: Some(now),
                    ..Default::default()
                },
            },
        );
        g.bench_with_input(
            BenchmarkId::new("encrypted_timeshift_all", label),
            &body,
            |b, body| {
                b.iter(|| {
                    respond(
                        &settings,
                        &all,
                        &StoreAnswer {
                            status: 200,
                            header: &none,
                            body: body.as_bytes(),
                        },
                        now,
                    )
                })
            },
        );
    }
    g.finish();
    let mv = multivariant_10();
    let filter =
        ManifestFilter::parse("video_height:0-720;audio_language:en,fr;video_codec:h264").unwrap();
    let j = job(
        "hls",
        JobKind::Multivariant {
            filter: Some(filter),
            carry: vec!["start=1795600000".into()],
        },
    );
    c.bench_function("multivariant_10_variants_filtered", |b| {
        b.iter(|| {
            respond(
                &settings,
                &j,
                &StoreAnswer {
                    status: 200,
                    header: &none,
                    body: mv.as_bytes(),
                },
                T0,
            )
        })
    });
}

fn aes(c: &mut Criterion) {
    let key = [7u8; 16];
    let iv = [9u8; 16];
    let mut g = c.benchmark_group("aes128_cbc_encrypt");
    for (label, size) in [("1MB", 1_000_000usize), ("5MB", 5_000_000)] {
        let data = vec![0x47u8; size];
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::from_parameter(label), &data, |b, d| {
            b.iter(|| crypto::encrypt_segment(black_box(&key), &iv, d))
        });
    }
    g.finish();
}

/// Our AES-128-CBC MB/s over a 5 MB segment, timed directly for the summary.
fn our_aes_mb_s() -> f64 {
    let data = vec![0x47u8; 5_000_000];
    let start = Instant::now();
    let mut n = 0;
    while start.elapsed() < Duration::from_secs(2) {
        black_box(crypto::encrypt_segment(&[7; 16], &[9; 16], &data));
        n += 1;
    }
    n as f64 * data.len() as f64 / start.elapsed().as_secs_f64() / 1e6
}

/// `openssl speed -evp aes-128-cbc` at 1 MiB blocks (AES-NI when the CPU has it), in MB/s.
fn openssl_mb_s() -> Option<f64> {
    let out = std::process::Command::new("openssl")
        .args([
            "speed",
            "-evp",
            "aes-128-cbc",
            "-bytes",
            "1048576",
            "-seconds",
            "2",
        ])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    // Last line: "AES-128-CBC  1234567.89k" (1000s of bytes per second).
    let last = text
        .lines()
        .rev()
        .find(|l| l.to_ascii_lowercase().starts_with("aes-128-cbc"))?;
    let k: f64 = last
        .split_whitespace()
        .last()?
        .trim_end_matches('k')
        .parse()
        .ok()?;
    Some(k * 1000.0 / 1e6)
}

criterion_group!(benches, playlists, aes);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    // `cargo test --all-targets` runs this without `--bench`: criterion then runs each benchmark
    // once as a test; skip the timed comparison.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let ours = our_aes_mb_s();
    match openssl_mb_s() {
        Some(ssl) => println!(
            "aes128-cbc 5 MB segment: edgepack {ours:.0} MB/s, openssl speed -evp {ssl:.0} MB/s, ratio {:.2}",
            ours / ssl
        ),
        None => {
            println!("aes128-cbc 5 MB segment: edgepack {ours:.0} MB/s (openssl speed unavailable)")
        }
    }
}
