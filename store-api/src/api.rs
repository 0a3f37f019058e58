//! The store's internal API, toward the filter: its paths, the URIs inside its playlists, its
//! headers and content types.
//!
//! | path | answer |
//! | --- | --- |
//! | `/store/v1/{channel}/index.m3u8` | multivariant playlist; variant URIs [`variant_uri`] |
//! | `/store/v1/{channel}/status` | JSON status of the channel |
//! | `/store/v1/{channel}/{rendition}/index.m3u8` | media playlist; segment URIs [`segment_uri`], maps [`init_uri`] |
//! | `/store/v1/{channel}/{rendition}/{sequence}.{ext}` | a segment, as the encoder sent it |
//! | `/store/v1/{channel}/{rendition}/at/{epoch-ms}.{ext}` | the segment that starts at that program date time |
//! | `/store/v1/{channel}/{rendition}/init-{id}.mp4` | an fMP4 initialization segment |
//! | `/store/v1/{channel}/{rendition}/init.mp4` | the newest initialization segment |
//!
//! [`StorePath`] is each of them; its `Display` writes the path and [`StorePath::parse`] reads
//! one back (the path only, without the query). A router that matches the directories itself
//! reads the last part with [`parse_rendition_file`] and [`parse_segment_at_file`].

use std::fmt;

/// Where the internal API lives.
pub const PREFIX: &str = "/store/v1/";

/// On segments: the segment's program date time, `YYYY-MM-DDTHH:MM:SS.mmmZ`
/// ([`crate::format_pdt`], read back with [`crate::parse_pdt`]).
pub const PROGRAM_DATE_TIME_HEADER: &str = "x-edgepack-program-date-time";
/// On segments: the segment's sequence number in the store (decimal).
pub const SEQUENCE_HEADER: &str = "x-edgepack-sequence";
/// On segments: the segment's duration in seconds, six decimals (`2.000000`).
pub const DURATION_HEADER: &str = "x-edgepack-duration";
/// On fMP4 segments: the id of the initialization segment the segment needs
/// (`{rendition}/init-{id}.mp4`).
pub const INIT_HEADER: &str = "x-edgepack-init";
/// The extension that asks for a segment in whatever container it was ingested (`{sequence}.media`,
/// `at/{epoch-ms}.media`): the answer's content type says which (`video/mp2t`, `video/mp4`,
/// `text/vtt`). For a client that repackages either kind of ingest.
pub const ANY_EXT: &str = "media";
/// On segments: the input (`1` or `2`) whose copy was served.
pub const SERVED_INPUT_HEADER: &str = "x-edgepack-served-input";
/// On every answer about a channel that has an active input: that input (`1` or `2`).
pub const ACTIVE_INPUT_HEADER: &str = "x-edgepack-active-input";
/// On playlists, segments and initialization segments: a quoted validator; a request with a
/// matching `if-none-match` is answered 304.
pub const ETAG_HEADER: &str = "etag";

/// An attribute the store adds to each `EXT-X-MEDIA` of its multivariant playlist that names a
/// rendition it holds: that rendition's measured peak bit rate (bits/s over its newest 30
/// segments). HLS has no bandwidth for alternative renditions; DASH and Smooth Streaming state
/// one. The filter reads it and never shows it to viewers.
pub const MEDIA_BANDWIDTH_ATTRIBUTE: &str = "X-EDGEPACK-BANDWIDTH";

/// Content type of playlists.
pub const PLAYLIST_CONTENT_TYPE: &str = "application/vnd.apple.mpegurl";
/// Content type of `status`.
pub const STATUS_CONTENT_TYPE: &str = "application/json";

/// Whether a file is WebVTT (WebVTT §4.1): an optional UTF-8 byte order mark, then `WEBVTT`
/// alone or followed by a space, tab or line end. The store's ingest sniffing and the filter's
/// subtitle answers judge by this one rule.
pub fn is_webvtt(head: &[u8]) -> bool {
    let text = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    text.strip_prefix(b"WEBVTT")
        .is_some_and(|rest| matches!(rest.first(), None | Some(b' ' | b'\t' | b'\n' | b'\r')))
}

