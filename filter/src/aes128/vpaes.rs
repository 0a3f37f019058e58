//! Vector-permute AES-128 encryption: Mike Hamburg, "Accelerating AES with Vector Permute
//! Instructions", CHES 2009 (the "vpaes" of OpenSSL, `crypto/aes/asm/vpaes-x86_64.pl`, where the
//! tables below come from, written there as pairs of little-endian quadwords as here).
//!
//! AES's S-box is inversion in GF(2^8) followed by an affine map. Hamburg changes basis so that
//! GF(2^8) becomes GF(2^4)^2, where an inverse takes a handful of 16-entry lookups indexed by a
//! nibble; a 16-way byte permute (`pshufb` on x86, `i8x16.swizzle` in wasm) does 16 such lookups
//! at once from a table held in a register. Nothing is ever indexed by a secret in memory, and
//! there is no branch on data: the time does not depend on the key or the plaintext. MixColumns
//! becomes byte rotations within columns (more permutes), and ShiftRows is not done per round:
//! the state is left in a rotated order that changes from round to round, the MixColumns
//! rotations follow it, and one permute at the end puts the bytes back.
//!
//! The algorithm is written once, over [`Lanes`], a 16-byte vector with exactly the operations it
//! needs; `super::simd128` implements it with wasm SIMD128, `super::portable` with a byte array so
//! that the same code runs (and is checked) natively. Only AES-128 encryption is here: that is all
//! HLS AES-128, `cbcs` and `cenc` need.

use super::Engine;

/// A 16-byte vector and the operations the vector-permute AES needs.
pub(crate) trait Lanes: Copy {
    /// Loads a block.
    fn load(block: &[u8; 16]) -> Self;
    /// Stores into a block.
    fn store(self, block: &mut [u8; 16]);
    /// The vector whose bytes are `lo` then `hi`, each little-endian (counter blocks).
    fn from_u64s(lo: u64, hi: u64) -> Self;
    fn xor(self, other: Self) -> Self;
    fn and(self, other: Self) -> Self;
    /// Every byte's high nibble moved to its low nibble; what lands in the high nibble is
    /// unspecified (callers mask it off).
    fn high_nibbles_down(self) -> Self;
    /// Byte `i` is `self[index[i]]`, or 0 where `index[i] >= 16` (wasm's `i8x16.swizzle`; x86's
    /// `pshufb` agrees on every index this algorithm produces: `0..16` and `0x80..0x90`).
    fn lookup(self, index: Self) -> Self;
    /// `self.lookup(PERMS[P])`, the index fixed at compile time (a wasm `i8x16.shuffle`).
    fn permute<const P: usize>(self) -> Self;
}

/// `.quad lo, hi` as bytes.
const fn q(lo: u64, hi: u64) -> [u8; 16] {
    let (l, h) = (lo.to_le_bytes(), hi.to_le_bytes());
    [
        l[0], l[1], l[2], l[3], l[4], l[5], l[6], l[7], h[0], h[1], h[2], h[3], h[4], h[5], h[6],
        h[7],
    ]
}

