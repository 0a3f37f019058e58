//! What an encoder's uploads do to a channel: a committed file waits in `incoming/` until a
//! playlist lists it; a playlist is checked, kept as the input's last good one, and indexed.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::Path;
use std::time::Instant;

use edgepack_store_api::MediaPlaylist;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::timeline::{self, InputRendition, SegmentCopy, Timeline};
use super::{ChannelState, UploadInfo};
use crate::disk;
use crate::ingest_path::{is_playlist, rendition_id, resolve_segment_uri};
use crate::media_kind::{self, MediaKind};
use crate::source_playlist::{self, PlaylistError, SourcePlaylist};

/// Why an upload was refused; the stored state is unchanged.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{0}")]
    Playlist(#[from] PlaylistError),
    #[error(
        "media sequence went backwards for rendition '{rendition}': {previous} then {got}, and the playlist's first segment is no new upload (an older copy of the playlist?); an encoder that restarts its numbering uploads its new first segment before its playlist"
    )]
    Regressed {
        rendition: String,
        previous: u64,
        got: u64,
    },
    #[error("{0}")]
    OutsideInput(String),
    #[error(
        "'{file}' is not MPEG-TS, fMP4, WebVTT or packed audio ({head}); nothing was stored. Segments an encoder encrypted itself are taken while its playlists carry their EXT-X-KEY"
    )]
    Unrecognised { file: String, head: String },
    #[error(
        "'{file}' is named .vtt but is not WebVTT ({head}); nothing was stored. A subtitle segment begins with the line WEBVTT"
    )]
    NotWebVtt { file: String, head: String },
    #[error("storage error: {0}")]
    Io(#[from] io::Error),
}

/// What an accepted playlist did.
#[derive(Debug, Default, PartialEq)]
pub struct Accepted {
    pub created: bool,
    pub segments_indexed: u64,
}

/// A source playlist as stored: the text and the path it was uploaded to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredDoc {
    pub(super) path: String,
    pub(super) text: String,
    /// Added to the playlist's media sequence numbers: non-zero after the encoder restarted its
    /// numbering ([`timeline::restart_msn`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub(super) msn_offset: u64,
    /// The (offset) MSN where the encoder restarted: a discontinuity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) restart_msn: Option<u64>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl StoredDoc {
    /// The playlist in the timeline's numbering: `msn_offset` added, the restart marked.
    pub(super) fn numbered(&self, mut source: MediaPlaylist<'static>) -> MediaPlaylist<'static> {
        source.media_sequence = source.media_sequence.saturating_add(self.msn_offset);
        if let Some(at) = self
            .restart_msn
            .and_then(|r| r.checked_sub(source.media_sequence))
            .and_then(|i| usize::try_from(i).ok())
            && let Some(s) = source.segments.get_mut(at)
        {
            s.discontinuity = true;
        }
        source
    }
}