/// Content type of a segment by its extension.
pub fn content_type(ext: &str) -> &'static str {
    match ext {
        "ts" => "video/mp2t",
        "aac" => "audio/aac",
        "m4s" | "mp4" => "video/mp4",
        "vtt" => "text/vtt",
        "m3u8" => PLAYLIST_CONTENT_TYPE,
        _ => "application/octet-stream",
    }
}

/// One path of the internal API; the strings borrow from the parsed path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorePath<'a> {
    /// `{channel}/index.m3u8`
    Multivariant { channel: &'a str },
    /// `{channel}/status`
    Status { channel: &'a str },
    /// `{channel}/{rendition}/index.m3u8`
    MediaPlaylist {
        channel: &'a str,
        rendition: &'a str,
    },
    /// `{channel}/{rendition}/{sequence}.{ext}`
    Segment {
        channel: &'a str,
        rendition: &'a str,
        sequence: u64,
        ext: &'a str,
    },
    /// `{channel}/{rendition}/at/{pdt_ms}.{ext}`
    SegmentAt {
        channel: &'a str,
        rendition: &'a str,
        pdt_ms: i64,
        ext: &'a str,
    },
    /// `{channel}/{rendition}/init-{id}.mp4`
    Init {
        channel: &'a str,
        rendition: &'a str,
        id: &'a str,
    },
    /// `{channel}/{rendition}/init.mp4`
    LatestInit {
        channel: &'a str,
        rendition: &'a str,
    },
}

/// Why a path is not one of the internal API's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("no such path '{path}'; the store API is /store/v1/{{channel}}/…")]
    NotStoreApi { path: String },
    /// Under a channel, but no file the store serves; the channel is named so that an unknown
    /// channel can be reported first.
    #[error(
        "no such path '{path}'; use index.m3u8, status, {{rendition}}/index.m3u8, {{rendition}}/{{sequence}}.{{ext}}, {{rendition}}/at/{{epoch-ms}}.{{ext}} or {{rendition}}/init.mp4"
    )]
    UnknownFile { path: String, channel: String },
}

impl<'a> StorePath<'a> {
    /// Reads a path of the internal API (without its query).
    pub fn parse(path: &'a str) -> Result<Self, PathError> {
        let rest = path
            .strip_prefix(PREFIX)
            .ok_or_else(|| PathError::NotStoreApi {
                path: path.to_owned(),
            })?;
        let (channel, file) = rest.split_once('/').unwrap_or((rest, ""));
        if channel.is_empty() {
            return Err(PathError::NotStoreApi {
                path: path.to_owned(),
            });
        }
        Self::under(channel, file).ok_or_else(|| PathError::UnknownFile {
            path: path.to_owned(),
            channel: channel.to_owned(),
        })
    }

    fn under(channel: &'a str, file: &'a str) -> Option<Self> {
        let parts: [Option<&str>; 4] = {
            let mut it = file.split('/');
            [it.next(), it.next(), it.next(), it.next()]
        };
        Some(match parts {
            [Some("index.m3u8"), None, ..] => StorePath::Multivariant { channel },
            [Some("status"), None, ..] => StorePath::Status { channel },
            [Some(rendition), Some(file), None, _] if !rendition.is_empty() => {
                match parse_rendition_file(file)? {
                    RenditionFile::MediaPlaylist => StorePath::MediaPlaylist { channel, rendition },
                    RenditionFile::LatestInit => StorePath::LatestInit { channel, rendition },
                    RenditionFile::Init { id } => StorePath::Init {
                        channel,
                        rendition,
                        id,
                    },
                    RenditionFile::Segment { sequence, ext } => StorePath::Segment {
                        channel,
                        rendition,
                        sequence,
                        ext,
                    },
                }
            }
            [Some(rendition), Some("at"), Some(file), None] if !rendition.is_empty() => {
                let (pdt_ms, ext) = parse_segment_at_file(file)?;
                StorePath::SegmentAt {
                    channel,
                    rendition,
                    pdt_ms,
                    ext,
                }
            }
            _ => return None,
        })
    }

