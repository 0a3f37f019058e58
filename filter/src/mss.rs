//! Microsoft Smooth Streaming client manifests (MS-SSTR 2.2.2) from the store's playlists.
//!
//! Times: a fragment's `t` is its segment's program date time in 10 MHz ticks since
//! 2020-01-01T00:00:00Z ([`EPOCH_MS`]) — the same on every edge and in every manifest, so a
//! fragment URL never changes, and small enough (< 2^53 until 2048) that JavaScript players
//! (dash.js) hold it exactly. `d` is the segment's duration. Fragments are addressed as
//! `QualityLevels({bitrate})/Fragments(video={t})` (`audio=` for audio): the bitrate names
//! the variant, so every QualityLevel of a stream has its own bitrate ([`bitrates`]).
//!
//! Streams: one video StreamIndex with every selected variant as a QualityLevel; an audio
//! StreamIndex per alternative audio rendition of the variants' `AUDIO` groups
//! (`audio_{rendition}`, with its `Language` and the store's measured bit rate) or, for muxed
//! audio, the audio of the lowest-bandwidth variant (`audio`; encoders mux the same audio into
//! every variant). `CodecPrivateData` comes from the segments themselves (SPS/PPS, AAC
//! AudioSpecificConfig).
//!
//! Live (a sliding window, or a time shift still growing): `IsLive="TRUE"`, `Duration="0"`,
//! `DVRWindowLength` the window, every segment listed. Every fragment announces its successor
//! (`tfrf`, `LookAheadFragmentCount="1"`) at its own end, as long as itself — the store's newest
//! segment's too: live clients learn the edge from it alone (dash.js never reloads a live Smooth
//! manifest and stops on a live fragment without `tfrf`). The announced fragment answers 404
//! (not kept) until the encoder pushes it (dash.js retries a failed fragment, by default three
//! times a second apart).

use std::fmt::Write as _;

use crate::cmaf::mp4::{Codec, Track};
use crate::cmaf::smooth::{TIMESCALE, hex};
use crate::dash::xml_escape;
use crate::error::FilterError;
use crate::media_playlist::Segment;
use crate::multivariant::Variant;
use crate::route::TrackKind;

/// The origin of Smooth Streaming times: 2020-01-01T00:00:00Z in epoch milliseconds.
pub const EPOCH_MS: i64 = 1_577_836_800_000;

/// Ticks of 10 MHz per millisecond.
const TICKS_PER_MS: i64 = (TIMESCALE / 1000) as i64;

/// A segment's Smooth Streaming time (`t`) from its program date time.
pub fn time_of(pdt_ms: i64) -> Option<u64> {
    u64::try_from(pdt_ms.checked_sub(EPOCH_MS)?.checked_mul(TICKS_PER_MS)?).ok()
}

/// The program date time of a fragment time (`t`); `None` unless a whole millisecond.
pub fn pdt_of(time: u64) -> Option<i64> {
    if !time.is_multiple_of(TICKS_PER_MS as u64) {
        return None;
    }
    i64::try_from(time / TICKS_PER_MS as u64)
        .ok()?
        .checked_add(EPOCH_MS)
}

/// A duration in seconds as 10 MHz ticks.
pub fn ticks(seconds: f64) -> u64 {
    (seconds * TIMESCALE as f64).round().max(0.0) as u64
}

/// The `Bitrate` of each variant's QualityLevel (its bandwidth), made unique: a later variant
/// with the bitrate of an earlier one gets the next free number, so the bitrate in a fragment URL
/// always names one variant.
pub fn bitrates<'v>(variants: impl IntoIterator<Item = &'v Variant>) -> Vec<u64> {
    let mut out: Vec<u64> = Vec::new();
    for v in variants {
        let mut b = v.bandwidth.max(1);
        while out.contains(&b) {
            b += 1;
        }
        out.push(b);
    }
    out
}

/// The `Bitrate` of the audio QualityLevel: the AAC track's nominal rate (the multivariant
/// playlist states whole variants' bandwidth only).
pub const AUDIO_BITRATE: u64 = 128_000;

