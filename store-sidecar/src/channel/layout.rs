//! Where one channel's files live, under `data_dir/{channel}/`:
//! - `tmp/` — uploads in progress (wiped at start-up: a cut-off upload leaves nothing behind)
//! - `incoming/{input}/{path}` — committed uploads that no playlist has listed yet
//! - `inputs/{input}/multivariant.json`, `inputs/{input}/renditions/{rid}.json` — last good
//!   source playlists with the path they were uploaded to
//! - `renditions/{rid}/journal.jsonl` — the index, one JSON record per line, fsynced
//! - `renditions/{rid}/{seq}-{input}.{ext}` — indexed segments, byte-identical to the upload
//! - `renditions/{rid}/init-{id}.mp4` — fMP4 initialization segments, content addressed
//!
//! `input` is 0 or 1 in code and `1` or `2` on disk, as in the ingest URL.

use std::io;
use std::path::{Path, PathBuf};

use crate::disk;

/// The paths of one channel's files; computes names, touches nothing.
#[derive(Debug, Clone)]
pub(super) struct Layout {
    root: PathBuf,
}

impl Layout {
    pub(super) fn new(data_dir: &Path, channel: &str) -> Self {
        Self {
            root: data_dir.join(channel),
        }
    }

    pub(super) fn root(&self) -> &Path {
        &self.root
    }

    pub(super) fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// A fresh path in `tmp/`: on the same file system as every destination, so a finished
    /// upload is committed with a rename.
    pub(super) fn temp_path(&self) -> io::Result<PathBuf> {
        disk::temp_path(&self.tmp_dir())
    }

    pub(super) fn incoming_dir(&self, input: usize) -> PathBuf {
        self.root.join("incoming").join((input + 1).to_string())
    }

    pub(super) fn incoming(&self, input: usize, path: &str) -> PathBuf {
        self.incoming_dir(input).join(path)
    }

    fn input_dir(&self, input: usize) -> PathBuf {
        self.root.join("inputs").join((input + 1).to_string())
    }

    /// The stored source playlist: the multivariant one (`None`) or a rendition's.
    pub(super) fn source_doc(&self, input: usize, rid: Option<&str>) -> PathBuf {
        match rid {
            Some(rid) => self
                .source_renditions_dir(input)
                .join(format!("{rid}.json")),
            None => self.input_dir(input).join("multivariant.json"),
        }
    }

    pub(super) fn source_renditions_dir(&self, input: usize) -> PathBuf {
        self.input_dir(input).join("renditions")
    }

    pub(super) fn renditions_dir(&self) -> PathBuf {
        self.root.join("renditions")
    }

    pub(super) fn journal(&self, rid: &str) -> PathBuf {
        self.renditions_dir().join(rid).join("journal.jsonl")
    }

    pub(super) fn segment(&self, rid: &str, seq: u64, input: usize, ext: &str) -> PathBuf {
        self.renditions_dir()
            .join(rid)
            .join(Self::segment_name(seq, input, ext))
    }

    /// The name of an indexed segment's file in its rendition's directory.
    pub(super) fn segment_name(seq: u64, input: usize, ext: &str) -> String {
        format!("{seq}-{}.{ext}", input + 1)
    }

    /// What [`Layout::segment_name`] made this name from: `seq`, `input`, `ext`; `None` for any
    /// other file (the journal, an initialization segment).
    pub(super) fn parse_segment_name(name: &str) -> Option<(u64, usize, &str)> {
        let (stem, ext) = name.split_once('.')?;
        let (seq, input) = stem.split_once('-')?;
        let input = match input {
            "1" => 0,
            "2" => 1,
            _ => return None,
        };
        let canonical = !seq.is_empty() && (seq == "0" || !seq.starts_with('0'));
        Some((seq.parse().ok().filter(|_| canonical)?, input, ext))
    }

    pub(super) fn init(&self, rid: &str, id: &str) -> PathBuf {
        self.renditions_dir()
            .join(rid)
            .join(format!("init-{id}.mp4"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_read_back_as_written() {
        for (seq, input, ext) in [(0, 0, "ts"), (604_799, 1, "m4s")] {
            let name = Layout::segment_name(seq, input, ext);
            assert_eq!(Layout::parse_segment_name(&name), Some((seq, input, ext)));
        }
        for other in [
            "journal.jsonl",
            "init-ab12.mp4",
            "07-1.ts",
            "7-3.ts",
            "-1.ts",
            "x-1.ts",
        ] {
            assert_eq!(Layout::parse_segment_name(other), None, "{other}");
        }
    }
}
