//! Playlists as the encoder uploads them. A media playlist is read by the store contract's one
//! parser ([`edgepack_store_api::parse_ingest`]: exact `EXTINF` durations, program date times,
//! `EXT-X-MAP`, the source's `EXT-X-KEY`, other tags verbatim); a multivariant one by m3u8-rs,
//! which the store uses to rewrite its variant URIs.

use edgepack_store_api::{MediaPlaylist, is_multivariant, parse_ingest};

/// Why an uploaded playlist was refused; the previous good state stays.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PlaylistError {
    /// A media playlist (or a playlist that is not UTF-8, or has no `#EXTM3U`).
    #[error(transparent)]
    Media(#[from] edgepack_store_api::PlaylistError),
    /// A multivariant playlist m3u8-rs could not read.
    #[error("playlist could not be parsed: {0}")]
    Unparseable(String),
}

/// A parsed upload.
#[derive(Debug)]
pub enum SourcePlaylist {
    Multivariant(m3u8_rs::MasterPlaylist),
    Media(MediaPlaylist<'static>),
}

/// Parses an uploaded playlist.
pub fn parse(bytes: &[u8]) -> Result<SourcePlaylist, PlaylistError> {
    let Some(text) = std::str::from_utf8(bytes)
        .ok()
        .filter(|t| is_multivariant(t))
    else {
        // Not UTF-8 is refused by the media parser with its own reason.
        return Ok(SourcePlaylist::Media(parse_ingest(bytes)?.into_owned()));
    };
    if !text.trim_start_matches('\u{feff}').starts_with("#EXTM3U") {
        // m3u8-rs would only say "syntax error near line 1".
        return Err(edgepack_store_api::PlaylistError::NoHeader.into());
    }
    match m3u8_rs::parse_master_playlist_res(bytes) {
        Ok(m) if m.variants.iter().any(|v| v.uri.is_empty()) => Err(PlaylistError::Unparseable(
            "a variant stream has no URI".to_owned(),
        )),
        Ok(m) => Ok(SourcePlaylist::Multivariant(m)),
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

#[cfg(test)]
mod tests {
    use edgepack_store_api::PlaylistError as Refused;

    use super::*;

    // The parsers' own cases are tested in their crates: here, which one reads what, and what
    // the encoder is told.

    #[test]
    fn a_media_playlist_is_the_contracts_model_detached_from_the_upload() {
        let text = String::from(
            "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:7\n#EXTINF:2.0,\ns7.ts\n",
        );
        let SourcePlaylist::Media(m) = parse(text.as_bytes()).unwrap() else {
            panic!("expected media");
        };
        drop(text);
        assert_eq!((m.media_sequence, m.segments.len()), (7, 1));
        assert_eq!(m.segments[0].uri, "s7.ts");
    }

    #[test]
    fn refusals_are_the_contracts_texts() {
        for (text, reason) in [
            (&b"hello"[..], "playlist does not start with #EXTM3U"),
            (&[0xff, 0xfe][..], "playlist is not valid UTF-8"),
            (
                b"#EXTM3U\n#EXTINF:2,\na.ts\n",
                "media playlist has no #EXT-X-TARGETDURATION",
            ),
            (
                b"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:two,\na.ts\n",
                "line 3: EXTINF duration 'two' is not a number",
            ),
        ] {
            let e = parse(text).unwrap_err();
            assert!(matches!(e, PlaylistError::Media(_)), "{e:?}");
            assert_eq!(e.to_string(), reason);
        }
    }

    #[test]
    fn multivariant_is_read_by_m3u8_rs() {
        let text = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1000,RESOLUTION=320x240\nstream_0.m3u8\n";
        assert!(matches!(
            parse(text.as_bytes()).unwrap(),
            SourcePlaylist::Multivariant(_)
        ));
        assert_eq!(
            parse(b"#EXT-X-STREAM-INF:BANDWIDTH=1000\nstream_0.m3u8\n").unwrap_err(),
            PlaylistError::Media(Refused::NoHeader)
        );
        assert_eq!(
            parse(b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1000\n")
                .unwrap_err()
                .to_string(),
            "playlist could not be parsed: a variant stream has no URI"
        );
    }
}
