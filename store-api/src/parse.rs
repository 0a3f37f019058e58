//! The single-pass parser of media playlists: one line scan, no per-line allocation (the model
//! borrows from the text).
//!
//! Tags between two URIs belong to the second, whatever their order: ffmpeg writes
//! `EXT-X-PROGRAM-DATE-TIME` after `EXTINF`, the store before it. `EXT-X-KEY`, `EXT-X-MAP` stay
//! in effect until the next one; `EXT-X-PROGRAM-DATE-TIME`, `EXT-X-DISCONTINUITY` and `EXTINF`
//! apply to the next URI only. Byte ranges are refused: the model (and the store) keeps whole
//! files only.

use std::borrow::Cow;

use crate::pdt;
use crate::playlist::{
    HEADER_TAGS, MediaPlaylist, PlaylistType, RunStart, Segment, Tag, ViewContext, tag_name,
};

/// Why a playlist was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlaylistError {
    #[error("playlist is not valid UTF-8")]
    NotUtf8,
    #[error("playlist does not start with #EXTM3U")]
    NoHeader,
    /// Only from [`parse_ingest`].
    #[error("media playlist has no #EXT-X-TARGETDURATION")]
    NoTargetDuration,
    #[error("line {line}: {why}")]
    BadLine { line: usize, why: LineError },
    #[error("line {line}: {tag} is not supported for ingest (segments must be whole files)")]
    Unsupported { line: usize, tag: &'static str },
}

/// What is wrong with one line.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LineError {
    #[error("EXTINF duration '{0}' is not a number")]
    DurationNotANumber(String),
    /// Durations must be finite, positive and under an hour.
    #[error("EXTINF duration {0} is out of range")]
    DurationOutOfRange(f64),
    #[error("PROGRAM-DATE-TIME '{0}' is not ISO 8601")]
    BadProgramDateTime(String),
    #[error("EXT-X-MAP without a quoted URI")]
    MapWithoutUri,
    #[error("segment URI without a preceding #EXTINF")]
    UriWithoutExtinf,
    #[error("{tag} '{value}' is not a whole number")]
    NotAWholeNumber { tag: &'static str, value: String },
    #[error("EXT-X-PLAYLIST-TYPE '{0}' is neither EVENT nor VOD")]
    BadPlaylistType(String),
    /// A number past what the store can time or number by (found by a probe and by fuzzing:
    /// a target duration of 2^64 − 1 overflowed the failover timer, a media sequence near
    /// 2^64 the numbering).
    #[error("{tag} {value} is over the limit of {max}")]
    OverLimit {
        tag: &'static str,
        value: u64,
        max: u64,
    },
}

/// Longest `EXTINF` accepted, in seconds (exclusive).
pub const MAX_SEGMENT_DURATION: f64 = 3600.0;

/// Largest `EXT-X-TARGETDURATION` accepted, in seconds.
pub const MAX_TARGET_DURATION: u64 = 3600;

/// Largest media or discontinuity sequence number accepted: 2^53 − 1, the largest whole number
/// every player (JavaScript's numbers) holds exactly; epoch-based numbering (ffmpeg's
/// `-hls_start_number_source epoch_us`) stays far below it.
pub const MAX_SEQUENCE: u64 = (1 << 53) - 1;

/// Parses a media playlist (the store's view, or any upload; see [`parse_ingest`] for the
/// store's extra checks). A leading UTF-8 byte order mark is skipped.
pub fn parse(bytes: &[u8]) -> Result<MediaPlaylist<'_>, PlaylistError> {
    let text = std::str::from_utf8(bytes).map_err(|_| PlaylistError::NotUtf8)?;
    parse_str(text)
}

/// [`parse`] for text already known to be UTF-8.
pub fn parse_str(text: &str) -> Result<MediaPlaylist<'_>, PlaylistError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if !text.starts_with(Tag::ExtM3u.name()) {
        return Err(PlaylistError::NoHeader);
    }
    let mut scan = Scan {
        pl: MediaPlaylist {
            segments: Vec::with_capacity(text.matches(Tag::Inf.name()).count()),
            ..MediaPlaylist::default()
        },
        ..Scan::default()
    };
    // Line 1 is the `#EXTM3U` just checked.
    for (i, raw) in text.lines().enumerate().skip(1) {
        let line = raw.trim();
        if !line.is_empty() {
            scan.line(line, i + 1)?;
        }
    }
    let mut pl = scan.pl;
    pl.trailing_tags = scan.pending;
    pl.renumber();
    Ok(pl)
}

