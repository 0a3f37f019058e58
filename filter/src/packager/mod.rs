//! The sans-IO heart of the filter, and its vocabulary: [`plan`] turns a viewer's request into an
//! answer, a store fetch, or a body to read; [`on_store_answer`] turns the store's answer into the
//! viewer's answer or (DASH manifests) the next fetch; [`answer_body`] answers a request from its
//! body (ClearKey licenses). The shell does the I/O.
//!
//! One module per kind of answer: [`request`] (request → plan), [`playlists`] (HLS playlists and
//! DASH manifests), [`segments`] (TS segments, AES-128, fMP4 initialization segments),
//! [`tracks`] (CMAF fragments and inits repackaged from MPEG-TS), [`keys`] (key delivery and
//! licenses). HTTP policy (CORS, cache lifetimes, error bodies) is in [`crate::http_policy`].

use std::net::IpAddr;

use crate::config::{Endpoint, Settings};
use crate::error::FilterError;
use crate::http_policy::cors;
use crate::multivariant;
use crate::query::{ManifestFilter, TimeShift};
use crate::response::Response;
use crate::route::TrackKind;

pub mod keys;
pub mod playlists;
pub mod request;
pub mod segments;
pub mod smooth;
pub mod text;
pub mod tracks;

#[cfg(test)]
mod test_fixtures;

use edgepack_store_api::api as store_api;
pub use edgepack_store_api::api::{PROGRAM_DATE_TIME_HEADER as PDT_HEADER, SEQUENCE_HEADER};
pub use keys::MAX_LICENSE_REQUEST;

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
    /// Fetch from the store, then call [`on_store_answer`].
    Fetch(Box<Fetch>),
    /// Read the request body (a ClearKey license request), then call [`answer_body`].
    ReadBody(Box<LicenseRequest>),
}

/// A store request and what to do with its answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Fetch {
    /// Path on the store's internal API.
    pub path: String,
    pub next: Step,
}

impl Fetch {
    /// A segment or initialization segment the filter produces: deterministic, so it may be
    /// kept once per edge and served to every viewer who asks for the same path.
    pub fn is_segment(&self) -> bool {
        matches!(
            &self.next,
            Step::Answer(Job {
                kind: JobKind::Segment { .. }
                    | JobKind::Init
                    | JobKind::Remux { .. }
                    | JobKind::Track { .. }
                    | JobKind::SmoothFragment { .. },
                ..
            }) | Step::SmoothFragmentVariants(_)
                | Step::WithInit(_)
                | Step::Text(_)
        )
    }

    /// A playlist (multivariant, or a media playlist view): its answer needs no header, and a
    /// VM may reuse a fresh one for other viewers (`store.playlist_cache_ms`).
    pub fn is_playlist(&self) -> bool {
        match &self.next {
            Step::DashVariants(_)
            | Step::SmoothVariants(_)
            | Step::SmoothTimeline(_)
            | Step::SmoothFragmentVariants(_) => true,
            // The multivariant playlist that names the subtitles' video.
            Step::Text(t) => t.stage == text::Stage::Variants,
            Step::SmoothCodecs(_) | Step::WithInit(_) => false,
            Step::Answer(job) => matches!(
                job.kind,
                JobKind::Multivariant { .. } | JobKind::Media { .. } | JobKind::DashManifest { .. }
            ),
        }
    }

    /// The viewer's answer is a playlist or manifest (kept beside the store's answer for other
    /// viewers), not a segment made with the help of a playlist.
    pub fn answers_a_playlist(&self) -> bool {
        self.is_playlist() && !self.is_segment()
    }
}

/// What the store's answer is for: the viewer's answer, or a step towards it.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// The store's answer makes the viewer's.
    Answer(Job),
    /// DASH, step 1 of 2: the store's multivariant playlist names the variants; the first
    /// variant's media playlist (step 2, [`JobKind::DashManifest`]) gives the timeline.
    DashVariants(DashVariants),
    /// Smooth Streaming manifest, step 1: the store's multivariant playlist names the variants.
    SmoothVariants(DashVariants),
    /// Smooth Streaming manifest, step 2: the first variant's media playlist gives the timeline.
    SmoothTimeline(Box<smooth::Timeline>),
    /// Smooth Streaming manifest, step 3 and on: a segment of each track whose
    /// `CodecPrivateData` this VM does not know yet.
    SmoothCodecs(Box<smooth::Codecs>),
    /// Smooth Streaming fragment, step 1 of 2: the variants say which rendition the URL's
    /// bitrate names.
    SmoothFragmentVariants(smooth::FragmentStart),
    /// A segment ingested as fMP4 arrived for repackaging: its initialization segment is asked
    /// for next, then the job runs on both.
    WithInit(Box<WithInit>),
    /// A subtitle segment on its way to a text fragment ([`text`]).
    Text(Box<text::TextFragment>),
}

