//! The I/O half of the timeline merge: finds which of a playlist's segments are uploaded, asks
//! [`timeline::merge_input`] what to do with them, and does it on disk (journal first, then the
//! file, so a crash in between is repaired at start-up from the copy's `src`).

use std::time::Instant;

use super::ingest::hash_file;
use super::journal::JournalLine;
use super::timeline::{
    self, Action, Clock, Entry, InputRendition, SegmentCopy, SiblingDate, Step, Timeline, Upload,
};
use super::{ChannelState, now_ms};
use edgepack_store_api::{cues, scte35, scte35_ts};

use crate::disk;
use crate::ingest_path::resolve_segment_uri;
use crate::media_kind::{self, MediaKind};

/// How much of a TS segment is read to find its PAT and PMT (a few packets; 64 of them).
const HEAD_BYTES: u64 = 64 * 188;

/// What applying one step did.
enum Applied {
    /// Done with that segment without indexing it (passed over, or its upload deleted).
    Passed,
    /// Its copy entered the timeline.
    Indexed,
    /// Not uploaded yet: the merge stops here until it is.
    Waiting,
    /// Its initialization segment was removed since it was found: the next upload retries.
    Retry,
}

/// Where one pending segment of a playlist was uploaded, inside its input.
struct Located {
    /// The segment file; `None` when its URI points outside the input.
    file: Option<String>,
    /// fMP4: its initialization segment (`None` also when the map points outside the input).
    map: Option<String>,
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

/// What the input's other renditions say of the date of segment `msn` of `rid` (see
/// [`SiblingDate`]): every rendition's segment with one number covers the same time, and windows
/// and time shifts select by date. A rendition counts as dated when its encoder dates segments of
/// its latest playlist.
fn sibling_date(st: &ChannelState, input: usize, rid: &str, msn: u64) -> SiblingDate {
    // A WebVTT rendition never comes alone: until the input's dated video rendition has been
    // seen (its playlist may arrive after the subtitles' under load), its date is coming.
    let subtitles = st.inputs[input]
        .renditions
        .get(rid)
        .is_some_and(|ir| ir.source.segments.iter().any(|s| s.ext() == "vtt"));
    let mut coming = false;
    let mut seen = false;
    let dated = st.inputs[input]
        .renditions
        .iter()
        .filter(|(r, ir)| r.as_str() != rid && ir.source.segments.iter().any(|s| s.pdt_tagged));
    for (r, _) in dated {
        seen = true;
        let Some(timeline) = st.renditions.get(r).map(|r| &r.timeline) else {
            coming = true;
            continue;
        };
        let entries = &timeline.entries;
        if let Ok(i) = entries.binary_search_by_key(&msn, |e| e.msn)
            && entries[i].pdt_from_encoder
        {
            return SiblingDate::Dated(entries[i].pdt_ms);
        }
        coming |= timeline.tail.is_none_or(|t| t.msn < msn);
    }
    if coming || (subtitles && !seen) {
        SiblingDate::Coming
    } else {
        SiblingDate::Unknown
    }
}

impl ChannelState {
    /// Indexes every rendition of `input`. Returns how many segments entered a timeline.
    pub(super) fn index_all(&mut self, input: usize, now: Instant) -> std::io::Result<u64> {
        let rids: Vec<String> = self.inputs[input].renditions.keys().cloned().collect();
        let mut indexed = 0;
        for rid in rids {
            indexed += self.index_input(input, &rid, now)?;
        }
        Ok(indexed)
    }

