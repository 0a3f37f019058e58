//! Filter core benchmarks (criterion, native): media playlist rewrite over 1 min / 1 h / 24 h of
//! 2 s segments, the multivariant with 10 variants + a filter, and AES-128-CBC over 1 MB and 5 MB
//! segments compared in the same run with `openssl speed -evp aes-128-cbc` (this machine's
//! hardware limit). Subtitles: a WebVTT segment converted to WebVTT in fMP4 (`wvtt`, cmaf and
//! dash) and to a Smooth Streaming TTML document, against the hls endpoint's passthrough (its
//! `X-TIMESTAMP-MAP` written out). `make bench` runs it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // benchmark harness

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use edgepack_filter::packager::{Job, JobKind, StoreAnswer, respond};
use edgepack_filter::query::{ManifestFilter, TimeShift};
use edgepack_filter::{Settings, crypto};
use edgepack_test_support::{fixtures, summary};
use fixtures::{T0, store_playlist, store_playlist_with_breaks};

fn settings() -> Settings {
    Settings::from_json(
        br#"{"store":{"cluster":"s"},"channels":{"news":{"endpoints":{
          "hls":{"format":"hls","manifest_window_seconds":60,"program_date_time_interval_seconds":10},
          "hour":{"format":"hls","manifest_window_seconds":3600,"ad_markers":"scte35_enhanced"},
          "secure":{"format":"hls","manifest_window_seconds":60,
            "encryption":{"method":"aes-128","key_rotation_interval_seconds":60,
              "key":{"derived":{"secret":"0123456789abcdef0123"}},"key_token":{"secret":"tok-0123456789abcdef"}}}}}}}"#,
    )
    .unwrap()
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
    // The ad-marker row below measures markers being written: check that they are.
    let breaks = store_playlist_with_breaks(1_800, 30);
    let hour = job(
        "hour",
        JobKind::Media {
            time: TimeShift::default(),
        },
    );
    let answer = StoreAnswer {
        status: 200,
        header: &none,
        body: breaks.as_bytes(),
    };
    let text = String::from_utf8(respond(&settings, &hour, &answer, T0 + 3_600_000).body)
        .unwrap_or_default();
    assert!(
        text.matches("#EXT-X-CUE-OUT:").count() >= 59
            && text.contains("#EXT-X-CUE-OUT-CONT:ElapsedTime=")
            && text.contains("#EXT-OATCLS-SCTE35") == text.contains("SCTE35="),
        "scte35_enhanced markers in the 1 h window:\n{}",
        &text[..text.len().min(2000)]
    );
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
    // `cenc`'s CTR (in place).
    let mut g = c.benchmark_group("aes128_ctr_encrypt");
    let cipher = edgepack_filter::aes128::Aes128::new(&key);
    let mut data = vec![0x47u8; 1_000_000];
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function("1MB", |b| {
        b.iter(|| cipher.ctr(iv).apply(black_box(&mut data)))
    });
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

/// A 6 s WebVTT segment as ffmpeg writes it: six cues, one with an id and settings.
fn webvtt_segment() -> Vec<u8> {
    let mut s =
        String::from("WEBVTT\n\nintro\n00:00:10.122 --> 00:00:10.922 line:0 align:start\nCue 10\n");
    for k in 11..16 {
        s.push_str(&format!(
            "\n00:00:{k}.122 --> 00:00:{k}.922\nCue {k}, a line of subtitle text\nand a second line\n"
        ));
    }
    s.into_bytes()
}

/// The video's first frame: MPEG-2 time 10.02 s, shown at the segment's start.
const VIDEO: edgepack_filter::cmaf::wvtt::VideoAnchor = edgepack_filter::cmaf::wvtt::VideoAnchor {
    at_90k: T0 as i128 * 90,
    pts33: 901_800,
};

/// WebVTT → `wvtt` fragment (parse, place, cut into samples, write the boxes).
fn to_wvtt(vtt: &[u8]) -> Vec<u8> {
    use edgepack_filter::cmaf::{mp4, wvtt};
    let segment = wvtt::parse(vtt).unwrap();
    mp4::media_segment(1, &[segment.run(T0 as u64 * 90, 540_000, VIDEO)])
}

/// WebVTT → TTML document (the Smooth Streaming text fragment's payload).
fn to_ttml(vtt: &[u8]) -> String {
    use edgepack_filter::cmaf::{ttml, wvtt};
    let segment = wvtt::parse(vtt).unwrap();
    ttml::document(&segment, T0 as u64 * 90, 540_000, VIDEO, Some("eng"))
}

fn subtitles(c: &mut Criterion) {
    let vtt = webvtt_segment();
    let mut g = c.benchmark_group("webvtt_segment");
    g.throughput(Throughput::Elements(1));
    g.bench_function("to_wvtt", |b| b.iter(|| to_wvtt(black_box(&vtt))));
    g.bench_function("to_ttml", |b| b.iter(|| to_ttml(black_box(&vtt))));
    g.bench_function("hls_passthrough", |b| {
        b.iter(|| edgepack_filter::webvtt::with_timestamp_map(black_box(&vtt)))
    });
    g.finish();
}

