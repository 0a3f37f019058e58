//! Writes an endpoint's media playlist from the store's: the selected window, MEDIA-SEQUENCE and
//! DISCONTINUITY-SEQUENCE of its first segment, PROGRAM-DATE-TIME at the configured interval and
//! after every discontinuity, `EXT-X-KEY` at every key change, source tags kept verbatim.

use std::fmt::Write as _;
use std::ops::Range;

use edgepack_store_api::write_pdt;

use crate::ad_markers;
use crate::cmaf::cenc::Scheme;
use crate::config::{Endpoint, Packaging};
use crate::crypto;
use crate::error::FilterError;
use crate::key_periods;
use crate::media_playlist::MediaPlaylist;
use crate::playlist_window::PlaylistType;
use crate::route;

/// The `EXT-X-KEY` line for a key period, with a fresh token.
pub fn key_tag(
    endpoint: &Endpoint,
    period: u64,
    now_ms: i64,
) -> Result<Option<String>, FilterError> {
    let Some(keys) = endpoint.keys() else {
        return Ok(None);
    };
    let path = route::key_path(&endpoint.channel, &endpoint.name, period);
    let expiry = crypto::token_expiry(now_ms, keys.token.ttl_seconds);
    let token = crypto::token(&keys.token.secret, &path, expiry)?;
    let uri = format!("{}?token={token}", route::key_uri_from_rendition(period));
    Ok(Some(match endpoint.common_encryption() {
        None => {
            let mut tag = format!("#EXT-X-KEY:METHOD=AES-128,URI=\"{uri}\"");
            if let Some(iv) = keys.constant_iv {
                let _ = write!(tag, ",IV=0x{}", hex::encode_upper(iv));
            }
            tag
        }
        // Common encryption of fMP4 (the IVs are in the segments): the key itself at the URI
        // ("identity"), as SAMPLE-AES (cbcs) or SAMPLE-AES-CTR (cenc).
        Some(common) => format!(
            "#EXT-X-KEY:METHOD={},URI=\"{uri}\",KEYFORMAT=\"identity\",KEYFORMATVERSIONS=\"1\"",
            match common.scheme {
                Scheme::Cbcs => "SAMPLE-AES",
                Scheme::Cenc => "SAMPLE-AES-CTR",
            }
        ),
    }))
}

