//! One channel's index and storage: what the two inputs uploaded, merged into one timeline per
//! rendition that keeps the whole startover window, plus input failover.
//!
//! ## Timeline
//! Segments from both inputs are matched by the encoder's media sequence number (MSN); the two
//! encoders must be aligned, as MediaPackage requires. Each rendition has one timeline of entries
//! with the store's own, always contiguous sequence numbers (`seq`), which start at the first MSN
//! seen and then advance by one per new MSN. An MSN jump (an encoder restarted with
//! `-hls_start_number_source epoch`, or both encoders down past their sliding window) becomes a
//! discontinuity instead of a hole, so `MEDIA-SEQUENCE + index` is always the segment's `seq`.
//!
//! An entry enters the timeline only once its segment file is committed: a playlist that lists a
//! segment still uploading leaves that entry pending until the upload finishes.
//!
//! ## Disk layout (under `data_dir/{channel}/`)
//! - `tmp/` — uploads in progress (wiped at start-up: a cut-off upload leaves nothing behind)
//! - `incoming/{input}/{path}` — committed uploads that no playlist has listed yet
//! - `inputs/{input}/multivariant.json`, `inputs/{input}/renditions/{rid}.json` — last good
//!   source playlists with the path they were uploaded to
//! - `renditions/{rid}/journal.jsonl` — the index, one JSON record per line, fsynced
//! - `renditions/{rid}/{seq}-{input}.{ext}` — indexed segments, byte-identical to the upload

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::config::Channel;
use crate::disk;
use crate::ingest_path::{is_playlist, rendition_id, resolve_segment_uri};
use crate::source_playlist::{self, MediaSource, PlaylistError, SourcePlaylist, SourceSegment};

/// One input's copy of a segment.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SegmentCopy {
    pub ext: String,
    pub size: u64,
    /// Hex SHA-256 prefix of the bytes; the HTTP ETag.
    pub etag: String,
    /// Path the encoder uploaded it to (for crash recovery).
    pub src: String,
    pub received_ms: i64,
    /// fMP4: the id of its initialization segment (`EXT-X-MAP`), stored as `init-{id}.mp4`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<String>,
    /// fMP4: where the encoder uploaded that initialization segment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_src: Option<String>,
}

/// One segment of a rendition's timeline.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    pub seq: u64,
    pub msn: u64,
    pub duration: f64,
    pub pdt: DateTime<Utc>,
    pub pdt_from_encoder: bool,
    pub discontinuity: bool,
    pub disc_seq: u64,
    #[serde(default)]
    pub tags: Vec<String>,
    pub received_ms: i64,
    pub copies: [Option<SegmentCopy>; 2],
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum JournalLine {
    /// Insert or replace the entry with this `seq`.
    Put { entry: Box<Entry> },
    /// Entries before `before_seq` left the window; `next` keeps numbering going if none remain.
    Prune { before_seq: u64, next: Tail },
}

/// Where numbering continues after the last entry.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
struct Tail {
    seq: u64,
    msn: u64,
    disc_seq: u64,
}

/// A rendered answer with its ETag.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub body: Bytes,
    pub etag: String,
}

impl Rendered {
    fn new(body: String) -> Self {
        let etag = format!(
            "\"{}\"",
            hex::encode(&Sha256::digest(body.as_bytes())[..12])
        );
        Self {
            body: Bytes::from(body),
            etag,
        }
    }
}

#[derive(Debug, Default)]
struct Rendition {
    entries: VecDeque<Entry>,
    /// The last entry ever appended, kept when the window empties so numbering never goes back.
    tail: Option<Tail>,
    journal_lines: usize,
    cache: Option<Rendered>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredDoc {
    path: String,
    text: String,
}

#[derive(Debug)]
struct InputRendition {
    source: MediaSource,
    path: String,
    last_msn: Option<u64>,
    pending_since: HashMap<u64, Instant>,
}

#[derive(Debug, Default)]
struct InputState {
    multivariant: Option<(StoredDoc, m3u8_rs::MasterPlaylist)>,
    renditions: BTreeMap<String, InputRendition>,
    /// When a committed segment from this input last entered a timeline.
    last_advance: Option<Instant>,
    last_advance_ms: Option<i64>,
    /// Size and ETag of committed uploads not yet indexed.
    uploads: HashMap<String, (u64, String)>,
    /// Initialization segments already stored: upload path → id.
    inits: HashMap<String, String>,
}

/// Why an upload was refused; the stored state is unchanged.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{0}")]
    Playlist(#[from] PlaylistError),
    #[error(
        "media sequence went backwards for rendition '{rendition}': {previous} then {got}; restart encoders with -hls_start_number_source epoch (or datetime) so numbering keeps increasing"
    )]
    Regressed {
        rendition: String,
        previous: u64,
        got: u64,
    },
    #[error("{0}")]
    OutsideInput(String),
    #[error("storage error: {0}")]
    Io(#[from] io::Error),
}

/// What an accepted playlist did.
#[derive(Debug, Default, PartialEq)]
pub struct Accepted {
    pub created: bool,
    pub segments_indexed: u64,
}

/// A segment to serve.
#[derive(Debug)]
pub struct SegmentFile {
    pub seq: u64,
    pub path: PathBuf,
    pub copy: SegmentCopy,
    pub input: usize,
    pub pdt: DateTime<Utc>,
    pub duration: f64,
}

/// A failover that just happened.
#[derive(Debug, PartialEq)]
pub struct Failover {
    pub from: usize,
    pub to: usize,
}

/// The state of one channel. All methods do blocking disk I/O: call them off the async runtime.
#[derive(Debug)]
pub struct ChannelState {
    pub cfg: Channel,
    root: PathBuf,
    renditions: BTreeMap<String, Rendition>,
    inputs: [InputState; 2],
    active: Option<usize>,
    failovers: u64,
    multivariant_cache: Option<Rendered>,
}

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

fn segment_ext(uri: &str) -> String {
    let name = uri.rsplit('/').next().unwrap_or(uri);
    match name.rsplit_once('.') {
        Some((_, ext))
            if (1..=5).contains(&ext.len()) && ext.bytes().all(|b| b.is_ascii_alphanumeric()) =>
        {
            ext.to_ascii_lowercase()
        }
        _ => "bin".to_owned(),
    }
}

