//! The one media playlist model: what the encoder uploads (read by the store) and the store's
//! normalized view (written by the store, read by the filter).
//!
//! The model interprets the tags in [`REGENERATED`] and writes them itself; every other tag is
//! kept verbatim — playlist-level ones ([`HEADER_TAGS`]) in [`MediaPlaylist::header_tags`],
//! the rest with the segment they precede ([`Segment::tags`]) or, after the last URI, in
//! [`MediaPlaylist::trailing_tags`]. Comments (`#` lines that are not `#EXT` tags) are dropped.
//!
//! Strings borrow from the parsed text where they can ([`Cow::Borrowed`]); a model built by hand
//! uses [`Cow::Owned`], and [`MediaPlaylist::into_owned`] detaches a parsed one from its text.
//!
//! [`MediaPlaylist::write_to`] writes, per segment and in this order: `EXT-X-DISCONTINUITY`,
//! the verbatim tags, `EXT-X-KEY` and `EXT-X-MAP` where they change, `EXT-X-PROGRAM-DATE-TIME`,
//! `EXTINF` with the exact duration text, the URI — the store's view as it has always been
//! written. For every model [`parse`](crate::parse) returns, `parse(write(m)) == m`.

use std::borrow::Cow;
use std::fmt;

use crate::pdt;

/// Tags the model interprets and writes itself, never kept verbatim: the parser reads them into
/// fields and the writer writes them from those fields.
pub const REGENERATED: [&str; Tag::ALL.len()] = {
    let mut names = [""; Tag::ALL.len()];
    let mut i = 0;
    while i < names.len() {
        names[i] = Tag::ALL[i].name();
        i += 1;
    }
    names
};

/// Playlist-level tags kept verbatim in [`MediaPlaylist::header_tags`], wherever they appear.
pub const HEADER_TAGS: [&str; 5] = [
    "#EXT-X-INDEPENDENT-SEGMENTS",
    "#EXT-X-START",
    "#EXT-X-ALLOW-CACHE",
    "#EXT-X-SERVER-CONTROL",
    "#EXT-X-PART-INF",
];

/// The tags in [`REGENERATED`]; the parser and the writer name them only through this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tag {
    ExtM3u,
    Version,
    TargetDuration,
    MediaSequence,
    DiscontinuitySequence,
    PlaylistType,
    EndList,
    Inf,
    ProgramDateTime,
    Discontinuity,
    Map,
    Key,
    View,
}

impl Tag {
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Tag::ExtM3u => "#EXTM3U",
            Tag::Version => "#EXT-X-VERSION",
            Tag::TargetDuration => "#EXT-X-TARGETDURATION",
            Tag::MediaSequence => "#EXT-X-MEDIA-SEQUENCE",
            Tag::DiscontinuitySequence => "#EXT-X-DISCONTINUITY-SEQUENCE",
            Tag::PlaylistType => "#EXT-X-PLAYLIST-TYPE",
            Tag::EndList => "#EXT-X-ENDLIST",
            Tag::Inf => "#EXTINF",
            Tag::ProgramDateTime => "#EXT-X-PROGRAM-DATE-TIME",
            Tag::Discontinuity => "#EXT-X-DISCONTINUITY",
            Tag::Map => "#EXT-X-MAP",
            Tag::Key => "#EXT-X-KEY",
            Tag::View => "#EXT-X-EDGEPACK-VIEW",
        }
    }

    const ALL: [Tag; 13] = [
        Tag::ExtM3u,
        Tag::Version,
        Tag::TargetDuration,
        Tag::MediaSequence,
        Tag::DiscontinuitySequence,
        Tag::PlaylistType,
        Tag::EndList,
        Tag::Inf,
        Tag::ProgramDateTime,
        Tag::Discontinuity,
        Tag::Map,
        Tag::Key,
        Tag::View,
    ];

    /// The regenerated tag called `name` (the part of the line before `:`).
    pub(crate) fn of(name: &str) -> Option<Tag> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }
}

/// True when `line` (a whole tag line, or just its name) is one of [`REGENERATED`].
pub fn is_regenerated(line: &str) -> bool {
    Tag::of(tag_name(line)).is_some()
}