/// Parses an encoder's upload: [`parse`], and it must have a non-zero `EXT-X-TARGETDURATION`
/// (the store's failover and pruning are timed from it).
pub fn parse_ingest(bytes: &[u8]) -> Result<MediaPlaylist<'_>, PlaylistError> {
    let pl = parse(bytes)?;
    if pl.target_duration.is_none_or(|t| t == 0) {
        return Err(PlaylistError::NoTargetDuration);
    }
    Ok(pl)
}

/// True when `text` is a multivariant playlist: its first tag that only one of the two kinds
/// has is a multivariant one (the rule m3u8-rs applies; neither kind: media).
pub fn is_multivariant(text: &str) -> bool {
    for line in text.lines() {
        match tag_name(line.trim()) {
            "#EXT-X-STREAM-INF"
            | "#EXT-X-I-FRAME-STREAM-INF"
            | "#EXT-X-MEDIA"
            | "#EXT-X-SESSION-KEY"
            | "#EXT-X-SESSION-DATA" => return true,
            "#EXT-X-BYTERANGE" | "#EXT-X-I-FRAMES-ONLY" | "#EXT-X-DATERANGE" => return false,
            name if Tag::of(name).is_some_and(|t| !matches!(t, Tag::ExtM3u | Tag::Version)) => {
                return false;
            }
            _ => {}
        }
    }
    false
}

/// The scan's state between two URIs.
#[derive(Default)]
struct Scan<'a> {
    pl: MediaPlaylist<'a>,
    /// Verbatim tags since the last URI.
    pending: Vec<Cow<'a, str>>,
    /// Duration, its text, title.
    extinf: Option<(f64, &'a str, &'a str)>,
    pdt: Option<i64>,
    discontinuity: bool,
    key: Option<&'a str>,
    map: Option<&'a str>,
}

impl<'a> Scan<'a> {
    fn line(&mut self, line: &'a str, line_no: usize) -> Result<(), PlaylistError> {
        let bad = |why| PlaylistError::BadLine { line: line_no, why };
        if !line.starts_with('#') {
            return self.uri(line).map_err(bad);
        }
        if !line.starts_with("#EXT") {
            // A comment: not part of the playlist.
            return Ok(());
        }
        let (name, value) = line.split_once(':').unwrap_or((line, ""));
        let Some(tag) = Tag::of(name) else {
            return self.verbatim(line, name, line_no);
        };
        match tag {
            Tag::ExtM3u => {}
            Tag::Version => self.pl.version = Some(whole(tag, value).map_err(bad)?),
            Tag::TargetDuration => {
                self.pl.target_duration =
                    Some(bounded(tag, value, MAX_TARGET_DURATION).map_err(bad)?);
            }
            Tag::MediaSequence => {
                self.pl.media_sequence = bounded(tag, value, MAX_SEQUENCE).map_err(bad)?;
            }
            Tag::DiscontinuitySequence => {
                self.pl.discontinuity_sequence = bounded(tag, value, MAX_SEQUENCE).map_err(bad)?;
            }
            Tag::PlaylistType => {
                self.pl.playlist_type = Some(match value.trim() {
                    "EVENT" => PlaylistType::Event,
                    "VOD" => PlaylistType::Vod,
                    other => return Err(bad(LineError::BadPlaylistType(other.to_owned()))),
                });
            }
            Tag::EndList => self.pl.ended = true,
            Tag::Inf => self.extinf = Some(extinf(value).map_err(bad)?),
            Tag::ProgramDateTime => {
                let ms = pdt::parse_pdt(value.trim())
                    .ok_or_else(|| bad(LineError::BadProgramDateTime(value.to_owned())))?;
                self.pdt = Some(ms);
            }
            Tag::Discontinuity => self.discontinuity = true,
            Tag::Map => {
                if attribute(value, "BYTERANGE").is_some() {
                    return Err(PlaylistError::Unsupported {
                        line: line_no,
                        tag: "EXT-X-MAP with BYTERANGE",
                    });
                }
                let uri = attribute(value, "URI")
                    .and_then(|v| v.strip_prefix('"')?.strip_suffix('"'))
                    .filter(|u| !u.is_empty())
                    .ok_or_else(|| bad(LineError::MapWithoutUri))?;
                self.map = Some(uri);
            }
            Tag::Key => self.key = (attribute(value, "METHOD") != Some("NONE")).then_some(line),
            Tag::View => self.pl.view = Some(view_context(value).map_err(bad)?),
        }
        Ok(())
    }

    /// A tag the model does not interpret.
    fn verbatim(&mut self, line: &'a str, name: &str, line_no: usize) -> Result<(), PlaylistError> {
        if name == "#EXT-X-BYTERANGE" {
            return Err(PlaylistError::Unsupported {
                line: line_no,
                tag: "EXT-X-BYTERANGE",
            });
        }
        if HEADER_TAGS.contains(&name) {
            self.pl.header_tags.push(Cow::Borrowed(line));
        } else {
            self.pending.push(Cow::Borrowed(line));
        }
        Ok(())
    }

