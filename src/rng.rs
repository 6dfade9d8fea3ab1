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

/// Sub-stream `index` of a named stream (e.g. one per environment row or per ES
/// perturbation), independent of how many other indices are drawn.
pub fn substream(seed: u64, name: &str, index: u64) -> Rng {
    let mut rng = Rng::seed_from_u64(seed ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15));
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
