//! Finding what to serve: a segment by sequence number or program date time, an
//! initialization segment by id; the active input's copy first.

use std::path::PathBuf;

use edgepack_store_api::duration_ms;

use super::ChannelState;
use super::journal::JournalLine;
use super::timeline::SegmentCopy;

/// A segment to serve.
#[derive(Debug)]
pub struct SegmentFile {
    pub seq: u64,
    pub path: PathBuf,
    pub copy: SegmentCopy,
    pub input: usize,
    /// Program date time, epoch ms.
    pub pdt_ms: i64,
    pub duration: f64,
}

impl ChannelState {
    /// Finds a segment to serve: the copy it is pinned to, else the active input's, else the
    /// other's — and pins it to that copy, journaled before the bytes leave, so a viewer never
    /// gets other bytes for it later, across failovers, restarts and `kill -9`. (Pinning here
    /// is rare: the active input's copy is pinned when it is indexed.) A pin the journal cannot
    /// take (disk full) still holds until the store restarts; the segment is served.
    pub fn segment(&mut self, rid: &str, seq: u64, ext: &str) -> Option<SegmentFile> {
        let found = self.find_segment(rid, seq, ext)?;
        let pinned = self
            .renditions
            .get_mut(rid)
            .and_then(|r| r.timeline.pin(seq, found.input));
        if let Some(entry) = pinned {
            let line = JournalLine::Put {
                entry: Box::new(entry),
            };
            if let Err(e) = self.journal(rid, &line) {
                tracing::warn!(rendition = rid, seq, error = %e, "could not journal a segment's pin");
            }
        }
        Some(found)
    }

    fn find_segment(&self, rid: &str, seq: u64, ext: &str) -> Option<SegmentFile> {
        let e = self.renditions.get(rid)?.timeline.get(seq)?;
        e.serving_order(self.preferred_inputs())
            .into_iter()
            .find_map(|input| {
                let copy = e.copies[input].as_ref()?;
                // `media` asks for the segment whatever its container (WebVTT included).
                let any = ext == edgepack_store_api::api::ANY_EXT;
                (any || copy.ext == ext).then(|| SegmentFile {
                    seq,
                    path: self.layout.segment(rid, seq, input, &copy.ext),
                    copy: copy.clone(),
                    input,
                    pdt_ms: e.pdt_ms,
                    duration: e.duration,
                })
            })
    }

    /// The sequence number of the segment of `rid` that starts at `pdt_ms` (epoch ms), within
    /// a quarter of its duration (renditions of one encoder share program date times; this
    /// forgives the rounding of one that the store dated itself).
    pub fn sequence_at(&self, rid: &str, pdt_ms: i64) -> Option<u64> {
        let entries = &self.renditions.get(rid)?.timeline.entries;
        // Program date times never decrease along a rendition's entries.
        let i = entries.partition_point(|e| e.pdt_ms < pdt_ms);
        [i.checked_sub(1), Some(i)]
            .into_iter()
            .flatten()
            .filter_map(|i| entries.get(i))
            .map(|e| (e, e.pdt_ms.abs_diff(pdt_ms)))
            .filter(|(e, off)| off.saturating_mul(4) <= duration_ms(e.duration).unsigned_abs())
            .min_by_key(|(_, off)| *off)
            .map(|(e, _)| e.seq)
    }

    /// A stored initialization segment by id.
    pub fn init(&self, rid: &str, id: &str) -> Option<PathBuf> {
        let ok = !id.is_empty() && id.bytes().all(|b| b.is_ascii_hexdigit());
        let path = self.layout.init(rid, id);
        // In a bucket the file may be there only (read by content hash).
        let stored = self.replica.is_some() || path.is_file();
        (ok && self.renditions.contains_key(rid) && stored).then_some(path)
    }

    /// The id of the initialization segment of the newest segment, as served now.
    pub fn latest_init(&self, rid: &str) -> Option<String> {
        let e = self.renditions.get(rid)?.timeline.entries.back()?;
        e.serving_order(self.preferred_inputs())
            .into_iter()
            .find_map(|i| e.copies[i].as_ref())
            .and_then(|c| c.init.clone())
    }

    /// True when the rendition exists.
    pub fn has_rendition(&self, rid: &str) -> bool {
        self.renditions.contains_key(rid)
    }

    /// Number of segments currently retained, all renditions.
    pub fn retained_segments(&self) -> u64 {
        self.renditions
            .values()
            .map(|r| r.timeline.entries.len() as u64)
            .sum()
    }
}