fn hash_file(path: &Path) -> io::Result<(u64, String)> {
    let mut f = fs::File::open(path)?;
    let mut h = Sha256::new();
    let n = io::copy(&mut f, &mut h)?;
    Ok((n, etag_of(&h.finalize())))
}

/// The ETag for a segment, from the SHA-256 of its bytes.
pub fn etag_of(sha256: &[u8]) -> String {
    hex::encode(&sha256[..16])
}

impl ChannelState {
    /// Opens (or creates) the channel's directory and rebuilds the index from disk.
    pub fn open(cfg: Channel, data_dir: &Path) -> io::Result<Self> {
        let root = data_dir.join(&cfg.id);
        fs::create_dir_all(&root)?;
        // Anything in tmp/ is an upload that never completed.
        let tmp = root.join("tmp");
        if tmp.exists() {
            fs::remove_dir_all(&tmp)?;
        }
        fs::create_dir_all(&tmp)?;
        let mut state = Self {
            cfg,
            root,
            renditions: BTreeMap::new(),
            inputs: Default::default(),
            active: None,
            failovers: 0,
            multivariant_cache: None,
        };
        state.replay_journals()?;
        for r in state.renditions.values() {
            for e in &r.entries {
                for (input, c) in e.copies.iter().enumerate() {
                    if let Some(SegmentCopy {
                        init: Some(id),
                        init_src: Some(src),
                        ..
                    }) = c
                    {
                        state.inputs[input].inits.insert(src.clone(), id.clone());
                    }
                }
            }
        }
        state.load_sources()?;
        let now = Instant::now();
        for input in 0..2 {
            let rids: Vec<String> = state.inputs[input].renditions.keys().cloned().collect();
            for rid in rids {
                state.advance(input, &rid, now)?;
            }
        }
        Ok(state)
    }

    fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Where an upload in progress is written; same file system as its destination.
    pub fn upload_temp_path(&self) -> io::Result<PathBuf> {
        disk::temp_path(&self.tmp_dir())
    }

    fn incoming(&self, input: usize, path: &str) -> PathBuf {
        self.root
            .join("incoming")
            .join((input + 1).to_string())
            .join(path)
    }

    fn source_doc_path(&self, input: usize, rid: Option<&str>) -> PathBuf {
        let base = self.root.join("inputs").join((input + 1).to_string());
        match rid {
            Some(rid) => base.join("renditions").join(format!("{rid}.json")),
            None => base.join("multivariant.json"),
        }
    }

    fn journal_path(&self, rid: &str) -> PathBuf {
        self.root.join("renditions").join(rid).join("journal.jsonl")
    }

    fn segment_path(&self, rid: &str, seq: u64, input: usize, ext: &str) -> PathBuf {
        self.root
            .join("renditions")
            .join(rid)
            .join(format!("{seq}-{}.{ext}", input + 1))
    }

    fn init_path(&self, rid: &str, id: &str) -> PathBuf {
        self.root
            .join("renditions")
            .join(rid)
            .join(format!("init-{id}.mp4"))
    }

    /// The id of `input`'s initialization segment uploaded at `file`, storing it (content
    /// addressed, kept while segments refer to it) the first time. `None`: not uploaded yet.
    fn store_init(&mut self, input: usize, rid: &str, file: &str) -> io::Result<Option<String>> {
        if let Some(id) = self.inputs[input].inits.get(file) {
            return Ok(Some(id.clone()));
        }
        let incoming = self.incoming(input, file);
        if !incoming.is_file() {
            return Ok(None);
        }
        let (_, etag) = hash_file(&incoming)?;
        let target = self.init_path(rid, &etag);
        if !target.is_file() {
            // Copied, not moved: the encoder uploads it once and keeps referring to it.
            let tmp = self.upload_temp_path()?;
            fs::copy(&incoming, &tmp)?;
            disk::rename_into(&tmp, &target)?;
        }
        self.inputs[input]
            .inits
            .insert(file.to_owned(), etag.clone());
        Ok(Some(etag))
    }

    /// A stored initialization segment by id.
    pub fn init(&self, rid: &str, id: &str) -> Option<PathBuf> {
        let ok = !id.is_empty() && id.bytes().all(|b| b.is_ascii_hexdigit());
        let path = self.init_path(rid, id);
        (ok && self.renditions.contains_key(rid) && path.is_file()).then_some(path)
    }

    /// The id of the initialization segment of the newest segment, as served now.
    pub fn latest_init(&self, rid: &str) -> Option<String> {
        let e = self.renditions.get(rid)?.entries.back()?;
        self.preferred_inputs()
            .into_iter()
            .find_map(|i| e.copies[i].as_ref())
            .and_then(|c| c.init.clone())
    }

    fn replay_journals(&mut self) -> io::Result<()> {
        let dir = self.root.join("renditions");
        let Ok(listing) = fs::read_dir(&dir) else {
            return Ok(());
        };
        for item in listing {
            let item = item?;
            let Some(rid) = item.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let journal = self.journal_path(&rid);
            let Ok(text) = fs::read_to_string(&journal) else {
                continue;
            };
            let mut r = Rendition::default();
            let mut damaged = false;
            for line in text.lines() {
                match serde_json::from_str::<JournalLine>(line) {
                    Ok(JournalLine::Put { entry }) => {
                        let entry = *entry;
                        let first = r.entries.front().map_or(0, |e| e.seq);
                        match r.entries.back().map(|e| e.seq) {
                            Some(last) if entry.seq <= last => {
                                if let Some(slot) = entry
                                    .seq
                                    .checked_sub(first)
                                    .and_then(|i| r.entries.get_mut(i as usize))
                                {
                                    *slot = entry;
                                }
                            }
                            _ => {
                                r.tail = Some(Tail {
                                    seq: entry.seq,
                                    msn: entry.msn,
                                    disc_seq: entry.disc_seq,
                                });
                                r.entries.push_back(entry);
                            }
                        }
                    }
                    Ok(JournalLine::Prune { before_seq, next }) => {
                        while r.entries.front().is_some_and(|e| e.seq < before_seq) {
                            r.entries.pop_front();
                        }
                        if r.entries.is_empty() {
                            r.tail = Some(next);
                        }
                    }
                    // A torn last line from a crash mid-append: that record never took effect.
                    Err(_) => damaged = true,
                }
                r.journal_lines += 1;
            }
            // Recover copies whose rename did not happen before a crash; drop those lost.
            let mut changed = damaged;
            for i in 0..r.entries.len() {
                for input in 0..2 {
                    let Some(copy) = r.entries[i].copies[input].clone() else {
                        continue;
                    };
                    let path = self.segment_path(&rid, r.entries[i].seq, input, &copy.ext);
                    if path.exists() {
                        continue;
                    }
                    let incoming = self.incoming(input, &copy.src);
                    if incoming.exists() {
                        disk::rename_into(&incoming, &path)?;
                    } else {
                        r.entries[i].copies[input] = None;
                        changed = true;
                    }
                }
            }
            while r
                .entries
                .back()
                .is_some_and(|e| e.copies.iter().all(Option::is_none))
            {
                r.entries.pop_back();
                changed = true;
            }
            if let Some(last) = r.entries.back() {
                r.tail = Some(Tail {
                    seq: last.seq,
                    msn: last.msn,
                    disc_seq: last.disc_seq,
                });
            }
            self.renditions.insert(rid.clone(), r);
            if changed {
                self.compact(&rid)?;
            }
        }
        // The input that delivered last is the active one until the encoders speak again.
        let mut latest = [None::<i64>; 2];
        for r in self.renditions.values() {
            if let Some(e) = r.entries.back() {
                for (i, c) in e.copies.iter().enumerate() {
                    if let Some(c) = c {
                        latest[i] = latest[i].max(Some(c.received_ms));
                    }
                }
            }
        }
        self.active = match latest {
            [None, None] => None,
            [a, b] => Some(usize::from(b > a)),
        };
        for (i, l) in latest.iter().enumerate() {
            self.inputs[i].last_advance_ms = *l;
        }
        Ok(())
    }

