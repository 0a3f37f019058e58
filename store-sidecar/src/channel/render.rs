//! The channel's answers as text: the normalized multivariant playlist, each rendition's media
//! playlist over the whole retained history (the contract's [`MediaPlaylist`], cached until the
//! timeline changes), and the status document.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Instant;

use bytes::Bytes;
use edgepack_store_api::api::{MEDIA_BANDWIDTH_ATTRIBUTE, init_uri, segment_uri, variant_uri};
use edgepack_store_api::cues;
use edgepack_store_api::window::{self, ViewQuery};
use edgepack_store_api::{MediaPlaylist, RunStart, Segment, ViewContext, format_pdt};
use sha2::{Digest as _, Sha256};

use super::ChannelState;
use super::timeline::{Entry, SegmentCopy};
use crate::ingest_path::{rendition_id, resolve_segment_uri};

/// A rendered answer with its ETag.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub body: Bytes,
    pub etag: String,
}

impl Rendered {
    fn new(body: String) -> Self {
        let etag = format!(
            "\"{}\"",
            hex::encode(&Sha256::digest(body.as_bytes())[..12])
        );
        Self {
            body: Bytes::from(body),
            etag,
        }
    }
}

/// The copy an entry is served from: its pinned input's, else the first of `order` that has one.
fn served(e: &Entry, order: [usize; 2]) -> Option<&SegmentCopy> {
    e.serving_order(order)
        .into_iter()
        .find_map(|i| e.copies[i].as_ref())
}

/// What every playlist of a rendition declares.
struct PlaylistHead {
    source_td: u64,
    version: u32,
    /// The encoder's playlist-level tags that still hold for the store's view
    /// ([`PASSED_HEADER_TAGS`]), from the preferred input's latest playlist.
    header_tags: Vec<String>,
}

/// Encoder playlist-level tags the store passes on: where to start, and that every segment
/// starts with a key frame. (Low-latency tags describe parts the store does not keep.)
const PASSED_HEADER_TAGS: [&str; 2] = ["#EXT-X-START:", "#EXT-X-INDEPENDENT-SEGMENTS"];

/// An entry as a segment of the store's view (its duration text and map are the caller's).
/// `discontinuity_shown`: the entry's discontinuity is written (not the history's first entry,
/// whose discontinuity is in DISCONTINUITY-SEQUENCE already).
fn view_segment<'e>(
    e: &'e Entry,
    copy: Option<&SegmentCopy>,
    discontinuity_shown: bool,
) -> Segment<'e> {
    Segment {
        duration: e.duration,
        pdt_ms: Some(e.pdt_ms),
        // Every segment's date is written, the store's own as the encoder's.
        pdt_tagged: true,
        discontinuity: e.discontinuity && discontinuity_shown,
        source_key: e.source_key.as_deref().map(Cow::Borrowed),
        // The encoder's tags as sent, and the store's reading of its ad cue, if any.
        tags: e
            .tags
            .iter()
            .map(|t| Cow::Borrowed(t.as_str()))
            .chain(
                cues::from_tags(e.tags.iter().map(String::as_str))
                    .map(|c| Cow::Owned(c.store_tag())),
            )
            .collect(),
        uri: Cow::Owned(segment_uri(e.seq, copy.map_or("ts", |c| &c.ext))),
        ..Segment::default()
    }
}

/// A text made once for many segments (always there: made for every entry).
/// A rendition's measured peak bit rate: bits per second of its newest 30 segments, the
/// largest (what `BANDWIDTH` means) — of those at least half as long as the longest: a sliver of
/// a segment (an encoder's last, a few milliseconds of audio) is mostly container overhead;
/// `None` before its first segment.
fn measured_bps(r: &super::Rendition) -> Option<u64> {
    let newest = || r.timeline.entries.iter().rev().take(30);
    let longest = newest().map(|e| e.duration).fold(0.0, f64::max);
    newest()
        .filter(|e| e.duration * 2.0 >= longest)
        .filter_map(|e| {
            e.copies
                .iter()
                .flatten()
                .next()
                .filter(|_| e.duration > 0.0)
                .map(|c| c.size as f64 * 8.0 / e.duration)
        })
        .reduce(f64::max)
        .map(|bps| bps.ceil().max(1.0) as u64)
}

