//! The sans-IO heart of the filter: `plan` turns a viewer's request into an answer or a fetch
//! from the store; `respond` turns the store's answer into the viewer's. The shell does the I/O.

use std::net::IpAddr;

use crate::access;
use crate::cmaf;
use crate::config::{EncryptionMethod, Endpoint, Format, Settings};
use crate::crypto;
use crate::dash;
use crate::error::FilterError;
use crate::media_playlist;
use crate::media_rewrite;
use crate::multivariant;
use crate::playlist_window::{self, WindowSpec};
use crate::query::{ManifestFilter, Query, TimeShift};
use crate::response::Response;
use crate::route::{self, Asset, TrackKind};

/// A request as the shell read it in `on_http_request_headers`.
pub struct Request<'a> {
    pub method: &'a str,
    /// Path and query, as sent.
    pub path: &'a str,
    /// Looks up a request header by lower-case name.
    pub header: &'a dyn Fn(&str) -> Option<String>,
    pub client_ip: Option<IpAddr>,
    pub now_ms: i64,
}

/// What the filter does with a request.
#[derive(Debug, PartialEq)]
pub enum Plan {
    /// Not an edgepack path: let it through untouched.
    NotOurs,
    /// Answer now (errors, key delivery).
    Respond(Response),
    /// Fetch from the store, then call [`respond`].
    Fetch(Box<Fetch>),
    /// Read the request body (a ClearKey license request), then call [`answer_body`].
    ReadBody(Box<Job>),
}

/// A store request and what to do with its answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Fetch {
    /// Path on the store's internal API.
    pub path: String,
    pub job: Job,
}

/// What the store's answer is for.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub channel: String,
    pub endpoint: String,
    pub kind: JobKind,
}

/// The kinds of store-backed answers.
#[derive(Debug, Clone, PartialEq)]
pub enum JobKind {
    Multivariant {
        filter: Option<ManifestFilter>,
        carry: Vec<String>,
    },
    Media {
        time: TimeShift,
    },
    Segment {
        sequence: u64,
    },
    /// An fMP4 initialization segment, passed through.
    Init,
    /// An MPEG-TS segment repackaged as a CMAF fragment (both tracks: HLS), or (`init`) the
    /// initialization segment built from it.
    Remux {
        rendition: String,
        sequence: u64,
        init: bool,
    },
    /// DASH, step 1: the store's multivariant playlist gives the variants.
    DashVariants {
        filter: Option<ManifestFilter>,
        time: TimeShift,
        base_url: String,
    },
    /// DASH, step 2: the first variant's media playlist gives the timeline.
    DashManifest {
        variants: Vec<multivariant::Variant>,
        time: TimeShift,
        base_url: String,
    },
    /// One track of an MPEG-TS segment as a CMAF fragment, or (`init`) the track's
    /// initialization segment built from it (DASH; the segment is named by its time).
    Track {
        rendition: String,
        track: TrackKind,
        time: u64,
        init: bool,
    },
    /// A ClearKey license request (its token already checked): the body names the key ids.
    License,
}

/// The store's answer as the shell received it. `status` 0 means the call was reset (no headers).
pub struct StoreAnswer<'a> {
    pub status: u16,
    pub header: &'a dyn Fn(&str) -> Option<String>,
    pub body: &'a [u8],
}

/// Header the store puts on segments: their program date time (RFC 3339).
pub const PDT_HEADER: &str = "x-edgepack-program-date-time";

/// Header the store puts on segments: their sequence number in the store.
pub const SEQUENCE_HEADER: &str = "x-edgepack-sequence";

fn endpoint<'s>(
    settings: &'s Settings,
    channel: &str,
    name: &str,
) -> Result<&'s Endpoint, FilterError> {
    let endpoints = settings.channels.get(channel).ok_or_else(|| {
        let known: Vec<&str> = settings.channels.keys().map(String::as_str).collect();
        FilterError::NotFound(format!(
            "unknown channel '{channel}'; configured: {}",
            known.join(", ")
        ))
    })?;
    endpoints.get(name).ok_or_else(|| {
        let known: Vec<&str> = endpoints.keys().map(String::as_str).collect();
        FilterError::NotFound(format!(
            "unknown endpoint '{name}' for channel '{channel}'; configured: {}",
            known.join(", ")
        ))
    })
}

/// Decides what to do with a request.
pub fn plan(settings: &Settings, req: &Request<'_>) -> Plan {
    match try_plan(settings, req) {
        Ok(Plan::Respond(r)) => Plan::Respond(cors(r)),
        Ok(p) => p,
        Err(e) => Plan::Respond(cors(e.to_response())),
    }
}

/// Every edgepack answer may be read by a player on any origin (as MediaPackage's endpoints): the
/// player page and the stream rarely share a host name. Access rules (CDN identifier, IP
/// allowlist, key tokens) are what protects an endpoint, not the browser's same-origin policy.
fn cors(r: Response) -> Response {
    r.header("access-control-allow-origin", "*")
}

/// The answer to a CORS preflight (a player that adds its own request headers triggers one).
fn preflight(req: &Request<'_>, license: bool) -> Response {
    let mut r = Response {
        status: 204,
        headers: Vec::new(),
        body: Vec::new(),
    }
    .header(
        "access-control-allow-methods",
        if license {
            "GET, POST, OPTIONS"
        } else {
            "GET, HEAD, OPTIONS"
        },
    )
    .header("access-control-max-age", "86400");
    if let Some(h) = (req.header)("access-control-request-headers") {
        r = r.header("access-control-allow-headers", h);
    }
    r
}

