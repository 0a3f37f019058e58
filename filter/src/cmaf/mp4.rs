//! The ISO BMFF boxes (ISO/IEC 14496-12) of a CMAF track: the initialization segment
//! (`ftyp` + `moov` with `mvex`) and media segments (`styp` + `moof` + `mdat`).

use super::adts::AacConfig;
use super::cenc::{RunAux, Scheme};
use super::h264::AvcConfig;

/// Appends a box: size placeholder, type, contents, then the size.
pub(crate) fn boxed(out: &mut Vec<u8>, kind: &[u8; 4], f: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(kind);
    f(out);
    let size = (out.len() - start) as u32;
    out[start..start + 4].copy_from_slice(&size.to_be_bytes());
}

/// A full box: version and flags first.
pub(crate) fn full(
    out: &mut Vec<u8>,
    kind: &[u8; 4],
    version: u8,
    flags: u32,
    f: impl FnOnce(&mut Vec<u8>),
) {
    boxed(out, kind, |o| {
        o.extend_from_slice(&((u32::from(version) << 24) | flags).to_be_bytes());
        f(o);
    });
}

pub(crate) fn u16be(o: &mut Vec<u8>, v: u16) {
    o.extend_from_slice(&v.to_be_bytes());
}
pub(crate) fn u32be(o: &mut Vec<u8>, v: u32) {
    o.extend_from_slice(&v.to_be_bytes());
}
pub(crate) fn u64be(o: &mut Vec<u8>, v: u64) {
    o.extend_from_slice(&v.to_be_bytes());
}

const MATRIX: [u32; 9] = [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000];

/// What a track carries.
#[derive(Debug, Clone, PartialEq)]
pub enum Codec {
    Avc(AvcConfig),
    Aac(AacConfig),
    /// WebVTT cues (ISO/IEC 14496-30 `wvtt`, [`super::wvtt`]).
    WebVtt,
}

/// One track of the init segment.
#[derive(Debug, Clone, PartialEq)]
pub struct Track {
    pub id: u32,
    pub timescale: u32,
    pub codec: Codec,
    /// Common encryption: the sample entry becomes `encv`/`enca` with a `sinf`.
    pub protection: Option<TrackProtection>,
}

/// What the init segment says about a protected track (`sinf`/`tenc`).
#[derive(Debug, Clone, PartialEq)]
pub struct TrackProtection {
    pub scheme: Scheme,
    pub kid: [u8; 16],
    /// `cbcs` only.
    pub constant_iv: [u8; 16],
}

/// The W3C common system id (ClearKey and any system that reads key ids): 1077efec-c0b2-4d02-
/// ace3-3c1e52e2fb4b.
pub const COMMON_SYSTEM_ID: [u8; 16] = [
    0x10, 0x77, 0xef, 0xec, 0xc0, 0xb2, 0x4d, 0x02, 0xac, 0xe3, 0x3c, 0x1e, 0x52, 0xe2, 0xfb, 0x4b,
];

/// One sample of a fragment.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub duration: u32,
    pub size: u32,
    pub sync: bool,
    /// PTS − DTS.
    pub composition_offset: i32,
}

/// A track's run in a media segment.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub track_id: u32,
    pub base_decode_time: u64,
    pub samples: Vec<Sample>,
    pub data: Vec<u8>,
    /// Common encryption: per-sample IVs and subsamples (`senc`, `saiz`, `saio`).
    pub aux: Option<RunAux>,
}

fn esds(o: &mut Vec<u8>, track_id: u32, c: &AacConfig) {
    full(o, b"esds", 0, 0, |o| {
        let asc = c.audio_specific_config();
        // ES_Descriptor(3) { ES_ID, flags, DecoderConfigDescriptor(4) { AAC, audio stream,
        // DecoderSpecificInfo(5) { AudioSpecificConfig } }, SLConfigDescriptor(6) { 2 } }
        let dsi_len = asc.len() as u8;
        let dcd_len = 13 + 2 + dsi_len;
        let es_len = 3 + 2 + dcd_len + 3;
        o.extend_from_slice(&[3, es_len]);
        u16be(o, track_id as u16);
        o.push(0);
        o.extend_from_slice(&[4, dcd_len, 0x40, 0x15, 0, 0, 0]);
        u32be(o, 0); // max bitrate: unknown
        u32be(o, 0); // average bitrate: unknown
        o.extend_from_slice(&[5, dsi_len]);
        o.extend_from_slice(&asc);
        o.extend_from_slice(&[6, 1, 2]);
    });
}

