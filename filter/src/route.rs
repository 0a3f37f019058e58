//! Egress paths: `/out/v1/{channel}/{endpoint}/…` → what is asked for, or "not ours".

use crate::error::FilterError;

/// What a viewer asks an endpoint for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Asset {
    /// `index.m3u8`
    Multivariant,
    /// `{rendition}/index.m3u8`
    Media { rendition: String },
    /// `{rendition}/{sequence}.{ext}`
    Segment {
        rendition: String,
        sequence: u64,
        ext: String,
    },
    /// `key/{key-id}`
    Key { key_id: String },
    /// `{rendition}/init-{id}.mp4`: an fMP4 initialization segment, as the playlist's EXT-X-MAP
    /// names it.
    Init { rendition: String, id: String },
    /// `{rendition}/init-ts{sequence}.mp4`: the initialization segment the filter builds from
    /// an MPEG-TS segment (cmaf endpoints over TS ingest).
    TsInit { rendition: String, sequence: u64 },
    /// `index.mpd`: the DASH manifest.
    Mpd,
    /// `{rendition}/v{time}.mp4` or `a{time}.mp4`: one track (video or audio) of the segment
    /// that starts at `time` (90 kHz ticks since the epoch, DASH `$Time$`), as a CMAF fragment.
    Track {
        rendition: String,
        track: TrackKind,
        time: u64,
    },
    /// `{rendition}/init-v{time}.mp4` or `init-a{time}.mp4`: the track's initialization
    /// segment, built from the segment at `time` (the first of its DASH period).
    TrackInit {
        rendition: String,
        track: TrackKind,
        time: u64,
    },
    /// `clearkey`: W3C ClearKey licenses; the POSTed request names the key ids.
    License,
    /// `Manifest` (or `index.ism/Manifest`): the Smooth Streaming client manifest.
    SmoothManifest,
    /// `QualityLevels({bitrate})/Fragments({stream}={time})` (also below `index.ism/`): one
    /// Smooth Streaming fragment; `time` in 10 MHz ticks (see [`crate::mss`]). The stream is
    /// `video`, `audio` (the variants' muxed audio) or `audio_{rendition}` (an alternative
    /// audio rendition: `rendition` is set).
    SmoothFragment {
        bitrate: u64,
        track: TrackKind,
        rendition: Option<String>,
        time: u64,
    },
}

/// The track of a DASH representation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackKind {
    Video,
    Audio,
    /// Subtitles: a WebVTT rendition's segments as WebVTT in fMP4 (`wvtt`).
    Text,
}

impl TrackKind {
    /// Its name in Smooth Streaming fragment URLs: `video` or `audio`.
    pub fn smooth_name(self) -> &'static str {
        match self {
            TrackKind::Video => "video",
            TrackKind::Audio => "audio",
            TrackKind::Text => "text",
        }
    }

    /// The letter of its file names: `v` or `a`.
    pub fn letter(self) -> char {
        match self {
            TrackKind::Video => 'v',
            TrackKind::Audio => 'a',
            TrackKind::Text => 't',
        }
    }

    /// DASH `SegmentTemplate@media` of this track under `dir`: `{dir}/v$Time$.mp4`.
    pub fn media_template(self, dir: &str) -> String {
        format!("{dir}/{}$Time$.mp4", self.letter())
    }

    /// DASH `SegmentTemplate@initialization` of this track under `dir`, built from the segment
    /// at `time`: `{dir}/init-v{time}.mp4`.
    pub fn init_template(self, dir: &str, time: i64) -> String {
        format!("{dir}/init-{}{time}.mp4", self.letter())
    }
}

impl Asset {
    /// The asset's path below `/out/v1/{channel}/{endpoint}/`: the inverse of [`route`].
    pub fn relative_path(&self) -> String {
        match self {
            Asset::Multivariant => "index.m3u8".into(),
            Asset::Mpd => "index.mpd".into(),
            Asset::License => "clearkey".into(),
            Asset::SmoothManifest => "Manifest".into(),
            Asset::SmoothFragment {
                bitrate,
                track,
                rendition,
                time,
            } => format!(
                "QualityLevels({bitrate})/Fragments({}={time})",
                smooth_stream_name(*track, rendition.as_deref())
            ),
            Asset::Key { key_id } => format!("key/{key_id}"),
            Asset::Media { rendition } => format!("{rendition}/index.m3u8"),
            Asset::Segment {
                rendition,
                sequence,
                ext,
            } => format!("{rendition}/{}", segment_file(*sequence, ext)),
            Asset::Init { rendition, id } => format!("{rendition}/init-{id}.mp4"),
            Asset::TsInit {
                rendition,
                sequence,
            } => format!("{rendition}/{}", ts_init_file(*sequence)),
            Asset::Track {
                rendition,
                track,
                time,
            } => format!("{rendition}/{}{time}.mp4", track.letter()),
            Asset::TrackInit {
                rendition,
                track,
                time,
            } => format!("{rendition}/init-{}{time}.mp4", track.letter()),
        }
    }
}

