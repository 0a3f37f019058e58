//! fMP4 (CMAF) ingest read back into tracks and runs: the initialization segment (`moov`: each
//! track's id, timescale and sample entry, `mvex`/`trex` defaults) and a media segment (one or
//! more `moof` + `mdat`), so that what an encoder pushed as fMP4 is repackaged exactly like
//! MPEG-TS ingest — one track per fragment, common encryption, Smooth Streaming.
//!
//! Timing follows the module's rule ([`super`]): the segment's first video frame (else its first
//! audio sample) is presented at the program date time; every track keeps its offset from that
//! frame. Video comes out at 90 kHz and AAC at its sample rate, whatever the encoder's
//! timescales, so a DASH manifest states the same times for both kinds of ingest. Rescaling is
//! done on cumulative times, so durations never drift.

use super::adts::{self, AacConfig};
use super::h264::{self, AvcConfig};
use super::mp4::{Codec, Run, Sample, Track};
use super::{CmafError, Select};

fn malformed(why: impl Into<String>) -> CmafError {
    CmafError::Malformed(why.into())
}

/// One box: its type, its payload, and where the box starts in the buffer it was read from.
struct BoxRef<'a> {
    kind: [u8; 4],
    start: usize,
    payload: &'a [u8],
}

/// The boxes one after another in `data`; `base` is where `data` starts in its file (for
/// positions). A box that does not fit is malformed.
fn children(data: &[u8], base: usize) -> Result<Vec<BoxRef<'_>>, CmafError> {
    let mut out = Vec::new();
    let mut i = 0usize;
    while i < data.len() {
        let head = data
            .get(i..i + 8)
            .ok_or_else(|| malformed(format!("a box header cut short at byte {}", base + i)))?;
        let kind = [head[4], head[5], head[6], head[7]];
        let size32 = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        let (size, header) = match size32 {
            0 => (data.len() - i, 8),
            1 => {
                let large = data
                    .get(i + 8..i + 16)
                    .ok_or_else(|| malformed("a 64-bit box size cut short"))?;
                let mut b = [0u8; 8];
                b.copy_from_slice(large);
                (
                    usize::try_from(u64::from_be_bytes(b)).unwrap_or(usize::MAX),
                    16,
                )
            }
            n => (n as usize, 8),
        };
        let end = i
            .checked_add(size)
            .filter(|e| size >= header && *e <= data.len())
            .ok_or_else(|| {
                malformed(format!(
                    "box '{}' of {size} bytes at byte {} does not fit its parent",
                    String::from_utf8_lossy(&kind),
                    base + i
                ))
            })?;
        out.push(BoxRef {
            kind,
            start: base + i,
            payload: &data[i + header..end],
        });
        i = end;
    }
    Ok(out)
}

fn child<'a>(boxes: &'a [BoxRef<'a>], kind: &[u8; 4]) -> Option<&'a BoxRef<'a>> {
    boxes.iter().find(|b| &b.kind == kind)
}

fn need<'a>(
    boxes: &'a [BoxRef<'a>],
    kind: &[u8; 4],
    within: &str,
) -> Result<&'a BoxRef<'a>, CmafError> {
    child(boxes, kind).ok_or_else(|| {
        malformed(format!(
            "no '{}' box in '{within}'",
            String::from_utf8_lossy(kind)
        ))
    })
}

