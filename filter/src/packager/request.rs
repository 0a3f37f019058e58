//! Request → plan: the route, the endpoint's access rules and the query decide which store fetch
//! (if any) answers a request. Key deliveries and errors are answered here, without the store.

use edgepack_store_api::api as store;

use super::{
    DashVariants, Fetch, Job, JobKind, LicenseRequest, Plan, Request, Step, endpoint, keys,
    playlists, smooth,
};
use crate::access;
use crate::config::{Endpoint, Format, Settings};
use crate::error::FilterError;
use crate::http_policy::{METHODS, preflight};
use crate::query::{ManifestFilter, Query, TimeShift};
use crate::route::{self, Asset, Route, TrackKind};

/// Decides what to do with a request; errors become the viewer's answer.
pub(super) fn plan(settings: &Settings, req: &Request<'_>) -> Result<Plan, FilterError> {
    let (path, raw_query) = req.path.split_once('?').unwrap_or((req.path, ""));
    let Some(r) = route::route(path)? else {
        return Ok(Plan::NotOurs);
    };
    let license = r.asset == Asset::License;
    if req.method == "OPTIONS" {
        return Ok(Plan::Respond(preflight(
            (req.header)("access-control-request-headers"),
            license,
        )));
    }
    // EME sends ClearKey license requests as POST; the body names the key ids.
    if req.method != "GET" && req.method != "HEAD" && !(license && req.method == "POST") {
        return Err(FilterError::MethodNotAllowed(
            format!(
                "method {} is not allowed; edgepack endpoints answer GET, HEAD and OPTIONS",
                req.method
            ),
            METHODS,
        ));
    }
    // Keys and licenses: token (and access rules) before any lookup that could say what exists.
    keys::authorize(settings, &r, req, path, raw_query)?;
    let ep = endpoint(settings, &r.channel, &r.endpoint)?;
    access::check(&ep.access, req.header, req.client_ip)?;
    let query = Query::parse(raw_query)?;
    check_format(ep, &r.asset)?;
    let child_asset = matches!(
        r.asset,
        Asset::Media { .. } | Asset::Segment { .. } | Asset::Init { .. }
    );
    if child_asset && query.manifest_filter.is_some() {
        return Err(FilterError::BadRequest(
            "aws.manifestfilter is accepted only on the multivariant playlist (index.m3u8)".into(),
        ));
    }
    plan_asset(ep, &r, req, &query)
}

/// The plan for an asset of an endpoint whose access and format were checked: one store fetch,
/// a key, or a license body to read. One arm per kind of asset.
fn plan_asset(
    ep: &Endpoint,
    r: &Route,
    req: &Request<'_>,
    query: &Query,
) -> Result<Plan, FilterError> {
    let fetch = |store_path: String, kind| fetch(r, store_path, kind);
    let c = r.channel.as_str();
    match &r.asset {
        Asset::Multivariant => {
            let filter = manifest_filter(query)?;
            // Validate the time-shift now, so a bad one fails here and not in every child.
            TimeShift::from_query_at(query, req.now_ms)?;
            fetch(
                store::multivariant_path(c),
                JobKind::Multivariant {
                    filter,
                    carry: query.carry.clone(),
                },
            )
        }
        Asset::Media { rendition } => {
            let time = TimeShift::from_query_at(query, req.now_ms)?;
            fetch(
                playlists::view_path(ep, c, rendition, &time, req.now_ms),
                JobKind::Media { time },
            )
        }
        // `{sequence}.mp4` on a cmaf endpoint: the store's MPEG-TS segment, repackaged.
        Asset::Segment {
            rendition,
            sequence,
            ext,
        } if ep.format() == Format::Cmaf && ext == "mp4" => fetch(
            store::segment_path(c, rendition, *sequence, store::ANY_EXT),
            JobKind::Remux {
                rendition: rendition.clone(),
                sequence: *sequence,
                init: false,
            },
        ),
        Asset::Segment {
            rendition,
            sequence,
            ext,
        } => fetch(
            store::segment_path(c, rendition, *sequence, ext),
            JobKind::Segment {
                sequence: *sequence,
            },
        ),
        Asset::TsInit {
            rendition,
            sequence,
        } => fetch(
            store::segment_path(c, rendition, *sequence, store::ANY_EXT),
            JobKind::Remux {
                rendition: rendition.clone(),
                sequence: *sequence,
                init: true,
            },
        ),
        Asset::Init { rendition, id } => fetch(store::init_path(c, rendition, id), JobKind::Init),
        Asset::Mpd => Ok(Plan::Fetch(Box::new(manifest_variants(
            req,
            r,
            query,
            Step::DashVariants,
        )?))),
        Asset::SmoothManifest => Ok(Plan::Fetch(Box::new(manifest_variants(
            req,
            r,
            query,
            Step::SmoothVariants,
        )?))),
        Asset::SmoothFragment {
            bitrate,
            track,
            rendition,
            time,
        } => smooth::fragment_start(r, *bitrate, *track, rendition.clone(), *time)
            .map(|f| Plan::Fetch(Box::new(f))),
        Asset::Track {
            rendition,
            track,
            time,
        } => dash_track(r, rendition, *track, *time, false),
        Asset::TrackInit {
            rendition,
            track,
            time,
        } => dash_track(r, rendition, *track, *time, true),
        Asset::License => {
            keys::check_license_request(ep)?;
            Ok(Plan::ReadBody(Box::new(LicenseRequest {
                channel: r.channel.clone(),
                endpoint: r.endpoint.clone(),
            })))
        }
        Asset::Key { key_id } => keys::deliver(ep, key_id).map(Plan::Respond),
    }
}