/// An fMP4 segment waiting for its initialization segment.
#[derive(Debug, Clone, PartialEq)]
pub struct WithInit {
    pub job: Job,
    /// The headers of the store's segment answer the job reads (program date time, sequence,
    /// duration, content type).
    pub headers: Vec<(String, String)>,
    pub segment: Vec<u8>,
}

/// The first step of a DASH manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct DashVariants {
    pub channel: String,
    pub endpoint: String,
    pub filter: Option<ManifestFilter>,
    pub time: TimeShift,
    /// `https://host/out/v1/{channel}/{endpoint}/`: ClearKey license URLs are absolute.
    pub base_url: String,
}

/// A store-backed answer: the endpoint it is for and how the store's answer becomes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub channel: String,
    pub endpoint: String,
    pub kind: JobKind,
}

/// The kinds of store-backed answers.
#[derive(Debug, Clone, PartialEq)]
pub enum JobKind {
    /// The HLS multivariant playlist.
    Multivariant {
        filter: Option<ManifestFilter>,
        carry: Vec<String>,
    },
    /// An HLS media playlist.
    Media { time: TimeShift },
    /// A segment as ingested, AES-128-encrypted on such endpoints.
    Segment { sequence: u64 },
    /// An fMP4 initialization segment, passed through.
    Init,
    /// An MPEG-TS segment repackaged as a CMAF fragment (both tracks: HLS), or (`init`) the
    /// initialization segment built from it.
    Remux {
        rendition: String,
        sequence: u64,
        init: bool,
    },
    /// DASH, step 2 of 2: the first variant's media playlist gives the timeline.
    DashManifest {
        variants: Vec<multivariant::Variant>,
        /// The variants' alternative audio renditions (none: their muxed audio).
        audio: Vec<multivariant::AudioRendition>,
        /// Their subtitle renditions.
        subtitles: Vec<multivariant::SubtitleRendition>,
        time: TimeShift,
        base_url: String,
    },
    /// One track of an MPEG-TS segment as a Smooth Streaming fragment (`time` in 10 MHz).
    SmoothFragment {
        rendition: String,
        track: TrackKind,
        time: u64,
    },
    /// One track of an MPEG-TS segment as a CMAF fragment, or (`init`) the track's
    /// initialization segment built from it (DASH; the segment is named by its time).
    Track {
        rendition: String,
        track: TrackKind,
        time: u64,
        init: bool,
    },
}

/// A ClearKey license request whose token was checked: its body names the key ids.
#[derive(Debug, Clone, PartialEq)]
pub struct LicenseRequest {
    pub channel: String,
    pub endpoint: String,
}

/// The store's answer as the shell received it. `status` 0 means the call was reset (no headers).
pub struct StoreAnswer<'a> {
    pub status: u16,
    pub header: &'a dyn Fn(&str) -> Option<String>,
    pub body: &'a [u8],
}

/// The configured endpoint, or a 404 naming what is configured.
pub(crate) fn endpoint<'s>(
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
    match request::plan(settings, req) {
        Ok(Plan::Respond(r)) => Plan::Respond(cors(r)),
        Ok(p) => p,
        Err(e) => Plan::Respond(cors(e.to_response())),
    }
}

/// What comes after a store answer: the viewer's answer, or (DASH manifests) the next fetch.
pub fn on_store_answer(
    settings: &Settings,
    step: &Step,
    answer: &StoreAnswer<'_>,
    now_ms: i64,
) -> Plan {
    match step {
        Step::Answer(job) => {
            if let Some(plan) = text::start(settings, job, answer) {
                return plan;
            }
            match init_fetch(job, answer) {
                Some(fetch) => Plan::Fetch(Box::new(fetch)),
                None => Plan::Respond(respond(settings, job, answer, now_ms)),
            }
        }
        Step::Text(t) => text::on_answer(t, answer),
        Step::WithInit(w) => {
            let header = |name: &str| {
                w.headers
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
            };
            let segment = StoreAnswer {
                status: 200,
                header: &header,
                body: &w.segment,
            };
            Plan::Respond(if answer.status == 200 {
                respond_with_init(settings, &w.job, &segment, Some(answer.body), now_ms)
            } else {
                let e = store_error(answer);
                cors(
                    FilterError::BadGateway(format!(
                        "the store has no initialization segment for this fMP4 segment: {e}"
                    ))
                    .to_response(),
                )
            })
        }
        Step::DashVariants(first) => {
            match playlists::dash_timeline_fetch(settings, first, answer, now_ms) {
                Ok(fetch) => Plan::Fetch(Box::new(fetch)),
                Err(e) => Plan::Respond(cors(e.to_response())),
            }
        }
        Step::SmoothVariants(first) => smooth::on_variants(settings, first, answer, now_ms),
        Step::SmoothTimeline(timeline) => smooth::on_timeline(settings, timeline, answer, now_ms),
        Step::SmoothCodecs(codecs) => smooth::on_codecs(settings, codecs, answer, now_ms),
        Step::SmoothFragmentVariants(start) => {
            smooth::on_fragment_variants(settings, start, answer)
        }
    }
}

