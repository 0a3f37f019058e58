//! User story: a channel with subtitles. ffmpeg pushes one variant (video and audio, as MPEG-TS
//! and again as fMP4) and an English WebVTT rendition in its subtitle group (`sgroup` in
//! `-var_stream_map`), the WebVTT segments undated and without `X-TIMESTAMP-MAP`, as ffmpeg
//! writes them:
//! - the store keeps the subtitles as a rendition, dated like the video segments numbered alike
//!   (so windows and time shifts select the same stretch of both);
//! - an hls endpoint lists `EXT-X-MEDIA:TYPE=SUBTITLES` with its language, windowed and
//!   time-shifted as the video; every WebVTT segment states its `X-TIMESTAMP-MAP`; on an AES-128
//!   endpoint the subtitles stay clear (their playlist has no key); ffmpeg reads every cue of
//!   the endpoint's subtitle rendition, in order;
//! - `aws.manifestfilter=subtitle_language:` keeps the rendition or, naming no language there
//!   is, leaves nothing to play (400);
//! - cmaf endpoints carry the same rendition as WebVTT in fMP4 (`wvtt`): each cue starts on the
//!   video's timeline exactly where the MPEG-2 time the WebVTT maps it to is shown (the
//!   fragments' decode times checked against the video fragment and its TS segment's first
//!   frame); dash as the same `wvtt` fragments by time, mss as TTML; on encrypted endpoints
//!   (cmaf `cbcs`, dash and mss `cenc`) the text fragments are byte for byte the clear
//!   endpoint's, with no key or protection signalled for them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

use std::process::Command;
use std::time::Duration;

use edgepack_test_support::sidecar;
use sidecar::get;

const CONFIG: &str = r#"{ "store": { "cluster": "edgepack_store" },
  "channels": { "news": { "endpoints": {
    "hls": { "format": "hls", "manifest_window_seconds": 30 },
    "secure": { "format": "hls", "manifest_window_seconds": 30,
      "encryption": { "method": "aes-128", "key_rotation_interval_seconds": 0,
                      "key": { "derived": { "secret": "0123456789abcdef0123" } },
                      "key_token": { "secret": "tok-0123456789abcdef" } } },
    "cmaf": { "format": "cmaf", "manifest_window_seconds": 30 },
    "cmaf-cbcs": { "format": "cmaf", "manifest_window_seconds": 30,
      "encryption": { "method": "cbcs", "key_rotation_interval_seconds": 0,
                      "key": { "derived": { "secret": "0123456789abcdef0123" } },
                      "key_token": { "secret": "tok-0123456789abcdef" } } },
    "dash": { "format": "dash", "manifest_window_seconds": 30 },
    "dash-cenc": { "format": "dash", "manifest_window_seconds": 30,
      "encryption": { "method": "cenc", "key_rotation_interval_seconds": 0,
                      "key": { "derived": { "secret": "0123456789abcdef0123" } },
                      "key_token": { "secret": "tok-0123456789abcdef" } } },
    "mss": { "format": "mss", "manifest_window_seconds": 30 },
    "mss-cenc": { "format": "mss", "manifest_window_seconds": 30,
      "encryption": { "method": "cenc", "key_rotation_interval_seconds": 0,
                      "key": { "derived": { "secret": "0123456789abcdef0123" } },
                      "key_token": { "secret": "tok-0123456789abcdef" } } } } } } }"#;

/// The cue texts ffmpeg reads from an HLS subtitle playlist, in order.
fn cues_read_by_ffmpeg(url: &str) -> Vec<String> {
    let out = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-i",
            url,
            "-f",
            "webvtt",
            "-",
        ])
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
        .filter(|l| l.starts_with("Cue "))
        .map(str::to_owned)
        .collect()
}

fn uris(playlist: &str) -> Vec<&str> {
    playlist
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect()
}

#[test]
fn subtitles_reach_viewers_of_every_format_on_the_videos_timeline() {
    subtitles(false);
}

/// The same with the video pushed as fMP4 (the WebVTT segments are the same).
#[test]
fn subtitles_over_fmp4_video() {
    subtitles(true);
}

