//! CMAF repackaged from the store's segments — MPEG-TS, or fMP4 with its initialization segment
//! ([`cmaf::Ingest`]): whole fragments and their initialization segments for CMAF HLS, one track
//! per fragment for DASH and Smooth Streaming; common-encrypted on cenc/cbcs endpoints under the
//! key of the segment's period.

use super::segments::{keyed_pdt, segment_pdt};
use super::{SEQUENCE_HEADER, StoreAnswer};
use crate::cmaf::{self, smooth};
use crate::config::Endpoint;
use crate::crypto;
use crate::error::FilterError;
use crate::http_policy::IMMUTABLE;
use crate::key_periods;
use crate::mss;
use crate::response::Response;
use crate::route::TrackKind;
use edgepack_store_api::api::{DURATION_HEADER, INIT_HEADER};

/// Whether the store's segment was ingested as fMP4 (its content type says).
pub(super) fn is_fmp4(answer: &StoreAnswer<'_>) -> bool {
    (answer.header)("content-type").is_some_and(|ct| ct.trim() == "video/mp4")
}

/// The store's segment as the repackager reads it: MPEG-TS, or fMP4 with `init` (fetched after
/// it, [`super::WithInit`]).
fn ingest<'a>(
    answer: &StoreAnswer<'a>,
    init: Option<&'a [u8]>,
) -> Result<cmaf::Ingest<'a>, FilterError> {
    if !is_fmp4(answer) {
        return Ok(cmaf::Ingest::Ts(answer.body));
    }
    match init {
        Some(init) => Ok(cmaf::Ingest::Fmp4 {
            init,
            segment: answer.body,
        }),
        None => Err(FilterError::BadGateway(format!(
            "the store's fMP4 segment names no initialization segment ({INIT_HEADER}); it cannot be repackaged"
        ))),
    }
}

/// CMAF HLS: the segment as one fragment of all its tracks, or (`init`) the initialization
/// segment built from it. An init is built from the segment the URI names: the same bytes on
/// every edge.
pub(super) fn hls_fragment(
    ep: &Endpoint,
    answer: &StoreAnswer<'_>,
    ingest_init: Option<&[u8]>,
    rendition: &str,
    sequence: u64,
    init: bool,
) -> Result<Response, FilterError> {
    let r = remux(
        ep,
        answer,
        ingest_init,
        rendition,
        sequence,
        cmaf::Select::All,
    )?;
    let body = if init { r.init_segment() } else { r.fragment };
    Ok(Response::with_body(200, "video/mp4", body).header("cache-control", IMMUTABLE))
}

/// DASH: one track of the segment at `time` as a fragment, or (`init`) its initialization
/// segment.
pub(super) fn dash_track(
    ep: &Endpoint,
    answer: &StoreAnswer<'_>,
    ingest_init: Option<&[u8]>,
    rendition: &str,
    track: TrackKind,
    time: u64,
    init: bool,
) -> Result<Response, FilterError> {
    // The store's sequence number of the segment it found at that time: it numbers the
    // fragment and seeds its IVs.
    let sequence = store_sequence(answer).unwrap_or(time / 90_000);
    let (select, content_type) = one_track(track);
    let r = remux(ep, answer, ingest_init, rendition, sequence, select)?;
    let body = if init { r.init_segment() } else { r.fragment };
    Ok(Response::with_body(200, content_type, body).header("cache-control", IMMUTABLE))
}

/// The store's sequence number of the segment it answered with.
fn store_sequence(answer: &StoreAnswer<'_>) -> Option<u64> {
    (answer.header)(SEQUENCE_HEADER).and_then(|v| v.trim().parse().ok())
}

/// The selection and content type of a one-track fragment.
pub(super) fn one_track(track: TrackKind) -> (cmaf::Select, &'static str) {
    match track {
        TrackKind::Video => (cmaf::Select::Video, "video/mp4"),
        TrackKind::Audio => (cmaf::Select::Audio, "audio/mp4"),
        // Text tracks are written from WebVTT ([`super::text`]), never from media segments.
        TrackKind::Text => (cmaf::Select::All, super::text::CONTENT_TYPE),
    }
}

/// Smooth Streaming: one track of the segment the URL's time names, as a fragment whose
/// `tfxd` states the segment's time (its program date time, see [`crate::mss`]) and duration,
/// and whose `tfrf` announces the fragment that follows.
pub(super) fn smooth_fragment(
    ep: &Endpoint,
    answer: &StoreAnswer<'_>,
    ingest_init: Option<&[u8]>,
    rendition: &str,
    track: TrackKind,
    time: u64,
) -> Result<Response, FilterError> {
    let sequence = store_sequence(answer).unwrap_or(0);
    let duration = (answer.header)(DURATION_HEADER)
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|d| d.is_finite() && *d > 0.0)
        .ok_or_else(|| {
            FilterError::BadGateway(format!(
                "the store's segment {sequence} has no {DURATION_HEADER} header; a Smooth Streaming fragment states its duration"
            ))
        })?;
    // The segment the store found (its time may differ from the URL's by a little when a
    // player followed an announcement across a segment of another length): its own time.
    let at = segment_pdt(answer).and_then(mss::time_of).unwrap_or(time);
    let (select, content_type) = one_track(track);
    let protection = protection(ep, answer, rendition, sequence)?;
    let (tracks, runs) = cmaf::tracks_and_runs(
        ingest(answer, ingest_init)?,
        segment_pdt(answer),
        protection.as_ref(),
        select,
    )
    .map_err(|e| repackaging_error(sequence, e))?;
    let (Some(t), Some(run)) = (tracks.first(), runs.first()) else {
        return Err(FilterError::NotFound(format!(
            "the segment at {time} in rendition '{rendition}' has no {} track",
            track.smooth_name()
        )));
    };
    let body = smooth::fragment(
        (sequence as u32).wrapping_add(1),
        run,
        t.timescale,
        smooth::FragmentTime {
            time: at,
            duration: mss::ticks(duration),
        },
    );
    Ok(Response::with_body(200, content_type, body).header("cache-control", IMMUTABLE))
}

