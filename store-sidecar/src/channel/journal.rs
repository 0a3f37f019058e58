//! The index on disk: one `journal.jsonl` per rendition, one JSON record per line, fsynced on
//! every append; replayed at start-up (repairing what a crash cut short) and compacted when
//! pruning has made it mostly history.

use std::fs;
use std::io::{self, BufRead};

use serde::{Deserialize, Serialize};

use super::layout::Layout;
use super::timeline::{Entry, Tail, Timeline};
use super::{ChannelState, Rendition};
use crate::disk;

#[derive(Debug, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(super) enum JournalLine {
    /// Insert or replace the entry with this `seq`.
    Put { entry: Box<Entry> },
    /// Entries before `before_seq` left the window; `next` keeps numbering going if none remain.
    Prune { before_seq: u64, next: Tail },
}

/// A [`JournalLine`] as read back: every record kind's fields, flat. Serde reads a struct in one
/// pass, where an internally tagged enum first buffers each line into a tree of its own (which
/// made replaying a 14-day journal several times slower).
#[derive(Deserialize)]
struct ReadLine {
    op: Op,
    entry: Option<Box<Entry>>,
    before_seq: Option<u64>,
    next: Option<Tail>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Op {
    Put,
    Prune,
}

impl ReadLine {
    /// The record, if the line has the fields its kind needs.
    fn record(self) -> Option<JournalLine> {
        match self.op {
            Op::Put => Some(JournalLine::Put { entry: self.entry? }),
            Op::Prune => Some(JournalLine::Prune {
                before_seq: self.before_seq?,
                next: self.next?,
            }),
        }
    }
}

/// A journal read back.
struct Replayed {
    timeline: Timeline,
    lines: usize,
    /// A line could not be read (torn by a crash mid-append): the journal needs rewriting.
    damaged: bool,
}

/// Reads a journal line by line (a 14-day journal is ~200 MB: never held whole).
fn replay(mut text: impl BufRead) -> io::Result<Replayed> {
    let mut out = Replayed {
        timeline: Timeline::default(),
        lines: 0,
        damaged: false,
    };
    let mut line = Vec::new();
    loop {
        line.clear();
        if text.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        let record = serde_json::from_slice::<ReadLine>(&line)
            .ok()
            .and_then(ReadLine::record);
        match record {
            Some(JournalLine::Put { entry }) => out.timeline.put(*entry),
            Some(JournalLine::Prune { before_seq, next }) => {
                out.timeline.drop_before(before_seq, next);
            }
            // A torn last line from a crash mid-append: that record never took effect.
            None => out.damaged = true,
        }
        out.lines += 1;
    }
    Ok(out)
}

impl ChannelState {
    /// Rebuilds every rendition's timeline from its journal.
    pub(super) fn replay_journals(&mut self) -> io::Result<()> {
        let Ok(listing) = fs::read_dir(self.layout.renditions_dir()) else {
            return Ok(());
        };
        let mut rids = Vec::new();
        for item in listing {
            if let Some(rid) = item?.file_name().to_str() {
                rids.push(rid.to_owned());
            }
        }
        // Renditions are independent until they are in `self`: read side by side (a 14-day
        // history is ~600,000 entries per rendition).
        let this = &*self;
        let read = std::thread::scope(|s| {
            let jobs: Vec<_> = rids
                .into_iter()
                .map(|rid| s.spawn(move || this.read_rendition(rid)))
                .collect();
            jobs.into_iter()
                .map(|j| {
                    j.join()
                        .unwrap_or_else(|_| Err(io::Error::other("reading a journal panicked")))
                })
                .collect::<io::Result<Vec<_>>>()
        })?;
        for (rid, replayed, repaired) in read.into_iter().flatten() {
            self.renditions.insert(
                rid.clone(),
                Rendition {
                    timeline: replayed.timeline,
                    journal_lines: replayed.lines,
                    cache: None,
                },
            );
            if replayed.damaged || repaired {
                self.compact(&rid)?;
            }
        }
        Ok(())
    }