/// What a QualityLevel says about its track, read from a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackInfo {
    Video {
        /// `00000001` + SPS + `00000001` + PPS, in hex.
        private_data: String,
        width: u16,
        height: u16,
    },
    Audio {
        /// The AudioSpecificConfig, in hex.
        private_data: String,
        sample_rate: u32,
        channels: u8,
    },
}

impl TrackInfo {
    /// The kind of track described.
    pub fn kind(&self) -> TrackKind {
        match self {
            TrackInfo::Video { .. } => TrackKind::Video,
            TrackInfo::Audio { .. } => TrackKind::Audio,
        }
    }

    /// What the manifest needs of a repackaged video or audio track (none for text).
    pub fn of(track: &Track) -> Option<Self> {
        Some(match &track.codec {
            Codec::Avc(c) => {
                let mut annex_b = Vec::with_capacity(c.sps.len() + c.pps.len() + 8);
                for nal in [&c.sps, &c.pps] {
                    annex_b.extend_from_slice(&[0, 0, 0, 1]);
                    annex_b.extend_from_slice(nal);
                }
                TrackInfo::Video {
                    private_data: hex(&annex_b),
                    width: c.width,
                    height: c.height,
                }
            }
            Codec::Aac(c) => TrackInfo::Audio {
                private_data: hex(&c.audio_specific_config()),
                sample_rate: c.sample_rate,
                channels: c.channels,
            },
            Codec::WebVtt => return None,
        })
    }
}

/// A video QualityLevel: its variant, bitrate and track.
pub struct VideoLevel<'a> {
    pub variant: &'a Variant,
    pub bitrate: u64,
    pub info: &'a TrackInfo,
}

/// An audio stream: the variants' muxed audio (`audio`) or an alternative audio rendition
/// (`audio_{rendition}`, with its language).
pub struct AudioStream<'a> {
    pub name: String,
    pub language: Option<&'a str>,
    pub bitrate: u64,
    pub info: &'a TrackInfo,
}

/// A text stream: a subtitle rendition as TTML (`text_{rendition}`, with its language).
pub struct TextStream<'a> {
    pub name: String,
    pub language: Option<&'a str>,
}

/// The bitrate of a text stream's one QualityLevel (nominal: text is a few hundred bytes a
/// second; fragment URLs of text streams are not checked against it).
pub const TEXT_BITRATE: u64 = 1_000;

/// Everything a manifest is written from.
pub struct Manifest<'a> {
    pub video: Vec<VideoLevel<'a>>,
    pub audio: Vec<AudioStream<'a>>,
    pub text: Vec<TextStream<'a>>,
    /// The window's segments (of the first variant: renditions are segment-aligned).
    pub segments: &'a [Segment<'a>],
    pub live: bool,
    pub window_ms: i64,
    /// PIFF protection: the `ProtectionHeader` element, written as is.
    pub protection: Option<String>,
}

/// `<c>` elements: `t` and `d` in 10 MHz, equal durations that follow each other folded into
/// `r` (the number of fragments, as MS-SSTR 2.0 and its players count it).
fn chunks(segments: &[Segment]) -> Result<(String, usize), FilterError> {
    let mut out = String::new();
    let mut run: Option<(u64, u64, u32)> = None;
    let mut expected = None;
    let flush = |out: &mut String, run: Option<(u64, u64, u32)>| {
        if let Some((t, d, r)) = run {
            let _ = write!(out, "<c t=\"{t}\" d=\"{d}\"");
            if r > 1 {
                let _ = write!(out, " r=\"{r}\"");
            }
            out.push_str("/>");
        }
    };
    for s in segments {
        let t = s.pdt_ms.and_then(time_of).ok_or_else(|| {
            FilterError::BadGateway(format!(
                "the store's segment {} has no program date time after 2020; Smooth Streaming times need one",
                s.sequence
            ))
        })?;
        let d = ticks(s.duration);
        match run {
            Some((rt, rd, r)) if Some(t) == expected && d == rd => run = Some((rt, rd, r + 1)),
            _ => {
                flush(&mut out, run);
                run = Some((t, d, 1));
            }
        }
        expected = Some(t + d);
    }
    flush(&mut out, run);
    Ok((out, segments.len()))
}

