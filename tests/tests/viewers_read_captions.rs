//! User story: a channel whose video carries CEA-608 captions (as a broadcast encoder embeds
//! them: ATSC A/53 SEI in the H.264, channel 1, `Cue k` shown each second), pushed as MPEG-TS
//! or as fMP4. The endpoints map that channel (`captions`) and carry the SEI through every
//! repackaging unchanged:
//! - the hls endpoint announces it (`CLOSED-CAPTIONS` + `EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS`,
//!   `INSTREAM-ID="CC1"`), the dash endpoint in `Accessibility` (`CC1=eng`);
//! - ffmpeg's caption decoder reads every cue, in order and a second apart, from the hls
//!   endpoint, the AES-128 one (decrypting), the cmaf endpoint (repackaged into fMP4) and the dash
//!   endpoint (one track per representation) — the same cues the encoder sent;
//! - the `cbcs` cmaf endpoint's initialization segment and fragments, joined as a player appends
//!   them and decrypted by ffmpeg with the key (`-decryption_key`, the samples copied out
//!   untouched), give ffmpeg the same cues: the SEI went through the encryption clear and whole.
//!   (ffmpeg's caption reader takes no key of its own; shaka-player reads the `cenc` DASH
//!   endpoint's captions in `browser_shows_captions`.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

use std::process::Command;
use std::time::Duration;

use edgepack_test_support::player::piped_ffmpeg;
use edgepack_test_support::sidecar;
use sidecar::get;

const CONFIG: &str = r#"{ "store": { "cluster": "edgepack_store" },
  "channels": { "news": { "endpoints": {
    "hls": { "format": "hls", "manifest_window_seconds": 30,
      "captions": [ { "channel": 1, "language": "eng", "name": "English CC" } ] },
    "hls-aes": { "format": "hls", "manifest_window_seconds": 30,
      "captions": [ { "channel": 1, "language": "eng" } ],
      "encryption": { "method": "aes-128", "key": { "derived": { "secret": "0123456789abcdef0123" } },
                      "key_token": { "secret": "tok-0123456789abcdef" } } },
    "cmaf": { "format": "cmaf", "manifest_window_seconds": 30,
      "captions": [ { "channel": 1, "language": "eng" } ] },
    "dash": { "format": "dash", "manifest_window_seconds": 30,
      "captions": [ { "channel": 1, "language": "eng" } ] },
    "cmaf-cbcs": { "format": "cmaf", "manifest_window_seconds": 30,
      "captions": [ { "channel": 1, "language": "eng" } ],
      "encryption": { "method": "cbcs", "key_rotation_interval_seconds": 0,
                      "key": { "static": { "key_hex": "2b7e151628aed2a6abf7158809cf4f3c" } },
                      "key_token": { "secret": "tok-0123456789abcdef" } } } } } } }"#;

/// The `cmaf-cbcs` endpoint's key.
const KEY: &str = "2b7e151628aed2a6abf7158809cf4f3c";

