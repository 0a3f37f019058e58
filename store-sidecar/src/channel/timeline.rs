//! The timeline of one rendition and the merge of an input's playlist into it. Pure: no disk,
//! no clock; the caller (`indexing`) finds what is uploaded, asks [`merge_input`] what to do and
//! does the disk writes.
//!
//! Segments from both inputs are matched by the encoder's media sequence number (MSN); the two
//! encoders must be aligned, as MediaPackage requires. Each rendition has one timeline of entries
//! with the store's own, always contiguous sequence numbers (`seq`), which start at the first MSN
//! seen and then advance by one per new MSN. An MSN jump (an encoder restarted with
//! `-hls_start_number_source epoch`, or both encoders down past their sliding window) becomes a
//! discontinuity instead of a hole, so `MEDIA-SEQUENCE + index` is always the segment's `seq`.
//! An encoder that restarts from a lower MSN gets an offset for its input ([`restart_msn`]), so
//! MSNs along the timeline only grow.
//!
//! An entry enters the timeline only once its segment file is committed: a playlist that lists a
//! segment still uploading leaves that entry pending until the upload finishes, or until later
//! segments have been committed for longer than two target durations (a lost upload: skipped,
//! and the gap becomes a discontinuity).

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

use edgepack_store_api::cues::{self, Cue, CueEdge};
use edgepack_store_api::{MediaPlaylist, Segment, extrapolate_pdt_ms};
use serde::{Deserialize, Serialize};

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
    /// Program date time, epoch ms; in the journal as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    #[serde(rename = "pdt", with = "pdt_text")]
    pub pdt_ms: i64,
    pub pdt_from_encoder: bool,
    pub discontinuity: bool,
    pub disc_seq: u64,
    /// The source's tags before the segment, verbatim (cues, `EXT-X-DATERANGE`, …).
    #[serde(default)]
    pub tags: Vec<String>,
    /// The source's `EXT-X-KEY` line in effect for the segment, passed on in the store's view.
    /// (Entries journaled before this field have their key lines in `tags`.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_key: Option<String>,
    pub received_ms: i64,
    pub copies: [Option<SegmentCopy>; 2],
    /// The input whose copy is served, fixed when the active input's copy is in (or the first
    /// copy, before any input is active) and journaled: a failover or a restart never changes
    /// the bytes of a segment the store has served. `None`: the active input's copy, else the
    /// other's (entries journaled before this field, and copies from the standby input only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub served_from: Option<usize>,
}

impl Entry {
    /// The inputs in the order their copies are served from: the pinned one first, else
    /// `preferred` (the active input first).
    pub fn serving_order(&self, preferred: [usize; 2]) -> [usize; 2] {
        match self.served_from {
            Some(p) if p < 2 => [p, 1 - p],
            _ => preferred,
        }
    }
}

impl edgepack_store_api::window::Timed for Entry {
    fn pdt_ms(&self) -> Option<i64> {
        Some(self.pdt_ms)
    }
    fn duration(&self) -> f64 {
        self.duration
    }
}

/// `Entry::pdt_ms` in the journal: the text the store writes, read back with the contract's
/// parser (which also reads what chrono wrote in older journals).
mod pdt_text {
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    pub(super) fn serialize<S: Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&edgepack_store_api::format_pdt(*ms))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        edgepack_store_api::parse_pdt(&text)
            .ok_or_else(|| D::Error::custom(format!("'{text}' is not a program date time")))
    }
}

/// Where numbering continues after the last entry.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Tail {
    pub seq: u64,
    pub msn: u64,
    pub disc_seq: u64,
}

impl Tail {
    fn of(e: &Entry) -> Self {
        Self {
            seq: e.seq,
            msn: e.msn,
            disc_seq: e.disc_seq,
        }
    }
}

/// A rendition's retained entries, oldest first: `seq` contiguous, MSN increasing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Timeline {
    pub entries: VecDeque<Entry>,
    /// The last entry ever appended, kept when the window empties so numbering never goes back.
    pub tail: Option<Tail>,
    /// Sequence numbers of entries whose tags mark an ad break (an index: a view finds the break
    /// it starts inside of without a scan). May name entries no longer retained: check with `get`.
    pub cue_seqs: BTreeSet<u64>,
}

impl Timeline {
    /// Inserts an entry after the last one, or replaces the retained entry with its `seq`.
    pub fn put(&mut self, entry: Entry) {
        if entry.tags.iter().any(|t| cues::is_cue_tag(t)) {
            self.cue_seqs.insert(entry.seq);
        } else {
            self.cue_seqs.remove(&entry.seq);
        }
        let first = self.entries.front().map_or(0, |e| e.seq);
        match self.entries.back().map(|e| e.seq) {
            Some(last) if entry.seq <= last => {
                if let Some(slot) = entry
                    .seq
                    .checked_sub(first)
                    .and_then(|i| self.entries.get_mut(usize::try_from(i).ok()?))
                {
                    *slot = entry;
                }
            }
            _ => {
                self.tail = Some(Tail::of(&entry));
                self.entries.push_back(entry);
            }
        }
    }

