//! A channel shared through a bucket: the index as a log that every sidecar of the channel
//! reads and the ingest sidecars append to.
//!
//! The bucket holds, under `{prefix}{channel}/`:
//! - `media/{etag}`: every segment and initialization segment, written once under its content
//!   hash at upload (the ETag the store serves it with), before the upload is acknowledged;
//! - `log/{n:020}`: the index, numbered objects of JSON lines ([`LogRecord`]s). Object `n` is
//!   created only if it does not exist (`If-None-Match: *`), so two ingest sidecars — input 1
//!   on one host, input 2 on another — append in one order: the bucket is all they share.
//!
//! A writer first reads every object up to the end, then creates the next with what it did.
//! When the other writer created that number first, its records are applied here and this
//! writer's unpublished records are rebased on them (a segment both appended under one number
//! becomes one entry with both inputs' copies; the first pin wins), then published under the
//! next number. Each writer attaches only its own inputs' copies, so the two never undo each
//! other. Edges only read.

use std::collections::{BTreeMap, HashSet};
use std::io;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::ChannelState;
use super::ingest::StoredDoc;
use super::journal::JournalLine;
use super::now_ms;
use super::timeline::{Entry, InputRendition, Tail};
use crate::ingest_path::rendition_id;
use crate::source_playlist::{self, SourcePlaylist};

/// One change to a channel, as the log carries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum LogRecord {
    /// Insert or replace the rendition's entry with this `seq`.
    Put { rid: String, entry: Box<Entry> },
    /// The rendition's entries before `before_seq` left the window.
    Prune {
        rid: String,
        before_seq: u64,
        next: Tail,
    },
    /// An input's last good source playlist (multivariant or media).
    Source { input: usize, doc: StoredDoc },
    /// The input served from now on (the first to publish, or a failover).
    Active { input: usize },
}

/// A log object's body: one JSON record per line.
pub fn encode(records: &[LogRecord]) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    for r in records {
        serde_json::to_writer(&mut out, r).map_err(io::Error::other)?;
        out.push(b'\n');
    }
    Ok(out)
}

/// Reads a log object back; a line that is no record makes the object unreadable (objects are
/// written whole, so that is damage, not a torn append).
pub fn decode(bytes: &[u8]) -> io::Result<Vec<LogRecord>> {
    bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            serde_json::from_slice(l)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
        })
        .collect()
}

/// A channel's place in the bucket's log.
#[derive(Debug)]
pub(super) struct Replica {
    /// The inputs whose encoders push to this sidecar.
    pub(super) local: [bool; 2],
    /// Records not in the bucket yet, oldest first.
    pub(super) outbox: Vec<LogRecord>,
    /// The number of the next log object to read (or create).
    pub(super) next: u64,
    /// Read the log to its end at least once (start-up is over).
    pub(super) caught_up: bool,
    /// Media (content hashes) pruned here and used by no retained entry: to delete.
    pub(super) deletes: Vec<String>,
    /// Each input's last source playlists, by rendition (`None`: the multivariant one), as a
    /// snapshot restates them.
    pub(super) sources: [BTreeMap<Option<String>, StoredDoc>; 2],
}

impl Replica {
    fn remember_source(&mut self, input: usize, doc: &StoredDoc) {
        let key = match source_playlist::parse(doc.text.as_bytes()) {
            Ok(SourcePlaylist::Media(_)) => Some(rendition_id(&doc.path)),
            _ => None,
        };
        if let Some(s) = self.sources.get_mut(input) {
            s.insert(key, doc.clone());
        }
    }

    /// Writes to the log: takes uploads for at least one input.
    pub(super) fn writer(&self) -> bool {
        self.local.iter().any(|l| *l)
    }
}

impl ChannelState {
    /// Whether this sidecar takes uploads for `input` (always, without a bucket).
    pub(super) fn is_local(&self, input: usize) -> bool {
        self.replica
            .as_ref()
            .is_none_or(|r| r.local.get(input).copied().unwrap_or(false))
    }

    /// True for a sidecar that only reads the bucket (an edge).
    pub fn read_only(&self) -> bool {
        self.replica.as_ref().is_some_and(|r| !r.writer())
    }