/// The tag's name: the line up to its first `:`.
pub(crate) fn tag_name(line: &str) -> &str {
    line.split_once(':').map_or(line, |(name, _)| name)
}

/// `EXT-X-PLAYLIST-TYPE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaylistType {
    /// Segments are only ever appended.
    Event,
    /// The playlist never changes.
    Vod,
}

impl PlaylistType {
    /// The tag's value.
    pub fn as_str(self) -> &'static str {
        match self {
            PlaylistType::Event => "EVENT",
            PlaylistType::Vod => "VOD",
        }
    }
}

/// What a store view (the part of a rendition's history one request needs) says about the
/// history around it: `#EXT-X-EDGEPACK-VIEW`, written by the store, read by the filter, never
/// shown to a viewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ViewContext {
    /// Program date time of the oldest segment in the store: the start of the startover window.
    pub history_start_ms: Option<i64>,
    /// The first segment in the store of the run the view's first segment belongs to.
    pub run_start: Option<RunStart>,
    /// When the store received the rendition's newest segment (wall clock, epoch ms): a
    /// rendition whose encoder stopped has a stale manifest.
    pub last_received_ms: Option<i64>,
    /// When the store received the newest segment of any rendition of the channel: a rendition
    /// far behind the others is missing from the channel.
    pub channel_last_received_ms: Option<i64>,
}

/// The first segment of a run: the segments of one discontinuity and one key period, which share
/// an initialization segment and (encrypted) a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunStart {
    pub sequence: u64,
    pub pdt_ms: Option<i64>,
    /// It follows a discontinuity.
    pub discontinuity: bool,
}

impl ViewContext {
    /// The tag's attribute list.
    fn write_attributes<W: fmt::Write>(&self, out: &mut W) -> fmt::Result {
        let mut sep = "";
        if let Some(ms) = self.history_start_ms {
            write!(out, "HISTORY-START={ms}")?;
            sep = ",";
        }
        if let Some(r) = self.run_start {
            write!(out, "{sep}RUN-START={}", r.sequence)?;
            if let Some(ms) = r.pdt_ms {
                write!(out, ",RUN-START-DATE={ms}")?;
            }
            if r.discontinuity {
                write!(out, ",RUN-START-DISCONTINUITY=YES")?;
            }
            sep = ",";
        }
        if let Some(ms) = self.last_received_ms {
            write!(out, "{sep}LAST-RECEIVED={ms}")?;
            sep = ",";
        }
        if let Some(ms) = self.channel_last_received_ms {
            write!(out, "{sep}CHANNEL-LAST-RECEIVED={ms}")?;
        }
        Ok(())
    }
}

/// One segment.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Segment<'a> {
    /// Media sequence number: the playlist's `media_sequence` plus the segment's index (set by
    /// the parser and [`MediaPlaylist::renumber`]; the writer does not read it).
    pub sequence: u64,
    /// `EXTINF` duration in seconds.
    pub duration: f64,
    /// `EXTINF` duration exactly as written (`2.000000`); the writer writes this, not `duration`.
    pub duration_text: Cow<'a, str>,
    /// `EXTINF` title (after the comma), often empty.
    pub title: Cow<'a, str>,
    /// Program date time in epoch ms: the segment's own `EXT-X-PROGRAM-DATE-TIME`, else
    /// extrapolated from the segment before ([`pdt::extrapolate_pdt_ms`]: its PDT plus its
    /// duration, never across a discontinuity), else `None`.
    pub pdt_ms: Option<i64>,
    /// The playlist gave this segment's PDT in a tag (false: extrapolated or none). The writer
    /// writes the tag when this is set, and wherever extrapolation would not give `pdt_ms`.
    pub pdt_tagged: bool,
    /// An `EXT-X-DISCONTINUITY` precedes this segment.
    pub discontinuity: bool,
    /// Discontinuity sequence number: the playlist's `discontinuity_sequence` plus the
    /// discontinuities up to and including this segment's (set by the parser and
    /// [`MediaPlaylist::renumber`]; the writer does not read it).
    pub disc_seq: u64,
    /// The source's `EXT-X-KEY` line in effect for this segment (the last one before it;
    /// `METHOD=NONE` ends it).
    pub source_key: Option<Cow<'a, str>>,
    /// fMP4: URI of the `EXT-X-MAP` (initialization segment) in effect for this segment.
    pub map: Option<Cow<'a, str>>,
    /// Other tags before the URI, verbatim and in order (cues, `EXT-X-DATERANGE`, …); never one
    /// of [`REGENERATED`] or [`HEADER_TAGS`].
    pub tags: Vec<Cow<'a, str>>,
    /// URI as listed (`{sequence}.{ext}` in the store's view).
    pub uri: Cow<'a, str>,
}

