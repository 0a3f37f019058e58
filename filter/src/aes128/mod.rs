//! AES-128 encryption as the filter uses it: HLS whole-segment CBC with PKCS#7 (RFC 8216
//! §4.3.2.4), `cbcs` pattern CBC and `cenc` CTR (ISO/IEC 23001-7).
//!
//! Wasm has no AES instructions, and a table-driven software AES would be neither fast nor
//! constant-time there. Built with SIMD128 (`.cargo/config.toml` enables it for the wasm
//! targets; Envoy's V8 and wasmtime run it), the filter encrypts with Hamburg's vector-permute
//! AES ([`vpaes`]): constant-time, and several times faster than RustCrypto's bit-sliced
//! software AES in wasm. Elsewhere — natively, where `aes` uses AES-NI, or a wasm build without
//! SIMD128 — it encrypts with RustCrypto's `aes`. The modes below are written once over
//! [`Engine`]; the tests run them over both engines, and over the vector-permute algorithm with a
//! portable vector natively, against RustCrypto and the NIST vectors.

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd128;
#[cfg(any(test, all(target_arch = "wasm32", target_feature = "simd128")))]
mod vpaes;

#[cfg(test)]
mod portable;
#[cfg(test)]
mod tests;

/// A block cipher as the modes use it: one block, a CBC chain, a run of CTR blocks.
pub(crate) trait Engine {
    fn encrypt_block(&self, block: &mut [u8; 16]);
    /// CBC-encrypts `blocks` in place from `chain` (the IV, or the previous ciphertext block);
    /// leaves the last ciphertext block in `chain`.
    fn cbc_encrypt(&self, chain: &mut [u8; 16], blocks: &mut [[u8; 16]]);
    /// XORs `blocks` with the keystream of `counter`, `counter + 1`, …, where `+ 1` adds to the
    /// low 64 bits (big-endian, wrapping) and leaves the high 64 (the IV) alone, as `cenc` does;
    /// leaves the next counter block in `counter`.
    fn ctr_xor(&self, counter: &mut [u8; 16], blocks: &mut [[u8; 16]]);
}

/// A counter block's IV half and block count.
fn split_counter(counter: &[u8; 16]) -> ([u8; 8], u64) {
    let (iv, n) = counter.split_at(8);
    let mut a = [0u8; 8];
    a.copy_from_slice(iv);
    let mut b = [0u8; 8];
    b.copy_from_slice(n);
    (a, u64::from_be_bytes(b))
}

fn set_counter(counter: &mut [u8; 16], n: u64) {
    let (_, low) = counter.split_at_mut(8);
    low.copy_from_slice(&n.to_be_bytes());
}

#[cfg(any(test, not(all(target_arch = "wasm32", target_feature = "simd128"))))]
impl Engine for aes::Aes128 {
    fn encrypt_block(&self, block: &mut [u8; 16]) {
        aes::cipher::BlockEncrypt::encrypt_block(self, block.into());
    }

    fn cbc_encrypt(&self, chain: &mut [u8; 16], blocks: &mut [[u8; 16]]) {
        use aes::cipher::{BlockEncryptMut, InnerIvInit, block_padding::NoPadding};
        // RustCrypto's `cbc` runs the whole chain in one call into the AES-NI backend (a
        // third faster than a call per block, which dispatches on the CPU's features each time).
        let flat = blocks.as_flattened_mut();
        let len = flat.len();
        let cbc = cbc::Encryptor::<aes::Aes128>::inner_iv_init(self.clone(), (&*chain).into());
        if cbc.encrypt_padded_mut::<NoPadding>(flat, len).is_ok() {
            if let Some(last) = blocks.last() {
                *chain = *last;
            }
            return;
        }
        // Unreachable (whole blocks need no padding); block by block all the same.
        for b in blocks {
            for (x, c) in b.iter_mut().zip(chain.iter()) {
                *x ^= c;
            }
            Engine::encrypt_block(self, b);
            *chain = *b;
        }
    }

    fn ctr_xor(&self, counter: &mut [u8; 16], blocks: &mut [[u8; 16]]) {
        // Eight at a time: what RustCrypto's AES-NI and bit-sliced backends do in parallel.
        let (iv, mut n) = split_counter(counter);
        for group in blocks.chunks_mut(8) {
            let mut ks = [aes::Block::default(); 8];
            let ks = ks.get_mut(..group.len()).unwrap_or_default();
            for k in ks.iter_mut() {
                k[..8].copy_from_slice(&iv);
                k[8..].copy_from_slice(&n.to_be_bytes());
                n = n.wrapping_add(1);
            }
            aes::cipher::BlockEncrypt::encrypt_blocks(self, ks);
            for (b, k) in group.iter_mut().zip(ks.iter()) {
                for (x, y) in b.iter_mut().zip(k.iter()) {
                    *x ^= y;
                }
            }
        }
        set_counter(counter, n);
    }
}