    fn load_sources(&mut self) -> io::Result<()> {
        for input in 0..2 {
            if let Some(doc) = read_doc(&self.source_doc_path(input, None))?
                && let Ok(SourcePlaylist::Multivariant(m)) =
                    source_playlist::parse(doc.text.as_bytes())
            {
                self.inputs[input].multivariant = Some((doc, m));
            }
            let dir = self
                .root
                .join("inputs")
                .join((input + 1).to_string())
                .join("renditions");
            let Ok(listing) = fs::read_dir(&dir) else {
                continue;
            };
            for item in listing {
                let path = item?.path();
                let Some(doc) = read_doc(&path)? else {
                    continue;
                };
                let Ok(SourcePlaylist::Media(source)) = source_playlist::parse(doc.text.as_bytes())
                else {
                    continue;
                };
                let rid = rendition_id(&doc.path);
                let last_msn = self.renditions.get(&rid).and_then(|r| {
                    r.entries
                        .iter()
                        .rev()
                        .find(|e| e.copies[input].is_some())
                        .map(|e| e.msn)
                });
                self.inputs[input].renditions.insert(
                    rid,
                    InputRendition {
                        source,
                        path: doc.path,
                        last_msn,
                        pending_since: HashMap::new(),
                    },
                );
            }
        }
        Ok(())
    }

    fn compact(&mut self, rid: &str) -> io::Result<()> {
        let Some(r) = self.renditions.get_mut(rid) else {
            return Ok(());
        };
        let mut text = String::new();
        if let (Some(tail), Some(first)) = (r.tail, r.entries.front().map(|e| e.seq).or(Some(0))) {
            let line = JournalLine::Prune {
                before_seq: first,
                next: tail,
            };
            text.push_str(&serde_json::to_string(&line).map_err(io::Error::other)?);
            text.push('\n');
        }
        for e in &r.entries {
            let line = JournalLine::Put {
                entry: Box::new(e.clone()),
            };
            text.push_str(&serde_json::to_string(&line).map_err(io::Error::other)?);
            text.push('\n');
        }
        r.journal_lines = r.entries.len() + 1;
        let path = self.root.join("renditions").join(rid).join("journal.jsonl");
        disk::write_atomic(&self.root.join("tmp"), &path, text.as_bytes())
    }

    fn journal(&mut self, rid: &str, line: &JournalLine) -> io::Result<()> {
        let text = serde_json::to_string(line).map_err(io::Error::other)?;
        disk::append_line(&self.journal_path(rid), &text)?;
        if let Some(r) = self.renditions.get_mut(rid) {
            r.journal_lines += 1;
        }
        Ok(())
    }

    /// Moves a finished upload from `tmp` into the input's incoming files and indexes whatever
    /// playlist entries were waiting for it. Returns the number of segments indexed.
    pub fn commit_upload(
        &mut self,
        input: usize,
        path: &str,
        tmp: &Path,
        size: u64,
        etag: String,
    ) -> io::Result<u64> {
        disk::rename_into(tmp, &self.incoming(input, path))?;
        self.inputs[input]
            .uploads
            .insert(path.to_owned(), (size, etag));
        // A re-uploaded initialization segment (an encoder restart) is stored afresh.
        self.inputs[input].inits.remove(path);
        let rids: Vec<String> = self.inputs[input].renditions.keys().cloned().collect();
        let mut indexed = 0;
        let now = Instant::now();
        for rid in rids {
            indexed += self.advance(input, &rid, now)?;
        }
        Ok(indexed)
    }

