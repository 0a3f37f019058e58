//! Smooth Streaming fragments (MS-SSTR 2.2.4): one track's run as `moof` + `mdat`, its times in
//! the manifest's 10 MHz timescale, with the `tfxd` box (the fragment's absolute time and
//! duration) and the `tfrf` box (the fragment that follows) that Smooth Streaming clients read
//! in place of a `tfdt`. Encrypted runs carry PIFF's sample encryption box
//! (`uuid` A2394F52-…, the `senc` layout) for common encryption (`cenc`, AES-CTR).

use super::cenc::RunAux;
use super::mp4::{Run, boxed, full, sample_encryption_entries, sample_flags, u32be, u64be};

/// The timescale of every Smooth Streaming time here (MS-SSTR's default `TimeScale`).
pub const TIMESCALE: u64 = 10_000_000;

/// `TfxdBox` (MS-SSTR 2.2.4.4).
const TFXD: [u8; 16] = [
    0x6D, 0x1D, 0x9B, 0x05, 0x42, 0xD5, 0x44, 0xE6, 0x80, 0xE2, 0x14, 0x1D, 0xAF, 0xF7, 0x57, 0xB2,
];
/// `TfrfBox` (MS-SSTR 2.2.4.5).
const TFRF: [u8; 16] = [
    0xD4, 0x80, 0x7E, 0xF2, 0xCA, 0x39, 0x46, 0x95, 0x8E, 0x54, 0x26, 0xCB, 0x9E, 0x46, 0xA7, 0x9F,
];
/// PIFF's `SampleEncryptionBox` (PIFF 1.1, 5.3.2.1).
const PIFF_SENC: [u8; 16] = [
    0xA2, 0x39, 0x4F, 0x52, 0x5A, 0x9B, 0x4F, 0x14, 0xA2, 0x44, 0x6C, 0x42, 0x7C, 0x64, 0x8D, 0xF4,
];

/// Where a fragment sits on the manifest's timeline (10 MHz ticks). Its `tfrf` announces the
/// next fragment at its end, as long as itself: deterministic (every edge writes the same bytes,
/// so a fragment is cached forever), and present in every fragment — live Smooth Streaming
/// clients require it (dash.js stops with "Missing tfrf in live media segment", MSS error 200)
/// and learn the live edge only from it (dash.js never reloads a live Smooth manifest).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragmentTime {
    /// The fragment's `t` in the manifest.
    pub time: u64,
    /// The fragment's `d` in the manifest.
    pub duration: u64,
}

fn uuid_box(
    o: &mut Vec<u8>,
    uuid: &[u8; 16],
    version: u8,
    flags: u32,
    f: impl FnOnce(&mut Vec<u8>),
) {
    boxed(o, b"uuid", |o| {
        o.extend_from_slice(uuid);
        u32be(o, (u32::from(version) << 24) | flags);
        f(o);
    });
}

/// `t × 10^7 / timescale`, rounded to the nearest tick.
fn rescale(t: i128, timescale: u32) -> i128 {
    let ts = i128::from(timescale.max(1));
    (t * TIMESCALE as i128 + ts / 2).div_euclid(ts)
}

/// One track's run as a Smooth Streaming fragment: sample durations and composition offsets
/// rescaled from the track's `timescale` to 10 MHz (cumulatively, so no rounding drifts), the
/// first sample at the fragment's time.
pub fn fragment(sequence: u32, run: &Run, timescale: u32, at: FragmentTime) -> Vec<u8> {
    let mut decode = 0i128;
    let mut out_decode = 0i128;
    let mut samples = Vec::with_capacity(run.samples.len());
    for s in &run.samples {
        decode += i128::from(s.duration);
        let next = rescale(decode, timescale);
        let duration = u32::try_from(next - out_decode).unwrap_or(u32::MAX);
        out_decode = next;
        let cto = rescale(i128::from(s.composition_offset), timescale);
        samples.push((
            duration,
            s.size,
            s.sync,
            i32::try_from(cto).unwrap_or_default(),
        ));
    }
    let mut o = Vec::with_capacity(run.data.len() + 16 * samples.len() + 256);
    let moof_start = o.len();
    let mut offset_field = 0;
    boxed(&mut o, b"moof", |o| {
        full(o, b"mfhd", 0, 0, |o| u32be(o, sequence));
        boxed(o, b"traf", |o| {
            // default-base-is-moof: the data offset counts from this moof.
            full(o, b"tfhd", 0, 0x02_0000, |o| u32be(o, 1));
            full(
                o,
                b"trun",
                1,
                0x0001 | 0x0100 | 0x0200 | 0x0400 | 0x0800,
                |o| {
                    u32be(o, samples.len() as u32);
                    offset_field = o.len();
                    u32be(o, 0);
                    for (duration, size, sync, cto) in &samples {
                        u32be(o, *duration);
                        u32be(o, *size);
                        u32be(o, sample_flags(*sync));
                        o.extend_from_slice(&cto.to_be_bytes());
                    }
                },
            );
            if let Some(aux) = &run.aux {
                piff_sample_encryption(o, aux);
            }
            uuid_box(o, &TFXD, 1, 0, |o| {
                u64be(o, at.time);
                u64be(o, at.duration);
            });
            uuid_box(o, &TFRF, 1, 0, |o| {
                o.push(1);
                u64be(o, at.time.saturating_add(at.duration));
                u64be(o, at.duration);
            });
        });
    });
    let data_offset = (o.len() - moof_start + 8) as u32;
    o[offset_field..offset_field + 4].copy_from_slice(&data_offset.to_be_bytes());
    boxed(&mut o, b"mdat", |o| o.extend_from_slice(&run.data));
    o
}