    /// Keeps a record for the log: true when the channel is in a bucket (then there is no
    /// local journal). An edge keeps nothing (a pin it makes holds in its memory only).
    pub(super) fn log(&mut self, record: LogRecord) -> bool {
        match &mut self.replica {
            Some(r) => {
                if let LogRecord::Source { input, doc } = &record {
                    r.remember_source(*input, doc);
                }
                if r.writer() {
                    r.outbox.push(record);
                }
                true
            }
            None => false,
        }
    }

    /// The journal line as a log record of rendition `rid`.
    pub(super) fn log_line(&mut self, rid: &str, line: &JournalLine) -> bool {
        if self.replica.is_none() {
            return false;
        }
        let record = match line {
            JournalLine::Put { entry } => LogRecord::Put {
                rid: rid.to_owned(),
                entry: entry.clone(),
            },
            JournalLine::Prune { before_seq, next } => LogRecord::Prune {
                rid: rid.to_owned(),
                before_seq: *before_seq,
                next: *next,
            },
        };
        self.log(record)
    }

    /// The number of the next log object, and the records to publish in it.
    pub fn log_pending(&self) -> Option<(u64, Vec<LogRecord>)> {
        let r = self.replica.as_ref()?;
        Some((r.next, r.outbox.clone()))
    }

    /// The first `count` records of the outbox are now log object `n`.
    pub fn log_published(&mut self, n: u64, count: usize) {
        if let Some(r) = &mut self.replica
            && r.next == n
        {
            r.outbox.drain(..count.min(r.outbox.len()));
            r.next = n + 1;
        }
    }

    /// The whole index as records, for a snapshot at log position `next` (what a sidecar that
    /// starts reads instead of the log before it): `None` outside a bucket, or with records not
    /// published yet (a snapshot states only what the log holds).
    pub fn log_snapshot(&self) -> Option<(u64, Vec<LogRecord>)> {
        let rep = self.replica.as_ref()?;
        if !rep.outbox.is_empty() {
            return None;
        }
        let mut out = Vec::new();
        for (input, docs) in rep.sources.iter().enumerate() {
            // The multivariant playlist (key `None`) sorts first.
            for doc in docs.values() {
                out.push(LogRecord::Source {
                    input,
                    doc: doc.clone(),
                });
            }
        }
        for (rid, r) in &self.renditions {
            if let Some(tail) = r.timeline.tail {
                out.push(LogRecord::Prune {
                    rid: rid.clone(),
                    before_seq: r.timeline.entries.front().map_or(tail.seq + 1, |e| e.seq),
                    next: tail,
                });
            }
            for e in &r.timeline.entries {
                out.push(LogRecord::Put {
                    rid: rid.clone(),
                    entry: Box::new(e.clone()),
                });
            }
        }
        if let Some(input) = self.active {
            out.push(LogRecord::Active { input });
        }
        Some((rep.next, out))
    }

    /// Starts reading the log at `n`, the position of a snapshot whose records follow.
    pub fn start_from_snapshot(&mut self, n: u64, records: Vec<LogRecord>) {
        let Some(rep) = &mut self.replica else {
            return;
        };
        if rep.next != 0 || rep.caught_up {
            return;
        }
        rep.next = n;
        self.apply_log(n, records);
        if let Some(rep) = &mut self.replica {
            rep.next = n;
        }
    }

    /// Media no retained entry needs any more, to delete from the bucket.
    pub fn take_deletes(&mut self) -> Vec<String> {
        self.replica
            .as_mut()
            .map(|r| std::mem::take(&mut r.deletes))
            .unwrap_or_default()
    }

    /// Queues the media of pruned copies that no retained entry of the channel uses.
    pub(super) fn delete_media(&mut self, gone: &[Entry]) {
        if !self.replica.as_ref().is_some_and(Replica::writer) {
            return;
        }
        let hashes = |e: &Entry| -> Vec<String> {
            e.copies
                .iter()
                .flatten()
                .flat_map(|c| [Some(c.etag.clone()), c.init.clone()])
                .flatten()
                .collect()
        };
        let candidates: HashSet<String> = gone.iter().flat_map(hashes).collect();
        let used: HashSet<String> = self
            .renditions
            .values()
            .flat_map(|r| r.timeline.entries.iter())
            .flat_map(hashes)
            .filter(|h| candidates.contains(h))
            .collect();
        if let Some(r) = &mut self.replica {
            r.deletes
                .extend(candidates.into_iter().filter(|h| !used.contains(h)));
        }
    }