    /// Validates and applies an uploaded playlist.
    pub fn accept_playlist(
        &mut self,
        input: usize,
        path: &str,
        bytes: &[u8],
    ) -> Result<Accepted, IngestError> {
        let text = std::str::from_utf8(bytes).map_err(|_| PlaylistError::NotUtf8)?;
        let doc = StoredDoc {
            path: path.to_owned(),
            text: text.to_owned(),
        };
        match source_playlist::parse(bytes)? {
            SourcePlaylist::Multivariant(m) => {
                let uris = m
                    .variants
                    .iter()
                    .map(|v| &v.uri)
                    .chain(m.alternatives.iter().filter_map(|a| a.uri.as_ref()));
                for uri in uris {
                    if resolve_segment_uri(path, uri, &self.cfg.id, input).is_none() {
                        return Err(IngestError::OutsideInput(format!(
                            "variant URI '{uri}' points outside /in/v1/{}/{}/",
                            self.cfg.id,
                            input + 1
                        )));
                    }
                }
                let created = self.inputs[input].multivariant.is_none();
                self.write_doc(&self.source_doc_path(input, None), &doc)?;
                self.inputs[input].multivariant = Some((doc, m));
                self.multivariant_cache = None;
                Ok(Accepted {
                    created,
                    segments_indexed: 0,
                })
            }
            SourcePlaylist::Media(source) => {
                let rid = rendition_id(path);
                for s in &source.segments {
                    if resolve_segment_uri(path, &s.uri, &self.cfg.id, input).is_none() {
                        return Err(IngestError::OutsideInput(format!(
                            "segment URI '{}' points outside /in/v1/{}/{}/",
                            s.uri,
                            self.cfg.id,
                            input + 1
                        )));
                    }
                }
                let previous = self.inputs[input].renditions.get(&rid);
                if let Some(prev) = previous
                    && source.media_sequence < prev.source.media_sequence
                {
                    return Err(IngestError::Regressed {
                        rendition: rid,
                        previous: prev.source.media_sequence,
                        got: source.media_sequence,
                    });
                }
                let created = previous.is_none();
                self.write_doc(&self.source_doc_path(input, Some(&rid)), &doc)?;
                let slot = self.inputs[input]
                    .renditions
                    .entry(rid.clone())
                    .or_insert_with(|| InputRendition {
                        source: source.clone(),
                        path: path.to_owned(),
                        last_msn: None,
                        pending_since: HashMap::new(),
                    });
                slot.source = source;
                slot.path = path.to_owned();
                self.renditions.entry(rid.clone()).or_default().cache = None;
                self.multivariant_cache = None;
                let segments_indexed = self.advance(input, &rid, Instant::now())?;
                Ok(Accepted {
                    created,
                    segments_indexed,
                })
            }
        }
    }

    fn write_doc(&self, path: &Path, doc: &StoredDoc) -> io::Result<()> {
        let json = serde_json::to_vec(doc).map_err(io::Error::other)?;
        disk::write_atomic(&self.tmp_dir(), path, &json)
    }

    /// Handles an encoder DELETE. Indexed segments stay (the startover window is ours to prune);
    /// an upload no playlist listed yet is removed.
    pub fn delete(&mut self, input: usize, path: &str) -> io::Result<()> {
        // A playlist's last good state stays: the channel keeps its renditions.
        if !is_playlist(path) {
            self.inputs[input].uploads.remove(path);
            disk::remove_if_exists(&self.incoming(input, path))?;
        }
        Ok(())
    }

    /// Indexes the committed entries of `input`'s latest playlist for `rid`. Returns how many
    /// segments entered the timeline.
    fn advance(&mut self, input: usize, rid: &str, now: Instant) -> io::Result<u64> {
        let Some(ir) = self.inputs[input].renditions.get(rid) else {
            return Ok(0);
        };
        // Entries up to `last_msn` are done; only the rest (usually none: this runs on every
        // upload and every tick) is resolved and looked up on disk.
        let first_msn = ir.source.media_sequence;
        let done = ir.last_msn.map_or(0, |l| {
            usize::try_from((l + 1).saturating_sub(first_msn)).unwrap_or(usize::MAX)
        });
        if done >= ir.source.segments.len() {
            return Ok(0);
        }
        let pending: Vec<SourceSegment> = ir.source.segments[done..].to_vec();
        let playlist_path = ir.path.clone();
        let mut last_msn = ir.last_msn;
        let pending_grace = Duration::from_secs_f64(2.0 * ir.source.target_duration.max(1) as f64);
        let mut disc_in_source = ir.source.discontinuity_sequence
            + ir.source.segments[..done]
                .iter()
                .filter(|s| s.discontinuity)
                .count() as u64;
        let mut indexed = 0;
        let files: Vec<Option<String>> = pending
            .iter()
            .map(|s| resolve_segment_uri(&playlist_path, &s.uri, &self.cfg.id, input))
            .collect();
        // fMP4: the initialization segment each one needs (a map outside the input: none).
        let maps: Vec<Option<String>> = pending
            .iter()
            .map(|s| {
                s.map
                    .as_ref()
                    .and_then(|m| resolve_segment_uri(&playlist_path, m, &self.cfg.id, input))
            })
            .collect();
        let committed: Vec<bool> = files
            .iter()
            .zip(&maps)
            .map(|(f, m)| {
                let map_ready = m.as_ref().is_none_or(|m| {
                    self.inputs[input].inits.contains_key(m) || self.incoming(input, m).is_file()
                });
                map_ready
                    && f.as_ref()
                        .is_some_and(|f| self.incoming(input, f).is_file())
            })
            .collect();
        for (idx, seg) in pending.iter().enumerate() {
            let msn = first_msn + (done + idx) as u64;
            if seg.discontinuity {
                disc_in_source += 1;
            }
            let Some(file) = files[idx].clone() else {
                last_msn = Some(msn);
                continue;
            };
            if !committed[idx] {
                let since = match self.inputs[input].renditions.get_mut(rid) {
                    Some(r) => *r.pending_since.entry(msn).or_insert(now),
                    None => now,
                };
                let later_committed = committed[idx + 1..].iter().any(|c| *c);
                if later_committed && now.duration_since(since) > pending_grace {
                    // Lost upload: later segments arrived long ago. Move on; the gap becomes a
                    // discontinuity.
                    tracing::warn!(channel = %self.cfg.id, input = input + 1, rendition = rid, msn,
                        "segment listed but never uploaded; skipped");
                    last_msn = Some(msn);
                    continue;
                }
                break;
            }
            let incoming = self.incoming(input, &file);
            let (size, etag) = match self.inputs[input].uploads.get(&file) {
                Some(info) => info.clone(),
                None => hash_file(&incoming)?,
            };
            let init = match &maps[idx] {
                Some(m) => match self.store_init(input, rid, m)? {
                    Some(id) => Some(id),
                    None => break, // removed meanwhile: wait for the next upload
                },
                None => None,
            };
            let copy = SegmentCopy {
                ext: segment_ext(&file),
                size,
                etag,
                src: file.clone(),
                received_ms: now_ms(),
                init,
                init_src: maps[idx].clone(),
            };
            let r = self.renditions.entry(rid.to_owned()).or_default();
            // MSNs only grow along the timeline, so it is sorted by MSN too.
            let existing = r.entries.binary_search_by_key(&msn, |e| e.msn).ok();
            let entry = if let Some(i) = existing {
                let mut e = r.entries[i].clone();
                if e.copies[input].is_some() {
                    last_msn = Some(msn);
                    disk::remove_if_exists(&incoming)?;
                    continue;
                }
                e.copies[input] = Some(copy.clone());
                e
            } else if r.tail.is_none_or(|t| msn > t.msn) {
                let prev = r.entries.back();
                let (seq, discontinuity, disc_seq) = match r.tail {
                    None => (msn, seg.discontinuity, disc_in_source),
                    Some(t) => {
                        let d = seg.discontinuity || msn != t.msn + 1;
                        (t.seq + 1, d, t.disc_seq + u64::from(d))
                    }
                };
                let pdt = match (seg.program_date_time, prev) {
                    (Some(p), _) => p,
                    (None, Some(p)) if !discontinuity => {
                        p.pdt + TimeDelta::milliseconds((p.duration * 1000.0).round() as i64)
                    }
                    _ => Utc::now(),
                };
                let mut copies = [None, None];
                copies[input] = Some(copy.clone());
                Entry {
                    seq,
                    msn,
                    duration: seg.duration,
                    pdt,
                    pdt_from_encoder: seg.program_date_time.is_some(),
                    discontinuity,
                    disc_seq,
                    tags: seg.tags.clone(),
                    received_ms: copy.received_ms,
                    copies,
                }
            } else {
                // Older than the live edge but not in the timeline (left the window, or a hole
                // the other input never filled): it cannot be inserted without renumbering.
                disk::remove_if_exists(&incoming)?;
                last_msn = Some(msn);
                continue;
            };
            // Journal first, then move the file: a crash in between is repaired at start-up
            // from `src`.
            self.journal(
                rid,
                &JournalLine::Put {
                    entry: Box::new(entry.clone()),
                },
            )?;
            let target = self.segment_path(rid, entry.seq, input, &copy.ext);
            disk::rename_into(&incoming, &target)?;
            self.inputs[input].uploads.remove(&file);
            let r = self.renditions.entry(rid.to_owned()).or_default();
            match existing {
                Some(i) => r.entries[i] = entry,
                None => {
                    r.tail = Some(Tail {
                        seq: entry.seq,
                        msn: entry.msn,
                        disc_seq: entry.disc_seq,
                    });
                    r.entries.push_back(entry);
                }
            }
            r.cache = None;
            last_msn = Some(msn);
            indexed += 1;
        }
        if let Some(ir) = self.inputs[input].renditions.get_mut(rid) {
            ir.last_msn = last_msn;
            ir.pending_since
                .retain(|m, _| last_msn.is_none_or(|l| *m > l));
        }
        if indexed > 0 {
            self.inputs[input].last_advance = Some(now);
            self.inputs[input].last_advance_ms = Some(now_ms());
            if self.active.is_none() {
                self.active = Some(input);
            }
            self.multivariant_cache = None;
        }
        Ok(indexed)
    }

