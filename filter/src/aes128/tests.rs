//! The modes over every engine this build has — the production one ([`Backend`]: RustCrypto
//! natively, the SIMD128 vector-permute AES in wasm) and the vector-permute algorithm over the
//! portable vector — against FIPS-197, NIST SP 800-38A and RustCrypto (`aes` + `cbc`).
//! Test code only (declared `#[cfg(test)]` in `aes128/mod.rs`, never in the `.wasm`): it fails
//! loudly on purpose.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::portable::Portable;
use super::vpaes::Vpaes;
use super::*;
use aes::cipher::{BlockEncrypt, BlockEncryptMut, KeyInit, KeyIvInit, block_padding::Pkcs7};

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).unwrap()
}

fn h16(s: &str) -> [u8; 16] {
    h(s).try_into().unwrap()
}

/// Runs `check` over every engine, named.
fn for_each_engine(check: impl Fn(&str, &dyn Fn(&[u8; 16]) -> Box<dyn Engine>)) {
    check("backend", &|k| Box::new(backend(k)));
    check("vpaes/portable", &|k| Box::new(Vpaes::<Portable>::new(k)));
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    check("vpaes/simd128", &|k| {
        Box::new(Vpaes::<super::simd128::Simd128>::new(k))
    });
    check("rustcrypto", &|k| Box::new(aes::Aes128::new(k.into())));
}

impl Engine for Box<dyn Engine> {
    fn encrypt_block(&self, block: &mut [u8; 16]) {
        (**self).encrypt_block(block)
    }
    fn cbc_encrypt(&self, chain: &mut [u8; 16], blocks: &mut [[u8; 16]]) {
        (**self).cbc_encrypt(chain, blocks)
    }
    fn ctr_xor(&self, counter: &mut [u8; 16], blocks: &mut [[u8; 16]]) {
        (**self).ctr_xor(counter, blocks)
    }
}

/// The reference CBC+PKCS#7: RustCrypto.
fn reference_cbc(key: &[u8; 16], iv: &[u8; 16], data: &[u8]) -> Vec<u8> {
    cbc::Encryptor::<aes::Aes128>::new(key.into(), iv.into()).encrypt_padded_vec_mut::<Pkcs7>(data)
}

/// The reference CTR, `cenc`'s counter: block `i` of the keystream is AES(IV ‖ (n + i) mod 2^64),
/// one RustCrypto block at a time.
fn reference_ctr(key: &[u8; 16], counter: &[u8; 16], data: &[u8]) -> Vec<u8> {
    let cipher = aes::Aes128::new(key.into());
    let n = u64::from_be_bytes(counter[8..].try_into().unwrap());
    data.chunks(16)
        .enumerate()
        .flat_map(|(i, chunk)| {
            let mut block = *counter;
            block[8..].copy_from_slice(&n.wrapping_add(i as u64).to_be_bytes());
            let mut ks = block.into();
            BlockEncrypt::encrypt_block(&cipher, &mut ks);
            chunk.iter().zip(ks).map(|(d, k)| d ^ k).collect::<Vec<_>>()
        })
        .collect()
}

/// `data` through a CTR keystream applied in pieces ending at `cuts`.
fn ctr_in_pieces<E: Engine>(e: &E, counter: [u8; 16], data: &[u8], cuts: &[usize]) -> Vec<u8> {
    let mut out = data.to_vec();
    let mut state = CtrState::new(counter);
    let mut cuts: Vec<usize> = cuts.iter().map(|&c| c.min(data.len())).collect();
    cuts.sort();
    let mut at = 0;
    for c in cuts.into_iter().chain([data.len()]) {
        state.apply(e, &mut out[at..c]);
        at = c;
    }
    out
}

