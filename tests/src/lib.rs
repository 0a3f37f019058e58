//! edgepack's end-to-end tests (`tests/*.rs`, each named for the user story it proves) run the
//! real `edgepack_filter.wasm` in the test host (crate `edgepack-host`) with the real sidecar and
//! ffmpeg (crate `edgepack-test-support`). This library holds only what is theirs alone: the
//! browser driver for the pages and scripts in `browser/`, [`edge`], the test host a story
//! runs its viewers against, [`xml_attr`], for reading manifests, and [`piff`], for reading
//! Smooth Streaming fragments, [`joined_fragments`], for reading an fMP4 media playlist as a
//! player appends it.

pub mod browser;
pub mod cmaf_box;
pub mod piff;

/// The value of the attribute `name` of the first element `<{tag} …>` in `xml` at or after byte
/// `from` (manifests edgepack writes: one element per tag, attributes in double quotes).
pub fn xml_attr<'a>(xml: &'a str, tag: &str, name: &str, from: usize) -> Option<&'a str> {
    let start = from + xml.get(from..)?.find(&format!("<{tag} "))?;
    let end = start + xml[start..].find('>')?;
    let element = &xml[start..end];
    let key = format!(" {name}=\"");
    let v = element.find(&key)? + key.len();
    Some(&element[v..v + element[v..].find('"')?])
}

/// The media playlist `{dir}/index.m3u8?{query}` of the edge at `addr` (`dir` such as
/// `/out/v1/news/cmaf-cbcs/stream_0`) and its initialization segment (`EXT-X-MAP`) and
/// fragments joined as a player appends them.
#[allow(clippy::panic)] // test code: a story without its fragments fails loudly
pub fn joined_fragments(addr: std::net::SocketAddr, dir: &str, query: &str) -> (String, Vec<u8>) {
    use edgepack_test_support::sidecar::{get, segment_uris, tag_value};
    let pl = get(addr, &format!("{dir}/index.m3u8?{query}"));
    let text = pl.text();
    if pl.status != 200 {
        panic!("{dir}: {} {text}", pl.status);
    }
    let Some(init) = tag_value(&text, "#EXT-X-MAP")
        .and_then(|v| v.strip_prefix("URI=\""))
        .and_then(|v| v.split('"').next())
    else {
        panic!("{dir}: no EXT-X-MAP in {text}")
    };
    let mut joined = get(addr, &format!("{dir}/{init}")).body;
    for uri in segment_uris(&text) {
        let f = get(addr, &format!("{dir}/{uri}"));
        if f.status != 200 {
            panic!("{dir}/{uri}: {} {}", f.status, f.text());
        }
        joined.extend_from_slice(&f.body);
    }
    (text, joined)
}

/// An edge for a story: the test host running the real `.wasm` with `config` as its plugin
/// configuration, `workers` worker VMs, its `edgepack_store` cluster at `store`.
#[allow(clippy::panic)] // test code: a story without its edge fails loudly
pub fn edge(
    store: std::net::SocketAddr,
    config: &[u8],
    workers: usize,
) -> edgepack_host::RunningHost {
    edge_with_routes(store, config, workers, Vec::new())
}

/// [`edge`] that also answers `routes` itself, the filter off on them (pages and player scripts,
/// as `envoy.yaml`'s `direct_response` routes).
#[allow(clippy::panic)] // test code: a story without its edge fails loudly
pub fn edge_with_routes(
    store: std::net::SocketAddr,
    config: &[u8],
    workers: usize,
    routes: Vec<edgepack_host::DirectResponse>,
) -> edgepack_host::RunningHost {
    let wasm = match edgepack_test_support::artifacts::filter_wasm() {
        Ok(w) => w,
        Err(e) => panic!("the filter's .wasm: {e}"),
    };
    let mut o = edgepack_host::HostOptions::new(wasm, config.to_vec());
    o.clusters = vec![("edgepack_store".into(), store)];
    o.workers = workers;
    o.direct_responses = routes;
    match edgepack_host::start(o) {
        Ok(h) => h,
        Err(e) => panic!("the test host: {e}"),
    }
}