    /// Drops the entries before `before_seq`; `next` keeps numbering going if none remain.
    pub fn drop_before(&mut self, before_seq: u64, next: Tail) {
        while self.entries.front().is_some_and(|e| e.seq < before_seq) {
            self.entries.pop_front();
        }
        self.cue_seqs = self.cue_seqs.split_off(&before_seq);
        if self.entries.is_empty() {
            self.tail = Some(next);
        }
    }

    /// The media sequence number of the newest entry with a copy from `input`.
    pub fn last_msn_of(&self, input: usize) -> Option<u64> {
        self.entries
            .iter()
            .rev()
            .find(|e| e.copies.get(input).is_some_and(Option::is_some))
            .map(|e| e.msn)
    }

    /// Sets the tail to the last retained entry (after entries were removed from the end).
    pub fn reset_tail(&mut self) {
        if let Some(last) = self.entries.back() {
            self.tail = Some(Tail::of(last));
        }
    }

    /// The ad break a segment starting at `seq` is inside of, if any: the break's start cue
    /// (its `start_ms` set to the start's program date time) when the last cue before `seq` is
    /// a start, or a continuation whose start is found, and its duration (if it has one) has not
    /// run out. Walks back over at most `MAX_CUE_WALK` cue entries.
    pub fn break_at(&self, seq: u64) -> Option<Cue> {
        const MAX_CUE_WALK: usize = 4096;
        let at_ms = self.get(seq)?.pdt_ms;
        for &s in self.cue_seqs.range(..seq).rev().take(MAX_CUE_WALK) {
            let Some(e) = self.get(s) else { continue };
            let Some(cue) = cues::from_tags(e.tags.iter().map(String::as_str)) else {
                continue;
            };
            match cue.edge {
                CueEdge::In => return None,
                CueEdge::Cont => continue,
                CueEdge::Out => {
                    let running = cue
                        .duration
                        .is_none_or(|d| e.pdt_ms + (d * 1000.0) as i64 > at_ms);
                    return running.then_some(Cue {
                        start_ms: Some(e.pdt_ms),
                        ..cue
                    });
                }
            }
        }
        None
    }

    /// The retained entry with this `seq`.
    pub fn get(&self, seq: u64) -> Option<&Entry> {
        let first = self.entries.front()?.seq;
        self.entries
            .get(usize::try_from(seq.checked_sub(first)?).ok()?)
    }

    fn get_mut(&mut self, seq: u64) -> Option<&mut Entry> {
        let first = self.entries.front()?.seq;
        self.entries
            .get_mut(usize::try_from(seq.checked_sub(first)?).ok()?)
    }

    /// Pins `seq` to the copy of `input` if it is not pinned yet (a viewer is served it) and
    /// returns the entry so pinned, to be journaled; `None` if it was pinned already.
    pub fn pin(&mut self, seq: u64, input: usize) -> Option<Entry> {
        let e = self.get_mut(seq)?;
        if e.served_from.is_some() {
            return None;
        }
        e.served_from = Some(input);
        Some(e.clone())
    }
}

/// Where `input`'s numbering continues after its encoder restarted from a lower media sequence
/// (ffmpeg's default `-start_number 0`): the MSN, in the timeline's numbering, that the restarted
/// playlist's first segment takes. The caller shifts the input's MSNs by the difference and marks
/// that segment a discontinuity.
///
/// With the encoder's program date time, the segment lines up with the entry of the same time
/// (the other input's copy: redundant encoders stay matched) or, past the timeline's end, with
/// the number that time would have; without it, numbering continues after both the timeline and
/// what the input listed before.
pub fn restart_msn(
    timeline: &Timeline,
    input: usize,
    before: &MediaPlaylist<'_>,
    restarted: &MediaPlaylist<'_>,
) -> u64 {
    let after_before = before
        .media_sequence
        .saturating_add(before.segments.len() as u64);
    let after_tail = timeline.tail.map_or(0, |t| t.msn.saturating_add(1));
    let next = after_before.max(after_tail);
    let target_ms = i64::try_from(restarted.target_duration.unwrap_or(1).max(1))
        .unwrap_or(i64::MAX)
        .saturating_mul(1000);
    let pdt = restarted
        .segments
        .first()
        .filter(|s| s.pdt_tagged)
        .and_then(|s| s.pdt_ms);
    let (Some(pdt), Some(last)) = (pdt, timeline.entries.back()) else {
        return next;
    };
    let near = |at: i64| pdt.saturating_sub(at).saturating_abs() <= target_ms / 2;
    // Entries are in time order: look back only as far as the restarted segment's time.
    let same_time = timeline
        .entries
        .iter()
        .rev()
        .take_while(|e| e.pdt_ms >= pdt.saturating_sub(target_ms))
        .find(|e| near(e.pdt_ms));
    if let Some(e) = same_time {
        if e.copies[input].is_none() && e.msn >= after_before {
            return e.msn;
        }
        return next;
    }
    let end = last
        .pdt_ms
        .saturating_add((last.duration * 1000.0).round() as i64);
    if pdt < end.saturating_sub(target_ms / 2) {
        return next;
    }
    // Segments missed between the timeline's end and the restarted one.
    let missed = (pdt - end).saturating_add(target_ms / 2) / target_ms;
    after_tail
        .saturating_add(u64::try_from(missed).unwrap_or(0))
        .max(next)
}