    fn max_target_duration(&self) -> u64 {
        self.inputs
            .iter()
            .flat_map(|i| i.renditions.values().map(|r| r.source.target_duration))
            .max()
            .unwrap_or(6)
    }

    /// How long the active input may stand still before the other takes over.
    pub fn failover_after(&self) -> Duration {
        Duration::from_secs_f64(
            self.cfg
                .failover_after_seconds
                .unwrap_or(2.0 * self.max_target_duration() as f64),
        )
    }

    /// Periodic work: skip lost uploads and switch inputs when the active one stalled. Switches
    /// only from a stalled input to one that is advancing, so two healthy inputs never flap.
    pub fn tick(&mut self, now: Instant) -> io::Result<Option<Failover>> {
        for input in 0..2 {
            let rids: Vec<String> = self.inputs[input].renditions.keys().cloned().collect();
            for rid in rids {
                self.advance(input, &rid, now)?;
            }
        }
        let after = self.failover_after();
        let fresh = |i: usize| {
            self.inputs[i]
                .last_advance
                .is_some_and(|t| now.duration_since(t) < after)
        };
        let Some(active) = self.active else {
            return Ok(None);
        };
        let other = 1 - active;
        if !fresh(active) && fresh(other) {
            self.active = Some(other);
            self.failovers += 1;
            self.multivariant_cache = None;
            for r in self.renditions.values_mut() {
                r.cache = None;
            }
            return Ok(Some(Failover {
                from: active,
                to: other,
            }));
        }
        Ok(None)
    }

    /// Removes segments that arrived before the startover window, from the index and the disk.
    pub fn prune(&mut self, now_ms: i64) -> io::Result<u64> {
        let cutoff = now_ms - (self.cfg.startover_window_seconds as i64) * 1000;
        let rids: Vec<String> = self.renditions.keys().cloned().collect();
        let mut removed = 0;
        for rid in rids {
            let mut gone = Vec::new();
            if let Some(r) = self.renditions.get_mut(&rid) {
                while r.entries.front().is_some_and(|e| e.received_ms < cutoff) {
                    if let Some(e) = r.entries.pop_front() {
                        gone.push(e);
                    }
                }
            }
            if gone.is_empty() {
                continue;
            }
            let (before_seq, next, lines, live) = match self.renditions.get_mut(&rid) {
                Some(r) => {
                    r.cache = None;
                    let before = r
                        .entries
                        .front()
                        .map_or_else(|| gone.last().map_or(0, |e| e.seq + 1), |e| e.seq);
                    (before, r.tail, r.journal_lines, r.entries.len())
                }
                None => continue,
            };
            if let Some(next) = next {
                self.journal(&rid, &JournalLine::Prune { before_seq, next })?;
            }
            for e in &gone {
                for (input, c) in e.copies.iter().enumerate() {
                    if let Some(c) = c {
                        disk::remove_if_exists(&self.segment_path(&rid, e.seq, input, &c.ext))?;
                    }
                }
            }
            self.prune_inits(&rid, &gone)?;
            removed += gone.len() as u64;
            if lines > 2 * live + 1024 {
                self.compact(&rid)?;
            }
        }
        Ok(removed)
    }

    /// Deletes the initialization segments of pruned entries that no retained entry needs.
    fn prune_inits(&mut self, rid: &str, gone: &[Entry]) -> io::Result<()> {
        let Some(r) = self.renditions.get(rid) else {
            return Ok(());
        };
        let used = |id: &str| {
            r.entries
                .iter()
                .flat_map(|e| e.copies.iter().flatten())
                .any(|c| c.init.as_deref() == Some(id))
        };
        let unused: Vec<String> = gone
            .iter()
            .flat_map(|e| e.copies.iter().flatten())
            .filter_map(|c| c.init.clone())
            .filter(|id| !used(id))
            .collect();
        for id in unused {
            disk::remove_if_exists(&self.init_path(rid, &id))?;
            for i in &mut self.inputs {
                i.inits.retain(|_, v| *v != id);
            }
        }
        Ok(())
    }