/// Inversion in GF(2^4) (`0x80` for 1/0, which every later lookup reads as 0), and the
/// table that folds the high-nibble term into it.
const INV: [u8; 16] = q(0x0E05060F0D080180, 0x040703090A0B0C02);
const INVA: [u8; 16] = q(0x01040A060F0B0780, 0x030D0E0C02050809);
/// Input transform, into Hamburg's basis (low nibble, high nibble).
const IPT_LO: [u8; 16] = q(0xC2B2E8985A2A7000, 0xCABAE09052227808);
const IPT_HI: [u8; 16] = q(0x4C01307D317C4D00, 0xCD80B1FCB0FDCC81);
/// S-box outputs: `SB1` the S-box, `SB2` twice it (for MixColumns), `SBO` the last round's.
const SB1U: [u8; 16] = q(0xB19BE18FCB503E00, 0xA5DF7A6E142AF544);
const SB1T: [u8; 16] = q(0x3618D415FAE22300, 0x3BF7CCC10D2ED9EF);
const SB2U: [u8; 16] = q(0xE27A93C60B712400, 0x5EB7E955BC982FCD);
const SB2T: [u8; 16] = q(0x69EB88400AE12900, 0xC2A163C8AB82234A);
const SBOU: [u8; 16] = q(0xD0D26D176FBDC700, 0x15AABF7AC502A878);
const SBOT: [u8; 16] = q(0xCFE474A55FBB6A00, 0x8E1E90D1412B35FA);
/// Output transform for the last round key, back to the standard basis.
const OPT_LO: [u8; 16] = q(0xFF9F4929D6B66000, 0xF7974121DEBE6808);
const OPT_HI: [u8; 16] = q(0x01EDBD5150BCEC00, 0xE10D5DB1B05C0CE0);
/// 0x63 (the S-box's affine constant) in Hamburg's basis, every byte.
const S63: [u8; 16] = [0x5B; 16];
/// The key schedule's round constants, standard basis (FIPS-197 5.2).
const RCON: [u8; 10] = [0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0x1B, 0x36];

/// An index meaning "zero" in [`PERMS`].
const Z: u8 = 0x80;

/// MixColumns' rotation by one byte within each column, the columns themselves rotated by `r`
/// (the state's ShiftRows lag after round `r`).
const fn mc_forward(r: usize) -> [u8; 16] {
    let mut t = [0u8; 16];
    let mut i = 0;
    while i < 16 {
        t[i] = (((i + 4 * r) & 12) | ((i + 1) & 3)) as u8;
        i += 1;
    }
    t
}

/// The rotation by three bytes within each column, columns rotated by `-r`.
const fn mc_backward(r: usize) -> [u8; 16] {
    let mut t = [0u8; 16];
    let mut i = 0;
    while i < 16 {
        t[i] = (((i + 16 - 4 * r) & 12) | ((i + 3) & 3)) as u8;
        i += 1;
    }
    t
}

/// Permutation `p` applied twice.
const fn twice(p: [u8; 16]) -> [u8; 16] {
    let mut t = [0u8; 16];
    let mut i = 0;
    while i < 16 {
        t[i] = p[p[i] as usize & 15];
        i += 1;
    }
    t
}

/// ShiftRows applied `r` times.
const fn shift_rows(r: usize) -> [u8; 16] {
    let mut t = [0u8; 16];
    let mut i = 0;
    while i < 16 {
        t[i] = ((i + 4 * r * (i & 3)) & 15) as u8;
        i += 1;
    }
    t
}