/// A segment's file name in a media playlist (relative to its rendition): `{sequence}.{ext}`.
pub fn segment_file(sequence: u64, ext: &str) -> String {
    format!("{sequence}.{ext}")
}

/// The initialization segment built from MPEG-TS segment `sequence` (cmaf endpoints), relative
/// to its rendition: `init-ts{sequence}.mp4`.
pub fn ts_init_file(sequence: u64) -> String {
    format!("init-ts{sequence}.mp4")
}

/// A key's URI as a media playlist lists it (relative to the rendition): `../key/{period}`.
pub fn key_uri_from_rendition(period: u64) -> String {
    format!("../key/{period}")
}

/// `/out/v1/{channel}/{endpoint}/`: the base of every URL of an endpoint.
pub fn endpoint_path(channel: &str, endpoint: &str) -> String {
    format!("{PREFIX}{channel}/{endpoint}/")
}

/// Absolute path of a key of an endpoint; key tokens are bound to it.
pub fn key_path(channel: &str, endpoint: &str, period: u64) -> String {
    format!("{PREFIX}{channel}/{endpoint}/key/{period}")
}

/// Absolute path of an endpoint's ClearKey license server; license tokens are bound to it.
pub fn license_path(channel: &str, endpoint: &str) -> String {
    format!("{PREFIX}{channel}/{endpoint}/clearkey")
}

/// Channel and endpoint named by an `/out/v1/{channel}/{endpoint}/…` path (with or without a
/// query), whether or not the rest is a valid asset: what metrics are labelled with.
pub fn channel_and_endpoint(path: &str) -> Option<(&str, &str)> {
    let mut parts = path.strip_prefix(PREFIX)?.split(['/', '?']);
    Some((parts.next()?, parts.next()?))
}

/// `{prefix}{digits}.mp4` → the number.
fn numbered(file: &str, prefix: &str) -> Option<u64> {
    file.strip_prefix(prefix)
        .and_then(|f| f.strip_suffix(".mp4"))
        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|n| n.parse::<u64>().ok())
}

/// The name of a Smooth Streaming stream (`StreamIndex@Name`, and in its fragment URLs):
/// `video`, `audio`, `audio_{rendition}` for an alternative audio rendition, or
/// `text_{rendition}` for a subtitle rendition.
pub fn smooth_stream_name(track: TrackKind, rendition: Option<&str>) -> String {
    match rendition {
        Some(r) => format!("{}_{r}", track.smooth_name()),
        None => track.smooth_name().to_owned(),
    }
}

/// `QualityLevels({bitrate})` + `Fragments({video|audio|audio_…}={time})` → the fragment.
fn smooth_fragment(levels: &str, fragments: &str) -> Option<Asset> {
    let digits = |n: &str| {
        (!n.is_empty() && n.len() <= 20 && n.bytes().all(|b| b.is_ascii_digit()))
            .then(|| n.parse::<u64>().ok())
            .flatten()
    };
    let bitrate = digits(levels.strip_prefix("QualityLevels(")?.strip_suffix(')')?)?;
    let (stream, time) = fragments
        .strip_prefix("Fragments(")?
        .strip_suffix(')')?
        .split_once('=')?;
    let (track, rendition) = match stream {
        "video" => (TrackKind::Video, None),
        "audio" => (TrackKind::Audio, None),
        other => {
            let (track, r) = match other.strip_prefix("audio_") {
                Some(r) => (TrackKind::Audio, r),
                None => (TrackKind::Text, other.strip_prefix("text_")?),
            };
            (track, Some(r).filter(|r| safe(r))?.to_owned().into())
        }
    };
    Some(Asset::SmoothFragment {
        bitrate,
        track,
        rendition,
        time: digits(time)?,
    })
}

/// A routed egress request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub channel: String,
    pub endpoint: String,
    pub asset: Asset,
}

impl Route {
    /// The absolute path of this asset: the inverse of [`route`].
    pub fn path(&self) -> String {
        format!(
            "{}{}",
            endpoint_path(&self.channel, &self.endpoint),
            self.asset.relative_path()
        )
    }
}

const PREFIX: &str = "/out/v1/";

