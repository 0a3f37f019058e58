//! What an encoder uploads as a playlist: the sidecar's reading of it (media or multivariant),
//! the contract's ingest parser, and where each segment URI it names would be stored.
//! Properties: a resolved segment path stays inside its input (no `..`, never absolute, no
//! empty component); a media playlist's sequence numbers count up by one.
#![no_main]

use edgepack_store::ingest_path::resolve_segment_uri;
use edgepack_store::source_playlist::{SourcePlaylist, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = edgepack_store_api::parse_ingest(data) {
        for pair in p.segments.windows(2) {
            assert_eq!(pair[0].sequence + 1, pair[1].sequence);
        }
    }
    let Ok(source) = parse(data) else { return };
    let uris: Vec<String> = match &source {
        SourcePlaylist::Media(m) => m.segments.iter().map(|s| s.uri.to_string()).collect(),
        SourcePlaylist::Multivariant(_) => return,
    };
    for uri in uris {
        for playlist in ["stream_0.m3u8", "hd/index.m3u8"] {
            if let Some(path) = resolve_segment_uri(playlist, &uri, "news", 0) {
                assert!(!path.starts_with('/'), "{uri} → {path}");
                assert!(
                    path.split('/')
                        .all(|c| !c.is_empty() && c != "." && c != ".."),
                    "{uri} → {path}"
                );
            }
        }
    }
});
