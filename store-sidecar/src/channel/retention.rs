//! What is kept: segments leave the index and the disk once they arrived before the startover
//! window; uploads that no playlist listed in time are deleted.

use std::fs;
use std::io;
use std::time::Duration;

use super::ChannelState;
use super::journal::JournalLine;
use super::timeline::Entry;
use crate::disk;

impl ChannelState {
    /// Removes segments that arrived before the startover window, from the index and the disk.
    pub fn prune(&mut self, now_ms: i64) -> io::Result<u64> {
        // An edge's window follows the writers' prunes in the log.
        if self.read_only() {
            return Ok(0);
        }
        let cutoff = now_ms - (self.cfg.startover_window_seconds as i64) * 1000;
        let rids: Vec<String> = self.renditions.keys().cloned().collect();
        let mut removed = 0;
        for rid in rids {
            removed += self.prune_rendition(&rid, cutoff)?;
        }
        Ok(removed)
    }

    fn prune_rendition(&mut self, rid: &str, cutoff: i64) -> io::Result<u64> {
        let Some(r) = self.renditions.get_mut(rid) else {
            return Ok(0);
        };
        let mut gone = Vec::new();
        while r
            .timeline
            .entries
            .front()
            .is_some_and(|e| e.received_ms < cutoff)
        {
            if let Some(e) = r.timeline.entries.pop_front() {
                gone.push(e);
            }
        }
        if gone.is_empty() {
            return Ok(0);
        }
        r.cache = None;
        let before_seq = r
            .timeline
            .entries
            .front()
            .map_or_else(|| gone.last().map_or(0, |e| e.seq + 1), |e| e.seq);
        let (next, lines, live) = (r.timeline.tail, r.journal_lines, r.timeline.entries.len());
        if let Some(next) = next {
            self.journal(rid, &JournalLine::Prune { before_seq, next })?;
        }
        for e in &gone {
            for (input, c) in e.copies.iter().enumerate() {
                if let Some(c) = c {
                    disk::remove_if_exists(&self.layout.segment(rid, e.seq, input, &c.ext))?;
                }
            }
        }
        self.prune_inits(rid, &gone)?;
        self.delete_media(&gone);
        if lines > 2 * live + 1024 {
            self.compact(rid)?;
        }
        Ok(gone.len() as u64)
    }

    /// Deletes the initialization segments of pruned entries that no retained entry needs.
    fn prune_inits(&mut self, rid: &str, gone: &[Entry]) -> io::Result<()> {
        let Some(r) = self.renditions.get(rid) else {
            return Ok(());
        };
        let used = |id: &str| {
            r.timeline
                .entries
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
            disk::remove_if_exists(&self.layout.init(rid, &id))?;
            for i in &mut self.inputs {
                i.inits.retain(|_, v| *v != id);
            }
        }
        Ok(())
    }

    /// Clears the channel's history (MediaPackage's `ResetChannelState`): every indexed segment
    /// leaves the index and the disk, uploads not indexed yet are deleted. Numbering is kept
    /// (journaled), so what the encoders send next continues after it with a discontinuity and
    /// no URL a viewer or a CDN may hold ever names other bytes. Each input's last playlist is
    /// kept too: an encoder that goes on is taken where it is. Returns the segments removed.
    pub fn reset(&mut self) -> io::Result<u64> {
        let rids: Vec<String> = self.renditions.keys().cloned().collect();
        let mut removed = 0;
        for rid in rids {
            removed += self.prune_rendition(&rid, i64::MAX)?;
        }
        for input in 0..2 {
            let dir = self.layout.incoming_dir(input);
            match fs::remove_dir_all(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            let state = &mut self.inputs[input];
            state.uploads.clear();
            state.inits.clear();
        }
        self.active = None;
        self.multivariant_cache = None;
        tracing::info!(channel = %self.cfg.id, removed, "channel reset: history cleared");
        Ok(removed)
    }

    /// Deletes uploads that no playlist listed within `max_age`.
    pub fn gc_uploads(&mut self, max_age: Duration) -> io::Result<u64> {
        let mut removed = 0;
        for input in 0..2 {
            let base = self.layout.incoming_dir(input);
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
}
