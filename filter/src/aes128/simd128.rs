//! [`Lanes`] over wasm SIMD128 (`v128`): `i8x16.swizzle` is the 16-way table lookup of the
//! vector-permute AES (the rounds' MixColumns rotations too, by index vectors loaded like the
//! tables), `i8x16.shuffle` the key schedule's fixed permutations. V8 and Cranelift compile
//! both to `pshufb` on x86-64 and `tbl` on arm64, register-only permutes: no memory access
//! depends on a secret.

use core::arch::wasm32::{i8x16_shuffle, u8x16_splat, u16x8_shr, u64x2, v128, v128_and, v128_xor};

use super::vpaes::{Lanes, PERMS};

#[derive(Clone, Copy)]
pub(crate) struct Simd128(v128);

/// `i8x16.swizzle`; with relaxed SIMD enabled, `i8x16.relaxed_swizzle`, which V8 and Cranelift
/// compile to a bare `pshufb` (the plain one adds a saturating add, two loads and a move so
/// that indices 16..128 read 0). The two agree on every index this algorithm looks up with:
/// `0..16`, and `0x80..0x90`, which both read as 0.
#[inline(always)]
fn swizzle(table: v128, index: v128) -> v128 {
    #[cfg(target_feature = "relaxed-simd")]
    {
        core::arch::wasm32::i8x16_relaxed_swizzle(table, index)
    }
    #[cfg(not(target_feature = "relaxed-simd"))]
    {
        core::arch::wasm32::i8x16_swizzle(table, index)
    }
}

/// Lane `i` of permutation `p` as an `i8x16.shuffle` immediate over (vector, zero vector):
/// "zero" indices pick lane 16, a zero.
const fn lane(p: usize, i: usize) -> usize {
    let x = PERMS[p][i];
    if x >= 16 { 16 } else { x as usize }
}

/// `i8x16.shuffle` of `$v` by permutation number `$p`.
macro_rules! shuffle {
    ($v:expr, $p:literal) => {
        i8x16_shuffle::<
            { lane($p, 0) },
            { lane($p, 1) },
            { lane($p, 2) },
            { lane($p, 3) },
            { lane($p, 4) },
            { lane($p, 5) },
            { lane($p, 6) },
            { lane($p, 7) },
            { lane($p, 8) },
            { lane($p, 9) },
            { lane($p, 10) },
            { lane($p, 11) },
            { lane($p, 12) },
            { lane($p, 13) },
            { lane($p, 14) },
            { lane($p, 15) },
        >($v, u8x16_splat(0))
    };
}

impl Lanes for Simd128 {
    #[inline(always)]
    fn load(block: &[u8; 16]) -> Self {
        // SAFETY: `block` is 16 readable bytes, `read_unaligned` needs no alignment, and every
        // bit pattern is a valid `v128`.
        Simd128(unsafe { core::ptr::read_unaligned(block.as_ptr().cast::<v128>()) })
    }

    #[inline(always)]
    fn store(self, block: &mut [u8; 16]) {
        // SAFETY: `block` is 16 writable bytes and `write_unaligned` needs no alignment.
        unsafe { core::ptr::write_unaligned(block.as_mut_ptr().cast::<v128>(), self.0) }
    }

    #[inline(always)]
    fn from_u64s(lo: u64, hi: u64) -> Self {
        Simd128(u64x2(lo, hi))
    }

    #[inline(always)]
    fn xor(self, other: Self) -> Self {
        Simd128(v128_xor(self.0, other.0))
    }

    #[inline(always)]
    fn and(self, other: Self) -> Self {
        Simd128(v128_and(self.0, other.0))
    }

    #[inline(always)]
    fn high_nibbles_down(self) -> Self {
        // A 16-bit shift (one instruction; wasm's 8-bit shift is several in V8): the low
        // nibble of the byte above lands in the high nibble, which the caller masks off.
        Simd128(u16x8_shr(self.0, 4))
    }

    #[inline(always)]
    fn lookup(self, index: Self) -> Self {
        Simd128(swizzle(self.0, index.0))
    }

    #[inline(always)]
    fn permute<const P: usize>(self) -> Self {
        const { assert!(P < PERMS.len()) };
        let v = self.0;
        Simd128(match P {
            0 => shuffle!(v, 0),
            1 => shuffle!(v, 1),
            2 => shuffle!(v, 2),
            3 => shuffle!(v, 3),
            4 => shuffle!(v, 4),
            5 => shuffle!(v, 5),
            6 => shuffle!(v, 6),
            7 => shuffle!(v, 7),
            8 => shuffle!(v, 8),
            9 => shuffle!(v, 9),
            10 => shuffle!(v, 10),
            11 => shuffle!(v, 11),
            12 => shuffle!(v, 12),
            13 => shuffle!(v, 13),
            14 => shuffle!(v, 14),
            // Unreachable: the assertion above; the tests check every arm against `PERMS`.
            _ => v,
        })
    }
}