fn sinf(o: &mut Vec<u8>, original: &[u8; 4], video: bool, p: &TrackProtection) {
    boxed(o, b"sinf", |o| {
        boxed(o, b"frma", |o| o.extend_from_slice(original));
        full(o, b"schm", 0, 0, |o| {
            o.extend_from_slice(p.scheme.fourcc());
            u32be(o, 0x0001_0000);
        });
        boxed(o, b"schi", |o| match p.scheme {
            Scheme::Cenc => full(o, b"tenc", 0, 0, |o| {
                o.extend_from_slice(&[0, 0, 1, 8]);
                o.extend_from_slice(&p.kid);
            }),
            Scheme::Cbcs => full(o, b"tenc", 1, 0, |o| {
                // Video 1:9 pattern; audio every block (0:0 means no pattern).
                let pattern = if video { 0x19 } else { 0 };
                o.extend_from_slice(&[0, pattern, 1, 0]);
                o.extend_from_slice(&p.kid);
                o.push(16);
                o.extend_from_slice(&p.constant_iv);
            }),
        });
    });
}

fn sample_entry(o: &mut Vec<u8>, t: &Track) {
    let protected = t.protection.as_ref();
    match &t.codec {
        Codec::Avc(c) => boxed(
            o,
            if protected.is_some() {
                b"encv"
            } else {
                b"avc1"
            },
            |o| {
                o.extend_from_slice(&[0; 6]);
                u16be(o, 1); // data_reference_index
                o.extend_from_slice(&[0; 16]);
                u16be(o, c.width);
                u16be(o, c.height);
                u32be(o, 0x0048_0000);
                u32be(o, 0x0048_0000);
                u32be(o, 0);
                u16be(o, 1); // frame_count
                o.extend_from_slice(&[0; 32]); // compressorname
                u16be(o, 0x0018);
                u16be(o, 0xFFFF);
                boxed(o, b"avcC", |o| o.extend_from_slice(&c.avcc()));
                if let Some(p) = protected {
                    sinf(o, b"avc1", true, p);
                }
            },
        ),
        Codec::Aac(c) => boxed(
            o,
            if protected.is_some() {
                b"enca"
            } else {
                b"mp4a"
            },
            |o| {
                o.extend_from_slice(&[0; 6]);
                u16be(o, 1);
                o.extend_from_slice(&[0; 8]);
                u16be(o, u16::from(c.channels));
                u16be(o, 16);
                u32be(o, 0);
                u32be(o, c.sample_rate.min(0xFFFF) << 16);
                esds(o, t.id, c);
                if let Some(p) = protected {
                    sinf(o, b"mp4a", false, p);
                }
            },
        ),
        // Text stays clear, as players expect of it.
        Codec::WebVtt => boxed(o, b"wvtt", |o| {
            o.extend_from_slice(&[0; 6]);
            u16be(o, 1);
            boxed(o, b"vttC", |o| o.extend_from_slice(b"WEBVTT"));
        }),
    }
}