/// The engine this build encrypts with.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
type Backend = vpaes::Vpaes<simd128::Simd128>;
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
type Backend = aes::Aes128;

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
fn backend(key: &[u8; 16]) -> Backend {
    vpaes::Vpaes::new(key)
}
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
fn backend(key: &[u8; 16]) -> Backend {
    aes::cipher::KeyInit::new(key.into())
}

/// An expanded AES-128 encryption key.
pub struct Aes128(Backend);

impl Aes128 {
    pub fn new(key: &[u8; 16]) -> Self {
        Aes128(backend(key))
    }

    /// Encrypts one block in place.
    pub fn encrypt_block(&self, block: &mut [u8; 16]) {
        self.0.encrypt_block(block);
    }

    /// CBC-encrypts the whole 16-byte blocks of `data` in place, continuing `chain` (the IV at
    /// first; the last ciphertext block after). Bytes past the last whole block stay as they are.
    pub fn cbc_encrypt(&self, chain: &mut [u8; 16], data: &mut [u8]) {
        self.0.cbc_encrypt(chain, data.as_chunks_mut::<16>().0);
    }

    /// A CTR keystream from `counter` (IV ‖ 64-bit big-endian block count), `cenc`'s counter.
    pub fn ctr(&self, counter: [u8; 16]) -> Ctr<'_> {
        Ctr {
            key: self,
            state: CtrState::new(counter),
        }
    }
}

/// Whole-buffer AES-128-CBC with PKCS#7 padding (HLS `METHOD=AES-128`): always one to sixteen
/// bytes longer than `data`, a multiple of 16.
pub fn cbc_pkcs7_encrypt(key: &[u8; 16], iv: &[u8; 16], data: &[u8]) -> Vec<u8> {
    pkcs7_encrypt(&Aes128::new(key).0, iv, data)
}

fn pkcs7_encrypt<E: Engine>(engine: &E, iv: &[u8; 16], data: &[u8]) -> Vec<u8> {
    let pad = 16 - data.len() % 16;
    let mut out = Vec::with_capacity(data.len() + pad);
    out.extend_from_slice(data);
    out.resize(data.len() + pad, pad as u8);
    let mut chain = *iv;
    engine.cbc_encrypt(&mut chain, out.as_chunks_mut::<16>().0);
    out
}

/// An AES-128-CTR keystream, applied across as many calls as a sample has protected ranges:
/// it continues mid-block where the last call stopped (`cenc` subsamples).
pub struct Ctr<'k> {
    key: &'k Aes128,
    state: CtrState,
}

impl Ctr<'_> {
    /// XORs `data` with the next `data.len()` bytes of keystream.
    pub fn apply(&mut self, data: &mut [u8]) {
        self.state.apply(&self.key.0, data);
    }
}

/// Where a CTR keystream stands: the next counter block, and the unused tail of the current
/// keystream block.
struct CtrState {
    counter: [u8; 16],
    keystream: [u8; 16],
    used: usize,
}

impl CtrState {
    fn new(counter: [u8; 16]) -> Self {
        CtrState {
            counter,
            keystream: [0; 16],
            used: 16,
        }
    }

    fn apply<E: Engine>(&mut self, engine: &E, data: &mut [u8]) {
        let left = self.keystream.get(self.used..).unwrap_or_default();
        let n = left.len().min(data.len());
        for (d, k) in data.iter_mut().zip(left) {
            *d ^= k;
        }
        self.used += n;
        let Some((_, data)) = data.split_at_mut_checked(n) else {
            return;
        };
        let (blocks, tail) = data.as_chunks_mut::<16>();
        engine.ctr_xor(&mut self.counter, blocks);
        if !tail.is_empty() {
            // Keep the block's keystream for the next call: XOR a zero block.
            let mut ks = [[0u8; 16]];
            engine.ctr_xor(&mut self.counter, &mut ks);
            let [ks] = ks;
            for (d, k) in tail.iter_mut().zip(ks) {
                *d ^= k;
            }
            self.keystream = ks;
            self.used = tail.len();
        }
    }
}
