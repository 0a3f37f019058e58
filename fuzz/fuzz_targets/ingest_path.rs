//! The encoder's PUT/DELETE/MKCOL target, `/in/v1/{channel}/{input}/{file}`, percent-encoded as
//! sent. Properties: an accepted path is a channel id, input 0 or 1, and a file path of safe
//! components — never absolute, no empty, `.`, `..` or hidden component, no NUL or backslash —
//! within the length limit; the rendition id made from it is one the filter routes viewers to.
#![no_main]

use edgepack_store::ingest_path::{parse, rendition_id};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|raw: &str| {
    let Ok(t) = parse(raw, 1024) else { return };
    assert!(t.input <= 1, "input {}", t.input);
    assert!(!t.channel.is_empty());
    assert!(!t.file.starts_with('/'));
    for c in t.file.split('/') {
        assert!(!c.is_empty() && !c.starts_with('.'), "{raw} → {}", t.file);
        assert!(!c.contains(['\0', '\\']), "{raw} → {}", t.file);
    }
    let id = rendition_id(&t.file);
    assert!(!id.is_empty() && id.len() <= 96, "{id}");
    // Viewers reach it: the filter routes `…/{id}/index.m3u8` to this very rendition.
    let viewer_path = format!("/out/v1/news/hls/{id}/index.m3u8");
    match edgepack_filter::route::route(&viewer_path) {
        Ok(Some(r)) => assert_eq!(r.asset.relative_path(), format!("{id}/index.m3u8")),
        other => panic!(
            "{} → rendition {id:?} that viewers cannot reach: {other:?}",
            t.file
        ),
    }
});
