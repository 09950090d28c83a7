//! What the pure layers take from the outside world as parameters rather than reaching for
//! it: the clock and the source of randomness. Production, the simulator and the tests each
//! pass their own.

#[cfg(feature = "runner")]
pub mod clock;
pub mod random;