impl<'a> Segment<'a> {
    /// A segment with only its URI and duration (written with six decimals, as the store does).
    pub fn new(uri: impl Into<Cow<'a, str>>, duration: f64) -> Self {
        Segment {
            duration,
            duration_text: Cow::Owned(format!("{duration:.6}")),
            uri: uri.into(),
            ..Segment::default()
        }
    }

    /// End of the segment in epoch ms: its PDT plus its duration.
    pub fn end_ms(&self) -> Option<i64> {
        self.pdt_ms
            .and_then(|p| pdt::extrapolate_pdt_ms(p, self.duration, false))
    }

    /// File extension of the URI (`ts` when it has none).
    pub fn ext(&self) -> &str {
        let name = self.uri.split(['?', '#']).next().unwrap_or("");
        name.rsplit_once('.').map_or("ts", |(_, e)| e)
    }

    /// The same segment, owning its strings.
    pub fn into_owned(self) -> Segment<'static> {
        Segment {
            sequence: self.sequence,
            duration: self.duration,
            duration_text: owned(self.duration_text),
            title: owned(self.title),
            pdt_ms: self.pdt_ms,
            pdt_tagged: self.pdt_tagged,
            discontinuity: self.discontinuity,
            disc_seq: self.disc_seq,
            source_key: self.source_key.map(owned),
            map: self.map.map(owned),
            tags: self.tags.into_iter().map(owned).collect(),
            uri: owned(self.uri),
        }
    }
}

fn owned(s: Cow<'_, str>) -> Cow<'static, str> {
    Cow::Owned(s.into_owned())
}

/// A media playlist.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MediaPlaylist<'a> {
    /// `EXT-X-VERSION`, if given.
    pub version: Option<u32>,
    /// `EXT-X-TARGETDURATION`, if given (an upload must give it: [`crate::parse_ingest`]).
    pub target_duration: Option<u64>,
    /// `EXT-X-MEDIA-SEQUENCE` (0 when absent): the first segment's sequence number.
    pub media_sequence: u64,
    /// `EXT-X-DISCONTINUITY-SEQUENCE` (0 when absent).
    pub discontinuity_sequence: u64,
    /// `EXT-X-PLAYLIST-TYPE`, if given.
    pub playlist_type: Option<PlaylistType>,
    /// `EXT-X-ENDLIST` was present (written last).
    pub ended: bool,
    /// Playlist-level tags ([`HEADER_TAGS`]) kept verbatim, in order.
    pub header_tags: Vec<Cow<'a, str>>,
    /// The segments, oldest first.
    pub segments: Vec<Segment<'a>>,
    /// Tags after the last segment's URI, verbatim (`EXT-X-ENDLIST` is `ended`).
    pub trailing_tags: Vec<Cow<'a, str>>,
    /// A store view's context (`#EXT-X-EDGEPACK-VIEW`); `None` for a whole history.
    pub view: Option<ViewContext>,
}

