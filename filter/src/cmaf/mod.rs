//! MPEG-TS → CMAF (fragmented MP4), one HLS segment at a time, with no state between requests:
//! H.264 + AAC are demultiplexed ([`ts`]), turned into MP4 samples ([`h264`], [`adts`]) and written
//! as an initialization segment and a media segment ([`mp4`]). fMP4 ingest is read back into the
//! same tracks and samples ([`fmp4`]), so both kinds of ingest leave the edge alike.
//!
//! Timing: a segment's first video frame is presented at its program date time, in ticks since
//! the Unix epoch (90 kHz for video, the sample rate for audio); the other frames and the audio
//! keep their offsets from it (MPEG-TS 33-bit arithmetic, so a wrap inside a segment is
//! harmless). Decode times are then continuous across segments and the 26.5 h timestamp wrap,
//! and a DASH manifest can state every segment's time from the playlist alone. Composition
//! offsets are signed (`trun` v1): the first frame's presentation time is the fragment's decode
//! time, so B-frame streams need no edit list. Every edge computes the same bytes for the same
//! segment. Without a program date time the segment's own timestamps are used.

pub mod adts;
pub mod cenc;
pub mod fmp4;
pub mod h264;
pub mod mp4;
pub mod smooth;
pub mod ts;
pub mod ttml;
pub mod wvtt;

use mp4::{Codec, Run, Sample, Track, TrackProtection};

/// Why a segment cannot be repackaged.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CmafError {
    #[error("{0}")]
    Malformed(String),
    #[error("{0}")]
    Unsupported(String),
}

const WRAP: i128 = 1 << 33;

/// A repackaged segment: the tracks (for the initialization segment) and the media segment.
#[derive(Debug, Clone, PartialEq)]
pub struct Remuxed {
    pub tracks: Vec<Track>,
    pub fragment: Vec<u8>,
}

impl Remuxed {
    /// The initialization segment these fragments need.
    pub fn init_segment(&self) -> Vec<u8> {
        mp4::init_segment(&self.tracks)
    }

    /// RFC 6381 codec strings, video first.
    pub fn codecs(&self) -> Vec<String> {
        self.tracks
            .iter()
            .map(|t| match &t.codec {
                Codec::Avc(c) => c.codec(),
                Codec::Aac(c) => c.codec(),
                Codec::WebVtt => "wvtt".to_owned(),
            })
            .collect()
    }
}

/// `t33 − base33` across a wrap inside the segment, in (−2^32, 2^32].
fn delta(t33: u64, base33: u64) -> i128 {
    let d = (i128::from(t33) - i128::from(base33)).rem_euclid(WRAP);
    if d > WRAP / 2 { d - WRAP } else { d }
}

/// Where a segment's presentation starts: the 90 kHz time its first frame is shown at and the
/// MPEG-TS timestamp of that frame.
#[derive(Clone, Copy)]
struct Anchor {
    at: i128,
    pts33: u64,
}

fn video_run(pes: &[ts::Pes], anchor: Anchor, id: u32) -> Result<(Track, Run), CmafError> {
    let mut sps = None;
    let mut pps = None;
    let mut samples = Vec::with_capacity(pes.len());
    let mut data = Vec::with_capacity(pes.iter().map(|p| p.data.len()).sum());
    let first = pes
        .first()
        .ok_or_else(|| CmafError::Malformed("no video frames in the segment".into()))?;
    // The first frame presents at `anchor.at`: its decode time is that, and every composition
    // offset is relative to its own.
    let base = anchor.at + delta(first.pts, anchor.pts33);
    let first_offset = delta(first.pts, first.dts);
    let mut decode: Vec<i128> = Vec::with_capacity(pes.len());
    for (i, p) in pes.iter().enumerate() {
        let nals = h264::nal_units(&p.data);
        for n in &nals {
            match h264::nal_type(n) {
                h264::NAL_SPS if sps.is_none() => sps = Some(n.to_vec()),
                h264::NAL_PPS if pps.is_none() => pps = Some(n.to_vec()),
                _ => {}
            }
        }
        let (bytes, idr) = h264::sample_data(&nals);
        if i == 0 && !idr {
            return Err(CmafError::Unsupported(
                "the segment does not start with an IDR frame; a CMAF fragment must (encode with a closed GOP aligned to segments, e.g. ffmpeg -g 50 -keyint_min 50 -sc_threshold 0)".into(),
            ));
        }
        let d = base + delta(p.dts, first.dts);
        decode.push(d);
        samples.push(Sample {
            duration: 0,
            size: bytes.len() as u32,
            sync: idr,
            composition_offset: i32::try_from(delta(p.pts, p.dts) - first_offset)
                .map_err(|_| CmafError::Malformed("a composition offset beyond 32 bits".into()))?,
        });
        data.extend_from_slice(&bytes);
    }
    for i in 0..samples.len() {
        let d = match (decode.get(i + 1), i.checked_sub(1)) {
            (Some(next), _) => next - decode[i],
            // The last frame lasts as long as the one before it (constant frame rate).
            (None, Some(prev)) => decode[i] - decode[prev],
            (None, None) => 3600,
        };
        samples[i].duration = u32::try_from(d)
            .ok()
            .filter(|d| *d > 0)
            .ok_or_else(|| CmafError::Malformed("video decode times do not increase".into()))?;
    }
    let (Some(sps), Some(pps)) = (sps, pps) else {
        return Err(CmafError::Malformed(
            "no SPS/PPS in the segment: cannot describe the video".into(),
        ));
    };
    let config = h264::parse_sps(&sps, &pps)?;
    Ok(clear_track(
        id,
        90_000,
        Codec::Avc(config),
        base,
        samples,
        data,
    ))
}