/// Renders the endpoint's media playlist.
// Long on purpose: one pass over the window writes the playlist in document order, and the tags
// it decides per segment (discontinuity, map, key, date) depend on what it wrote before.
pub fn write(
    pl: &MediaPlaylist,
    range: Range<usize>,
    kind: PlaylistType,
    endpoint: &Endpoint,
    now_ms: i64,
) -> Result<String, FilterError> {
    let segs = pl.segments.get(range.clone()).unwrap_or(&[]);
    // A WebVTT subtitle rendition: in the clear (no EXT-X-KEY); cmaf endpoints list its
    // segments as WebVTT in fMP4 (`{sequence}.mp4`, [`crate::cmaf::wvtt`]).
    let subtitles = !pl.segments.is_empty() && pl.segments.iter().all(|s| s.ext() == "vtt");
    let keys = endpoint.keys().filter(|_| !subtitles);
    let td = segs
        .iter()
        .map(|s| s.duration.round() as u64)
        .max()
        .unwrap_or(0)
        .max(pl.target_duration.unwrap_or(0))
        .max(1);
    let (first_seq, first_disc) = match segs.first() {
        Some(s) => (s.sequence, s.disc_seq),
        // Nothing to show yet: the next segment will be the one after the store's last.
        None => (
            pl.segments.get(range.start).map_or_else(
                || pl.media_sequence + pl.segments.len() as u64,
                |s| s.sequence,
            ),
            pl.segments
                .last()
                .map_or(pl.discontinuity_sequence, |s| s.disc_seq),
        ),
    };
    // A cmaf endpoint over MPEG-TS ingest, or an encrypted one over fMP4 ingest: the filter
    // repackages each segment (`{sequence}.mp4`) and builds the initialization segment of each
    // run — one discontinuity period and, when encrypted, one key period (the KID is in the
    // init) — from the run's first segment still in the store (`init-ts{sequence}.mp4`). A clear
    // cmaf endpoint passes fMP4 ingest through with the encoder's own initialization segments.
    let cmaf = matches!(endpoint.packaging, Packaging::Cmaf { .. });
    let fmp4_ingest = segs.iter().any(|s| s.map.is_some());
    let repackage_fmp4 = cmaf && keys.is_some();
    let repackage =
        |s: &crate::media_playlist::Segment| cmaf && (s.map.is_none() || repackage_fmp4);
    // AES-128 of fMP4 ingest encrypts the media segments only: an initialization segment is
    // declared where no key applies (RFC 8216 4.3.2.5: a key before an EXT-X-MAP would apply
    // to it too), so after a key tag a new map is preceded by METHOD=NONE and the key follows
    // it again.
    let clear_maps = keys.is_some() && !cmaf;
    let fmp4 = cmaf || fmp4_ingest;
    // EXT-X-MAP in a media playlist needs protocol version 6.
    let version = if fmp4 {
        pl.version.unwrap_or(3).max(6)
    } else {
        pl.version.unwrap_or(3).max(3)
    };
    let mut out = String::with_capacity(256 + segs.len() * 96);
    let _ = write!(
        out,
        "#EXTM3U\n#EXT-X-VERSION:{version}\n#EXT-X-TARGETDURATION:{td}\n#EXT-X-MEDIA-SEQUENCE:{first_seq}\n#EXT-X-DISCONTINUITY-SEQUENCE:{first_disc}\n"
    );
    match kind {
        PlaylistType::Live => {}
        PlaylistType::Event => out.push_str("#EXT-X-PLAYLIST-TYPE:EVENT\n"),
        PlaylistType::Vod => out.push_str("#EXT-X-PLAYLIST-TYPE:VOD\n"),
    }
    // The endpoint's EXT-X-START replaces the encoder's.
    if let Some(start) = &endpoint.start_tag {
        out.push_str(&start.line());
        out.push('\n');
    }
    for t in &pl.header_tags {
        if endpoint.start_tag.is_some() && t.starts_with("#EXT-X-START:") {
            continue;
        }
        out.push_str(t);
        out.push('\n');
    }
    let interval_ms = endpoint.program_date_time_interval_seconds as i64 * 1000;
    let mut markers = ad_markers::Writer::new(&endpoint.ads);
    let mut last_pdt: Option<i64> = None;
    let mut last_period: Option<u64> = None;
    let mut last_source_key: Option<&str> = None;
    let mut last_map: Option<String> = None;
    for (i, s) in segs.iter().enumerate() {
        if s.discontinuity && i > 0 {
            out.push_str("#EXT-X-DISCONTINUITY\n");
        }
        // The initialization segment: at the window's first segment and wherever it changes.
        let derived;
        let map = if repackage(s) {
            derived = route::ts_init_file(key_periods::run_start(pl, endpoint, s).sequence);
            Some(derived.as_str())
        } else {
            s.map.as_deref()
        };
        if let Some(map) = map
            && last_map.as_deref() != Some(map)
        {
            if clear_maps && last_period.take().is_some() {
                out.push_str("#EXT-X-KEY:METHOD=NONE\n");
            }
            let _ = writeln!(out, "#EXT-X-MAP:URI=\"{map}\"");
            last_map = Some(map.to_owned());
        }
        match keys {
            // Our key periods; the token in the tag changes per request, so compare periods.
            Some(_) => {
                let period = key_periods::of_segment(endpoint, s);
                if last_period != Some(period) {
                    if let Some(tag) = key_tag(endpoint, period, now_ms)? {
                        out.push_str(&tag);
                        out.push('\n');
                    }
                    last_period = Some(period);
                }
            }
            // The source's own EXT-X-KEY, passed on where it changes.
            None => {
                let key = s.source_key.as_deref();
                if key != last_source_key {
                    out.push_str(key.unwrap_or("#EXT-X-KEY:METHOD=NONE"));
                    out.push('\n');
                    last_source_key = key;
                }
            }
        }
        // Dates at the interval; with DATERANGE markers at least where a date mapping starts.
        let dated = interval_ms > 0 || markers.needs_program_date_time();
        if dated && let Some(pdt) = s.pdt_ms {
            let due = i == 0
                || s.discontinuity
                || (interval_ms > 0 && last_pdt.is_none_or(|l| pdt - l >= interval_ms));
            if due {
                out.push_str("#EXT-X-PROGRAM-DATE-TIME:");
                let _ = write_pdt(&mut out, pdt);
                out.push('\n');
                last_pdt = Some(pdt);
            }
        }
        for t in s.tags.iter().filter(|t| markers.keeps(t)) {
            out.push_str(t);
            out.push('\n');
        }
        markers.before_segment(&mut out, s);
        let file = route::segment_file(s.sequence, if repackage(s) { "mp4" } else { s.ext() });
        let _ = write!(out, "#EXTINF:{},{}\n{file}\n", s.duration_text, s.title);
    }
    for t in pl.trailing_tags.iter().filter(|t| markers.keeps(t)) {
        out.push_str(t);
        out.push('\n');
    }
    if kind == PlaylistType::Vod {
        out.push_str("#EXT-X-ENDLIST\n");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn store_playlist_round_trips_byte_identical() {
        let fixture = include_str!("../tests/fixtures/store_media_stream_0.m3u8");
        let settings = Settings::from_json(
            br#"{"store":{"cluster":"s"},"channels":{"news":{"endpoints":{"e":{"format":"hls","program_date_time_interval_seconds":1}}}}}"#,
        )
        .unwrap();
        let pl = crate::media_playlist::parse(fixture.as_bytes()).unwrap();
        let all = 0..pl.segments.len();
        let out = write(
            &pl,
            all,
            PlaylistType::Live,
            &settings.channels["news"]["e"],
            0,
        )
        .unwrap();
        assert_eq!(out, fixture);
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn the_endpoints_start_tag_replaces_the_encoders() {
        let text = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-START:TIME-OFFSET=-6\n#EXT-X-MEDIA-SEQUENCE:7\n\
#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:00.000Z\n#EXTINF:2.000000,\n7.ts\n";
        let settings = Settings::from_json(
            br#"{"store":{"cluster":"s"},"channels":{"news":{"endpoints":{
                "passes":{"format":"hls"},
                "own":{"format":"cmaf","start_tag":{"time_offset":-12.5,"precise":true}}}}}}"#,
        )
        .unwrap();
        let pl = crate::media_playlist::parse(text.as_bytes()).unwrap();
        let out = |e: &str| {
            write(
                &pl,
                0..1,
                PlaylistType::Live,
                &settings.channels["news"][e],
                0,
            )
            .unwrap()
        };
        let passes = out("passes");
        assert_eq!(passes.matches("#EXT-X-START:").count(), 1, "{passes}");
        assert!(passes.contains("#EXT-X-START:TIME-OFFSET=-6\n"), "{passes}");
        let own = out("own");
        assert_eq!(own.matches("#EXT-X-START:").count(), 1, "{own}");
        assert!(
            own.contains("#EXT-X-START:TIME-OFFSET=-12.500,PRECISE=YES\n"),
            "{own}"
        );
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn a_start_tag_is_checked() {
        for (endpoint, why) in [
            (
                r#"{"format":"dash","start_tag":{"time_offset":-6}}"#,
                "start_tag",
            ),
            (
                r#"{"format":"hls","start_tag":{"time_offset":1e9}}"#,
                "start_tag.time_offset",
            ),
            (r#"{"format":"hls","start_tag":{"offset":-6}}"#, "offset"),
        ] {
            let json = format!(
                r#"{{"store":{{"cluster":"s"}},"channels":{{"news":{{"endpoints":{{"e":{endpoint}}}}}}}}}"#
            );
            let e = Settings::from_json(json.as_bytes())
                .unwrap_err()
                .to_string();
            assert!(e.contains(why), "{endpoint}: {e}");
        }
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn tags_survive_and_pdt_follows_discontinuities() {
        let text = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:7\n#EXT-X-DISCONTINUITY-SEQUENCE:2\n\
#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:00.000Z\n#EXTINF:2.000000,\n7.ts\n\
#EXT-X-CUE-OUT:DURATION=30\n#EXT-X-DATERANGE:ID=\"ad1\",START-DATE=\"2026-01-01T00:00:02.000Z\"\n#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:02.000Z\n#EXTINF:2.000000,\n8.ts\n\
#EXT-X-DISCONTINUITY\n#EXT-X-CUE-IN\n#EXT-X-PROGRAM-DATE-TIME:2026-01-01T01:00:00.000Z\n#EXTINF:2.000000,\n9.ts\n\
#EXT-X-PROGRAM-DATE-TIME:2026-01-01T01:00:02.000Z\n#EXTINF:2.000000,\n10.ts\n";
        let settings = Settings::from_json(
            br#"{"store":{"cluster":"s"},"channels":{"news":{"endpoints":{"e":{"format":"hls","program_date_time_interval_seconds":60}}}}}"#,
        )
        .unwrap();
        let pl = crate::media_playlist::parse(text.as_bytes()).unwrap();
        let out = write(
            &pl,
            1..4,
            PlaylistType::Live,
            &settings.channels["news"]["e"],
            0,
        )
        .unwrap();
        assert!(
            out.contains("#EXT-X-MEDIA-SEQUENCE:8\n#EXT-X-DISCONTINUITY-SEQUENCE:2\n"),
            "{out}"
        );
        assert!(out.contains("#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:02.000Z\n#EXT-X-CUE-OUT:DURATION=30\n#EXT-X-DATERANGE:ID=\"ad1\""), "{out}");
        assert!(out.contains("#EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME:2026-01-01T01:00:00.000Z\n#EXT-X-CUE-IN\n"), "{out}");
        assert_eq!(
            out.matches("PROGRAM-DATE-TIME").count(),
            2,
            "first, after the discontinuity; not 10.ts: {out}"
        );
        // Sliding past the discontinuity bumps DISCONTINUITY-SEQUENCE.
        let out = write(
            &pl,
            2..4,
            PlaylistType::Live,
            &settings.channels["news"]["e"],
            0,
        )
        .unwrap();
        assert!(
            out.contains("#EXT-X-MEDIA-SEQUENCE:9\n#EXT-X-DISCONTINUITY-SEQUENCE:3\n"),
            "{out}"
        );
        assert!(!out.contains("#EXT-X-DISCONTINUITY\n"), "{out}");
        // Empty window: numbering continues after the last segment.
        let out = write(
            &pl,
            4..4,
            PlaylistType::Live,
            &settings.channels["news"]["e"],
            0,
        )
        .unwrap();
        assert!(out.contains("#EXT-X-MEDIA-SEQUENCE:11\n"), "{out}");
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod properties {
    use super::*;
    use crate::playlist_window::{WindowSpec, select};
    use edgepack_store_api::strategies::timeline as arb_segments;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn written_playlists_number_and_sum_correctly(segs in arb_segments(), window_s in 1i64..600) {
            let pl = crate::media_playlist::MediaPlaylist {
                version: Some(3),
                target_duration: Some(10),
                media_sequence: 1000,
                segments: segs.clone(),
                ..Default::default()
            };
            let settings = crate::config::Settings::from_json(br#"{"store":{"cluster":"s"},"channels":{"c":{"endpoints":{"e":{"format":"hls"}}}}}"#).unwrap();
            let ep = &settings.channels["c"]["e"];
            let spec = WindowSpec { now_ms: i64::MAX / 2, window_ms: window_s * 1000, delay_ms: 0, start_ms: None, end_ms: None };
            let (r, kind) = select(&segs, &spec);
            let text = write(&pl, r.clone(), kind, ep, 0).unwrap();
            let reparsed = crate::media_playlist::parse(text.as_bytes()).unwrap();
            prop_assert_eq!(reparsed.segments.len(), r.len());
            if let Some(first) = segs.get(r.start).filter(|_| !r.is_empty()) {
                prop_assert_eq!(reparsed.media_sequence, first.sequence);
                prop_assert_eq!(reparsed.discontinuity_sequence, first.disc_seq);
            }
            for (a, b) in reparsed.segments.iter().zip(&segs[r.clone()]) {
                prop_assert_eq!(a.sequence, b.sequence);
                prop_assert_eq!(&a.duration_text, &b.duration_text);
                prop_assert_eq!(a.disc_seq, b.disc_seq);
            }
            let sum_in: f64 = segs[r.clone()].iter().map(|s| s.duration).sum();
            let sum_out: f64 = reparsed.segments.iter().map(|s| s.duration).sum();
            prop_assert!((sum_in - sum_out).abs() < 1e-6);
        }
    }
}