impl MediaPlaylist<'_> {
    /// Sets each segment's `sequence` and `disc_seq` from `media_sequence`,
    /// `discontinuity_sequence` and the discontinuity flags, as the parser does.
    pub fn renumber(&mut self) {
        let mut disc_seq = self.discontinuity_sequence;
        for (i, s) in self.segments.iter_mut().enumerate() {
            disc_seq += u64::from(s.discontinuity);
            s.sequence = self.media_sequence + i as u64;
            s.disc_seq = disc_seq;
        }
    }

    /// The same playlist, owning its strings (to keep it after the text is gone).
    pub fn into_owned(self) -> MediaPlaylist<'static> {
        MediaPlaylist {
            version: self.version,
            target_duration: self.target_duration,
            media_sequence: self.media_sequence,
            discontinuity_sequence: self.discontinuity_sequence,
            playlist_type: self.playlist_type,
            ended: self.ended,
            header_tags: self.header_tags.into_iter().map(owned).collect(),
            segments: self.segments.into_iter().map(Segment::into_owned).collect(),
            trailing_tags: self.trailing_tags.into_iter().map(owned).collect(),
            view: self.view,
        }
    }

    /// Appends the playlist's text to `out`.
    pub fn write_to(&self, out: &mut String) {
        out.reserve(160 + self.segments.len() * 96);
        // Writing to a String cannot fail.
        let _ = self.write_fmt_to(out);
    }

    fn write_fmt_to<W: fmt::Write>(&self, out: &mut W) -> fmt::Result {
        writeln!(out, "{}", Tag::ExtM3u.name())?;
        if let Some(v) = self.version {
            writeln!(out, "{}:{v}", Tag::Version.name())?;
        }
        if let Some(td) = self.target_duration {
            writeln!(out, "{}:{td}", Tag::TargetDuration.name())?;
        }
        writeln!(
            out,
            "{}:{}\n{}:{}",
            Tag::MediaSequence.name(),
            self.media_sequence,
            Tag::DiscontinuitySequence.name(),
            self.discontinuity_sequence
        )?;
        if let Some(t) = self.playlist_type {
            writeln!(out, "{}:{}", Tag::PlaylistType.name(), t.as_str())?;
        }
        if let Some(v) = &self.view {
            write!(out, "{}:", Tag::View.name())?;
            v.write_attributes(out)?;
            writeln!(out)?;
        }
        lines(out, &self.header_tags)?;
        let mut previous: Option<&Segment<'_>> = None;
        for s in &self.segments {
            write_segment(out, s, previous)?;
            previous = Some(s);
        }
        lines(out, &self.trailing_tags)?;
        if self.ended {
            writeln!(out, "{}", Tag::EndList.name())?;
        }
        Ok(())
    }
}