fn try_plan(settings: &Settings, req: &Request<'_>) -> Result<Plan, FilterError> {
    let (path, raw_query) = req.path.split_once('?').unwrap_or((req.path, ""));
    let Some(r) = route::route(path)? else {
        return Ok(Plan::NotOurs);
    };
    let license = r.asset == Asset::License;
    if req.method == "OPTIONS" {
        return Ok(Plan::Respond(preflight(req, license)));
    }
    // EME sends ClearKey license requests as POST; the body names the key ids.
    if req.method != "GET" && req.method != "HEAD" && !(license && req.method == "POST") {
        return Err(FilterError::MethodNotAllowed(format!(
            "method {} is not allowed; edgepack endpoints answer GET, HEAD and OPTIONS",
            req.method
        )));
    }
    let ep = endpoint(settings, &r.channel, &r.endpoint)?;
    access::check(ep, req.header, req.client_ip)?;
    let query = Query::parse(raw_query)?;
    let child_filter = || {
        FilterError::BadRequest(
            "aws.manifestfilter is accepted only on the multivariant playlist (index.m3u8)".into(),
        )
    };
    let job = |kind| Job {
        channel: r.channel.clone(),
        endpoint: r.endpoint.clone(),
        kind,
    };
    let store = |rest: &str| format!("/store/v1/{}/{rest}", r.channel);
    let dash = ep.cfg.format == Format::Dash;
    let wrong_format = |what: &str| {
        FilterError::NotFound(format!(
            "endpoint '{}' is {}: it has no {what}",
            ep.name,
            if dash {
                "DASH (its manifest is index.mpd)"
            } else {
                "HLS (its playlist is index.m3u8)"
            }
        ))
    };
    match &r.asset {
        Asset::Multivariant | Asset::Media { .. } if dash => Err(wrong_format("HLS playlists")),
        Asset::Segment { .. } | Asset::TsInit { .. } | Asset::Init { .. } if dash => Err(
            wrong_format("HLS segments; DASH segments are {rendition}/v{time}.mp4 and a{time}.mp4"),
        ),
        Asset::Mpd | Asset::Track { .. } | Asset::TrackInit { .. } if !dash => {
            Err(wrong_format("DASH manifest or segments"))
        }
        Asset::Mpd => {
            let filter = query
                .manifest_filter
                .as_deref()
                .map(ManifestFilter::parse)
                .transpose()?;
            let scheme = (req.header)("x-forwarded-proto")
                .or_else(|| (req.header)(":scheme"))
                .unwrap_or_else(|| "http".into());
            let host = (req.header)(":authority")
                .or_else(|| (req.header)("host"))
                .unwrap_or_else(|| "localhost".into());
            Ok(Plan::Fetch(Box::new(Fetch {
                path: store("index.m3u8"),
                job: job(JobKind::DashVariants {
                    filter,
                    time: TimeShift::from_query(&query)?,
                    base_url: format!("{scheme}://{host}/out/v1/{}/{}/", r.channel, r.endpoint),
                }),
            })))
        }
        Asset::Track {
            rendition,
            track,
            time,
        }
        | Asset::TrackInit {
            rendition,
            track,
            time,
        } => {
            // Times are program date times in 90 kHz ticks: whole milliseconds.
            if time % 90 != 0 {
                return Err(FilterError::NotFound(format!(
                    "no segment starts at {time}: DASH segment times here are whole milliseconds x 90"
                )));
            }
            Ok(Plan::Fetch(Box::new(Fetch {
                path: store(&format!("{rendition}/at/{}.ts", time / 90)),
                job: job(JobKind::Track {
                    rendition: rendition.clone(),
                    track: *track,
                    time: *time,
                    init: matches!(r.asset, Asset::TrackInit { .. }),
                }),
            })))
        }
        Asset::License => {
            let enc = ep
                .cfg
                .encryption
                .as_ref()
                .filter(|e| e.method != EncryptionMethod::Aes128)
                .ok_or_else(|| {
                    FilterError::NotFound(format!(
                        "endpoint '{}' does not use common encryption (cenc/cbcs): no ClearKey licenses",
                        ep.name
                    ))
                })?;
            if req.method != "POST" {
                return Err(FilterError::MethodNotAllowed(
                    "a ClearKey license request is a POST of {\"kids\":[…]} (W3C EME)".into(),
                ));
            }
            crypto::verify_token(
                &enc.key_token.secret,
                path,
                query.token.as_deref(),
                req.now_ms,
            )?;
            Ok(Plan::ReadBody(Box::new(job(JobKind::License))))
        }
        Asset::Multivariant => {
            let filter = query
                .manifest_filter
                .as_deref()
                .map(ManifestFilter::parse)
                .transpose()?;
            // Validate the time-shift now, so a bad one fails here and not in every child.
            TimeShift::from_query(&query)?;
            Ok(Plan::Fetch(Box::new(Fetch {
                path: store("index.m3u8"),
                job: job(JobKind::Multivariant {
                    filter,
                    carry: query.carry.clone(),
                }),
            })))
        }
        Asset::Media { rendition } => {
            if query.manifest_filter.is_some() {
                return Err(child_filter());
            }
            Ok(Plan::Fetch(Box::new(Fetch {
                path: store(&format!("{rendition}/index.m3u8")),
                job: job(JobKind::Media {
                    time: TimeShift::from_query(&query)?,
                }),
            })))
        }
        Asset::Segment {
            rendition,
            sequence,
            ext,
        } => {
            if query.manifest_filter.is_some() {
                return Err(child_filter());
            }
            // `{sequence}.mp4` on a cmaf endpoint: the store's MPEG-TS segment, repackaged.
            if ep.cfg.format == Format::Cmaf && ext == "mp4" {
                return Ok(Plan::Fetch(Box::new(Fetch {
                    path: store(&format!("{rendition}/{sequence}.ts")),
                    job: job(JobKind::Remux {
                        rendition: rendition.clone(),
                        sequence: *sequence,
                        init: false,
                    }),
                })));
            }
            Ok(Plan::Fetch(Box::new(Fetch {
                path: store(&format!("{rendition}/{sequence}.{ext}")),
                job: job(JobKind::Segment {
                    sequence: *sequence,
                }),
            })))
        }
        Asset::TsInit {
            rendition,
            sequence,
        } => {
            if ep.cfg.format != Format::Cmaf {
                return Err(FilterError::NotFound(format!(
                    "endpoint '{}' is not cmaf: it has no repackaged initialization segments",
                    ep.name
                )));
            }
            Ok(Plan::Fetch(Box::new(Fetch {
                path: store(&format!("{rendition}/{sequence}.ts")),
                job: job(JobKind::Remux {
                    rendition: rendition.clone(),
                    sequence: *sequence,
                    init: true,
                }),
            })))
        }
        Asset::Init { rendition, id } => {
            if query.manifest_filter.is_some() {
                return Err(child_filter());
            }
            Ok(Plan::Fetch(Box::new(Fetch {
                path: store(&format!("{rendition}/init-{id}.mp4")),
                job: job(JobKind::Init),
            })))
        }
        Asset::Key { key_id } => {
            let enc = ep
                .cfg
                .encryption
                .as_ref()
                .filter(|_| !dash)
                .ok_or_else(|| {
                    FilterError::NotFound(format!(
                        "endpoint '{}' is not encrypted: no keys",
                        ep.name
                    ))
                })?;
            let period: u64 = key_id.parse().map_err(|_| {
                FilterError::BadRequest(format!("key id '{key_id}' is not a key period"))
            })?;
            crypto::verify_token(
                &enc.key_token.secret,
                path,
                query.token.as_deref(),
                req.now_ms,
            )?;
            let key = crypto::key_for(ep, period)?;
            Ok(Plan::Respond(
                Response::with_body(200, "application/octet-stream", key.to_vec())
                    .header("cache-control", "no-store"),
            ))
        }
    }
}

/// The program date time the store sent with a segment.
fn segment_pdt(answer: &StoreAnswer<'_>) -> Option<i64> {
    (answer.header)(PDT_HEADER)
        .and_then(|v| chrono::DateTime::parse_from_rfc3339(v.trim()).ok())
        .map(|t| t.timestamp_millis())
}

/// Repackages the store's MPEG-TS segment (the `select`ed tracks, common-encrypted on cenc/cbcs
/// endpoints under the key of the segment's period); a segment that cannot be is the store's
/// problem (502) or a format this version does not carry (501).
fn remux(
    ep: &Endpoint,
    answer: &StoreAnswer<'_>,
    rendition: &str,
    sequence: u64,
    select: cmaf::Select,
) -> Result<cmaf::Remuxed, FilterError> {
    let pdt = segment_pdt(answer);
    let protection = match &ep.cfg.encryption {
        Some(e) => {
            let pdt = pdt.ok_or_else(|| {
                FilterError::BadGateway(format!(
                    "the store's segment has no {PDT_HEADER} header; cannot pick its key"
                ))
            })?;
            let period = crypto::key_period(pdt, e.key_rotation_interval_seconds);
            crypto::common_protection(ep, period, rendition, sequence)?
        }
        None => None,
    };
    cmaf::remux_select(answer.body, sequence, pdt, protection.as_ref(), select).map_err(|e| match e
    {
        cmaf::CmafError::Malformed(why) => FilterError::BadGateway(format!(
            "the store's segment {sequence} cannot be repackaged: {why}"
        )),
        cmaf::CmafError::Unsupported(why) => FilterError::NotImplemented(format!(
            "segment {sequence} cannot be repackaged as CMAF: {why}"
        )),
    })
}

fn track_content_type(track: TrackKind) -> &'static str {
    match track {
        TrackKind::Video => "video/mp4",
        TrackKind::Audio => "audio/mp4",
    }
}

fn track_select(track: TrackKind) -> cmaf::Select {
    match track {
        TrackKind::Video => cmaf::Select::Video,
        TrackKind::Audio => cmaf::Select::Audio,
    }
}

/// Largest ClearKey license request read (a few key ids of JSON).
pub const MAX_LICENSE_REQUEST: usize = 16 * 1024;

/// The answer to a request whose body was read ([`Plan::ReadBody`]): a ClearKey license with the
/// key of every requested key id of this endpoint (each KID names its key period).
pub fn answer_body(settings: &Settings, job: &Job, body: &[u8]) -> Response {
    cors(match license(settings, job, body) {
        Ok(r) => r,
        Err(e) => e.to_response(),
    })
}

