//! Common encryption of CMAF samples (ISO/IEC 23001-7): `cenc` (AES-128-CTR, 8-byte per-sample
//! IVs) and `cbcs` (AES-128-CBC, 1:9 pattern for video, constant IV). Video samples use
//! subsample encryption — every NAL unit's length and header stay clear, non-VCL units entirely,
//! and protected ranges are whole 16-byte blocks — audio samples full-sample encryption.

use super::CmafError;
use crate::aes128::Aes128;

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

/// AES-CBC with a crypt:skip pattern (in blocks) over the whole blocks of `data`, from `iv`; the
/// chain runs through the encrypted blocks only. A partial block at the end stays clear.
fn cbc_pattern(key: &Aes128, iv: &[u8; 16], crypt: usize, skip: usize, data: &mut [u8]) {
    let mut chain = *iv;
    if skip == 0 {
        key.cbc_encrypt(&mut chain, data);
        return;
    }
    for run in data.chunks_mut((crypt + skip) * 16) {
        let end = run.len().min(crypt * 16);
        key.cbc_encrypt(&mut chain, &mut run[..end]);
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
    let key = Aes128::new(&p.key);
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
        // One keystream across the sample's protected ranges.
        let mut keystream = key.ctr(counter);
        let mut pos = 0;
        for &(clear, protected) in &map {
            pos += clear;
            let range = &mut sample[pos..pos + protected];
            match p.scheme {
                Scheme::Cenc => keystream.apply(range),
                // Each protected range starts again from the constant IV; video 1:9, audio
                // every whole block.
                Scheme::Cbcs if video => cbc_pattern(&key, &p.constant_iv, 1, 9, range),
                Scheme::Cbcs => cbc_pattern(&key, &p.constant_iv, 1, 0, range),
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

#[cfg(test)]
mod tests {
    use super::*;
    use aes::cipher::{BlockEncrypt, KeyInit};

    /// CEA-608/708 captions ride in SEI NAL units (ATSC A/53 `GA94` user data): the remux keeps
    /// them in the sample and encryption leaves them clear, so players that read captions from
    /// the (still encrypted) samples find them, as CENC requires of non-VCL units.
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn caption_sei_is_carried_and_left_clear() {
        let sei: &[u8] = &[
            0x06, 0x04, 0x0d, 0xb5, 0x00, 0x31, b'G', b'A', b'9', b'4', 0x03, 0xc1, 0xff, 0xfc,
            0x94, 0x20, 0x80,
        ];
        let slice: Vec<u8> = [&[0x65u8, 0x88][..], &[0xAB; 300]].concat();
        let (mut sample, idr) = super::super::h264::sample_data(&[&[0x09, 0xf0], sei, &slice]);
        assert!(idr);
        let sei_at = 4;
        assert_eq!(
            &sample[sei_at..sei_at + sei.len()],
            sei,
            "the SEI is in the sample"
        );
        let p = Protection {
            scheme: Scheme::Cenc,
            key: [7; 16],
            kid: [1; 16],
            iv_base: 5,
            constant_iv: [0; 16],
        };
        let size = sample.len() as u32;
        let aux = encrypt_run(&p, true, &[size], &mut sample).unwrap();
        assert_eq!(&sample[sei_at..sei_at + sei.len()], sei, "and stays clear");
        let subsamples = &aux.samples[0].subsamples;
        assert!(
            subsamples[0].0 as usize >= 4 + sei.len() + 4,
            "{subsamples:?}"
        );
        assert_ne!(
            &sample[sample.len() - 16..],
            &[0xAB; 16],
            "the slice is encrypted"
        );
    }

    /// `cbcs`'s pattern CBC as it was written over RustCrypto, one block at a time.
    fn reference_pattern(
        key: &[u8; 16],
        iv: &[u8; 16],
        crypt: usize,
        skip: usize,
        data: &mut [u8],
    ) {
        let cipher = aes::Aes128::new(key.into());
        let mut chain = *iv;
        let period = crypt + skip;
        for n in 0..data.len() / 16 {
            if period > 0 && n % period >= crypt {
                continue;
            }
            let block = &mut data[n * 16..n * 16 + 16];
            for (b, c) in block.iter_mut().zip(chain.iter()) {
                *b ^= c;
            }
            cipher.encrypt_block(block.into());
            chain.copy_from_slice(block);
        }
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn pattern_cbc_matches_the_block_by_block_reference() {
        let key = [0x2b; 16];
        let iv = [7; 16];
        let aes = Aes128::new(&key);
        for len in [0usize, 15, 16, 17, 160, 161, 175, 176, 500, 16 * 37 + 5] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            for (crypt, skip) in [(1, 9), (1, 0), (2, 3), (0, 9)] {
                let mut ours = data.clone();
                cbc_pattern(&aes, &iv, crypt, skip, &mut ours);
                let mut want = data.clone();
                reference_pattern(&key, &iv, crypt, skip, &mut want);
                assert_eq!(ours, want, "{len} bytes, {crypt}:{skip}");
            }
        }
    }

    /// `cenc` video: the protected ranges of a sample, concatenated, are one CTR keystream from
    /// IV ‖ 0 (RustCrypto, block by block), whatever their lengths.
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn cenc_ranges_share_one_keystream() {
        let p = Protection {
            scheme: Scheme::Cenc,
            key: [0x42; 16],
            kid: [0; 16],
            iv_base: u64::MAX - 1,
            constant_iv: [0; 16],
        };
        // Two slices (protected 64 and 160 bytes) around an SEI, twice (two samples).
        let mut sample = Vec::new();
        for (len, nal) in [(100u32, 0x65u8), (10, 0x06), (200, 0x41)] {
            sample.extend_from_slice(&len.to_be_bytes());
            sample.push(nal);
            sample.extend((1..len).map(|i| i as u8));
        }
        let size = sample.len() as u32;
        let mut data = [sample.clone(), sample.clone()].concat();
        let before = data.clone();
        let aux = encrypt_run(&p, true, &[size, size], &mut data).unwrap();
        let cipher = aes::Aes128::new((&p.key).into());
        for (index, s) in aux.samples.iter().enumerate() {
            assert_eq!(s.iv, p.iv_base.wrapping_add(index as u64).to_be_bytes());
            let base = index * sample.len();
            let mut ranges = Vec::new();
            let mut pos = base;
            for &(clear, protected) in &s.subsamples {
                pos += usize::from(clear);
                ranges.extend(pos..pos + protected as usize);
                pos += protected as usize;
            }
            assert_eq!(ranges.len(), 64 + 160);
            for (n, chunk) in ranges.chunks(16).enumerate() {
                let mut block = [0u8; 16];
                block[..8].copy_from_slice(&s.iv);
                block[8..].copy_from_slice(&(n as u64).to_be_bytes());
                cipher.encrypt_block((&mut block).into());
                for (&at, k) in chunk.iter().zip(block) {
                    assert_eq!(data[at], before[at] ^ k, "sample {index} byte {at}");
                }
            }
        }
    }
}