/// What one input last said about one rendition, and how far its playlist has been indexed.
#[derive(Debug)]
pub struct InputRendition {
    pub source: MediaPlaylist<'static>,
    /// Where the encoder uploaded that playlist (segment URIs are relative to it).
    pub path: String,
    /// The last MSN of this input that is done with: indexed, attached, or passed over.
    pub last_msn: Option<u64>,
    /// When each still pending MSN was first found not uploaded.
    pub pending_since: HashMap<u64, Instant>,
    /// Added to the encoder's media sequence numbers since it restarted its numbering
    /// ([`restart_msn`]); `source` is already in the timeline's numbering.
    pub msn_offset: u64,
    /// Where that restart is in the timeline's numbering (its segment is a discontinuity).
    pub restart_msn: Option<u64>,
}

impl InputRendition {
    /// Index into `source.segments` of the first segment not done with.
    pub fn first_pending(&self) -> usize {
        self.last_msn.map_or(0, |l| {
            usize::try_from((l + 1).saturating_sub(self.source.media_sequence))
                .unwrap_or(usize::MAX)
        })
    }

    /// Records how far a merge was applied: everything up to `last_msn` is done, and `waiting`
    /// (the segment the merge stopped at) is pending since `now` unless it already was.
    pub fn settle(&mut self, last_msn: Option<u64>, waiting: Option<u64>, now: Instant) {
        self.last_msn = last_msn;
        if let Some(msn) = waiting {
            self.pending_since.entry(msn).or_insert(now);
        }
        self.pending_since
            .retain(|m, _| last_msn.is_none_or(|l| *m > l));
    }
}

/// What the caller found for one pending segment of the playlist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upload {
    /// Its URI points outside the input: it can never be stored.
    Outside,
    /// Not (completely) uploaded yet: the file, or the initialization segment it needs.
    Missing,
    /// Uploaded and committed, with its initialization segment if it needs one.
    Committed,
}

/// What another rendition of the channel says of the date of a segment number, for a segment
/// its encoder did not date (ffmpeg's WebVTT: numbered as the video, undated).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SiblingDate {
    /// The encoder dated the segment with this number in another rendition.
    Dated(i64),
    /// A dated rendition has not reached this number yet: its segment is still uploading.
    Coming,
    /// No dated rendition has it, nor will.
    Unknown,
}

/// The times a merge may use.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// For grace periods.
    pub now: Instant,
    /// Wall clock, epoch ms: `received_ms` of new entries, and their date when the encoder
    /// sent none and none can be extrapolated.
    pub wall_ms: i64,
}

/// One decision of a merge, about the playlist's segment with this MSN.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Index of the segment in the playlist (`source.segments`).
    pub index: usize,
    pub msn: u64,
    pub action: Action,
}

/// What to do with one segment.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Its URI points outside the input: passed over.
    Outside,
    /// Listed but never uploaded while later segments were: passed over (a discontinuity).
    Lost,
    /// Not uploaded yet: stop here and wait; always the last step.
    Wait,
    /// This input already has a copy of that entry: delete the upload.
    Duplicate,
    /// Older than the live edge and not in the timeline (it left the window, or a hole the other
    /// input never filled): it cannot be inserted without renumbering, so delete the upload.
    TooOld,
    /// Add this input's copy to this existing entry (its other copy is the other input's).
    Attach(Box<Entry>),
    /// Append this new entry, with this input's copy, after the timeline's last.
    Append(Box<Entry>),
}

