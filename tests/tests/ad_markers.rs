//! Ad breaks end to end (#14 §1): an encoder pushes live HLS (segments made by Debian's ffmpeg)
//! whose playlists mark a 6 s break with SCTE-35 cues made by a SCTE-35 library from PyPI
//! (`scte35`, in `.venv`): rendition `stream_0` the way Elemental and Wowza write it
//! (`EXT-X-CUE-OUT` + `EXT-OATCLS-SCTE35`, `EXT-X-CUE-OUT-CONT`, `EXT-X-CUE-IN`), `stream_1` as
//! `EXT-X-DATERANGE` with `SCTE35-OUT`/`SCTE35-IN`. The encoder's sliding window (3 segments)
//! drops the cues long before the end, and the store is restarted: the real `.wasm` in the test
//! host still writes each endpoint's markers (`none`, `passthrough`, `scte35_enhanced`,
//! `daterange`) at the right segments, with the library's bytes, also for a time-shifted window
//! that starts inside the break; ffmpeg plays the marked playlists to the last frame.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

use std::path::Path;
use std::process::Command;

use edgepack_host::DirectResponse;
use edgepack_store_api::format_pdt;
use edgepack_test_support::player::decoded_frames;
use edgepack_test_support::sidecar::{self, PASSWORD_1, Sidecar, basic, put, write_config};
use edgepack_tests::browser;

const CONFIG: &str = r#"{ "store": { "cluster": "edgepack_store" },
  "channels": { "news": { "endpoints": {
    "pass": { "format": "hls" },
    "none": { "format": "hls", "ad_markers": "none" },
    "enh": { "format": "hls", "ad_markers": "scte35_enhanced" },
    "dr": { "format": "hls", "ad_markers": "daterange" },
    "dash": { "format": "dash" },
    "periods": { "format": "dash", "period_triggers": ["ads"] } } } } }"#;

const SEGMENTS: usize = 10;
/// The break: out at segment 3, back in at segment 6 (6 s).
const OUT_AT: usize = 3;
const IN_AT: usize = 6;

/// Cues from the PyPI `scte35` library: a splice_insert out of network with a 6 s break
/// (event 7), and its return — base64 each.
fn library_cues() -> (String, String) {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: `make lint-envoy` (part of `make test`) installs tests/requirements.txt there",
        python.display()
    );
    let script = r#"
from scte35 import Cue, SpliceInsert
def insert(out, duration=None):
    si = SpliceInsert()
    si.splice_event_id = 7
    si.splice_event_cancel_indicator = False
    si.out_of_network_indicator = out
    si.program_splice_flag = True
    si.splice_immediate_flag = True
    si.time_specified_flag = False
    si.event_id_compliance_flag = True
    si.duration_flag = duration is not None
    if duration is not None:
        si.break_auto_return = True
        si.break_duration = duration
    si.unique_program_id = 1
    si.avail_num = 0
    si.avails_expected = 0
    c = Cue()
    c.command = si
    c.encode()
    return c.base64()
print(insert(True, 6.0))
print(insert(False))
"#;
    let out = Command::new(python).args(["-c", script]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines().map(str::to_owned);
    (lines.next().unwrap(), lines.next().unwrap())
}

/// The page that reports players' ad events, and the players it loads.
fn player_routes() -> Vec<DirectResponse> {
    browser::page_with_players(("/ad_events.html", "ad_events.html")).unwrap()
}