fn audio_run(pes: &[ts::Pes], anchor: Anchor, id: u32) -> Result<(Track, Run), CmafError> {
    let first = pes
        .first()
        .ok_or_else(|| CmafError::Malformed("no audio frames in the segment".into()))?;
    let mut config = None;
    let mut samples = Vec::new();
    let mut data = Vec::new();
    for p in pes {
        let (c, frames) = adts::frames(&p.data)?;
        if *config.get_or_insert(c) != c {
            return Err(CmafError::Unsupported(
                "the AAC configuration changes inside a segment".into(),
            ));
        }
        for f in frames {
            samples.push(Sample {
                duration: 1024,
                size: f.len() as u32,
                sync: true,
                composition_offset: 0,
            });
            data.extend_from_slice(f);
        }
    }
    let config =
        config.ok_or_else(|| CmafError::Malformed("no audio frames in the segment".into()))?;
    let base_90k = anchor.at + delta(first.pts, anchor.pts33);
    let base = (base_90k * i128::from(config.sample_rate)).div_euclid(90_000);
    let timescale = config.sample_rate;
    Ok(clear_track(
        id,
        timescale,
        Codec::Aac(config),
        base,
        samples,
        data,
    ))
}

/// A track and its run, not (yet) encrypted; `base` is the first decode time.
fn clear_track(
    id: u32,
    timescale: u32,
    codec: Codec,
    base: i128,
    samples: Vec<Sample>,
    data: Vec<u8>,
) -> (Track, Run) {
    (
        Track {
            id,
            timescale,
            codec,
            protection: None,
        },
        Run {
            track_id: id,
            base_decode_time: u64::try_from(base).unwrap_or(0),
            samples,
            data,
            aux: None,
        },
    )
}

/// What a segment was ingested as.
#[derive(Debug, Clone, Copy)]
pub enum Ingest<'a> {
    /// MPEG-TS.
    Ts(&'a [u8]),
    /// fMP4 (CMAF): the media segment and the initialization segment it needs.
    Fmp4 { init: &'a [u8], segment: &'a [u8] },
}

impl<'a> From<&'a [u8]> for Ingest<'a> {
    fn from(ts: &'a [u8]) -> Self {
        Ingest::Ts(ts)
    }
}

impl<'a> From<&'a Vec<u8>> for Ingest<'a> {
    fn from(ts: &'a Vec<u8>) -> Self {
        Ingest::Ts(ts)
    }
}

/// Repackages one MPEG-TS segment. `sequence` numbers the fragment; `pdt_ms` is the segment's
/// program date time (see the module's timing rule).
pub fn remux(segment: &[u8], sequence: u64, pdt_ms: Option<i64>) -> Result<Remuxed, CmafError> {
    remux_protected(segment, sequence, pdt_ms, None)
}

/// Which elementary streams go into the fragment: both (HLS muxed), or one (a CMAF track, as
/// DASH and encrypted CMAF want).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Select {
    All,
    Video,
    Audio,
}

/// [`remux`] of the `select`ed tracks, encrypted under `protection` (`cenc` or `cbcs`) when
/// given. For `cenc`, each track's per-sample IVs start from `protection.iv_base` with the kind
/// of track (1 video, 2 audio) in the top byte, so video and audio never share an IV.
pub fn remux_protected(
    segment: &[u8],
    sequence: u64,
    pdt_ms: Option<i64>,
    protection: Option<&cenc::Protection>,
) -> Result<Remuxed, CmafError> {
    remux_select(segment, sequence, pdt_ms, protection, Select::All)
}

/// The general form of [`remux`]: either kind of ingest, a track selection and optional
/// encryption.
pub fn remux_select<'a>(
    segment: impl Into<Ingest<'a>>,
    sequence: u64,
    pdt_ms: Option<i64>,
    protection: Option<&cenc::Protection>,
    select: Select,
) -> Result<Remuxed, CmafError> {
    let (tracks, runs) = tracks_and_runs(segment, pdt_ms, protection, select)?;
    let fragment = mp4::media_segment((sequence as u32).wrapping_add(1), &runs);
    Ok(Remuxed { tracks, fragment })
}

