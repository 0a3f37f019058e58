//! Live-to-VOD (MediaPackage's harvest jobs): what a time range of the channel becomes as a
//! complete VOD package — the multivariant playlist, one VOD media playlist per rendition
//! (`EXT-X-PLAYLIST-TYPE:VOD`, `EXT-X-ENDLIST`) and the files they list. Planned under the channel
//! lock; the copying is the caller's (segments are immutable once indexed).

use std::path::PathBuf;

use edgepack_store_api::window::{ViewQuery, WindowSpec};
use edgepack_store_api::{PlaylistType, parse};

use super::ChannelState;

/// Longest range one harvest takes (as a time-shift).
pub const MAX_HARVEST_MS: i64 = 24 * 3_600_000;

/// Why a range cannot be harvested.
#[derive(Debug, thiserror::Error)]
pub enum HarvestError {
    #[error("the range must end after it starts and last at most 24 h")]
    BadRange,
    #[error("channel has no segment in that range of its startover window")]
    Empty,
    #[error("channel has no content yet: no encoder has published")]
    NoContent,
}

/// A harvest's package: texts to write and files to copy, by path inside the package.
#[derive(Debug, Default)]
pub struct HarvestPlan {
    pub texts: Vec<(String, String)>,
    /// (this sidecar's file, path in the package, content hash: the file's name in a bucket).
    pub files: Vec<(PathBuf, String, String)>,
    pub segments: u64,
}

impl ChannelState {
    /// The VOD package of `[start_ms, end_ms]`: every rendition's segments that start in it.
    pub fn harvest_plan(
        &mut self,
        start_ms: i64,
        end_ms: i64,
        now_ms: i64,
    ) -> Result<HarvestPlan, HarvestError> {
        if end_ms <= start_ms || end_ms - start_ms > MAX_HARVEST_MS {
            return Err(HarvestError::BadRange);
        }
        let multivariant = self.multivariant().ok_or(HarvestError::NoContent)?;
        let mut plan = HarvestPlan {
            texts: vec![(
                "index.m3u8".to_owned(),
                String::from_utf8_lossy(&multivariant.body).into_owned(),
            )],
            ..HarvestPlan::default()
        };
        let query = ViewQuery {
            spec: WindowSpec {
                now_ms,
                window_ms: end_ms - start_ms,
                delay_ms: 0,
                start_ms: Some(start_ms),
                end_ms: Some(end_ms),
            },
            rotation_seconds: 0,
        };
        let rids: Vec<String> = self.renditions.keys().cloned().collect();
        for rid in rids {
            let Some(view) = self.media_view(&rid, &query) else {
                continue;
            };
            let Ok(mut pl) = parse(&view.body) else {
                continue;
            };
            if pl.segments.is_empty() {
                continue;
            }
            // A VOD playlist of the range, without the store's own tags.
            pl.playlist_type = Some(PlaylistType::Vod);
            pl.ended = true;
            pl.view = None;
            pl.header_tags
                .retain(|t| !t.starts_with("#EXT-X-EDGEPACK-"));
            let mut maps = Vec::new();
            for s in &mut pl.segments {
                s.tags.retain(|t| !t.starts_with("#EXT-X-EDGEPACK-"));
                let (seq, ext) = s.uri.split_once('.').unwrap_or((&s.uri, ""));
                let Some(file) = seq
                    .parse()
                    .ok()
                    .and_then(|seq| self.segment(&rid, seq, ext))
                else {
                    return Err(HarvestError::Empty);
                };
                plan.files
                    .push((file.path, format!("{rid}/{}", s.uri), file.copy.etag));
                plan.segments += 1;
                if let Some(map) = s.map.as_deref()
                    && !maps.contains(&map.to_owned())
                {
                    maps.push(map.to_owned());
                }
            }
            for map in maps {
                let id = map
                    .strip_prefix("init-")
                    .and_then(|m| m.strip_suffix(".mp4"))
                    .unwrap_or_default();
                if let Some(path) = self.init(&rid, id) {
                    plan.files
                        .push((path, format!("{rid}/{map}"), id.to_owned()));
                }
            }
            plan.texts
                .push((format!("{rid}/index.m3u8"), pl.to_string()));
        }
        if plan.segments == 0 {
            return Err(HarvestError::Empty);
        }
        Ok(plan)
    }
}