fn lines<W: fmt::Write>(out: &mut W, tags: &[Cow<'_, str>]) -> fmt::Result {
    tags.iter().try_for_each(|t| writeln!(out, "{t}"))
}

fn write_segment<W: fmt::Write>(
    out: &mut W,
    s: &Segment<'_>,
    previous: Option<&Segment<'_>>,
) -> fmt::Result {
    if s.discontinuity {
        writeln!(out, "{}", Tag::Discontinuity.name())?;
    }
    lines(out, &s.tags)?;
    let previous_key = previous.and_then(|p| p.source_key.as_deref());
    if s.source_key.as_deref() != previous_key {
        match &s.source_key {
            Some(key) => writeln!(out, "{key}")?,
            None => writeln!(out, "{}:METHOD=NONE", Tag::Key.name())?,
        }
    }
    // HLS cannot end a map, so a `None` after `Some` is not written (and reads back as `Some`).
    if let Some(map) = &s.map
        && previous.and_then(|p| p.map.as_deref()) != Some(map)
    {
        writeln!(out, "{}:URI=\"{map}\"", Tag::Map.name())?;
    }
    if let Some(ms) = s.pdt_ms {
        let extrapolated = previous
            .and_then(|p| p.pdt_ms.zip(Some(p.duration)))
            .and_then(|(p, d)| pdt::extrapolate_pdt_ms(p, d, s.discontinuity));
        if s.pdt_tagged || extrapolated != Some(ms) {
            write!(out, "{}:", Tag::ProgramDateTime.name())?;
            pdt::write_pdt(out, ms)?;
            out.write_char('\n')?;
        }
    }
    writeln!(
        out,
        "{}:{},{}\n{}",
        Tag::Inf.name(),
        s.duration_text,
        s.title,
        s.uri
    )
}

impl fmt::Display for MediaPlaylist<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_fmt_to(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn one_list_names_the_regenerated_tags() {
        for name in REGENERATED {
            let tag = Tag::of(name).unwrap();
            assert_eq!(tag.name(), name);
            assert!(is_regenerated(&format!("{name}:1")));
        }
        assert!(!is_regenerated("#EXT-X-CUE-OUT:30"));
        assert!(HEADER_TAGS.iter().all(|t| !is_regenerated(t)));
    }

    #[test]
    fn segment_end_and_extension() {
        let mut s = Segment::new("12.m4s?x=1.ts", 1.96);
        assert_eq!(s.duration_text, "1.960000");
        assert_eq!(s.ext(), "m4s");
        assert_eq!(s.end_ms(), None);
        s.pdt_ms = Some(1_000);
        assert_eq!(s.end_ms(), Some(2_960));
        assert_eq!(Segment::new("noext", 2.0).ext(), "ts");
    }

    #[test]
    fn a_model_built_by_hand_is_written_as_the_store_writes_it() {
        let seg = |uri: &'static str, pdt_ms| Segment {
            pdt_ms: Some(pdt_ms),
            pdt_tagged: true,
            map: Some(Cow::Borrowed("init-a.mp4")),
            ..Segment::new(uri, 2.0)
        };
        let mut pl = MediaPlaylist {
            version: Some(7),
            target_duration: Some(2),
            media_sequence: 4,
            segments: vec![seg("4.m4s", 0), seg("5.m4s", 2_000)],
            ..MediaPlaylist::default()
        };
        pl.segments[1].discontinuity = true;
        pl.segments[1].tags.push(Cow::Borrowed("#EXT-X-CUE-IN"));
        pl.renumber();
        assert_eq!(
            (pl.segments[1].sequence, pl.segments[1].disc_seq),
            (5, 1),
            "renumbered"
        );
        assert_eq!(
            pl.to_string(),
            "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:4\n\
#EXT-X-DISCONTINUITY-SEQUENCE:0\n#EXT-X-MAP:URI=\"init-a.mp4\"\n\
#EXT-X-PROGRAM-DATE-TIME:1970-01-01T00:00:00.000Z\n#EXTINF:2.000000,\n4.m4s\n\
#EXT-X-DISCONTINUITY\n#EXT-X-CUE-IN\n#EXT-X-PROGRAM-DATE-TIME:1970-01-01T00:00:02.000Z\n\
#EXTINF:2.000000,\n5.m4s\n"
        );
        let mut text = String::new();
        pl.write_to(&mut text);
        assert_eq!(text, pl.to_string());
    }

    #[test]
    fn untagged_pdts_are_written_only_where_extrapolation_would_miss_them() {
        let mut pl = MediaPlaylist::default();
        for (i, pdt_ms) in [Some(10_000), Some(12_000), Some(20_000), None]
            .into_iter()
            .enumerate()
        {
            pl.segments.push(Segment {
                pdt_ms,
                ..Segment::new(format!("{i}.ts"), 2.0)
            });
        }
        let text = pl.to_string();
        assert_eq!(text.matches("PROGRAM-DATE-TIME").count(), 2, "{text}");
        assert!(text.contains("1970-01-01T00:00:10.000Z"), "{text}");
        assert!(text.contains("1970-01-01T00:00:20.000Z"), "{text}");
    }

    #[test]
    fn source_keys_are_written_where_they_change() {
        let key = |k: Option<&'static str>| Segment {
            source_key: k.map(Cow::Borrowed),
            ..Segment::new("s.ts", 2.0)
        };
        let pl = MediaPlaylist {
            segments: vec![
                key(None),
                key(Some("#EXT-X-KEY:METHOD=AES-128,URI=\"k1\"")),
                key(Some("#EXT-X-KEY:METHOD=AES-128,URI=\"k1\"")),
                key(None),
            ],
            ..MediaPlaylist::default()
        };
        let text = pl.to_string();
        let keys: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("#EXT-X-KEY"))
            .collect();
        assert_eq!(
            keys,
            [
                "#EXT-X-KEY:METHOD=AES-128,URI=\"k1\"",
                "#EXT-X-KEY:METHOD=NONE"
            ]
        );
    }

    #[test]
    fn into_owned_keeps_everything() {
        let text = String::from("#EXTM3U\n#EXT-X-CUE-OUT:30\n#EXTINF:2.0,t\na.ts\n#EXT-X-X\n");
        let pl = crate::parse(text.as_bytes()).unwrap();
        let owned = pl.clone().into_owned();
        drop(text);
        assert_eq!(owned.segments[0].tags, ["#EXT-X-CUE-OUT:30"]);
        assert_eq!(owned.trailing_tags, ["#EXT-X-X"]);
        assert_eq!(owned.segments[0].title, "t");
    }
}
