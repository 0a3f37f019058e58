//! What the filter tells Envoy's access log about a request, as filter state: Envoy keeps what
//! a filter sets with `set_property` under `wasm.{name}`, and an access log prints it with
//! `%FILTER_STATE(wasm.edgepack_channel:PLAIN)%` (`envoy/envoy.yaml` shows the format).

use crate::route::{self, Asset};

/// Property names (filter state `wasm.{name}`).
pub const CHANNEL: &str = "edgepack_channel";
pub const ENDPOINT: &str = "edgepack_endpoint";
pub const ASSET: &str = "edgepack_asset";
pub const OUTCOME: &str = "edgepack_outcome";

/// What kind of asset an egress path asks for: `multivariant`, `media_playlist`, `mpd`,
/// `smooth_manifest`, `segment`, `init`, `key`, `license`, or `unknown` (not a path of an
/// endpoint).
pub fn asset(path: &str) -> &'static str {
    let path = path.split('?').next().unwrap_or(path);
    match route::route(path) {
        Ok(Some(r)) => match r.asset {
            Asset::Multivariant => "multivariant",
            Asset::Media { .. } => "media_playlist",
            Asset::Mpd => "mpd",
            Asset::SmoothManifest => "smooth_manifest",
            Asset::Segment { .. } | Asset::Track { .. } | Asset::SmoothFragment { .. } => "segment",
            Asset::Init { .. } | Asset::TsInit { .. } | Asset::TrackInit { .. } => "init",
            Asset::Key { .. } => "key",
            Asset::License => "license",
        },
        _ => "unknown",
    }
}

/// How a request ended: `served` (made now, from the store's answer), `cached` (an answer this
/// edge made before: the VM's playlist answers or the shared segment cache), `refused` (4xx),
/// `store_failed` (502/504: the store could not answer), `failed` (another 5xx).
pub fn outcome(status: u16, cached: bool) -> &'static str {
    match status {
        ..=399 if cached => "cached",
        ..=399 => "served",
        400..=499 => "refused",
        502 | 504 => "store_failed",
        _ => "failed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn every_path_has_an_asset_kind() {
        for (path, kind) in [
            (
                "/out/v1/news/hls/index.m3u8?aws.manifestfilter=x",
                "multivariant",
            ),
            ("/out/v1/news/hls/stream_0/index.m3u8", "media_playlist"),
            ("/out/v1/news/dash/index.mpd", "mpd"),
            ("/out/v1/news/hls/stream_0/12.ts", "segment"),
            ("/out/v1/news/dash/stream_0/v900.mp4", "segment"),
            ("/out/v1/news/cmaf/stream_0/init-ts12.mp4", "init"),
            ("/out/v1/news/hls/key/3", "key"),
            ("/out/v1/news/dash/clearkey", "license"),
            ("/out/v1/news/hls/../x", "unknown"),
            ("/elsewhere", "unknown"),
        ] {
            assert_eq!(asset(path), kind, "{path}");
        }
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn outcomes_follow_the_status() {
        assert_eq!(outcome(200, false), "served");
        assert_eq!(outcome(200, true), "cached");
        assert_eq!(outcome(204, false), "served");
        assert_eq!(outcome(404, false), "refused");
        assert_eq!(outcome(502, false), "store_failed");
        assert_eq!(outcome(504, false), "store_failed");
        assert_eq!(outcome(501, false), "failed");
    }
}
