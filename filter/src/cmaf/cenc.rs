//! Common encryption of CMAF samples (ISO/IEC 23001-7): `cenc` (AES-128-CTR, 8-byte per-sample
//! IVs) and `cbcs` (AES-128-CBC, 1:9 pattern for video, constant IV). Video samples use
//! subsample encryption — every NAL unit's length and header stay clear, non-VCL units entirely,
//! and protected ranges are whole 16-byte blocks — audio samples full-sample encryption.

use aes::Aes128;

use super::CmafError;
use aes::cipher::{BlockEncrypt, KeyInit, generic_array::GenericArray};

/// The protection scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Cenc,
    Cbcs,
}

impl Scheme {
    pub fn fourcc(self) -> &'static [u8; 4] {
        match self {
            Scheme::Cenc => b"cenc",
            Scheme::Cbcs => b"cbcs",
        }
    }
}

/// How a fragment is protected: one key (and its id) for every track.
#[derive(Debug, Clone, PartialEq)]
pub struct Protection {
    pub scheme: Scheme,
    pub key: [u8; 16],
    pub kid: [u8; 16],
    /// `cenc`: per-sample IVs are `iv_base + sample index` (64 bits); make it unique per
    /// (rendition, segment, track) so no two samples under one key share an IV.
    pub iv_base: u64,
    /// `cbcs`: the constant IV.
    pub constant_iv: [u8; 16],
}

/// One sample's auxiliary information (`senc`).
#[derive(Debug, Clone, PartialEq)]
pub struct SampleAux {
    /// Empty for `cbcs` (constant IV).
    pub iv: Vec<u8>,
    /// (clear bytes, protected bytes); empty: the whole sample is protected.
    pub subsamples: Vec<(u16, u32)>,
}

/// What `senc` carries for a run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunAux {
    pub samples: Vec<SampleAux>,
}

/// Bytes kept clear at the start of a VCL NAL unit: its length field, header and the start of
/// the slice header.
const VCL_CLEAR: usize = 4 + 32;

/// The subsample map of a length-prefixed AVC sample: clear/protected pairs covering it all.
fn avc_subsamples(sample: &[u8]) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    let mut clear = 0usize;
    let mut i = 0;
    while i + 4 <= sample.len() {
        let len =
            u32::from_be_bytes([sample[i], sample[i + 1], sample[i + 2], sample[i + 3]]) as usize;
        let total = (4 + len).min(sample.len() - i);
        let vcl = matches!(sample.get(i + 4).map(|b| b & 0x1F), Some(1..=5));
        let protected = if vcl && total > VCL_CLEAR {
            (total - VCL_CLEAR) / 16 * 16
        } else {
            0
        };
        clear += total - protected;
        if protected > 0 {
            out.push((clear, protected));
            clear = 0;
        }
        i += total;
    }
    clear += sample.len() - i;
    if clear > 0 {
        out.push((clear, 0));
    }
    // `senc` counts clear bytes in 16 bits.
    let mut split = Vec::with_capacity(out.len());
    for (mut c, p) in out {
        while c > usize::from(u16::MAX) {
            split.push((usize::from(u16::MAX), 0));
            c -= usize::from(u16::MAX);
        }
        split.push((c, p));
    }
    split
}

fn encrypt_block(cipher: &Aes128, block: &mut [u8]) {
    cipher.encrypt_block(GenericArray::from_mut_slice(block));
}

/// AES-CTR over `data`, continuing the counter block `counter` (IV ‖ block count).
fn ctr(cipher: &Aes128, counter: &mut [u8; 16], offset: &mut usize, data: &mut [u8]) {
    let mut keystream = [0u8; 16];
    for b in data.iter_mut() {
        if *offset == 0 {
            keystream = *counter;
            encrypt_block(cipher, &mut keystream);
            // The low 64 bits count blocks.
            let n = u64::from_be_bytes([
                counter[8],
                counter[9],
                counter[10],
                counter[11],
                counter[12],
                counter[13],
                counter[14],
                counter[15],
            ])
            .wrapping_add(1);
            counter[8..].copy_from_slice(&n.to_be_bytes());
        }
        *b ^= keystream[*offset];
        *offset = (*offset + 1) % 16;
    }
}

/// AES-CBC with a crypt:skip pattern over the whole blocks of `data`, from `iv`.
fn cbc_pattern(cipher: &Aes128, iv: &[u8; 16], crypt: usize, skip: usize, data: &mut [u8]) {
    let mut chain = *iv;
    let blocks = data.len() / 16;
    let period = crypt + skip;
    for n in 0..blocks {
        if period > 0 && n % period >= crypt {
            continue;
        }
        let block = &mut data[n * 16..n * 16 + 16];
        for (b, c) in block.iter_mut().zip(chain.iter()) {
            *b ^= c;
        }
        encrypt_block(cipher, block);
        chain.copy_from_slice(block);
    }
}

/// Subsamples one sample can have: `saiz` gives each sample's auxiliary information one byte
/// (8-byte IV + 2 + 6 per subsample ≤ 255).
pub const MAX_SUBSAMPLES: usize = 40;

/// Encrypts a run's samples in place (`data` holds them back to back, `sizes` their lengths);
/// returns what `senc` must say.
pub fn encrypt_run(
    p: &Protection,
    video: bool,
    sizes: &[u32],
    data: &mut [u8],
) -> Result<RunAux, CmafError> {
    let cipher = Aes128::new(GenericArray::from_slice(&p.key));
    let mut samples = Vec::with_capacity(sizes.len());
    let mut at = 0usize;
    for (index, &size) in sizes.iter().enumerate() {
        let size = size as usize;
        let Some(sample) = data.get_mut(at..at + size) else {
            break;
        };
        at += size;
        let map: Vec<(usize, usize)> = if video {
            avc_subsamples(sample)
        } else {
            vec![(0, size)]
        };
        if map.len() > MAX_SUBSAMPLES {
            return Err(CmafError::Unsupported(format!(
                "a video sample with {} NAL units needs more than {MAX_SUBSAMPLES} subsamples; encode with fewer slices",
                map.len()
            )));
        }
        let iv = match p.scheme {
            Scheme::Cenc => p.iv_base.wrapping_add(index as u64).to_be_bytes().to_vec(),
            Scheme::Cbcs => Vec::new(),
        };
        let mut counter = [0u8; 16];
        counter[..8].copy_from_slice(&p.iv_base.wrapping_add(index as u64).to_be_bytes());
        let mut offset = 0;
        let mut pos = 0;
        for &(clear, protected) in &map {
            pos += clear;
            let range = &mut sample[pos..pos + protected];
            match p.scheme {
                // One keystream across the sample's protected ranges.
                Scheme::Cenc => ctr(&cipher, &mut counter, &mut offset, range),
                // Each protected range starts again from the constant IV; video 1:9, audio
                // every whole block.
                Scheme::Cbcs if video => cbc_pattern(&cipher, &p.constant_iv, 1, 9, range),
                Scheme::Cbcs => cbc_pattern(&cipher, &p.constant_iv, 1, 0, range),
            }
            pos += protected;
        }
        samples.push(SampleAux {
            iv,
            subsamples: if video {
                map.iter().map(|&(c, p)| (c as u16, p as u32)).collect()
            } else {
                Vec::new()
            },
        });
    }
    Ok(RunAux { samples })
}