fn license(settings: &Settings, job: &Job, body: &[u8]) -> Result<Response, FilterError> {
    use base64::Engine as _;
    let ep = endpoint(settings, &job.channel, &job.endpoint)?;
    let bad = |why: &str| {
        FilterError::BadRequest(format!(
            "not a ClearKey license request ({why}); expected JSON {{\"kids\":[\"<base64url key id>\",…],\"type\":\"temporary\"}}"
        ))
    };
    if body.len() > MAX_LICENSE_REQUEST {
        return Err(bad("over 16 KiB"));
    }
    let request: serde_json::Value = serde_json::from_slice(body).map_err(|_| bad("not JSON"))?;
    let kids = request
        .get("kids")
        .and_then(|k| k.as_array())
        .filter(|k| !k.is_empty())
        .ok_or_else(|| bad("no kids"))?;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut keys = Vec::new();
    for kid in kids {
        let kid: [u8; 16] = kid
            .as_str()
            .and_then(|k| b64.decode(k.trim_end_matches('=')).ok())
            .and_then(|k| k.try_into().ok())
            .ok_or_else(|| bad("a key id is not 16 bytes of base64url"))?;
        if let Some(period) = crypto::period_of_kid(ep, &kid) {
            keys.push((kid, crypto::key_for(ep, period)?));
        }
    }
    if keys.is_empty() {
        return Err(FilterError::NotFound(format!(
            "none of the requested key ids is a key of endpoint '{}'",
            ep.name
        )));
    }
    Ok(Response::with_body(
        200,
        "application/json",
        crypto::clearkey_license(&keys).into_bytes(),
    )
    .header("cache-control", "no-store"))
}

/// What comes after the store's answer: the viewer's answer, or (DASH manifests) the next store
/// request. The shell calls this; [`respond`] is the one-step form.
pub fn advance(settings: &Settings, job: &Job, answer: &StoreAnswer<'_>, now_ms: i64) -> Plan {
    let JobKind::DashVariants {
        filter,
        time,
        base_url,
    } = &job.kind
    else {
        return Plan::Respond(respond(settings, job, answer, now_ms));
    };
    let next = || -> Result<Plan, FilterError> {
        if answer.status != 200 {
            return Err(store_error(answer));
        }
        let ep = endpoint(settings, &job.channel, &job.endpoint)?;
        let variants = multivariant::variants(answer.body, ep, filter.as_ref())?;
        // The first variant's playlist is the timeline (`variants` is never empty).
        let first = variants
            .first()
            .map(|v| v.rendition.clone())
            .unwrap_or_default();
        Ok(Plan::Fetch(Box::new(Fetch {
            path: format!("/store/v1/{}/{first}/index.m3u8", job.channel),
            job: Job {
                channel: job.channel.clone(),
                endpoint: job.endpoint.clone(),
                kind: JobKind::DashManifest {
                    variants,
                    time: time.clone(),
                    base_url: base_url.clone(),
                },
            },
        })))
    };
    match next() {
        Ok(p) => p,
        Err(e) => Plan::Respond(cors(e.to_response())),
    }
}

/// The window of a media playlist an endpoint shows for a request's time shift.
fn window(
    ep: &Endpoint,
    pl: &media_playlist::MediaPlaylist,
    time: &TimeShift,
    now_ms: i64,
) -> Result<(std::ops::Range<usize>, playlist_window::Kind, WindowSpec), FilterError> {
    let spec = WindowSpec {
        now_ms,
        window_ms: time
            .window_seconds
            .unwrap_or(ep.cfg.manifest_window_seconds) as i64
            * 1000,
        delay_ms: time.delay_seconds.unwrap_or(ep.cfg.time_delay_seconds) as i64 * 1000,
        start_ms: time.start_ms,
        end_ms: time.end_ms,
    };
    if let Some(start) = time.start_ms
        && start > now_ms
    {
        return Err(FilterError::BadRequest("start is in the future".into()));
    }
    let (range, kind) = playlist_window::select(&pl.segments, &spec);
    if range.is_empty()
        && let (Some(end), Some(first)) = (time.end_ms, pl.segments.first().and_then(|s| s.pdt_ms))
        && end <= first
    {
        return Err(FilterError::BadRequest(format!(
            "the requested time range ends before the startover window, which begins at {}",
            chrono::DateTime::<chrono::Utc>::from_timestamp_millis(first)
                .map_or_else(|| first.to_string(), |t| t.to_rfc3339())
        )));
    }
    Ok((range, kind, spec))
}

/// Builds the viewer's answer from the store's.
pub fn respond(settings: &Settings, job: &Job, answer: &StoreAnswer<'_>, now_ms: i64) -> Response {
    cors(match try_respond(settings, job, answer, now_ms) {
        Ok(r) => r,
        Err(e) => e.to_response(),
    })
}

fn store_error(answer: &StoreAnswer<'_>) -> FilterError {
    let detail = String::from_utf8_lossy(answer.body)
        .trim()
        .chars()
        .take(300)
        .collect::<String>();
    match answer.status {
        0 => FilterError::BadGateway(
            "the store reset the request or answered with more than 32 MiB".into(),
        ),
        404 => FilterError::NotFound(if detail.is_empty() {
            "not found in the store".into()
        } else {
            detail
        }),
        504 => FilterError::GatewayTimeout(format!("the store did not answer in time: {detail}")),
        s => FilterError::BadGateway(format!("the store is unavailable (status {s}): {detail}")),
    }
}