/// The headers of a store segment answer that repackaging reads.
const KEPT_HEADERS: [&str; 4] = [
    PDT_HEADER,
    SEQUENCE_HEADER,
    store_api::DURATION_HEADER,
    "content-type",
];

/// A segment that arrived as fMP4 for a job that repackages it: the fetch of its
/// initialization segment (named by the store), carrying the segment.
fn init_fetch(job: &Job, answer: &StoreAnswer<'_>) -> Option<Fetch> {
    let rendition = match &job.kind {
        JobKind::Remux { rendition, .. }
        | JobKind::Track { rendition, .. }
        | JobKind::SmoothFragment { rendition, .. } => rendition,
        _ => return None,
    };
    if answer.status != 200 || !tracks::is_fmp4(answer) {
        return None;
    }
    // Without the header the job itself says what is wrong.
    let id = (answer.header)(store_api::INIT_HEADER)?;
    Some(Fetch {
        path: store_api::init_path(&job.channel, rendition, id.trim()),
        next: Step::WithInit(Box::new(WithInit {
            job: job.clone(),
            headers: KEPT_HEADERS
                .iter()
                .filter_map(|h| Some(((*h).to_owned(), (answer.header)(h)?)))
                .collect(),
            segment: answer.body.to_vec(),
        })),
    })
}

/// Builds the viewer's answer from the store's.
pub fn respond(settings: &Settings, job: &Job, answer: &StoreAnswer<'_>, now_ms: i64) -> Response {
    respond_with_init(settings, job, answer, None, now_ms)
}

/// [`respond`] for a repackaged fMP4 segment: the store's answer and the segment's
/// initialization segment.
pub fn respond_with_init(
    settings: &Settings,
    job: &Job,
    answer: &StoreAnswer<'_>,
    init: Option<&[u8]>,
    now_ms: i64,
) -> Response {
    cors(match try_respond(settings, job, answer, init, now_ms) {
        Ok(r) => r,
        Err(e) => e.to_response(),
    })
}

fn try_respond(
    settings: &Settings,
    job: &Job,
    answer: &StoreAnswer<'_>,
    init: Option<&[u8]>,
    now_ms: i64,
) -> Result<Response, FilterError> {
    if answer.status != 200 {
        return Err(store_error(answer));
    }
    let ep = endpoint(settings, &job.channel, &job.endpoint)?;
    match &job.kind {
        JobKind::Multivariant { filter, carry } => {
            playlists::multivariant(ep, answer, filter.as_ref(), carry)
        }
        JobKind::Media { time } => playlists::media(ep, answer, time, now_ms),
        JobKind::DashManifest {
            variants,
            audio,
            subtitles,
            time,
            base_url,
        } => playlists::dash_manifest(
            ep,
            answer,
            (variants, audio, subtitles),
            time,
            base_url,
            now_ms,
        ),
        JobKind::Segment { sequence } => segments::segment(ep, answer, *sequence),
        JobKind::Init => Ok(segments::init(answer)),
        JobKind::Remux {
            rendition,
            sequence,
            init: init_of_segment,
        } => tracks::hls_fragment(ep, answer, init, rendition, *sequence, *init_of_segment),
        JobKind::Track {
            rendition,
            track,
            time,
            init: init_of_segment,
        } => tracks::dash_track(ep, answer, init, rendition, *track, *time, *init_of_segment),
        JobKind::SmoothFragment {
            rendition,
            track,
            time,
        } => tracks::smooth_fragment(ep, answer, init, rendition, *track, *time),
    }
}

/// The answer to a request whose body was read ([`Plan::ReadBody`]).
pub fn answer_body(settings: &Settings, license: &LicenseRequest, body: &[u8]) -> Response {
    cors(match keys::license(settings, license, body) {
        Ok(r) => r,
        Err(e) => e.to_response(),
    })
}