fn borrowed<'a>(text: Option<&'a Cow<'static, str>>) -> Cow<'a, str> {
    Cow::Borrowed(text.map_or("", |t| t.as_ref()))
}

impl ChannelState {
    /// The normalized multivariant playlist: the active input's, with variant URIs rewritten to
    /// `{rendition}/index.m3u8`; one synthesized from the renditions if no input sent one.
    pub fn multivariant(&mut self) -> Option<Rendered> {
        if let Some(c) = &self.multivariant_cache {
            return Some(c.clone());
        }
        let [a, b] = self.preferred_inputs();
        let source = self.inputs[a]
            .multivariant
            .as_ref()
            .map(|m| (a, m))
            .or_else(|| self.inputs[b].multivariant.as_ref().map(|m| (b, m)));
        let text =
            match source {
                Some((input, (doc, m))) => {
                    let mut m = m.clone();
                    let rewrite = |uri: &str| {
                        resolve_segment_uri(&doc.path, uri, &self.cfg.id, input)
                            .map(|p| variant_uri(&rendition_id(&p)))
                    };
                    for v in &mut m.variants {
                        if let Some(u) = rewrite(&v.uri) {
                            v.uri = u;
                        }
                    }
                    for alt in &mut m.alternatives {
                        let Some(path) = alt.uri.as_deref().and_then(|uri| {
                            resolve_segment_uri(&doc.path, uri, &self.cfg.id, input)
                        }) else {
                            continue;
                        };
                        let rid = rendition_id(&path);
                        if let Some(bps) = self.renditions.get(&rid).and_then(measured_bps) {
                            alt.other_attributes.get_or_insert_default().insert(
                                MEDIA_BANDWIDTH_ATTRIBUTE.to_owned(),
                                m3u8_rs::QuotedOrUnquoted::Unquoted(bps.to_string()),
                            );
                        }
                        alt.uri = Some(variant_uri(&rid));
                    }
                    let mut out = Vec::new();
                    m.write_to(&mut out).ok()?;
                    String::from_utf8(out).ok()?
                }
                None => {
                    if self
                        .renditions
                        .values()
                        .all(|r| r.timeline.entries.is_empty())
                    {
                        return None;
                    }
                    let mut text = "#EXTM3U\n#EXT-X-VERSION:3\n".to_owned();
                    // Only renditions with a segment: a playlist naming segments that never arrived
                    // does not make a variant (#16 §3).
                    for (rid, r) in self
                        .renditions
                        .iter()
                        .filter(|(_, r)| !r.timeline.entries.is_empty())
                    {
                        let _ = writeln!(
                            text,
                            "#EXT-X-STREAM-INF:BANDWIDTH={}\n{}",
                            measured_bps(r).unwrap_or(1),
                            variant_uri(rid)
                        );
                    }
                    text
                }
            };
        let r = Rendered::new(text);
        self.multivariant_cache = Some(r.clone());
        Some(r)
    }

    /// The rendition's media playlist with the whole retained history.
    pub fn media_playlist(&mut self, rid: &str) -> Option<Rendered> {
        let head = self.playlist_head(rid)?;
        let order = self.preferred_inputs();
        let r = self.renditions.get_mut(rid)?;
        if let Some(c) = &r.cache {
            return Some(c.clone());
        }
        let entries = &r.timeline.entries;
        // Texts many segments share, made once and borrowed: each initialization segment's URI
        // (fMP4) and each duration.
        let mut maps = BTreeMap::new();
        let mut durations = BTreeMap::new();
        for e in entries {
            if let Some(id) = served(e, order).and_then(|c| c.init.as_deref()) {
                maps.entry(id).or_insert_with(|| init_uri(id));
            }
            durations
                .entry(e.duration.to_bits())
                .or_insert_with(|| Segment::new("", e.duration).duration_text);
        }
        let first = entries.front();
        let playlist = MediaPlaylist {
            version: Some(head.version),
            header_tags: head
                .header_tags
                .iter()
                .map(|t| Cow::Borrowed(t.as_str()))
                .collect(),
            target_duration: Some(
                entries
                    .iter()
                    .map(|e| e.duration.round() as u64)
                    .max()
                    .unwrap_or(0)
                    .max(head.source_td),
            ),
            media_sequence: first
                .map_or_else(|| r.timeline.tail.map_or(0, |t| t.seq + 1), |e| e.seq),
            discontinuity_sequence: first
                .map_or_else(|| r.timeline.tail.map_or(0, |t| t.disc_seq), |e| e.disc_seq),
            segments: entries
                .iter()
                .enumerate()
                .map(|(i, e)| {
                    let copy = served(e, order);
                    Segment {
                        duration_text: borrowed(durations.get(&e.duration.to_bits())),
                        map: copy
                            .and_then(|c| maps.get(c.init.as_deref()?))
                            .map(|uri| Cow::Borrowed(uri.as_str())),
                        ..view_segment(e, copy, i > 0)
                    }
                })
                .collect(),
            ..MediaPlaylist::default()
        };
        let mut text = String::new();
        playlist.write_to(&mut text);
        let rendered = Rendered::new(text);
        r.cache = Some(rendered.clone());
        Some(rendered)
    }