fn try_respond(
    settings: &Settings,
    job: &Job,
    answer: &StoreAnswer<'_>,
    now_ms: i64,
) -> Result<Response, FilterError> {
    if answer.status != 200 {
        return Err(store_error(answer));
    }
    let ep = endpoint(settings, &job.channel, &job.endpoint)?;
    match &job.kind {
        JobKind::Multivariant { filter, carry } => {
            let text = multivariant::write(answer.body, ep, filter.as_ref(), carry)?;
            Ok(
                Response::with_body(200, "application/vnd.apple.mpegurl", text.into_bytes())
                    .header("cache-control", "max-age=5"),
            )
        }
        JobKind::Media { time } => {
            let pl = media_playlist::parse(answer.body)?;
            let (range, kind, _) = window(ep, &pl, time, now_ms)?;
            let text = media_rewrite::write(&pl, range, kind, ep, now_ms)?;
            let max_age = (pl.target_duration / 2).max(1);
            Ok(
                Response::with_body(200, "application/vnd.apple.mpegurl", text.into_bytes())
                    .header("cache-control", format!("max-age={max_age}")),
            )
        }
        JobKind::Remux {
            rendition,
            sequence,
            init,
        } => {
            // An init is built from the segment the URI names: the same bytes on every edge.
            let r = remux(ep, answer, rendition, *sequence, cmaf::Select::All)?;
            let body = if *init { r.init_segment() } else { r.fragment };
            Ok(Response::with_body(200, "video/mp4", body)
                .header("cache-control", "max-age=1209600, immutable"))
        }
        JobKind::Track {
            rendition,
            track,
            time,
            init,
        } => {
            // The store's sequence number of the segment it found at that time: it numbers the
            // fragment and seeds its IVs.
            let sequence = (answer.header)(SEQUENCE_HEADER)
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(time / 90_000);
            let r = remux(ep, answer, rendition, sequence, track_select(*track))?;
            let body = if *init { r.init_segment() } else { r.fragment };
            Ok(Response::with_body(200, track_content_type(*track), body)
                .header("cache-control", "max-age=1209600, immutable"))
        }
        JobKind::DashVariants { .. } => Err(FilterError::BadGateway(
            "a DASH manifest needs two store answers; this one came alone".into(),
        )),
        JobKind::License => Err(FilterError::BadGateway(
            "a license is answered from the request, not from the store".into(),
        )),
        JobKind::DashManifest {
            variants,
            time,
            base_url,
        } => {
            let pl = media_playlist::parse(answer.body)?;
            if pl.segments.iter().any(|s| s.map.is_some()) {
                return Err(FilterError::NotImplemented(format!(
                    "endpoint '{}' is DASH, which this version builds from MPEG-TS ingest only; this channel is ingested as fMP4",
                    ep.name
                )));
            }
            let (range, kind, spec) = window(ep, &pl, time, now_ms)?;
            let text = dash::write(&dash::Manifest {
                variants,
                playlist: &pl,
                range,
                kind,
                endpoint: ep,
                now_ms,
                window_ms: spec.window_ms,
                delay_ms: spec.delay_ms,
                base_url,
            })?;
            let max_age = (pl.target_duration / 2).max(1);
            Ok(
                Response::with_body(200, "application/dash+xml", text.into_bytes())
                    .header("cache-control", format!("max-age={max_age}")),
            )
        }
        JobKind::Init => Ok(Response::with_body(200, "video/mp4", answer.body.to_vec())
            // Named by its content: it never changes.
            .header("cache-control", "max-age=1209600, immutable")),
        JobKind::Segment { sequence } => {
            let ct = (answer.header)("content-type").unwrap_or_else(|| "video/mp2t".into());
            if ep.cfg.format == Format::Cmaf && ct != "video/mp4" {
                return Err(FilterError::NotFound(format!(
                    "endpoint '{}' is cmaf: its segments are {{sequence}}.mp4 (or .m4s for fMP4 ingest), as its playlists list them",
                    ep.name
                )));
            }
            if ep.cfg.encryption.is_some() && ct == "video/mp4" {
                return Err(FilterError::NotImplemented(format!(
                    "endpoint '{}' is encrypted, which this version does for MPEG-TS ingest only; this segment is fMP4 (CMAF)",
                    ep.name
                )));
            }
            let body = match &ep.cfg.encryption {
                None => answer.body.to_vec(),
                Some(enc) => {
                    let pdt = segment_pdt(answer).ok_or_else(|| {
                        FilterError::BadGateway(format!(
                            "the store's segment has no {PDT_HEADER} header; cannot pick its key"
                        ))
                    })?;
                    let period = crypto::key_period(pdt, enc.key_rotation_interval_seconds);
                    let key = crypto::key_for(ep, period)?;
                    // Encrypts straight from the store's answer: one copy of the segment, not two.
                    crypto::encrypt_segment(&key, &crypto::iv_for(ep, *sequence), answer.body)
                }
            };
            Ok(Response::with_body(200, &ct, body)
                .header("cache-control", "max-age=1209600, immutable"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media_rewrite::key_path;
    use aes::cipher::{BlockDecryptMut, KeyIvInit, block_padding::Pkcs7};

    const STORE_MASTER: &str = include_str!("../tests/fixtures/store_multivariant.m3u8");
    const STORE_MEDIA: &str = include_str!("../tests/fixtures/store_media_stream_0.m3u8");
    const GROUPS: &str = include_str!("../tests/fixtures/multivariant_groups.m3u8");
    const STORE_FMP4: &str = include_str!("../tests/fixtures/store_media_fmp4.m3u8");
    /// 2026-11-25T17:23:15.749Z, the first segment of the recorded fMP4 store playlist.
    const T_FMP4: i64 = 1795627395749;
    /// 2026-11-25T14:35:31.666Z, the first segment of the recorded store playlist.
    const T0: i64 = 1_795_617_331_666;

    const CONFIG: &str = r#"{ "store": { "cluster": "edgepack_store" },
      "channels": { "news": { "endpoints": {
        "hls": { "format": "hls", "manifest_window_seconds": 4 },
        "cmaf": { "format": "cmaf", "manifest_window_seconds": 4 },
        "pdt": { "format": "hls", "program_date_time_interval_seconds": 4 },
        "sorted": { "format": "hls", "stream_selection": { "max_video_bits_per_second": 2000000, "stream_order": "video_bitrate_ascending" } },
        "secure": { "format": "hls", "manifest_window_seconds": 60,
          "encryption": { "method": "aes-128", "key_rotation_interval_seconds": 4,
                          "key": { "derived": { "secret": "0123456789abcdef0123" } },
                          "key_token": { "secret": "tok-0123456789abcdef", "ttl_seconds": 300 } },
          "access": { "cdn_identifier": { "secrets": ["current", "previous"] },
                      "ip_allowlist": ["127.0.0.0/8"] } },
        "fixed": { "format": "hls",
          "encryption": { "method": "aes-128", "key_rotation_interval_seconds": 0,
                          "constant_iv": "000102030405060708090a0b0c0d0e0f",
                          "key": { "static": { "key_hex": "2b7e151628aed2a6abf7158809cf4f3c" } },
                          "key_token": { "secret": "tok-0123456789abcdef" } } },
        "dash": { "format": "dash", "manifest_window_seconds": 60 },
        "dash-cenc": { "format": "dash", "manifest_window_seconds": 60,
          "encryption": { "method": "cenc", "key_rotation_interval_seconds": 4,
                          "key": { "derived": { "secret": "0123456789abcdef0123" } },
                          "key_token": { "secret": "tok-0123456789abcdef" } } },
        "cmaf-cbcs": { "format": "cmaf", "manifest_window_seconds": 60,
          "encryption": { "method": "cbcs", "key_rotation_interval_seconds": 4,
                          "key": { "derived": { "secret": "0123456789abcdef0123" } },
                          "key_token": { "secret": "tok-0123456789abcdef" } } } } } } }"#;

    fn settings() -> Settings {
        Settings::from_json(CONFIG.as_bytes()).unwrap()
    }

    fn headers(h: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let h: Vec<(String, String)> = h
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name: &str| h.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    fn plan_at(path: &str, hdrs: &[(&str, &str)], now_ms: i64) -> Plan {
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

    const CDN: &[(&str, &str)] = &[("x-edgepack-cdn-identifier", "previous")];

    fn fetch(path: &str, hdrs: &[(&str, &str)]) -> Fetch {
        match plan_at(path, hdrs, T0 + 10_000) {
            Plan::Fetch(f) => *f,
            other => panic!("{path}: expected a fetch, got {other:?}"),
        }
    }

    fn status(path: &str, hdrs: &[(&str, &str)]) -> (u16, String) {
        match plan_at(path, hdrs, T0 + 10_000) {
            Plan::Respond(r) => (r.status, String::from_utf8(r.body).unwrap()),
            other => panic!("{path}: expected an answer, got {other:?}"),
        }
    }

    fn answer(job: &Job, status: u16, hdrs: &[(&str, &str)], body: &[u8], now_ms: i64) -> Response {
        let h = headers(hdrs);
        respond(
            &settings(),
            job,
            &StoreAnswer {
                status,
                header: &h,
                body,
            },
            now_ms,
        )
    }

    /// The media playlist an endpoint answers for the recorded store playlist at `now`.
    fn media(path: &str, hdrs: &[(&str, &str)], now: i64) -> String {
        let f = fetch(path, hdrs);
        text(&answer(&f.job, 200, &[], STORE_MEDIA.as_bytes(), now))
    }

    fn text(r: &Response) -> String {
        String::from_utf8(r.body.clone()).unwrap()
    }

    fn uris(t: &str) -> Vec<&str> {
        t.lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .collect()
    }

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
                "configured: cmaf, cmaf-cbcs, dash, dash-cenc, fixed, hls, pdt, secure, sorted"
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
    fn cmaf_endpoints_serve_fmp4_ingest_with_its_initialization_segment() {
        let init = "init-e596aaddc6b8f9792ee486b6307bfa40.mp4";
        let now = T_FMP4 + 8_000;
        // The store names the init once, before segment 0; a window that starts later still
        // announces it before its first segment.
        let f = fetch("/out/v1/news/cmaf/stream_0/index.m3u8", &[]);
        let t = text(&answer(&f.job, 200, &[], STORE_FMP4.as_bytes(), now));
        assert!(t.contains("#EXT-X-VERSION:7\n"), "{t}");
        assert_eq!(t.matches("#EXT-X-MAP:").count(), 1, "{t}");
        assert!(
            t.find(&format!("#EXT-X-MAP:URI=\"{init}\"")).unwrap() < t.find("#EXTINF").unwrap(),
            "{t}"
        );
        assert_eq!(uris(&t).last(), Some(&"3.m4s"), "{t}");
        assert!(!uris(&t).contains(&"0.m4s"), "4 s window: {t}");
        // The plain hls format passes fMP4 through the same way.
        let f = fetch("/out/v1/news/hls/stream_0/index.m3u8", &[]);
        let t = text(&answer(&f.job, 200, &[], STORE_FMP4.as_bytes(), now));
        assert_eq!(
            t.matches(&format!("#EXT-X-MAP:URI=\"{init}\"")).count(),
            1,
            "{t}"
        );

        // The initialization segment: fetched by id, passed through, cached for good.
        let f = fetch(&format!("/out/v1/news/cmaf/stream_0/{init}"), &[]);
        assert_eq!(f.path, format!("/store/v1/news/stream_0/{init}"));
        let r = answer(
            &f.job,
            200,
            &[("content-type", "video/mp4")],
            b"ftypmoov",
            now,
        );
        assert_eq!((r.status, r.body.as_slice()), (200, &b"ftypmoov"[..]));
        assert_eq!(r.get("content-type"), Some("video/mp4"));
        assert_eq!(r.get("cache-control"), Some("max-age=1209600, immutable"));
        assert_eq!(
            status("/out/v1/news/cmaf/stream_0/init-xyz.mp4", &[]).0,
            404
        );
        let f = fetch("/out/v1/news/cmaf/stream_0/3.m4s", &[]);
        let r = answer(
            &f.job,
            200,
            &[("content-type", "video/mp4")],
            b"moofmdat",
            now,
        );
        assert_eq!((r.status, r.body.as_slice()), (200, &b"moofmdat"[..]));

        // What this version cannot do is said, not faked: AES-128 of fMP4.
        let f = fetch("/out/v1/news/fixed/stream_0/index.m3u8", &[]);
        let r = answer(&f.job, 200, &[], STORE_FMP4.as_bytes(), now);
        assert_eq!(r.status, 501, "{}", text(&r));
        assert!(text(&r).contains("fMP4"), "{}", text(&r));

        // cmaf over MPEG-TS ingest: repackaged fragments, and one initialization segment per
        // discontinuity period, built from the period's first segment in the store.
        let f = fetch("/out/v1/news/cmaf/stream_0/index.m3u8", &[]);
        let t = text(&answer(
            &f.job,
            200,
            &[],
            STORE_MEDIA.as_bytes(),
            T0 + 8_000,
        ));
        assert!(t.contains("#EXT-X-VERSION:6\n"), "{t}");
        assert_eq!(
            t.matches("#EXT-X-MAP:URI=\"init-ts0.mp4\"").count(),
            1,
            "{t}"
        );
        assert!(uris(&t).iter().all(|u| u.ends_with(".mp4")), "{t}");
        let f = fetch("/out/v1/news/cmaf/stream_0/init-ts0.mp4", &[]);
        assert_eq!(f.path, "/store/v1/news/stream_0/0.ts");
        let f = fetch("/out/v1/news/cmaf/stream_0/3.mp4", &[]);
        assert_eq!(f.path, "/store/v1/news/stream_0/3.ts");
        // Not a TS segment: a clear 502 naming the problem, no panic.
        let r = answer(&f.job, 200, &[], b"not a transport stream", now);
        assert_eq!(r.status, 502, "{}", text(&r));
        assert!(text(&r).contains("cannot be repackaged"), "{}", text(&r));
        // The endpoint's segments are .mp4: a .ts request is answered 404 with the reason.
        let f = fetch("/out/v1/news/cmaf/stream_0/3.ts", &[]);
        let r = answer(&f.job, 200, &[("content-type", "video/mp2t")], b"G", now);
        assert_eq!(r.status, 404);
        assert_eq!(status("/out/v1/news/hls/stream_0/init-ts0.mp4", &[]).0, 404);
        let e = Settings::from_json(
            CONFIG
                .replace(
                    r#""cmaf": { "format": "cmaf","#,
                    r#""cmaf": { "format": "cmaf", "encryption": { "method": "aes-128", "key": { "derived": { "secret": "0123456789abcdef0123" } }, "key_token": { "secret": "tok-0123456789abcdef" } },"#,
                )
                .as_bytes(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("channels.news.endpoints.cmaf.encryption"), "{e}");
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

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn multivariant_carries_time_shift_and_filters() {
        let f = fetch(
            "/out/v1/news/hls/index.m3u8?start=1795617331&x=cachebuster",
            &[],
        );
        assert_eq!(f.path, "/store/v1/news/index.m3u8");
        let r = answer(&f.job, 200, &[], STORE_MASTER.as_bytes(), T0);
        assert_eq!(r.status, 200);
        assert_eq!(r.get("content-type"), Some("application/vnd.apple.mpegurl"));
        let t = text(&r);
        assert_eq!(
            uris(&t),
            [
                "stream_0/index.m3u8?start=1795617331",
                "stream_1/index.m3u8?start=1795617331"
            ]
        );
        assert!(t.contains("RESOLUTION=320x240"), "{t}");

        let f = fetch(
            "/out/v1/news/hls/index.m3u8?aws.manifestfilter=video_height%3A0-200",
            &[],
        );
        let t = text(&answer(&f.job, 200, &[], STORE_MASTER.as_bytes(), T0));
        assert_eq!(uris(&t), ["stream_1/index.m3u8"], "{t}");
        let f = fetch(
            "/out/v1/news/hls/index.m3u8?aws.manifestfilter=video_height:2000-3000",
            &[],
        );
        let r = answer(&f.job, 200, &[], STORE_MASTER.as_bytes(), T0);
        assert_eq!(r.status, 400, "an empty result is a 400");
        assert_eq!(
            status(
                "/out/v1/news/hls/stream_0/index.m3u8?aws.manifestfilter=video_height:0-200",
                &[]
            )
            .0,
            400
        );
        assert_eq!(
            status(
                "/out/v1/news/hls/stream_0/3.ts?aws.manifestfilter=video_height:0-200",
                &[]
            )
            .0,
            400
        );
        assert_eq!(
            status(
                "/out/v1/news/hls/index.m3u8?aws.manifestfilter=donut:1",
                &[]
            )
            .0,
            400
        );
        assert_eq!(
            status("/out/v1/news/hls/index.m3u8?start=2&end=1", &[]).0,
            400
        );
    }

    fn groups(path: &str) -> (u16, String) {
        let f = fetch(path, &[]);
        let r = answer(&f.job, 200, &[], GROUPS.as_bytes(), T0);
        (r.status, text(&r))
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn groups_stay_consistent() {
        let (_, t) = groups("/out/v1/news/hls/index.m3u8?aws.manifestfilter=audio_language:fr");
        // The ac3 group has no French: its only variant goes, and the group with it.
        assert_eq!(
            uris(&t),
            [
                "v1080/index.m3u8",
                "v720hevc/index.m3u8",
                "v360/index.m3u8",
                "audio_en/index.m3u8"
            ]
        );
        assert!(
            t.contains("LANGUAGE=\"fr\"")
                && !t.contains("LANGUAGE=\"en\",NAME=\"English\",DEFAULT"),
            "{t}"
        );
        assert!(!t.contains("GROUP-ID=\"ac3\""), "{t}");
        assert!(
            t.contains("#EXT-X-INDEPENDENT-SEGMENTS\n## hand-made"),
            "other lines kept verbatim: {t}"
        );

        let (_, t) = groups("/out/v1/news/hls/index.m3u8?aws.manifestfilter=video_codec:h265");
        assert_eq!(uris(&t), ["v720hevc/index.m3u8", "audio_en/index.m3u8"]);
        assert!(
            t.contains("GROUP-ID=\"subs\"") && !t.contains("GROUP-ID=\"ac3\""),
            "{t}"
        );

        let (_, t) = groups("/out/v1/news/hls/index.m3u8?aws.manifestfilter=audio_codec:ac-3");
        assert_eq!(uris(&t), ["v540/index.m3u8"], "{t}");
        assert!(
            !t.contains("GROUP-ID=\"subs\"") && !t.contains("GROUP-ID=\"aac\""),
            "{t}"
        );

        let (_, t) = groups(
            "/out/v1/news/hls/index.m3u8?aws.manifestfilter=subtitle_language:es;video_bitrate:1000000-6000000;video_framerate:24-30",
        );
        // v540 has no subtitles group, so a subtitle filter does not judge it.
        assert_eq!(
            uris(&t),
            ["v1080/index.m3u8", "v540/index.m3u8", "audio_en/index.m3u8"],
            "{t}"
        );
        assert!(
            t.contains("LANGUAGE=\"es\"") && !t.contains("NAME=\"English\",URI=\"subs_en"),
            "{t}"
        );

        let (_, t) = groups("/out/v1/news/hls/index.m3u8?aws.manifestfilter=audio_channels:6-8");
        assert_eq!(uris(&t), ["v540/index.m3u8"], "{t}");

        let (_, t) = groups("/out/v1/news/sorted/index.m3u8?start=100");
        assert_eq!(
            uris(&t),
            [
                "audio_en/index.m3u8?start=100",
                "v360/index.m3u8?start=100",
                "v540/index.m3u8?start=100"
            ],
            "{t}"
        );
        assert!(t.contains("URI=\"audio_fr/index.m3u8?start=100\""), "{t}");

        let (s, _) = groups("/out/v1/news/hls/index.m3u8?aws.manifestfilter=audio_language:dahlia");
        assert_eq!(s, 400, "every audio group empty: nothing left");
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn live_window_and_pdt_interval() {
        let f = fetch("/out/v1/news/hls/stream_0/index.m3u8", &[]);
        assert_eq!(f.path, "/store/v1/news/stream_0/index.m3u8");
        let r = answer(&f.job, 200, &[], STORE_MEDIA.as_bytes(), T0 + 10_000);
        assert_eq!(r.get("cache-control"), Some("max-age=1"));
        let t = text(&r);
        assert_eq!(uris(&t), ["2.ts", "3.ts"]);
        assert!(t.contains("#EXT-X-MEDIA-SEQUENCE:2\n"), "{t}");
        assert!(!t.contains("PROGRAM-DATE-TIME"), "interval 0: no PDT: {t}");
        assert!(!t.contains("ENDLIST") && !t.contains("PLAYLIST-TYPE"));

        let t = media("/out/v1/news/pdt/stream_0/index.m3u8", &[], T0 + 10_000);
        assert_eq!(
            t.matches("#EXT-X-PROGRAM-DATE-TIME:").count(),
            2,
            "t0 and t0+4 s: {t}"
        );
        assert!(
            t.contains(
                "#EXT-X-PROGRAM-DATE-TIME:2026-11-25T14:35:31.666Z\n#EXTINF:2.000000,\n0.ts"
            ),
            "{t}"
        );
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn time_shift_vod_and_event() {
        let start = (T0 + 2_000) / 1000;
        let end = (T0 + 7_000) / 1000;
        let f = fetch(
            &format!("/out/v1/news/hls/stream_0/index.m3u8?start={start}&end={end}"),
            &[],
        );
        let t = text(&answer(
            &f.job,
            200,
            &[],
            STORE_MEDIA.as_bytes(),
            T0 + 60_000,
        ));
        assert_eq!(uris(&t), ["1.ts", "2.ts"], "{t}");
        assert!(
            t.contains("#EXT-X-PLAYLIST-TYPE:VOD\n") && t.ends_with("#EXT-X-ENDLIST\n"),
            "{t}"
        );
        let f = fetch(
            &format!(
                "/out/v1/news/hls/stream_0/index.m3u8?start={start}&end={}",
                end + 3600
            ),
            &[],
        );
        let t = text(&answer(
            &f.job,
            200,
            &[],
            STORE_MEDIA.as_bytes(),
            T0 + 60_000,
        ));
        assert!(
            t.contains("#EXT-X-PLAYLIST-TYPE:EVENT\n") && !t.contains("ENDLIST"),
            "{t}"
        );
        assert_eq!(uris(&t), ["1.ts", "2.ts", "3.ts"]);
        let f = fetch(
            "/out/v1/news/hls/stream_0/index.m3u8?start=1000000000&end=1000000600",
            &[],
        );
        let r = answer(&f.job, 200, &[], STORE_MEDIA.as_bytes(), T0 + 60_000);
        assert_eq!(r.status, 400);
        assert!(text(&r).contains("startover window"), "{}", text(&r));
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn encrypted_playlist_keys_and_segments() {
        let now = T0 + 10_000;
        let t = media("/out/v1/news/secure/stream_0/index.m3u8", CDN, now);
        // 4 s rotation: periods change at multiples of 4 s of PDT.
        let keys: Vec<&str> = t.lines().filter(|l| l.starts_with("#EXT-X-KEY")).collect();
        assert!(keys.len() >= 2, "{t}");
        assert!(
            keys.iter()
                .all(|k| k.starts_with("#EXT-X-KEY:METHOD=AES-128,URI=\"../key/")
                    && !k.contains("IV=")),
            "{t}"
        );
        // Fetch the first key with its token, as a player would.
        let uri = keys[0]
            .split("URI=\"")
            .nth(1)
            .unwrap()
            .trim_end_matches('"');
        let key_url = format!("/out/v1/news/secure/{}", uri.trim_start_matches("../"));
        let period: u64 = uri
            .trim_start_matches("../key/")
            .split('?')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let ep = &settings().channels["news"]["secure"];
        match plan_at(&key_url, CDN, now) {
            Plan::Respond(r) => {
                assert_eq!((r.status, r.get("cache-control")), (200, Some("no-store")));
                assert_eq!(r.body, crypto::key_for(ep, period).unwrap().to_vec());
            }
            other => panic!("{other:?}"),
        }
        let expired = plan_at(&key_url, CDN, now + 3_600_000);
        assert!(
            matches!(expired, Plan::Respond(ref r) if r.status == 403 && String::from_utf8_lossy(&r.body).contains("expired"))
        );
        let tampered = key_url.replace("token=", "token=1");
        assert!(matches!(plan_at(&tampered, CDN, now), Plan::Respond(ref r) if r.status == 403));
        let other_key =
            key_url.replacen(&format!("key/{period}"), &format!("key/{}", period + 1), 1);
        assert!(
            matches!(plan_at(&other_key, CDN, now), Plan::Respond(ref r) if r.status == 403),
            "tokens are bound to their key"
        );
        assert!(
            matches!(plan_at("/out/v1/news/secure/key/1?token=x", CDN, now), Plan::Respond(ref r) if r.status == 400)
        );
        assert!(
            matches!(plan_at("/out/v1/news/secure/key/1", CDN, now), Plan::Respond(ref r) if r.status == 403)
        );
        assert!(
            matches!(plan_at("/out/v1/news/hls/key/1", &[], now), Plan::Respond(ref r) if r.status == 404)
        );

        // The segment is encrypted with its period's key and the media-sequence IV.
        let f = fetch("/out/v1/news/secure/stream_0/3.ts", CDN);
        assert_eq!(f.path, "/store/v1/news/stream_0/3.ts");
        let clear: Vec<u8> = (0..188 * 50).map(|i| (i % 251) as u8).collect();
        let pdt = "2026-11-25T14:35:37.666Z";
        let r = answer(
            &f.job,
            200,
            &[(PDT_HEADER, pdt), ("content-type", "video/mp2t")],
            &clear,
            now,
        );
        assert_eq!(r.status, 200);
        assert_eq!(r.get("cache-control"), Some("max-age=1209600, immutable"));
        assert_eq!(r.get("access-control-allow-origin"), Some("*"));
        let p = crypto::key_period(T0 + 6_000, 4);
        let dec = cbc::Decryptor::<aes::Aes128>::new(
            &crypto::key_for(ep, p).unwrap().into(),
            &u128::from(3u64).to_be_bytes().into(),
        )
        .decrypt_padded_vec_mut::<Pkcs7>(&r.body)
        .unwrap();
        assert_eq!(dec, clear);
        // Identical on every edge: same request, same bytes.
        let again = answer(
            &f.job,
            200,
            &[(PDT_HEADER, pdt), ("content-type", "video/mp2t")],
            &clear,
            now + 99_000,
        );
        assert_eq!(again.body, r.body);
        let no_pdt = answer(&f.job, 200, &[], &clear, now);
        assert_eq!(no_pdt.status, 502);
        assert_eq!(key_path(ep, 7), "/out/v1/news/secure/key/7");
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn constant_iv_is_announced() {
        let t = media("/out/v1/news/fixed/stream_0/index.m3u8", &[], T0 + 10_000);
        assert_eq!(
            t.matches("#EXT-X-KEY").count(),
            1,
            "no rotation: one key: {t}"
        );
        assert!(
            t.contains("URI=\"../key/0?token=")
                && t.contains(",IV=0x000102030405060708090A0B0C0D0E0F"),
            "{t}"
        );
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn store_failures_map_to_clear_statuses() {
        let f = fetch("/out/v1/news/hls/stream_0/index.m3u8", &[]);
        let cases = [(404, 404), (503, 502), (504, 504), (500, 502), (0, 502)];
        for (store, viewer) in cases {
            let r = answer(&f.job, store, &[], b"upstream connect error", T0);
            assert_eq!(r.status, viewer, "store {store}");
            assert_eq!(r.get("cache-control"), Some("no-store"));
        }
        assert_eq!(answer(&f.job, 200, &[], b"<html>", T0).status, 502);
    }

    /// The first two steps of a DASH manifest: the plan, then the multivariant answer.
    fn after_multivariant(path: &str, hdrs: &[(&str, &str)], now: i64) -> Plan {
        let f = fetch(path, hdrs);
        assert_eq!(f.path, "/store/v1/news/index.m3u8");
        let h = headers(&[]);
        advance(
            &settings(),
            &f.job,
            &StoreAnswer {
                status: 200,
                header: &h,
                body: STORE_MASTER.as_bytes(),
            },
            now,
        )
    }

    /// The three steps of a DASH manifest: plan, the multivariant answer, the media answer.
    fn mpd(endpoint: &str, now: i64) -> String {
        let hdrs = [(":authority", "edge.example"), (":scheme", "https")];
        let next = after_multivariant(&format!("/out/v1/news/{endpoint}/index.mpd"), &hdrs, now);
        let Plan::Fetch(media) = next else {
            panic!("{next:?}")
        };
        assert_eq!(media.path, "/store/v1/news/stream_0/index.m3u8");
        let r = answer(&media.job, 200, &[], STORE_MEDIA.as_bytes(), now);
        assert_eq!(r.status, 200, "{}", text(&r));
        assert_eq!(r.get("content-type"), Some("application/dash+xml"));
        text(&r)
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn dash_manifests_state_program_date_times_and_every_variant() {
        let t = mpd("dash", T0 + 8_000);
        assert!(
            t.contains(r#"type="dynamic" availabilityStartTime="1970-01-01T00:00:00Z""#),
            "{t}"
        );
        assert!(t.contains(r#"timeShiftBufferDepth="PT60S""#), "{t}");
        assert!(
            t.contains("<UTCTiming schemeIdUri=\"urn:mpeg:dash:utc:direct:2014\""),
            "{t}"
        );
        // One period (no discontinuity, no keys) from the epoch; four 2 s segments at their
        // program date times, in 90 kHz.
        assert_eq!(t.matches("<Period ").count(), 1, "{t}");
        assert!(t.contains(r#"<Period id="0-0" start="PT0S">"#), "{t}");
        let s = format!(r#"<S t="{}" d="180000" r="3"/>"#, T0 * 90);
        assert_eq!(t.matches(&s).count(), 2, "video and audio timelines: {t}");
        assert!(
            t.contains(&format!(
                r#"presentationTimeOffset="0" initialization="$RepresentationID$/init-v{}.mp4" media="$RepresentationID$/v$Time$.mp4""#,
                T0 * 90
            )),
            "{t}"
        );
        // Both variants' video, with the multivariant playlist's codecs and sizes; the audio of
        // the lowest-bandwidth variant.
        assert!(t.contains(r#"<Representation id="stream_0" bandwidth="730400" codecs="avc1.42c014" width="320" height="240""#), "{t}");
        assert!(
            t.contains(r#"<Representation id="stream_1" bandwidth="290400" codecs="avc1.42c00d""#),
            "{t}"
        );
        assert!(
            t.contains(&format!(
                r#"initialization="stream_1/init-a{}.mp4" media="stream_1/a$Time$.mp4""#,
                T0 * 90
            )),
            "{t}"
        );
        assert!(!t.contains("ContentProtection"), "{t}");
        // A past range is a static manifest starting at 0.
        let Plan::Fetch(m) = after_multivariant(
            "/out/v1/news/dash/index.mpd?start=2026-11-25T14:35:31Z&end=2026-11-25T14:35:40Z",
            &[],
            T0 + 60_000,
        ) else {
            panic!()
        };
        let t = text(&answer(
            &m.job,
            200,
            &[],
            STORE_MEDIA.as_bytes(),
            T0 + 60_000,
        ));
        assert!(
            t.contains(r#"type="static" mediaPresentationDuration="PT8S""#),
            "{t}"
        );
        assert!(
            t.contains(&format!(r#"presentationTimeOffset="{}""#, T0 * 90)),
            "{t}"
        );

        // Each endpoint answers in its own format only.
        assert_eq!(status("/out/v1/news/dash/index.m3u8", &[]).0, 404);
        assert_eq!(status("/out/v1/news/dash/stream_0/1.ts", &[]).0, 404);
        assert_eq!(status("/out/v1/news/hls/index.mpd", &[]).0, 404);
        // Segments: one track of the store's MPEG-TS segment.
        // Segments: one track of the store's MPEG-TS segment at that time (renditions may number
        // their segments differently in the store; they share times).
        let f = fetch(&format!("/out/v1/news/dash/stream_1/a{}.mp4", T0 * 90), &[]);
        assert_eq!(f.path, format!("/store/v1/news/stream_1/at/{T0}.ts"));
        assert_eq!(answer(&f.job, 200, &[], b"not ts", T0).status, 502);
        let f = fetch(
            &format!("/out/v1/news/dash/stream_0/init-v{}.mp4", T0 * 90),
            &[],
        );
        assert_eq!(f.path, format!("/store/v1/news/stream_0/at/{T0}.ts"));
        assert_eq!(status("/out/v1/news/dash/stream_0/v1001.mp4", &[]).0, 404);
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn encrypted_dash_has_a_period_per_key_and_its_license_server_answers_key_ids() {
        use base64::Engine as _;
        let t = mpd("dash-cenc", T0 + 8_000);
        let ep = &settings().channels["news"]["dash-cenc"];
        // Keys rotate every 4 s: the segments at 331.666, 333.666, 335.666 and 337.666 s past
        // the minute fall in key periods …82, …83, …83 and …84.
        let first = crypto::key_period(T0, 4);
        let periods: Vec<u64> = (0..4)
            .map(|i| crypto::key_period(T0 + 2000 * i, 4))
            .collect();
        assert_eq!(periods, [first, first + 1, first + 1, first + 2]);
        assert_eq!(t.matches("<Period ").count(), 3, "{t}");
        for p in first..=first + 2 {
            assert!(
                t.contains(&format!(
                    r#"<Period id="0-{p}" start="{}""#,
                    super::dash::duration(p as i64 * 4000)
                )),
                "{t}"
            );
            let kid = crypto::kid_uuid(&crypto::kid_for(ep, p));
            assert_eq!(
                t.matches(&format!(r#"value="cenc" cenc:default_KID="{kid}""#))
                    .count(),
                2,
                "{t}"
            );
        }
        // The second period starts at its first segment; its init is built from it.
        assert!(
            t.contains(&format!(
                r#"initialization="$RepresentationID$/init-v{}.mp4""#,
                (T0 + 2000) * 90
            )),
            "{t}"
        );
        assert!(
            t.contains("<dashif:Laurl>https://edge.example/out/v1/news/dash-cenc/clearkey?token="),
            "{t}"
        );
        assert!(t.contains("<cenc:pssh>"), "{t}");

        // The license server: a POST naming key ids, with the token the MPD gives.
        let path = "/out/v1/news/dash-cenc/clearkey";
        let expiry = crypto::token_expiry(T0, 300);
        let token = crypto::token("tok-0123456789abcdef", path, expiry).unwrap();
        let req = |method: &str, p: &str| {
            let h = headers(&[]);
            plan(
                &settings(),
                &Request {
                    method,
                    path: p,
                    header: &h,
                    client_ip: None,
                    now_ms: T0,
                },
            )
        };
        let with_token = format!("{path}?token={token}");
        let Plan::ReadBody(job) = req("POST", &with_token) else {
            panic!("a license request reads its body")
        };
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let kid = crypto::kid_for(ep, first + 1);
        let body = format!(r#"{{"kids":["{}"],"type":"temporary"}}"#, b64.encode(kid));
        let r = answer_body(&settings(), &job, body.as_bytes());
        assert_eq!(r.status, 200, "{}", text(&r));
        let json: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(json["keys"][0]["kid"], b64.encode(kid));
        assert_eq!(
            json["keys"][0]["k"],
            b64.encode(crypto::key_for(ep, first + 1).unwrap())
        );
        assert_eq!(r.get("cache-control"), Some("no-store"));
        assert_eq!(answer_body(&settings(), &job, b"{}").status, 400);
        assert_eq!(answer_body(&settings(), &job, b"[1").status, 400);
        let foreign = crypto::kid_for(&settings().channels["news"]["cmaf-cbcs"], first);
        let r = answer_body(
            &settings(),
            &job,
            format!(r#"{{"kids":["{}"]}}"#, b64.encode(foreign)).as_bytes(),
        );
        assert_eq!(r.status, 404, "another endpoint's key id: {}", text(&r));
        let status_of = |p: Plan| match p {
            Plan::Respond(r) => r.status,
            other => panic!("{other:?}"),
        };
        assert_eq!(status_of(req("POST", path)), 403, "no token");
        assert_eq!(status_of(req("GET", &with_token)), 405);
        assert_eq!(
            status_of(req("POST", "/out/v1/news/dash/clearkey")),
            404,
            "a clear endpoint"
        );
        // Preflight for the license POST.
        match req("OPTIONS", path) {
            Plan::Respond(r) => assert_eq!(
                r.get("access-control-allow-methods"),
                Some("GET, POST, OPTIONS")
            ),
            other => panic!("{other:?}"),
        }
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn cbcs_cmaf_playlists_carry_sample_aes_keys_and_an_init_per_key() {
        let f = fetch("/out/v1/news/cmaf-cbcs/stream_0/index.m3u8", &[]);
        let t = text(&answer(
            &f.job,
            200,
            &[],
            STORE_MEDIA.as_bytes(),
            T0 + 8_000,
        ));
        let first = crypto::key_period(T0, 4);
        for p in first..=first + 2 {
            assert!(
                t.contains(&format!(
                    "#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"../key/{p}?token="
                )),
                "{t}"
            );
        }
        assert!(
            t.contains(r#"KEYFORMAT="identity",KEYFORMATVERSIONS="1""#),
            "{t}"
        );
        // A new initialization segment (its tenc names the KID) with each key.
        let maps: Vec<&str> = t.lines().filter(|l| l.starts_with("#EXT-X-MAP")).collect();
        assert_eq!(
            maps,
            [
                r#"#EXT-X-MAP:URI="init-ts0.mp4""#,
                r#"#EXT-X-MAP:URI="init-ts1.mp4""#,
                r#"#EXT-X-MAP:URI="init-ts3.mp4""#
            ],
            "{t}"
        );
        // The key itself, as for AES-128.
        let path = format!("/out/v1/news/cmaf-cbcs/key/{first}");
        let token =
            crypto::token("tok-0123456789abcdef", &path, crypto::token_expiry(T0, 300)).unwrap();
        match plan_at(&format!("{path}?token={token}"), &[], T0) {
            Plan::Respond(r) => assert_eq!(
                r.body,
                crypto::key_for(&settings().channels["news"]["cmaf-cbcs"], first).unwrap()
            ),
            other => panic!("{other:?}"),
        }
        // fMP4 ingest cannot be encrypted by this version: said, not faked.
        let f = fetch("/out/v1/news/cmaf-cbcs/stream_0/index.m3u8", &[]);
        assert_eq!(
            answer(&f.job, 200, &[], STORE_FMP4.as_bytes(), T_FMP4 + 8_000).status,
            501
        );
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn dash_starts_a_period_at_a_discontinuity_and_applies_the_manifest_filter() {
        // An encoder restart before segment 2: a discontinuity, 0.5 s later than contiguous.
        let store = STORE_MEDIA
            .replace(
                "#EXT-X-PROGRAM-DATE-TIME:2026-11-25T14:35:35.666Z",
                "#EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME:2026-11-25T14:35:36.166Z",
            )
            .replace("14:35:37.666Z", "14:35:38.166Z");
        let Plan::Fetch(m) = after_multivariant(
            "/out/v1/news/dash/index.mpd?aws.manifestfilter=video_height:0-200",
            &[],
            T0 + 9_000,
        ) else {
            panic!()
        };
        // The filter leaves stream_1 (160x120) only: its playlist gives the timeline.
        assert_eq!(m.path, "/store/v1/news/stream_1/index.m3u8");
        let t = text(&answer(&m.job, 200, &[], store.as_bytes(), T0 + 9_000));
        assert!(!t.contains(r#"id="stream_0""#), "{t}");
        assert!(t.contains(r#"<Representation id="stream_1""#), "{t}");
        // Two periods: the second starts at the discontinuity, its init and timeline from
        // that segment's program date time.
        assert_eq!(t.matches("<Period ").count(), 2, "{t}");
        let restart = T0 + 4_500;
        assert!(
            t.contains(&format!(
                r#"<Period id="1-0" start="{}">"#,
                super::dash::duration(restart)
            )),
            "{t}"
        );
        assert!(
            t.contains(&format!(
                r#"initialization="$RepresentationID$/init-v{}.mp4""#,
                restart * 90
            )),
            "{t}"
        );
        assert!(
            t.contains(&format!(r#"<S t="{}" d="180000" r="1"/>"#, restart * 90)),
            "{t}"
        );
        assert!(
            t.contains(&format!(r#"<S t="{}" d="180000" r="1"/>"#, T0 * 90)),
            "{t}"
        );
        // A filter that leaves nothing is the request's fault.
        let r = match after_multivariant(
            "/out/v1/news/dash/index.mpd?aws.manifestfilter=video_height:1000-2000",
            &[],
            T0,
        ) {
            Plan::Respond(r) => r,
            other => panic!("{other:?}"),
        };
        assert_eq!(r.status, 400, "{}", text(&r));
    }
}