/// The `select`ed tracks of one segment and their runs (samples and data, encrypted under
/// `protection` when given), before they are written as a fragment: what other fragment formats
/// (Smooth Streaming) are written from.
pub fn tracks_and_runs<'a>(
    segment: impl Into<Ingest<'a>>,
    pdt_ms: Option<i64>,
    protection: Option<&cenc::Protection>,
    select: Select,
) -> Result<(Vec<Track>, Vec<Run>), CmafError> {
    let (mut tracks, mut runs) = match segment.into() {
        Ingest::Ts(ts) => ts_tracks_and_runs(ts, pdt_ms, select)?,
        Ingest::Fmp4 { init, segment } => {
            fmp4::tracks_and_runs(&fmp4::read_init(init)?, segment, pdt_ms, select)?
        }
    };
    if let Some(p) = protection {
        for (t, r) in tracks.iter_mut().zip(runs.iter_mut()) {
            let mut track_key = p.clone();
            let video = matches!(t.codec, Codec::Avc(_));
            track_key.iv_base = p.iv_base ^ (if video { 1u64 } else { 2 } << 56);
            let sizes: Vec<u32> = r.samples.iter().map(|s| s.size).collect();
            r.aux = Some(cenc::encrypt_run(&track_key, video, &sizes, &mut r.data)?);
            t.protection = Some(TrackProtection {
                scheme: p.scheme,
                kid: p.kid,
                constant_iv: p.constant_iv,
            });
        }
    }
    Ok((tracks, runs))
}

/// Where a video segment's presentation starts on the output timeline (its first frame at
/// `pdt_ms`) and its own MPEG-2 time there: what places the cues of the WebVTT segment dated
/// alike ([`wvtt`]).
pub fn video_anchor<'a>(
    segment: impl Into<Ingest<'a>>,
    pdt_ms: i64,
) -> Result<wvtt::VideoAnchor, CmafError> {
    let pts33 = match segment.into() {
        Ingest::Ts(ts) => {
            let d = ts::demux(ts)?;
            d.video
                .first()
                .or(d.audio.first())
                .map(|p| p.pts)
                .ok_or_else(|| {
                    CmafError::Malformed("the segment has no H.264 or AAC frames".into())
                })?
        }
        Ingest::Fmp4 { init, segment } => {
            fmp4::first_frame_90k(&fmp4::read_init(init)?, segment)?.1
        }
    };
    Ok(wvtt::VideoAnchor {
        at_90k: i128::from(pdt_ms) * 90,
        pts33,
    })
}

/// [`video_anchor`] for fMP4 video passed through as ingested (clear cmaf endpoints): its
/// first frame where the file itself presents it, so subtitles share the encoder's timeline.
pub fn own_video_anchor(init: &[u8], segment: &[u8]) -> Result<wvtt::VideoAnchor, CmafError> {
    let (at_90k, pts33) = fmp4::first_frame_90k(&fmp4::read_init(init)?, segment)?;
    Ok(wvtt::VideoAnchor { at_90k, pts33 })
}