/// A DASH track's fragment or init: the store's segment at that time (DASH `$Time$`).
fn dash_track(
    r: &Route,
    rendition: &str,
    track: TrackKind,
    time: u64,
    init: bool,
) -> Result<Plan, FilterError> {
    // Times are program date times in 90 kHz ticks: whole milliseconds.
    if !time.is_multiple_of(90) {
        return Err(FilterError::NotFound(format!(
            "no segment starts at {time}: DASH segment times here are whole milliseconds x 90"
        )));
    }
    fetch(
        r,
        store::segment_at_path(&r.channel, rendition, (time / 90) as i64, store::ANY_EXT),
        JobKind::Track {
            rendition: rendition.to_owned(),
            track,
            time,
            init,
        },
    )
}

/// The plan of one store fetch whose answer makes the viewer's.
fn fetch(r: &Route, store_path: String, kind: JobKind) -> Result<Plan, FilterError> {
    Ok(Plan::Fetch(Box::new(Fetch {
        path: store_path,
        next: Step::Answer(Job {
            channel: r.channel.clone(),
            endpoint: r.endpoint.clone(),
            kind,
        }),
    })))
}

/// Refuses an asset the endpoint's format does not have, saying what it has instead.
fn check_format(ep: &Endpoint, asset: &Asset) -> Result<(), FilterError> {
    let format = ep.format();
    let (has, what) = match asset {
        Asset::Multivariant | Asset::Media { .. } => (
            matches!(format, Format::Hls | Format::Cmaf),
            "HLS playlists",
        ),
        Asset::Segment { .. } | Asset::Init { .. } => (
            matches!(format, Format::Hls | Format::Cmaf),
            match format {
                Format::Dash => {
                    "HLS segments; DASH segments are {rendition}/v{time}.mp4 and a{time}.mp4"
                }
                _ => "HLS segments",
            },
        ),
        Asset::TsInit { .. } => (
            format == Format::Cmaf,
            "repackaged initialization segments (it is not cmaf)",
        ),
        Asset::Mpd | Asset::Track { .. } | Asset::TrackInit { .. } => {
            (format == Format::Dash, "DASH manifest or segments")
        }
        Asset::SmoothManifest | Asset::SmoothFragment { .. } => (
            format == Format::Mss,
            "Smooth Streaming manifest or fragments",
        ),
        Asset::Key { .. } | Asset::License => (true, ""),
    };
    if has {
        return Ok(());
    }
    let is = match format {
        Format::Hls => "HLS (its playlist is index.m3u8)",
        Format::Cmaf => "CMAF HLS (its playlist is index.m3u8)",
        Format::Dash => "DASH (its manifest is index.mpd)",
        Format::Mss => "Smooth Streaming (its manifest is Manifest)",
    };
    Err(FilterError::NotFound(format!(
        "endpoint '{}' is {is}: it has no {what}",
        ep.name
    )))
}

fn manifest_filter(query: &Query) -> Result<Option<ManifestFilter>, FilterError> {
    query
        .manifest_filter
        .as_deref()
        .map(ManifestFilter::parse)
        .transpose()
}

