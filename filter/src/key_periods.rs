//! Key periods and runs, shared by HLS and DASH: a segment's key period is its program date time
//! divided by the rotation interval; a run is the segments of one discontinuity and one key
//! period, which share an initialization segment (and, encrypted, a KID).

use edgepack_store_api::RunStart;

use crate::config::Endpoint;
use crate::media_playlist::{MediaPlaylist, Segment};

pub use edgepack_store_api::window::key_period;

/// The key period of a segment on an endpoint (0 on clear endpoints).
pub fn of_segment(endpoint: &Endpoint, s: &Segment) -> u64 {
    endpoint
        .keys()
        .map_or(0, |k| key_period(s.pdt_ms.unwrap_or(0), k.rotation_seconds))
}

/// The first segment still in the store of the run `s` belongs to: same discontinuity sequence
/// and key period. Both never decrease along the playlist, so this is a binary search. A store
/// view that starts inside a run says where the run starts (`#EXT-X-EDGEPACK-VIEW`).
pub fn run_start(pl: &MediaPlaylist<'_>, endpoint: &Endpoint, s: &Segment<'_>) -> RunStart {
    let key = (s.disc_seq, of_segment(endpoint, s));
    let i = pl
        .segments
        .partition_point(|x| (x.disc_seq, of_segment(endpoint, x)) < key);
    if i == 0
        && let Some(run) = pl.view.and_then(|v| v.run_start)
    {
        return run;
    }
    let first = pl.segments.get(i).unwrap_or(s);
    RunStart {
        sequence: first.sequence,
        pdt_ms: first.pdt_ms,
        discontinuity: first.discontinuity,
    }
}
