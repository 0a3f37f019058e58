//! A long startover history written straight to disk, in the very form [`ChannelState::open`]
//! recovers: for tests and benchmarks that need days of history without living through them.
//!
//! It writes what the ingest path would have left behind — each rendition's journal (the same
//! [`JournalLine`] records), one segment file per entry under [`Layout`]'s names, and input 1's
//! last good source playlists — so the store that opens it cannot tell it from one an encoder
//! filled. Segment files are hard links to a few real segments, cycled: days of 2 s segments
//! cost directory entries, not disk. Program date times are contiguous and end at `end_ms`
//! (usually now, so the live edge is current); media sequence numbers are contiguous.

use std::borrow::Cow;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write as _};
use std::path::{Path, PathBuf};

use edgepack_store_api::{MediaPlaylist, Segment};

use super::ingest::{StoredDoc, hash_file};
use super::journal::JournalLine;
use super::layout::Layout;
use super::timeline::{Entry, SegmentCopy};
use crate::disk;
use crate::ingest_path::rendition_id;

/// ext4 refuses a 65,001st link to one file: a source file gets a fresh copy this often.
const LINKS_PER_FILE: u64 = 60_000;

/// Segments listed in input 1's stored source playlist (as an encoder's sliding window).
const SOURCE_WINDOW: u64 = 3;

/// One rendition of a history and the real segments its entries cycle through.
#[derive(Debug, Clone)]
pub struct HistoryRendition {
    /// The rendition id: also the name of input 1's playlist, `{id}.m3u8`, whose
    /// [`rendition_id`] it must be.
    pub id: String,
    /// MPEG-TS segments of `segment_seconds` each, in playing order; entry `i` is a link to
    /// `files[i % files.len()]`. Each must be self-contained (a keyframe first, timestamps that
    /// players accept going back when the cycle restarts).
    pub files: Vec<PathBuf>,
}

/// What history to write for one channel.
#[derive(Debug, Clone)]
pub struct HistorySpec {
    pub channel: String,
    pub renditions: Vec<HistoryRendition>,
    /// Segments per rendition.
    pub segments: u64,
    /// Every segment's duration.
    pub segment_seconds: f64,
    /// When the last segment ends (epoch ms): its program date time is this minus its duration.
    pub end_ms: i64,
    /// The first entry's media sequence number (and the store's `seq`).
    pub first_msn: u64,
    /// Input 1's multivariant playlist, its variant URIs `{id}.m3u8`; `None`: the store
    /// synthesizes one.
    pub multivariant: Option<String>,
}

impl HistorySpec {
    /// Program date time (epoch ms) of the `i`-th segment: contiguous, ending at `end_ms`.
    pub fn pdt_ms(&self, i: u64) -> i64 {
        let to_end = self.segments.saturating_sub(i) as f64 * self.segment_seconds * 1000.0;
        self.end_ms - to_end.round() as i64
    }

    /// Upload path of the `msn`-th segment of a rendition, as ffmpeg's HLS muxer names it.
    fn src(rid: &str, msn: u64) -> String {
        format!("{rid}_{msn}.ts")
    }
}

/// Writes `spec`'s history under `data_dir/{channel}/`, which must not hold a store yet.
/// Renditions are written in parallel (one directory each).
pub fn write_history(data_dir: &Path, spec: &HistorySpec) -> io::Result<()> {
    let layout = Layout::new(data_dir, &spec.channel);
    if layout.renditions_dir().exists() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} already holds a store", layout.root().display()),
        ));
    }
    if spec.segment_seconds <= 0.0 || !spec.segment_seconds.is_finite() {
        return Err(io::Error::other("segment_seconds must be positive"));
    }
    for r in &spec.renditions {
        if r.files.is_empty() || rendition_id(&format!("{}.m3u8", r.id)) != r.id {
            return Err(io::Error::other(format!(
                "rendition '{}': needs segment files and a plain id",
                r.id
            )));
        }
    }
    fs::create_dir_all(layout.tmp_dir())?;
    std::thread::scope(|s| {
        let jobs: Vec<_> = spec
            .renditions
            .iter()
            .map(|r| s.spawn(|| write_rendition(&layout, spec, r)))
            .collect();
        jobs.into_iter().try_for_each(|j| {
            j.join()
                .unwrap_or_else(|_| Err(io::Error::other("a rendition's writer panicked")))
        })
    })?;
    if let Some(text) = &spec.multivariant {
        write_doc(&layout, &layout.source_doc(0, None), "master.m3u8", text)?;
    }
    Ok(())
}