    /// The part of the rendition's history one request needs ([`ViewQuery`]): the window's
    /// segments, with the start of the history and the start of the window's first run
    /// (`#EXT-X-EDGEPACK-VIEW`). O(answer + log history): found by binary search, written from
    /// the window alone.
    pub fn media_view(&mut self, rid: &str, query: &ViewQuery) -> Option<Rendered> {
        let head = self.playlist_head(rid)?;
        let order = self.preferred_inputs();
        let r = self.renditions.get(rid)?;
        let entries = &r.timeline.entries;
        let (range, _) = window::select_by(entries.len(), |i| entries.get(i), &query.spec);
        let in_view = || entries.range(range.clone());
        // What the filter needs around the window: where its first run starts (same
        // discontinuity and key period; both never decrease along the timeline).
        let run_key = |e: &Entry| {
            (
                e.disc_seq,
                window::key_period(e.pdt_ms, query.rotation_seconds),
            )
        };
        let run_start = entries
            .get(range.start)
            .filter(|_| !range.is_empty())
            .map(|first| {
                let key = run_key(first);
                let i = entries.partition_point(|e| run_key(e) < key);
                let e = entries.get(i).unwrap_or(first);
                RunStart {
                    sequence: e.seq,
                    pdt_ms: Some(e.pdt_ms),
                    discontinuity: e.discontinuity && i > 0,
                }
            });
        let next = || {
            entries
                .back()
                .map_or_else(|| r.timeline.tail.map_or(0, |t| t.seq + 1), |e| e.seq + 1)
        };
        let last_disc = || {
            entries
                .back()
                .map_or_else(|| r.timeline.tail.map_or(0, |t| t.disc_seq), |e| e.disc_seq)
        };
        let first = entries.get(range.start);
        let segments: Vec<Segment<'_>> = in_view()
            .enumerate()
            .map(|(i, e)| {
                let copy = served(e, order);
                Segment {
                    duration_text: Segment::new("", e.duration).duration_text,
                    map: copy
                        .and_then(|c| c.init.as_deref())
                        .map(|id| Cow::Owned(init_uri(id))),
                    // A window may start at a discontinuity: it is said, as in the whole history.
                    ..view_segment(e, copy, i > 0 || range.start > 0)
                }
            })
            .collect();
        let mut segments = segments;
        // A view that starts inside an ad break says so on its first segment (unless that
        // segment starts or ends a break itself): the break's start, with when it started, in
        // place of a continuation's cue.
        let edge_of = |t: &Cow<'_, str>| cues::Cue::from_store_tag(t).map(|c| c.edge);
        if let (Some(s), Some(e)) = (segments.first_mut(), first)
            && !s
                .tags
                .iter()
                .any(|t| matches!(edge_of(t), Some(cues::CueEdge::Out | cues::CueEdge::In)))
            && let Some(cue) = r.timeline.break_at(e.seq)
        {
            s.tags.retain(|t| edge_of(t).is_none());
            s.tags.push(Cow::Owned(cue.store_tag()));
        }
        let opening_discontinuity = segments.first().is_some_and(|s| s.discontinuity);
        let playlist = MediaPlaylist {
            version: Some(head.version),
            header_tags: head
                .header_tags
                .iter()
                .map(|t| Cow::Borrowed(t.as_str()))
                .collect(),
            target_duration: Some(
                in_view()
                    .map(|e| e.duration.round() as u64)
                    .max()
                    .unwrap_or(0)
                    .max(head.source_td),
            ),
            media_sequence: first.map_or_else(next, |e| e.seq),
            discontinuity_sequence: match (segments.first(), first) {
                (Some(_), Some(e)) => e.disc_seq - u64::from(opening_discontinuity),
                (None, Some(e)) => e.disc_seq,
                _ => last_disc(),
            },
            view: Some(ViewContext {
                history_start_ms: entries.front().map(|e| e.pdt_ms),
                run_start,
                last_received_ms: entries.back().map(|e| e.received_ms),
                channel_last_received_ms: self
                    .renditions
                    .values()
                    .filter_map(|r| r.timeline.entries.back().map(|e| e.received_ms))
                    .max(),
            }),
            segments,
            ..MediaPlaylist::default()
        };
        let mut text = String::with_capacity(256 + range.len() * 96);
        playlist.write_to(&mut text);
        Some(Rendered::new(text))
    }