/// Segments per second through `f`, timed directly for the summary.
fn per_second<T>(f: impl Fn() -> T) -> f64 {
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_secs(1) {
        black_box(f());
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

criterion_group!(benches, playlists, aes, subtitles);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    // `cargo test --all-targets` runs this without `--bench`: criterion then runs each benchmark
    // once as a test; skip the timed comparison.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let ours = our_aes_mb_s();
    let ssl = openssl_mb_s();
    summary::row(
        "AES-128-CBC, 5 MB segment, native (vs openssl speed -evp)",
        &format!("{ours:.0} MB/s"),
        ssl.map(|s| format!("{s:.0} MB/s")).as_deref(),
        ssl.map(|s| ours / s),
    );
    let (day, hour) = (rewrite_ms(43_200), rewrite_ms(1_800));
    summary::row(
        "media playlist, 24 h history -> 60 s window, native (vs 1 h)",
        &format!("{day:.1} ms"),
        Some(&format!("{hour:.2} ms")),
        Some(day / hour),
    );
    // A 1 h window with a 30 s ad break every minute, SCTE-35 enhanced markers (elapsed time on
    // every segment in a break), against the same window without cues.
    let plain = live_ms("hour", &store_playlist(1_800));
    let breaks = live_ms("hour", &store_playlist_with_breaks(1_800, 30));
    summary::row(
        "media playlist, 1 h window, a break every minute, scte35_enhanced (vs no cues)",
        &format!("{breaks:.2} ms"),
        Some(&format!("{plain:.2} ms")),
        Some(breaks / plain),
    );
    let vtt = webvtt_segment();
    let passthrough = per_second(|| edgepack_filter::webvtt::with_timestamp_map(&vtt));
    for (name, rate) in [
        ("wvtt fragment", per_second(|| to_wvtt(&vtt))),
        ("TTML document", per_second(|| to_ttml(&vtt))),
    ] {
        summary::row(
            &format!("WebVTT segment (6 s, 6 cues) -> {name}, native (vs hls passthrough)"),
            &format!("{:.0} segments/s", rate),
            Some(&format!("{passthrough:.0} segments/s")),
            Some(rate / passthrough),
        );
    }
    speed_in_v8();
}

/// Runs the `speed` example natively and as wasm32-wasip1 under `node --no-liftoff`, the V8
/// configuration of Envoy's official builds, and reports the two side by side.
fn speed_in_v8() {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let build = |extra: &[&str]| {
        std::process::Command::new(&cargo)
            .current_dir(&root)
            .args([
                "build",
                "--release",
                "-p",
                "edgepack-filter",
                "--example",
                "speed",
            ])
            .args(extra)
            .status()
            .is_ok_and(|s| s.success())
    };
    if !build(&[]) || !build(&["--target", "wasm32-wasip1"]) {
        eprintln!("cannot build the speed example; skipping the V8 comparison");
        return;
    }
    // 20 s of 720p H.264 (with B-frames) + AAC as one MPEG-TS file: the remux input.
    let dir = std::env::temp_dir().join(format!("edgepack-bench-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let ts = dir.join("input.ts");
    let made = fixtures::encode_ts(&ts, 20);
    let ts_arg = ts.to_string_lossy().into_owned();
    let dir_arg = dir.to_string_lossy().into_owned();
    let run = |cmd: &str, args: &[&str]| -> Option<Figures> {
        let out = std::process::Command::new(cmd)
            .current_dir(&root)
            .args(args)
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let value = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().parse::<f64>().ok())
        };
        Some((
            value("aes128_cbc_1mb_mb_s")?,
            value("playlist_1h_ms")?,
            value("remux_mb_s"),
            value("cenc_mb_s"),
            value("cbcs_mb_s"),
            value("aes128_ctr_1mb_mb_s"),
        ))
    };
    let input: &[&str] = if made { &[&ts_arg] } else { &[] };
    let native = run("target/release/examples/speed", input);
    let mut node_args = vec![
        "--no-liftoff",
        "--no-warnings",
        "filter/benches/wasi_run.mjs",
    ];
    if made {
        node_args.extend(["--dir", &dir_arg]);
    }
    node_args.push("target/wasm32-wasip1/release/examples/speed.wasm");
    node_args.extend(input);
    let v8 = run("node", &node_args);
    let (
        Some((n_aes, n_pl, n_remux, n_cenc, n_cbcs, n_ctr)),
        Some((v_aes, v_pl, v_remux, v_cenc, v_cbcs, v_ctr)),
    ) = (native, v8)
    else {
        eprintln!("node (with WASI) is needed for the V8 comparison; skipped");
        return;
    };
    summary::row(
        "AES-128 1 MB, core in V8 (node --no-liftoff, as Envoy) vs native",
        &format!("{v_aes:.0} MB/s"),
        Some(&format!("{n_aes:.0} MB/s")),
        Some(v_aes / n_aes),
    );
    if let (Some(n), Some(v)) = (n_ctr, v_ctr) {
        summary::row(
            "AES-128-CTR 1 MB, core in V8 (node --no-liftoff, as Envoy) vs native",
            &format!("{v:.0} MB/s"),
            Some(&format!("{n:.0} MB/s")),
            Some(v / n),
        );
    }
    summary::row(
        "media playlist 1 h, core in V8 (node --no-liftoff) vs native",
        &format!("{v_pl:.2} ms"),
        Some(&format!("{n_pl:.2} ms")),
        Some(v_pl / n_pl),
    );
    if let (Some(n), Some(v)) = (n_remux, v_remux) {
        let shaka = shaka_mb_s(&root, &ts, &dir, None);
        summary::row(
            "TS->CMAF remux, 20 s 720p, native (vs shaka-packager, same input)",
            &format!("{n:.0} MB/s"),
            shaka.map(|s| format!("{s:.0} MB/s")).as_deref(),
            shaka.map(|s| n / s),
        );
        summary::row(
            "TS->CMAF remux, core in V8 (node --no-liftoff) vs native",
            &format!("{v:.0} MB/s"),
            Some(&format!("{n:.0} MB/s")),
            Some(v / n),
        );
    }
    for (scheme, n, v) in [("cenc", n_cenc, v_cenc), ("cbcs", n_cbcs, v_cbcs)] {
        let (Some(n), Some(v)) = (n, v) else { continue };
        let shaka = shaka_mb_s(&root, &ts, &dir, Some(scheme));
        summary::row(
            &format!("TS->CMAF + {scheme}, 20 s 720p, native (vs shaka-packager {scheme})"),
            &format!("{n:.0} MB/s"),
            shaka.map(|s| format!("{s:.0} MB/s")).as_deref(),
            shaka.map(|s| n / s),
        );
        summary::row(
            &format!("TS->CMAF + {scheme}, core in V8 (node --no-liftoff) vs native"),
            &format!("{v:.0} MB/s"),
            Some(&format!("{n:.0} MB/s")),
            Some(v / n),
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// What the speed example prints: AES-128-CBC MB/s, playlist ms, remux / cenc / cbcs MB/s,
/// AES-128-CTR MB/s.
type Figures = (f64, f64, Option<f64>, Option<f64>, Option<f64>, Option<f64>);

/// shaka-packager (npm, the reference packager) turning the same MPEG-TS into CMAF (video and
/// audio tracks, 2 s segments; encrypted with a raw key under `scheme` when given, no clear
/// lead), best of 3 runs, process start included.
fn shaka_mb_s(
    root: &std::path::Path,
    ts: &std::path::Path,
    dir: &std::path::Path,
    scheme: Option<&str>,
) -> Option<f64> {
    let packager = root.join("tests/browser/node_modules/shaka-packager/bin/packager-linux-x64");
    let size = std::fs::metadata(ts).ok()?.len() as f64;
    let input = ts.to_string_lossy();
    let out = dir.join("shaka");
    let _ = std::fs::create_dir_all(&out);
    let o = out.to_string_lossy();
    let mut best = f64::MAX;
    for _ in 0..3 {
        let start = Instant::now();
        let mut cmd = std::process::Command::new(&packager);
        cmd.arg(format!("in={input},stream=video,init_segment={o}/v-init.mp4,segment_template={o}/v-$Number$.m4s"))
            .arg(format!("in={input},stream=audio,init_segment={o}/a-init.mp4,segment_template={o}/a-$Number$.m4s"))
            .args(["--segment_duration", "2", "--quiet"]);
        if let Some(scheme) = scheme {
            cmd.args(["--enable_raw_key_encryption", "--protection_scheme", scheme])
                .args(["--clear_lead", "0", "--keys"])
                .arg("label=:key_id=11111111111111111111111111111111:key=2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b");
        }
        let ok = cmd.status().is_ok_and(|s| s.success());
        if !ok {
            eprintln!("shaka-packager unavailable (npm ci in tests/browser); no baseline");
            return None;
        }
        best = best.min(start.elapsed().as_secs_f64());
    }
    Some(size / best / 1e6)
}

/// Mean time to answer a live media playlist from a store history of `n` 2 s segments.
fn rewrite_ms(n: u64) -> f64 {
    live_ms("hls", &store_playlist(n))
}

/// Mean time for `endpoint` to answer a live media playlist from the store view `body`.
fn live_ms(endpoint: &str, body: &str) -> f64 {
    let settings = settings();
    let none = |_: &str| None;
    let live = job(
        endpoint,
        JobKind::Media {
            time: TimeShift::default(),
        },
    );
    let n = body.matches("#EXTINF").count() as i64;
    let now = T0 + n * 2000;
    let start = Instant::now();
    let mut runs = 0u32;
    while start.elapsed() < Duration::from_secs(2) || runs < 3 {
        let answer = StoreAnswer {
            status: 200,
            header: &none,
            body: body.as_bytes(),
        };
        black_box(respond(&settings, &live, &answer, now));
        runs += 1;
    }
    start.elapsed().as_secs_f64() * 1e3 / f64::from(runs)
}