    /// Deletes uploads that no playlist listed within `max_age`.
    pub fn gc_uploads(&mut self, max_age: Duration) -> io::Result<u64> {
        let mut removed = 0;
        for input in 0..2 {
            let base = self.root.join("incoming").join((input + 1).to_string());
            let mut stack = vec![base.clone()];
            while let Some(dir) = stack.pop() {
                let Ok(listing) = fs::read_dir(&dir) else {
                    continue;
                };
                for item in listing {
                    let item = item?;
                    let meta = item.metadata()?;
                    if meta.is_dir() {
                        stack.push(item.path());
                    } else if meta
                        .modified()
                        .ok()
                        .and_then(|m| m.elapsed().ok())
                        .is_some_and(|age| age > max_age)
                    {
                        disk::remove_if_exists(&item.path())?;
                        if let Ok(rel) = item.path().strip_prefix(&base)
                            && let Some(rel) = rel.to_str()
                        {
                            self.inputs[input].uploads.remove(rel);
                        }
                        removed += 1;
                    }
                }
            }
        }
        Ok(removed)
    }

    /// The active input (0 or 1), if any input has published.
    pub fn active(&self) -> Option<usize> {
        self.active
    }

    fn preferred_inputs(&self) -> [usize; 2] {
        match self.active {
            Some(1) => [1, 0],
            _ => [0, 1],
        }
    }

    /// The normalized multivariant playlist: the active input's, with variant URIs rewritten to
    /// `{rendition}/index.m3u8`; one synthesized from the renditions if no input sent one.
    pub fn multivariant(&mut self) -> Option<Rendered> {
        if let Some(c) = &self.multivariant_cache {
            return Some(c.clone());
        }
        let [a, b] = self.preferred_inputs();
        let source = self.inputs[a]
            .multivariant
            .as_ref()
            .map(|m| (a, m))
            .or_else(|| self.inputs[b].multivariant.as_ref().map(|m| (b, m)));
        let text = match source {
            Some((input, (doc, m))) => {
                let mut m = m.clone();
                let rewrite = |uri: &str| {
                    resolve_segment_uri(&doc.path, uri, &self.cfg.id, input)
                        .map(|p| format!("{}/index.m3u8", rendition_id(&p)))
                };
                for v in &mut m.variants {
                    if let Some(u) = rewrite(&v.uri) {
                        v.uri = u;
                    }
                }
                for alt in &mut m.alternatives {
                    if let Some(u) = alt.uri.as_deref().and_then(rewrite) {
                        alt.uri = Some(u);
                    }
                }
                let mut out = Vec::new();
                m.write_to(&mut out).ok()?;
                String::from_utf8(out).ok()?
            }
            None => {
                if self.renditions.values().all(|r| r.entries.is_empty()) {
                    return None;
                }
                let mut text = "#EXTM3U\n#EXT-X-VERSION:3\n".to_owned();
                for (rid, r) in &self.renditions {
                    let bps = r
                        .entries
                        .iter()
                        .rev()
                        .take(30)
                        .filter_map(|e| {
                            e.copies
                                .iter()
                                .flatten()
                                .next()
                                .map(|c| c.size as f64 * 8.0 / e.duration)
                        })
                        .fold(0.0, f64::max);
                    let _ = writeln!(
                        text,
                        "#EXT-X-STREAM-INF:BANDWIDTH={}\n{rid}/index.m3u8",
                        bps.ceil().max(1.0) as u64
                    );
                }
                text
            }
        };
        let r = Rendered::new(text);
        self.multivariant_cache = Some(r.clone());
        Some(r)
    }

    /// The rendition's media playlist with the whole retained history.
    pub fn media_playlist(&mut self, rid: &str) -> Option<Rendered> {
        let [a, b] = self.preferred_inputs();
        let source_td = self
            .inputs
            .iter()
            .filter_map(|i| i.renditions.get(rid))
            .map(|r| r.source.target_duration)
            .max()
            .unwrap_or(1);
        let version = self
            .inputs
            .iter()
            .filter_map(|i| i.renditions.get(rid))
            .map(|r| r.source.version)
            .max()
            .unwrap_or(3);
        let r = self.renditions.get_mut(rid)?;
        if let Some(c) = &r.cache {
            return Some(c.clone());
        }
        let td = r
            .entries
            .iter()
            .map(|e| e.duration.round() as u64)
            .max()
            .unwrap_or(0)
            .max(source_td);
        let first = r.entries.front();
        let mut text = String::with_capacity(64 + r.entries.len() * 120);
        let _ = write!(
            text,
            "#EXTM3U\n#EXT-X-VERSION:{version}\n#EXT-X-TARGETDURATION:{td}\n#EXT-X-MEDIA-SEQUENCE:{}\n#EXT-X-DISCONTINUITY-SEQUENCE:{}\n",
            first.map_or_else(|| r.tail.map_or(0, |t| t.seq + 1), |e| e.seq),
            first.map_or_else(|| r.tail.map_or(0, |t| t.disc_seq), |e| e.disc_seq)
        );
        let mut map: Option<&str> = None;
        for (i, e) in r.entries.iter().enumerate() {
            if e.discontinuity && i > 0 {
                text.push_str("#EXT-X-DISCONTINUITY\n");
            }
            for t in &e.tags {
                text.push_str(t);
                text.push('\n');
            }
            let copy = e.copies[a].as_ref().or(e.copies[b].as_ref());
            // fMP4: the initialization segment of the copy that will be served.
            if let Some(id) = copy.and_then(|c| c.init.as_deref())
                && map != Some(id)
            {
                let _ = writeln!(text, "#EXT-X-MAP:URI=\"init-{id}.mp4\"");
                map = Some(id);
            }
            let ext = copy.map_or("ts", |c| c.ext.as_str());
            let _ = write!(
                text,
                "#EXT-X-PROGRAM-DATE-TIME:{}\n#EXTINF:{:.6},\n{}.{ext}\n",
                e.pdt.to_rfc3339_opts(SecondsFormat::Millis, true),
                e.duration,
                e.seq
            );
        }
        let rendered = Rendered::new(text);
        r.cache = Some(rendered.clone());
        Some(rendered)
    }