    /// The channel the path is about.
    pub fn channel(&self) -> &'a str {
        match *self {
            StorePath::Multivariant { channel }
            | StorePath::Status { channel }
            | StorePath::MediaPlaylist { channel, .. }
            | StorePath::Segment { channel, .. }
            | StorePath::SegmentAt { channel, .. }
            | StorePath::Init { channel, .. }
            | StorePath::LatestInit { channel, .. } => channel,
        }
    }

    /// The rendition the path is about, if any.
    pub fn rendition(&self) -> Option<&'a str> {
        match *self {
            StorePath::Multivariant { .. } | StorePath::Status { .. } => None,
            StorePath::MediaPlaylist { rendition, .. }
            | StorePath::Segment { rendition, .. }
            | StorePath::SegmentAt { rendition, .. }
            | StorePath::Init { rendition, .. }
            | StorePath::LatestInit { rendition, .. } => Some(rendition),
        }
    }
}

impl fmt::Display for StorePath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}/", self.channel())?;
        match *self {
            StorePath::Multivariant { .. } => f.write_str("index.m3u8"),
            StorePath::Status { .. } => f.write_str("status"),
            StorePath::MediaPlaylist { rendition, .. } => write!(f, "{rendition}/index.m3u8"),
            StorePath::Segment {
                rendition,
                sequence,
                ext,
                ..
            } => write!(f, "{rendition}/{sequence}.{ext}"),
            StorePath::SegmentAt {
                rendition,
                pdt_ms,
                ext,
                ..
            } => write!(f, "{rendition}/at/{pdt_ms}.{ext}"),
            StorePath::Init { rendition, id, .. } => write!(f, "{rendition}/init-{id}.mp4"),
            StorePath::LatestInit { rendition, .. } => write!(f, "{rendition}/init.mp4"),
        }
    }
}

/// `/store/v1/{channel}/index.m3u8`
pub fn multivariant_path(channel: &str) -> String {
    StorePath::Multivariant { channel }.to_string()
}

/// `/store/v1/{channel}/status`
pub fn status_path(channel: &str) -> String {
    StorePath::Status { channel }.to_string()
}

/// `/store/v1/{channel}/{rendition}/index.m3u8`
pub fn media_playlist_path(channel: &str, rendition: &str) -> String {
    StorePath::MediaPlaylist { channel, rendition }.to_string()
}

/// `/store/v1/{channel}/{rendition}/{sequence}.{ext}`
pub fn segment_path(channel: &str, rendition: &str, sequence: u64, ext: &str) -> String {
    StorePath::Segment {
        channel,
        rendition,
        sequence,
        ext,
    }
    .to_string()
}

/// `/store/v1/{channel}/{rendition}/at/{pdt_ms}.{ext}`: the segment whose program date time is
/// `pdt_ms` (for clients that address segments by time, DASH `$Time$`).
pub fn segment_at_path(channel: &str, rendition: &str, pdt_ms: i64, ext: &str) -> String {
    StorePath::SegmentAt {
        channel,
        rendition,
        pdt_ms,
        ext,
    }
    .to_string()
}

/// `/store/v1/{channel}/{rendition}/init-{id}.mp4`
pub fn init_path(channel: &str, rendition: &str, id: &str) -> String {
    StorePath::Init {
        channel,
        rendition,
        id,
    }
    .to_string()
}

/// `/store/v1/{channel}/{rendition}/init.mp4`
pub fn latest_init_path(channel: &str, rendition: &str) -> String {
    StorePath::LatestInit { channel, rendition }.to_string()
}