/// Writes the client manifest.
pub fn write(m: &Manifest<'_>) -> Result<String, FilterError> {
    if m.segments.is_empty() {
        return Err(FilterError::NotFound(
            "the channel has no segments in this window yet; retry shortly".into(),
        ));
    }
    let (c, count) = chunks(m.segments)?;
    let mut out = String::with_capacity(1024 + c.len() * 2);
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = write!(
        out,
        "<SmoothStreamingMedia MajorVersion=\"2\" MinorVersion=\"2\" TimeScale=\"{TIMESCALE}\""
    );
    if m.live {
        let _ = writeln!(
            out,
            " Duration=\"0\" IsLive=\"TRUE\" LookAheadFragmentCount=\"1\" DVRWindowLength=\"{}\">",
            (m.window_ms.max(0) as u64).saturating_mul(TICKS_PER_MS as u64)
        );
    } else {
        let total: u64 = m.segments.iter().map(|s| ticks(s.duration)).sum();
        let _ = writeln!(out, " Duration=\"{total}\">");
    }
    if !m.video.is_empty() {
        let max_w = m.video.iter().map(|l| dims(l.info).0).max().unwrap_or(0);
        let max_h = m.video.iter().map(|l| dims(l.info).1).max().unwrap_or(0);
        let _ = writeln!(
            out,
            "<StreamIndex Type=\"video\" Name=\"video\" Chunks=\"{count}\" QualityLevels=\"{}\" Url=\"QualityLevels({{bitrate}})/Fragments(video={{start time}})\" MaxWidth=\"{max_w}\" MaxHeight=\"{max_h}\" DisplayWidth=\"{max_w}\" DisplayHeight=\"{max_h}\">",
            m.video.len()
        );
        for (i, l) in m.video.iter().enumerate() {
            let (w, h) = dims(l.info);
            let private = match l.info {
                TrackInfo::Video { private_data, .. } => private_data.as_str(),
                TrackInfo::Audio { .. } => "",
            };
            let _ = writeln!(
                out,
                "<QualityLevel Index=\"{i}\" Bitrate=\"{}\" FourCC=\"H264\" MaxWidth=\"{w}\" MaxHeight=\"{h}\" CodecPrivateData=\"{private}\"/>",
                l.bitrate
            );
        }
        out.push_str(&c);
        out.push_str("\n</StreamIndex>\n");
    }
    for a in &m.audio {
        let TrackInfo::Audio {
            private_data,
            sample_rate,
            channels,
        } = a.info
        else {
            continue;
        };
        let name = xml_escape(&a.name);
        let _ = write!(
            out,
            "<StreamIndex Type=\"audio\" Name=\"{name}\" Chunks=\"{count}\" QualityLevels=\"1\" Url=\"QualityLevels({{bitrate}})/Fragments({name}={{start time}})\""
        );
        if let Some(lang) = a.language {
            let _ = write!(out, " Language=\"{}\"", xml_escape(lang));
        }
        out.push_str(">\n");
        let _ = writeln!(
            out,
            "<QualityLevel Index=\"0\" Bitrate=\"{}\" FourCC=\"AACL\" SamplingRate=\"{sample_rate}\" Channels=\"{channels}\" BitsPerSample=\"16\" PacketSize=\"4\" AudioTag=\"255\" CodecPrivateData=\"{private_data}\"/>",
            a.bitrate
        );
        out.push_str(&c);
        out.push_str("\n</StreamIndex>\n");
    }
    // Subtitles: TTML documents (`SUBT`: subtitles, as dash.js maps it to an alternate role),
    // never encrypted.
    for t in &m.text {
        let name = xml_escape(&t.name);
        let _ = write!(
            out,
            "<StreamIndex Type=\"text\" Name=\"{name}\" Subtype=\"SUBT\" Chunks=\"{count}\" QualityLevels=\"1\" Url=\"QualityLevels({{bitrate}})/Fragments({name}={{start time}})\""
        );
        if let Some(lang) = t.language {
            let _ = write!(out, " Language=\"{}\"", xml_escape(lang));
        }
        let _ = writeln!(
            out,
            ">\n<QualityLevel Index=\"0\" Bitrate=\"{TEXT_BITRATE}\" FourCC=\"TTML\" CodecPrivateData=\"\"/>"
        );
        out.push_str(&c);
        out.push_str("\n</StreamIndex>\n");
    }
    if let Some(p) = &m.protection {
        out.push_str(p);
        out.push('\n');
    }
    out.push_str("</SmoothStreamingMedia>\n");
    Ok(out)
}