/// PIFF's sample encryption box: per-sample 8-byte IVs and (flag 2) the subsample map, as
/// `senc`; the key id and IV size are the track's (the manifest's `ProtectionHeader`).
fn piff_sample_encryption(o: &mut Vec<u8>, aux: &RunAux) {
    let subsamples = aux.samples.iter().any(|s| !s.subsamples.is_empty());
    uuid_box(o, &PIFF_SENC, 0, if subsamples { 2 } else { 0 }, |o| {
        u32be(o, aux.samples.len() as u32);
        sample_encryption_entries(o, aux, subsamples);
    });
}

/// Upper-case hex, as `CodecPrivateData` is written.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmaf::mp4::Sample;

    /// The boxes of `data` at this level: (type, start, end).
    fn boxes(data: &[u8]) -> Vec<([u8; 4], usize, usize)> {
        let mut out = Vec::new();
        let mut at = 0;
        while at + 8 <= data.len() {
            let size = u32::from_be_bytes(data[at..at + 4].try_into().unwrap()) as usize;
            out.push((data[at + 4..at + 8].try_into().unwrap(), at, at + size));
            at += size;
        }
        out
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn a_fragment_states_its_time_rescaled_samples_and_the_next_fragment() {
        // Three 29.97 fps frames in 90 kHz (3003 ticks): 333,666.67 ticks of 10 MHz each.
        let run = Run {
            track_id: 1,
            base_decode_time: 123,
            samples: (0..3)
                .map(|i| Sample {
                    duration: 3003,
                    size: 2,
                    sync: i == 0,
                    composition_offset: if i == 1 { 6006 } else { 0 },
                })
                .collect(),
            data: vec![1, 2, 3, 4, 5, 6],
            aux: None,
        };
        let at = FragmentTime {
            time: 20_000_000,
            duration: 1_001_000,
        };
        let f = fragment(7, &run, 90_000, at);
        let top = boxes(&f);
        assert_eq!(
            top.iter().map(|b| &b.0).collect::<Vec<_>>(),
            [b"moof", b"mdat"]
        );
        assert_eq!(&f[top[1].1 + 8..], &[1, 2, 3, 4, 5, 6]);
        let moof = &f[8..top[0].2];
        let inner = boxes(moof);
        assert_eq!(&inner[1].0, b"traf");
        let traf = &moof[inner[1].1 + 8..inner[1].2];
        let kinds: Vec<[u8; 4]> = boxes(traf).iter().map(|b| b.0).collect();
        assert_eq!(kinds, [*b"tfhd", *b"trun", *b"uuid", *b"uuid"]);
        let parts = boxes(traf);
        let trun = &traf[parts[1].1..parts[1].2];
        // data offset: from the moof's start to the mdat's payload.
        let offset = u32::from_be_bytes(trun[16..20].try_into().unwrap()) as usize;
        assert_eq!(offset, top[1].1 + 8);
        let durations: Vec<u32> = (0..3)
            .map(|i| u32::from_be_bytes(trun[20 + 16 * i..24 + 16 * i].try_into().unwrap()))
            .collect();
        assert_eq!(durations, [333_667, 333_666, 333_667]);
        assert_eq!(durations.iter().sum::<u32>(), 1_001_000, "no drift");
        let cto = i32::from_be_bytes(trun[20 + 16 + 12..20 + 16 + 16].try_into().unwrap());
        assert_eq!(cto, 667_333);
        let tfxd = &traf[parts[2].1..parts[2].2];
        assert_eq!(&tfxd[8..24], &TFXD);
        assert_eq!(tfxd[24], 1, "version 1: 64-bit times");
        assert_eq!(
            u64::from_be_bytes(tfxd[28..36].try_into().unwrap()),
            20_000_000
        );
        assert_eq!(
            u64::from_be_bytes(tfxd[36..44].try_into().unwrap()),
            1_001_000
        );
        let tfrf = &traf[parts[3].1..parts[3].2];
        assert_eq!(&tfrf[8..24], &TFRF);
        assert_eq!(tfrf[28], 1, "one fragment announced");
        assert_eq!(
            u64::from_be_bytes(tfrf[29..37].try_into().unwrap()),
            21_001_000
        );
        assert_eq!(hex(&[0x00, 0x1f, 0xab]), "001FAB");
    }
}