/// The common encryption of a segment of an encrypted endpoint: its key period's key.
fn protection(
    ep: &Endpoint,
    answer: &StoreAnswer<'_>,
    rendition: &str,
    sequence: u64,
) -> Result<Option<cmaf::cenc::Protection>, FilterError> {
    match ep.keys() {
        Some(keys) => {
            let period = key_periods::key_period(keyed_pdt(answer)?, keys.rotation_seconds);
            crypto::common_protection(ep, period, rendition, sequence)
        }
        None => Ok(None),
    }
}

/// A segment that cannot be repackaged: the store's problem (502), or a format this version
/// does not carry (501). `segment` names it (its sequence number or store path).
pub(super) fn repackaging_error(
    segment: impl std::fmt::Display,
    e: cmaf::CmafError,
) -> FilterError {
    match e {
        cmaf::CmafError::Malformed(why) => FilterError::BadGateway(format!(
            "the store's segment {segment} cannot be repackaged: {why}"
        )),
        cmaf::CmafError::Unsupported(why) => {
            FilterError::NotImplemented(format!("segment {segment} cannot be repackaged: {why}"))
        }
    }
}

/// Repackages the store's segment (the `select`ed tracks); a segment that cannot be is the
/// store's problem (502) or a format this version does not carry (501).
fn remux(
    ep: &Endpoint,
    answer: &StoreAnswer<'_>,
    init: Option<&[u8]>,
    rendition: &str,
    sequence: u64,
    select: cmaf::Select,
) -> Result<cmaf::Remuxed, FilterError> {
    let protection = protection(ep, answer, rendition, sequence)?;
    let pdt = segment_pdt(answer);
    cmaf::remux_select(
        ingest(answer, init)?,
        sequence,
        pdt,
        protection.as_ref(),
        select,
    )
    .map_err(|e| repackaging_error(sequence, e))
}

#[cfg(test)]
mod tests {
    use crate::packager::test_fixtures::*;
    use crate::packager::{Plan, Step};

    /// A segment ingested as fMP4 is repackaged with its initialization segment: the store names
    /// it on the segment, the filter asks for it next and keeps the segment meanwhile. What is
    /// missing is said.
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn fmp4_segments_are_repackaged_with_the_initialization_segment_the_store_names() {
        let f = fetch(&format!("/out/v1/news/dash/stream_0/v{}.mp4", T0 * 90), &[]);
        assert!(f.is_segment());
        let fmp4 = [
            ("content-type", "video/mp4"),
            ("x-edgepack-init", "0123abcd"),
            (PDT_HEADER, "2026-11-25T14:35:31.666Z"),
        ];
        let Plan::Fetch(init) = next_plan(&f.next, 200, &fmp4, b"moofmdat", T0) else {
            panic!("expected the init's fetch")
        };
        assert_eq!(init.path, "/store/v1/news/stream_0/init-0123abcd.mp4");
        assert!(init.is_segment() && !init.is_playlist());
        let Step::WithInit(w) = &init.next else {
            panic!("{:?}", init.next)
        };
        assert_eq!(w.segment, b"moofmdat");
        // What the job reads of the segment's answer travels with it.
        for h in [PDT_HEADER, "content-type"] {
            assert!(
                w.headers.iter().any(|(k, _)| k == h),
                "{h}: {:?}",
                w.headers
            );
        }
        // The init is gone from the store: 502 naming it.
        let r = answer(&init.next, 404, &[], b"no such init", T0);
        assert_eq!(r.status, 502, "{}", text(&r));
        assert!(text(&r).contains("initialization segment"), "{}", text(&r));
        // An init that is not one: 502 with the reason, no panic.
        let r = answer(&init.next, 200, &[], b"\0\0\0\x08free", T0);
        assert_eq!(r.status, 502, "{}", text(&r));
        assert!(text(&r).contains("moov"), "{}", text(&r));
        // An fMP4 segment whose init the store does not name.
        let r = answer(&f.next, 200, &[("content-type", "video/mp4")], b"moof", T0);
        assert_eq!(r.status, 502, "{}", text(&r));
        assert!(text(&r).contains("x-edgepack-init"), "{}", text(&r));
    }
}