/// PlayReady's system id, as `ProtectionHeader@SystemID` names it.
pub const PLAYREADY_SYSTEM_ID: &str = "9A04F079-9840-4286-AB92-E65BE0885F95";

/// The `Protection` element of a PIFF-encrypted (`cenc`, AES-CTR) presentation: a PlayReady
/// object (PlayReady Header Object 1.0: its length, one record of type 1 holding the UTF-16LE
/// `WRMHEADER` 4.0) naming the key id — in PlayReady's GUID byte order, base64 — and the
/// algorithm. No `LA_URL`: licenses come from the operator's PlayReady server, which the player
/// is configured with (edgepack serves no PlayReady licenses).
pub fn protection_header(kid: &[u8; 16]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    // A GUID's first three fields are little-endian in PlayReady's byte order.
    let mut guid = *kid;
    guid[..4].reverse();
    guid[4..6].reverse();
    guid[6..8].reverse();
    let header = format!(
        "<WRMHEADER xmlns=\"http://schemas.microsoft.com/DRM/2007/03/PlayReadyHeader\" version=\"4.0.0.0\"><DATA><PROTECTINFO><KEYLEN>16</KEYLEN><ALGID>AESCTR</ALGID></PROTECTINFO><KID>{}</KID></DATA></WRMHEADER>",
        b64.encode(guid)
    );
    let utf16: Vec<u8> = header.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let mut object = Vec::with_capacity(utf16.len() + 10);
    object.extend_from_slice(&((utf16.len() + 10) as u32).to_le_bytes());
    object.extend_from_slice(&1u16.to_le_bytes());
    object.extend_from_slice(&1u16.to_le_bytes());
    object.extend_from_slice(&(utf16.len() as u16).to_le_bytes());
    object.extend_from_slice(&utf16);
    format!(
        "<Protection><ProtectionHeader SystemID=\"{PLAYREADY_SYSTEM_ID}\">{}</ProtectionHeader></Protection>",
        b64.encode(object)
    )
}

