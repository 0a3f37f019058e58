//! The store's media playlist, read into a model that keeps every tag it does not interpret.
//!
//! `m3u8-rs` validates the playlist; a line scan keeps the exact text of each tag (m3u8-rs 6.0.1
//! loses or moves tags when it writes a playlist back, and keeps EXTINF as `f32`). Accepts
//! ffmpeg's PDT-after-EXTINF order: tags between two URIs belong to the second.

use chrono::DateTime;

use crate::error::FilterError;

/// One segment of the store playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub sequence: u64,
    pub duration: f64,
    /// EXTINF duration exactly as the store wrote it.
    pub duration_text: String,
    pub title: String,
    /// Program date time (epoch ms): the playlist's own or extrapolated from the segment before.
    pub pdt_ms: Option<i64>,
    pub discontinuity: bool,
    /// Discontinuity sequence number of this segment.
    pub disc_seq: u64,
    /// The source's `EXT-X-KEY` line in effect for this segment, if any.
    pub source_key: Option<String>,
    /// fMP4: URI of the `EXT-X-MAP` (initialization segment) in effect for this segment.
    pub map: Option<String>,
    /// Other tags before the URI, verbatim and in order (cues, DATERANGE, …).
    pub tags: Vec<String>,
    /// URI as listed (`{sequence}.{ext}` in the store's view).
    pub uri: String,
}

impl Segment {
    /// End of the segment in epoch ms.
    pub fn end_ms(&self) -> Option<i64> {
        self.pdt_ms
            .map(|p| p + (self.duration * 1000.0).round() as i64)
    }

    /// File extension of the URI (`ts`).
    pub fn ext(&self) -> &str {
        let name = self.uri.split(['?', '#']).next().unwrap_or("");
        name.rsplit_once('.').map_or("ts", |(_, e)| e)
    }
}

/// A parsed media playlist.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MediaPlaylist {
    pub version: u32,
    pub target_duration: u64,
    pub media_sequence: u64,
    pub discontinuity_sequence: u64,
    pub ended: bool,
    /// Playlist-level tags kept verbatim (`EXT-X-INDEPENDENT-SEGMENTS`, `EXT-X-START`, unknown).
    pub header_tags: Vec<String>,
    pub segments: Vec<Segment>,
    /// Tags after the last segment, verbatim (except `EXT-X-ENDLIST`, tracked in `ended`).
    pub trailing_tags: Vec<String>,
}

/// Tags this module interprets and regenerates.
const HEADER_REGENERATED: &[&str] = &[
    "#EXTM3U",
    "#EXT-X-VERSION",
    "#EXT-X-TARGETDURATION",
    "#EXT-X-MEDIA-SEQUENCE",
    "#EXT-X-DISCONTINUITY-SEQUENCE",
    "#EXT-X-PLAYLIST-TYPE",
    "#EXT-X-ENDLIST",
];
/// Playlist-level tags kept in the header.
const HEADER_KEPT: &[&str] = &[
    "#EXT-X-INDEPENDENT-SEGMENTS",
    "#EXT-X-START",
    "#EXT-X-ALLOW-CACHE",
    "#EXT-X-SERVER-CONTROL",
    "#EXT-X-PART-INF",
];

fn tag_name(line: &str) -> &str {
    line.split(':').next().unwrap_or(line)
}

fn bad(why: String) -> FilterError {
    FilterError::BadGateway(format!("the store sent an unusable media playlist: {why}"))
}