    fn uri(&mut self, uri: &'a str) -> Result<(), LineError> {
        let (duration, duration_text, title) =
            self.extinf.take().ok_or(LineError::UriWithoutExtinf)?;
        let discontinuity = std::mem::take(&mut self.discontinuity);
        let own_pdt = self.pdt.take();
        let pdt_ms = own_pdt.or_else(|| {
            let previous = self.pl.segments.last()?;
            pdt::extrapolate_pdt_ms(previous.pdt_ms?, previous.duration, discontinuity)
        });
        self.pl.segments.push(Segment {
            // Numbered once the header is known for sure (`renumber`).
            sequence: 0,
            duration,
            duration_text: Cow::Borrowed(duration_text),
            title: Cow::Borrowed(title),
            pdt_ms,
            pdt_tagged: own_pdt.is_some(),
            discontinuity,
            disc_seq: 0,
            source_key: self.key.map(Cow::Borrowed),
            map: self.map.map(Cow::Borrowed),
            tags: std::mem::take(&mut self.pending),
            uri: Cow::Borrowed(uri),
        });
        Ok(())
    }
}

/// `#EXT-X-EDGEPACK-VIEW:HISTORY-START=<ms>,RUN-START=<seq>,RUN-START-DATE=<ms>,…`.
fn view_context(value: &str) -> Result<ViewContext, LineError> {
    let number = |key: &str| -> Result<Option<i64>, LineError> {
        attribute(value, key)
            .map(|v| {
                v.parse().map_err(|_| LineError::NotAWholeNumber {
                    tag: "EXT-X-EDGEPACK-VIEW",
                    value: v.to_owned(),
                })
            })
            .transpose()
    };
    let run_start = number("RUN-START")?
        .map(|sequence| -> Result<RunStart, LineError> {
            Ok(RunStart {
                sequence: u64::try_from(sequence).map_err(|_| LineError::NotAWholeNumber {
                    tag: "EXT-X-EDGEPACK-VIEW",
                    value: sequence.to_string(),
                })?,
                pdt_ms: number("RUN-START-DATE")?,
                discontinuity: attribute(value, "RUN-START-DISCONTINUITY") == Some("YES"),
            })
        })
        .transpose()?;
    Ok(ViewContext {
        history_start_ms: number("HISTORY-START")?,
        run_start,
        last_received_ms: number("LAST-RECEIVED")?,
        channel_last_received_ms: number("CHANNEL-LAST-RECEIVED")?,
    })
}

fn whole<T: std::str::FromStr>(tag: Tag, value: &str) -> Result<T, LineError> {
    value
        .trim()
        .parse()
        .map_err(|_| LineError::NotAWholeNumber {
            tag: tag.name().trim_start_matches('#'),
            value: value.to_owned(),
        })
}

/// A whole number no larger than `max`.
fn bounded(tag: Tag, value: &str, max: u64) -> Result<u64, LineError> {
    let v: u64 = whole(tag, value)?;
    if v > max {
        return Err(LineError::OverLimit {
            tag: tag.name().trim_start_matches('#'),
            value: v,
            max,
        });
    }
    Ok(v)
}

/// `EXTINF:<duration>,[<title>]`.
fn extinf(value: &str) -> Result<(f64, &str, &str), LineError> {
    let (text, title) = value.split_once(',').unwrap_or((value, ""));
    let text = text.trim();
    let duration: f64 = text
        .parse()
        .map_err(|_| LineError::DurationNotANumber(text.to_owned()))?;
    if !(duration.is_finite() && duration > 0.0 && duration < MAX_SEGMENT_DURATION) {
        return Err(LineError::DurationOutOfRange(duration));
    }
    Ok((duration, text, title))
}

/// The value of `key` in an attribute list (`A=1,B="x,y"`), quotes included.
pub(crate) fn attribute<'v>(mut list: &'v str, key: &str) -> Option<&'v str> {
    while !list.is_empty() {
        let (name, rest) = list.split_once('=')?;
        let end = match rest.strip_prefix('"') {
            Some(quoted) => quoted.find('"').map_or(rest.len(), |i| i + 2),
            None => rest.find(',').unwrap_or(rest.len()),
        };
        let (value, rest) = rest.split_at_checked(end)?;
        if name.trim() == key {
            return Some(value);
        }
        list = rest.strip_prefix(',').unwrap_or(rest);
    }
    None
}

#[cfg(test)]
mod tests;
