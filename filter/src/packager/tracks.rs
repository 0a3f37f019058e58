//! CMAF repackaged from the store's MPEG-TS segments: whole fragments and their initialization
//! segments for CMAF HLS, one track per fragment for DASH; common-encrypted on cenc/cbcs
//! endpoints under the key of the segment's period.

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
use edgepack_store_api::api::DURATION_HEADER;

/// CMAF HLS: the segment as one fragment of all its tracks, or (`init`) the initialization
/// segment built from it. An init is built from the segment the URI names: the same bytes on
/// every edge.
pub(super) fn hls_fragment(
    ep: &Endpoint,
    answer: &StoreAnswer<'_>,
    rendition: &str,
    sequence: u64,
    init: bool,
) -> Result<Response, FilterError> {
    let r = remux(ep, answer, rendition, sequence, cmaf::Select::All)?;
    let body = if init { r.init_segment() } else { r.fragment };
    Ok(Response::with_body(200, "video/mp4", body).header("cache-control", IMMUTABLE))
}

/// DASH: one track of the segment at `time` as a fragment, or (`init`) its initialization
/// segment.
pub(super) fn dash_track(
    ep: &Endpoint,
    answer: &StoreAnswer<'_>,
    rendition: &str,
    track: TrackKind,
    time: u64,
    init: bool,
) -> Result<Response, FilterError> {
    // The store's sequence number of the segment it found at that time: it numbers the
    // fragment and seeds its IVs.
    let sequence = store_sequence(answer).unwrap_or(time / 90_000);
    let (select, content_type) = one_track(track);
    let r = remux(ep, answer, rendition, sequence, select)?;
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
    }
}

/// Smooth Streaming: one track of the segment the URL's time names, as a fragment whose
/// `tfxd` states the segment's time (its program date time, see [`crate::mss`]) and duration,
/// and whose `tfrf` announces the fragment that follows.
pub(super) fn smooth_fragment(
    ep: &Endpoint,
    answer: &StoreAnswer<'_>,
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
        answer.body,
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
            announce_next: true,
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

/// Repackages the store's MPEG-TS segment (the `select`ed tracks); a segment that cannot be is
/// the store's problem (502) or a format this version does not carry (501).
fn remux(
    ep: &Endpoint,
    answer: &StoreAnswer<'_>,
    rendition: &str,
    sequence: u64,
    select: cmaf::Select,
) -> Result<cmaf::Remuxed, FilterError> {
    let protection = protection(ep, answer, rendition, sequence)?;
    let pdt = segment_pdt(answer);
    cmaf::remux_select(answer.body, sequence, pdt, protection.as_ref(), select)
        .map_err(|e| repackaging_error(sequence, e))
}