    /// One rendition's journal replayed and its copies recovered (true: repaired); `None`
    /// without a journal.
    fn read_rendition(&self, rid: String) -> io::Result<Option<(String, Replayed, bool)>> {
        let Ok(file) = fs::File::open(self.layout.journal(&rid)) else {
            return Ok(None);
        };
        let mut replayed = replay(io::BufReader::with_capacity(1 << 20, file))?;
        let repaired = self.recover_copies(&rid, &mut replayed.timeline)?;
        Ok(Some((rid, replayed, repaired)))
    }

    /// Moves copies whose rename did not happen before a crash into place (journal first, then
    /// the file: their upload is still in `incoming/`); drops those lost. True when the timeline
    /// changed.
    ///
    /// The rendition's directory is listed once rather than each file looked up: a 14-day
    /// history holds ~600,000 segments per rendition, and a lookup each was most of start-up.
    fn recover_copies(&self, rid: &str, timeline: &mut Timeline) -> io::Result<bool> {
        let present = self.present_copies(rid, timeline)?;
        let mut changed = false;
        for (e, here) in timeline.entries.iter_mut().zip(present) {
            for (input, here) in here.into_iter().enumerate() {
                let Some(copy) = &e.copies[input] else {
                    continue;
                };
                if here {
                    continue;
                }
                let path = self.layout.segment(rid, e.seq, input, &copy.ext);
                let incoming = self.layout.incoming(input, &copy.src);
                if incoming.exists() {
                    disk::rename_into(&incoming, &path)?;
                } else {
                    e.copies[input] = None;
                    changed = true;
                }
            }
        }
        while timeline
            .entries
            .back()
            .is_some_and(|e| e.copies.iter().all(Option::is_none))
        {
            timeline.entries.pop_back();
            changed = true;
        }
        timeline.reset_tail();
        Ok(changed)
    }

    /// For each entry of `timeline`, which inputs' copies have their file in the rendition's
    /// directory.
    fn present_copies(&self, rid: &str, timeline: &Timeline) -> io::Result<Vec<[bool; 2]>> {
        let mut present = vec![[false; 2]; timeline.entries.len()];
        let first = timeline.entries.front().map_or(0, |e| e.seq);
        let listing = match fs::read_dir(self.layout.renditions_dir().join(rid)) {
            Ok(listing) => listing,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(present),
            Err(e) => return Err(e),
        };
        for item in listing {
            let name = item?.file_name();
            let Some((seq, input, ext)) = name.to_str().and_then(Layout::parse_segment_name) else {
                continue;
            };
            let Some(e) = timeline.get(seq) else {
                continue;
            };
            if e.copies[input].as_ref().is_some_and(|c| c.ext == ext)
                && let Some(slot) = usize::try_from(seq - first)
                    .ok()
                    .and_then(|i| present.get_mut(i))
            {
                slot[input] = true;
            }
        }
        Ok(present)
    }

    /// Rewrites the rendition's journal as the retained entries only.
    pub(super) fn compact(&mut self, rid: &str) -> io::Result<()> {
        if self.replica.is_some() {
            return Ok(());
        }
        let Some(r) = self.renditions.get_mut(rid) else {
            return Ok(());
        };
        let mut text = String::new();
        if let Some(tail) = r.timeline.tail {
            let line = JournalLine::Prune {
                before_seq: r.timeline.entries.front().map_or(0, |e| e.seq),
                next: tail,
            };
            text.push_str(&serde_json::to_string(&line).map_err(io::Error::other)?);
            text.push('\n');
        }
        for e in &r.timeline.entries {
            let line = JournalLine::Put {
                entry: Box::new(e.clone()),
            };
            text.push_str(&serde_json::to_string(&line).map_err(io::Error::other)?);
            text.push('\n');
        }
        r.journal_lines = r.timeline.entries.len() + 1;
        disk::write_atomic(
            &self.layout.tmp_dir(),
            &self.layout.journal(rid),
            text.as_bytes(),
        )
    }

