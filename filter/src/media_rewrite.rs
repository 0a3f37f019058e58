//! Writes an endpoint's media playlist from the store's: the selected window, MEDIA-SEQUENCE and
//! DISCONTINUITY-SEQUENCE of its first segment, PROGRAM-DATE-TIME at the configured interval and
//! after every discontinuity, `EXT-X-KEY` at every key change, source tags kept verbatim.

use std::fmt::Write as _;
use std::ops::Range;

use chrono::{DateTime, SecondsFormat, Utc};

use crate::config::Endpoint;
use crate::crypto;
use crate::error::FilterError;
use crate::media_playlist::MediaPlaylist;
use crate::playlist_window::Kind;

fn format_pdt(ms: i64) -> Option<String> {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

/// The `EXT-X-KEY` line for a key period, with a fresh token.
pub fn key_tag(
    endpoint: &Endpoint,
    period: u64,
    now_ms: i64,
) -> Result<Option<String>, FilterError> {
    let Some(enc) = &endpoint.cfg.encryption else {
        return Ok(None);
    };
    let path = key_path(endpoint, period);
    let expiry = crypto::token_expiry(now_ms, enc.key_token.ttl_seconds);
    let token = crypto::token(&enc.key_token.secret, &path, expiry)?;
    let mut tag = format!("#EXT-X-KEY:METHOD=AES-128,URI=\"../key/{period}?token={token}\"");
    if let Some(iv) = endpoint.constant_iv {
        let _ = write!(tag, ",IV=0x{}", hex::encode_upper(iv));
    }
    Ok(Some(tag))
}

/// Absolute path of a key on this endpoint; tokens are bound to it.
pub fn key_path(endpoint: &Endpoint, period: u64) -> String {
    format!(
        "/out/v1/{}/{}/key/{period}",
        endpoint.channel, endpoint.name
    )
}

/// Renders the endpoint's media playlist.
pub fn write(
    pl: &MediaPlaylist,
    range: Range<usize>,
    kind: Kind,
    endpoint: &Endpoint,
    now_ms: i64,
) -> Result<String, FilterError> {
    let segs = pl.segments.get(range.clone()).unwrap_or(&[]);
    let encryption = endpoint.cfg.encryption.as_ref();
    let td = segs
        .iter()
        .map(|s| s.duration.round() as u64)
        .max()
        .unwrap_or(0)
        .max(pl.target_duration)
        .max(1);
    let (first_seq, first_disc) = match segs.first() {
        Some(s) => (s.sequence, s.disc_seq),
        // Nothing to show yet: the next segment will be the one after the store's last.
        None => (
            pl.segments.get(range.start).map_or_else(
                || pl.media_sequence + pl.segments.len() as u64,
                |s| s.sequence,
            ),
            pl.segments
                .last()
                .map_or(pl.discontinuity_sequence, |s| s.disc_seq),
        ),
    };
    let mut out = String::with_capacity(256 + segs.len() * 96);
    let _ = write!(
        out,
        "#EXTM3U\n#EXT-X-VERSION:{}\n#EXT-X-TARGETDURATION:{td}\n#EXT-X-MEDIA-SEQUENCE:{first_seq}\n#EXT-X-DISCONTINUITY-SEQUENCE:{first_disc}\n",
        pl.version.max(3)
    );
    match kind {
        Kind::Live => {}
        Kind::Event => out.push_str("#EXT-X-PLAYLIST-TYPE:EVENT\n"),
        Kind::Vod => out.push_str("#EXT-X-PLAYLIST-TYPE:VOD\n"),
    }
    for t in &pl.header_tags {
        out.push_str(t);
        out.push('\n');
    }
    let interval_ms = endpoint.cfg.program_date_time_interval_seconds as i64 * 1000;
    let mut last_pdt: Option<i64> = None;
    let mut last_key: Option<String> = None;
    for (i, s) in segs.iter().enumerate() {
        if s.discontinuity && i > 0 {
            out.push_str("#EXT-X-DISCONTINUITY\n");
        }
        let key = match encryption {
            Some(e) => {
                let period =
                    crypto::key_period(s.pdt_ms.unwrap_or(0), e.key_rotation_interval_seconds);
                // The token changes per request; compare periods, not lines.
                let id = period.to_string();
                if last_key.as_deref() != Some(id.as_str()) {
                    if let Some(tag) = key_tag(endpoint, period, now_ms)? {
                        out.push_str(&tag);
                        out.push('\n');
                    }
                    last_key = Some(id);
                }
                None
            }
            None => s.source_key.clone(),
        };
        if encryption.is_none() && key != last_key {
            match &key {
                Some(k) => out.push_str(k),
                None => out.push_str("#EXT-X-KEY:METHOD=NONE"),
            }
            out.push('\n');
            last_key = key;
        }
        if interval_ms > 0
            && let Some(pdt) = s.pdt_ms
        {
            let due = i == 0 || s.discontinuity || last_pdt.is_none_or(|l| pdt - l >= interval_ms);
            if due && let Some(text) = format_pdt(pdt) {
                let _ = writeln!(out, "#EXT-X-PROGRAM-DATE-TIME:{text}");
                last_pdt = Some(pdt);
            }
        }
        for t in &s.tags {
            out.push_str(t);
            out.push('\n');
        }
        let _ = write!(
            out,
            "#EXTINF:{},{}\n{}.{}\n",
            s.duration_text,
            s.title,
            s.sequence,
            s.ext()
        );
    }
    for t in &pl.trailing_tags {
        out.push_str(t);
        out.push('\n');
    }
    if kind == Kind::Vod {
        out.push_str("#EXT-X-ENDLIST\n");
    }
    Ok(out)
}