fn trak(o: &mut Vec<u8>, t: &Track) {
    let (width, height) = match &t.codec {
        Codec::Avc(c) => (u32::from(c.width), u32::from(c.height)),
        Codec::Aac(_) | Codec::WebVtt => (0, 0),
    };
    let (handler, name, volume): (&[u8; 4], &[u8], u16) = match &t.codec {
        Codec::Avc(_) => (b"vide", b"edgepack video\0", 0),
        Codec::Aac(_) => (b"soun", b"edgepack audio\0", 0x0100),
        Codec::WebVtt => (b"text", b"edgepack subtitles\0", 0),
    };
    boxed(o, b"trak", |o| {
        full(o, b"tkhd", 0, 3, |o| {
            u32be(o, 0);
            u32be(o, 0);
            u32be(o, t.id);
            u32be(o, 0);
            u32be(o, 0); // duration: fragmented
            o.extend_from_slice(&[0; 8]);
            u16be(o, 0); // layer
            u16be(o, 0); // alternate group
            u16be(o, volume);
            u16be(o, 0);
            MATRIX.iter().for_each(|m| u32be(o, *m));
            u32be(o, width << 16);
            u32be(o, height << 16);
        });
        boxed(o, b"mdia", |o| {
            full(o, b"mdhd", 0, 0, |o| {
                u32be(o, 0);
                u32be(o, 0);
                u32be(o, t.timescale);
                u32be(o, 0);
                u16be(o, 0x55C4); // 'und'
                u16be(o, 0);
            });
            full(o, b"hdlr", 0, 0, |o| {
                u32be(o, 0);
                o.extend_from_slice(handler);
                o.extend_from_slice(&[0; 12]);
                o.extend_from_slice(name);
            });
            boxed(o, b"minf", |o| {
                match &t.codec {
                    Codec::Avc(_) => full(o, b"vmhd", 0, 1, |o| o.extend_from_slice(&[0; 8])),
                    Codec::Aac(_) => full(o, b"smhd", 0, 0, |o| o.extend_from_slice(&[0; 4])),
                    Codec::WebVtt => full(o, b"nmhd", 0, 0, |_| {}),
                }
                boxed(o, b"dinf", |o| {
                    full(o, b"dref", 0, 0, |o| {
                        u32be(o, 1);
                        full(o, b"url ", 0, 1, |_| {});
                    });
                });
                boxed(o, b"stbl", |o| {
                    full(o, b"stsd", 0, 0, |o| {
                        u32be(o, 1);
                        sample_entry(o, t);
                    });
                    full(o, b"stts", 0, 0, |o| u32be(o, 0));
                    full(o, b"stsc", 0, 0, |o| u32be(o, 0));
                    full(o, b"stsz", 0, 0, |o| {
                        u32be(o, 0);
                        u32be(o, 0);
                    });
                    full(o, b"stco", 0, 0, |o| u32be(o, 0));
                });
            });
        });
    });
}

/// The CMAF initialization segment for these tracks.
pub fn init_segment(tracks: &[Track]) -> Vec<u8> {
    let mut o = Vec::with_capacity(1024);
    boxed(&mut o, b"ftyp", |o| {
        o.extend_from_slice(b"cmfc");
        u32be(o, 0);
        for brand in [b"cmfc", b"iso6", b"mp41"] {
            o.extend_from_slice(brand);
        }
    });
    boxed(&mut o, b"moov", |o| {
        full(o, b"mvhd", 0, 0, |o| {
            u32be(o, 0);
            u32be(o, 0);
            u32be(o, 1000);
            u32be(o, 0);
            u32be(o, 0x0001_0000);
            u16be(o, 0x0100);
            o.extend_from_slice(&[0; 10]);
            MATRIX.iter().for_each(|m| u32be(o, *m));
            o.extend_from_slice(&[0; 24]);
            u32be(o, tracks.iter().map(|t| t.id).max().unwrap_or(0) + 1);
        });
        for t in tracks {
            trak(o, t);
        }
        boxed(o, b"mvex", |o| {
            for t in tracks {
                full(o, b"trex", 0, 0, |o| {
                    u32be(o, t.id);
                    u32be(o, 1);
                    u32be(o, 0);
                    u32be(o, 0);
                    u32be(o, 0);
                });
            }
        });
        // The key ids, for ClearKey and every system that reads the common `pssh`.
        let mut kids: Vec<[u8; 16]> = tracks
            .iter()
            .filter_map(|t| t.protection.as_ref().map(|p| p.kid))
            .collect();
        kids.dedup();
        if !kids.is_empty() {
            o.extend_from_slice(&pssh(&kids));
        }
    });
    o
}

/// A `pssh` box of the W3C common system (version 1) listing key ids: ClearKey and every
/// system that reads the common format find the KIDs in it.
pub fn pssh(kids: &[[u8; 16]]) -> Vec<u8> {
    let mut o = Vec::with_capacity(32 + 16 * kids.len());
    full(&mut o, b"pssh", 1, 0, |o| {
        o.extend_from_slice(&COMMON_SYSTEM_ID);
        u32be(o, kids.len() as u32);
        kids.iter().for_each(|k| o.extend_from_slice(k));
        u32be(o, 0);
    });
    o
}

/// `sample_flags`: a sync sample depends on nothing; any other is a non-sync sample that does.
pub(crate) fn sample_flags(sync: bool) -> u32 {
    if sync { 0x0200_0000 } else { 0x0101_0000 }
}

