//! Playlists as the encoder uploads them: parsed with `m3u8-rs`, checked, and reduced to what the
//! index needs. A line scan beside the parser keeps each segment's extra tags verbatim (ad cues,
//! DATERANGE, the source's EXT-X-KEY) and the exact EXTINF durations (m3u8-rs keeps `f32`).

use chrono::{DateTime, Utc};
use m3u8_rs::Playlist;

/// Why an uploaded playlist was refused; the previous good state stays.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PlaylistError {
    #[error("playlist is not valid UTF-8")]
    NotUtf8,
    #[error("playlist does not start with #EXTM3U")]
    NoHeader,
    #[error("playlist could not be parsed: {0}")]
    Unparseable(String),
    #[error("media playlist has no #EXT-X-TARGETDURATION")]
    NoTargetDuration,
    #[error("line {line}: {why}")]
    BadLine { line: usize, why: String },
    #[error("line {line}: {tag} is not supported for ingest (segments must be whole files)")]
    Unsupported { line: usize, tag: &'static str },
}

/// A parsed upload.
#[derive(Debug)]
pub enum SourcePlaylist {
    Multivariant(m3u8_rs::MasterPlaylist),
    Media(MediaSource),
}

/// A media playlist as the index needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaSource {
    pub version: usize,
    pub target_duration: u64,
    pub media_sequence: u64,
    pub discontinuity_sequence: u64,
    pub ended: bool,
    pub segments: Vec<SourceSegment>,
}

/// One segment line of the source playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceSegment {
    pub uri: String,
    pub duration: f64,
    pub discontinuity: bool,
    pub program_date_time: Option<DateTime<Utc>>,
    /// URI of the `EXT-X-MAP` (fMP4 initialization segment) in effect for this segment.
    pub map: Option<String>,
    /// Tags kept verbatim for the filter (`EXT-X-CUE-*`, `EXT-X-DATERANGE`, `EXT-X-KEY`, …).
    pub tags: Vec<String>,
}

/// Tags that the store regenerates itself and therefore does not keep verbatim.
const REGENERATED: &[&str] = &[
    "#EXTINF:",
    "#EXT-X-PROGRAM-DATE-TIME:",
    "#EXT-X-DISCONTINUITY",
    "#EXTM3U",
    "#EXT-X-VERSION:",
    "#EXT-X-TARGETDURATION:",
    "#EXT-X-MEDIA-SEQUENCE:",
    "#EXT-X-DISCONTINUITY-SEQUENCE:",
    "#EXT-X-ENDLIST",
    "#EXT-X-PLAYLIST-TYPE:",
    "#EXT-X-INDEPENDENT-SEGMENTS",
    "#EXT-X-ALLOW-CACHE:",
    "#EXT-X-START:",
];

/// Parses an uploaded playlist.
pub fn parse(bytes: &[u8]) -> Result<SourcePlaylist, PlaylistError> {
    let text = std::str::from_utf8(bytes).map_err(|_| PlaylistError::NotUtf8)?;
    if !text.trim_start_matches('\u{feff}').starts_with("#EXTM3U") {
        return Err(PlaylistError::NoHeader);
    }
    match m3u8_rs::parse_playlist_res(bytes) {
        Ok(Playlist::MasterPlaylist(m)) => {
            if m.variants.iter().any(|v| v.uri.is_empty()) {
                return Err(PlaylistError::Unparseable(
                    "a variant stream has no URI".to_owned(),
                ));
            }
            Ok(SourcePlaylist::Multivariant(m))
        }
        Ok(Playlist::MediaPlaylist(m)) => scan_media(text, &m).map(SourcePlaylist::Media),
        Err(e) => Err(PlaylistError::Unparseable(match e {
            nom::Err::Error(e) | nom::Err::Failure(e) => {
                let offset = bytes.len() - e.input.len();
                let line = text[..offset.min(text.len())].lines().count().max(1);
                format!("syntax error near line {line}")
            }
            nom::Err::Incomplete(_) => "truncated playlist".to_owned(),
        })),
    }
}