/// A file under `/store/v1/{channel}/{rendition}/` (for a router that matches
/// `{channel}/{rendition}/{file}` itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenditionFile<'a> {
    /// `index.m3u8`
    MediaPlaylist,
    /// `init.mp4`
    LatestInit,
    /// `init-{id}.mp4`
    Init { id: &'a str },
    /// `{sequence}.{ext}`
    Segment { sequence: u64, ext: &'a str },
}

/// Reads the `{file}` of `/store/v1/{channel}/{rendition}/{file}`.
pub fn parse_rendition_file(file: &str) -> Option<RenditionFile<'_>> {
    Some(match file {
        "index.m3u8" => RenditionFile::MediaPlaylist,
        "init.mp4" => RenditionFile::LatestInit,
        _ => match parse_init_uri(file) {
            Some(id) => RenditionFile::Init { id },
            None => {
                let (sequence, ext) = parse_segment_uri(file)?;
                RenditionFile::Segment { sequence, ext }
            }
        },
    })
}

/// Reads the `{pdt_ms}.{ext}` of `/store/v1/{channel}/{rendition}/at/{pdt_ms}.{ext}`.
pub fn parse_segment_at_file(file: &str) -> Option<(i64, &str)> {
    let (ms, ext) = file.split_once('.')?;
    all_digits(ms.strip_prefix('-').unwrap_or(ms)).then_some(())?;
    Some((ms.parse().ok()?, non_empty(ext)?))
}

/// A variant's URI in the store's multivariant playlist: `{rendition}/index.m3u8`.
pub fn variant_uri(rendition: &str) -> String {
    format!("{rendition}/index.m3u8")
}

/// The rendition of a variant URI of the store's multivariant playlist.
pub fn parse_variant_uri(uri: &str) -> Option<&str> {
    uri.strip_suffix("/index.m3u8")
        .filter(|r| !r.is_empty() && !r.contains('/'))
}

/// A segment's URI in the store's media playlist: `{sequence}.{ext}`.
pub fn segment_uri(sequence: u64, ext: &str) -> String {
    format!("{sequence}.{ext}")
}

/// Sequence and extension of a segment URI of the store's media playlist.
pub fn parse_segment_uri(uri: &str) -> Option<(u64, &str)> {
    let (sequence, ext) = uri.split_once('.')?;
    all_digits(sequence).then_some(())?;
    Some((sequence.parse().ok()?, non_empty(ext)?))
}

/// An initialization segment's URI in the store's media playlist (`EXT-X-MAP`): `init-{id}.mp4`.
pub fn init_uri(id: &str) -> String {
    format!("init-{id}.mp4")
}