fn dims(info: &TrackInfo) -> (u16, u16) {
    match info {
        TrackInfo::Video { width, height, .. } => (*width, *height),
        TrackInfo::Audio { .. } => (0, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn segment(sequence: u64, pdt_ms: i64, duration: f64) -> Segment<'static> {
        Segment {
            sequence,
            duration,
            duration_text: Cow::Borrowed(""),
            title: Cow::Borrowed(""),
            pdt_ms: Some(pdt_ms),
            pdt_tagged: true,
            ..Default::default()
        }
    }

    fn variant(rendition: &str, bandwidth: u64) -> Variant {
        Variant {
            rendition: rendition.into(),
            bandwidth,
            video_codec: Some("avc1.64001f".into()),
            audio_codec: Some("mp4a.40.2".into()),
            width: Some(640),
            height: Some(360),
            frame_rate: None,
            audio_group: None,
        }
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn the_protection_header_names_the_key_id_in_playready_byte_order() {
        use base64::Engine as _;
        let kid: [u8; 16] = core::array::from_fn(|i| i as u8);
        let p = protection_header(&kid);
        let b64 = p
            .split("\">")
            .nth(1)
            .and_then(|s| s.split('<').next())
            .unwrap();
        let object = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        assert_eq!(
            u32::from_le_bytes(object[..4].try_into().unwrap()) as usize,
            object.len()
        );
        assert_eq!(
            &object[4..8],
            &[1, 0, 1, 0],
            "one record, a rights management header"
        );
        let len = u16::from_le_bytes([object[8], object[9]]) as usize;
        assert_eq!(len, object.len() - 10);
        let units: Vec<u16> = object[10..]
            .chunks(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        let xml = String::from_utf16(&units).unwrap();
        // 00010203-0405-0607-0809-0a0b0c0d0e0f as a GUID: 03020100 0504 0706 08090a0b0c0d0e0f.
        let guid = [3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15];
        let kid_b64 = base64::engine::general_purpose::STANDARD.encode(guid);
        assert!(xml.contains(&format!("<KID>{kid_b64}</KID>")), "{xml}");
        assert!(xml.contains("<ALGID>AESCTR</ALGID>"), "{xml}");
        assert!(p.contains(PLAYREADY_SYSTEM_ID));
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn times_are_program_date_times_in_ten_megahertz_since_2020() {
        let pdt = 1_795_600_000_123;
        let t = time_of(pdt).unwrap();
        assert_eq!(t, (pdt - EPOCH_MS) as u64 * 10_000);
        assert!(t < 1 << 53, "exact in a JavaScript number");
        assert_eq!(pdt_of(t), Some(pdt));
        assert_eq!(pdt_of(t + 1), None, "not a whole millisecond");
        assert_eq!(time_of(EPOCH_MS - 1), None);
        assert_eq!(ticks(2.0), 20_000_000);
        assert_eq!(
            bitrates(&[variant("a", 800), variant("b", 800), variant("c", 801)]),
            [800, 801, 802]
        );
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn live_manifests_list_every_fragment() {
        let t0 = 1_795_600_000_000;
        let segs: Vec<Segment> = (0..4)
            .map(|i| segment(i, t0 + 2000 * i as i64, 2.0))
            .collect();
        let v = variant("stream_0", 1_500_000);
        let video = TrackInfo::Video {
            private_data: "0000000167".into(),
            width: 640,
            height: 360,
        };
        let audio = TrackInfo::Audio {
            private_data: "1190".into(),
            sample_rate: 48_000,
            channels: 2,
        };
        let m = |live: bool, segments: &'_ [Segment<'_>]| {
            write(&Manifest {
                video: vec![VideoLevel {
                    variant: &v,
                    bitrate: 1_500_000,
                    info: &video,
                }],
                audio: vec![AudioStream {
                    name: "audio".into(),
                    language: None,
                    bitrate: AUDIO_BITRATE,
                    info: &audio,
                }],
                text: vec![TextStream {
                    name: "text_subs".into(),
                    language: Some("eng"),
                }],
                segments,
                live,
                window_ms: 30_000,
                protection: None,
            })
            .unwrap()
        };
        let text = m(true, &segs);
        let t = time_of(t0).unwrap();
        assert!(
            text.contains(&format!("<c t=\"{t}\" d=\"20000000\" r=\"4\"/>")),
            "{text}"
        );
        assert!(text.contains("IsLive=\"TRUE\""), "{text}");
        assert!(text.contains("DVRWindowLength=\"300000000\""), "{text}");
        assert!(text.contains("Chunks=\"4\""), "{text}");
        // The subtitles: a TTML text stream on the same timeline.
        assert!(
            text.contains("<StreamIndex Type=\"text\" Name=\"text_subs\" Subtype=\"SUBT\" Chunks=\"4\" QualityLevels=\"1\" Url=\"QualityLevels({bitrate})/Fragments(text_subs={start time})\" Language=\"eng\">\n<QualityLevel Index=\"0\" Bitrate=\"1000\" FourCC=\"TTML\" CodecPrivateData=\"\"/>\n<c t="),
            "{text}"
        );
        assert_eq!(
            text.matches(&format!("<c t=\"{t}\" d=\"20000000\" r=\"4\"/>"))
                .count(),
            3
        );
        assert!(text.contains("CodecPrivateData=\"1190\""), "{text}");
        assert!(text.contains("Url=\"QualityLevels({bitrate})/Fragments(video={start time})\""));
        // Past time range: every segment, and the total duration.
        let vod = m(false, &segs);
        assert!(vod.contains(" r=\"4\""), "{vod}");
        assert!(vod.contains("Duration=\"80000000\""), "{vod}");
        assert!(!vod.contains("IsLive"), "{vod}");
        // A gap starts a new run.
        let mut gap = segs.clone();
        gap[2].pdt_ms = Some(t0 + 4100);
        gap[3].pdt_ms = Some(t0 + 6100);
        let text = m(false, &gap);
        assert_eq!(
            text.matches("<c t=").count(),
            2 * 3,
            "two runs in each stream: {text}"
        );
        assert!(
            text.contains(&format!(
                "<c t=\"{}\" d=\"20000000\" r=\"2\"/>",
                t + 41_000_000
            )),
            "{text}"
        );
    }
}
