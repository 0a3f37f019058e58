//! The filter core's speed on whatever target it is built for. `make bench` runs it natively and
//! as wasm32-wasip1 under `node --no-liftoff` (the V8 of Envoy's official builds, with Envoy's
//! flag: every function compiled by the optimizing tier up front), and compares the two.
//!
//! Prints `aes128_cbc_1mb_mb_s X` (HLS whole-segment CBC+PKCS#7), `aes128_ctr_1mb_mb_s X'`
//! (`cenc`'s CTR) and `playlist_1h_ms Y`; given an MPEG-TS file, also
//! `remux_mb_s Z` (MPEG-TS → CMAF of the whole file as one segment).

use std::hint::black_box;
use std::time::{Duration, Instant};

use edgepack_filter::Settings;
use edgepack_filter::crypto;
use edgepack_filter::packager::{Job, JobKind, StoreAnswer, respond};
use edgepack_filter::query::TimeShift;
use edgepack_test_support::fixtures;

/// Runs `f` for at least a second (and 3 times); mean seconds per run.
fn mean_s(mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    let mut runs = 0u32;
    while start.elapsed() < Duration::from_secs(1) || runs < 3 {
        f();
        runs += 1;
    }
    start.elapsed().as_secs_f64() / f64::from(runs)
}

fn main() {
    let data = vec![0x47u8; 1_000_000];
    let aes = mean_s(|| {
        black_box(crypto::encrypt_segment(
            &[7; 16],
            &[9; 16],
            black_box(&data),
        ));
    });
    println!("aes128_cbc_1mb_mb_s {:.1}", 1.0 / aes);
    let key = edgepack_filter::aes128::Aes128::new(&[7; 16]);
    let mut buf = data.clone();
    let ctr = mean_s(|| {
        key.ctr([9; 16]).apply(black_box(&mut buf));
    });
    println!("aes128_ctr_1mb_mb_s {:.1}", 1.0 / ctr);

    let Ok(settings) = Settings::from_json(
        br#"{"store":{"cluster":"s"},"channels":{"news":{"endpoints":{
              "hls":{"format":"hls","manifest_window_seconds":60}}}}}"#,
    ) else {
        eprintln!("bad settings");
        std::process::exit(1);
    };
    let body = fixtures::store_playlist(1800);
    let none = |_: &str| None;
    let job = Job {
        channel: "news".into(),
        endpoint: "hls".into(),
        kind: JobKind::Media {
            time: TimeShift::default(),
        },
    };
    let now = fixtures::T0 + 1800 * 2000;
    let playlist = mean_s(|| {
        let answer = StoreAnswer {
            status: 200,
            header: &none,
            body: body.as_bytes(),
        };
        black_box(respond(&settings, &job, &answer, now));
    });
    println!("playlist_1h_ms {:.3}", playlist * 1e3);

    if let Some(path) = std::env::args().nth(1) {
        let ts = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("cannot read {path}: {e}");
                std::process::exit(1);
            }
        };
        if let Err(e) = edgepack_filter::cmaf::remux(&ts, 0, Some(fixtures::T0)) {
            eprintln!("{path}: {e}");
            std::process::exit(1);
        }
        let remux = mean_s(|| {
            black_box(edgepack_filter::cmaf::remux(black_box(&ts), 0, Some(fixtures::T0)).ok());
        });
        println!("remux_mb_s {:.1}", ts.len() as f64 / remux / 1e6);
        // The same, common-encrypted (both tracks), as the cenc/cbcs endpoints do per segment.
        use edgepack_filter::cmaf::cenc::{Protection, Scheme};
        for (scheme, name) in [(Scheme::Cenc, "cenc"), (Scheme::Cbcs, "cbcs")] {
            let p = Protection {
                scheme,
                key: [0x2b; 16],
                kid: [0x11; 16],
                iv_base: 1 << 40,
                constant_iv: [7; 16],
            };
            let secs = mean_s(|| {
                black_box(
                    edgepack_filter::cmaf::remux_protected(
                        black_box(&ts),
                        0,
                        Some(fixtures::T0),
                        Some(&p),
                    )
                    .ok(),
                );
            });
            println!("{name}_mb_s {:.1}", ts.len() as f64 / secs / 1e6);
        }
    }
}