    /// Indexes the committed entries of `input`'s latest playlist for `rid`. Returns how many
    /// segments entered the timeline.
    pub(super) fn index_input(
        &mut self,
        input: usize,
        rid: &str,
        now: Instant,
    ) -> std::io::Result<u64> {
        let Some(ir) = self.inputs[input].renditions.get(rid) else {
            return Ok(0);
        };
        // The other input's host indexes its segments (this one learns them from the log).
        if !self.is_local(input) {
            return Ok(0);
        }
        // Entries up to `last_msn` are done; only the rest (usually none: this runs on every
        // upload and every tick) is resolved and looked up on disk.
        let done = ir.first_pending();
        if done >= ir.source.segments.len() {
            return Ok(0);
        }
        let (located, uploads, refused) = self.locate_pending(input, ir, done);
        for file in refused {
            tracing::warn!(channel = %self.cfg.id, input = input + 1, rendition = rid, file,
                "upload is not MPEG-TS, fMP4, WebVTT or packed audio, and its playlist entry has no EXT-X-KEY; deleted, the segment counts as never uploaded");
            disk::remove_if_exists(&self.layout.incoming(input, &file))?;
            self.inputs[input].uploads.remove(&file);
        }
        let Some(ir) = self.inputs[input].renditions.get(rid) else {
            return Ok(0);
        };
        let clock = Clock {
            now,
            wall_ms: now_ms(),
        };
        let empty = Timeline::default();
        let timeline = self.renditions.get(rid).map_or(&empty, |r| &r.timeline);
        let steps = timeline::merge_input(
            timeline,
            input,
            ir,
            &uploads,
            &|msn| sibling_date(self, input, rid, msn),
            clock,
        );
        let mut last_msn = ir.last_msn;
        let mut waiting = None;
        let mut indexed = 0;
        for step in steps {
            let Some(Located { file, map }) =
                step.index.checked_sub(done).and_then(|i| located.get(i))
            else {
                break;
            };
            match self.apply(input, rid, &step, file.as_deref(), map.as_deref(), clock)? {
                Applied::Passed => {}
                Applied::Indexed => indexed += 1,
                Applied::Waiting => {
                    waiting = Some(step.msn);
                    break;
                }
                Applied::Retry => break,
            }
            last_msn = Some(step.msn);
        }
        if let Some(ir) = self.inputs[input].renditions.get_mut(rid) {
            ir.settle(last_msn, waiting, now);
        }
        if indexed > 0 {
            let state = &mut self.inputs[input];
            state.last_indexed = Some(now);
            state.last_indexed_ms = Some(clock.wall_ms);
            if self.active.is_none() {
                self.active = Some(input);
                self.log(super::LogRecord::Active { input });
            }
            self.multivariant_cache = None;
        }
        Ok(indexed)
    }

    /// Resolves the pending segments of `input`'s playlist `ir` (from index `done`) to
    /// files inside the input, and finds which are uploaded. Also returns the uploads to refuse:
    /// unrecognised bytes where the playlist says the segment is clear (they count as missing).
    fn locate_pending(
        &self,
        input: usize,
        ir: &InputRendition,
        done: usize,
    ) -> (Vec<Located>, Vec<Upload>, Vec<String>) {
        let resolve = |uri: &str| resolve_segment_uri(&ir.path, uri, &self.cfg.id, input);
        let located: Vec<Located> = ir.source.segments[done..]
            .iter()
            .map(|s| Located {
                file: resolve(&s.uri),
                // fMP4: the initialization segment each one needs (a map outside the input: none).
                map: s.map.as_deref().and_then(resolve),
            })
            .collect();
        let mut refused = Vec::new();
        let uploads = located
            .iter()
            .zip(&ir.source.segments[done..])
            .map(|(l, segment)| {
                let Some(file) = &l.file else {
                    return Upload::Outside;
                };
                let map_ready = l.map.as_ref().is_none_or(|m| {
                    self.inputs[input].inits.contains_key(m)
                        || self.layout.incoming(input, m).is_file()
                });
                let incoming = self.layout.incoming(input, file);
                if !(map_ready && incoming.is_file()) {
                    return Upload::Missing;
                }
                if segment.source_key.is_none() {
                    // Known since the upload, or (after a restart) read again from the file.
                    let kind = match self.inputs[input].uploads.get(file) {
                        Some(u) => u.kind,
                        None => {
                            media_kind::sniff_file(&incoming).map_or(MediaKind::MpegTs, |k| k.0)
                        }
                    };
                    if kind == MediaKind::Unrecognised {
                        refused.push(file.clone());
                        return Upload::Missing;
                    }
                }
                Upload::Committed
            })
            .collect();
        (located, uploads, refused)
    }

