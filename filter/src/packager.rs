//! The sans-IO heart of the filter: `plan` turns a viewer's request into an answer or a fetch
//! from the store; `respond` turns the store's answer into the viewer's. The shell does the I/O.

use std::net::IpAddr;

use crate::access;
use crate::config::{Endpoint, Settings};
use crate::crypto;
use crate::error::FilterError;
use crate::media_playlist;
use crate::media_rewrite;
use crate::multivariant;
use crate::playlist_window::{self, WindowSpec};
use crate::query::{ManifestFilter, Query, TimeShift};
use crate::response::Response;
use crate::route::{self, Asset};

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
    Fetch(Fetch),
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
}

/// The store's answer as the shell received it. `status` 0 means the call was reset (no headers).
pub struct StoreAnswer<'a> {
    pub status: u16,
    pub header: &'a dyn Fn(&str) -> Option<String>,
    pub body: &'a [u8],
}

/// Header the store puts on segments: their program date time (RFC 3339).
pub const PDT_HEADER: &str = "x-edgepack-program-date-time";

fn endpoint<'s>(settings: &'s Settings, channel: &str, name: &str) -> Result<&'s Endpoint, FilterError> {
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
        Ok(p) => p,
        Err(e) => Plan::Respond(e.to_response()),
    }
}

fn try_plan(settings: &Settings, req: &Request<'_>) -> Result<Plan, FilterError> {
    let (path, raw_query) = req.path.split_once('?').unwrap_or((req.path, ""));
    let Some(r) = route::route(path)? else {
        return Ok(Plan::NotOurs);
    };
    if req.method != "GET" && req.method != "HEAD" {
        return Err(FilterError::MethodNotAllowed(format!(
            "method {} is not allowed; edgepack endpoints answer GET and HEAD",
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
    match &r.asset {
        Asset::Multivariant => {
            let filter = query.manifest_filter.as_deref().map(ManifestFilter::parse).transpose()?;
            // Validate the time-shift now, so a bad one fails here and not in every child.
            TimeShift::from_query(&query)?;
            Ok(Plan::Fetch(Fetch {
                path: store("index.m3u8"),
                job: job(JobKind::Multivariant {
                    filter,
                    carry: query.carry.clone(),
                }),
            }))
        }
        Asset::Media { rendition } => {
            if query.manifest_filter.is_some() {
                return Err(child_filter());
            }
            Ok(Plan::Fetch(Fetch {
                path: store(&format!("{rendition}/index.m3u8")),
                job: job(JobKind::Media {
                    time: TimeShift::from_query(&query)?,
                }),
            }))
        }
        Asset::Segment {
            rendition,
            sequence,
            ext,
        } => {
            if query.manifest_filter.is_some() {
                return Err(child_filter());
            }
            Ok(Plan::Fetch(Fetch {
                path: store(&format!("{rendition}/{sequence}.{ext}")),
                job: job(JobKind::Segment {
                    sequence: *sequence,
                }),
            }))
        }
        Asset::Key { key_id } => {
            let enc = ep.cfg.encryption.as_ref().ok_or_else(|| {
                FilterError::NotFound(format!("endpoint '{}' is not encrypted: no keys", ep.name))
            })?;
            let period: u64 = key_id
                .parse()
                .map_err(|_| FilterError::BadRequest(format!("key id '{key_id}' is not a key period")))?;
            crypto::verify_token(&enc.key_token.secret, path, query.token.as_deref(), req.now_ms)?;
            let key = crypto::key_for(ep, period)?;
            Ok(Plan::Respond(
                Response::with_body(200, "application/octet-stream", key.to_vec())
                    .header("cache-control", "no-store"),
            ))
        }
    }
}

/// Builds the viewer's answer from the store's.
pub fn respond(settings: &Settings, job: &Job, answer: &StoreAnswer<'_>, now_ms: i64) -> Response {
    match try_respond(settings, job, answer, now_ms) {
        Ok(r) => r,
        Err(e) => e.to_response(),
    }
}

fn store_error(answer: &StoreAnswer<'_>) -> FilterError {
    let detail = String::from_utf8_lossy(answer.body).trim().chars().take(300).collect::<String>();
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
            Ok(Response::with_body(200, "application/vnd.apple.mpegurl", text.into_bytes())
                .header("cache-control", "max-age=5"))
        }
        JobKind::Media { time } => {
            let pl = media_playlist::parse(answer.body)?;
            let spec = WindowSpec {
                now_ms,
                window_ms: time.window_seconds.unwrap_or(ep.cfg.manifest_window_seconds) as i64 * 1000,
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
                && let (Some(end), Some(first)) =
                    (time.end_ms, pl.segments.first().and_then(|s| s.pdt_ms))
                && end <= first
            {
                return Err(FilterError::BadRequest(format!(
                    "the requested time range ends before the startover window, which begins at {}",
                    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(first)
                        .map_or_else(|| first.to_string(), |t| t.to_rfc3339())
                )));
            }
            let text = media_rewrite::write(&pl, range, kind, ep, now_ms)?;
            let max_age = (pl.target_duration / 2).max(1);
            Ok(Response::with_body(200, "application/vnd.apple.mpegurl", text.into_bytes())
                .header("cache-control", format!("max-age={max_age}")))
        }
        JobKind::Segment { sequence } => {
            let mut body = answer.body.to_vec();
            if let Some(enc) = &ep.cfg.encryption {
                let pdt = (answer.header)(PDT_HEADER)
                    .and_then(|v| chrono::DateTime::parse_from_rfc3339(v.trim()).ok())
                    .map(|t| t.timestamp_millis())
                    .ok_or_else(|| {
                        FilterError::BadGateway(format!(
                            "the store's segment has no {PDT_HEADER} header; cannot pick its key"
                        ))
                    })?;
                let period = crypto::key_period(pdt, enc.key_rotation_interval_seconds);
                let key = crypto::key_for(ep, period)?;
                body = crypto::encrypt_segment(&key, &crypto::iv_for(ep, *sequence), &body);
            }
            let ct = (answer.header)("content-type").unwrap_or_else(|| "video/mp2t".into());
            Ok(Response::with_body(200, &ct, body)
                .header("cache-control", "max-age=1209600, immutable"))
        }
    }
}