    /// Version and target duration of a rendition's playlists, from what its inputs declared.
    fn playlist_head(&self, rid: &str) -> Option<PlaylistHead> {
        let sources = || self.inputs.iter().filter_map(|i| i.renditions.get(rid));
        let preferred = self
            .preferred_inputs()
            .into_iter()
            .find_map(|i| self.inputs[i].renditions.get(rid));
        let header_tags = preferred.map_or_else(Vec::new, |r| {
            r.source
                .header_tags
                .iter()
                .filter(|t| PASSED_HEADER_TAGS.iter().any(|p| t.starts_with(p)))
                .map(|t| t.to_string())
                .collect()
        });
        self.renditions.contains_key(rid).then(|| PlaylistHead {
            header_tags,
            source_td: sources()
                .filter_map(|r| r.source.target_duration)
                .max()
                .unwrap_or(1),
            // Version 3 at least: the durations are decimal.
            version: sources()
                .map(|r| r.source.version.unwrap_or(3).max(3))
                .max()
                .unwrap_or(3),
        })
    }

    /// The `status` document.
    pub fn status(&self) -> serde_json::Value {
        let now = Instant::now();
        let after = self.failover_after();
        let ms = |v: Option<i64>| v.map(format_pdt);
        let inputs: Vec<_> = (0..2)
            .map(|i| {
                let s = &self.inputs[i];
                serde_json::json!({
                    "input": i + 1,
                    "publishing": self.publishing(i, now),
                    "last_update": ms(s.last_indexed_ms),
                    "multivariant": s.multivariant.is_some(),
                    "renditions": s.renditions.iter().map(|(rid, r)| serde_json::json!({
                        "id": rid,
                        "source_path": r.path,
                        "target_duration": r.source.target_duration,
                        "last_media_sequence": r.last_msn,
                        "ended": r.source.ended,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        let renditions: Vec<_> = self
            .renditions
            .iter()
            .map(|(rid, r)| {
                let f = r.timeline.entries.front();
                let l = r.timeline.entries.back();
                serde_json::json!({
                    "id": rid,
                    "segments": r.timeline.entries.len(),
                    "first_sequence": f.map(|e| e.seq),
                    "last_sequence": l.map(|e| e.seq),
                    "first_program_date_time": f.map(|e| format_pdt(e.pdt_ms)),
                    "last_program_date_time": l.map(|e| format_pdt(e.pdt_ms)),
                    "duration_seconds": r.timeline.entries.iter().map(|e| e.duration).sum::<f64>(),
                })
            })
            .collect();
        serde_json::json!({
            "channel": self.cfg.id,
            "active_input": self.active.map(|a| a + 1),
            "failovers": self.failovers,
            "failover_after_seconds": after.as_secs_f64(),
            "startover_window_seconds": self.cfg.startover_window_seconds,
            "last_update": ms(self.inputs.iter().filter_map(|i| i.last_indexed_ms).max()),
            "inputs": inputs,
            "renditions": renditions,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    // ffmpeg's order (PDT after EXTINF), a source key that ends, a cue, an MSN jump.
    const SOURCE: &str = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:7\n\
#EXT-X-KEY:METHOD=AES-128,URI=\"key1.bin\"\n#EXTINF:2.000000,\n\
#EXT-X-PROGRAM-DATE-TIME:2026-11-25T14:00:00.000+0000\ns7.ts\n#EXT-X-CUE-OUT:30\n#EXTINF:1.96,\ns8.ts\n\
#EXT-X-KEY:METHOD=NONE\n#EXTINF:2.000000,\ns9.ts\n";

    const VIEW: &str = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:7\n\
#EXT-X-DISCONTINUITY-SEQUENCE:0\n#EXT-X-KEY:METHOD=AES-128,URI=\"key1.bin\"\n\
#EXT-X-PROGRAM-DATE-TIME:2026-11-25T14:00:00.000Z\n#EXTINF:2.000000,\n7.ts\n#EXT-X-CUE-OUT:30\n\
#EXT-X-EDGEPACK-CUE:EDGE=OUT,DURATION=30.000\n\
#EXT-X-PROGRAM-DATE-TIME:2026-11-25T14:00:02.000Z\n#EXTINF:1.960000,\n8.ts\n#EXT-X-KEY:METHOD=NONE\n\
#EXT-X-PROGRAM-DATE-TIME:2026-11-25T14:00:03.960Z\n#EXTINF:2.000000,\n9.ts\n";

    fn view(st: &mut ChannelState) -> String {
        String::from_utf8(st.media_playlist("hd").unwrap().body.to_vec()).unwrap()
    }

    #[test]
    fn the_view_is_the_contracts_model_with_the_sources_keys_and_cues() {
        let d = tempfile::tempdir().unwrap();
        let mut st = ChannelState::open(channel(), d.path()).unwrap();
        for m in 7..10 {
            upload(&mut st, 0, &format!("s{m}.ts"));
        }
        st.accept_playlist(0, "hd.m3u8", SOURCE.as_bytes()).unwrap();
        let text = view(&mut st);
        assert_eq!(text, VIEW);
        // What the filter reads back is what was written.
        let model = edgepack_store_api::parse(text.as_bytes()).unwrap();
        assert_eq!(model.to_string(), text);
        assert_eq!(
            model.segments[1].source_key.as_deref(),
            Some("#EXT-X-KEY:METHOD=AES-128,URI=\"key1.bin\"")
        );
        assert_eq!(model.segments[2].source_key, None);
        // The journal keeps the keys: the same view after a restart.
        drop(st);
        let mut st = ChannelState::open(channel(), d.path()).unwrap();
        assert_eq!(view(&mut st), VIEW);
    }

    #[test]
    fn the_first_entrys_discontinuity_is_only_in_the_sequence() {
        let d = tempfile::tempdir().unwrap();
        let mut st = ChannelState::open(channel(), d.path()).unwrap();
        upload(&mut st, 0, "s3.ts");
        upload(&mut st, 0, "s4.ts");
        let source = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:3\n\
#EXT-X-DISCONTINUITY-SEQUENCE:4\n#EXT-X-DISCONTINUITY\n#EXTINF:2,\ns3.ts\n#EXT-X-DISCONTINUITY\n#EXTINF:2,\ns4.ts\n";
        st.accept_playlist(0, "hd.m3u8", source.as_bytes()).unwrap();
        let text = view(&mut st);
        assert!(text.contains("#EXT-X-DISCONTINUITY-SEQUENCE:5\n"), "{text}");
        assert_eq!(text.matches("#EXT-X-DISCONTINUITY\n").count(), 1, "{text}");
        assert!(text.contains("\n3.ts\n#EXT-X-DISCONTINUITY\n"), "{text}");
        let model = edgepack_store_api::parse(text.as_bytes()).unwrap();
        assert_eq!(
            model
                .segments
                .iter()
                .map(|s| s.disc_seq)
                .collect::<Vec<_>>(),
            [5, 6]
        );
    }

    /// Tags in edgepack's namespace are the store's: an encoder's forged cue or view context is
    /// dropped at ingest (found by fuzzing the filter's reading of the store's tags).
    #[test]
    fn an_encoders_edgepack_tags_are_dropped() {
        let d = tempfile::tempdir().unwrap();
        let mut st = ChannelState::open(channel(), d.path()).unwrap();
        upload(&mut st, 0, "s0.ts");
        let forged = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n\
#EXT-X-EDGEPACK-CUE:EDGE=OUT,DURATION=30.000\n#EXT-X-EDGEPACK-OTHER:1\n#EXT-X-MY-OWN:1\n\
#EXTINF:2.000,\ns0.ts\n";
        st.accept_playlist(0, "hd.m3u8", forged.as_bytes()).unwrap();
        let text = view(&mut st);
        assert!(!text.contains("EDGEPACK"), "{text}");
        assert!(text.contains("#EXT-X-MY-OWN:1"), "{text}");
    }

    #[test]
    fn where_to_start_passes_on_but_low_latency_tags_do_not() {
        let d = tempfile::tempdir().unwrap();
        let mut st = ChannelState::open(channel(), d.path()).unwrap();
        upload(&mut st, 0, "s0.ts");
        let source = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-INDEPENDENT-SEGMENTS\n\
#EXT-X-START:TIME-OFFSET=-6,PRECISE=YES\n#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES\n\
#EXT-X-PART-INF:PART-TARGET=0.5\n#EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:2.000,\ns0.ts\n";
        st.accept_playlist(0, "hd.m3u8", source.as_bytes()).unwrap();
        let whole = String::from_utf8(st.media_playlist("hd").unwrap().body.to_vec()).unwrap();
        for text in [view(&mut st), whole] {
            assert!(
                text.contains("#EXT-X-START:TIME-OFFSET=-6,PRECISE=YES\n"),
                "{text}"
            );
            assert!(text.contains("#EXT-X-INDEPENDENT-SEGMENTS\n"), "{text}");
            assert!(
                !text.contains("SERVER-CONTROL") && !text.contains("PART-INF"),
                "{text}"
            );
        }
    }

    /// The store reads every cue into its own tag, and a view that starts inside a break says so
    /// on its first segment, with when the break started; one after the break's end does not.
    #[test]
    fn a_view_inside_an_ad_break_names_the_break() {
        use edgepack_store_api::cues::{Cue, CueEdge};
        use edgepack_store_api::window::WindowSpec;
        let d = tempfile::tempdir().unwrap();
        let mut st = ChannelState::open(channel(), d.path()).unwrap();
        let mut source = String::from(
            "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n\
#EXT-X-PROGRAM-DATE-TIME:2026-11-25T14:00:00.000Z\n",
        );
        for m in 0..20 {
            upload(&mut st, 0, &format!("s{m}.ts"));
            match m {
                4 => source.push_str("#EXT-X-DATERANGE:ID=\"b1\",START-DATE=\"2026-11-25T14:00:08.000Z\",PLANNED-DURATION=10,SCTE35-OUT=0xFC\n"),
                5..=8 => source.push_str("#EXT-X-CUE-OUT-CONT:ElapsedTime=2,Duration=10\n"),
                9 => source.push_str("#EXT-X-CUE-IN\n"),
                14 => source.push_str("#EXT-X-CUE-OUT:60\n"),
                _ => {}
            }
            source.push_str(&format!("#EXTINF:2.000,\ns{m}.ts\n"));
        }
        st.accept_playlist(0, "hd.m3u8", source.as_bytes()).unwrap();
        let t0 = 1_795_615_200_000; // 2026-11-25T14:00:00Z
        let mut first_cue = |start_s: i64| {
            let q = ViewQuery {
                spec: WindowSpec {
                    now_ms: t0 + 3_600_000,
                    window_ms: 60_000,
                    delay_ms: 0,
                    start_ms: Some(t0 + start_s * 1000),
                    end_ms: Some(t0 + start_s * 1000 + 3_000),
                },
                rotation_seconds: 0,
            };
            let text = String::from_utf8(st.media_view("hd", &q).unwrap().body.to_vec()).unwrap();
            let pl = edgepack_store_api::parse(text.as_bytes()).unwrap();
            pl.segments[0]
                .tags
                .iter()
                .find_map(|t| Cue::from_store_tag(t))
        };
        let at_start = first_cue(8).expect("the break's start");
        assert_eq!(
            (at_start.edge, at_start.id.as_deref()),
            (CueEdge::Out, Some("b1"))
        );
        assert_eq!(at_start.start_ms, None, "its own cue, not a reminder");
        let inside = first_cue(12).expect("inside the break");
        assert_eq!(inside.edge, CueEdge::Out);
        assert_eq!(inside.id.as_deref(), Some("b1"));
        assert_eq!(inside.start_ms, Some(t0 + 8_000), "when the break started");
        assert_eq!(inside.duration, Some(10.0));
        assert_eq!(
            first_cue(18).map(|c| c.edge),
            Some(CueEdge::In),
            "the IN segment's own"
        );
        assert_eq!(first_cue(22), None, "after the IN");
        assert_eq!(
            first_cue(34).and_then(|c| c.start_ms),
            Some(t0 + 28_000),
            "open break"
        );
    }

    /// A view holds exactly the window of the whole history, and says what the filter would
    /// have found around it there: the start of the history and of the window's first run.
    #[test]
    fn a_view_is_the_window_of_the_whole_history_with_its_context() {
        use edgepack_store_api::window::{WindowSpec, key_period, select};
        let d = tempfile::tempdir().unwrap();
        let mut st = ChannelState::open(channel(), d.path()).unwrap();
        let mut source = String::from(
            "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n\
#EXT-X-PROGRAM-DATE-TIME:2026-11-25T14:00:00.000Z\n",
        );
        for m in 0..60 {
            upload(&mut st, 0, &format!("s{m}.ts"));
            if m == 31 {
                source.push_str(
                    "#EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME:2026-11-25T15:00:01.000Z\n",
                );
            }
            source.push_str(&format!("#EXTINF:2.000,\ns{m}.ts\n"));
        }
        st.accept_playlist(0, "hd.m3u8", source.as_bytes()).unwrap();
        let whole = view(&mut st);
        let whole = edgepack_store_api::parse(whole.as_bytes()).unwrap();
        assert_eq!(whole.segments.len(), 60);
        let t0 = whole.segments[0].pdt_ms.unwrap();
        let t1 = whole.segments[31].pdt_ms.unwrap();
        let live = |window_ms, delay_ms, now_ms| WindowSpec {
            now_ms,
            window_ms,
            delay_ms,
            start_ms: None,
            end_ms: None,
        };
        let shifted = |start_ms, end_ms| WindowSpec {
            now_ms: t1 + 3_600_000,
            window_ms: 60_000,
            delay_ms: 0,
            start_ms: Some(start_ms),
            end_ms,
        };
        for (spec, rotation_seconds) in [
            (live(6_000, 0, 0), 10),
            (live(20_000, 0, 0), 0),
            (live(61_000, 0, 0), 10),
            (live(8_000, 30_000, t1 + 58_000), 10),
            (shifted(t0 + 5_000, Some(t0 + 21_000)), 10),
            (shifted(t0 + 50_000, Some(t1 + 7_000)), 4),
            (shifted(t1 + 2_000, None), 10),
            (shifted(t0 - 100_000, Some(t0 - 50_000)), 10),
            (shifted(t1 + 500_000, None), 10),
        ] {
            let q = ViewQuery {
                spec,
                rotation_seconds,
            };
            let text = st.media_view("hd", &q).unwrap().body;
            let v = edgepack_store_api::parse(&text).unwrap();
            let (range, _) = select(&whole.segments, &spec);
            let expected = &whole.segments[range.clone()];
            let got: Vec<_> = v
                .segments
                .iter()
                .map(|s| {
                    (
                        s.sequence,
                        s.disc_seq,
                        s.pdt_ms,
                        s.discontinuity,
                        s.uri.clone(),
                    )
                })
                .collect();
            let want: Vec<_> = expected
                .iter()
                .map(|s| {
                    (
                        s.sequence,
                        s.disc_seq,
                        s.pdt_ms,
                        s.discontinuity,
                        s.uri.clone(),
                    )
                })
                .collect();
            assert_eq!(got, want, "{q:?}");
            let ctx = v.view.unwrap();
            assert_eq!(ctx.history_start_ms, Some(t0));
            let run = expected.first().map(|f| {
                let k =
                    |s: &Segment<'_>| (s.disc_seq, key_period(s.pdt_ms.unwrap(), rotation_seconds));
                let s = &whole.segments[whole.segments.partition_point(|x| k(x) < k(f))];
                (s.sequence, s.pdt_ms, s.discontinuity)
            });
            assert_eq!(
                ctx.run_start
                    .map(|r| (r.sequence, r.pdt_ms, r.discontinuity)),
                run,
                "{q:?}"
            );
            if expected.is_empty() {
                let next = whole.segments.get(range.start).map_or(60, |s| s.sequence);
                assert_eq!(v.media_sequence, next, "{q:?}");
            }
        }
        assert!(
            st.media_view(
                "nope",
                &ViewQuery {
                    spec: live(1, 0, 0),
                    rotation_seconds: 0
                }
            )
            .is_none()
        );
    }
}