/// Decides how `input`'s playlist for a rendition extends `timeline`: one step per segment from
/// the first pending one, in order, up to a [`Action::Wait`] or the playlist's end.
///
/// `uploads[i]` is what the caller found for `ir.source.segments[ir.first_pending() + i]`. The
/// steps must be applied in order; a caller that stops early (an upload vanished) keeps a
/// consistent timeline, because each step only depends on the ones before it.
pub fn merge_input(
    timeline: &Timeline,
    input: usize,
    ir: &InputRendition,
    uploads: &[Upload],
    sibling_pdt_ms: &dyn Fn(u64) -> SiblingDate,
    clock: Clock,
) -> Vec<Step> {
    let source = &ir.source;
    let done = ir.first_pending().min(source.segments.len());
    let target_duration = source.target_duration.unwrap_or(1).max(1);
    let grace = Duration::from_secs_f64(2.0 * target_duration as f64);
    let mut disc_in_source = source.discontinuity_sequence
        + source.segments[..done]
            .iter()
            .filter(|s| s.discontinuity)
            .count() as u64;
    // Where the timeline ends as the steps so far leave it.
    let mut end = End {
        tail: timeline.tail,
        last: timeline.entries.back().map(|e| (e.pdt_ms, e.duration)),
    };
    let mut steps = Vec::new();
    for (i, seg) in source.segments[done..].iter().enumerate() {
        let index = done + i;
        let msn = source.media_sequence + index as u64;
        if seg.discontinuity {
            disc_in_source += 1;
        }
        let upload = uploads.get(i).copied().unwrap_or(Upload::Missing);
        let action = match upload {
            Upload::Outside => Action::Outside,
            Upload::Missing => {
                let since = ir.pending_since.get(&msn).copied().unwrap_or(clock.now);
                let later_committed = uploads.iter().skip(i + 1).any(|u| *u == Upload::Committed);
                if later_committed && clock.now.duration_since(since) > grace {
                    Action::Lost
                } else {
                    steps.push(Step {
                        index,
                        msn,
                        action: Action::Wait,
                    });
                    break;
                }
            }
            Upload::Committed => {
                // MSNs only grow along the timeline, so it is sorted by MSN too.
                match timeline.entries.binary_search_by_key(&msn, |e| e.msn) {
                    Ok(at) => {
                        let e = &timeline.entries[at];
                        if e.copies[input].is_some() {
                            Action::Duplicate
                        } else {
                            Action::Attach(Box::new(e.clone()))
                        }
                    }
                    Err(_) if end.tail.is_none_or(|t| msn > t.msn) => {
                        let sibling = if seg.pdt_tagged {
                            SiblingDate::Unknown
                        } else {
                            sibling_pdt_ms(msn)
                        };
                        let since = ir.pending_since.get(&msn).copied().unwrap_or(clock.now);
                        if sibling == SiblingDate::Coming
                            && clock.now.duration_since(since) <= grace
                        {
                            // The dated rendition's segment is still uploading: wait for its date.
                            steps.push(Step {
                                index,
                                msn,
                                action: Action::Wait,
                            });
                            break;
                        }
                        let date = match sibling {
                            SiblingDate::Dated(pdt_ms) => Some(pdt_ms),
                            _ => None,
                        };
                        let entry = end.append(msn, seg, disc_in_source, date, clock.wall_ms);
                        Action::Append(Box::new(entry))
                    }
                    Err(_) => Action::TooOld,
                }
            }
        };
        steps.push(Step { index, msn, action });
    }
    steps
}

/// The end of the timeline while a merge appends to it.
struct End {
    tail: Option<Tail>,
    /// Program date time (epoch ms) and duration of the last retained entry.
    last: Option<(i64, f64)>,
}

impl End {
    /// The entry that the segment with `msn` becomes after the current end (no copies yet).
    fn append(
        &mut self,
        msn: u64,
        seg: &Segment<'_>,
        disc_in_source: u64,
        sibling_pdt_ms: Option<i64>,
        wall_ms: i64,
    ) -> Entry {
        let (seq, discontinuity, disc_seq) = match self.tail {
            // The first entry ever: numbering starts at the encoder's.
            None => (msn, seg.discontinuity, disc_in_source),
            Some(t) => {
                let d = seg.discontinuity || msn != t.msn + 1;
                (t.seq + 1, d, t.disc_seq + u64::from(d))
            }
        };
        // The encoder's own date, else the date the encoder gave the segment with this MSN in
        // another rendition (ffmpeg dates no WebVTT segment, but numbers them as the video's),
        // else the one rule for a segment without one (across the timeline: the source playlist
        // may no longer list the segment before), else the clock.
        let own = seg.pdt_ms.filter(|_| seg.pdt_tagged);
        let pdt_ms = own
            .or(sibling_pdt_ms)
            .or_else(|| {
                let (pdt_ms, duration) = self.last?;
                extrapolate_pdt_ms(pdt_ms, duration, discontinuity)
            })
            .unwrap_or(wall_ms);
        let entry = Entry {
            seq,
            msn,
            duration: seg.duration,
            pdt_ms,
            pdt_from_encoder: own.is_some(),
            discontinuity,
            disc_seq,
            // Tags in edgepack's own namespace are the store's to write: an encoder's are dropped
            // (a forged `#EXT-X-EDGEPACK-CUE` would otherwise read as the store's cue).
            tags: seg
                .tags
                .iter()
                .filter(|t| !t.starts_with("#EXT-X-EDGEPACK-"))
                .map(|t| t.to_string())
                .collect(),
            source_key: seg.source_key.as_deref().map(str::to_owned),
            received_ms: wall_ms,
            copies: [None, None],
            served_from: None,
        };
        self.tail = Some(Tail::of(&entry));
        self.last = Some((entry.pdt_ms, entry.duration));
        entry
    }
}