/// The fixed permutations, by number: MixColumns forward (0..4) and backward (4..8) rotations
/// for round `r % 4`, ShiftRows^r (8..12), then the key schedule's word shifts by one and two
/// words (12, 13) and RotWord of the last word broadcast to all four (14).
pub(crate) const PERMS: [[u8; 16]; 15] = [
    mc_forward(0),
    mc_forward(1),
    mc_forward(2),
    mc_forward(3),
    mc_backward(0),
    mc_backward(1),
    mc_backward(2),
    mc_backward(3),
    shift_rows(0),
    shift_rows(1),
    shift_rows(2),
    shift_rows(3),
    [Z, Z, Z, Z, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
    [Z, Z, Z, Z, Z, Z, Z, Z, 0, 1, 2, 3, 4, 5, 6, 7],
    [
        13, 14, 15, 12, 13, 14, 15, 12, 13, 14, 15, 12, 13, 14, 15, 12,
    ],
];
const MCF: usize = 0;
const MCB: usize = 4;
const SR: usize = 8;
const SHL_WORD: usize = 12;
const SHL_2WORDS: usize = 13;
const ROT_WORD: usize = 14;

/// What the rounds and the key schedule read, in the order [`Tables::load`] takes them.
static TABLES: [[u8; 16]; 27] = [
    INV,
    INVA,
    IPT_LO,
    IPT_HI,
    SB1U,
    SB1T,
    SB2U,
    SB2T,
    SBOU,
    SBOT,
    OPT_LO,
    OPT_HI,
    S63,
    [0x0F; 16],
    PERMS[MCF],
    PERMS[MCF + 1],
    PERMS[MCF + 2],
    PERMS[MCF + 3],
    twice(PERMS[MCF]),
    twice(PERMS[MCF + 1]),
    twice(PERMS[MCF + 2]),
    twice(PERMS[MCF + 3]),
    PERMS[MCB],
    PERMS[MCB + 1],
    PERMS[MCB + 2],
    PERMS[MCB + 3],
    PERMS[SR + 2],
];

/// The tables as vectors, and the operations built from them.
struct Tables<V> {
    inv: V,
    inva: V,
    ipt: (V, V),
    sb1: (V, V),
    sb2: (V, V),
    sbo: (V, V),
    opt: (V, V),
    s63: V,
    low_nibbles: V,
    /// MixColumns' forward and backward rotations for each ShiftRows lag, and the last
    /// round's ShiftRows: lookups by index vectors held like the tables.
    mc_forward: [V; 4],
    mc_forward2: [V; 4],
    mc_backward: [V; 4],
    last_shift_rows: V,
}

impl<V: Lanes> Tables<V> {
    /// The tables, loaded from memory once. Not written as constants: LLVM puts a wasm
    /// `v128.const` at every use, and V8 builds each one again from immediates (about five
    /// instructions), which made the rounds several times longer; values loaded once stay in
    /// registers or spill slots (one load). `black_box` keeps LLVM from folding the loads back
    /// into constants.
    #[inline(always)]
    fn load() -> Self {
        let t = core::hint::black_box(&TABLES);
        let v = |i: usize| V::load(&t[i]);
        Tables {
            inv: v(0),
            inva: v(1),
            ipt: (v(2), v(3)),
            sb1: (v(4), v(5)),
            sb2: (v(6), v(7)),
            sbo: (v(8), v(9)),
            opt: (v(10), v(11)),
            s63: v(12),
            low_nibbles: v(13),
            mc_forward: [v(14), v(15), v(16), v(17)],
            mc_forward2: [v(18), v(19), v(20), v(21)],
            mc_backward: [v(22), v(23), v(24), v(25)],
            last_shift_rows: v(26),
        }
    }

    /// (low nibbles, high nibbles) of every byte.
    #[inline(always)]
    fn nibbles(&self, x: V) -> (V, V) {
        (
            x.and(self.low_nibbles),
            x.high_nibbles_down().and(self.low_nibbles),
        )
    }

    /// A GF(2)-linear map of every byte, given by its images of low and high nibbles.
    #[inline(always)]
    fn transform(&self, (lo_t, hi_t): (V, V), x: V) -> V {
        let (lo, hi) = self.nibbles(x);
        lo_t.lookup(lo).xor(hi_t.lookup(hi))
    }

    /// The S-box's inversion: the two index vectors (`io`, `jo`) that its output tables read.
    #[inline(always)]
    fn invert(&self, x: V) -> (V, V) {
        let (k, i) = self.nibbles(x);
        let ak = self.inva.lookup(k);
        let j = k.xor(i);
        let iak = self.inv.lookup(i).xor(ak);
        let jak = self.inv.lookup(j).xor(ak);
        (self.inv.lookup(iak).xor(j), self.inv.lookup(jak).xor(i))
    }

    /// One middle round (SubBytes, MixColumns, the round key) of a state whose ShiftRows lag is
    /// `R` (mod 4).
    #[inline(always)]
    fn round<const R: usize>(&self, key: V, x: V) -> V {
        let (io, jo) = self.invert(x);
        let a = self.sb1.0.lookup(io).xor(self.sb1.1.lookup(jo));
        let a2 = self.sb2.0.lookup(io).xor(self.sb2.1.lookup(jo));
        // MixColumns: 2A + 3B + C + D, where B, C and D are A rotated by one, two and three
        // bytes within each column, written as 2A + rot1(2A + A) + rot2(A) + rot3(A) so that
        // the three rotations run side by side. (Hamburg adds the key to A first and rotates
        // 2A + B again for 2B + C; adding it afterwards, pre-rotated by the schedule, and
        // rotating A by two directly takes the same three permutes and three steps less.)
        let three = a2.xor(a).lookup(self.mc_forward[R]);
        let rot2 = a.lookup(self.mc_forward2[R]);
        let rot3 = a.lookup(self.mc_backward[R]);
        a2.xor(key).xor(rot2.xor(rot3)).xor(three)
    }

    /// The last round (no MixColumns), then the state back in standard byte order (after ten
    /// rounds the lag is 10 % 4 = 2).
    #[inline(always)]
    fn last_round(&self, key: V, x: V) -> V {
        let (io, jo) = self.invert(x);
        let a = self.sbo.0.lookup(io).xor(self.sbo.1.lookup(jo)).xor(key);
        a.lookup(self.last_shift_rows)
    }

    /// AES-128 of `N` independent blocks, interleaved round by round (CTR's instruction-level
    /// parallelism; `N = 1` for CBC).
    #[inline(always)]
    fn encrypt<const N: usize>(&self, rk: &[V; 11], x: [V; N]) -> [V; N] {
        let x = x.map(|x| self.transform(self.ipt, x).xor(rk[0]));
        let x = lanes_together(x.map(|x| self.round::<1>(rk[1], x)));
        let x = lanes_together(x.map(|x| self.round::<2>(rk[2], x)));
        let x = lanes_together(x.map(|x| self.round::<3>(rk[3], x)));
        let x = lanes_together(x.map(|x| self.round::<0>(rk[4], x)));
        let x = lanes_together(x.map(|x| self.round::<1>(rk[5], x)));
        let x = lanes_together(x.map(|x| self.round::<2>(rk[6], x)));
        let x = lanes_together(x.map(|x| self.round::<3>(rk[7], x)));
        let x = lanes_together(x.map(|x| self.round::<0>(rk[8], x)));
        let x = lanes_together(x.map(|x| self.round::<1>(rk[9], x)));
        x.map(|x| self.last_round(rk[10], x))
    }

    /// The S-box of every byte, in Hamburg's basis without its affine constant.
    #[inline(always)]
    fn sub_bytes(&self, x: V) -> V {
        let (io, jo) = self.invert(x);
        self.sb1.0.lookup(io).xor(self.sb1.1.lookup(jo))
    }

    /// The AES-128 key expansion (FIPS-197 5.2) carried out in Hamburg's basis, each round key
    /// then put in the form [`Self::round`] adds (Hamburg's: multiplied by the column circulant
    /// (0 1 1 1) and given the round's ShiftRows lag; ours: then rotated as MixColumns rotates
    /// A). Permutes only, as the rounds: constant time in the key.
    fn expand(&self, key: &[u8; 16]) -> [V; 11] {
        let mut w = self.transform(self.ipt, V::load(key));
        let mut rk = [w; 11];
        for (n, (slot, rcon)) in rk.iter_mut().skip(1).zip(RCON).enumerate() {
            let n = n + 1;
            let mut c = [0u8; 16];
            c[0] = rcon;
            let rcon = self.transform(self.ipt, V::load(&c));
            // w0..w3 become w0, w0^w1, w0^w1^w2, w0^..^w3; plus the affine constant the
            // S-box tables leave out.
            let mut smear = w.xor(rcon);
            smear = smear.xor(smear.permute::<SHL_WORD>());
            smear = smear.xor(smear.permute::<SHL_2WORDS>()).xor(self.s63);
            w = self.sub_bytes(w.permute::<ROT_WORD>()).xor(smear);
            *slot = if n < 10 {
                // Hamburg's form (the key added to A before MixColumns): the circulant, then
                // the lag of round `n`.
                let x = w.xor(self.s63);
                let x1 = x.permute::<MCF>();
                let x2 = x1.permute::<MCF>();
                let m = x1.xor(x2).xor(x2.permute::<MCF>());
                let k = match n % 4 {
                    0 => m.permute::<SR>(),
                    1 => m.permute::<{ SR + 3 }>(),
                    2 => m.permute::<{ SR + 2 }>(),
                    _ => m.permute::<{ SR + 1 }>(),
                };
                // Added after MixColumns instead, it carries MixColumns' rotations of it (the
                // part of MixColumns that A + key feeds; 2A comes from the S-box tables).
                let r = n % 4;
                let (f, f2, b) = (self.mc_forward[r], self.mc_forward2[r], self.mc_backward[r]);
                k.lookup(f).xor(k.lookup(f2)).xor(k.lookup(b))
            } else {
                self.transform(self.opt, w.permute::<{ SR + 2 }>().xor(self.s63))
            };
        }
        rk
    }
}

/// Keeps the blocks of a multi-block encryption in step, round by round. Left alone, LLVM's
/// wasm back end orders each block's ten rounds one after the other (it schedules for register
/// pressure and builds expression trees), and neither V8 nor Cranelift reorders them: the
/// blocks' dependency chains then sit too far apart in the instruction stream for the CPU to
/// overlap them, and four blocks at once ran no faster than one. An optimization barrier after
/// each round (a few stack stores and loads) makes every block's round `r` precede any block's
/// round `r + 1`.
#[inline(always)]
fn lanes_together<V, const N: usize>(x: [V; N]) -> [V; N] {
    if N > 1 { core::hint::black_box(x) } else { x }
}

/// Counter blocks encrypted together in CTR. Measured (speed example, 1 MB, this repo's 2-core
/// EPYC): with plain SIMD128, V8 runs one or two blocks at about the speed of CBC and four
/// slower (its register allocator spills the tables), Cranelift gains about a quarter with two;
/// with relaxed SIMD (a bare `pshufb` per lookup) four are best in both.
pub(crate) const CTR_LANES: usize = if cfg!(target_feature = "relaxed-simd") {
    4
} else {
    2
};

/// An expanded AES-128 key, vector-permute form.
#[derive(Clone)]
pub(crate) struct Vpaes<V> {
    rk: [V; 11],
}

impl<V: Lanes> Vpaes<V> {
    pub(crate) fn new(key: &[u8; 16]) -> Self {
        Vpaes {
            rk: Tables::load().expand(key),
        }
    }
}

impl<V: Lanes> Engine for Vpaes<V> {
    fn encrypt_block(&self, block: &mut [u8; 16]) {
        let [y] = Tables::load().encrypt(&self.rk, [V::load(block)]);
        y.store(block);
    }

    fn cbc_encrypt(&self, chain: &mut [u8; 16], blocks: &mut [[u8; 16]]) {
        let t = Tables::load();
        let mut c = V::load(chain);
        for b in blocks {
            [c] = t.encrypt(&self.rk, [V::load(b).xor(c)]);
            c.store(b);
        }
        c.store(chain);
    }

    fn ctr_xor(&self, counter: &mut [u8; 16], blocks: &mut [[u8; 16]]) {
        let t = Tables::load();
        let (iv, n) = super::split_counter(counter);
        let iv = u64::from_le_bytes(iv);
        let block = |n: u64| V::from_u64s(iv, u64::from_le_bytes(n.to_be_bytes()));
        let mut n = n;
        let (groups, rest) = blocks.as_chunks_mut::<CTR_LANES>();
        for group in groups {
            let counters: [V; CTR_LANES] =
                core::array::from_fn(|i| block(n.wrapping_add(i as u64)));
            let ks = t.encrypt(&self.rk, counters);
            n = n.wrapping_add(CTR_LANES as u64);
            for (b, k) in group.iter_mut().zip(ks) {
                V::load(b).xor(k).store(b);
            }
        }
        for b in rest {
            let [k] = t.encrypt(&self.rk, [block(n)]);
            n = n.wrapping_add(1);
            V::load(b).xor(k).store(b);
        }
        super::set_counter(counter, n);
    }
}