    /// Appends one record to the rendition's journal (fsynced).
    pub(super) fn journal(&mut self, rid: &str, line: &JournalLine) -> io::Result<()> {
        if self.log_line(rid, line) {
            return Ok(());
        }
        let text = serde_json::to_string(line).map_err(io::Error::other)?;
        disk::append_line(&self.layout.journal(rid), &text)?;
        if let Some(r) = self.renditions.get_mut(rid) {
            r.journal_lines += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journals_written_before_the_store_contract_still_load() {
        // As chrono wrote dates (its own precision), with the source's key among the tags.
        let old = r##"{"op":"put","entry":{"seq":5,"msn":5,"duration":2.0,"pdt":"2026-11-25T14:00:00Z","pdt_from_encoder":true,"discontinuity":false,"disc_seq":0,"tags":["#EXT-X-KEY:METHOD=AES-128,URI=\"k.bin\""],"received_ms":1,"copies":[{"ext":"ts","size":1,"etag":"e","src":"s5.ts","received_ms":1},null]}}
{"op":"put","entry":{"seq":6,"msn":6,"duration":2.0,"pdt":"2026-11-25T14:00:02.590123Z","pdt_from_encoder":false,"discontinuity":false,"disc_seq":0,"received_ms":2,"copies":[null,{"ext":"ts","size":1,"etag":"e","src":"s6.ts","received_ms":2}]}}
"##;
        let r = replay(old.as_bytes()).unwrap();
        assert!(!r.damaged);
        let e: Vec<&Entry> = r.timeline.entries.iter().collect();
        assert_eq!(
            e.iter().map(|e| e.pdt_ms).collect::<Vec<_>>(),
            [1_795_615_200_000, 1_795_615_202_590]
        );
        assert_eq!(e[0].tags, [r#"#EXT-X-KEY:METHOD=AES-128,URI="k.bin""#]);
        assert_eq!(e[0].source_key, None);
        assert!(e[1].tags.is_empty());

        // Written back: the store's date format, the key only where there is one; read back
        // the same.
        let mut entry = e[0].clone();
        entry.source_key = Some(r#"#EXT-X-KEY:METHOD=AES-128,URI="k.bin""#.to_owned());
        let line = serde_json::to_string(&JournalLine::Put {
            entry: Box::new(entry.clone()),
        })
        .unwrap();
        assert!(
            line.contains(r#""pdt":"2026-11-25T14:00:00.000Z""#),
            "{line}"
        );
        let text = format!(
            "{line}\n{}\n",
            serde_json::to_string(&JournalLine::Put {
                entry: Box::new(e[1].clone())
            })
            .unwrap()
        );
        assert_eq!(text.matches("source_key").count(), 1, "{text}");
        let back = replay(text.as_bytes()).unwrap();
        assert_eq!(back.timeline.entries[0], entry);
        assert_eq!(back.timeline.entries[1], *e[1]);

        // A prune record reads back; a record without its kind's fields is a damaged line.
        let prune = serde_json::to_string(&JournalLine::Prune {
            before_seq: 6,
            next: Tail {
                seq: 6,
                msn: 6,
                disc_seq: 0,
            },
        })
        .unwrap();
        let pruned = replay(format!("{text}{prune}\n").as_bytes()).unwrap();
        assert_eq!(pruned.timeline.entries.len(), 1);
        assert_eq!((pruned.lines, pruned.damaged), (3, false));
        for torn in [
            r#"{"op":"put"}"#,
            r#"{"op":"prune","before_seq":1}"#,
            "{\"op\":\"put\",\"en",
        ] {
            assert!(replay(torn.as_bytes()).unwrap().damaged, "{torn}");
        }

        // A date that is not one is a damaged line, not a wrong date.
        assert!(
            replay(old.replace("2026-11-25T14:00:00Z", "yesterday").as_bytes())
                .unwrap()
                .damaged
        );
    }
}
