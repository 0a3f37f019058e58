//! User story: a channel with two audio languages — ffmpeg pushes one video rendition and an
//! audio group of English (default, 440 Hz) and French (880 Hz) with `agroup` in
//! `-var_stream_map` — reaches viewers in every format, each language its own track:
//! - the store keeps each language as a rendition and states its measured bit rate on its
//!   `EXT-X-MEDIA`; HLS viewers get the group as the encoder wrote it (without that attribute),
//!   `aws.manifestfilter=audio_language:` narrows it; CMAF HLS and AES-128 HLS give each
//!   language's frames as the plain HLS rendition does;
//! - DASH: an audio AdaptationSet per language with `lang`, `Role` (main, alternate), `Label` and
//!   the measured bandwidth; ffmpeg's DASH demuxer decodes each language's frames exactly as ffmpeg
//!   decodes that language's HLS rendition; a `cenc` endpoint decrypts to the same;
//! - Smooth Streaming: an audio StreamIndex per language (`Language`); GStreamer's `mssdemux`
//!   decodes both, each frame for frame the HLS rendition's;
//! - encrypted: each language of a `cbcs` CMAF HLS endpoint decrypts (ffmpeg, the playlist's
//!   init and fragments) to the clear cmaf endpoint's frames, and not without the key; each
//!   language's PIFF `cenc` Smooth Streaming fragment decrypts with the key to the clear
//!   endpoint's samples.
//!
//! The same from an encoder that pushes fMP4 (`-hls_segment_type fmp4`): audio renditions of
//! their own initialization segments, repackaged for DASH and Smooth Streaming.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

use std::time::Duration;

use edgepack_test_support::player::{
    decoded, decoded_audio_f32, decoded_with, piped_frames, smooth_played_with_audio,
};
use edgepack_test_support::sidecar;
use edgepack_tests::xml_attr as attr;
use sidecar::get;

const CONFIG: &str = r#"{ "store": { "cluster": "edgepack_store" },
  "channels": { "news": { "endpoints": {
    "hls": { "format": "hls", "manifest_window_seconds": 30 },
    "hls-aes": { "format": "hls", "manifest_window_seconds": 30,
      "encryption": { "method": "aes-128", "key": { "derived": { "secret": "0123456789abcdef0123" } },
                      "key_token": { "secret": "tok-0123456789abcdef" } } },
    "cmaf": { "format": "cmaf", "manifest_window_seconds": 30 },
    "dash": { "format": "dash", "manifest_window_seconds": 30 },
    "dash-cenc": { "format": "dash", "manifest_window_seconds": 30,
      "encryption": { "method": "cenc", "key_rotation_interval_seconds": 0,
                      "key": { "static": { "key_hex": "2b7e151628aed2a6abf7158809cf4f3c" } },
                      "key_token": { "secret": "tok-0123456789abcdef" } } },
    "cmaf-cbcs": { "format": "cmaf", "manifest_window_seconds": 30,
      "encryption": { "method": "cbcs", "key_rotation_interval_seconds": 0,
                      "key": { "static": { "key_hex": "2b7e151628aed2a6abf7158809cf4f3c" } },
                      "key_token": { "secret": "tok-0123456789abcdef" } } },
    "mss": { "format": "mss", "manifest_window_seconds": 30 },
    "mss-cenc": { "format": "mss", "manifest_window_seconds": 30,
      "encryption": { "method": "cenc", "key_rotation_interval_seconds": 0,
                      "key": { "static": { "key_hex": "2b7e151628aed2a6abf7158809cf4f3c" } },
                      "key_token": { "secret": "tok-0123456789abcdef" } } } } } } }"#;

const KEY: &str = "2b7e151628aed2a6abf7158809cf4f3c";

/// Each language's frames are the HLS rendition's, from the first: all of them but what lies
/// past the channel's (video) timeline — ffmpeg ends an audio rendition with a sliver of a
/// segment (a frame or two) after the video's last.
fn same_frames(played: &[Vec<String>], hls: &[Vec<String>]) {
    assert_eq!(played.len(), hls.len());
    for (p, h) in played.iter().zip(hls) {
        assert!(h.starts_with(p), "the same frames, in order");
        assert!(
            h.len() - p.len() <= 3,
            "all but a trailing sliver: {} of {}",
            p.len(),
            h.len()
        );
    }
}

#[test]
fn each_language_is_its_own_track_in_every_format() {
    languages(false);
}

#[test]
fn each_language_of_fmp4_ingest_is_its_own_track_in_every_format() {
    languages(true);
}

