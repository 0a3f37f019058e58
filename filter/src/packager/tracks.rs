//! CMAF repackaged from the store's MPEG-TS segments: whole fragments and their initialization
//! segments for CMAF HLS, one track per fragment for DASH; common-encrypted on cenc/cbcs
//! endpoints under the key of the segment's period.

use super::segments::{keyed_pdt, segment_pdt};
use super::{SEQUENCE_HEADER, StoreAnswer};
use crate::cmaf;
use crate::config::Endpoint;
use crate::crypto;
use crate::error::FilterError;
use crate::http_policy::IMMUTABLE;
use crate::key_periods;
use crate::response::Response;
use crate::route::TrackKind;

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
    let sequence = (answer.header)(SEQUENCE_HEADER)
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(time / 90_000);
    let (select, content_type) = match track {
        TrackKind::Video => (cmaf::Select::Video, "video/mp4"),
        TrackKind::Audio => (cmaf::Select::Audio, "audio/mp4"),
    };
    let r = remux(ep, answer, rendition, sequence, select)?;
    let body = if init { r.init_segment() } else { r.fragment };
    Ok(Response::with_body(200, content_type, body).header("cache-control", IMMUTABLE))
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
    let protection = match ep.keys() {
        Some(keys) => {
            let period = key_periods::key_period(keyed_pdt(answer)?, keys.rotation_seconds);
            crypto::common_protection(ep, period, rendition, sequence)?
        }
        None => None,
    };
    let pdt = segment_pdt(answer);
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
