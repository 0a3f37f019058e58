//! The index on disk: one `journal.jsonl` per rendition, one JSON record per line, fsynced on
//! every append; replayed at start-up (repairing what a crash cut short) and compacted when
//! pruning has made it mostly history.

use std::fs;
use std::io;

use serde::{Deserialize, Serialize};

use super::timeline::{Entry, Tail, Timeline};
use super::{ChannelState, Rendition};
use crate::disk;

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(super) enum JournalLine {
    /// Insert or replace the entry with this `seq`.
    Put { entry: Box<Entry> },
    /// Entries before `before_seq` left the window; `next` keeps numbering going if none remain.
    Prune { before_seq: u64, next: Tail },
}

/// A journal read back.
struct Replayed {
    timeline: Timeline,
    lines: usize,
    /// A line could not be read (torn by a crash mid-append): the journal needs rewriting.
    damaged: bool,
}

fn replay(text: &str) -> Replayed {
    let mut out = Replayed {
        timeline: Timeline::default(),
        lines: 0,
        damaged: false,
    };
    for line in text.lines() {
        match serde_json::from_str::<JournalLine>(line) {
            Ok(JournalLine::Put { entry }) => out.timeline.put(*entry),
            Ok(JournalLine::Prune { before_seq, next }) => {
                out.timeline.drop_before(before_seq, next);
            }
            // A torn last line from a crash mid-append: that record never took effect.
            Err(_) => out.damaged = true,
        }
        out.lines += 1;
    }
    out
}

impl ChannelState {
    /// Rebuilds every rendition's timeline from its journal.
    pub(super) fn replay_journals(&mut self) -> io::Result<()> {
        let Ok(listing) = fs::read_dir(self.layout.renditions_dir()) else {
            return Ok(());
        };
        for item in listing {
            let item = item?;
            let Some(rid) = item.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let Ok(text) = fs::read_to_string(self.layout.journal(&rid)) else {
                continue;
            };
            let Replayed {
                mut timeline,
                lines,
                damaged,
            } = replay(&text);
            let repaired = self.recover_copies(&rid, &mut timeline)?;
            self.renditions.insert(
                rid.clone(),
                Rendition {
                    timeline,
                    journal_lines: lines,
                    cache: None,
                },
            );
            if damaged || repaired {
                self.compact(&rid)?;
            }
        }
        Ok(())
    }

    /// Moves copies whose rename did not happen before a crash into place (journal first, then
    /// the file: their upload is still in `incoming/`); drops those lost. True when the timeline
    /// changed.
    fn recover_copies(&self, rid: &str, timeline: &mut Timeline) -> io::Result<bool> {
        let mut changed = false;
        for e in &mut timeline.entries {
            for input in 0..2 {
                let Some(copy) = &e.copies[input] else {
                    continue;
                };
                let path = self.layout.segment(rid, e.seq, input, &copy.ext);
                if path.exists() {
                    continue;
                }
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

    /// Rewrites the rendition's journal as the retained entries only.
    pub(super) fn compact(&mut self, rid: &str) -> io::Result<()> {
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
        let r = replay(old);
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
        let back = replay(&text);
        assert_eq!(back.timeline.entries[0], entry);
        assert_eq!(back.timeline.entries[1], *e[1]);

        // A date that is not one is a damaged line, not a wrong date.
        assert!(replay(&old.replace("2026-11-25T14:00:00Z", "yesterday")).damaged);
    }
}