fn languages(fmp4: bool) {
    let dir = tempfile::tempdir().unwrap();
    let mut sc = sidecar::Sidecar::start(&sidecar::write_config(dir.path(), "", ""));
    sidecar::Encoder::start_languages_as(sc.ingest, 10, fmp4).wait(Duration::from_secs(60));
    let h = edgepack_tests::edge(sc.internal, CONFIG.as_bytes(), 1);
    let range = sidecar::whole_history_range(&sc.status());

    // The store: each language a rendition, with its measured bit rate.
    let stored = String::from_utf8(sc.get_ok("/store/v1/news/index.m3u8")).unwrap();
    let measured = |rendition: &str| -> u64 {
        let line = stored
            .lines()
            .find(|l| l.contains(&format!("URI=\"{rendition}/index.m3u8\"")))
            .unwrap_or_else(|| panic!("{rendition}: {stored}"));
        line.split("X-EDGEPACK-BANDWIDTH=")
            .nth(1)
            .unwrap()
            .split(',')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let (en_bw, fr_bw) = (measured("stream_audio_en"), measured("stream_audio_fr"));
    assert!(
        (40_000..200_000).contains(&en_bw),
        "64 kb/s AAC in TS or fMP4: {en_bw}"
    );

    // HLS: the group as the encoder wrote it; the filter narrows it.
    let r = get(h.addr, &format!("/out/v1/news/hls/index.m3u8?{range}"));
    assert_eq!(r.status, 200, "{}", r.text());
    let hls = r.text();
    assert!(!hls.contains("X-EDGEPACK"), "{hls}");
    assert_eq!(hls.matches("#EXT-X-MEDIA:TYPE=AUDIO").count(), 2, "{hls}");
    assert!(hls.contains("LANGUAGE=\"fra\""), "{hls}");
    let r = get(
        h.addr,
        &format!("/out/v1/news/hls/index.m3u8?{range}&aws.manifestfilter=audio_language:fra"),
    );
    assert_eq!(
        r.text().matches("#EXT-X-MEDIA:TYPE=AUDIO").count(),
        1,
        "{}",
        r.text()
    );
    assert!(!r.text().contains("LANGUAGE=\"eng\""), "{}", r.text());
    let language_of = |endpoint: &str, rendition: &str| {
        decoded_audio_f32(&format!(
            "http://{}/out/v1/news/{endpoint}/{rendition}/index.m3u8?{range}",
            h.addr
        ))
        .unwrap()
        .into_values()
        .next()
        .unwrap()
    };
    let language = |rendition: &str| language_of("hls", rendition);
    let (en, fr) = (language("stream_audio_en"), language("stream_audio_fr"));
    assert!(en.len() > 10 * 46, "10 s of 48 kHz AAC: {}", en.len());
    assert_ne!(en, fr, "two tones");
    // Each language from CMAF HLS (repackaged, or fMP4 passed through) and AES-128 HLS.
    for endpoint in ["cmaf", "hls-aes"] {
        assert_eq!(language_of(endpoint, "stream_audio_en"), en, "{endpoint}");
        assert_eq!(language_of(endpoint, "stream_audio_fr"), fr, "{endpoint}");
    }

    // DASH: a set per language, and each decodes to its HLS rendition's frames.
    let mpd_url = format!("http://{}/out/v1/news/dash/index.mpd?{range}", h.addr);
    let r = get(h.addr, &format!("/out/v1/news/dash/index.mpd?{range}"));
    assert_eq!(r.status, 200, "{}", r.text());
    let mpd = r.text();
    let parsed = dash_mpd_core::parse(&mpd).unwrap();
    let audio_sets: Vec<_> = parsed.periods[0]
        .adaptations
        .iter()
        .filter(|a| a.contentType.as_deref() == Some("audio"))
        .collect();
    assert_eq!(audio_sets.len(), 2, "{mpd}");
    let en_set = mpd.find("lang=\"eng\"").unwrap();
    let fr_set = mpd.find("lang=\"fra\"").unwrap();
    assert!(mpd[en_set..].starts_with("lang=\"eng\">\n<Label>audio_1</Label>\n<Role schemeIdUri=\"urn:mpeg:dash:role:2011\" value=\"main\"/>"), "{mpd}");
    assert!(mpd[fr_set..].contains("value=\"alternate\"/>"), "{mpd}");
    assert_eq!(
        attr(&mpd, "Representation", "bandwidth", en_set),
        Some(en_bw.to_string().as_str()),
        "{mpd}"
    );
    assert_eq!(
        attr(&mpd, "Representation", "bandwidth", fr_set),
        Some(fr_bw.to_string().as_str())
    );
    let mut dash: Vec<Vec<String>> = decoded_audio_f32(&mpd_url).unwrap().into_values().collect();
    dash.sort();
    let mut hls_both = vec![en.clone(), fr.clone()];
    hls_both.sort();
    same_frames(&dash, &hls_both);
    // In the MPD's order: English first, as labelled.
    let first = decoded_audio_f32(&mpd_url)
        .unwrap()
        .into_values()
        .next()
        .unwrap();
    assert!(
        en.starts_with(&first) && !first.is_empty(),
        "the eng set is the English rendition"
    );

    // cenc DASH: each language decrypts to the clear DASH endpoint's frames.
    let cenc_url = format!("http://{}/out/v1/news/dash-cenc/index.mpd?{range}", h.addr);
    let key = ["-cenc_decryption_key", "2b7e151628aed2a6abf7158809cf4f3c"];
    let clear: Vec<Vec<String>> = decoded(&mpd_url, "0:a").unwrap().into_values().collect();
    let sealed: Vec<Vec<String>> = decoded_with(&key, &cenc_url, "0:a")
        .unwrap()
        .into_values()
        .collect();
    assert_eq!(clear.len(), 2);
    assert_eq!(sealed, clear, "cenc: both languages decrypted");

    // Smooth Streaming: a stream per language, each decoded frame for frame.
    let r = get(h.addr, &format!("/out/v1/news/mss/Manifest?{range}"));
    assert_eq!(r.status, 200, "{}", r.text());
    let m = r.text();
    let en_stream = m.find("Name=\"audio_stream_audio_en\"").unwrap();
    assert_eq!(
        attr(&m, "StreamIndex", "Language", en_stream - 40),
        Some("eng"),
        "{m}"
    );
    assert!(m.contains("Name=\"audio_stream_audio_fr\""), "{m}");
    let played = smooth_played_with_audio(
        &format!("http://{}/out/v1/news/mss/Manifest?{range}", h.addr),
        100_000,
        60,
        2,
    )
    .unwrap();
    assert!(played.ended);
    assert!(!played.video.is_empty());
    let mut mss = played.audio.clone();
    mss.sort();
    same_frames(&mss, &hls_both);
    assert!(
        en.starts_with(&played.audio[0]),
        "the eng stream (the first) is English"
    );

    // Encrypted alternative audio. CMAF HLS cbcs: each language's playlist (its init and
    // fragments, as a player appends them) decrypts to the clear cmaf endpoint's frames.
    let joined = |endpoint: &str, rendition: &str| {
        edgepack_tests::joined_fragments(
            h.addr,
            &format!("/out/v1/news/{endpoint}/{rendition}"),
            &range,
        )
    };
    for rendition in ["stream_audio_en", "stream_audio_fr"] {
        let (text, sealed) = joined("cmaf-cbcs", rendition);
        assert!(text.contains("#EXT-X-KEY:METHOD=SAMPLE-AES,"), "{text}");
        let (_, clear) = joined("cmaf", rendition);
        let frames = piped_frames(&clear, KEY, "0:a").unwrap();
        assert!(frames.len() > 10 * 46, "{rendition}: {}", frames.len());
        assert_eq!(
            piped_frames(&sealed, KEY, "0:a").unwrap(),
            frames,
            "{rendition}: cbcs"
        );
        assert_ne!(
            piped_frames(&sealed, "00000000000000000000000000000000", "0:a").unwrap(),
            frames,
            "{rendition}: really encrypted"
        );
    }
    // Smooth Streaming PIFF cenc (no PlayReady client here): each language's fragment decrypts
    // with the key to the clear endpoint's samples.
    let mut key = [0u8; 16];
    for (i, b) in key.iter_mut().enumerate() {
        *b = u8::from_str_radix(&KEY[2 * i..2 * i + 2], 16).unwrap();
    }
    let first_t = attr(&m, "c", "t", 0).unwrap();
    for stream in ["audio_stream_audio_en", "audio_stream_audio_fr"] {
        let file = format!("QualityLevels(1)/Fragments({stream}={first_t})");
        let clear = get(h.addr, &format!("/out/v1/news/mss/{file}"));
        let sealed = get(h.addr, &format!("/out/v1/news/mss-cenc/{file}"));
        assert_eq!((clear.status, sealed.status), (200, 200), "{file}");
        let (_, clear_samples) = edgepack_tests::piff::fragment_samples(&clear.body);
        assert!(!clear_samples.is_empty());
        assert_ne!(
            edgepack_tests::piff::fragment_samples(&sealed.body).1,
            clear_samples,
            "{stream}: encrypted"
        );
        assert_eq!(
            edgepack_tests::piff::piff_decrypt(&sealed.body, &key),
            clear_samples,
            "{stream}: the key gives back the clear samples"
        );
    }
    assert_eq!(h.traps(), 0);
    sc.stop();
}
