//! Forced endpoint errors (MediaPackage's `EndpointErrorConditions`): a live manifest that would
//! mislead — frozen because the encoder stopped, or holed — is answered with an error status a
//! CDN's origin failover acts on, and a body saying why. Only live windows (and time-shifts still
//! growing) are judged: a range entirely in the past is what it is.

use std::ops::Range;

use crate::config::EndpointErrors;
use crate::http_policy::NO_STORE;
use crate::media_playlist::MediaPlaylist;
use crate::playlist_window::PlaylistType;
use crate::response::Response;

/// The error answer for this window, if one of the endpoint's conditions holds.
pub fn check(
    errors: &EndpointErrors,
    pl: &MediaPlaylist,
    range: &Range<usize>,
    kind: PlaylistType,
    now_ms: i64,
) -> Option<Response> {
    if kind == PlaylistType::Vod || !(errors.stale_manifest || errors.incomplete_manifest) {
        return None;
    }
    let reason = reason(errors, pl, range, now_ms)?;
    Some(Response::text(errors.status, &reason).header("cache-control", NO_STORE))
}

fn reason(
    errors: &EndpointErrors,
    pl: &MediaPlaylist,
    range: &Range<usize>,
    now_ms: i64,
) -> Option<String> {
    let target_ms = pl.target_duration.unwrap_or(0).max(1) as i64 * 1000;
    let stale_ms = target_ms.saturating_mul(errors.stale_target_durations as i64);
    let view = pl.view.unwrap_or_default();
    // When the newest segment came in: the store says so in a view; a whole history (an older
    // store) is judged by its last segment's end on the encoder's clock.
    let last = view.last_received_ms.or_else(|| {
        pl.segments
            .last()
            .and_then(|s| Some(s.pdt_ms?.saturating_add((s.duration * 1000.0) as i64)))
    });
    let seconds = |ms: i64| ms as f64 / 1000.0;
    if errors.stale_manifest
        && let Some(last) = last
        && now_ms.saturating_sub(last) > stale_ms
    {
        return Some(format!(
            "stale manifest: the store has received no new segment of this rendition for {:.1} s \
             (endpoint_errors: stale_manifest after {} target durations, {:.0} s)",
            seconds(now_ms.saturating_sub(last)),
            errors.stale_target_durations,
            seconds(stale_ms)
        ));
    }
    if !errors.incomplete_manifest {
        return None;
    }
    if let (Some(last), Some(newest)) = (last, view.channel_last_received_ms)
        && newest.saturating_sub(last) > stale_ms
    {
        return Some(format!(
            "incomplete manifest: this rendition has received nothing for {:.1} s while other \
             renditions of the channel go on (endpoint_errors: incomplete_manifest)",
            seconds(newest.saturating_sub(last))
        ));
    }
    let window = pl.segments.get(range.clone())?;
    window.windows(2).find_map(|pair| {
        let (a, b) = (&pair[0], &pair[1]);
        let end = a.pdt_ms?.saturating_add((a.duration * 1000.0) as i64);
        let hole = b.pdt_ms?.saturating_sub(end);
        (hole > target_ms).then(|| {
            format!(
                "incomplete manifest: {:.1} s of media are missing after segment {} (endpoint_errors: \
                 incomplete_manifest)",
                seconds(hole),
                a.sequence
            )
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media_playlist;

    fn errors(stale: bool, incomplete: bool) -> EndpointErrors {
        EndpointErrors {
            stale_manifest: stale,
            incomplete_manifest: incomplete,
            status: 404,
            stale_target_durations: 3,
        }
    }

    const T0: i64 = 1_795_617_000_000;

    /// A view of 2 s segments from `T0`, `hole_after` (if any) followed by 10 s of nothing.
    fn view(n: u64, hole_after: Option<u64>, received: i64, channel: i64) -> String {
        let mut t = T0;
        let mut s = format!(
            "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n\
             #EXT-X-EDGEPACK-VIEW:HISTORY-START={T0},LAST-RECEIVED={received},CHANNEL-LAST-RECEIVED={channel}\n"
        );
        for i in 0..n {
            let date = edgepack_store_api::format_pdt(t);
            s.push_str(&format!(
                "#EXT-X-PROGRAM-DATE-TIME:{date}\n#EXTINF:2.000,\n{i}.ts\n"
            ));
            t += 2000;
            if hole_after == Some(i) {
                t += 10_000;
            }
        }
        s
    }

    fn run(e: &EndpointErrors, text: &str, kind: PlaylistType, now: i64) -> Option<Response> {
        let pl = media_playlist::parse(text.as_bytes()).unwrap();
        check(e, &pl, &(0..pl.segments.len()), kind, now)
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn a_stopped_encoder_makes_a_stale_manifest_after_three_target_durations() {
        let last = T0 + 10_000;
        let text = view(5, None, last, last);
        let e = errors(true, false);
        assert_eq!(
            run(&e, &text, PlaylistType::Live, last + 6_000),
            None,
            "at 3 x 2 s"
        );
        let r = run(&e, &text, PlaylistType::Live, last + 6_001).expect("stale");
        assert_eq!(r.status, 404);
        assert_eq!(r.get("cache-control"), Some("no-store"));
        let body = String::from_utf8(r.body).unwrap();
        assert!(body.starts_with("stale manifest: "), "{body}");
        assert!(body.contains("for 6.0 s"), "{body}");
        assert_eq!(
            run(&e, &text, PlaylistType::Vod, last + 60_000),
            None,
            "a range in the past is never stale"
        );
        assert!(run(&e, &text, PlaylistType::Event, last + 60_000).is_some());
        assert_eq!(
            run(
                &errors(false, true),
                &text,
                PlaylistType::Live,
                last + 60_000
            ),
            None,
            "only the conditions configured"
        );
        let custom = EndpointErrors {
            status: 503,
            stale_target_durations: 10,
            ..e
        };
        assert_eq!(run(&custom, &text, PlaylistType::Live, last + 20_000), None);
        assert_eq!(
            run(&custom, &text, PlaylistType::Live, last + 20_001).map(|r| r.status),
            Some(503)
        );
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn holes_and_renditions_left_behind_make_an_incomplete_manifest() {
        let e = errors(false, true);
        let now = T0 + 30_000;
        assert_eq!(
            run(&e, &view(5, None, now, now), PlaylistType::Live, now),
            None
        );
        let r = run(&e, &view(5, Some(2), now, now), PlaylistType::Live, now).expect("hole");
        let body = String::from_utf8(r.body).unwrap();
        assert!(
            body.starts_with("incomplete manifest: 10.0 s of media are missing after segment 2"),
            "{body}"
        );
        // A rendition 7 s behind the channel's newest segment (threshold 6 s).
        let r = run(
            &e,
            &view(5, None, now - 7_000, now),
            PlaylistType::Live,
            now,
        )
        .expect("behind");
        let body = String::from_utf8(r.body).unwrap();
        assert!(body.contains("while other renditions"), "{body}");
        assert_eq!(
            run(
                &e,
                &view(5, None, now - 6_000, now),
                PlaylistType::Live,
                now
            ),
            None
        );
    }
}