/// `s` as a query parameter value.
fn url_encoded(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A minute ago, to the second, in epoch ms: every segment pushed from then is in the past.
fn a_minute_ago_ms() -> i64 {
    (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        - 60)
        * 1000
}

/// The encoder uploads segment `i` of `rendition` (`{rendition}_{i}.ts`), then its playlist.
fn upload(sc: &Sidecar, auth: &str, rendition: &str, i: usize, segment: &[u8], playlist: &str) {
    let seg = put(
        sc.ingest,
        &format!("/in/v1/news/1/{rendition}_{i}.ts"),
        Some(auth),
        segment,
    );
    assert_eq!(seg.status / 100, 2, "{}", seg.text());
    let p = put(
        sc.ingest,
        &format!("/in/v1/news/1/{rendition}.m3u8"),
        Some(auth),
        playlist.as_bytes(),
    );
    assert_eq!(p.status / 100, 2, "{}", p.text());
}

fn hex(b64: &str) -> String {
    let bytes = edgepack_store_api::scte35::decode_text(b64).unwrap();
    edgepack_store_api::scte35::to_hex(&bytes)
}

/// ffmpeg's 2 s segments of a test pattern.
fn encode(dir: &Path) -> Vec<Vec<u8>> {
    let mut args = edgepack_test_support::sidecar::test_pattern_inputs(false);
    args.extend(
        [
            "-t",
            "20",
            "-c:v",
            "libx264",
            "-g",
            "50",
            "-keyint_min",
            "50",
            "-sc_threshold",
            "0",
            "-c:a",
            "aac",
            "-f",
            "hls",
            "-hls_time",
            "2",
            "-hls_list_size",
            "0",
            "-hls_segment_filename",
        ]
        .map(String::from),
    );
    args.push(dir.join("s_%d.ts").display().to_string());
    args.push(dir.join("s.m3u8").display().to_string());
    let st = Command::new("ffmpeg").args(&args).status().unwrap();
    assert!(st.success());
    (0..SEGMENTS)
        .map(|i| std::fs::read(dir.join(format!("s_{i}.ts"))).unwrap())
        .collect()
}

/// The encoder's playlist after segment `last`: a window of 3, each segment dated, the cues in
/// the form of rendition `r`.
fn encoder_playlist(r: usize, last: usize, t0: i64, out: &str, back: &str) -> String {
    let first = last.saturating_sub(2);
    let mut s = format!(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:{first}\n"
    );
    for i in first..=last {
        let date = format_pdt(t0 + i as i64 * 2000);
        s.push_str(&format!("#EXT-X-PROGRAM-DATE-TIME:{date}\n"));
        let start = format_pdt(t0 + OUT_AT as i64 * 2000);
        match (r, i) {
            (0, OUT_AT) => s.push_str(&format!("#EXT-OATCLS-SCTE35:{out}\n#EXT-X-CUE-OUT:6.000\n")),
            (0, i) if i > OUT_AT && i < IN_AT => s.push_str(&format!(
                "#EXT-X-CUE-OUT-CONT:ElapsedTime={}.000,Duration=6.000,SCTE35={out}\n",
                (i - OUT_AT) * 2
            )),
            (0, IN_AT) => s.push_str("#EXT-X-CUE-IN\n"),
            (1, OUT_AT) => s.push_str(&format!(
                "#EXT-X-DATERANGE:ID=\"break-7\",START-DATE=\"{start}\",PLANNED-DURATION=6.000,SCTE35-OUT={}\n",
                hex(out)
            )),
            (1, IN_AT) => s.push_str(&format!(
                "#EXT-X-DATERANGE:ID=\"break-7\",START-DATE=\"{start}\",END-DATE=\"{date}\",SCTE35-IN={}\n",
                hex(back)
            )),
            _ => {}
        }
        s.push_str(&format!("#EXTINF:2.000,\nstream_{r}_{i}.ts\n"));
    }
    s
}

/// The lines between segment `uri`'s predecessor (or the header) and its EXTINF, without dates
/// and keys.
fn before(playlist: &str, uri: &str) -> Vec<String> {
    const NOT_MARKERS: [&str; 8] = [
        "#EXTM3U",
        "#EXT-X-VERSION",
        "#EXT-X-TARGETDURATION",
        "#EXT-X-MEDIA-SEQUENCE",
        "#EXT-X-DISCONTINUITY-SEQUENCE",
        "#EXT-X-PLAYLIST-TYPE",
        "#EXT-X-PROGRAM-DATE-TIME",
        "#EXT-X-KEY",
    ];
    let lines: Vec<&str> = playlist.lines().collect();
    let at = lines
        .iter()
        .position(|l| *l == uri)
        .unwrap_or_else(|| panic!("{uri} in {playlist}"));
    let start = lines[..at - 1]
        .iter()
        .rposition(|l| !l.starts_with('#'))
        .map_or(0, |p| p + 1);
    lines[start..at - 1]
        .iter()
        .filter(|l| !NOT_MARKERS.iter().any(|h| l.starts_with(h)))
        .map(|l| l.to_string())
        .collect()
}

#[test]
fn cues_from_a_scte35_library_become_each_endpoints_markers() {
    let dir = tempfile::tempdir().unwrap();
    let media = dir.path().join("media");
    std::fs::create_dir_all(&media).unwrap();
    let segments = encode(&media);
    let (out, back) = library_cues();
    let config = write_config(dir.path(), "", "startover_window_seconds = 3600");
    let mut sc = Sidecar::start(&config);
    let auth = basic("enc1", PASSWORD_1);
    let t0 = a_minute_ago_ms();
    for (i, segment) in segments.iter().enumerate() {
        for r in 0..2 {
            let pl = encoder_playlist(r, i, t0, &out, &back);
            upload(&sc, &auth, &format!("stream_{r}"), i, segment, &pl);
        }
    }
    // The multivariant playlist (DASH needs its CODECS).
    let master = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=600000,CODECS=\"avc1.64000d,mp4a.40.2\",RESOLUTION=320x240\nstream_0.m3u8\n\
#EXT-X-STREAM-INF:BANDWIDTH=500000,CODECS=\"avc1.64000d,mp4a.40.2\",RESOLUTION=320x240\nstream_1.m3u8\n";
    let m = put(
        sc.ingest,
        "/in/v1/news/1/master.m3u8",
        Some(&auth),
        master.as_bytes(),
    );
    assert_eq!(m.status / 100, 2, "{}", m.text());
    // The encoder's window holds segments 7-9 only, without a cue; the store restarts.
    sc.stop();
    let mut sc = Sidecar::start(&config);
    let h = edgepack_tests::edge_with_routes(sc.internal, CONFIG.as_bytes(), 1, player_routes());
    let range = format!("start={}&end={}", t0 / 1000, t0 / 1000 + 20);
    let playlist = |endpoint: &str, r: usize, query: &str| {
        let res = sidecar::get(
            h.addr,
            &format!("/out/v1/news/{endpoint}/stream_{r}/index.m3u8?{query}"),
        );
        assert_eq!(res.status, 200, "{endpoint}: {}", res.text());
        res.text()
    };
    let out_date = format_pdt(t0 + OUT_AT as i64 * 2000);
    let in_date = format_pdt(t0 + IN_AT as i64 * 2000);
    let out_uri = format!("{OUT_AT}.ts");
    let in_uri = format!("{IN_AT}.ts");

    // scte35_enhanced, from either form of cue: OUT with the library's cue, CONT with the elapsed
    // time, IN.
    for r in 0..2 {
        let enh = playlist("enh", r, &range);
        assert_eq!(
            before(&enh, &out_uri),
            [
                "#EXT-X-CUE-OUT:6.000".to_owned(),
                format!("#EXT-OATCLS-SCTE35:{out}")
            ],
            "stream_{r}: {enh}"
        );
        assert_eq!(
            before(&enh, "4.ts"),
            [format!(
                "#EXT-X-CUE-OUT-CONT:ElapsedTime=2.000,Duration=6.000,SCTE35={out}"
            )],
            "stream_{r}: {enh}"
        );
        assert!(
            before(&enh, "5.ts")[0].contains("ElapsedTime=4.000"),
            "{enh}"
        );
        assert_eq!(
            before(&enh, &in_uri),
            ["#EXT-X-CUE-IN"],
            "stream_{r}: {enh}"
        );
        assert_eq!(enh.matches("#EXT-X-CUE").count(), 4, "nothing else: {enh}");
        assert!(
            !enh.contains("DATERANGE") && !enh.contains("EDGEPACK"),
            "{enh}"
        );
    }

    // daterange: the break's id (the cue's event id, or the encoder's DATERANGE ID), start, planned
    // duration and cue; then its end.
    let dr = playlist("dr", 0, &range);
    assert_eq!(
        before(&dr, &out_uri),
        [format!(
            "#EXT-X-DATERANGE:ID=\"7\",START-DATE=\"{out_date}\",PLANNED-DURATION=6.000,SCTE35-OUT={}",
            hex(&out)
        )],
        "{dr}"
    );
    assert_eq!(
        before(&dr, &in_uri),
        [format!(
            "#EXT-X-DATERANGE:ID=\"7\",START-DATE=\"{out_date}\",END-DATE=\"{in_date}\",DURATION=6.000"
        )],
        "{dr}"
    );
    let dr1 = playlist("dr", 1, &range);
    assert!(
        before(&dr1, &out_uri)[0].starts_with("#EXT-X-DATERANGE:ID=\"break-7\""),
        "{dr1}"
    );
    assert!(
        before(&dr1, &in_uri)[0].ends_with(&format!("SCTE35-IN={}", hex(&back))),
        "{dr1}"
    );

    // none: no marker; passthrough: the encoder's own tags, kept by the store past its window.
    let none = playlist("none", 0, &range);
    assert!(
        !none.contains("CUE") && !none.contains("DATERANGE") && !none.contains("SCTE35"),
        "{none}"
    );
    let pass = playlist("pass", 0, &range);
    assert_eq!(
        before(&pass, &out_uri),
        [
            format!("#EXT-OATCLS-SCTE35:{out}"),
            "#EXT-X-CUE-OUT:6.000".to_owned()
        ]
    );
    assert_eq!(before(&pass, &in_uri), ["#EXT-X-CUE-IN"]);
    assert!(!pass.contains("EDGEPACK"), "{pass}");

    // A window that starts inside the break (segment 4) says so.
    let inside = format!("start={}&end={}", t0 / 1000 + 8, t0 / 1000 + 20);
    let enh = playlist("enh", 0, &inside);
    assert_eq!(
        before(&enh, "4.ts"),
        [format!(
            "#EXT-X-CUE-OUT-CONT:ElapsedTime=2.000,Duration=6.000,SCTE35={out}"
        )],
        "{enh}"
    );
    let dr = playlist("dr", 0, &inside);
    assert!(
        before(&dr, "4.ts")[0].starts_with(&format!(
            "#EXT-X-DATERANGE:ID=\"7\",START-DATE=\"{out_date}\""
        )),
        "{dr}"
    );

    // DASH: the break as a SCTE-35 event in its period (static MPD from the first segment: 6 s
    // in, 6 s long, the library's cue in base64).
    let mpd = sidecar::get(h.addr, &format!("/out/v1/news/dash/index.mpd?{range}"));
    assert_eq!(mpd.status, 200, "{}", mpd.text());
    let mpd = mpd.text();
    assert!(
        mpd.contains(
            "<EventStream schemeIdUri=\"urn:scte:scte35:2014:xml+bin\" timescale=\"90000\">"
        ),
        "{mpd}"
    );
    assert!(
        mpd.contains(&format!(
            "<Event presentationTime=\"540000\" id=\"7\" duration=\"540000\"><Signal xmlns=\"http://www.scte.org/schemas/35/2016\"><Binary>{out}</Binary></Signal></Event>"
        )),
        "{mpd}"
    );
    assert_eq!(mpd.matches("<Event ").count(), 1, "{mpd}");
    dash_mpd_core::parse(&mpd).expect("the MPD with its events parses");
    // period_triggers ["ads"]: a new period at the splice out and at the return, the event at the
    // start of the break's period.
    let periods = sidecar::get(h.addr, &format!("/out/v1/news/periods/index.mpd?{range}")).text();
    let starts: Vec<&str> = periods
        .lines()
        .filter(|l| l.starts_with("<Period "))
        .collect();
    assert_eq!(
        starts,
        [
            "<Period id=\"0-0\" start=\"PT0S\">",
            "<Period id=\"0-0-3\" start=\"PT6S\">",
            "<Period id=\"0-0-6\" start=\"PT12S\">"
        ],
        "{periods}"
    );
    assert!(
        periods.contains("<Event presentationTime=\"0\" id=\"7\" duration=\"540000\">"),
        "{periods}"
    );
    dash_mpd_core::parse(&periods).expect("the MPD with its periods parses");

    // What players expose, in headless Chromium: hls.js the break as a DATERANGE (its id, start,
    // end and the library's cue), shaka-player a timeline region for the MPD's event.
    let page = format!(
        "http://{addr}/ad_events.html?hls={hls}&mpd={mpd}",
        addr = h.addr,
        hls = url_encoded(&format!(
            "http://{}/out/v1/news/dr/stream_0/index.m3u8?{range}",
            h.addr
        )),
        mpd = url_encoded(&format!(
            "http://{}/out/v1/news/dash/index.mpd?{range}",
            h.addr
        )),
    );
    let seen = browser::play(&page, 6).unwrap();
    assert!(seen["fatal"].is_null(), "{seen}");
    let dr = &seen["dateranges"]["7"];
    assert_eq!(dr["start"], t0 + OUT_AT as i64 * 2000, "{seen}");
    assert_eq!(dr["end"], t0 + IN_AT as i64 * 2000, "{seen}");
    assert_eq!(dr["plannedDuration"], 6.0, "{seen}");
    assert_eq!(dr["scte35out"], hex(&out), "{seen}");
    let regions = seen["regions"].as_array().unwrap();
    assert_eq!(regions.len(), 1, "{seen}");
    let region = &regions[0];
    assert_eq!(
        region["schemeIdUri"], "urn:scte:scte35:2014:xml+bin",
        "{seen}"
    );
    assert_eq!(region["id"], "7", "{seen}");
    let at = |k: &str| region[k].as_f64().unwrap();
    assert!(
        (at("startTime") - 6.0).abs() < 0.01 && (at("endTime") - 12.0).abs() < 0.01,
        "{seen}"
    );

    // Players are not disturbed: ffmpeg plays every frame of the marked playlists.
    for endpoint in ["enh", "dr"] {
        let url = format!(
            "http://{}/out/v1/news/{endpoint}/stream_0/index.m3u8?{range}",
            h.addr
        );
        let frames = decoded_frames(&url).unwrap();
        assert_eq!(
            frames.values().map(Vec::len).sum::<usize>(),
            SEGMENTS * 50,
            "{endpoint}"
        );
    }
    assert_eq!(h.traps(), 0);
    sc.stop();
}

/// `segment` with a SCTE-35 stream declared in its PMT (stream type 0x86, PID 0x1F4) and, when
/// given, `cue` carried on it right after the PMT — what an encoder that signals ads in-band
/// writes. The PMT is rewritten with its CRC.
fn with_scte35(segment: &[u8], cue: Option<&[u8]>) -> Vec<u8> {
    use edgepack_store_api::scte35::crc32_mpeg2;
    let mut out = Vec::with_capacity(segment.len() + 188);
    let mut pmt_pid = None;
    for p in segment.chunks_exact(188) {
        let pid = (u16::from(p[1] & 0x1F) << 8) | u16::from(p[2]);
        let start = p[1] & 0x40 != 0;
        if pid == 0 && start {
            // PAT: the first program's PMT PID.
            let s = &p[5..];
            pmt_pid = Some((u16::from(s[10] & 0x1F) << 8) | u16::from(s[11]));
        }
        if Some(pid) == pmt_pid && start {
            assert_eq!(p[3] & 0x30, 0x10, "a PMT packet without adaptation field");
            let mut pkt = p.to_vec();
            let at = 5; // after the header and pointer field 0
            let len = ((usize::from(pkt[at + 1] & 0x0F) << 8) | usize::from(pkt[at + 2])) + 3;
            let body_end = at + len - 4;
            let mut section = pkt[at..body_end].to_vec();
            section.extend_from_slice(&[0x86, 0xE1, 0xF4, 0xF0, 0x00]);
            let new_len = section.len() + 4 - 3;
            section[1] = (section[1] & 0xF0) | (new_len >> 8) as u8;
            section[2] = new_len as u8;
            let crc = crc32_mpeg2(&section);
            section.extend_from_slice(&crc.to_be_bytes());
            assert!(at + section.len() <= 188, "the PMT still fits its packet");
            pkt[at..at + section.len()].copy_from_slice(&section);
            for b in &mut pkt[at + section.len()..] {
                *b = 0xFF;
            }
            out.extend_from_slice(&pkt);
            if let Some(cue) = cue {
                let mut c = vec![0x47, 0x41, 0xF4, 0x10, 0x00];
                c.extend_from_slice(cue);
                assert!(c.len() <= 188);
                c.resize(188, 0xFF);
                out.extend_from_slice(&c);
            }
            continue;
        }
        out.extend_from_slice(p);
    }
    out
}

/// The cues the PyPI `scte35` library reads out of an MPEG-TS file, base64 each.
fn library_reads_ts(path: &Path) -> Vec<String> {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    let script = r#"
import sys, base64
from scte35 import Stream
found = []
Stream(sys.argv[1]).decode(func=lambda cue: found.append(cue.bites))
for b in found:
    print(base64.b64encode(b).decode())
"#;
    let out = Command::new(python)
        .args(["-c", script])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('{'))
        .map(str::to_owned)
        .collect()
}

