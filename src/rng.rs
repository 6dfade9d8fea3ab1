//! Named random-number streams derived from one root seed.
//!
//! Every source of randomness in metarl takes an explicit [`Rng`]. A run derives its
//! streams (`tasks`, `env`, `policy`, `noise`, ...) from the root seed with
//! [`stream`], so adding a new stream never shifts the numbers drawn by another.

use rand::SeedableRng;

/// The generator used everywhere: ChaCha with 8 rounds (fast, portable, seekable).
pub type Rng = rand_chacha::ChaCha8Rng;

/// FNV-1a hash of a stream name: stable across platforms and Rust versions.
fn name_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The stream called `name` of root seed `seed`: the ChaCha key is the seed, the
/// ChaCha stream number is a hash of the name.
pub fn stream(seed: u64, name: &str) -> Rng {
    let mut rng = Rng::seed_from_u64(seed);
    rng.set_stream(name_hash(name));
    rng
}

/// The `u64` that [`substream`]`(seed, _, index)`'s generator is seeded from.
fn substream_seed(seed: u64, index: u64) -> u64 {
    seed ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// Sub-stream `index` of a named stream (e.g. one per environment row or per ES
/// perturbation), independent of how many other indices are drawn.
pub fn substream(seed: u64, name: &str, index: u64) -> Rng {
    let mut rng = Rng::seed_from_u64(substream_seed(seed, index));
    rng.set_stream(name_hash(name));
    rng
}

/// The generator [`substream`]`(seed, name, index)`, built when first used: handing one to
/// code that may draw nothing (an evolution-strategies evaluation of a family whose start
/// is fixed) costs no generator set-up. The numbers drawn are the substream's.
#[derive(Debug)]
pub struct LazyRng {
    seed: u64,
    name: &'static str,
    index: u64,
    rng: Option<Box<Rng>>,
}

impl LazyRng {
    /// The substream `(seed, name, index)`, not built yet.
    pub fn new(seed: u64, name: &'static str, index: u64) -> Self {
        Self {
            seed,
            name,
            index,
            rng: None,
        }
    }

    /// The generator, built on the first call.
    pub fn get(&mut self) -> &mut Rng {
        let (seed, name, index) = (self.seed, self.name, self.index);
        self.rng
            .get_or_insert_with(|| Box::new(substream(seed, name, index)))
    }
}

/// Words of keystream in one ChaCha block.
const BLOCK_WORDS: usize = 16;

/// Substreams whose first block [`substream_heads`] computes side by side, one per SIMD
/// lane (one AVX-512 register of `u32` per state word).
const HEAD_LANES: usize = 16;

/// The ChaCha keys `Rng::seed_from_u64(seeds[l])` uses, for every lane, word-major
/// (`key[w][l]`): `rand_core`'s expansion of a `u64` into 32 seed bytes, eight outputs of
/// PCG32 as little-endian words. Loops over lanes, so that they vectorize.
#[inline(always)]
fn keys_from_u64(seeds: &[u64; HEAD_LANES]) -> [Word; 8] {
    const MUL: u64 = 6_364_136_223_846_793_005;
    const INC: u64 = 11_634_580_027_462_260_723;
    let mut state = *seeds;
    let mut key = [[0; HEAD_LANES]; 8];
    for kw in &mut key {
        for l in 0..HEAD_LANES {
            let s = state[l].wrapping_mul(MUL).wrapping_add(INC);
            state[l] = s;
            let xorshifted = (((s >> 18) ^ s) >> 27) as u32;
            kw[l] = xorshifted.rotate_right((s >> 59) as u32);
        }
    }
    key
}

/// One state word of every lane.
type Word = [u32; HEAD_LANES];

/// The ChaCha constant "expand 32-byte k" (state words 0–3).
const SIGMA: [u32; 4] = [0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574];

/// The (column, then diagonal) quarter rounds of a ChaCha double round: state word indices.
const QUARTER_ROUNDS: [[usize; 4]; 8] = [
    [0, 4, 8, 12],
    [1, 5, 9, 13],
    [2, 6, 10, 14],
    [3, 7, 11, 15],
    [0, 5, 10, 15],
    [1, 6, 11, 12],
    [2, 7, 8, 13],
    [3, 4, 9, 14],
];

/// The initial state of block 0 for [`HEAD_LANES`] keys (word-major: `key[w][l]` is word
/// `w` of lane `l`'s key) and one stream number: the djb layout `rand_chacha` uses —
/// constants, key, 64-bit block counter (0), 64-bit stream.
#[inline(always)]
fn block0_input(key: &[Word; 8], stream: u64) -> [Word; BLOCK_WORDS] {
    let mut x = [[0; HEAD_LANES]; BLOCK_WORDS];
    for (w, c) in SIGMA.iter().enumerate() {
        x[w] = [*c; HEAD_LANES];
    }
    x[4..12].copy_from_slice(key);
    x[14] = [stream as u32; HEAD_LANES];
    x[15] = [(stream >> 32) as u32; HEAD_LANES];
    x
}

/// Block 0 of ChaCha8 (four double rounds) from [`block0_input`]'s state, word-major:
/// `out[w][l]` is word `w` of lane `l`'s block.
#[inline(always)]
#[allow(clippy::needless_range_loop)] // four state rows indexed by the same lane
fn chacha8_block0(input: &[Word; BLOCK_WORDS]) -> [Word; BLOCK_WORDS] {
    let mut x = *input;
    for _ in 0..4 {
        for [a, b, c, d] in QUARTER_ROUNDS {
            for l in 0..HEAD_LANES {
                x[a][l] = x[a][l].wrapping_add(x[b][l]);
                x[d][l] = (x[d][l] ^ x[a][l]).rotate_left(16);
                x[c][l] = x[c][l].wrapping_add(x[d][l]);
                x[b][l] = (x[b][l] ^ x[c][l]).rotate_left(12);
                x[a][l] = x[a][l].wrapping_add(x[b][l]);
                x[d][l] = (x[d][l] ^ x[a][l]).rotate_left(8);
                x[c][l] = x[c][l].wrapping_add(x[d][l]);
                x[b][l] = (x[b][l] ^ x[c][l]).rotate_left(7);
            }
        }
    }
    for (xw, iw) in x.iter_mut().zip(input) {
        for l in 0..HEAD_LANES {
            xw[l] = xw[l].wrapping_add(iw[l]);
        }
    }
    x
}

/// [`chacha8_block0`] in AVX-512 registers, one per state word (the same integer
/// operations, so the same words).
///
/// # Safety
/// The CPU must support AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,avx512f")]
unsafe fn chacha8_block0_avx512(seeds: &[u64; HEAD_LANES], stream: u64) -> [Word; BLOCK_WORDS] {
    use std::arch::x86_64::{
        _mm512_add_epi32, _mm512_loadu_si512, _mm512_rol_epi32, _mm512_setzero_si512,
        _mm512_storeu_si512, _mm512_xor_si512,
    };
    let input = &block0_input(&keys_from_u64(seeds), stream);
    let mut v = [_mm512_setzero_si512(); BLOCK_WORDS];
    for (vw, iw) in v.iter_mut().zip(input) {
        // SAFETY: an unaligned load of one 64-byte word row.
        *vw = unsafe { _mm512_loadu_si512(iw.as_ptr().cast()) };
    }
    let mut x = v;
    // The quarter round on constant indices, so that every word stays in a register.
    macro_rules! quarter_round {
        ($a:literal, $b:literal, $c:literal, $d:literal) => {
            x[$a] = _mm512_add_epi32(x[$a], x[$b]);
            x[$d] = _mm512_rol_epi32::<16>(_mm512_xor_si512(x[$d], x[$a]));
            x[$c] = _mm512_add_epi32(x[$c], x[$d]);
            x[$b] = _mm512_rol_epi32::<12>(_mm512_xor_si512(x[$b], x[$c]));
            x[$a] = _mm512_add_epi32(x[$a], x[$b]);
            x[$d] = _mm512_rol_epi32::<8>(_mm512_xor_si512(x[$d], x[$a]));
            x[$c] = _mm512_add_epi32(x[$c], x[$d]);
            x[$b] = _mm512_rol_epi32::<7>(_mm512_xor_si512(x[$b], x[$c]));
        };
    }
    for _ in 0..4 {
        // QUARTER_ROUNDS, spelled out.
        quarter_round!(0, 4, 8, 12);
        quarter_round!(1, 5, 9, 13);
        quarter_round!(2, 6, 10, 14);
        quarter_round!(3, 7, 11, 15);
        quarter_round!(0, 5, 10, 15);
        quarter_round!(1, 6, 11, 12);
        quarter_round!(2, 7, 8, 13);
        quarter_round!(3, 4, 9, 14);
    }
    let mut out = [[0; HEAD_LANES]; BLOCK_WORDS];
    for ((ow, xw), vw) in out.iter_mut().zip(x).zip(v) {
        // SAFETY: an unaligned store of one 64-byte word row.
        unsafe { _mm512_storeu_si512(ow.as_mut_ptr().cast(), _mm512_add_epi32(xw, vw)) };
    }
    out
}

/// [`chacha8_block0`] compiled with AVX2.
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn chacha8_block0_avx2(seeds: &[u64; HEAD_LANES], stream: u64) -> [Word; BLOCK_WORDS] {
    chacha8_block0(&block0_input(&keys_from_u64(seeds), stream))
}

/// The first block of [`substream`]`(seed, name, i)` — its first 16 `u32` draws — for
/// every `i` in `indices`, computed [`HEAD_LANES`] substreams at a time in SIMD lanes.
/// A substream drawn once (an ES perturbation's table offset) otherwise costs a whole
/// four-block refill of `rand_chacha`'s buffer: 16% of a linear-policy ES-MAML iteration.
/// [`HeadRng`] draws from a head exactly as the substream would.
pub fn substream_heads(seed: u64, name: &str, indices: &[u64]) -> Vec<[u32; BLOCK_WORDS]> {
    let stream = name_hash(name);
    let mut out = Vec::with_capacity(indices.len());
    for chunk in indices.chunks(HEAD_LANES) {
        // `substream`'s generator seeds; missing lanes of the last chunk repeat its first
        // index (computed, not returned).
        let seeds: [u64; HEAD_LANES] =
            std::array::from_fn(|l| substream_seed(seed, *chunk.get(l).unwrap_or(&chunk[0])));
        let block = match crate::lanes::Simd::best() {
            // SAFETY: the CPU supports the level `best` reports.
            #[cfg(target_arch = "x86_64")]
            crate::lanes::Simd::Avx512 => unsafe { chacha8_block0_avx512(&seeds, stream) },
            // SAFETY: as above.
            #[cfg(target_arch = "x86_64")]
            crate::lanes::Simd::Avx2 => unsafe { chacha8_block0_avx2(&seeds, stream) },
            _ => chacha8_block0(&block0_input(&keys_from_u64(&seeds), stream)),
        };
        for l in 0..chunk.len() {
            let mut head = [0u32; BLOCK_WORDS];
            for (h, bw) in head.iter_mut().zip(&block) {
                *h = bw[l];
            }
            out.push(head);
        }
    }
    out
}

/// The generator [`substream`]`(seed, name, index)` started from its first block, computed
/// beforehand by [`substream_heads`]: it draws exactly the substream's numbers, and builds
/// the ChaCha generator (positioned after the head) only if more is drawn than the head
/// holds.
#[derive(Debug)]
pub struct HeadRng {
    head: [u32; BLOCK_WORDS],
    pos: usize,
    seed: u64,
    name: &'static str,
    index: u64,
    rest: Option<Box<Rng>>,
}

impl HeadRng {
    /// `substream(seed, name, index)` whose first block is `head`.
    pub fn new(head: [u32; BLOCK_WORDS], seed: u64, name: &'static str, index: u64) -> Self {
        Self {
            head,
            pos: 0,
            seed,
            name,
            index,
            rest: None,
        }
    }

    /// The full generator at the current position (built on first use).
    fn rest(&mut self) -> &mut Rng {
        let (seed, name, index, pos) = (self.seed, self.name, self.index, self.pos);
        self.rest.get_or_insert_with(|| {
            let mut rng = substream(seed, name, index);
            rng.set_word_pos(pos as u128);
            Box::new(rng)
        })
    }
}

impl rand::RngCore for HeadRng {
    fn next_u32(&mut self) -> u32 {
        if self.rest.is_none() && self.pos < BLOCK_WORDS {
            self.pos += 1;
            return self.head[self.pos - 1];
        }
        self.rest().next_u32()
    }

    /// Two words, low first: what `rand_chacha` returns, also across a block boundary.
    fn next_u64(&mut self) -> u64 {
        let lo = self.next_u32();
        u64::from(self.next_u32()) << 32 | u64::from(lo)
    }

    fn fill_bytes(&mut self, dst: &mut [u8]) {
        self.rest().fill_bytes(dst)
    }
}

/// A fresh 64-bit seed drawn from `rng` (to seed per-row or per-worker generators).
pub fn next_seed(rng: &mut Rng) -> u64 {
    use rand::RngCore;
    rng.next_u64()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngCore;

    #[test]
    fn substream_heads_are_the_substreams_first_block() {
        // 37 indices: two full lane batches and a partial one.
        let indices: Vec<u64> = (0..37).map(|i| i * 1_000_003 + 5).collect();
        for (seed, name) in [(0, "es-perturbation"), (u64::MAX, "x"), (42, "")] {
            let heads = substream_heads(seed, name, &indices);
            assert_eq!(heads.len(), indices.len());
            for (head, &i) in heads.iter().zip(&indices) {
                let mut r = substream(seed, name, i);
                let want: Vec<u32> = (0..16).map(|_| r.next_u32()).collect();
                assert_eq!(head[..], want[..], "seed {seed}, name {name:?}, index {i}");
            }
        }
        assert!(substream_heads(1, "a", &[]).is_empty());
    }

    /// `n` bytes, then a u64, drawn the same from both generators.
    fn same_bytes_then_word(a: &mut HeadRng, b: &mut Rng, n: usize) {
        let (mut x, mut y) = (vec![0u8; n], vec![0u8; n]);
        a.fill_bytes(&mut x);
        b.fill_bytes(&mut y);
        assert_eq!(x, y);
        assert_eq!(a.next_u64(), b.next_u64());
    }

    #[test]
    fn a_head_generator_draws_its_substream_past_the_head() {
        use rand::Rng as _;
        let indices: Vec<u64> = (0..20).collect();
        let heads = substream_heads(9, "row", &indices);
        for (&i, &head) in indices.iter().zip(&heads) {
            // Mixed widths, so that a u64 straddles the head's end at odd offsets.
            let mut a = HeadRng::new(head, 9, "row", i);
            let mut b = substream(9, "row", i);
            for k in 0..40 {
                if (k + i) % 3 == 0 {
                    assert_eq!(a.next_u32(), b.next_u32());
                } else {
                    assert_eq!(a.next_u64(), b.next_u64());
                }
            }
            same_bytes_then_word(&mut a, &mut b, 13);
            // Bytes drawn while still inside the head.
            let mut a = HeadRng::new(head, 9, "row", i);
            let mut b = substream(9, "row", i);
            assert_eq!(a.next_u32(), b.next_u32());
            same_bytes_then_word(&mut a, &mut b, 21);
            // Uniform draws, with a range where rand's bias correction draws a second word
            // three times in four.
            let mut a = HeadRng::new(head, 9, "row", i);
            let mut b = substream(9, "row", i);
            for _ in 0..12 {
                assert_eq!(
                    a.random_range(0..=3usize << 30),
                    b.random_range(0..=3usize << 30)
                );
                assert_eq!(a.random_range(0..=77usize), b.random_range(0..=77usize));
            }
        }
    }

    #[test]
    fn same_name_same_numbers_other_name_other_numbers() {
        let a: Vec<u64> = (0..4)
            .map(|_| 0)
            .scan(stream(7, "env"), |r, _: u64| Some(r.next_u64()))
            .collect();
        let b: Vec<u64> = (0..4)
            .map(|_| 0)
            .scan(stream(7, "env"), |r, _: u64| Some(r.next_u64()))
            .collect();
        let c: Vec<u64> = (0..4)
            .map(|_| 0)
            .scan(stream(7, "policy"), |r, _: u64| Some(r.next_u64()))
            .collect();
        let d: Vec<u64> = (0..4)
            .map(|_| 0)
            .scan(stream(8, "env"), |r, _: u64| Some(r.next_u64()))
            .collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
    }

    #[test]
    fn a_lazy_generator_draws_its_substream() {
        let mut lazy = LazyRng::new(9, "row", 3);
        let mut eager = substream(9, "row", 3);
        for _ in 0..3 {
            assert_eq!(lazy.get().next_u64(), eager.next_u64());
        }
    }

    #[test]
    fn substreams_differ_by_index() {
        let mut a = substream(1, "row", 0);
        let mut b = substream(1, "row", 1);
        assert_ne!(a.next_u64(), b.next_u64());
    }
}