fn read_doc(path: &Path) -> io::Result<Option<StoredDoc>> {
    match fs::read(path) {
        Ok(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

pub(super) fn hash_file(path: &Path) -> io::Result<(u64, String)> {
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
    /// Moves a finished upload from `tmp` into the input's incoming files and indexes whatever
    /// playlist entries were waiting for it. Returns the number of segments indexed.
    ///
    /// A file that is no media format an encoder pushes is refused (and `tmp` removed) once the
    /// input's playlists say its segments are clear; before the first playlist it waits, and is
    /// passed over like a segment never uploaded unless its playlist entry carries a key.
    pub fn commit_upload(
        &mut self,
        input: usize,
        path: &str,
        tmp: &Path,
        size: u64,
        etag: String,
    ) -> Result<u64, IngestError> {
        let (kind, head) = media_kind::sniff_file(tmp)?;
        if kind == MediaKind::Unrecognised && self.inputs[input].is_clear() {
            disk::remove_if_exists(tmp)?;
            return Err(IngestError::Unrecognised {
                file: path.to_owned(),
                head: media_kind::describe(&head),
            });
        }
        if path.ends_with(".vtt") && kind != MediaKind::WebVtt && self.inputs[input].is_clear() {
            disk::remove_if_exists(tmp)?;
            return Err(IngestError::NotWebVtt {
                file: path.to_owned(),
                head: media_kind::describe(&head),
            });
        }
        disk::rename_into(tmp, &self.layout.incoming(input, path))?;
        self.inputs[input]
            .uploads
            .insert(path.to_owned(), UploadInfo { size, etag, kind });
        // A re-uploaded initialization segment (an encoder restart) is stored afresh.
        self.inputs[input].inits.remove(path);
        Ok(self.index_all(input, Instant::now())?)
    }

    /// Validates and applies an uploaded playlist.
    pub fn accept_playlist(
        &mut self,
        input: usize,
        path: &str,
        bytes: &[u8],
    ) -> Result<Accepted, IngestError> {
        let parsed = source_playlist::parse(bytes)?;
        let doc = StoredDoc {
            path: path.to_owned(),
            // Parsed: valid UTF-8, so nothing is replaced.
            text: String::from_utf8_lossy(bytes).into_owned(),
            msn_offset: 0,
            restart_msn: None,
        };
        match parsed {
            SourcePlaylist::Multivariant(m) => self.accept_multivariant(input, doc, m),
            SourcePlaylist::Media(source) => self.accept_media(input, doc, source),
        }
    }

    fn outside_input(&self, input: usize, what: &str, uri: &str) -> IngestError {
        IngestError::OutsideInput(format!(
            "{what} URI '{uri}' points outside /in/v1/{}/{}/",
            self.cfg.id,
            input + 1
        ))
    }

    fn accept_multivariant(
        &mut self,
        input: usize,
        doc: StoredDoc,
        m: m3u8_rs::MasterPlaylist,
    ) -> Result<Accepted, IngestError> {
        let uris = m
            .variants
            .iter()
            .map(|v| &v.uri)
            .chain(m.alternatives.iter().filter_map(|a| a.uri.as_ref()));
        for uri in uris {
            if resolve_segment_uri(&doc.path, uri, &self.cfg.id, input).is_none() {
                return Err(self.outside_input(input, "variant", uri));
            }
        }
        let created = self.inputs[input].multivariant.is_none();
        self.write_doc(&self.layout.source_doc(input, None), &doc)?;
        self.log(super::LogRecord::Source {
            input,
            doc: doc.clone(),
        });
        self.inputs[input].multivariant = Some((doc, m));
        self.multivariant_cache = None;
        Ok(Accepted {
            created,
            segments_indexed: 0,
        })
    }

    fn accept_media(
        &mut self,
        input: usize,
        mut doc: StoredDoc,
        source: MediaPlaylist<'static>,
    ) -> Result<Accepted, IngestError> {
        let path = doc.path.clone();
        let rid = rendition_id(&path);
        for s in &source.segments {
            if resolve_segment_uri(&path, &s.uri, &self.cfg.id, input).is_none() {
                return Err(self.outside_input(input, "segment", &s.uri));
            }
        }
        let previous = self.inputs[input].renditions.get(&rid);
        if let Some(prev) = previous {
            doc.msn_offset = prev.msn_offset;
            doc.restart_msn = prev.restart_msn;
        }
        let raw_first = source.media_sequence;
        let mut source = doc.numbered(source);
        if let Some(prev) = previous {
            let went_back = source.media_sequence < prev.source.media_sequence;
            let redone = prev.last_msn.is_some_and(|l| source.media_sequence <= l);
            if (went_back || redone) && self.restarted(input, &rid, &path, &source)? {
                let empty = Timeline::default();
                let timeline = self.renditions.get(&rid).map_or(&empty, |r| &r.timeline);
                let at = timeline::restart_msn(timeline, input, &prev.source, &source);
                tracing::info!(channel = %self.cfg.id, input = input + 1, rendition = rid,
                    from = prev.source.media_sequence, to = raw_first, continues_at = at,
                    "the encoder restarted its numbering; its segments continue the timeline after a discontinuity");
                doc.msn_offset = at.saturating_sub(raw_first);
                doc.restart_msn = Some(at);
                source.media_sequence = raw_first;
                source = doc.numbered(source);
            } else if went_back {
                return Err(IngestError::Regressed {
                    rendition: rid,
                    previous: prev.source.media_sequence,
                    got: source.media_sequence,
                });
            }
        }
        let created = previous.is_none();
        self.write_doc(&self.layout.source_doc(input, Some(&rid)), &doc)?;
        self.log(super::LogRecord::Source {
            input,
            doc: doc.clone(),
        });
        let slot = self.inputs[input]
            .renditions
            .entry(rid.clone())
            .or_insert_with(|| InputRendition {
                source: source.clone(),
                path: path.clone(),
                last_msn: None,
                pending_since: HashMap::new(),
                msn_offset: 0,
                restart_msn: None,
            });
        slot.source = source;
        slot.path = path;
        slot.msn_offset = doc.msn_offset;
        slot.restart_msn = doc.restart_msn;
        self.renditions.entry(rid.clone()).or_default().cache = None;
        self.multivariant_cache = None;
        let segments_indexed = self.index_input(input, &rid, Instant::now())?;
        Ok(Accepted {
            created,
            segments_indexed,
        })
    }

    /// Whether a playlist that lists again numbers this input is done with comes from an encoder
    /// that restarted its numbering: its first segment is a new upload, and not the bytes
    /// already indexed under that number (a retried upload, or an older copy of the playlist).
    fn restarted(
        &self,
        input: usize,
        rid: &str,
        path: &str,
        source: &MediaPlaylist<'_>,
    ) -> io::Result<bool> {
        let Some(file) = source
            .segments
            .first()
            .and_then(|s| resolve_segment_uri(path, &s.uri, &self.cfg.id, input))
        else {
            return Ok(false);
        };
        let incoming = self.layout.incoming(input, &file);
        if !incoming.is_file() {
            return Ok(false);
        }
        let etag = match self.inputs[input].uploads.get(&file) {
            Some(u) => u.etag.clone(),
            None => hash_file(&incoming)?.1,
        };
        let indexed = self.renditions.get(rid).and_then(|r| {
            let entries = &r.timeline.entries;
            let at = entries
                .binary_search_by_key(&source.media_sequence, |e| e.msn)
                .ok()?;
            entries[at].copies[input].as_ref().map(|c| c.etag.clone())
        });
        Ok(indexed.is_none_or(|indexed| indexed != etag))
    }

    fn write_doc(&self, path: &Path, doc: &StoredDoc) -> io::Result<()> {
        let json = serde_json::to_vec(doc).map_err(io::Error::other)?;
        disk::write_atomic(&self.layout.tmp_dir(), path, &json)
    }

    /// Handles an encoder DELETE. Indexed segments stay (the startover window is ours to prune);
    /// an upload no playlist listed yet is removed.
    pub fn delete(&mut self, input: usize, path: &str) -> io::Result<()> {
        // A playlist's last good state stays: the channel keeps its renditions.
        if !is_playlist(path) {
            self.inputs[input].uploads.remove(path);
            disk::remove_if_exists(&self.layout.incoming(input, path))?;
        }
        Ok(())
    }

    /// The id of `input`'s initialization segment uploaded at `file`, storing it (content
    /// addressed, kept while segments refer to it) the first time. `None`: not uploaded yet.
    pub(super) fn store_init(
        &mut self,
        input: usize,
        rid: &str,
        file: &str,
    ) -> io::Result<Option<String>> {
        if let Some(id) = self.inputs[input].inits.get(file) {
            return Ok(Some(id.clone()));
        }
        let incoming = self.layout.incoming(input, file);
        if !incoming.is_file() {
            return Ok(None);
        }
        let (_, etag) = hash_file(&incoming)?;
        let target = self.layout.init(rid, &etag);
        if !target.is_file() {
            // Copied, not moved: the encoder uploads it once and keeps referring to it.
            let tmp = self.layout.temp_path()?;
            fs::copy(&incoming, &tmp)?;
            disk::rename_into(&tmp, &target)?;
        }
        self.inputs[input]
            .inits
            .insert(file.to_owned(), etag.clone());
        Ok(Some(etag))
    }

    /// After a restart: which stored initialization segment each input's init upload became.
    pub(super) fn remember_inits(&mut self) {
        for r in self.renditions.values() {
            for e in &r.timeline.entries {
                for (input, c) in e.copies.iter().enumerate() {
                    if let Some(SegmentCopy {
                        init: Some(id),
                        init_src: Some(src),
                        ..
                    }) = c
                    {
                        self.inputs[input].inits.insert(src.clone(), id.clone());
                    }
                }
            }
        }
    }

    /// After a restart: each input's last good playlists, and how far each was indexed.
    pub(super) fn load_sources(&mut self) -> io::Result<()> {
        for input in 0..2 {
            if let Some(doc) = read_doc(&self.layout.source_doc(input, None))?
                && let Ok(SourcePlaylist::Multivariant(m)) =
                    source_playlist::parse(doc.text.as_bytes())
            {
                self.inputs[input].multivariant = Some((doc, m));
            }
            let Ok(listing) = fs::read_dir(self.layout.source_renditions_dir(input)) else {
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
                let last_msn = self
                    .renditions
                    .get(&rid)
                    .and_then(|r| r.timeline.last_msn_of(input));
                self.inputs[input].renditions.insert(
                    rid,
                    InputRendition {
                        source: doc.numbered(source),
                        path: doc.path,
                        last_msn,
                        pending_since: HashMap::new(),
                        msn_offset: doc.msn_offset,
                        restart_msn: doc.restart_msn,
                    },
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    /// Commits an upload of an HTML error page as `name`.
    fn upload_error_page(st: &mut ChannelState, name: &str) -> Result<u64, IngestError> {
        let tmp = st.upload_temp_path().unwrap();
        fs::write(&tmp, b"<html>502 Bad Gateway</html>").unwrap();
        let result = st.commit_upload(0, name, &tmp, 28, "e".into());
        // Refused or taken, nothing is left behind in tmp/.
        assert!(!tmp.exists());
        result
    }

    #[test]
    fn bytes_of_no_media_format_are_refused_once_the_playlists_say_clear() {
        let d = tempfile::tempdir().unwrap();
        let mut st = ChannelState::open(channel(), d.path()).unwrap();
        // Before the input's first playlist nothing says whether it encrypts: taken...
        upload_error_page(&mut st, "s0.ts").unwrap();
        upload(&mut st, 0, "s1.ts");
        st.accept_playlist(0, "hd.m3u8", playlist(0, 2).as_bytes())
            .unwrap();
        // ...but its playlist entry carries no key, so it is deleted and counts as not uploaded.
        assert_eq!(st.retained_segments(), 0);
        assert!(!st.layout.incoming(0, "s0.ts").exists());
        // From now on such bytes are refused at once, with the reason.
        // A subtitle segment that is not WebVTT (here MPEG-TS): refused, named as such.
        let tmp = st.upload_temp_path().unwrap();
        fs::write(&tmp, media("s9.ts")).unwrap();
        let e = st
            .commit_upload(0, "subs9.vtt", &tmp, 6, "e".into())
            .unwrap_err();
        assert!(matches!(e, IngestError::NotWebVtt { .. }), "{e}");
        assert!(
            e.to_string()
                .starts_with("'subs9.vtt' is named .vtt but is not WebVTT"),
            "{e}"
        );
        assert!(!tmp.exists());
        let e = upload_error_page(&mut st, "s2.ts").unwrap_err();
        assert!(matches!(e, IngestError::Unrecognised { .. }));
        assert_eq!(
            e.to_string(),
            "'s2.ts' is not MPEG-TS, fMP4, WebVTT or packed audio (it begins \"<html>502 Bad Ga\"); \
             nothing was stored. Segments an encoder encrypted itself are taken while its playlists \
             carry their EXT-X-KEY"
        );
        assert!(!st.layout.incoming(0, "s2.ts").exists());
        // The encoder uploads the segment again, this time as media: the rendition goes on.
        upload(&mut st, 0, "s0.ts");
        assert_eq!(uris(&mut st), ["0.ts", "1.ts"]);
    }

    #[test]
    fn segments_an_encoder_encrypted_are_taken_under_their_key() {
        let d = tempfile::tempdir().unwrap();
        let mut st = ChannelState::open(channel(), d.path()).unwrap();
        let keyed = playlist(0, 2).replace(
            "#EXTINF",
            "#EXT-X-KEY:METHOD=AES-128,URI=\"k.bin\"\n#EXTINF",
        );
        upload_error_page(&mut st, "s0.ts").unwrap();
        st.accept_playlist(0, "hd.m3u8", keyed.as_bytes()).unwrap();
        // The input now encrypts: what it sends cannot be told from noise, so it is taken.
        upload_error_page(&mut st, "s1.ts").unwrap();
        assert_eq!(uris(&mut st), ["0.ts", "1.ts"]);
    }

    /// `playlist` with the encoder's program date times: segment `m` of the session that began
    /// at `epoch_s` (seconds after midnight) starts `2 m` seconds later.
    fn dated(first: u64, count: u64, epoch_s: u64) -> String {
        let mut t = format!("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:{first}\n");
        for m in first..first + count {
            let at = epoch_s + 2 * m;
            t.push_str(&format!(
                "#EXT-X-PROGRAM-DATE-TIME:2026-11-28T00:{:02}:{:02}.000Z\n#EXTINF:2.0,\ns{m}.ts\n",
                at / 60,
                at % 60
            ));
        }
        t
    }

    fn media_text(st: &mut ChannelState) -> String {
        String::from_utf8(st.media_playlist("hd").unwrap().body.to_vec()).unwrap()
    }

    #[test]
    fn an_encoder_that_restarts_from_zero_continues_the_timeline() {
        let d = tempfile::tempdir().unwrap();
        let mut st = ChannelState::open(channel(), d.path()).unwrap();
        for m in 0..5 {
            upload(&mut st, 0, &format!("s{m}.ts"));
        }
        st.accept_playlist(0, "hd.m3u8", playlist(0, 3).as_bytes())
            .unwrap();
        st.accept_playlist(0, "hd.m3u8", playlist(2, 3).as_bytes())
            .unwrap();
        // An older copy of the playlist (its segments were indexed long ago) is refused.
        let e = st
            .accept_playlist(0, "hd.m3u8", playlist(0, 3).as_bytes())
            .unwrap_err();
        assert!(matches!(e, IngestError::Regressed { .. }), "{e}");
        // The same bytes uploaded again (a retry) do not make a restart either.
        upload(&mut st, 0, "s0.ts");
        let e = st
            .accept_playlist(0, "hd.m3u8", playlist(0, 3).as_bytes())
            .unwrap_err();
        assert!(matches!(e, IngestError::Regressed { .. }), "{e}");
        // The encoder restarts from 0: its new first segment, then its playlist.
        upload_version(&mut st, 0, "s0.ts", "run 2");
        st.accept_playlist(0, "hd.m3u8", playlist(0, 1).as_bytes())
            .unwrap();
        upload_version(&mut st, 0, "s1.ts", "run 2");
        st.accept_playlist(0, "hd.m3u8", playlist(0, 2).as_bytes())
            .unwrap();
        let text = media_text(&mut st);
        assert_eq!(
            uris(&mut st),
            ["0.ts", "1.ts", "2.ts", "3.ts", "4.ts", "5.ts", "6.ts"]
        );
        assert!(
            text.contains("4.ts\n#EXT-X-DISCONTINUITY\n")
                && text.matches("#EXT-X-DISCONTINUITY\n").count() == 1,
            "{text}"
        );
        // The new numbering survives a restart of the sidecar.
        drop(st);
        let mut st = ChannelState::open(channel(), d.path()).unwrap();
        upload(&mut st, 0, "s2.ts");
        st.accept_playlist(0, "hd.m3u8", playlist(0, 3).as_bytes())
            .unwrap();
        assert_eq!(uris(&mut st).last().map(String::as_str), Some("7.ts"));
        assert_eq!(
            media_text(&mut st)
                .matches("#EXT-X-DISCONTINUITY\n")
                .count(),
            1
        );
    }

    #[test]
    fn a_restarted_input_lines_up_with_the_other_by_program_date_time() {
        let d = tempfile::tempdir().unwrap();
        let mut st = ChannelState::open(channel(), d.path()).unwrap();
        // Both inputs aligned, numbered from 100; input 2 is a segment ahead.
        for m in 100..105 {
            upload(&mut st, 0, &format!("s{m}.ts"));
            upload(&mut st, 1, &format!("s{m}.ts"));
        }
        upload(&mut st, 1, "s105.ts");
        st.accept_playlist(0, "hd.m3u8", dated(100, 5, 0).as_bytes())
            .unwrap();
        st.accept_playlist(1, "hd.m3u8", dated(100, 6, 0).as_bytes())
            .unwrap();
        // Input 1's encoder restarts from 0 with the time of segment 105 (a new session that
        // began 210 s after the first): its segments attach to the entries of the same time.
        upload_version(&mut st, 0, "s0.ts", "run 2");
        upload_version(&mut st, 0, "s1.ts", "run 2");
        st.accept_playlist(0, "hd.m3u8", dated(0, 2, 210).as_bytes())
            .unwrap();
        upload(&mut st, 1, "s106.ts");
        st.accept_playlist(1, "hd.m3u8", dated(101, 6, 0).as_bytes())
            .unwrap();
        let timeline = &st.renditions["hd"].timeline;
        let both: Vec<u64> = timeline
            .entries
            .iter()
            .filter(|e| e.copies.iter().all(Option::is_some))
            .map(|e| e.msn)
            .collect();
        assert_eq!(both, [100, 101, 102, 103, 104, 105, 106]);
        assert!(
            timeline
                .entries
                .iter()
                .all(|e| !e.discontinuity || e.msn == 100)
        );
        // Past the end of the timeline (106 ends at 214 s), a restart takes the number its time
        // would have had.
        upload_version(&mut st, 1, "s0.ts", "run 2");
        st.accept_playlist(1, "hd.m3u8", dated(0, 1, 220).as_bytes())
            .unwrap();
        let last = st.renditions["hd"].timeline.entries.back().unwrap();
        assert_eq!((last.msn, last.discontinuity), (110, true));
        assert_eq!(last.pdt_ms % 3_600_000, 220_000);
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
        assert_eq!(fs::read(path).unwrap(), media("init.mp4"));
        assert!(st.init("hd", "../../x").is_none());

        // The encoder restarts with a new init under the same name: a second map from there on.
        let tmp = st.upload_temp_path().unwrap();
        fs::write(&tmp, b"\0\0\0\x10ftypnew init").unwrap();
        st.commit_upload(0, "init.mp4", &tmp, 16, "e".into())
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
        st.prune(crate::channel::now_ms() + 7_200_000).unwrap();
        assert!(st.init("hd", &first_id).is_none());
        assert!(st.init("hd", &second_id).is_none());
    }
}