/// The first fetch of a DASH or Smooth Streaming manifest: the store's multivariant playlist.
fn manifest_variants(
    req: &Request<'_>,
    r: &Route,
    query: &Query,
    step: fn(DashVariants) -> Step,
) -> Result<Fetch, FilterError> {
    let filter = manifest_filter(query)?;
    let scheme = (req.header)("x-forwarded-proto")
        .or_else(|| (req.header)(":scheme"))
        .unwrap_or_else(|| "http".into());
    let host = (req.header)(":authority")
        .or_else(|| (req.header)("host"))
        .unwrap_or_else(|| "localhost".into());
    Ok(Fetch {
        path: store::multivariant_path(&r.channel),
        next: step(DashVariants {
            channel: r.channel.clone(),
            endpoint: r.endpoint.clone(),
            filter,
            time: TimeShift::from_query_at(query, req.now_ms)?,
            base_url: format!(
                "{scheme}://{host}{}",
                route::endpoint_path(&r.channel, &r.endpoint)
            ),
        }),
    })
}

#[cfg(test)]
mod tests {
    use crate::packager::test_fixtures::*;

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn routing_errors_name_what_exists() {
        assert_eq!(plan_at("/healthz", &[], 0), Plan::NotOurs);
        let (s, body) = status("/out/v1/sports/hls/index.m3u8", &[]);
        assert_eq!(
            (s, body.trim()),
            (404, "unknown channel 'sports'; configured: news")
        );
        let (s, body) = status("/out/v1/news/nope/index.m3u8", &[]);
        assert_eq!(s, 404);
        assert!(
            body.contains(
                "configured: captioned, cmaf, cmaf-cbcs, dash, dash-cc, dash-cenc, fixed, hls, mss, pdt, secure, sorted"
            ),
            "{body}"
        );
        assert_eq!(status("/out/v1/news/hls/a/b/c", &[]).0, 404);
        let h = headers(&[]);
        let post = plan(
            &settings(),
            &Request {
                method: "POST",
                path: "/out/v1/news/hls/index.m3u8",
                header: &h,
                client_ip: None,
                now_ms: 0,
            },
        );
        match post {
            Plan::Respond(r) => {
                assert_eq!(
                    (r.status, r.get("allow")),
                    (405, Some("GET, HEAD, OPTIONS"))
                );
                assert_eq!(r.get("access-control-allow-origin"), Some("*"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn players_on_other_origins_may_read_answers() {
        let h = headers(&[("access-control-request-headers", "x-player-session")]);
        let preflight = plan(
            &settings(),
            &Request {
                method: "OPTIONS",
                path: "/out/v1/news/hls/index.m3u8",
                header: &h,
                client_ip: None,
                now_ms: 0,
            },
        );
        match preflight {
            Plan::Respond(r) => {
                assert_eq!(r.status, 204);
                assert_eq!(r.get("access-control-allow-origin"), Some("*"));
                assert_eq!(
                    r.get("access-control-allow-methods"),
                    Some("GET, HEAD, OPTIONS")
                );
                assert_eq!(
                    r.get("access-control-allow-headers"),
                    Some("x-player-session")
                );
            }
            other => panic!("{other:?}"),
        }
        // Errors and store-backed answers carry it too.
        match plan_at("/out/v1/news/nope/index.m3u8", &[], 0) {
            Plan::Respond(r) => assert_eq!(r.get("access-control-allow-origin"), Some("*")),
            other => panic!("{other:?}"),
        }
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn access_rules() {
        let (s, body) = status("/out/v1/news/secure/index.m3u8", &[]);
        assert_eq!(s, 403);
        assert!(body.contains("missing x-edgepack-cdn-identifier"));
        let (s, body) = status(
            "/out/v1/news/secure/index.m3u8",
            &[("x-edgepack-cdn-identifier", "old")],
        );
        assert_eq!(s, 403);
        assert!(body.contains("wrong"));
        fetch(
            "/out/v1/news/secure/index.m3u8",
            &[("x-edgepack-cdn-identifier", "current")],
        );
        fetch("/out/v1/news/secure/index.m3u8", CDN);
        let h = headers(CDN);
        let outside = plan(
            &settings(),
            &Request {
                method: "GET",
                path: "/out/v1/news/secure/index.m3u8",
                header: &h,
                client_ip: Some("203.0.113.9".parse().unwrap()),
                now_ms: 0,
            },
        );
        match outside {
            Plan::Respond(r) => {
                assert_eq!(r.status, 403);
                assert!(String::from_utf8(r.body).unwrap().contains("203.0.113.9"));
            }
            other => panic!("{other:?}"),
        }
    }
}