    /// Applies log object `n`, written by another sidecar (or by this one before a restart).
    pub fn apply_log(&mut self, n: u64, records: Vec<LogRecord>) {
        let Some(r) = &self.replica else {
            return;
        };
        if r.next != n {
            return;
        }
        for record in records {
            match record {
                LogRecord::Put { rid, entry } => self.apply_put(rid, *entry),
                LogRecord::Prune {
                    rid,
                    before_seq,
                    next,
                } => {
                    if let Some(r) = self.renditions.get_mut(&rid) {
                        r.timeline.drop_before(before_seq, next);
                        r.cache = None;
                    }
                    if let Some(rep) = &mut self.replica {
                        rep.outbox.retain(|o| {
                            !matches!(o, LogRecord::Put { rid: r, entry } if *r == rid && entry.seq < before_seq)
                        });
                    }
                }
                LogRecord::Source { input, doc } => self.apply_source(input, doc),
                LogRecord::Active { input } if input < 2 => {
                    self.active = Some(input);
                    self.multivariant_cache = None;
                    if let Some(rep) = &mut self.replica {
                        rep.outbox
                            .retain(|o| !matches!(o, LogRecord::Active { .. }));
                    }
                }
                LogRecord::Active { .. } => {}
            }
        }
        if let Some(r) = &mut self.replica {
            r.next = n + 1;
        }
    }

    /// The log position this sidecar has read to.
    pub fn log_position(&self) -> Option<u64> {
        self.replica.as_ref().map(|r| r.next)
    }

    /// Takes another writer's entry; an unpublished entry of this one under the same number is
    /// rebased on it (this sidecar's copies added, the first pin kept).
    fn apply_put(&mut self, rid: String, mut entry: Entry) {
        let local = self.replica.as_ref().map_or([false; 2], |r| r.local);
        let before = self
            .renditions
            .get(&rid)
            .and_then(|r| r.timeline.get(entry.seq))
            .map(|e| e.copies.clone());
        if let Some(rep) = &mut self.replica {
            let mut rebased = false;
            for o in rep.outbox.iter_mut() {
                let LogRecord::Put {
                    rid: r,
                    entry: mine,
                } = o
                else {
                    continue;
                };
                if *r != rid || mine.seq != entry.seq {
                    continue;
                }
                if mine.msn == entry.msn {
                    for input in (0..2).filter(|i| local[*i]) {
                        if entry.copies[input].is_none() {
                            entry.copies[input] = mine.copies[input].clone();
                        }
                    }
                    if entry.served_from.is_none() {
                        entry.served_from = mine.served_from;
                    }
                } else {
                    tracing::warn!(channel = %self.cfg.id, rendition = rid, seq = entry.seq,
                        "the other ingest sidecar numbered this segment differently first; this sidecar's copy is dropped");
                }
                **mine = entry.clone();
                rebased = true;
            }
            if rebased {
                // Several rebased records for one number: the last one stays.
                let seq = entry.seq;
                let mut seen = false;
                for i in (0..rep.outbox.len()).rev() {
                    if matches!(&rep.outbox[i], LogRecord::Put { rid: r, entry: e } if *r == rid && e.seq == seq)
                    {
                        if seen {
                            rep.outbox.remove(i);
                        }
                        seen = true;
                    }
                }
            }
        }
        // The other input's new copies: it is publishing (for failover), as of when it arrived.
        for input in (0..2).filter(|i| !local[*i]) {
            let new = entry.copies[input].as_ref().filter(|_| {
                before
                    .as_ref()
                    .is_none_or(|b| b.get(input).is_none_or(Option::is_none))
            });
            if let Some(c) = new {
                let age =
                    Duration::from_millis(u64::try_from(now_ms() - c.received_ms).unwrap_or(0));
                let at = Instant::now().checked_sub(age).unwrap_or_else(Instant::now);
                let state = &mut self.inputs[input];
                if state.last_indexed.is_none_or(|t| t < at) {
                    state.last_indexed = Some(at);
                    state.last_indexed_ms = Some(c.received_ms);
                }
            }
        }
        let r = self.renditions.entry(rid).or_default();
        r.timeline.put(entry);
        r.cache = None;
        self.multivariant_cache = None;
    }