    /// Finds a segment: the active input's copy, else the other's.
    pub fn segment(&self, rid: &str, seq: u64, ext: &str) -> Option<SegmentFile> {
        let r = self.renditions.get(rid)?;
        let first = r.entries.front()?.seq;
        let e = r
            .entries
            .get(usize::try_from(seq.checked_sub(first)?).ok()?)?;
        self.preferred_inputs().into_iter().find_map(|input| {
            let copy = e.copies[input].as_ref()?;
            (copy.ext == ext).then(|| SegmentFile {
                seq,
                path: self.segment_path(rid, seq, input, &copy.ext),
                copy: copy.clone(),
                input,
                pdt: e.pdt,
                duration: e.duration,
            })
        })
    }

    /// The sequence number of the segment of `rid` that starts at `pdt_ms` (epoch ms), within
    /// a quarter of its duration (renditions of one encoder share program date times; this
    /// forgives the rounding of one that the store dated itself).
    pub fn sequence_at(&self, rid: &str, pdt_ms: i64) -> Option<u64> {
        let r = self.renditions.get(rid)?;
        // Program date times never decrease along a rendition's entries.
        let i = r
            .entries
            .partition_point(|e| e.pdt.timestamp_millis() < pdt_ms);
        [i.checked_sub(1), Some(i)]
            .into_iter()
            .flatten()
            .filter_map(|i| r.entries.get(i))
            .map(|e| (e, (e.pdt.timestamp_millis() - pdt_ms).abs()))
            .filter(|(e, off)| (*off as f64) <= e.duration * 250.0)
            .min_by_key(|(_, off)| *off)
            .map(|(e, _)| e.seq)
    }

    /// True when the rendition exists.
    pub fn has_rendition(&self, rid: &str) -> bool {
        self.renditions.contains_key(rid)
    }

    /// Number of segments currently retained, all renditions.
    pub fn retained_segments(&self) -> u64 {
        self.renditions
            .values()
            .map(|r| r.entries.len() as u64)
            .sum()
    }

