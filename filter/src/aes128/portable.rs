//! [`Lanes`] over a byte array: the vector-permute AES natively, where the tests check it
//! against RustCrypto and the NIST vectors. A test vehicle only: its lookups index memory by
//! secret bytes, which the SIMD128 permutes do not; nothing outside the tests encrypts with it.

use super::vpaes::{Lanes, PERMS};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Portable(pub(crate) [u8; 16]);

impl Lanes for Portable {
    fn load(block: &[u8; 16]) -> Self {
        Portable(*block)
    }

    fn store(self, block: &mut [u8; 16]) {
        *block = self.0;
    }

    fn from_u64s(lo: u64, hi: u64) -> Self {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&lo.to_le_bytes());
        b[8..].copy_from_slice(&hi.to_le_bytes());
        Portable(b)
    }

    fn xor(self, other: Self) -> Self {
        Portable(core::array::from_fn(|i| self.0[i] ^ other.0[i]))
    }

    fn and(self, other: Self) -> Self {
        Portable(core::array::from_fn(|i| self.0[i] & other.0[i]))
    }

    fn high_nibbles_down(self) -> Self {
        Portable(self.0.map(|b| b >> 4))
    }

    fn lookup(self, index: Self) -> Self {
        Portable(
            index
                .0
                .map(|i| self.0.get(usize::from(i)).copied().unwrap_or(0)),
        )
    }

    fn permute<const P: usize>(self) -> Self {
        self.lookup(Portable(PERMS[P]))
    }
}