    /// Takes an input's source playlist: the other input's always (what the views are rendered
    /// with), this sidecar's own only while reading back at start-up.
    fn apply_source(&mut self, input: usize, doc: StoredDoc) {
        let Some(rep) = &mut self.replica else {
            return;
        };
        if input < 2 {
            rep.remember_source(input, &doc);
        }
        if input >= 2 || (rep.local[input] && rep.caught_up) {
            return;
        }
        match source_playlist::parse(doc.text.as_bytes()) {
            Ok(SourcePlaylist::Multivariant(m)) => {
                self.inputs[input].multivariant = Some((doc, m));
                self.multivariant_cache = None;
            }
            Ok(SourcePlaylist::Media(source)) => {
                let rid = rendition_id(&doc.path);
                let source = doc.numbered(source);
                let slot = self.inputs[input]
                    .renditions
                    .entry(rid.clone())
                    .or_insert_with(|| InputRendition {
                        source: source.clone(),
                        path: doc.path.clone(),
                        last_msn: None,
                        pending_since: Default::default(),
                        msn_offset: 0,
                        restart_msn: None,
                    });
                slot.source = source;
                slot.path = doc.path;
                slot.msn_offset = doc.msn_offset;
                slot.restart_msn = doc.restart_msn;
                self.renditions.entry(rid).or_default().cache = None;
                self.multivariant_cache = None;
            }
            Err(e) => tracing::warn!(channel = %self.cfg.id, input = input + 1, error = %e,
                "a source playlist in the bucket's log does not parse; skipped"),
        }
    }