/// One rendition: its segment files, journal and input 1's source playlist.
fn write_rendition(layout: &Layout, spec: &HistorySpec, r: &HistoryRendition) -> io::Result<()> {
    let dir = layout.renditions_dir().join(&r.id);
    fs::create_dir_all(&dir)?;
    // Each source file's size and ETag, computed once; `link_to` is the file new entries link to
    // (a fresh copy every LINKS_PER_FILE links).
    let sources = r
        .files
        .iter()
        .map(|f| hash_file(f).map(|(size, etag)| (f.clone(), size, etag)))
        .collect::<io::Result<Vec<_>>>()?;
    let mut link_to: Vec<Option<PathBuf>> = vec![None; sources.len()];
    let mut journal = BufWriter::with_capacity(1 << 20, File::create(layout.journal(&r.id))?);
    let cycle = sources.len() as u64;
    for i in 0..spec.segments {
        let msn = spec.first_msn + i;
        let slot = (i % cycle) as usize;
        let (file, size, etag) = &sources[slot];
        let target = layout.segment(&r.id, msn, 0, "ts");
        match &link_to[slot] {
            Some(existing) if !(i / cycle).is_multiple_of(LINKS_PER_FILE) => {
                fs::hard_link(existing, &target)?
            }
            _ => {
                fs::copy(file, &target)?;
                link_to[slot] = Some(target);
            }
        }
        let pdt_ms = spec.pdt_ms(i);
        let received_ms = spec.pdt_ms(i + 1);
        let entry = Entry {
            seq: msn,
            msn,
            duration: spec.segment_seconds,
            pdt_ms,
            pdt_from_encoder: true,
            discontinuity: false,
            disc_seq: 0,
            tags: Vec::new(),
            source_key: None,
            received_ms,
            copies: [
                Some(SegmentCopy {
                    ext: "ts".to_owned(),
                    size: *size,
                    etag: etag.clone(),
                    src: HistorySpec::src(&r.id, msn),
                    received_ms,
                    init: None,
                    init_src: None,
                }),
                None,
            ],
            served_from: Some(0),
        };
        let line = JournalLine::Put {
            entry: Box::new(entry),
        };
        serde_json::to_writer(&mut journal, &line).map_err(io::Error::other)?;
        journal.write_all(b"\n")?;
    }
    journal
        .into_inner()
        .map_err(io::IntoInnerError::into_error)?
        .sync_all()?;
    disk::sync_dir(&dir)?;
    let path = format!("{}.m3u8", r.id);
    write_doc(
        layout,
        &layout.source_doc(0, Some(&r.id)),
        &path,
        &source_playlist(spec, &r.id),
    )
}

/// Input 1's last playlist for a rendition: the newest few segments, as an encoder's sliding
/// window lists them, written with the contract's writer.
fn source_playlist(spec: &HistorySpec, rid: &str) -> String {
    let first = spec.segments.saturating_sub(SOURCE_WINDOW);
    let playlist = MediaPlaylist {
        version: Some(3),
        target_duration: Some(spec.segment_seconds.ceil() as u64),
        media_sequence: spec.first_msn + first,
        segments: (first..spec.segments)
            .map(|i| Segment {
                pdt_ms: Some(spec.pdt_ms(i)),
                pdt_tagged: true,
                ..Segment::new(
                    Cow::Owned(HistorySpec::src(rid, spec.first_msn + i)),
                    spec.segment_seconds,
                )
            })
            .collect(),
        ..MediaPlaylist::default()
    };
    let mut text = String::new();
    playlist.write_to(&mut text);
    text
}

fn write_doc(layout: &Layout, path: &Path, uploaded_to: &str, text: &str) -> io::Result<()> {
    let doc = StoredDoc {
        path: uploaded_to.to_owned(),
        text: text.to_owned(),
        msn_offset: 0,
        restart_msn: None,
    };
    let json = serde_json::to_vec(&doc).map_err(io::Error::other)?;
    disk::write_atomic(&layout.tmp_dir(), path, &json)
}

#[cfg(test)]
mod tests {
    use super::super::ChannelState;
    use super::super::test_support::channel;
    use super::*;

    #[test]
    fn a_written_history_opens_as_the_store_left_it() {
        let d = tempfile::tempdir().unwrap();
        let media: Vec<PathBuf> = (0..3)
            .map(|i| {
                let p = d.path().join(format!("m{i}.ts"));
                fs::write(&p, format!("segment {i}")).unwrap();
                p
            })
            .collect();
        let data = d.path().join("data");
        let end_ms = super::super::now_ms();
        let spec = HistorySpec {
            channel: "news".into(),
            renditions: vec![HistoryRendition {
                id: "hd".into(),
                files: media,
            }],
            segments: 10,
            segment_seconds: 2.0,
            end_ms,
            first_msn: 100,
            multivariant: None,
        };
        write_history(&data, &spec).unwrap();
        assert!(write_history(&data, &spec).is_err(), "never over a store");

        let mut st = ChannelState::open(channel(), &data).unwrap();
        assert_eq!(st.retained_segments(), 10);
        let status = st.status();
        let r = &status["renditions"][0];
        assert_eq!(
            (r["first_sequence"].as_u64(), r["last_sequence"].as_u64()),
            (Some(100), Some(109))
        );
        assert_eq!(status["active_input"], 1);
        // Entry i is the cycle's file i % 3, served under its own name.
        let s = st.segment("hd", 104, "ts").unwrap();
        assert_eq!(fs::read(&s.path).unwrap(), b"segment 1");
        assert_eq!(s.pdt_ms, end_ms - 12_000);
        // Nothing left to index: the source playlist is the newest segments, all indexed.
        assert_eq!(st.tick(std::time::Instant::now()).unwrap(), None);
        assert_eq!(st.retained_segments(), 10);
        // The store keeps ingesting after it: the next segment appends.
        let next = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:109\n\
            #EXTINF:2.0,\nhd_109.ts\n#EXTINF:2.0,\nhd_110.ts\n";
        let tmp = st.upload_temp_path().unwrap();
        fs::write(&tmp, b"\x47new").unwrap();
        st.commit_upload(0, "hd_110.ts", &tmp, 4, "e".into())
            .unwrap();
        let accepted = st.accept_playlist(0, "hd.m3u8", next.as_bytes()).unwrap();
        assert_eq!(accepted.segments_indexed, 1);
        assert_eq!(st.retained_segments(), 11);
    }
}
