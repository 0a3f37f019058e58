//! Smooth Streaming fragments read as a PlayReady client reads them: a fragment's samples and
//! PIFF common encryption (AES-CTR, 8-byte IVs, subsamples) undone by RustCrypto's AES and CTR,
//! not by the filter's own code.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

/// The child boxes of `data`: (type, payload).
fn boxes(data: &[u8]) -> Vec<([u8; 4], &[u8])> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 8 <= data.len() {
        let size = u32::from_be_bytes(data[at..at + 4].try_into().unwrap()) as usize;
        assert!(
            size >= 8 && at + size <= data.len(),
            "a box overruns its parent"
        );
        out.push((
            data[at + 4..at + 8].try_into().unwrap(),
            &data[at + 8..at + size],
        ));
        at += size;
    }
    out
}

/// The payload of the `uuid` box with this user type, in `traf`.
fn uuid_box<'a>(traf: &'a [u8], user_type: &[u8; 16]) -> Option<&'a [u8]> {
    boxes(traf)
        .into_iter()
        .find(|(t, p)| t == b"uuid" && p.starts_with(user_type))
        .map(|(_, p)| &p[16..])
}

/// A fragment's `traf` payload and its samples (the `mdat` payload cut by the `trun` sizes).
pub fn fragment_samples(fragment: &[u8]) -> (&[u8], Vec<&[u8]>) {
    let top = boxes(fragment);
    let moof = top.iter().find(|(t, _)| t == b"moof").unwrap().1;
    let mdat = top.iter().find(|(t, _)| t == b"mdat").unwrap().1;
    let traf = boxes(moof)
        .into_iter()
        .find(|(t, _)| t == b"traf")
        .unwrap()
        .1;
    let trun = boxes(traf)
        .into_iter()
        .find(|(t, _)| t == b"trun")
        .unwrap()
        .1;
    let count = u32::from_be_bytes(trun[4..8].try_into().unwrap()) as usize;
    let mut samples = Vec::with_capacity(count);
    let mut at = 0;
    for i in 0..count {
        let size_at = 12 + 16 * i + 4;
        let size = u32::from_be_bytes(trun[size_at..size_at + 4].try_into().unwrap()) as usize;
        samples.push(&mdat[at..at + size]);
        at += size;
    }
    assert_eq!(at, mdat.len(), "the samples fill the mdat");
    (traf, samples)
}

/// Decrypts PIFF common encryption (AES-CTR, 8-byte IVs, subsamples) with `key`: what the
/// PlayReady client does, by RustCrypto's AES and CTR (not the filter's own code).
pub fn piff_decrypt(fragment: &[u8], key: &[u8; 16]) -> Vec<Vec<u8>> {
    use aes::cipher::{KeyIvInit, StreamCipher};
    const PIFF_SENC: [u8; 16] = [
        0xA2, 0x39, 0x4F, 0x52, 0x5A, 0x9B, 0x4F, 0x14, 0xA2, 0x44, 0x6C, 0x42, 0x7C, 0x64, 0x8D,
        0xF4,
    ];
    let (traf, samples) = fragment_samples(fragment);
    let senc = uuid_box(traf, &PIFF_SENC).expect("PIFF sample encryption box");
    let subsamples = senc[3] & 2 != 0;
    let count = u32::from_be_bytes(senc[4..8].try_into().unwrap()) as usize;
    assert_eq!(count, samples.len());
    let mut at = 8;
    let mut clear = Vec::with_capacity(count);
    for sample in samples {
        let mut iv = [0u8; 16];
        iv[..8].copy_from_slice(&senc[at..at + 8]);
        at += 8;
        let mut ranges = Vec::new();
        if subsamples {
            let n = u16::from_be_bytes([senc[at], senc[at + 1]]) as usize;
            at += 2;
            let mut pos = 0;
            for _ in 0..n {
                let c = u16::from_be_bytes([senc[at], senc[at + 1]]) as usize;
                let p = u32::from_be_bytes(senc[at + 2..at + 6].try_into().unwrap()) as usize;
                at += 6;
                ranges.push(pos + c..pos + c + p);
                pos += c + p;
            }
            assert_eq!(pos, sample.len(), "subsamples cover the sample");
        } else {
            ranges.push(0..sample.len());
        }
        // One key stream per sample, across its protected ranges.
        let mut protected: Vec<u8> = ranges
            .iter()
            .flat_map(|r| sample[r.clone()].to_vec())
            .collect();
        ctr::Ctr64BE::<aes::Aes128>::new(key.into(), &iv.into()).apply_keystream(&mut protected);
        let mut out = sample.to_vec();
        let mut from = 0;
        for r in ranges {
            let n = r.len();
            out[r].copy_from_slice(&protected[from..from + n]);
            from += n;
        }
        clear.push(out);
    }
    clear
}