fn scan_media(text: &str, parsed: &m3u8_rs::MediaPlaylist) -> Result<MediaSource, PlaylistError> {
    let mut has_target = false;
    let mut segments = Vec::with_capacity(parsed.segments.len());
    let mut duration: Option<f64> = None;
    let mut discontinuity = false;
    let mut pdt = None;
    let mut map: Option<String> = None;
    let mut tags = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        let bad = |why: &str| PlaylistError::BadLine {
            line: line_no,
            why: why.to_owned(),
        };
        if let Some(rest) = line.strip_prefix("#EXTINF:") {
            let d = rest.split(',').next().unwrap_or("").trim();
            let d: f64 = d
                .parse()
                .map_err(|_| bad(&format!("EXTINF duration '{d}' is not a number")))?;
            if !(d.is_finite() && d > 0.0 && d < 3600.0) {
                return Err(bad(&format!("EXTINF duration {d} is out of range")));
            }
            duration = Some(d);
        } else if let Some(rest) = line.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
            let t = DateTime::parse_from_rfc3339(rest.trim())
                .or_else(|_| DateTime::parse_from_str(rest.trim(), "%Y-%m-%dT%H:%M:%S%.f%z"))
                .map_err(|_| bad(&format!("PROGRAM-DATE-TIME '{rest}' is not ISO 8601")))?;
            pdt = Some(t.with_timezone(&Utc));
        } else if line.starts_with("#EXT-X-TARGETDURATION:") {
            has_target = true;
        } else if line == "#EXT-X-DISCONTINUITY" {
            discontinuity = true;
        } else if line.starts_with("#EXT-X-BYTERANGE") {
            return Err(PlaylistError::Unsupported {
                line: line_no,
                tag: "EXT-X-BYTERANGE",
            });
        } else if let Some(attrs) = line.strip_prefix("#EXT-X-MAP:") {
            if attrs.contains("BYTERANGE=") {
                return Err(PlaylistError::Unsupported {
                    line: line_no,
                    tag: "EXT-X-MAP with BYTERANGE",
                });
            }
            let uri = attrs
                .split_once("URI=\"")
                .and_then(|(_, rest)| rest.split_once('"'))
                .map(|(uri, _)| uri)
                .filter(|u| !u.is_empty())
                .ok_or_else(|| bad("EXT-X-MAP without a quoted URI"))?;
            map = Some(uri.to_owned());
        } else if line.starts_with('#') {
            let regenerated = REGENERATED
                .iter()
                .any(|t| line == t.trim_end_matches(':') || line.starts_with(t));
            if line.starts_with("#EXT") && !regenerated {
                tags.push(line.to_owned());
            }
        } else {
            let d = duration
                .take()
                .ok_or_else(|| bad("segment URI without a preceding #EXTINF"))?;
            segments.push(SourceSegment {
                uri: line.to_owned(),
                duration: d,
                discontinuity: std::mem::take(&mut discontinuity),
                program_date_time: pdt.take(),
                map: map.clone(),
                tags: std::mem::take(&mut tags),
            });
        }
    }
    if !has_target || parsed.target_duration == 0 {
        return Err(PlaylistError::NoTargetDuration);
    }
    if segments.len() != parsed.segments.len() {
        return Err(PlaylistError::Unparseable(format!(
            "found {} segment URIs but only {} parse as segments",
            segments.len(),
            parsed.segments.len()
        )));
    }
    Ok(MediaSource {
        version: parsed.version.unwrap_or(3).max(3),
        target_duration: parsed.target_duration,
        media_sequence: parsed.media_sequence,
        discontinuity_sequence: parsed.discontinuity_sequence,
        ended: parsed.end_list,
        segments,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // As Debian's ffmpeg 5.1 writes it with `-hls_flags program_date_time`: PDT after EXTINF.
    const FFMPEG: &str = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:7\n\
#EXTINF:2.000000,\n#EXT-X-PROGRAM-DATE-TIME:2026-11-25T14:00:00.000+0000\nstream_0_7.ts\n\
#EXT-X-CUE-OUT:30\n#EXT-X-DISCONTINUITY\n#EXTINF:1.960000,\nstream_0_8.ts\n";

    fn media(text: &str) -> MediaSource {
        match parse(text.as_bytes()).unwrap() {
            SourcePlaylist::Media(m) => m,
            SourcePlaylist::Multivariant(_) => panic!("expected media"),
        }
    }

    #[test]
    fn ffmpeg_playlist_keeps_exact_durations_pdt_and_cues() {
        let m = media(FFMPEG);
        assert_eq!(m.media_sequence, 7);
        assert_eq!(m.target_duration, 2);
        assert_eq!(m.segments.len(), 2);
        assert_eq!(m.segments[0].uri, "stream_0_7.ts");
        assert_eq!(
            m.segments[0].program_date_time.unwrap().to_rfc3339(),
            "2026-11-25T14:00:00+00:00"
        );
        assert_eq!(m.segments[1].duration, 1.96);
        assert!(m.segments[1].discontinuity);
        assert_eq!(m.segments[1].tags, vec!["#EXT-X-CUE-OUT:30".to_owned()]);
        assert!(m.segments[1].program_date_time.is_none());
    }

    // As Debian's ffmpeg 5.1 writes it with `-hls_segment_type fmp4`.
    const FFMPEG_FMP4: &str = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n\
#EXT-X-MAP:URI=\"init_0.mp4\"\n#EXTINF:2.000000,\n#EXT-X-PROGRAM-DATE-TIME:2026-11-25T17:18:39.590+0000\n\
stream_0_0.m4s\n#EXTINF:2.000000,\nstream_0_1.m4s\n#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init_0b.mp4\"\n\
#EXTINF:2.000000,\nstream_0_2.m4s\n";

    #[test]
    fn fmp4_segments_know_their_initialization_segment() {
        let m = media(FFMPEG_FMP4);
        assert_eq!(m.version, 7);
        let maps: Vec<_> = m.segments.iter().map(|s| s.map.as_deref()).collect();
        assert_eq!(
            maps,
            [Some("init_0.mp4"), Some("init_0.mp4"), Some("init_0b.mp4")]
        );
        // The map is the store's to rewrite, not a tag to keep verbatim.
        assert!(m.segments.iter().all(|s| s.tags.is_empty()));
        assert!(media(FFMPEG).segments.iter().all(|s| s.map.is_none()));
    }

    #[test]
    fn refusals_say_why() {
        assert_eq!(parse(b"hello").unwrap_err(), PlaylistError::NoHeader);
        assert_eq!(
            parse(b"#EXTM3U\n#EXTINF:2,\na.ts\n").unwrap_err(),
            PlaylistError::NoTargetDuration
        );
        assert!(matches!(
            parse(b"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:abc,\na.ts\n").unwrap_err(),
            PlaylistError::BadLine { line: 3, .. }
        ));
        assert!(matches!(
            parse(
                b"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MAP:URI=\"i.mp4\",BYTERANGE=\"800@0\"\n#EXTINF:2,\na.m4s\n"
            )
            .unwrap_err(),
            PlaylistError::Unsupported { line: 3, .. }
        ));
        assert!(matches!(
            parse(b"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MAP:URI=\n#EXTINF:2,\na.m4s\n")
                .unwrap_err(),
            PlaylistError::BadLine { line: 3, .. }
        ));
        assert!(matches!(
            parse(b"#EXTM3U\n#EXT-X-TARGETDURATION:2\nno-extinf.ts\n").unwrap_err(),
            PlaylistError::BadLine { line: 3, .. }
        ));
        assert_eq!(parse(&[0xff, 0xfe]).unwrap_err(), PlaylistError::NotUtf8);
    }

    #[test]
    fn multivariant_is_recognised() {
        let text = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1000,RESOLUTION=320x240\nstream_0.m3u8\n";
        assert!(matches!(
            parse(text.as_bytes()).unwrap(),
            SourcePlaylist::Multivariant(_)
        ));
    }
}
