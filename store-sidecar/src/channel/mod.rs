//! One channel's index and storage: what the two inputs uploaded, merged into one timeline per
//! rendition that keeps the whole startover window, plus input failover.
//!
//! A module per job:
//! - `layout`: where the channel's files live on disk
//! - `journal`: the index on disk (append, replay, compact)
//! - `ingest`: accepting uploads and playlists
//! - `timeline`: the merge of an input's playlist into a rendition's timeline (pure)
//! - `indexing`: running that merge and doing its disk writes
//! - `failover`: which input is served
//! - `history`: a long history written straight to disk, for tests and benchmarks
//! - `harvest`: a time range as a VOD package (live-to-VOD)
//! - `retention`: pruning the startover window, deleting stale uploads
//! - `lookup`: finding the segment or initialization segment to serve
//! - `render`: playlists and the status document as text
//! - `replica`: the index as a log in a bucket that many sidecars share

mod failover;
mod harvest;
pub mod history;
mod indexing;
mod ingest;
mod journal;
mod layout;
mod lookup;
mod render;
mod replica;
mod retention;
pub mod timeline;

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

pub use failover::Failover;
pub use harvest::{HarvestError, HarvestPlan, MAX_HARVEST_MS};
pub use ingest::{Accepted, IngestError, etag_of};
pub use lookup::SegmentFile;
pub use render::Rendered;
pub use replica::{LogRecord, decode as decode_log, encode as encode_log};
pub use timeline::{Entry, SegmentCopy};

use crate::config::Channel;
use crate::media_kind::MediaKind;
use ingest::StoredDoc;
use layout::Layout;
use replica::Replica;
use timeline::{InputRendition, Timeline};

#[derive(Debug, Default)]
struct Rendition {
    timeline: Timeline,
    journal_lines: usize,
    cache: Option<Rendered>,
}

#[derive(Debug, Default)]
struct InputState {
    multivariant: Option<(StoredDoc, m3u8_rs::MasterPlaylist)>,
    renditions: BTreeMap<String, InputRendition>,
    /// When a committed segment from this input last entered a timeline.
    last_indexed: Option<Instant>,
    last_indexed_ms: Option<i64>,
    /// Committed uploads not yet indexed.
    uploads: HashMap<String, UploadInfo>,
    /// Initialization segments already stored: upload path → id.
    inits: HashMap<String, String>,
}

impl InputState {
    /// Whether the input's playlists say its segments are clear: it has sent a media playlist,
    /// and none of its renditions' latest playlists carries a key.
    fn is_clear(&self) -> bool {
        !self.renditions.is_empty()
            && self
                .renditions
                .values()
                .all(|r| r.source.segments.iter().all(|s| s.source_key.is_none()))
    }
}

/// A committed upload that no playlist has listed yet.
#[derive(Debug, Clone)]
struct UploadInfo {
    size: u64,
    etag: String,
    kind: MediaKind,
}

/// The wall clock in epoch ms: when uploads arrive, the date of a segment that has none, and the
/// startover window's cut-off ([`ChannelState::prune`]).
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The state of one channel. All methods do blocking disk I/O: call them off the async runtime.
#[derive(Debug)]
pub struct ChannelState {
    pub cfg: Channel,
    layout: Layout,
    renditions: BTreeMap<String, Rendition>,
    inputs: [InputState; 2],
    active: Option<usize>,
    failovers: u64,
    multivariant_cache: Option<Rendered>,
    /// In a bucket: the log position and what is not published yet; `None` on local disk.
    replica: Option<Replica>,
}

impl ChannelState {
    /// Opens (or creates) the channel's directory and rebuilds the index from disk.
    pub fn open(cfg: Channel, data_dir: &Path) -> io::Result<Self> {
        let mut state = Self::empty(cfg, data_dir, None)?;
        state.replay_journals()?;
        state.restore_active();
        state.remember_inits();
        state.load_sources()?;
        let now = Instant::now();
        for input in 0..2 {
            state.index_all(input, now)?;
        }
        Ok(state)
    }

    /// Opens a channel whose index is the log in a bucket: empty until the log is applied
    /// ([`ChannelState::apply_log`], then [`ChannelState::log_caught_up`]). `data_dir` keeps
    /// uploads in progress and this sidecar's copies of its own inputs' segments; `local` are the
    /// inputs whose encoders push here (none: an edge, which only reads).
    pub fn open_replicated(cfg: Channel, data_dir: &Path, local: [bool; 2]) -> io::Result<Self> {
        let replica = Replica {
            local,
            outbox: Vec::new(),
            next: 0,
            caught_up: false,
            deletes: Vec::new(),
            sources: Default::default(),
        };
        Self::empty(cfg, data_dir, Some(replica))
    }

    /// A channel with nothing indexed, its directory ready; anything in `tmp/` is an upload that
    /// never completed, and goes.
    fn empty(cfg: Channel, data_dir: &Path, replica: Option<Replica>) -> io::Result<Self> {
        let layout = Layout::new(data_dir, &cfg.id);
        fs::create_dir_all(layout.root())?;
        let tmp = layout.tmp_dir();
        if tmp.exists() {
            fs::remove_dir_all(&tmp)?;
        }
        fs::create_dir_all(&tmp)?;
        Ok(Self {
            cfg,
            layout,
            renditions: BTreeMap::new(),
            inputs: Default::default(),
            active: None,
            failovers: 0,
            multivariant_cache: None,
            replica,
        })
    }

    /// Where an upload in progress is written; same file system as its destination.
    pub fn upload_temp_path(&self) -> io::Result<PathBuf> {
        self.layout.temp_path()
    }
}

/// A channel and uploads for the tests of every job.
#[cfg(test)]
mod test_support {
    use super::*;
    use crate::config::Credentials;

    pub(super) fn channel() -> Channel {
        let c = || Credentials {
            username: "u".into(),
            password: "p".into(),
        };
        Channel {
            id: "news".into(),
            startover_window_seconds: 3600,
            failover_after_seconds: None,
            inputs: [c(), c()],
        }
    }

    pub(super) fn playlist(first: u64, count: u64) -> String {
        let mut t = format!("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:{first}\n");
        for m in first..first + count {
            t.push_str(&format!("#EXTINF:2.0,\ns{m}.ts\n"));
        }
        t
    }

    pub(super) fn upload(st: &mut ChannelState, input: usize, name: &str) {
        upload_version(st, input, name, "e");
    }

    /// An upload whose bytes have the ETag `etag` (another version of a file uploaded before).
    pub(super) fn upload_version(st: &mut ChannelState, input: usize, name: &str, etag: &str) {
        let tmp = st.upload_temp_path().unwrap();
        let bytes = media(name);
        fs::write(&tmp, &bytes).unwrap();
        st.commit_upload(input, name, &tmp, bytes.len() as u64, etag.into())
            .unwrap();
    }

    /// Bytes the sidecar takes for a segment named `name`: an MPEG-TS sync byte, then the name
    /// (a `.vtt`: a WebVTT header, then the name).
    pub(super) fn media(name: &str) -> Vec<u8> {
        if name.ends_with(".vtt") {
            return format!("WEBVTT\n\nNOTE {name}\n").into_bytes();
        }
        [&[0x47u8][..], name.as_bytes()].concat()
    }

    pub(super) fn uris(st: &mut ChannelState) -> Vec<String> {
        let r = st.media_playlist("hd").unwrap();
        String::from_utf8(r.body.to_vec())
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(str::to_owned)
            .collect()
    }
}