/// A store answer other than 200, as the viewer's error.
pub(crate) fn store_error(answer: &StoreAnswer<'_>) -> FilterError {
    let detail = store_detail(answer.body);
    match answer.status {
        0 => FilterError::BadGateway(
            "the store reset the request or answered with more than 32 MiB".into(),
        ),
        // The store's words follow ours: whatever it says (found by fuzzing: a store 404 whose
        // body was "7" left the viewer with "7" as the reason).
        404 => FilterError::NotFound(if detail.is_empty() {
            "not found in the store".into()
        } else {
            format!("not found in the store: {detail}")
        }),
        504 => FilterError::GatewayTimeout(format!("the store did not answer in time: {detail}")),
        s => FilterError::BadGateway(format!("the store is unavailable (status {s}): {detail}")),
    }
}

/// The store's own words about an error, fit to show a viewer: its text on one line, at most 300
/// characters. A body that is not text (binary bytes, control characters) is described, never
/// echoed: the viewer's reason stays readable whatever the store sent.
fn store_detail(body: &[u8]) -> String {
    const LOOK: usize = 1200;
    let head = &body[..body.len().min(LOOK)];
    let text = match std::str::from_utf8(head) {
        Ok(t) => t,
        // Cut inside a character at LOOK bytes: the whole characters before it.
        Err(e) if e.error_len().is_none() => {
            std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or_default()
        }
        Err(_) => return format!("the store answered {} bytes that are not text", body.len()),
    };
    if text.chars().any(|c| c.is_control() && !c.is_whitespace()) {
        return format!("the store answered {} bytes that are not text", body.len());
    }
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(300)
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::packager::test_fixtures::*;

    /// Found by `host/tests/hostile_store_and_viewers.rs`: a store multivariant playlist with no
    /// variant at all was answered 404 "stream selection leaves no variant", blaming the
    /// configuration for the store's fault.
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn a_store_multivariant_without_variants_is_a_bad_gateway() {
        let i_frames_only =
            "#EXTM3U\n#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=1000,URI=\"i/index.m3u8\"\n";
        let odd_uris = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1000\nhttp://elsewhere/x.m3u8\n";
        for path in ["/out/v1/news/hls/index.m3u8", "/out/v1/news/dash/index.mpd"] {
            let f = fetch(path, &[]);
            for body in ["#EXTM3U\n", "#EXTM3U\n#EXT-X-VERSION:3\n", i_frames_only] {
                let r = answer(&f.next, 200, &[], body.as_bytes(), T0);
                assert_eq!(
                    r.status,
                    502,
                    "{path} {body:?}: {}",
                    String::from_utf8_lossy(&r.body)
                );
            }
        }
        let f = fetch("/out/v1/news/dash/index.mpd", &[]);
        assert_eq!(
            answer(&f.next, 200, &[], odd_uris.as_bytes(), T0).status,
            502
        );
    }

    /// Found by `host/tests/hostile_store_and_viewers.rs`: a store 404 with a binary body was
    /// echoed to the viewer as the reason, control characters and all.
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn a_store_error_body_that_is_not_text_is_described_not_echoed() {
        let f = fetch("/out/v1/news/hls/stream_0/index.m3u8", &[]);
        let readable = |body: &str| {
            !body.trim().is_empty()
                && !body
                    .chars()
                    .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
        };
        for store in [404, 503, 504, 302] {
            for body in [
                &b"\x00\x14\xff\xfe\x1b[31mgarbage"[..],
                b"ok so far \x07 bell",
                b"\xff\xd8\xff\xe0 a JPEG",
                b"",
            ] {
                let r = answer(&f.next, store, &[], body, T0);
                let text = String::from_utf8(r.body.clone()).unwrap();
                assert!(readable(&text), "store {store} {body:?}: {text:?}");
            }
        }
        // Text is kept, on one line.
        let r = answer(&f.next, 404, &[], b"no such\r\n  rendition: stream_9\n", T0);
        assert_eq!(
            String::from_utf8(r.body).unwrap().trim(),
            "not found in the store: no such rendition: stream_9"
        );
        let r = answer(&f.next, 404, &[], b"\x00\x01", T0);
        assert_eq!(
            String::from_utf8(r.body).unwrap().trim(),
            "not found in the store: the store answered 2 bytes that are not text"
        );
        // A multi-byte character cut by the look-ahead limit is still text.
        let long = "é".repeat(1000);
        let r = answer(&f.next, 503, &[], long.as_bytes(), T0);
        assert!(String::from_utf8(r.body).unwrap().contains("éé"));
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn store_failures_map_to_clear_statuses() {
        let f = fetch("/out/v1/news/hls/stream_0/index.m3u8", &[]);
        let cases = [(404, 404), (503, 502), (504, 504), (500, 502), (0, 502)];
        for (store, viewer) in cases {
            let r = answer(&f.next, store, &[], b"upstream connect error", T0);
            assert_eq!(r.status, viewer, "store {store}");
            assert_eq!(r.get("cache-control"), Some("no-store"));
        }
        assert_eq!(answer(&f.next, 200, &[], b"<html>", T0).status, 502);
    }
}
