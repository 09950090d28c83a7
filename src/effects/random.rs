//! Where jitter comes from: an injected source, seeded in tests and the simulator so every
//! run is reproducible.

#[cfg(feature = "runner")]
use rand_chacha::{
    ChaCha8Rng,
    rand_core::{Rng, SeedableRng},
};

/// A source of uniform random numbers for backoff jitter.
pub trait RandomSource {
    /// A number uniformly distributed in `[0, 1)`.
    fn unit(&mut self) -> f64;
}

/// A ChaCha8 generator: seeded for reproducible runs, or from the OS for production.
#[cfg(feature = "runner")]
#[derive(Clone, Debug)]
pub struct SeededRandom(ChaCha8Rng);

#[cfg(feature = "runner")]
impl SeededRandom {
    /// The same seed gives the same sequence, on every platform.
    pub fn new(seed: u64) -> Self {
        SeededRandom(ChaCha8Rng::seed_from_u64(seed))
    }

    /// Seeded from the operating system's entropy, for live runs.
    pub fn from_entropy() -> Self {
        SeededRandom::new(rand::random())
    }
}

#[cfg(feature = "runner")]
impl RandomSource for SeededRandom {
    fn unit(&mut self) -> f64 {
        // The top 53 bits fill an f64 mantissa exactly: uniform over [0, 1).
        (self.0.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

#[cfg(all(test, feature = "runner"))]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence_and_in_range() {
        let mut a = SeededRandom::new(7);
        let mut b = SeededRandom::new(7);
        for _ in 0..1000 {
            let x = a.unit();
            assert_eq!(x, b.unit());
            assert!((0.0..1.0).contains(&x));
        }
        assert_ne!(SeededRandom::new(8).unit(), SeededRandom::new(7).unit());
    }
}
