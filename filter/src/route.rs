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
}

/// The track of a DASH representation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackKind {
    Video,
    Audio,
}

impl TrackKind {
    /// The letter of its file names: `v` or `a`.
    pub fn letter(self) -> char {
        match self {
            TrackKind::Video => 'v',
            TrackKind::Audio => 'a',
        }
    }
}

/// `{prefix}{digits}.mp4` → the number.
fn numbered(file: &str, prefix: &str) -> Option<u64> {
    file.strip_prefix(prefix)
        .and_then(|f| f.strip_suffix(".mp4"))
        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|n| n.parse::<u64>().ok())
}

/// A routed egress request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub channel: String,
    pub endpoint: String,
    pub asset: Asset,
}

const PREFIX: &str = "/out/v1/";

fn safe(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 96
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Routes a path (without query). `Ok(None)`: not an edgepack path, pass it on untouched.
pub fn route(path: &str) -> Result<Option<Route>, FilterError> {
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return Ok(None);
    };
    let not_found = || {
        FilterError::NotFound(format!(
            "no such edgepack path '{path}'; use /out/v1/{{channel}}/{{endpoint}}/index.m3u8 or index.mpd, …/{{rendition}}/index.m3u8, …/{{rendition}}/{{sequence}}.ts, …/{{rendition}}/init-{{id}}.mp4, …/key/{{key-id}} or …/clearkey"
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
        [r, file] if safe(r) && (file.starts_with('v') || file.starts_with('a')) => {
            let (track, rest) = if let Some(rest) = file.strip_prefix('v') {
                (TrackKind::Video, rest)
            } else {
                (TrackKind::Audio, &file[1..])
            };
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
                    .or_else(|| numbered(file, "init-a").map(|n| (TrackKind::Audio, n))) =>
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
}
