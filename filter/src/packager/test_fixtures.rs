//! Shared by the packager's tests: a configuration with an endpoint of every kind, recorded
//! store answers, and helpers that run a request through plan → store answer → response.
//! Test code only (declared `#[cfg(test)]` in `packager/mod.rs`, never in the `.wasm`): it fails
//! loudly on purpose.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub use super::*;
pub use crate::config::Endpoint;
pub use crate::crypto;
pub use crate::response::Response;
pub use aes::cipher::{BlockDecryptMut, KeyIvInit, block_padding::Pkcs7};

/// Absolute path of a key of an endpoint.
pub fn key_path(ep: &Endpoint, period: u64) -> String {
    crate::route::key_path(&ep.channel, &ep.name, period)
}

pub const STORE_MASTER: &str = include_str!("../../tests/fixtures/store_multivariant.m3u8");
pub const STORE_MEDIA: &str = include_str!("../../tests/fixtures/store_media_stream_0.m3u8");
pub const GROUPS: &str = include_str!("../../tests/fixtures/multivariant_groups.m3u8");
pub const STORE_FMP4: &str = include_str!("../../tests/fixtures/store_media_fmp4.m3u8");
/// 2026-11-25T17:23:15.749Z, the first segment of the recorded fMP4 store playlist.
pub const T_FMP4: i64 = 1795627395749;
/// 2026-11-25T14:35:31.666Z, the first segment of the recorded store playlist.
pub const T0: i64 = 1_795_617_331_666;

/// A configuration with an endpoint of every kind (also the fuzz targets' configuration).
pub const CONFIG: &str = include_str!("../../tests/fixtures/plugin_config.json");

pub fn settings() -> Settings {
    Settings::from_json(CONFIG.as_bytes()).unwrap()
}

pub fn headers(h: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let h: Vec<(String, String)> = h
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |name: &str| h.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
}

pub fn plan_at(path: &str, hdrs: &[(&str, &str)], now_ms: i64) -> Plan {
    let h = headers(hdrs);
    plan(
        &settings(),
        &Request {
            method: "GET",
            path,
            header: &h,
            client_ip: Some("127.0.0.1".parse().unwrap()),
            now_ms,
        },
    )
}

pub const CDN: &[(&str, &str)] = &[("x-edgepack-cdn-identifier", "previous")];

pub fn fetch(path: &str, hdrs: &[(&str, &str)]) -> Fetch {
    match plan_at(path, hdrs, T0 + 10_000) {
        Plan::Fetch(f) => *f,
        other => panic!("{path}: expected a fetch, got {other:?}"),
    }
}

pub fn status(path: &str, hdrs: &[(&str, &str)]) -> (u16, String) {
    match plan_at(path, hdrs, T0 + 10_000) {
        Plan::Respond(r) => (r.status, String::from_utf8(r.body).unwrap()),
        other => panic!("{path}: expected an answer, got {other:?}"),
    }
}

/// What follows a store answer: the next fetch or the viewer's answer.
pub fn next_plan(
    step: &Step,
    status: u16,
    hdrs: &[(&str, &str)],
    body: &[u8],
    now_ms: i64,
) -> Plan {
    let h = headers(hdrs);
    on_store_answer(
        &settings(),
        step,
        &StoreAnswer {
            status,
            header: &h,
            body,
        },
        now_ms,
    )
}

pub fn answer(
    step: &Step,
    status: u16,
    hdrs: &[(&str, &str)],
    body: &[u8],
    now_ms: i64,
) -> Response {
    match next_plan(step, status, hdrs, body, now_ms) {
        Plan::Respond(r) => r,
        other => panic!("expected an answer, got {other:?}"),
    }
}

/// The media playlist an endpoint answers for the recorded store playlist at `now`.
pub fn media(path: &str, hdrs: &[(&str, &str)], now: i64) -> String {
    let f = fetch(path, hdrs);
    text(&answer(&f.next, 200, &[], STORE_MEDIA.as_bytes(), now))
}

pub fn text(r: &Response) -> String {
    String::from_utf8(r.body.clone()).unwrap()
}

pub fn uris(t: &str) -> Vec<&str> {
    t.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect()
}

/// The first two steps of a DASH manifest: the plan, then the multivariant answer.
pub fn after_multivariant(path: &str, hdrs: &[(&str, &str)], now: i64) -> Plan {
    let f = fetch(path, hdrs);
    assert_eq!(f.path, "/store/v1/news/index.m3u8");
    next_plan(&f.next, 200, &[], STORE_MASTER.as_bytes(), now)
}

/// The three steps of a DASH manifest: plan, the multivariant answer, the media answer.
pub fn mpd(endpoint: &str, now: i64) -> String {
    let hdrs = [(":authority", "edge.example"), (":scheme", "https")];
    let next = after_multivariant(&format!("/out/v1/news/{endpoint}/index.mpd"), &hdrs, now);
    let Plan::Fetch(media) = next else {
        panic!("{next:?}")
    };
    // The timeline's view: the endpoint's window and key rotation.
    assert!(
        media
            .path
            .starts_with("/store/v1/news/stream_0/index.m3u8?window=60000&delay=0&rotation="),
        "{}",
        media.path
    );
    let r = answer(&media.next, 200, &[], STORE_MEDIA.as_bytes(), now);
    assert_eq!(r.status, 200, "{}", text(&r));
    assert_eq!(r.get("content-type"), Some("application/dash+xml"));
    text(&r)
}