fn safe(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 96
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Routes a path (without query). `Ok(None)`: not an edgepack path, pass it on untouched.
// Long on purpose: one match arm per URL shape, the grammar in one place (the builders beside it
// are its inverse).
pub fn route(path: &str) -> Result<Option<Route>, FilterError> {
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return Ok(None);
    };
    let not_found = || {
        FilterError::NotFound(format!(
            "no such edgepack path '{path}'; use /out/v1/{{channel}}/{{endpoint}}/index.m3u8, index.mpd or Manifest, …/{{rendition}}/index.m3u8, …/{{rendition}}/{{sequence}}.ts, …/{{rendition}}/init-{{id}}.mp4, …/key/{{key-id}} or …/clearkey"
        ))
    };
    let parts: Vec<&str> = rest.split('/').collect();
    let (channel, endpoint) = match parts.as_slice() {
        [c, e, ..] if safe(c) && safe(e) => ((*c).to_owned(), (*e).to_owned()),
        _ => return Err(not_found()),
    };
    let asset = match &parts[2..] {
        ["index.m3u8"] => Asset::Multivariant,
        ["index.mpd"] => Asset::Mpd,
        ["key", id] if safe(id) => Asset::Key {
            key_id: (*id).to_owned(),
        },
        ["clearkey"] => Asset::License,
        ["Manifest"] | ["index.ism", "Manifest"] => Asset::SmoothManifest,
        [levels, fragments] | ["index.ism", levels, fragments]
            if levels.starts_with("QualityLevels(") =>
        {
            smooth_fragment(levels, fragments).ok_or_else(not_found)?
        }
        [r, "index.m3u8"] if safe(r) => Asset::Media {
            rendition: (*r).to_owned(),
        },
        [r, file]
            if safe(r)
                && let Some(sequence) = file
                    .strip_prefix("init-ts")
                    .and_then(|f| f.strip_suffix(".mp4"))
                    .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|n| n.parse::<u64>().ok()) =>
        {
            Asset::TsInit {
                rendition: (*r).to_owned(),
                sequence,
            }
        }
        [r, file]
            if safe(r)
                && let Some(track) = [TrackKind::Video, TrackKind::Audio, TrackKind::Text]
                    .into_iter()
                    .find(|t| file.starts_with(t.letter())) =>
        {
            let rest = &file[1..];
            Asset::Track {
                rendition: (*r).to_owned(),
                track,
                time: numbered(rest, "").ok_or_else(not_found)?,
            }
        }
        [r, file]
            if safe(r)
                && let Some((track, time)) = numbered(file, "init-v")
                    .map(|n| (TrackKind::Video, n))
                    .or_else(|| numbered(file, "init-a").map(|n| (TrackKind::Audio, n)))
                    .or_else(|| numbered(file, "init-t").map(|n| (TrackKind::Text, n))) =>
        {
            Asset::TrackInit {
                rendition: (*r).to_owned(),
                track,
                time,
            }
        }
        [r, file]
            if safe(r)
                && let Some(id) = file
                    .strip_prefix("init-")
                    .and_then(|f| f.strip_suffix(".mp4"))
                    .filter(|id| {
                        (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_hexdigit())
                    }) =>
        {
            Asset::Init {
                rendition: (*r).to_owned(),
                id: id.to_owned(),
            }
        }
        [r, file] if safe(r) => {
            let (seq, ext) = file.split_once('.').ok_or_else(not_found)?;
            let ext_ok =
                (1..=5).contains(&ext.len()) && ext.bytes().all(|b| b.is_ascii_alphanumeric());
            match (seq.parse::<u64>(), ext_ok) {
                (Ok(sequence), true) if !seq.starts_with('+') => Asset::Segment {
                    rendition: (*r).to_owned(),
                    sequence,
                    ext: ext.to_owned(),
                },
                _ => return Err(not_found()),
            }
        }
        _ => return Err(not_found()),
    };
    Ok(Some(Route {
        channel,
        endpoint,
        asset,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn routes() {
        let r = |p: &str| route(p).unwrap().unwrap().asset;
        assert_eq!(r("/out/v1/news/hls/index.m3u8"), Asset::Multivariant);
        assert_eq!(
            r("/out/v1/news/hls/stream_0/index.m3u8"),
            Asset::Media {
                rendition: "stream_0".into()
            }
        );
        assert_eq!(
            r("/out/v1/news/hls/stream_0/42.ts"),
            Asset::Segment {
                rendition: "stream_0".into(),
                sequence: 42,
                ext: "ts".into()
            }
        );
        assert_eq!(
            r("/out/v1/news/secure/key/29433"),
            Asset::Key {
                key_id: "29433".into()
            }
        );
        assert_eq!(r("/out/v1/news/dash/index.mpd"), Asset::Mpd);
        assert_eq!(
            r("/out/v1/news/dash/stream_0/v42.mp4"),
            Asset::Track {
                rendition: "stream_0".into(),
                track: TrackKind::Video,
                time: 42
            }
        );
        assert_eq!(
            r("/out/v1/news/dash/stream_1/init-a40.mp4"),
            Asset::TrackInit {
                rendition: "stream_1".into(),
                track: TrackKind::Audio,
                time: 40
            }
        );
        assert_eq!(r("/out/v1/news/dash/clearkey"), Asset::License);
        assert_eq!(route("/healthz").unwrap(), None);
        assert_eq!(route("/out/v2/x").unwrap(), None);
        for bad in [
            "/out/v1/",
            "/out/v1/news",
            "/out/v1/news/hls",
            "/out/v1/news/hls/a/b/c.ts",
            "/out/v1/news/hls/stream_0/x.ts",
            "/out/v1/news/hls/stream_0/+1.ts",
            "/out/v1/news/hls/../index.m3u8",
            "/out/v1/news/hls/stream_0/1.tsxxxx",
            "/out/v1/news/dash/stream_0/vx.mp4",
            "/out/v1/news/dash/stream_0/a1.m4s",
        ] {
            assert_eq!(route(bad).unwrap_err().status(), 404, "{bad}");
        }
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn builders_name_the_paths_the_router_reads() {
        assert_eq!(key_path("news", "secure", 7), "/out/v1/news/secure/key/7");
        assert_eq!(license_path("news", "dash"), "/out/v1/news/dash/clearkey");
        assert_eq!(
            channel_and_endpoint("/out/v1/news/hls/x/1.ts?start=1"),
            Some(("news", "hls"))
        );
        assert_eq!(channel_and_endpoint("/healthz"), None);
        assert_eq!(
            TrackKind::Audio.media_template("$RepresentationID$"),
            "$RepresentationID$/a$Time$.mp4"
        );
        let init = TrackKind::Video.init_template("stream_0", 90);
        assert_eq!(
            route(&format!("/out/v1/c/e/{init}"))
                .unwrap()
                .unwrap()
                .asset,
            Asset::TrackInit {
                rendition: "stream_0".into(),
                track: TrackKind::Video,
                time: 90
            }
        );
    }

    #[cfg(not(target_arch = "wasm32"))]
    mod round_trip {
        use super::super::*;
        use proptest::prelude::*;

        fn name() -> impl Strategy<Value = String> {
            "[A-Za-z0-9_-]{1,96}"
        }

        fn track() -> impl Strategy<Value = TrackKind> {
            prop_oneof![
                Just(TrackKind::Video),
                Just(TrackKind::Audio),
                Just(TrackKind::Text)
            ]
        }

        fn asset() -> impl Strategy<Value = Asset> {
            prop_oneof![
                Just(Asset::Multivariant),
                Just(Asset::Mpd),
                Just(Asset::License),
                name().prop_map(|key_id| Asset::Key { key_id }),
                name().prop_map(|rendition| Asset::Media { rendition }),
                (name(), any::<u64>(), "[A-Za-z0-9]{1,5}").prop_map(
                    |(rendition, sequence, ext)| {
                        Asset::Segment {
                            rendition,
                            sequence,
                            ext,
                        }
                    }
                ),
                // The store names initialization segments by content hash (32 hex digits). An id
                // of 'a' and digits only would read as a DASH audio init (`init-a{time}.mp4`):
                // the grammar is ambiguous there, so such ids are left out.
                (name(), "[0-9a-f]{15,63}[b-f]")
                    .prop_map(|(rendition, id)| Asset::Init { rendition, id }),
                (name(), any::<u64>()).prop_map(|(rendition, sequence)| Asset::TsInit {
                    rendition,
                    sequence
                }),
                (name(), track(), any::<u64>()).prop_map(|(rendition, track, time)| Asset::Track {
                    rendition,
                    track,
                    time
                }),
                (name(), track(), any::<u64>()).prop_map(|(rendition, track, time)| {
                    Asset::TrackInit {
                        rendition,
                        track,
                        time,
                    }
                }),
            ]
        }

        proptest! {
            /// Every URL the filter builds routes back to the asset it was built from.
            #[test]
            fn every_built_path_routes_back(channel in name(), endpoint in name(), asset in asset()) {
                let r = Route { channel, endpoint, asset };
                prop_assert_eq!(route(&r.path()).ok().flatten(), Some(r.clone()));
                let path = r.path();
                prop_assert_eq!(
                    channel_and_endpoint(&path),
                    Some((r.channel.as_str(), r.endpoint.as_str()))
                );
            }
        }
    }
}