    /// The log has been read to its end for the first time: where each of this sidecar's inputs
    /// was indexed to, which stored initialization segments its uploads became, and what is
    /// pending is indexed.
    pub fn log_caught_up(&mut self) -> io::Result<()> {
        let Some(rep) = &mut self.replica else {
            return Ok(());
        };
        if rep.caught_up {
            return Ok(());
        }
        rep.caught_up = true;
        let active = self.active;
        for input in 0..2 {
            for (rid, ir) in &mut self.inputs[input].renditions {
                ir.last_msn = self
                    .renditions
                    .get(rid)
                    .and_then(|r| r.timeline.last_msn_of(input));
            }
        }
        if active.is_none() {
            self.restore_active();
        } else {
            let keep = self.inputs.each_ref().map(|i| i.last_indexed_ms);
            self.restore_active();
            self.active = active;
            for (i, k) in keep.into_iter().enumerate() {
                if k.is_some() {
                    self.inputs[i].last_indexed_ms = k;
                }
            }
        }
        self.remember_inits();
        let now = Instant::now();
        for input in 0..2 {
            self.index_all(input, now)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    fn replicated(dir: &std::path::Path, local: [bool; 2]) -> ChannelState {
        ChannelState::open_replicated(channel(), dir, local).unwrap()
    }

    /// Publishes `st`'s outbox as the next object of `log` (as the bucket's conditional create
    /// would: only if that number is free), first applying what others wrote.
    fn sync(st: &mut ChannelState, log: &mut Vec<Vec<u8>>) {
        loop {
            while let Some(bytes) = log.get(st.replica.as_ref().unwrap().next as usize) {
                let n = st.replica.as_ref().unwrap().next;
                st.apply_log(n, decode(bytes).unwrap());
            }
            let (n, batch) = st.log_pending().unwrap();
            if batch.is_empty() {
                return;
            }
            if n as usize == log.len() {
                log.push(encode(&batch).unwrap());
                st.log_published(n, batch.len());
            }
        }
    }

    #[test]
    fn two_writers_and_an_edge_agree_through_the_log() {
        let (a_dir, b_dir, e_dir) = (
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
        );
        let mut a = replicated(a_dir.path(), [true, false]);
        let mut b = replicated(b_dir.path(), [false, true]);
        let mut edge = replicated(e_dir.path(), [false, false]);
        let mut log = Vec::new();
        for st in [&mut a, &mut b, &mut edge] {
            sync(st, &mut log);
            st.log_caught_up().unwrap();
        }
        // Both hosts index segments 0..3 before seeing each other's: the same numbers.
        for m in 0..3 {
            upload(&mut a, 0, &format!("s{m}.ts"));
            upload(&mut b, 1, &format!("s{m}.ts"));
        }
        a.accept_playlist(0, "hd.m3u8", playlist(0, 3).as_bytes())
            .unwrap();
        b.accept_playlist(1, "hd.m3u8", playlist(0, 3).as_bytes())
            .unwrap();
        sync(&mut a, &mut log);
        sync(&mut b, &mut log);
        sync(&mut a, &mut log);
        sync(&mut edge, &mut log);
        assert!(
            edge.log_pending().unwrap().1.is_empty(),
            "an edge never writes"
        );
        let timeline = |st: &ChannelState| st.renditions["hd"].timeline.entries.clone();
        let t = timeline(&edge);
        assert_eq!(t.len(), 3);
        assert!(
            t.iter().all(|e| e.copies.iter().all(Option::is_some)),
            "one entry per segment with both copies: {t:?}"
        );
        assert_eq!(timeline(&a), t);
        assert_eq!(timeline(&b), t);
        assert!(
            t.iter().all(|e| e.served_from == Some(0)),
            "input 1 published first"
        );
        assert_eq!(
            [a.active(), b.active(), edge.active()],
            [Some(0); 3],
            "one active input everywhere"
        );
        assert_eq!(uris(&mut edge), uris(&mut a));
        // B's view renders from A's multivariant-less input too: the edge has both inputs' sources.
        assert!(edge.inputs[0].renditions.contains_key("hd"));
        assert!(edge.inputs[1].renditions.contains_key("hd"));

        // A restarted from an empty disk reads its place back from the log.
        let a_dir2 = tempfile::tempdir().unwrap();
        let mut a2 = replicated(a_dir2.path(), [true, false]);
        sync(&mut a2, &mut log);
        a2.log_caught_up().unwrap();
        assert_eq!(timeline(&a2), t);
        assert_eq!(a2.inputs[0].renditions["hd"].last_msn, Some(2));
        assert!(a2.log_pending().unwrap().1.is_empty(), "nothing rewritten");
    }

    #[test]
    fn a_snapshot_restores_what_the_log_built() {
        let (a_dir, e_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let mut a = replicated(a_dir.path(), [true, false]);
        let mut log = Vec::new();
        sync(&mut a, &mut log);
        a.log_caught_up().unwrap();
        for m in 0..5 {
            upload(&mut a, 0, &format!("s{m}.ts"));
        }
        a.accept_playlist(0, "hd.m3u8", playlist(0, 5).as_bytes())
            .unwrap();
        assert_eq!(a.log_snapshot(), None, "not before the log holds it");
        sync(&mut a, &mut log);
        a.prune(i64::MAX).unwrap();
        upload(&mut a, 0, "s5.ts");
        a.accept_playlist(0, "hd.m3u8", playlist(1, 5).as_bytes())
            .unwrap();
        sync(&mut a, &mut log);
        let (n, records) = a.log_snapshot().unwrap();
        assert_eq!(n as usize, log.len());

        let mut edge = replicated(e_dir.path(), [false, false]);
        edge.start_from_snapshot(n, decode(&encode(&records).unwrap()).unwrap());
        sync(&mut edge, &mut log);
        edge.log_caught_up().unwrap();
        assert_eq!(edge.log_position(), Some(n));
        assert_eq!(edge.renditions["hd"].timeline, a.renditions["hd"].timeline);
        assert_eq!(edge.active(), a.active());
        assert_eq!(uris(&mut edge), uris(&mut a));
        assert_eq!(uris(&mut edge), ["5.ts"], "after the prune, numbering kept");
    }

    #[test]
    fn records_read_back_as_written_and_damage_is_refused() {
        let records = vec![
            LogRecord::Active { input: 1 },
            LogRecord::Prune {
                rid: "hd".into(),
                before_seq: 4,
                next: Tail {
                    seq: 4,
                    msn: 9,
                    disc_seq: 0,
                },
            },
        ];
        assert_eq!(decode(&encode(&records).unwrap()).unwrap(), records);
        assert!(decode(b"{\"op\":\"put\"}\n").is_err());
    }
}