/// The id of an initialization segment URI of the store's media playlist.
pub fn parse_init_uri(uri: &str) -> Option<&str> {
    non_empty(uri.strip_prefix("init-")?.strip_suffix(".mp4")?)
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn non_empty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn every_path_reads_back_as_it_was_built() {
        let cases = [
            (multivariant_path("news"), "/store/v1/news/index.m3u8"),
            (status_path("news"), "/store/v1/news/status"),
            (
                media_playlist_path("news", "stream_0"),
                "/store/v1/news/stream_0/index.m3u8",
            ),
            (
                segment_path("news", "stream_0", 3, "ts"),
                "/store/v1/news/stream_0/3.ts",
            ),
            (
                segment_at_path("news", "stream_1", 1_795_615_200_000, "ts"),
                "/store/v1/news/stream_1/at/1795615200000.ts",
            ),
            (
                segment_at_path("news", "stream_1", -2_000, "ts"),
                "/store/v1/news/stream_1/at/-2000.ts",
            ),
            (
                init_path("news", "stream_0", "e596aaddc6b8"),
                "/store/v1/news/stream_0/init-e596aaddc6b8.mp4",
            ),
            (
                latest_init_path("news", "stream_0"),
                "/store/v1/news/stream_0/init.mp4",
            ),
        ];
        for (built, expected) in cases {
            assert_eq!(built, expected);
            let parsed = StorePath::parse(&built).unwrap();
            assert_eq!(parsed.to_string(), built);
            assert_eq!(parsed.channel(), "news");
        }
        assert_eq!(
            StorePath::parse("/store/v1/news/hd/12.m4s"),
            Ok(StorePath::Segment {
                channel: "news",
                rendition: "hd",
                sequence: 12,
                ext: "m4s"
            })
        );
        assert_eq!(
            StorePath::parse("/store/v1/news/hd/at/5.ts")
                .unwrap()
                .rendition(),
            Some("hd")
        );
        assert_eq!(
            StorePath::parse("/store/v1/news/status")
                .unwrap()
                .rendition(),
            None
        );
    }

    #[test]
    fn other_paths_are_refused_with_the_stores_message() {
        for path in [
            "/out/v1/news/index.m3u8",
            "/store/v1/",
            "/store/v1//index.m3u8",
        ] {
            let e = StorePath::parse(path).unwrap_err();
            assert!(matches!(e, PathError::NotStoreApi { .. }), "{path}");
            assert_eq!(
                e.to_string(),
                format!("no such path '{path}'; the store API is /store/v1/{{channel}}/…")
            );
        }
        for path in [
            "/store/v1/news",
            "/store/v1/news/",
            "/store/v1/news/hd",
            "/store/v1/news/hd/",
            "/store/v1/news/hd/x.ts",
            "/store/v1/news/hd/+1.ts",
            "/store/v1/news/hd/1.",
            "/store/v1/news/hd/99999999999999999999.ts",
            "/store/v1/news/hd/init-.mp4",
            "/store/v1/news/hd/at/x.ts",
            "/store/v1/news/hd/at/5",
            "/store/v1/news/hd/at/5.ts/more",
            "/store/v1/news//index.m3u8",
            "/store/v1/news/hd/index.m3u8/x",
        ] {
            let e = StorePath::parse(path).unwrap_err();
            assert_eq!(
                e,
                PathError::UnknownFile {
                    path: path.to_owned(),
                    channel: "news".to_owned()
                },
                "{path}"
            );
        }
        assert!(
            StorePath::parse("/store/v1/news/x")
                .unwrap_err()
                .to_string()
                .ends_with("{rendition}/at/{epoch-ms}.{ext} or {rendition}/init.mp4")
        );
    }

    #[test]
    fn files_for_a_router_that_matches_the_directories_itself() {
        assert_eq!(
            parse_rendition_file("index.m3u8"),
            Some(RenditionFile::MediaPlaylist)
        );
        assert_eq!(
            parse_rendition_file("init.mp4"),
            Some(RenditionFile::LatestInit)
        );
        assert_eq!(
            parse_rendition_file("init-ab.mp4"),
            Some(RenditionFile::Init { id: "ab" })
        );
        assert_eq!(
            parse_rendition_file("5.m4s"),
            Some(RenditionFile::Segment {
                sequence: 5,
                ext: "m4s"
            })
        );
        assert_eq!(parse_rendition_file("status"), None);
        assert_eq!(parse_segment_at_file("-5.ts"), Some((-5, "ts")));
        assert_eq!(parse_segment_at_file("5.ts"), Some((5, "ts")));
        assert_eq!(parse_segment_at_file("+5.ts"), None);
        assert_eq!(parse_segment_at_file("5"), None);
    }

    #[test]
    fn uris_inside_the_stores_playlists() {
        assert_eq!(variant_uri("stream_0"), "stream_0/index.m3u8");
        assert_eq!(parse_variant_uri("stream_0/index.m3u8"), Some("stream_0"));
        assert_eq!(parse_variant_uri("a/b/index.m3u8"), None);
        assert_eq!(segment_uri(7, "ts"), "7.ts");
        assert_eq!(parse_segment_uri("7.ts"), Some((7, "ts")));
        assert_eq!(parse_segment_uri("seg7.ts"), None);
        assert_eq!(init_uri("ab"), "init-ab.mp4");
        assert_eq!(parse_init_uri("init-ab.mp4"), Some("ab"));
        assert_eq!(parse_init_uri("init.mp4"), None);
    }

    #[test]
    fn content_types() {
        assert_eq!(content_type("ts"), "video/mp2t");
        assert_eq!(content_type("m4s"), "video/mp4");
        assert_eq!(content_type("mp4"), "video/mp4");
        assert_eq!(content_type("aac"), "audio/aac");
        assert_eq!(content_type("vtt"), "text/vtt");
        assert_eq!(content_type("m3u8"), PLAYLIST_CONTENT_TYPE);
        assert_eq!(content_type("bin"), "application/octet-stream");
    }
}