/// `(start seconds, text)` of each caption ffmpeg's CEA-608 decoder reads from `url`.
fn captions_read_by_ffmpeg(url: &str) -> Vec<(f64, String)> {
    let out = Command::new("timeout")
        .args([
            "-s",
            "KILL",
            "60",
            "ffmpeg",
            "-hide_banner",
            "-loglevel",
            "error",
        ])
        // The URL as a filter option (its colons escaped), quoted for the filtergraph.
        .args([
            "-f",
            "lavfi",
            "-i",
            &format!("movie='{}'[out+subcc]", url.replace(':', "\\:")),
        ])
        .args(["-map", "0:1", "-f", "srt", "-"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let srt = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = srt.lines().collect();
    let seconds = |t: &str| -> f64 {
        let (hms, ms) = t.split_once(',').unwrap();
        let p: Vec<f64> = hms.split(':').map(|x| x.parse().unwrap()).collect();
        p[0] * 3600.0 + p[1] * 60.0 + p[2] + ms.parse::<f64>().unwrap() / 1000.0
    };
    lines
        .windows(2)
        .filter(|w| w[0].contains(" --> "))
        .map(|w| {
            let text = w[1]
                .rsplit('}')
                .next()
                .unwrap()
                .trim_end_matches("</font>")
                .to_owned();
            (seconds(w[0].split(" --> ").next().unwrap()), text)
        })
        .collect()
}

/// The `cbcs` cmaf endpoint's variant over `range`: its initialization segment and
/// fragments joined as a player appends them, decrypted by ffmpeg with [`KEY`] and its video
/// samples copied out into `dir/clear.mp4`, whose path is returned.
fn decrypted_cbcs_video(
    h: &edgepack_host::RunningHost,
    range: &str,
    dir: &std::path::Path,
) -> String {
    let (text, joined) =
        edgepack_tests::joined_fragments(h.addr, "/out/v1/news/cmaf-cbcs/stream_video", range);
    assert!(text.contains("#EXT-X-KEY:METHOD=SAMPLE-AES,"), "{text}");
    let clear = dir.join("clear.mp4").display().to_string();
    let out = piped_ffmpeg(
        &joined,
        &[
            "-decryption_key",
            KEY,
            "-i",
            "pipe:0",
            "-map",
            "0:v",
            "-c",
            "copy",
            "-y",
            &clear,
        ],
    )
    .unwrap();
    assert!(out.status.success(), "ffmpeg decrypts the fragments");
    clear
}

#[test]
fn every_format_carries_the_encoders_captions() {
    ffmpeg_reads_the_captions(false);
}

#[test]
fn every_format_carries_the_captions_of_fmp4_ingest() {
    ffmpeg_reads_the_captions(true);
}

fn ffmpeg_reads_the_captions(fmp4: bool) {
    let dir = tempfile::tempdir().unwrap();
    let mut sc = sidecar::Sidecar::start(&sidecar::write_config(dir.path(), "", ""));
    sidecar::Encoder::start_captions_as(sc.ingest, 10, fmp4).wait(Duration::from_secs(60));
    let ingest = if fmp4 { "fMP4" } else { "MPEG-TS" };
    let h = edgepack_tests::edge(sc.internal, CONFIG.as_bytes(), 1);
    let range = sidecar::whole_history_range(&sc.status());

    let r = get(h.addr, &format!("/out/v1/news/hls/index.m3u8?{range}"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.text()
            .contains("TYPE=CLOSED-CAPTIONS,GROUP-ID=\"cc\",LANGUAGE=\"eng\",NAME=\"English CC\""),
        "{}",
        r.text()
    );
    let r = get(h.addr, &format!("/out/v1/news/dash/index.mpd?{range}"));
    assert!(
        r.text()
            .contains("urn:scte:dash:cc:cea-608:2015\" value=\"CC1=eng\""),
        "{}",
        r.text()
    );

    let url = |endpoint: &str, manifest: &str| {
        format!(
            "http://{}/out/v1/news/{endpoint}/{manifest}?{range}",
            h.addr
        )
    };
    let source = captions_read_by_ffmpeg(&url("hls", "index.m3u8"));
    eprintln!("{ingest} ingest, hls: {source:?}");
    assert!(source.len() >= 8, "{ingest}: {source:?}");
    for pair in source.windows(2) {
        let ((s0, t0), (s1, t1)) = (&pair[0], &pair[1]);
        let k0: u32 = t0.strip_prefix("Cue ").unwrap().parse().unwrap();
        let k1: u32 = t1.strip_prefix("Cue ").unwrap().parse().unwrap();
        assert_eq!(k1, k0 + 1, "{ingest}: {source:?}");
        assert!((s1 - s0 - 1.0).abs() < 0.05, "{ingest}: {source:?}");
    }
    let decrypted = decrypted_cbcs_video(&h, &range, dir.path());
    for (endpoint, input) in [
        ("hls-aes", url("hls-aes", "index.m3u8")),
        ("cmaf", url("cmaf", "index.m3u8")),
        ("dash", url("dash", "index.mpd")),
        ("cmaf-cbcs", decrypted),
    ] {
        let read = captions_read_by_ffmpeg(&input);
        eprintln!("{ingest} ingest, {endpoint}: {read:?}");
        let texts = |c: &[(f64, String)]| c.iter().map(|(_, t)| t.clone()).collect::<Vec<_>>();
        assert_eq!(texts(&read), texts(&source), "{ingest} {endpoint}");
        let offset = read[0].0 - source[0].0;
        for ((a, _), (b, _)) in read.iter().zip(&source) {
            assert!(
                (a - b - offset).abs() < 0.05,
                "{ingest} {endpoint}: {read:?}"
            );
        }
    }
    assert_eq!(h.traps(), 0);
    sc.stop();
}