/// CBC of whole blocks in pieces ending at block boundaries `cuts`.
fn cbc_in_pieces<E: Engine>(e: &E, iv: [u8; 16], data: &[u8], cuts: &[usize]) -> Vec<u8> {
    let mut out = data.to_vec();
    let blocks = out.as_chunks_mut::<16>().0;
    let mut cuts: Vec<usize> = cuts.iter().map(|&c| c.min(blocks.len())).collect();
    cuts.sort();
    let mut chain = iv;
    let mut at = 0;
    for c in cuts.into_iter().chain([blocks.len()]) {
        e.cbc_encrypt(&mut chain, &mut blocks[at..c]);
        at = c;
    }
    out
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn fips_197_appendix_c1() {
    for_each_engine(|name, make| {
        let e = make(&h16("000102030405060708090a0b0c0d0e0f"));
        let mut block = h16("00112233445566778899aabbccddeeff");
        e.encrypt_block(&mut block);
        assert_eq!(block, h16("69c4e0d86a7b0430d8cdb78070b4c55a"), "{name}");
    });
}

const SP800_38A_KEY: &str = "2b7e151628aed2a6abf7158809cf4f3c";
const SP800_38A_PLAIN: &str = "6bc1bee22e409f96e93d7e117393172a ae2d8a571e03ac9c9eb76fac45af8e51
    30c81c46a35ce411e5fbc1191a0a52ef f69f2445df4f9b17ad2b417be66c3710";

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn sp800_38a_f21_cbc_aes128_encrypt() {
    let plain = h(&SP800_38A_PLAIN.replace('\n', ""));
    let cipher = h(
        "7649abac8119b246cee98e9b12e9197d 5086cb9b507219ee95db113a917678b2
        73bed6b8e3c1743b7116e69e22229516 3ff1caa1681fac09120eca307586e1a7"
            .replace('\n', "")
            .as_str(),
    );
    let iv = h16("000102030405060708090a0b0c0d0e0f");
    for_each_engine(|name, make| {
        let e = make(&h16(SP800_38A_KEY));
        for cuts in [&[][..], &[1], &[1, 3], &[0, 2, 2]] {
            assert_eq!(
                cbc_in_pieces(&e, iv, &plain, cuts),
                cipher,
                "{name} {cuts:?}"
            );
        }
        // PKCS#7 adds a whole block of 16s after them.
        let padded = pkcs7_encrypt(&e, &iv, &plain);
        assert_eq!(padded[..64], cipher[..], "{name}");
        assert_eq!(padded, reference_cbc(&h16(SP800_38A_KEY), &iv, &plain));
    });
    let mut data = plain.clone();
    let mut chain = iv;
    Aes128::new(&h16(SP800_38A_KEY)).cbc_encrypt(&mut chain, &mut data);
    assert_eq!(data, cipher);
    assert_eq!(chain[..], cipher[48..]);
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn sp800_38a_f51_ctr_aes128_encrypt() {
    let plain = h(&SP800_38A_PLAIN.replace('\n', ""));
    let cipher = h(
        "874d6191b620e3261bef6864990db6ce 9806f66b7970fdff8617187bb9fffdff
        5ae4df3edbd5d35e5b4f09020db03eab 1e031dda2fbe03d1792170a0f3009cee"
            .replace('\n', "")
            .as_str(),
    );
    let counter = h16("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff");
    for_each_engine(|name, make| {
        let e = make(&h16(SP800_38A_KEY));
        for cuts in [&[][..], &[5], &[16, 17, 31, 63], &[1, 2, 3, 40, 41]] {
            assert_eq!(
                ctr_in_pieces(&e, counter, &plain, cuts),
                cipher,
                "{name} {cuts:?}"
            );
        }
    });
    let key = Aes128::new(&h16(SP800_38A_KEY));
    let mut ctr = key.ctr(counter);
    let mut data = plain.clone();
    let (a, b) = data.split_at_mut(23);
    ctr.apply(a);
    ctr.apply(b);
    assert_eq!(data, cipher);
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn ctr_counts_in_the_low_64_bits_and_wraps_there() {
    let key = [0x2b; 16];
    let counter = h16("0123456789abcdef fffffffffffffffd"
        .replace(' ', "")
        .as_str());
    let data = vec![0x5a; 16 * 9 + 7];
    let want = reference_ctr(&key, &counter, &data);
    for_each_engine(|name, make| {
        let e = make(&key);
        assert_eq!(ctr_in_pieces(&e, counter, &data, &[]), want, "{name}");
        assert_eq!(
            ctr_in_pieces(&e, counter, &data, &[3, 48, 100]),
            want,
            "{name}"
        );
        let mut c = counter;
        e.ctr_xor(&mut c, &mut [[0; 16]; 5]);
        assert_eq!(c, h16("0123456789abcdef0000000000000002"), "{name}");
    });
}

/// xorshift64*: random cases where proptest does not run (wasm).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn bytes<const N: usize>(&mut self) -> [u8; N] {
        core::array::from_fn(|_| self.next() as u8)
    }
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn random_keys_ivs_and_lengths_match_rustcrypto() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for case in 0..150 {
        let key: [u8; 16] = rng.bytes();
        let iv: [u8; 16] = rng.bytes();
        let len = rng.below(700);
        let data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let cuts: Vec<usize> = (0..rng.below(4)).map(|_| rng.below(len + 1)).collect();
        let want_cbc = reference_cbc(&key, &iv, &data);
        let want_ctr = reference_ctr(&key, &iv, &data);
        assert_eq!(cbc_pkcs7_encrypt(&key, &iv, &data), want_cbc, "case {case}");
        for_each_engine(|name, make| {
            let e = make(&key);
            assert_eq!(
                pkcs7_encrypt(&e, &iv, &data),
                want_cbc,
                "{name} case {case}"
            );
            assert_eq!(
                ctr_in_pieces(&e, iv, &data, &cuts),
                want_ctr,
                "{name} case {case} {cuts:?}"
            );
        });
    }
}

/// The SIMD128 vector against the portable one, operation by operation: the permutation arms
/// against `PERMS`, lookups (with the `0x80..` indices of 1/0) and nibbles on random vectors.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[wasm_bindgen_test::wasm_bindgen_test]
fn simd128_lanes_match_portable() {
    use super::simd128::Simd128;
    use super::vpaes::{Lanes, PERMS};
    fn bytes(v: Simd128) -> [u8; 16] {
        let mut b = [0; 16];
        v.store(&mut b);
        b
    }
    fn both<const P: usize>(x: [u8; 16]) {
        assert_eq!(
            bytes(Simd128::load(&x).permute::<P>()),
            Portable(x).permute::<P>().0,
            "permutation {P}"
        );
    }
    let mut rng = Rng(7);
    for _ in 0..50 {
        let x: [u8; 16] = rng.bytes();
        both::<0>(x);
        both::<1>(x);
        both::<2>(x);
        both::<3>(x);
        both::<4>(x);
        both::<5>(x);
        both::<6>(x);
        both::<7>(x);
        both::<8>(x);
        both::<9>(x);
        both::<10>(x);
        both::<11>(x);
        both::<12>(x);
        both::<13>(x);
        both::<14>(x);
        assert_eq!(PERMS.len(), 15);
        let index: [u8; 16] = rng.bytes::<16>().map(|b| b & 0x8F);
        assert_eq!(
            bytes(Simd128::load(&x).lookup(Simd128::load(&index))),
            Portable(x).lookup(Portable(index)).0
        );
        let y: [u8; 16] = rng.bytes();
        let (sx, sy) = (Simd128::load(&x), Simd128::load(&y));
        assert_eq!(bytes(sx.and(sy)), Portable(x).and(Portable(y)).0);
        assert_eq!(bytes(sx.xor(sy)), Portable(x).xor(Portable(y)).0);
        let low = Portable([0x0F; 16]);
        assert_eq!(
            bytes(sx.high_nibbles_down().and(Simd128::load(&low.0))),
            Portable(x).high_nibbles_down().and(low).0
        );
        let (a, b) = (rng.next(), rng.next());
        assert_eq!(bytes(Simd128::from_u64s(a, b)), Portable::from_u64s(a, b).0);
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// CBC+PKCS#7 and CTR (in pieces, `cenc`'s counter, including its 64-bit wrap) agree
        /// with RustCrypto on every engine.
        #[test]
        fn modes_match_rustcrypto(
            key in any::<[u8; 16]>(),
            iv in any::<[u8; 16]>(),
            near_wrap in any::<bool>(),
            data in proptest::collection::vec(any::<u8>(), 0..2048),
            cuts in proptest::collection::vec(0usize..2048, 0..5),
        ) {
            let mut counter = iv;
            if near_wrap {
                counter[8..15].fill(0xFF);
            }
            let want_cbc = reference_cbc(&key, &iv, &data);
            let want_ctr = reference_ctr(&key, &counter, &data);
            prop_assert_eq!(&cbc_pkcs7_encrypt(&key, &iv, &data), &want_cbc);
            for_each_engine(|name, make| {
                let e = make(&key);
                assert_eq!(pkcs7_encrypt(&e, &iv, &data), want_cbc, "{name}");
                assert_eq!(ctr_in_pieces(&e, counter, &data, &cuts), want_ctr, "{name}");
                let blocks: Vec<usize> = cuts.iter().map(|c| c / 16).collect();
                let whole = &data[..data.len() / 16 * 16];
                assert_eq!(
                    cbc_in_pieces(&e, iv, whole, &blocks),
                    want_cbc[..whole.len()],
                    "{name}"
                );
            });
        }
    }
}