#[cfg(test)]
mod tests {
    use super::super::ChannelState;
    use super::super::test_support::*;
    use super::*;

    /// Input 1 delivers 0..3, then input 2 delivers 1..5: 1 and 2 attach to existing entries, 3
    /// and 4 extend the timeline.
    fn inputs_one_then_two(dir: &std::path::Path) -> ChannelState {
        let mut st = ChannelState::open(channel(), dir).unwrap();
        for m in 0..3 {
            upload(&mut st, 0, &format!("s{m}.ts"));
        }
        st.accept_playlist(0, "hd.m3u8", playlist(0, 3).as_bytes())
            .unwrap();
        for m in 1..5 {
            upload(&mut st, 1, &format!("s{m}.ts"));
        }
        st.accept_playlist(1, "hd.m3u8", playlist(1, 4).as_bytes())
            .unwrap();
        st
    }

    #[test]
    fn both_inputs_share_one_timeline_and_fill_each_others_gaps() {
        let d = tempfile::tempdir().unwrap();
        let mut st = inputs_one_then_two(d.path());
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

    #[test]
    fn a_pin_made_when_serving_is_journaled_before_the_bytes_leave() {
        // Input 2's copy of 4 is served before the active input's copy exists; the store is
        // then killed (no graceful stop: the state is dropped), restarts, and input 1's copy
        // of 4 arrives. Segment 4 keeps the bytes the viewer got.
        let d = tempfile::tempdir().unwrap();
        let mut st = inputs_one_then_two(d.path());
        assert_eq!(st.segment("hd", 4, "ts").unwrap().input, 1);
        drop(st);

        let mut st = ChannelState::open(channel(), d.path()).unwrap();
        // Input 1 is active again (as after a failover back to it) when its copy arrives.
        st.active = Some(0);
        for m in 3..5 {
            upload(&mut st, 0, &format!("s{m}.ts"));
        }
        st.accept_playlist(0, "hd.m3u8", playlist(0, 5).as_bytes())
            .unwrap();
        let served = st.segment("hd", 4, "ts").unwrap();
        assert_eq!(served.input, 1, "the copy served before the kill");
        assert!(
            st.renditions["hd"].timeline.get(4).unwrap().copies[0].is_some(),
            "the active input's copy did arrive"
        );
    }

    #[test]
    fn an_undated_rendition_takes_the_dates_of_the_segments_numbered_alike() {
        // ffmpeg dates its video segments but not its WebVTT ones, which it numbers alike.
        let d = tempfile::tempdir().unwrap();
        let mut st = ChannelState::open(channel(), d.path()).unwrap();
        let dated = |first: u64, count: u64| {
            let segments: String = (first..first + count)
                .map(|m| {
                    format!(
                        "#EXT-X-PROGRAM-DATE-TIME:2026-11-28T10:00:{:02}.500Z\n#EXTINF:2.0,\ns{m}.ts\n",
                        2 * m
                    )
                })
                .collect();
            format!("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:{first}\n{segments}")
        };
        let undated = |first: u64, count: u64| playlist(first, count).replace(".ts", ".vtt");
        let dates = |st: &ChannelState, r: &str| -> Vec<i64> {
            st.renditions[r]
                .timeline
                .entries
                .iter()
                .map(|e| e.pdt_ms)
                .collect()
        };
        // The subtitles' first playlist comes before the video segment it needs is committed
        // (ffmpeg PUTs the video playlist, then the segment, then POSTs the WebVTT playlist): it
        // waits for the video's date.
        upload(&mut st, 0, "s5.vtt");
        // Under load the subtitles' playlist may even come before the video's first one: a
        // WebVTT rendition never comes alone, so it waits for its dated sibling to appear.
        st.accept_playlist(0, "subs.m3u8", undated(5, 1).as_bytes())
            .unwrap();
        assert!(
            st.renditions
                .get("subs")
                .is_none_or(|r| r.timeline.entries.is_empty()),
            "waiting for the video's playlist"
        );
        st.accept_playlist(0, "hd.m3u8", dated(5, 1).as_bytes())
            .unwrap();
        st.accept_playlist(0, "subs.m3u8", undated(5, 1).as_bytes())
            .unwrap();
        assert!(
            st.renditions
                .get("subs")
                .is_none_or(|r| r.timeline.entries.is_empty()),
            "waiting for s5.ts"
        );
        for m in 5..8 {
            upload(&mut st, 0, &format!("s{m}.ts"));
            upload(&mut st, 0, &format!("s{m}.vtt"));
        }
        st.accept_playlist(0, "hd.m3u8", dated(5, 3).as_bytes())
            .unwrap();
        st.accept_playlist(0, "subs.m3u8", undated(5, 3).as_bytes())
            .unwrap();
        let t0 = dates(&st, "hd")[0];
        assert_eq!(t0 % 60_000, 10_500);
        assert_eq!(dates(&st, "subs"), dates(&st, "hd"));
        assert!(!st.renditions["subs"].timeline.entries[0].pdt_from_encoder);
        // A subtitle segment whose video segment never comes: after the grace period, the
        // previous one's date and duration.
        upload(&mut st, 0, "s8.vtt");
        st.accept_playlist(0, "subs.m3u8", undated(6, 3).as_bytes())
            .unwrap();
        assert_eq!(dates(&st, "subs").len(), 3, "waiting for s8.ts");
        st.tick(Instant::now() + Duration::from_secs(5)).unwrap();
        assert_eq!(dates(&st, "subs")[3], t0 + 6_000);
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

    /// The merge alone, over a playlist and uploads made up here: no disk.
    mod model {
        use std::collections::{HashSet, VecDeque};

        use proptest::prelude::*;

        use super::super::*;

        /// How many segments an encoder's sliding playlist lists.
        const WINDOW: usize = 5;
        const SEGMENT: Duration = Duration::from_secs(2);

        #[derive(Debug, Clone, Copy)]
        enum Fate {
            Uploaded,
            /// Uploaded after the playlist that lists it (at the encoder's next segment).
            Late,
            Lost,
        }

        #[derive(Debug, Clone)]
        enum Event {
            /// The input's encoder writes its next segment and a playlist that lists it.
            Segment {
                input: usize,
                fate: Fate,
                discontinuity: bool,
            },
            /// The input's encoder restarts, its numbering moved by `jump` (backwards: the store
            /// refuses its playlists until they pass the last one it accepted).
            Restart { input: usize, jump: i64 },
            /// Time passes; the periodic re-merge of both inputs runs.
            Tick { secs: u64 },
        }

        fn event() -> impl Strategy<Value = Event> {
            let fate = prop_oneof![
                6 => Just(Fate::Uploaded),
                1 => Just(Fate::Late),
                1 => Just(Fate::Lost),
            ];
            prop_oneof![
                12 => (0..2usize, fate, proptest::bool::weighted(0.05)).prop_map(
                    |(input, fate, discontinuity)| Event::Segment { input, fate, discontinuity }
                ),
                1 => (0..2usize, -30i64..200).prop_map(|(input, jump)| Event::Restart { input, jump }),
                2 => (0..12u64).prop_map(|secs| Event::Tick { secs }),
            ]
        }

        /// One encoder, and what the store knows of its input.
        #[derive(Default)]
        struct Encoder {
            next: u64,
            /// The playlist's segments: contiguous MSNs and their discontinuity flags.
            window: VecDeque<(u64, bool)>,
            /// Discontinuities that left the window.
            disc_seq: u64,
            late: Vec<u64>,
            /// Uploads committed and not yet indexed or deleted (`incoming/`).
            uploaded: HashSet<u64>,
            ever_uploaded: HashSet<u64>,
            /// The store's view: the last accepted playlist and how far it is indexed.
            cursor: Option<InputRendition>,
        }

        impl Encoder {
            fn playlist(&self) -> Option<MediaPlaylist<'static>> {
                let (first, _) = *self.window.front()?;
                let mut playlist = MediaPlaylist {
                    version: Some(3),
                    target_duration: Some(2),
                    media_sequence: first,
                    discontinuity_sequence: self.disc_seq,
                    segments: self
                        .window
                        .iter()
                        .map(|&(msn, discontinuity)| Segment {
                            discontinuity,
                            ..Segment::new(format!("s{msn}.ts"), 2.0)
                        })
                        .collect(),
                    ..MediaPlaylist::default()
                };
                playlist.renumber();
                Some(playlist)
            }
        }

        struct Sim {
            timeline: Timeline,
            enc: [Encoder; 2],
            start: Instant,
            wall_ms: i64,
            now: Instant,
        }

        impl Sim {
            fn new(first_msn: u64) -> Self {
                let now = Instant::now();
                let mut enc: [Encoder; 2] = Default::default();
                for e in &mut enc {
                    e.next = first_msn;
                }
                Self {
                    timeline: Timeline::default(),
                    enc,
                    start: now,
                    wall_ms: crate::channel::now_ms(),
                    now,
                }
            }

            fn clock(&self) -> Clock {
                let elapsed = self.now.duration_since(self.start);
                Clock {
                    now: self.now,
                    wall_ms: self.wall_ms + elapsed.as_millis() as i64,
                }
            }

            fn upload(&mut self, input: usize, msn: u64) -> Result<(), TestCaseError> {
                self.enc[input].uploaded.insert(msn);
                self.enc[input].ever_uploaded.insert(msn);
                self.merge(input)
            }

            fn run(&mut self, event: &Event) -> Result<(), TestCaseError> {
                match *event {
                    Event::Segment {
                        input,
                        fate,
                        discontinuity,
                    } => {
                        for msn in std::mem::take(&mut self.enc[input].late) {
                            self.upload(input, msn)?;
                        }
                        let e = &mut self.enc[input];
                        let msn = e.next;
                        e.next += 1;
                        e.window.push_back((msn, discontinuity));
                        if e.window.len() > WINDOW && e.window.pop_front().is_some_and(|s| s.1) {
                            e.disc_seq += 1;
                        }
                        match fate {
                            Fate::Uploaded => self.upload(input, msn)?,
                            Fate::Late => self.enc[input].late.push(msn),
                            Fate::Lost => {}
                        }
                        self.accept(input)?;
                        self.now += SEGMENT;
                    }
                    Event::Restart { input, jump } => {
                        let e = &mut self.enc[input];
                        e.window.clear();
                        e.next = e.next.saturating_add_signed(jump);
                    }
                    Event::Tick { secs } => {
                        self.now += Duration::from_secs(secs);
                        self.merge(0)?;
                        self.merge(1)?;
                    }
                }
                Ok(())
            }

            /// As `accept_playlist`: a playlist whose numbering went back is refused.
            fn accept(&mut self, input: usize) -> Result<(), TestCaseError> {
                let e = &mut self.enc[input];
                let Some(source) = e.playlist() else {
                    return Ok(());
                };
                match &mut e.cursor {
                    Some(c) if source.media_sequence < c.source.media_sequence => return Ok(()),
                    Some(c) => c.source = source,
                    None => {
                        e.cursor = Some(InputRendition {
                            source,
                            path: "hd.m3u8".to_owned(),
                            last_msn: None,
                            pending_since: HashMap::new(),
                            msn_offset: 0,
                            restart_msn: None,
                        });
                    }
                }
                self.merge(input)
            }

            /// Runs the merge for `input` and applies it as `indexing` does, then checks the
            /// timeline against the one before.
            fn merge(&mut self, input: usize) -> Result<(), TestCaseError> {
                let clock = self.clock();
                let e = &mut self.enc[input];
                let Some(cursor) = &mut e.cursor else {
                    return Ok(());
                };
                let first = cursor.source.media_sequence;
                let uploads: Vec<Upload> = (first..)
                    .take(cursor.source.segments.len())
                    .skip(cursor.first_pending())
                    .map(|msn| {
                        if e.uploaded.contains(&msn) {
                            Upload::Committed
                        } else {
                            Upload::Missing
                        }
                    })
                    .collect();
                let before = self.timeline.clone();
                let before_msn = cursor.last_msn;
                let steps = merge_input(
                    &self.timeline,
                    input,
                    cursor,
                    &uploads,
                    &|_| SiblingDate::Unknown,
                    clock,
                );
                let mut last_msn = cursor.last_msn;
                let mut waiting = None;
                let mut consumed = Vec::new();
                for step in steps {
                    prop_assert_eq!(step.msn, first + step.index as u64);
                    match step.action {
                        Action::Wait => {
                            waiting = Some(step.msn);
                            break;
                        }
                        Action::Outside | Action::Lost => {}
                        Action::Duplicate | Action::TooOld => {
                            e.uploaded.remove(&step.msn);
                            consumed.push(step.msn);
                        }
                        Action::Attach(mut entry) | Action::Append(mut entry) => {
                            prop_assert_eq!(entry.msn, step.msn);
                            prop_assert!(entry.copies[input].is_none());
                            e.uploaded.remove(&step.msn);
                            consumed.push(step.msn);
                            entry.copies[input] = Some(copy(step.msn, clock));
                            self.timeline.put(*entry);
                        }
                    }
                    last_msn = Some(step.msn);
                }
                cursor.settle(last_msn, waiting, clock.now);
                prop_assert!(
                    cursor.last_msn >= before_msn,
                    "an input's progress went back"
                );
                // The inputs fill each other's gaps: an upload for an entry becomes its copy.
                let entries = &self.timeline.entries;
                for msn in consumed {
                    if let Ok(i) = entries.binary_search_by_key(&msn, |e| e.msn) {
                        prop_assert!(
                            entries[i].copies[input].is_some(),
                            "input {}'s upload of MSN {} is not a copy of its entry",
                            input + 1,
                            msn
                        );
                    }
                }
                check(&before, &self.timeline, &self.enc)
            }

            /// Lands what is late, then lets time pass until every wait is over.
            fn flush(&mut self) -> Result<(), TestCaseError> {
                for input in 0..2 {
                    for msn in std::mem::take(&mut self.enc[input].late) {
                        self.upload(input, msn)?;
                    }
                }
                for _ in 0..WINDOW + 2 {
                    self.now += Duration::from_secs(100);
                    self.merge(0)?;
                    self.merge(1)?;
                }
                Ok(())
            }
        }

        fn copy(msn: u64, clock: Clock) -> SegmentCopy {
            SegmentCopy {
                ext: "ts".to_owned(),
                size: 1,
                etag: "e".to_owned(),
                src: format!("s{msn}.ts"),
                received_ms: clock.wall_ms,
                init: None,
                init_src: None,
            }
        }

        /// The rules: no hole, no number going back, a discontinuity wherever the encoder's
        /// numbering jumps, entries only gain copies, and only of what was uploaded.
        fn check(
            before: &Timeline,
            after: &Timeline,
            enc: &[Encoder; 2],
        ) -> Result<(), TestCaseError> {
            let entries = &after.entries;
            for (a, b) in entries.iter().zip(entries.iter().skip(1)) {
                prop_assert_eq!(b.seq, a.seq + 1, "a hole in the store's numbering");
                prop_assert!(b.msn > a.msn, "MSN went back: {} then {}", a.msn, b.msn);
                if b.msn != a.msn + 1 {
                    prop_assert!(
                        b.discontinuity,
                        "MSN {} to {} without a discontinuity",
                        a.msn,
                        b.msn
                    );
                }
                prop_assert_eq!(b.disc_seq, a.disc_seq + u64::from(b.discontinuity));
            }
            if let Some(first) = entries.front() {
                prop_assert_eq!(
                    first.seq,
                    first.msn,
                    "numbering starts at the first MSN seen"
                );
            }
            prop_assert_eq!(after.tail, entries.back().map(Tail::of));
            prop_assert!(
                after.tail.map(|t| t.seq) >= before.tail.map(|t| t.seq),
                "the numbering went back"
            );
            prop_assert!(entries.len() >= before.entries.len());
            for (old, new) in before.entries.iter().zip(entries) {
                prop_assert_eq!(
                    (
                        old.seq,
                        old.msn,
                        old.pdt_ms,
                        old.discontinuity,
                        old.disc_seq
                    ),
                    (
                        new.seq,
                        new.msn,
                        new.pdt_ms,
                        new.discontinuity,
                        new.disc_seq
                    ),
                    "a published entry changed"
                );
                for input in 0..2 {
                    if old.copies[input].is_some() {
                        prop_assert_eq!(&old.copies[input], &new.copies[input]);
                    }
                }
            }
            for e in entries {
                prop_assert!(
                    e.copies.iter().any(Option::is_some),
                    "entry {} has no copy",
                    e.seq
                );
                for (input, c) in e.copies.iter().enumerate() {
                    if c.is_some() {
                        prop_assert!(enc[input].ever_uploaded.contains(&e.msn));
                    }
                }
            }
            Ok(())
        }

        proptest! {
            #[test]
            fn two_inputs_with_gaps_and_restarts_never_leave_a_hole(
                first_msn in 0u64..1000,
                events in proptest::collection::vec(event(), 1..150),
            ) {
                let mut sim = Sim::new(first_msn);
                for e in &events {
                    sim.run(e)?;
                }
                sim.flush()?;
                // Nothing uploaded and listed waits forever.
                for e in &sim.enc {
                    let Some(c) = &e.cursor else { continue };
                    for (i, _) in c.source.segments.iter().enumerate() {
                        let msn = c.source.media_sequence + i as u64;
                        prop_assert!(
                            c.last_msn.is_some_and(|l| msn <= l) || !e.uploaded.contains(&msn),
                            "uploaded segment {} still pending", msn
                        );
                    }
                }
            }
        }
    }
}