#[test]
fn cues_in_the_mpeg_ts_scte35_stream_become_markers() {
    let dir = tempfile::tempdir().unwrap();
    let media = dir.path().join("media");
    std::fs::create_dir_all(&media).unwrap();
    let (out, back) = library_cues();
    let cue = |b64: &str| edgepack_store_api::scte35::decode_text(b64).unwrap();
    let segments: Vec<Vec<u8>> = encode(&media)
        .iter()
        .enumerate()
        .map(|(i, s)| match i {
            OUT_AT => with_scte35(s, Some(&cue(&out))),
            IN_AT => with_scte35(s, Some(&cue(&back))),
            _ => with_scte35(s, None),
        })
        .collect();
    // The library reads our in-band cue back from the segment: the carriage is right.
    let carrying = dir.path().join("out.ts");
    std::fs::write(&carrying, &segments[OUT_AT]).unwrap();
    assert_eq!(library_reads_ts(&carrying), std::slice::from_ref(&out));

    let config = write_config(dir.path(), "", "startover_window_seconds = 3600");
    let mut sc = Sidecar::start(&config);
    let auth = basic("enc1", PASSWORD_1);
    let t0 = a_minute_ago_ms();
    for (i, segment) in segments.iter().enumerate() {
        // No cue in the playlists: only the segments carry them.
        let pl = encoder_playlist(2, i, t0, &out, &back).replace("stream_2_", "stream_0_");
        assert!(!pl.contains("CUE") && !pl.contains("SCTE35"), "{pl}");
        upload(&sc, &auth, "stream_0", i, segment, &pl);
    }
    let h = edgepack_tests::edge(sc.internal, CONFIG.as_bytes(), 1);
    let range = format!("start={}&end={}", t0 / 1000, t0 / 1000 + 20);
    let playlist = |endpoint: &str| {
        let res = sidecar::get(
            h.addr,
            &format!("/out/v1/news/{endpoint}/stream_0/index.m3u8?{range}"),
        );
        assert_eq!(res.status, 200, "{endpoint}: {}", res.text());
        res.text()
    };
    let out_uri = format!("{OUT_AT}.ts");
    let in_uri = format!("{IN_AT}.ts");
    let enh = playlist("enh");
    assert_eq!(
        before(&enh, &out_uri),
        [
            "#EXT-X-CUE-OUT:6.000".to_owned(),
            format!("#EXT-OATCLS-SCTE35:{out}")
        ],
        "{enh}"
    );
    assert!(
        before(&enh, "4.ts")[0].starts_with("#EXT-X-CUE-OUT-CONT:ElapsedTime=2.000"),
        "{enh}"
    );
    assert_eq!(before(&enh, &in_uri), ["#EXT-X-CUE-IN"], "{enh}");
    let dr = playlist("dr");
    assert_eq!(
        before(&dr, &out_uri),
        [format!(
            "#EXT-X-DATERANGE:ID=\"7\",START-DATE=\"{}\",PLANNED-DURATION=6.000,SCTE35-OUT={}",
            format_pdt(t0 + OUT_AT as i64 * 2000),
            hex(&out)
        )],
        "{dr}"
    );
    // The segments with the added stream still play, every frame.
    let url = format!(
        "http://{}/out/v1/news/enh/stream_0/index.m3u8?{range}",
        h.addr
    );
    let frames = decoded_frames(&url).unwrap();
    assert_eq!(frames.values().map(Vec::len).sum::<usize>(), SEGMENTS * 50);
    assert_eq!(h.traps(), 0);
    sc.stop();
}