    /// The SCTE-35 cues an MPEG-TS segment carries on its stream-type-0x86 PIDs, as
    /// `EXT-X-SCTE35` tags (the store reads them as it reads the encoder's tags). A section whose
    /// CRC or syntax is wrong is skipped with a warning.
    fn ts_cues(
        &self,
        input: usize,
        rid: &str,
        file: &std::path::Path,
        msn: u64,
    ) -> std::io::Result<Vec<String>> {
        use std::io::Read as _;
        // Most channels carry no SCTE-35 stream: the segment's PAT and PMT (its first packets)
        // say so without reading the rest.
        let mut f = std::fs::File::open(file)?;
        let mut bytes = Vec::new();
        f.by_ref().take(HEAD_BYTES).read_to_end(&mut bytes)?;
        if scte35_ts::scte35_pids(&bytes).is_empty() {
            return Ok(Vec::new());
        }
        f.read_to_end(&mut bytes)?;
        let mut tags = Vec::new();
        for section in scte35_ts::sections(&bytes) {
            match scte35::parse(&section) {
                Ok(_) => tags.push(format!(
                    "#EXT-X-SCTE35:CUE=\"{}\"",
                    scte35::to_base64(&section)
                )),
                Err(e) => tracing::warn!(channel = %self.cfg.id, input = input + 1,
                    rendition = rid, msn, error = %e,
                    "a SCTE-35 section in the segment's MPEG-TS is malformed; skipped"),
            }
        }
        Ok(tags)
    }

    /// Does one step of a merge: for a new copy, stores it (journal first, then the file: a
    /// crash in between is repaired at start-up from `src`).
    fn apply(
        &mut self,
        input: usize,
        rid: &str,
        step: &Step,
        file: Option<&str>,
        map: Option<&str>,
        clock: Clock,
    ) -> std::io::Result<Applied> {
        let entry = match &step.action {
            Action::Wait => return Ok(Applied::Waiting),
            Action::Outside => return Ok(Applied::Passed),
            Action::Lost => {
                tracing::warn!(channel = %self.cfg.id, input = input + 1, rendition = rid,
                    msn = step.msn, "segment listed but never uploaded; skipped");
                return Ok(Applied::Passed);
            }
            Action::Duplicate | Action::TooOld => {
                if let Some(f) = file {
                    disk::remove_if_exists(&self.layout.incoming(input, f))?;
                }
                return Ok(Applied::Passed);
            }
            Action::Attach(e) | Action::Append(e) => e,
        };
        // The merge attaches or appends only committed uploads, which have a file.
        let Some(file) = file else {
            return Ok(Applied::Passed);
        };
        let incoming = self.layout.incoming(input, file);
        let (size, etag) = match self.inputs[input].uploads.get(file) {
            Some(info) => (info.size, info.etag.clone()),
            None => hash_file(&incoming)?,
        };
        let init = match map {
            Some(m) => match self.store_init(input, rid, m)? {
                Some(id) => Some(id),
                None => return Ok(Applied::Retry),
            },
            None => None,
        };
        let copy = SegmentCopy {
            ext: segment_ext(file),
            size,
            etag,
            src: file.to_owned(),
            received_ms: clock.wall_ms,
            init,
            init_src: map.map(str::to_owned),
        };
        let mut entry: Entry = (**entry).clone();
        // Cues the encoder carried in the segment's SCTE-35 stream instead of playlist tags.
        if matches!(step.action, Action::Append(_))
            && copy.ext == "ts"
            && entry.source_key.is_none()
            && !entry.tags.iter().any(|t| cues::is_cue_tag(t))
        {
            entry
                .tags
                .extend(self.ts_cues(input, rid, &incoming, step.msn)?);
        }
        let target = self.layout.segment(rid, entry.seq, input, &copy.ext);
        entry.copies[input] = Some(copy);
        // Pinned to the active input's copy once it is in (unless a viewer was served the other
        // copy before: `segment` pinned that one). The pin is journaled with the entry, so what
        // was served never changes bytes, across failovers and restarts.
        if entry.served_from.is_none() && self.active.is_none_or(|a| a == input) {
            entry.served_from = Some(input);
        }
        self.renditions.entry(rid.to_owned()).or_default();
        self.journal(
            rid,
            &JournalLine::Put {
                entry: Box::new(entry.clone()),
            },
        )?;
        disk::rename_into(&incoming, &target)?;
        self.inputs[input].uploads.remove(file);
        let r = self.renditions.entry(rid.to_owned()).or_default();
        r.timeline.put(entry);
        r.cache = None;
        Ok(Applied::Indexed)
    }
}