/// Parses the store's media playlist.
pub fn parse(bytes: &[u8]) -> Result<MediaPlaylist, FilterError> {
    let text = std::str::from_utf8(bytes).map_err(|_| bad("not UTF-8".into()))?;
    let parsed = m3u8_rs::parse_media_playlist_res(bytes)
        .map_err(|_| bad("m3u8-rs cannot parse it".into()))?;
    if !text.starts_with("#EXTM3U") {
        return Err(bad("no #EXTM3U".into()));
    }
    let mut pl = MediaPlaylist {
        version: parsed.version.unwrap_or(3) as u32,
        target_duration: parsed.target_duration,
        media_sequence: parsed.media_sequence,
        discontinuity_sequence: parsed.discontinuity_sequence,
        ended: parsed.end_list,
        ..Default::default()
    };
    let mut pending: Vec<String> = Vec::new();
    let mut extinf: Option<(f64, String, String)> = None;
    let mut pdt: Option<i64> = None;
    let mut discontinuity = false;
    let mut disc_seq = pl.discontinuity_sequence;
    let mut key: Option<String> = None;
    let mut map: Option<String> = None;
    let mut seen_segment_tag = false;
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        if !line.starts_with('#') {
            let (duration, duration_text, title) = extinf
                .take()
                .ok_or_else(|| bad(format!("URI {line} without #EXTINF")))?;
            if discontinuity {
                disc_seq += 1;
            }
            let prev = pl.segments.last();
            let pdt_ms = pdt
                .take()
                .or_else(|| prev.filter(|_| !discontinuity).and_then(Segment::end_ms));
            pl.segments.push(Segment {
                sequence: pl.media_sequence + pl.segments.len() as u64,
                duration,
                duration_text,
                title,
                pdt_ms,
                discontinuity,
                disc_seq,
                source_key: key.clone(),
                map: map.clone(),
                tags: std::mem::take(&mut pending),
                uri: line.to_owned(),
            });
            discontinuity = false;
            continue;
        }
        if !line.starts_with("#EXT") {
            // A comment: keep it with what follows.
            pending.push(line.to_owned());
            continue;
        }
        let name = tag_name(line);
        if let Some(rest) = line.strip_prefix("#EXTINF:") {
            let (d, title) = rest.split_once(',').unwrap_or((rest, ""));
            let duration: f64 = d
                .trim()
                .parse()
                .map_err(|_| bad(format!("EXTINF '{d}' is not a number")))?;
            extinf = Some((duration, d.trim().to_owned(), title.to_owned()));
            seen_segment_tag = true;
        } else if let Some(rest) = line.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
            let t = DateTime::parse_from_rfc3339(rest.trim())
                .or_else(|_| DateTime::parse_from_str(rest.trim(), "%Y-%m-%dT%H:%M:%S%.f%z"))
                .map_err(|_| bad(format!("PROGRAM-DATE-TIME '{rest}'")))?;
            pdt = Some(t.timestamp_millis());
            seen_segment_tag = true;
        } else if line == "#EXT-X-DISCONTINUITY" {
            discontinuity = true;
            seen_segment_tag = true;
        } else if let Some(attrs) = line.strip_prefix("#EXT-X-MAP:") {
            let uri = attrs
                .split_once("URI=\"")
                .and_then(|(_, rest)| rest.split_once('"'))
                .map(|(uri, _)| uri.to_owned())
                .filter(|u| !u.is_empty())
                .ok_or_else(|| bad(format!("{line}: no URI")))?;
            map = Some(uri);
            seen_segment_tag = true;
        } else if name == "#EXT-X-KEY" {
            key = (!line.contains("METHOD=NONE")).then(|| line.to_owned());
            seen_segment_tag = true;
        } else if HEADER_REGENERATED.contains(&name) {
            // Interpreted above through m3u8-rs.
        } else if HEADER_KEPT.contains(&name) && !seen_segment_tag {
            pl.header_tags.push(line.to_owned());
        } else {
            pending.push(line.to_owned());
            seen_segment_tag = true;
        }
    }
    if pl.segments.len() != parsed.segments.len() {
        return Err(bad(format!(
            "{} URIs but m3u8-rs found {} segments",
            pl.segments.len(),
            parsed.segments.len()
        )));
    }
    pl.trailing_tags = pending;
    Ok(pl)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn keeps_tags_and_computes_sequences() {
        let text = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:10\n\
#EXT-X-DISCONTINUITY-SEQUENCE:4\n#EXT-X-INDEPENDENT-SEGMENTS\n\
#EXTINF:2.000000,\n#EXT-X-PROGRAM-DATE-TIME:2026-11-25T14:00:00.000+0000\n10.ts\n\
#EXT-X-CUE-OUT:30\n#EXTINF:1.960000,title\n11.ts\n\
#EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME:2026-11-25T15:00:00.000Z\n#EXTINF:2.000000,\n12.ts\n\
#EXT-X-RENDITION-REPORT:URI=\"x\"\n";
        let pl = parse(text.as_bytes()).unwrap();
        assert_eq!(pl.header_tags, vec!["#EXT-X-INDEPENDENT-SEGMENTS"]);
        assert_eq!(pl.segments.len(), 3);
        assert_eq!(pl.segments[1].sequence, 11);
        assert_eq!(pl.segments[1].tags, vec!["#EXT-X-CUE-OUT:30"]);
        assert_eq!(pl.segments[1].duration_text, "1.960000");
        assert_eq!(pl.segments[1].title, "title");
        assert_eq!(
            pl.segments[1].pdt_ms,
            Some(1_795_615_202_000),
            "extrapolated"
        );
        assert_eq!(pl.segments[2].disc_seq, 5);
        assert!(pl.segments[2].discontinuity);
        assert_eq!(pl.segments[2].pdt_ms, Some(1_795_618_800_000));
        assert_eq!(pl.trailing_tags, vec!["#EXT-X-RENDITION-REPORT:URI=\"x\""]);
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn garbage_is_a_bad_gateway() {
        assert_eq!(parse(b"<html>").unwrap_err().status(), 502);
        assert_eq!(parse(&[0xff]).unwrap_err().status(), 502);
    }
}