fn subtitles(fmp4: bool) {
    let dir = tempfile::tempdir().unwrap();
    let mut sc = sidecar::Sidecar::start(&sidecar::write_config(dir.path(), "", ""));
    sidecar::Encoder::start_subtitles_as(sc.ingest, 12, fmp4).wait(Duration::from_secs(60));
    let h = edgepack_tests::edge(sc.internal, CONFIG.as_bytes(), 1);
    let range = sidecar::whole_history_range(&sc.status());

    // The store: subtitle segments dated as the video segments numbered alike.
    let dates = |rendition: &str| -> Vec<String> {
        let t = String::from_utf8(sc.get_ok(&format!("/store/v1/news/{rendition}/index.m3u8")))
            .unwrap();
        t.lines()
            .filter(|l| l.starts_with("#EXT-X-PROGRAM-DATE-TIME:"))
            .map(str::to_owned)
            .collect()
    };
    let (video_dates, subtitle_dates) = (dates("stream_video"), dates("stream_video_vtt"));
    assert!(video_dates.len() >= 6, "{video_dates:?}");
    assert_eq!(subtitle_dates, video_dates);

    // HLS: the subtitle rendition, with its language, seeing the video's window.
    let r = get(h.addr, &format!("/out/v1/news/hls/index.m3u8?{range}"));
    assert_eq!(r.status, 200, "{}", r.text());
    let multivariant = r.text();
    let media = multivariant
        .lines()
        .find(|l| l.starts_with("#EXT-X-MEDIA:TYPE=SUBTITLES"))
        .unwrap_or_else(|| panic!("{multivariant}"));
    assert!(media.contains("LANGUAGE=\"eng\""), "{media}");
    assert!(
        media.contains(&format!("URI=\"stream_video_vtt/index.m3u8?{range}\"")),
        "{media}"
    );
    assert!(
        multivariant.contains("SUBTITLES=\"subs\""),
        "{multivariant}"
    );
    let playlist = |endpoint: &str, rendition: &str| {
        let r = get(
            h.addr,
            &format!("/out/v1/news/{endpoint}/{rendition}/index.m3u8?{range}"),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        r.text()
    };
    let video = playlist("hls", "stream_video");
    let subtitles = playlist("hls", "stream_video_vtt");
    let sequences = |p: &str| -> Vec<String> {
        uris(p)
            .iter()
            .map(|u| u.split('.').next().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        sequences(&subtitles),
        sequences(&video),
        "{subtitles}\n{video}"
    );
    let first = uris(&subtitles)[0];
    assert!(first.ends_with(".vtt"), "{subtitles}");

    // Each segment states its mapping; the first holds the first cues.
    let r = get(
        h.addr,
        &format!("/out/v1/news/hls/stream_video_vtt/{first}"),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("text/vtt"));
    let vtt = r.text();
    assert!(
        vtt.starts_with("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000\n"),
        "{vtt}"
    );
    assert!(
        vtt.contains("\nCue 0\n") && vtt.contains("\nCue 1\n"),
        "{vtt}"
    );

    // ffmpeg reads every cue, in order, from the clear and from the encrypted endpoint.
    let expected: Vec<String> = (0..12).map(|k| format!("Cue {k}")).collect();
    for endpoint in ["hls", "secure"] {
        let url = format!(
            "http://{}/out/v1/news/{endpoint}/stream_video_vtt/index.m3u8?{range}",
            h.addr
        );
        let cues = cues_read_by_ffmpeg(&url);
        assert!(cues.starts_with(&expected), "{endpoint}: {cues:?}");
    }
    let secure = playlist("secure", "stream_video_vtt");
    assert!(
        !secure.contains("EXT-X-KEY"),
        "subtitles stay clear: {secure}"
    );
    assert!(
        playlist("secure", "stream_video").contains("#EXT-X-KEY:METHOD=AES-128"),
        "the video is encrypted"
    );

    // The manifest filter's subtitle language.
    let filtered = |language: &str| {
        get(
            h.addr,
            &format!(
                "/out/v1/news/hls/index.m3u8?{range}&aws.manifestfilter=subtitle_language:{language}"
            ),
        )
    };
    let r = filtered("eng");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("TYPE=SUBTITLES"), "{}", r.text());
    let r = filtered("fra");
    assert_eq!(r.status, 400, "{}", r.text());

    // cmaf: the same subtitles as WebVTT in fMP4, each cue on the video's timeline: a cue at
    // local time t (no map: MPEG-2 time t) starts (t − the first frame's MPEG-2 time) after the
    // program date time of the video segment numbered alike, which the video's own fragment
    // starts at.
    let r = get(h.addr, &format!("/out/v1/news/cmaf/index.m3u8?{range}"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("TYPE=SUBTITLES"), "{}", r.text());
    let cmaf_subs = playlist("cmaf", "stream_video_vtt");
    let init = cmaf_subs
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MAP:URI=\""))
        .and_then(|l| l.strip_suffix('"'))
        .unwrap_or_else(|| panic!("{cmaf_subs}"));
    let body = |path: &str| {
        let r = get(
            h.addr,
            &format!("/out/v1/news/cmaf/stream_video_vtt/{path}"),
        );
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        r.body
    };
    let init = body(init);
    assert!(init.windows(4).any(|w| w == b"wvtt"), "a wvtt sample entry");
    let mut placed = 0;
    // (MPEG-TS video: the first frame's MPEG-2 time read from the TS segment.)
    let checked = if fmp4 { 0 } else { 6 };
    for file in uris(&cmaf_subs).iter().take(checked) {
        let seq: u64 = file.strip_suffix(".mp4").unwrap().parse().unwrap();
        let fragment = body(file);
        let video = get(h.addr, &format!("/out/v1/news/cmaf/stream_video/{seq}.mp4"));
        assert_eq!(video.status, 200);
        let video_start = edgepack_tests::cmaf_box::tfdt(&video.body);
        let ts = get(h.addr, &format!("/out/v1/news/hls/stream_video/{seq}.ts"));
        let first_pts = edgepack_tests::cmaf_box::first_video_pts(&ts.body);
        // The cue times ffmpeg wrote (no map: MPEG-2 time = local time), from the hls endpoint.
        let vtt = get(
            h.addr,
            &format!("/out/v1/news/hls/stream_video_vtt/{seq}.vtt"),
        )
        .text();
        let local_ms = |text: &str| -> i64 {
            let lines: Vec<&str> = vtt.lines().collect();
            let i = lines.iter().position(|l| *l == text).unwrap();
            let (m, s) = lines[i - 1]
                .split(" --> ")
                .next()
                .unwrap()
                .split_once(':')
                .unwrap();
            m.parse::<i64>().unwrap() * 60_000 + (s.parse::<f64>().unwrap() * 1000.0).round() as i64
        };
        for (start, text) in edgepack_tests::cmaf_box::wvtt_cues(&fragment) {
            // A cue that began in the segment before starts at this one's start.
            let expected = (video_start as i64 + local_ms(&text) * 90 - first_pts as i64)
                .max(video_start as i64);
            assert_eq!(start as i64, expected, "segment {seq}, {text}");
            placed += 1;
        }
    }
    assert!(placed >= checked, "cues checked: {placed}");

    // Encrypted endpoints: the subtitles stay clear — the same text fragments as the clear
    // endpoint's, no key in their playlist, no protection on their AdaptationSet.
    let cbcs_subs = playlist("cmaf-cbcs", "stream_video_vtt");
    assert!(!cbcs_subs.contains("EXT-X-KEY"), "{cbcs_subs}");
    assert!(
        playlist("cmaf-cbcs", "stream_video").contains("METHOD=SAMPLE-AES"),
        "the video is encrypted"
    );
    let fetch = |endpoint: &str, path: &str| {
        let r = get(h.addr, &format!("/out/v1/news/{endpoint}/{path}"));
        assert_eq!(r.status, 200, "{endpoint}/{path}: {}", r.text());
        r.body
    };
    // (Over fMP4 video the clear cmaf endpoint passes the video through on the encoder's own
    // timeline, and its text with it; the encrypted one repackages both, as dash does.)
    for file in uris(&cmaf_subs).iter().take(if fmp4 { 0 } else { 3 }) {
        let path = format!("stream_video_vtt/{file}");
        assert_eq!(fetch("cmaf-cbcs", &path), fetch("cmaf", &path), "{path}");
    }
    let mpd = String::from_utf8(fetch("dash-cenc", &format!("index.mpd?{range}"))).unwrap();
    let text_set = &mpd[mpd
        .find("contentType=\"text\"")
        .unwrap_or_else(|| panic!("{mpd}"))..];
    let text_set = &text_set[..text_set.find("</AdaptationSet>").unwrap()];
    assert!(text_set.contains("codecs=\"wvtt\""), "{text_set}");
    assert!(!text_set.contains("ContentProtection"), "{text_set}");
    assert!(
        mpd.contains("ContentProtection"),
        "the video is protected: {mpd}"
    );
    let t = edgepack_tests::xml_attr(text_set, "S", "t", 0).unwrap();
    let path = format!("stream_video_vtt/t{t}.mp4");
    let dash_text = fetch("dash", &path);
    assert_eq!(fetch("dash-cenc", &path), dash_text);
    // The window's first segment: the same fragment on the encrypted cmaf endpoint.
    let first = uris(&cbcs_subs)[0];
    assert_eq!(
        fetch("cmaf-cbcs", &format!("stream_video_vtt/{first}")),
        dash_text,
        "{first} = t{t}.mp4"
    );
    assert!(
        !edgepack_tests::cmaf_box::wvtt_cues(&dash_text).is_empty(),
        "cues"
    );
    let manifest = String::from_utf8(fetch("mss-cenc", &format!("Manifest?{range}"))).unwrap();
    assert!(
        manifest.contains("<StreamIndex Type=\"text\" Name=\"text_stream_video_vtt\""),
        "{manifest}"
    );
    let c = &manifest[manifest.find("Name=\"text_stream_video_vtt\"").unwrap()..];
    let ten_mhz = edgepack_tests::xml_attr(c, "c", "t", 0).unwrap();
    let path = format!("QualityLevels(1000)/Fragments(text_stream_video_vtt={ten_mhz})");
    let mss_text = fetch("mss", &path);
    assert_eq!(fetch("mss-cenc", &path), mss_text);
    assert!(
        String::from_utf8_lossy(&mss_text).contains("<p begin=\""),
        "a TTML document with cues"
    );
    assert_eq!(h.traps(), 0);
    sc.stop();
}