    /// The `status` document.
    pub fn status(&self) -> serde_json::Value {
        let now = Instant::now();
        let after = self.failover_after();
        let ms = |v: Option<i64>| {
            v.and_then(DateTime::<Utc>::from_timestamp_millis)
                .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
        };
        let inputs: Vec<_> = (0..2)
            .map(|i| {
                let s = &self.inputs[i];
                serde_json::json!({
                    "input": i + 1,
                    "publishing": s.last_advance.is_some_and(|t| now.duration_since(t) < after),
                    "last_update": ms(s.last_advance_ms),
                    "multivariant": s.multivariant.is_some(),
                    "renditions": s.renditions.iter().map(|(rid, r)| serde_json::json!({
                        "id": rid,
                        "source_path": r.path,
                        "target_duration": r.source.target_duration,
                        "last_media_sequence": r.last_msn,
                        "ended": r.source.ended,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        let renditions: Vec<_> = self
            .renditions
            .iter()
            .map(|(rid, r)| {
                let f = r.entries.front();
                let l = r.entries.back();
                serde_json::json!({
                    "id": rid,
                    "segments": r.entries.len(),
                    "first_sequence": f.map(|e| e.seq),
                    "last_sequence": l.map(|e| e.seq),
                    "first_program_date_time": f.map(|e| e.pdt.to_rfc3339_opts(SecondsFormat::Millis, true)),
                    "last_program_date_time": l.map(|e| e.pdt.to_rfc3339_opts(SecondsFormat::Millis, true)),
                    "duration_seconds": r.entries.iter().map(|e| e.duration).sum::<f64>(),
                })
            })
            .collect();
        serde_json::json!({
            "channel": self.cfg.id,
            "active_input": self.active.map(|a| a + 1),
            "failovers": self.failovers,
            "failover_after_seconds": after.as_secs_f64(),
            "startover_window_seconds": self.cfg.startover_window_seconds,
            "last_update": ms(self.inputs.iter().filter_map(|i| i.last_advance_ms).max()),
            "inputs": inputs,
            "renditions": renditions,
        })
    }
}

fn read_doc(path: &Path) -> io::Result<Option<StoredDoc>> {
    match fs::read(path) {
        Ok(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Credentials;

    fn channel() -> Channel {
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

    fn playlist(first: u64, count: u64) -> String {
        let mut t = format!("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:{first}\n");
        for m in first..first + count {
            t.push_str(&format!("#EXTINF:2.0,\ns{m}.ts\n"));
        }
        t
    }

    fn upload(st: &mut ChannelState, input: usize, name: &str) {
        let tmp = st.upload_temp_path().unwrap();
        fs::write(&tmp, name.as_bytes()).unwrap();
        st.commit_upload(input, name, &tmp, name.len() as u64, "e".into())
            .unwrap();
    }

    fn uris(st: &mut ChannelState) -> Vec<String> {
        let r = st.media_playlist("hd").unwrap();
        String::from_utf8(r.body.to_vec())
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn both_inputs_share_one_timeline_and_fill_each_others_gaps() {
        let d = tempfile::tempdir().unwrap();
        let mut st = ChannelState::open(channel(), d.path()).unwrap();
        for m in 0..3 {
            upload(&mut st, 0, &format!("s{m}.ts"));
        }
        st.accept_playlist(0, "hd.m3u8", playlist(0, 3).as_bytes())
            .unwrap();
        // Input 2 delivers 1..4: 1 and 2 attach to existing entries, 3 and 4 extend the timeline.
        for m in 1..5 {
            upload(&mut st, 1, &format!("s{m}.ts"));
        }
        st.accept_playlist(1, "hd.m3u8", playlist(1, 4).as_bytes())
            .unwrap();
        assert_eq!(uris(&mut st), ["0.ts", "1.ts", "2.ts", "3.ts", "4.ts"]);
        assert_eq!(
            st.segment("hd", 1, "ts").unwrap().input,
            0,
            "active input first"
        );
        assert_eq!(
            st.segment("hd", 4, "ts").unwrap().input,
            1,
            "else the other"
        );
        assert!(st.segment("hd", 4, "mp4").is_none());
    }

    fn fmp4_playlist(first: u64, count: u64, map: &str) -> String {
        let mut t = format!(
            "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:{first}\n#EXT-X-MAP:URI=\"{map}\"\n"
        );
        for m in first..first + count {
            t.push_str(&format!("#EXTINF:2.0,\ns{m}.m4s\n"));
        }
        t
    }

    #[test]
    fn fmp4_initialization_segments_are_stored_named_and_pruned() {
        let d = tempfile::tempdir().unwrap();
        let mut st = ChannelState::open(channel(), d.path()).unwrap();
        for m in 0..2 {
            upload(&mut st, 0, &format!("s{m}.m4s"));
        }
        // The playlist names an init that has not arrived: nothing is published yet.
        st.accept_playlist(0, "hd.m3u8", fmp4_playlist(0, 2, "init.mp4").as_bytes())
            .unwrap();
        assert!(uris(&mut st).is_empty());
        upload(&mut st, 0, "init.mp4");
        let body = String::from_utf8(st.media_playlist("hd").unwrap().body.to_vec()).unwrap();
        let first_id = st.latest_init("hd").unwrap();
        assert_eq!(
            body.matches(&format!("#EXT-X-MAP:URI=\"init-{first_id}.mp4\"\n"))
                .count(),
            1,
            "{body}"
        );
        assert_eq!(uris(&mut st), ["0.m4s", "1.m4s"]);
        let path = st.init("hd", &first_id).unwrap();
        assert_eq!(fs::read(path).unwrap(), b"init.mp4");
        assert!(st.init("hd", "../../x").is_none());

        // The encoder restarts with a new init under the same name: a second map from there on.
        let tmp = st.upload_temp_path().unwrap();
        fs::write(&tmp, b"new init").unwrap();
        st.commit_upload(0, "init.mp4", &tmp, 8, "e".into())
            .unwrap();
        upload(&mut st, 0, "s2.m4s");
        st.accept_playlist(0, "hd.m3u8", fmp4_playlist(1, 2, "init.mp4").as_bytes())
            .unwrap();
        let second_id = st.latest_init("hd").unwrap();
        assert_ne!(first_id, second_id);
        let body = String::from_utf8(st.media_playlist("hd").unwrap().body.to_vec()).unwrap();
        let maps: Vec<&str> = body
            .lines()
            .filter(|l| l.starts_with("#EXT-X-MAP"))
            .collect();
        assert_eq!(maps.len(), 2, "{body}");
        assert!(body.contains(&format!("init-{second_id}.mp4\"\n#EXT-X-PROGRAM-DATE-TIME")));

        // A restart keeps knowing which init each segment needs.
        drop(st);
        let mut st = ChannelState::open(channel(), d.path()).unwrap();
        assert_eq!(st.latest_init("hd").as_deref(), Some(second_id.as_str()));
        // Pruning everything deletes both inits.
        st.prune(now_ms() + 7_200_000).unwrap();
        assert!(st.init("hd", &first_id).is_none());
        assert!(st.init("hd", &second_id).is_none());
    }

    #[test]
    fn sequence_jump_is_a_discontinuity_not_a_hole() {
        let d = tempfile::tempdir().unwrap();
        let mut st = ChannelState::open(channel(), d.path()).unwrap();
        upload(&mut st, 0, "s10.ts");
        st.accept_playlist(0, "hd.m3u8", playlist(10, 1).as_bytes())
            .unwrap();
        upload(&mut st, 0, "s500.ts");
        st.accept_playlist(0, "hd.m3u8", playlist(500, 1).as_bytes())
            .unwrap();
        let text = String::from_utf8(st.media_playlist("hd").unwrap().body.to_vec()).unwrap();
        assert!(text.contains("#EXT-X-MEDIA-SEQUENCE:10\n"), "{text}");
        assert!(text.contains("#EXT-X-DISCONTINUITY\n"), "{text}");
        assert_eq!(uris(&mut st), ["10.ts", "11.ts"]);
    }

    #[test]
    fn failover_only_from_a_stalled_input_to_a_live_one() {
        let d = tempfile::tempdir().unwrap();
        let mut st = ChannelState::open(channel(), d.path()).unwrap();
        upload(&mut st, 0, "s0.ts");
        st.accept_playlist(0, "hd.m3u8", playlist(0, 1).as_bytes())
            .unwrap();
        upload(&mut st, 1, "s0.ts");
        st.accept_playlist(1, "hd.m3u8", playlist(0, 1).as_bytes())
            .unwrap();
        assert_eq!(st.active(), Some(0));
        let t0 = Instant::now();
        assert_eq!(st.failover_after(), Duration::from_secs(4));
        // Both fresh: no switch.
        assert_eq!(st.tick(t0 + Duration::from_secs(1)).unwrap(), None);
        // Both stalled: nowhere better to go.
        assert_eq!(st.tick(t0 + Duration::from_secs(10)).unwrap(), None);
        // Input 2 delivers again while input 1 stays silent: switch once, then stay.
        st.inputs[1].last_advance = Some(t0 + Duration::from_secs(9));
        assert_eq!(
            st.tick(t0 + Duration::from_secs(10)).unwrap(),
            Some(Failover { from: 0, to: 1 })
        );
        assert_eq!(st.tick(t0 + Duration::from_secs(11)).unwrap(), None);
        assert_eq!(st.active(), Some(1));
    }

    #[test]
    fn lost_upload_is_skipped_once_later_segments_are_old_enough() {
        let d = tempfile::tempdir().unwrap();
        let mut st = ChannelState::open(channel(), d.path()).unwrap();
        upload(&mut st, 0, "s0.ts");
        upload(&mut st, 0, "s2.ts");
        st.accept_playlist(0, "hd.m3u8", playlist(0, 3).as_bytes())
            .unwrap();
        assert_eq!(uris(&mut st), ["0.ts"], "s1 pending");
        st.tick(Instant::now() + Duration::from_secs(1)).unwrap();
        assert_eq!(uris(&mut st), ["0.ts"], "still within the grace period");
        st.tick(Instant::now() + Duration::from_secs(5)).unwrap();
        let text = String::from_utf8(st.media_playlist("hd").unwrap().body.to_vec()).unwrap();
        assert_eq!(uris(&mut st), ["0.ts", "1.ts"]);
        assert!(text.contains("#EXT-X-DISCONTINUITY\n"), "{text}");
    }
}
