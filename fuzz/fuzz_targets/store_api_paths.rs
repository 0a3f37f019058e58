//! The store's internal API paths and view queries (`/store/v1/…`), as the sidecar reads what
//! the filter sends. Properties: a parsed path names the channel it was under; every path the
//! builders write parses back to the same parts; a view query reads back what it was written as.
#![no_main]

use edgepack_fuzz::without_idle_now;
use edgepack_store_api::StorePath;
use edgepack_store_api::api;
use edgepack_store_api::window::ViewQuery;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|raw: &str| {
    let (path, query) = raw.split_once('?').unwrap_or((raw, ""));
    if let Ok(p) = StorePath::parse(path) {
        assert!(path.contains(p.channel()));
    }
    if let Ok(Some(v)) = ViewQuery::parse(query) {
        assert_eq!(
            ViewQuery::parse(&v.to_query()),
            Ok(Some(without_idle_now(v)))
        );
    }
    // Builders → parser, with the fuzzer's words as the ids.
    let mut words = raw
        .split(['/', '?', '#', '.', '%'])
        .filter(|w| !w.is_empty());
    let (Some(c), Some(r)) = (words.next(), words.next()) else {
        return;
    };
    let seq = raw.len() as u64 * 7919;
    for built in [
        api::multivariant_path(c),
        api::media_playlist_path(c, r),
        api::segment_path(c, r, seq, "ts"),
        api::latest_init_path(c, r),
    ] {
        let p = match StorePath::parse(&built) {
            Ok(p) => p,
            Err(e) => panic!("{built}: {e}"),
        };
        assert_eq!(p.channel(), c, "{built}");
        if let Some(rendition) = p.rendition() {
            assert_eq!(rendition, r, "{built}");
        }
    }
});