/// Big-endian reads that fail as malformed instead of panicking.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn new(data: &'a [u8], what: &'static str) -> Self {
        Self { data, pos: 0, what }
    }
    fn bytes(&mut self, n: usize) -> Result<&'a [u8], CmafError> {
        let b = self
            .pos
            .checked_add(n)
            .and_then(|end| self.data.get(self.pos..end))
            .ok_or_else(|| malformed(format!("'{}' cut short", self.what)))?;
        self.pos += n;
        Ok(b)
    }
    fn u8(&mut self) -> Result<u8, CmafError> {
        Ok(self.bytes(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, CmafError> {
        let b = self.bytes(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, CmafError> {
        let b = self.bytes(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, CmafError> {
        Ok((u64::from(self.u32()?) << 32) | u64::from(self.u32()?))
    }
    fn skip(&mut self, n: usize) -> Result<(), CmafError> {
        self.bytes(n).map(|_| ())
    }
    fn rest(&self) -> &'a [u8] {
        self.data.get(self.pos..).unwrap_or(&[])
    }
}

/// What a track of the initialization segment carries.
#[derive(Debug, Clone, PartialEq)]
pub enum Carried {
    Video(Result<AvcConfig, String>),
    Audio(Result<AacConfig, String>),
}

/// `trex`: what a fragment's samples are when `tfhd`/`trun` do not say.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Defaults {
    duration: u32,
    size: u32,
}

/// A video or audio track of an fMP4 initialization segment.
#[derive(Debug, Clone, PartialEq)]
pub struct InitTrack {
    pub id: u32,
    pub timescale: u32,
    pub carried: Carried,
    /// AVC: bytes of each NAL unit's length in a sample (`avcC` `lengthSizeMinusOne` + 1).
    nal_length_size: u8,
    defaults: Defaults,
    /// The edit list (`elst`): an empty edit first (in the movie's timescale), then where the
    /// media starts (in the track's). Encoders such as ffmpeg state the tracks' offsets there
    /// and start every `tfdt` at 0.
    empty: u64,
    media_time: i64,
}

/// The video and audio tracks of an fMP4 initialization segment (other tracks — text, timed
/// metadata — are not repackaged and are left out).
#[derive(Debug, Clone, PartialEq)]
pub struct Init {
    pub tracks: Vec<InitTrack>,
    /// `mvhd`'s timescale: what edit lists' durations count in.
    movie_timescale: u32,
}

/// Reads an fMP4 initialization segment.
pub fn read_init(data: &[u8]) -> Result<Init, CmafError> {
    let top = children(data, 0)?;
    let moov = need(&top, b"moov", "the initialization segment")?;
    let moov_boxes = children(moov.payload, moov.start + 8)?;
    let mvhd = need(&moov_boxes, b"mvhd", "moov")?;
    let mut r = Reader::new(mvhd.payload, "mvhd");
    let version = r.u8()?;
    r.skip(3)?;
    r.skip(if version == 1 { 16 } else { 8 })?;
    let movie_timescale = r.u32()?.max(1);
    let mut defaults = Vec::new();
    if let Some(mvex) = child(&moov_boxes, b"mvex") {
        for trex in children(mvex.payload, mvex.start + 8)?
            .iter()
            .filter(|b| &b.kind == b"trex")
        {
            let mut r = Reader::new(trex.payload, "trex");
            r.skip(4)?;
            let id = r.u32()?;
            r.skip(4)?; // default_sample_description_index
            defaults.push((
                id,
                Defaults {
                    duration: r.u32()?,
                    size: r.u32()?,
                },
            ));
        }
    }
    let mut tracks = Vec::new();
    for trak in moov_boxes.iter().filter(|b| &b.kind == b"trak") {
        if let Some(t) = read_trak(trak, &defaults)? {
            tracks.push(t);
        }
    }
    if tracks.is_empty() {
        return Err(malformed(
            "the initialization segment has no video or audio track",
        ));
    }
    Ok(Init {
        tracks,
        movie_timescale,
    })
}

fn read_trak(
    trak: &BoxRef<'_>,
    defaults: &[(u32, Defaults)],
) -> Result<Option<InitTrack>, CmafError> {
    let boxes = children(trak.payload, trak.start + 8)?;
    let tkhd = need(&boxes, b"tkhd", "trak")?;
    let mut r = Reader::new(tkhd.payload, "tkhd");
    let version = r.u8()?;
    r.skip(3)?;
    r.skip(if version == 1 { 16 } else { 8 })?;
    let id = r.u32()?;
    let (empty, media_time) = match child(&boxes, b"edts") {
        Some(edts) => edit_list(edts)?,
        None => (0, 0),
    };
    let mdia = need(&boxes, b"mdia", "trak")?;
    let mdia_boxes = children(mdia.payload, mdia.start + 8)?;
    let mdhd = need(&mdia_boxes, b"mdhd", "mdia")?;
    let mut r = Reader::new(mdhd.payload, "mdhd");
    let version = r.u8()?;
    r.skip(3)?;
    r.skip(if version == 1 { 16 } else { 8 })?;
    let timescale = r.u32()?;
    if timescale == 0 {
        return Err(malformed(format!("track {id} has a timescale of 0")));
    }
    let hdlr = need(&mdia_boxes, b"hdlr", "mdia")?;
    let mut r = Reader::new(hdlr.payload, "hdlr");
    r.skip(8)?;
    let handler = r.bytes(4)?;
    let video = match handler {
        b"vide" => true,
        b"soun" => false,
        _ => return Ok(None),
    };
    let minf = need(&mdia_boxes, b"minf", "mdia")?;
    let minf_boxes = children(minf.payload, minf.start + 8)?;
    let stbl = need(&minf_boxes, b"stbl", "minf")?;
    let stbl_boxes = children(stbl.payload, stbl.start + 8)?;
    let stsd = need(&stbl_boxes, b"stsd", "stbl")?;
    // stsd: version/flags, entry count, then the first sample entry (the one fragments use:
    // CMAF allows one).
    let entries = stsd
        .payload
        .get(8..)
        .ok_or_else(|| malformed("'stsd' cut short"))?;
    let entries = children(entries, stsd.start + 16)?;
    let entry = entries
        .first()
        .ok_or_else(|| malformed(format!("track {id} has no sample entry")))?;
    let name = String::from_utf8_lossy(&entry.kind).into_owned();
    let mut nal_length_size = 4;
    let carried = if video {
        Carried::Video(match &entry.kind {
            b"avc1" | b"avc3" => {
                let (config, len) = avc_entry(entry)?;
                nal_length_size = len;
                config.map_err(|e| e.to_string())
            }
            b"encv" => Err("already encrypted (encv); edgepack encrypts clear ingest".into()),
            _ => Err(format!(
                "video '{name}'; edgepack repackages H.264 (avc1/avc3) only"
            )),
        })
    } else {
        Carried::Audio(match &entry.kind {
            b"mp4a" => aac_entry(entry)?.map_err(|e| e.to_string()),
            b"enca" => Err("already encrypted (enca); edgepack encrypts clear ingest".into()),
            _ => Err(format!(
                "audio '{name}'; edgepack repackages AAC (mp4a.40) only"
            )),
        })
    };
    Ok(Some(InitTrack {
        id,
        timescale,
        carried,
        nal_length_size,
        defaults: defaults
            .iter()
            .find(|(t, _)| *t == id)
            .map(|(_, d)| *d)
            .unwrap_or_default(),
        empty,
        media_time,
    }))
}

/// An edit list's leading empty edits (their total duration) and the first media edit's start.
fn edit_list(edts: &BoxRef<'_>) -> Result<(u64, i64), CmafError> {
    let boxes = children(edts.payload, edts.start + 8)?;
    let Some(elst) = child(&boxes, b"elst") else {
        return Ok((0, 0));
    };
    let mut r = Reader::new(elst.payload, "elst");
    let version = r.u8()?;
    r.skip(3)?;
    let count = r.u32()?;
    let mut empty = 0u64;
    for _ in 0..count {
        let (duration, media_time) = if version == 1 {
            (r.u64()?, r.u64()? as i64)
        } else {
            (u64::from(r.u32()?), i64::from(r.u32()? as i32))
        };
        r.skip(4)?; // media rate
        if media_time == -1 {
            empty = empty.saturating_add(duration);
        } else {
            return Ok((empty, media_time.max(0)));
        }
    }
    Ok((empty, 0))
}

/// An `avc1`/`avc3` sample entry: its `avcC` (the first SPS and PPS) and NAL length size.
fn avc_entry(entry: &BoxRef<'_>) -> Result<(Result<AvcConfig, CmafError>, u8), CmafError> {
    // VisualSampleEntry: 78 bytes before its child boxes.
    let inner = entry
        .payload
        .get(78..)
        .ok_or_else(|| malformed("a video sample entry cut short"))?;
    let boxes = children(inner, entry.start + 8 + 78)?;
    let avcc = need(&boxes, b"avcC", "the video sample entry")?;
    let mut r = Reader::new(avcc.payload, "avcC");
    r.skip(4)?;
    let nal_length_size = (r.u8()? & 3) + 1;
    let sps_count = r.u8()? & 0x1F;
    let mut sps = None;
    for _ in 0..sps_count {
        let n = usize::from(r.u16()?);
        let b = r.bytes(n)?;
        sps.get_or_insert(b);
    }
    let pps_count = r.u8()?;
    let mut pps = None;
    for _ in 0..pps_count {
        let n = usize::from(r.u16()?);
        let b = r.bytes(n)?;
        pps.get_or_insert(b);
    }
    let config = match (sps, pps) {
        (Some(s), Some(p)) => h264::parse_sps(s, p),
        _ => Err(CmafError::Unsupported(
            "an avcC without SPS and PPS (parameter sets only in band) is not supported".into(),
        )),
    };
    Ok((config, nal_length_size))
}

/// An `mp4a` sample entry: the `AudioSpecificConfig` in its `esds`.
fn aac_entry(entry: &BoxRef<'_>) -> Result<Result<AacConfig, CmafError>, CmafError> {
    // AudioSampleEntry: 28 bytes before its child boxes.
    let inner = entry
        .payload
        .get(28..)
        .ok_or_else(|| malformed("an audio sample entry cut short"))?;
    let boxes = children(inner, entry.start + 8 + 28)?;
    let esds = need(&boxes, b"esds", "the audio sample entry")?;
    let Some(asc) = decoder_specific_info(esds.payload.get(4..).unwrap_or(&[]))? else {
        return Err(malformed("an esds without a DecoderSpecificInfo"));
    };
    Ok(adts::from_audio_specific_config(asc))
}

/// The DecoderSpecificInfo (tag 5) inside an ES_Descriptor (ISO/IEC 14496-1 descriptors).
fn decoder_specific_info(data: &[u8]) -> Result<Option<&[u8]>, CmafError> {
    let mut r = Reader::new(data, "esds");
    while !r.rest().is_empty() {
        let tag = r.u8()?;
        let mut len = 0usize;
        for _ in 0..4 {
            let b = r.u8()?;
            len = (len << 7) | usize::from(b & 0x7F);
            if b & 0x80 == 0 {
                break;
            }
        }
        match tag {
            // ES_Descriptor: ES_ID, flags (and what they announce), then its descriptors.
            3 => {
                r.skip(2)?;
                let flags = r.u8()?;
                if flags & 0x80 != 0 {
                    r.skip(2)?;
                }
                if flags & 0x40 != 0 {
                    let n = r.u8()?;
                    r.skip(usize::from(n))?;
                }
                if flags & 0x20 != 0 {
                    r.skip(2)?;
                }
            }
            // DecoderConfigDescriptor: 13 bytes, then its descriptors.
            4 => r.skip(13)?,
            5 => return Ok(Some(r.bytes(len)?)),
            _ => r.skip(len)?,
        }
    }
    Ok(None)
}

/// One sample as a fragment states it, in the track's own timescale.
#[derive(Debug, Clone, Copy)]
struct InSample {
    duration: u32,
    size: u32,
    composition_offset: i64,
    /// Where its data is in the segment.
    offset: usize,
}

/// A track's samples in the segment, in decode order, and the first one's decode time.
struct InRun {
    track: usize,
    base: u64,
    samples: Vec<InSample>,
}

/// Reads every `moof` of a media segment into one run per track.
fn read_fragments(segment: &[u8], init: &Init) -> Result<Vec<InRun>, CmafError> {
    let mut runs: Vec<InRun> = Vec::new();
    for moof in children(segment, 0)?.iter().filter(|b| &b.kind == b"moof") {
        for traf in children(moof.payload, moof.start + 8)?
            .iter()
            .filter(|b| &b.kind == b"traf")
        {
            read_traf(traf, moof.start, init, &mut runs)?;
        }
    }
    for run in &runs {
        for s in &run.samples {
            let end = s.offset.checked_add(s.size as usize);
            if end.is_none_or(|e| e > segment.len()) {
                return Err(malformed(format!(
                    "a sample of {} bytes at byte {} lies outside the segment ({} bytes)",
                    s.size,
                    s.offset,
                    segment.len()
                )));
            }
        }
    }
    Ok(runs)
}

fn read_traf(
    traf: &BoxRef<'_>,
    moof_start: usize,
    init: &Init,
    runs: &mut Vec<InRun>,
) -> Result<(), CmafError> {
    let boxes = children(traf.payload, traf.start + 8)?;
    let tfhd = need(&boxes, b"tfhd", "traf")?;
    let mut r = Reader::new(tfhd.payload, "tfhd");
    let flags = r.u32()? & 0x00FF_FFFF;
    let id = r.u32()?;
    let Some(track) = init.tracks.iter().position(|t| t.id == id) else {
        // A track the init did not describe as video or audio (text, metadata): not ours.
        return Ok(());
    };
    let mut d = init.tracks[track].defaults;
    // Without an explicit base, data offsets count from the moof (CMAF sets
    // default-base-is-moof; encoders that set neither mean the same for one traf per moof).
    let mut base = moof_start;
    if flags & 0x01 != 0 {
        base =
            usize::try_from(r.u64()?).map_err(|_| malformed("a base data offset beyond memory"))?;
    }
    if flags & 0x02 != 0 {
        r.skip(4)?;
    }
    if flags & 0x08 != 0 {
        d.duration = r.u32()?;
    }
    if flags & 0x10 != 0 {
        d.size = r.u32()?;
    }
    let tfdt = need(&boxes, b"tfdt", "traf")?;
    let mut r = Reader::new(tfdt.payload, "tfdt");
    let decode_time = if r.u8()? == 1 {
        r.skip(3)?;
        r.u64()?
    } else {
        r.skip(3)?;
        u64::from(r.u32()?)
    };
    let at = match runs.iter().position(|run| run.track == track) {
        Some(i) => i,
        None => {
            runs.push(InRun {
                track,
                base: decode_time,
                samples: Vec::new(),
            });
            runs.len() - 1
        }
    };
    let mut next_offset = base;
    for trun in boxes.iter().filter(|b| &b.kind == b"trun") {
        let mut r = Reader::new(trun.payload, "trun");
        let vf = r.u32()?;
        let (version, tf) = (vf >> 24, vf & 0x00FF_FFFF);
        let count = r.u32()? as usize;
        if count > trun.payload.len() {
            return Err(malformed(format!(
                "a trun of {count} samples in {} bytes",
                trun.payload.len()
            )));
        }
        let mut offset = next_offset;
        if tf & 0x01 != 0 {
            let rel = i64::from(r.u32()? as i32);
            offset = usize::try_from(base as i64 + rel)
                .map_err(|_| malformed("a trun data offset before the file"))?;
        }
        if tf & 0x04 != 0 {
            r.u32()?; // first_sample_flags
        }
        let samples = &mut runs[at].samples;
        samples.reserve(count);
        for _ in 0..count {
            let duration = if tf & 0x100 != 0 {
                r.u32()?
            } else {
                d.duration
            };
            let size = if tf & 0x200 != 0 { r.u32()? } else { d.size };
            // Sample flags are read past: a video sample's sync is what its NAL units say
            // (an IDR picture), as for MPEG-TS ingest.
            if tf & 0x400 != 0 {
                r.u32()?;
            }
            let composition_offset = if tf & 0x800 != 0 {
                let v = r.u32()?;
                if version == 0 {
                    i64::from(v)
                } else {
                    i64::from(v as i32)
                }
            } else {
                0
            };
            samples.push(InSample {
                duration,
                size,
                composition_offset,
                offset,
            });
            offset = offset.saturating_add(size as usize);
        }
        next_offset = offset;
    }
    Ok(())
}

/// Flicks per second: divisible by 90 kHz, 48/44.1 kHz, 1 kHz and ffmpeg's 12,800.
const FLICKS: i128 = 705_600_000;

/// `a * num / den`, rounded down (times are non-negative here; the floor keeps it exact for
/// timescales that divide each other).
fn rescale(a: i128, num: i128, den: i128) -> i128 {
    (a * num).div_euclid(den)
}

/// The run a segment's timing is anchored on: the first video frame's, else the first audio
/// sample's.
fn anchor_run<'r>(init: &Init, present: &[&'r InRun]) -> Result<&'r InRun, CmafError> {
    present
        .iter()
        .find(|r| matches!(init.tracks[r.track].carried, Carried::Video(_)))
        .or(present.first())
        .copied()
        .ok_or_else(|| malformed("the segment has no video or audio samples"))
}

/// A run's first presentation time in flicks (1/705,600,000 s, a multiple of every common media
/// timescale): the edit list's empty edit plus the sample's time from where the media starts.
/// i128 holds any 64-bit decode time so scaled.
fn first_pts(init: &Init, run: &InRun) -> i128 {
    let t = &init.tracks[run.track];
    let media = i128::from(run.base) + i128::from(run.samples[0].composition_offset)
        - i128::from(t.media_time);
    rescale(media, FLICKS, i128::from(t.timescale))
        + rescale(
            i128::from(t.empty),
            FLICKS,
            i128::from(init.movie_timescale),
        )
}

/// The segment's first video frame (else first audio sample) in 90 kHz ticks: when it is
/// presented on the file's own timeline (edit lists applied), and its media time (`tfdt` plus
/// the composition offset, no edit list) modulo 2^33 — what an `X-TIMESTAMP-MAP` `MPEGTS` value
/// of fMP4 ingest counts in, as ffmpeg writes it and hls.js reads it ([`super::wvtt`]).
pub fn first_frame_90k(init: &Init, segment: &[u8]) -> Result<(i128, u64), CmafError> {
    let runs = read_fragments(segment, init)?;
    let present: Vec<&InRun> = runs.iter().filter(|r| !r.samples.is_empty()).collect();
    let run = anchor_run(init, &present)?;
    let presented = rescale(first_pts(init, run), 90_000, FLICKS);
    let media = i128::from(run.base) + i128::from(run.samples[0].composition_offset);
    let media_90k = rescale(
        media,
        90_000,
        i128::from(init.tracks[run.track].timescale.max(1)),
    );
    Ok((presented, media_90k.rem_euclid(super::WRAP) as u64))
}

/// The `select`ed tracks of an fMP4 media segment and their runs, clear, on the module's
/// timeline (first video frame at `pdt_ms`).
pub fn tracks_and_runs(
    init: &Init,
    segment: &[u8],
    pdt_ms: Option<i64>,
    select: Select,
) -> Result<(Vec<Track>, Vec<Run>), CmafError> {
    let runs = read_fragments(segment, init)?;
    let is_video = |r: &InRun| matches!(init.tracks[r.track].carried, Carried::Video(_));
    let present: Vec<&InRun> = runs.iter().filter(|r| !r.samples.is_empty()).collect();
    let first_pts = |run: &InRun| first_pts(init, run);
    let anchor = first_pts(anchor_run(init, &present)?);
    let at_90k = match pdt_ms {
        Some(ms) => i128::from(ms) * 90,
        None => rescale(anchor, 90_000, FLICKS),
    };
    let mut tracks = Vec::new();
    let mut out = Vec::new();
    // Video first, then audio, ids from 1 (as for MPEG-TS ingest).
    for video in [true, false] {
        if (video && select == Select::Audio) || (!video && select == Select::Video) {
            continue;
        }
        let Some(run) = present.iter().find(|r| is_video(r) == video) else {
            continue;
        };
        let t = &init.tracks[run.track];
        let id = tracks.len() as u32 + 1;
        let (codec, ts_out) = codec_of(t)?;
        let (ts_in, ts_o) = (i128::from(t.timescale), i128::from(ts_out));
        // This track's first presentation on the output timeline.
        // This track's first presentation on the output timeline: its offset from the anchor.
        let base = rescale(at_90k, ts_o, 90_000) + rescale(first_pts(run) - anchor, ts_o, FLICKS);
        let cto0 = i128::from(run.samples[0].composition_offset);
        let mut samples = Vec::with_capacity(run.samples.len());
        let mut data = Vec::with_capacity(run.samples.iter().map(|s| s.size as usize).sum());
        let mut elapsed_in: i128 = 0;
        for (i, s) in run.samples.iter().enumerate() {
            let start = rescale(elapsed_in, ts_o, ts_in);
            elapsed_in += i128::from(s.duration);
            let duration = u32::try_from(rescale(elapsed_in, ts_o, ts_in) - start)
                .ok()
                .filter(|d| *d > 0)
                .ok_or_else(|| {
                    malformed(format!("track {} has a sample without duration", t.id))
                })?;
            let bytes = &segment[s.offset..s.offset + s.size as usize];
            let (size, sync) = if video {
                let nals = length_prefixed(bytes, t.nal_length_size)?;
                let (sample, idr) = h264::sample_data(&nals);
                if i == 0 && !idr {
                    return Err(CmafError::Unsupported(
                        "the segment does not start with an IDR frame; a CMAF fragment must (encode with a closed GOP aligned to segments)".into(),
                    ));
                }
                data.extend_from_slice(&sample);
                (sample.len(), idr)
            } else {
                data.extend_from_slice(bytes);
                (bytes.len(), true)
            };
            samples.push(Sample {
                duration,
                size: size as u32,
                sync,
                composition_offset: i32::try_from(rescale(
                    i128::from(s.composition_offset) - cto0,
                    ts_o,
                    ts_in,
                ))
                .map_err(|_| malformed("a composition offset beyond 32 bits"))?,
            });
        }
        tracks.push(Track {
            id,
            timescale: ts_out,
            codec,
            protection: None,
        });
        out.push(Run {
            track_id: id,
            base_decode_time: u64::try_from(base).unwrap_or(0),
            samples,
            data,
            aux: None,
        });
    }
    if out.is_empty() {
        return Err(malformed(match select {
            Select::Video => "the segment has no video samples",
            Select::Audio => "the segment has no audio samples",
            Select::All => "the segment has no video or audio samples",
        }));
    }
    Ok((tracks, out))
}

/// The `select`ed tracks as repackaged fragments describe them (video at 90 kHz, AAC at its
/// sample rate), from the initialization segment alone: what a manifest's codec data needs.
pub fn described(init: &[u8], select: Select) -> Result<Vec<Track>, CmafError> {
    let init = read_init(init)?;
    let mut out = Vec::new();
    for video in [true, false] {
        if (video && select == Select::Audio) || (!video && select == Select::Video) {
            continue;
        }
        let Some(t) = init
            .tracks
            .iter()
            .find(|t| matches!(t.carried, Carried::Video(_)) == video)
        else {
            continue;
        };
        let (codec, timescale) = codec_of(t)?;
        out.push(Track {
            id: out.len() as u32 + 1,
            timescale,
            codec,
            protection: None,
        });
    }
    Ok(out)
}

/// A track's codec and the timescale it is repackaged at; a codec this packager does not carry
/// is refused with what it is.
fn codec_of(t: &InitTrack) -> Result<(Codec, u32), CmafError> {
    match &t.carried {
        Carried::Video(Ok(c)) => Ok((Codec::Avc(c.clone()), 90_000)),
        Carried::Audio(Ok(c)) => Ok((Codec::Aac(*c), c.sample_rate)),
        Carried::Video(Err(why)) | Carried::Audio(Err(why)) => Err(CmafError::Unsupported(
            format!("track {} of the fMP4 ingest is {why}", t.id),
        )),
    }
}

/// The NAL units of an MP4 sample (each preceded by its length in `size` bytes).
fn length_prefixed(sample: &[u8], size: u8) -> Result<Vec<&[u8]>, CmafError> {
    let size = usize::from(size);
    let mut out = Vec::new();
    let mut i = 0;
    while i < sample.len() {
        let len = sample
            .get(i..i + size)
            .ok_or_else(|| malformed("a NAL unit length cut short"))?
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        let nal = sample
            .get(i + size..i + size + len)
            .ok_or_else(|| malformed(format!("a NAL unit of {len} bytes overruns its sample")))?;
        out.push(nal);
        i += size + len;
    }
    Ok(out)
}
