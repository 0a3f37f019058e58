//! Writes an endpoint's media playlist from the store's: the selected window, MEDIA-SEQUENCE and
//! DISCONTINUITY-SEQUENCE of its first segment, PROGRAM-DATE-TIME at the configured interval and
//! after every discontinuity, `EXT-X-KEY` at every key change, source tags kept verbatim.

use std::fmt::Write as _;
use std::ops::Range;

use chrono::{DateTime, SecondsFormat, Utc};

use crate::config::{EncryptionMethod, Endpoint, Format};
use crate::crypto;
use crate::dash;
use crate::error::FilterError;
use crate::media_playlist::MediaPlaylist;
use crate::playlist_window::Kind;

fn format_pdt(ms: i64) -> Option<String> {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

/// The `EXT-X-KEY` line for a key period, with a fresh token.
pub fn key_tag(
    endpoint: &Endpoint,
    period: u64,
    now_ms: i64,
) -> Result<Option<String>, FilterError> {
    let Some(enc) = &endpoint.cfg.encryption else {
        return Ok(None);
    };
    let path = key_path(endpoint, period);
    let expiry = crypto::token_expiry(now_ms, enc.key_token.ttl_seconds);
    let token = crypto::token(&enc.key_token.secret, &path, expiry)?;
    let uri = format!("../key/{period}?token={token}");
    Ok(Some(match enc.method {
        EncryptionMethod::Aes128 => {
            let mut tag = format!("#EXT-X-KEY:METHOD=AES-128,URI=\"{uri}\"");
            if let Some(iv) = endpoint.constant_iv {
                let _ = write!(tag, ",IV=0x{}", hex::encode_upper(iv));
            }
            tag
        }
        // Common encryption of fMP4 (the IVs are in the segments): the key itself at the URI
        // ("identity"), as SAMPLE-AES (cbcs) or SAMPLE-AES-CTR (cenc).
        EncryptionMethod::Cbcs | EncryptionMethod::Cenc => format!(
            "#EXT-X-KEY:METHOD={},URI=\"{uri}\",KEYFORMAT=\"identity\",KEYFORMATVERSIONS=\"1\"",
            if enc.method == EncryptionMethod::Cbcs {
                "SAMPLE-AES"
            } else {
                "SAMPLE-AES-CTR"
            }
        ),
    }))
}

/// Absolute path of a key on this endpoint; tokens are bound to it.
pub fn key_path(endpoint: &Endpoint, period: u64) -> String {
    format!(
        "/out/v1/{}/{}/key/{period}",
        endpoint.channel, endpoint.name
    )
}

/// Renders the endpoint's media playlist.
pub fn write(
    pl: &MediaPlaylist,
    range: Range<usize>,
    kind: Kind,
    endpoint: &Endpoint,
    now_ms: i64,
) -> Result<String, FilterError> {
    let segs = pl.segments.get(range.clone()).unwrap_or(&[]);
    let encryption = endpoint.cfg.encryption.as_ref();
    let td = segs
        .iter()
        .map(|s| s.duration.round() as u64)
        .max()
        .unwrap_or(0)
        .max(pl.target_duration)
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
    // A cmaf endpoint over MPEG-TS ingest: the filter repackages each segment (`{sequence}.mp4`)
    // and builds the initialization segment of each run — one discontinuity period and, when
    // encrypted, one key period (the KID is in the init) — from the run's first segment still in
    // the store (`init-ts{sequence}.mp4`).
    let repackage = endpoint.cfg.format == Format::Cmaf;
    let fmp4_ingest = segs.iter().any(|s| s.map.is_some());
    if let Some(e) = encryption {
        let whole_segment = e.method == EncryptionMethod::Aes128;
        if fmp4_ingest || (whole_segment && repackage) {
            return Err(FilterError::NotImplemented(format!(
                "endpoint '{}' is encrypted, which this version does for MPEG-TS ingest only (AES-128 on hls endpoints, cenc/cbcs on cmaf and dash); this rendition is fMP4 (CMAF). Serve it from an endpoint without encryption",
                endpoint.name
            )));
        }
    }
    let fmp4 = repackage || fmp4_ingest;
    // EXT-X-MAP in a media playlist needs protocol version 6.
    let version = if fmp4 {
        pl.version.max(6)
    } else {
        pl.version.max(3)
    };
    let mut out = String::with_capacity(256 + segs.len() * 96);
    let _ = write!(
        out,
        "#EXTM3U\n#EXT-X-VERSION:{version}\n#EXT-X-TARGETDURATION:{td}\n#EXT-X-MEDIA-SEQUENCE:{first_seq}\n#EXT-X-DISCONTINUITY-SEQUENCE:{first_disc}\n"
    );
    match kind {
        Kind::Live => {}
        Kind::Event => out.push_str("#EXT-X-PLAYLIST-TYPE:EVENT\n"),
        Kind::Vod => out.push_str("#EXT-X-PLAYLIST-TYPE:VOD\n"),
    }
    for t in &pl.header_tags {
        out.push_str(t);
        out.push('\n');
    }
    let interval_ms = endpoint.cfg.program_date_time_interval_seconds as i64 * 1000;
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
        let map = match s.map.as_deref() {
            Some(m) => Some(m),
            None if repackage => {
                derived = format!("init-ts{}.mp4", dash::run_start(pl, endpoint, s).sequence);
                Some(derived.as_str())
            }
            None => None,
        };
        if let Some(map) = map
            && last_map.as_deref() != Some(map)
        {
            let _ = writeln!(out, "#EXT-X-MAP:URI=\"{map}\"");
            last_map = Some(map.to_owned());
        }
        match encryption {
            // Our key periods; the token in the tag changes per request, so compare periods.
            Some(e) => {
                let period =
                    crypto::key_period(s.pdt_ms.unwrap_or(0), e.key_rotation_interval_seconds);
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
        if interval_ms > 0
            && let Some(pdt) = s.pdt_ms
        {
            let due = i == 0 || s.discontinuity || last_pdt.is_none_or(|l| pdt - l >= interval_ms);
            if due && let Some(text) = format_pdt(pdt) {
                let _ = writeln!(out, "#EXT-X-PROGRAM-DATE-TIME:{text}");
                last_pdt = Some(pdt);
            }
        }
        for t in &s.tags {
            out.push_str(t);
            out.push('\n');
        }
        let _ = write!(
            out,
            "#EXTINF:{},{}\n{}.{}\n",
            s.duration_text,
            s.title,
            s.sequence,
            if repackage && s.map.is_none() {
                "mp4"
            } else {
                s.ext()
            }
        );
    }
    for t in &pl.trailing_tags {
        out.push_str(t);
        out.push('\n');
    }
    if kind == Kind::Vod {
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
        let out = write(&pl, all, Kind::Live, &settings.channels["news"]["e"], 0).unwrap();
        assert_eq!(out, fixture);
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
        let out = write(&pl, 1..4, Kind::Live, &settings.channels["news"]["e"], 0).unwrap();
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
        let out = write(&pl, 2..4, Kind::Live, &settings.channels["news"]["e"], 0).unwrap();
        assert!(
            out.contains("#EXT-X-MEDIA-SEQUENCE:9\n#EXT-X-DISCONTINUITY-SEQUENCE:3\n"),
            "{out}"
        );
        assert!(!out.contains("#EXT-X-DISCONTINUITY\n"), "{out}");
        // Empty window: numbering continues after the last segment.
        let out = write(&pl, 4..4, Kind::Live, &settings.channels["news"]["e"], 0).unwrap();
        assert!(out.contains("#EXT-X-MEDIA-SEQUENCE:11\n"), "{out}");
    }
}