/// The `select`ed tracks of one MPEG-TS segment and their runs, clear.
fn ts_tracks_and_runs(
    segment: &[u8],
    pdt_ms: Option<i64>,
    select: Select,
) -> Result<(Vec<Track>, Vec<Run>), CmafError> {
    let d = ts::demux(segment)?;
    // The first video frame (else the first audio frame) is presented at the program date time.
    let pts33 = d
        .video
        .first()
        .or(d.audio.first())
        .map(|p| p.pts)
        .ok_or_else(|| CmafError::Malformed("the segment has no H.264 or AAC frames".into()))?;
    let anchor = Anchor {
        at: pdt_ms.map_or(i128::from(pts33), |ms| i128::from(ms) * 90),
        pts33,
    };
    let mut tracks = Vec::new();
    let mut runs = Vec::new();
    // Track ids count from 1 in each file (a lone audio track is track 1: shaka-packager 3.4
    // crashes on a file whose only track is 2).
    if !d.video.is_empty() && select != Select::Audio {
        let (t, r) = video_run(&d.video, anchor, 1)?;
        tracks.push(t);
        runs.push(r);
    }
    if !d.audio.is_empty() && select != Select::Video {
        let (t, r) = audio_run(&d.audio, anchor, tracks.len() as u32 + 1)?;
        tracks.push(t);
        runs.push(r);
    }
    if runs.is_empty() {
        return Err(CmafError::Malformed(
            "the segment has no H.264 or AAC frames".into(),
        ));
    }
    Ok((tracks, runs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn decode_times_follow_the_program_date_time_across_the_33_bit_wrap() {
        // Segments whose timestamps wrap (2^33 ticks of 90 kHz) in the middle of the second.
        let near_wrap = (1u64 << 33) - 90_000;
        let a = Anchor {
            at: 1_795_600_000_000 * 90,
            pts33: near_wrap,
        };
        let after = (near_wrap + 180_000) % (1 << 33);
        assert_eq!(a.at + delta(after, a.pts33), a.at + 180_000);
        assert_eq!(delta(5, (1 << 33) - 5), 10);
        assert_eq!(delta((1 << 33) - 5, 5), -10);
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn bad_segments_are_errors_not_panics() {
        assert!(matches!(remux(&[], 0, None), Err(CmafError::Malformed(_))));
        assert!(matches!(
            remux(&[0x47; 187], 0, None),
            Err(CmafError::Malformed(_))
        ));
        // Packets without PAT/PMT.
        let mut p = vec![0x47, 0x01, 0x00, 0x10];
        p.resize(188, 0xFF);
        let e = remux(&p.repeat(3), 0, None).unwrap_err();
        assert!(e.to_string().contains("PAT/PMT"), "{e}");
        // Sync lost.
        let mut q = p.clone();
        q[0] = 0x48;
        assert!(remux(&q, 0, None).is_err());
        // Odd ADTS: a frame longer than its PES, and no sync word.
        assert!(adts::frames(&[0xFF, 0xF1, 0x50, 0x80, 0xFF, 0xFF, 0xFC, 1, 2]).is_err());
        assert!(adts::frames(&[0, 1, 2, 3, 4, 5, 6, 7]).is_err());
        // SPS too short.
        assert!(h264::parse_sps(&[0x67, 0x64], &[]).is_err());
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn annex_b_and_adts_become_mp4_samples() {
        let stream = [
            0, 0, 0, 1, 0x09, 0xF0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x65, 7, 7, 0, 0,
        ];
        let nals = h264::nal_units(&stream);
        assert_eq!(nals, [&[0x09, 0xF0][..], &[0x67, 1, 2], &[0x65, 7, 7]]);
        let (data, idr) = h264::sample_data(&nals);
        assert!(idr);
        assert_eq!(
            data,
            [0, 0, 0, 3, 0x65, 7, 7],
            "AUD and SPS leave the sample"
        );
        // ADTS, AAC LC, 48 kHz, stereo, 10-byte frame.
        let frame = [0xFF, 0xF1, 0x4C, 0x80, 0x01, 0x5F, 0xFC, 0xAA, 0xBB, 0xCC];
        let two = [frame, frame].concat();
        let (c, frames) = adts::frames(&two).unwrap();
        assert_eq!((c.object_type, c.sample_rate, c.channels), (2, 48_000, 2));
        assert_eq!(c.audio_specific_config(), [0x11, 0x90]);
        assert_eq!(frames, [&[0xAA, 0xBB, 0xCC][..], &[0xAA, 0xBB, 0xCC]]);
        assert_eq!(c.codec(), "mp4a.40.2");
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn subsample_maps_cover_samples_and_stay_describable() {
        let p = cenc::Protection {
            scheme: cenc::Scheme::Cbcs,
            key: [1; 16],
            kid: [2; 16],
            iv_base: 0,
            constant_iv: [3; 16],
        };
        // An SEI (clear) and a 100-byte slice: 52 bytes clear (the SEI, the slice's length,
        // header and slice-header bytes, and what does not fill a block), then 64 protected.
        let mut sample = [0, 0, 0, 8, 6, 1, 1, 1, 1, 1, 1, 0x80].to_vec();
        sample.extend_from_slice(&100u32.to_be_bytes());
        sample.push(0x65);
        sample.extend_from_slice(&[9; 99]);
        let before = sample.clone();
        let size = sample.len() as u32;
        let aux = cenc::encrypt_run(&p, true, &[size], &mut sample).unwrap();
        assert_eq!(aux.samples[0].subsamples, [(52, 64)]);
        assert!(aux.samples[0].iv.is_empty(), "cbcs: constant IV");
        assert_eq!(&sample[..52], &before[..52], "clear bytes untouched");
        assert_ne!(
            &sample[52..68],
            &before[52..68],
            "the first protected block is encrypted"
        );
        assert_eq!(
            &sample[68..],
            &before[68..],
            "1:9 pattern: the next blocks stay clear"
        );
        // 50 slices cannot be described in one byte of `saiz`: an error, not a wrong file.
        let mut many = Vec::new();
        for _ in 0..50 {
            many.extend_from_slice(&60u32.to_be_bytes());
            many.push(0x41);
            many.extend_from_slice(&[5; 59]);
        }
        let n = many.len() as u32;
        assert!(cenc::encrypt_run(&p, true, &[n], &mut many).is_err());
    }
}