/// `saiz` (sizes of the sample auxiliary information), `saio` (where it is; the field to patch
/// and the position of the data are pushed to `aux_fields`) and `senc` (IVs and subsamples).
fn sample_encryption(o: &mut Vec<u8>, aux: &RunAux, aux_fields: &mut Vec<(usize, usize)>) {
    let subsamples = aux.samples.iter().any(|s| !s.subsamples.is_empty());
    // saiz and saio first, then senc, as shaka-packager writes them (ffmpeg reads them so).
    full(o, b"saiz", 0, 0, |o| {
        o.push(0); // the sizes vary
        u32be(o, aux.samples.len() as u32);
        for s in &aux.samples {
            let n = s.iv.len()
                + if subsamples {
                    2 + 6 * s.subsamples.len()
                } else {
                    0
                };
            o.push(n.min(255) as u8);
        }
    });
    let mut field = 0;
    full(o, b"saio", 0, 0, |o| {
        u32be(o, 1);
        field = o.len();
        u32be(o, 0);
    });
    full(o, b"senc", 0, if subsamples { 2 } else { 0 }, |o| {
        u32be(o, aux.samples.len() as u32);
        aux_fields.push((field, o.len()));
        sample_encryption_entries(o, aux, subsamples);
    });
}

/// The entries of a sample encryption box (`senc`, and PIFF's): each sample's IV and, with
/// `subsamples` (flag 2), its clear/protected byte counts.
pub(crate) fn sample_encryption_entries(o: &mut Vec<u8>, aux: &RunAux, subsamples: bool) {
    for s in &aux.samples {
        o.extend_from_slice(&s.iv);
        if subsamples {
            u16be(o, s.subsamples.len() as u16);
            for (clear, protected) in &s.subsamples {
                u16be(o, *clear);
                u32be(o, *protected);
            }
        }
    }
}

/// A CMAF media segment (`styp` + `moof` + `mdat`) holding one run per track.
pub fn media_segment(sequence_number: u32, runs: &[Run]) -> Vec<u8> {
    let mut o = Vec::with_capacity(
        runs.iter()
            .map(|r| r.data.len() + 16 * r.samples.len())
            .sum::<usize>()
            + 256,
    );
    boxed(&mut o, b"styp", |o| {
        o.extend_from_slice(b"msdh");
        u32be(o, 0);
        for brand in [b"msdh", b"cmfs"] {
            o.extend_from_slice(brand);
        }
    });
    let moof_start = o.len();
    let mut offset_fields = Vec::with_capacity(runs.len());
    // saio fields to patch: (field position, position of the senc sample data).
    let mut aux_fields: Vec<(usize, usize)> = Vec::new();
    boxed(&mut o, b"moof", |o| {
        full(o, b"mfhd", 0, 0, |o| u32be(o, sequence_number));
        for r in runs {
            boxed(o, b"traf", |o| {
                // default-base-is-moof: data offsets count from the start of this moof.
                full(o, b"tfhd", 0, 0x02_0000, |o| u32be(o, r.track_id));
                full(o, b"tfdt", 1, 0, |o| u64be(o, r.base_decode_time));
                // data offset, duration, size, flags and (signed) composition offset per sample.
                full(
                    o,
                    b"trun",
                    1,
                    0x0001 | 0x0100 | 0x0200 | 0x0400 | 0x0800,
                    |o| {
                        u32be(o, r.samples.len() as u32);
                        offset_fields.push(o.len());
                        u32be(o, 0);
                        for s in &r.samples {
                            u32be(o, s.duration);
                            u32be(o, s.size);
                            u32be(o, sample_flags(s.sync));
                            o.extend_from_slice(&s.composition_offset.to_be_bytes());
                        }
                    },
                );
                if let Some(aux) = &r.aux {
                    sample_encryption(o, aux, &mut aux_fields);
                }
            });
        }
    });
    for (field, data_at) in aux_fields {
        // Offsets count from the moof (default-base-is-moof).
        let offset = (data_at - moof_start) as u32;
        o[field..field + 4].copy_from_slice(&offset.to_be_bytes());
    }
    let moof_len = o.len() - moof_start;
    let mut data_offset = moof_len + 8;
    for (r, field) in runs.iter().zip(offset_fields) {
        o[field..field + 4].copy_from_slice(&(data_offset as u32).to_be_bytes());
        data_offset += r.data.len();
    }
    boxed(&mut o, b"mdat", |o| {
        for r in runs {
            o.extend_from_slice(&r.data);
        }
    });
    o
}
