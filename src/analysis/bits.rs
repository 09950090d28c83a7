//! A set of combination numbers held one bit each: the shadowing pass keeps which
//! combinations are still undecided, and where a shadowed rule holds, in an eighth of a
//! byte per combination rather than eight bytes.

/// A set of numbers below a fixed bound.
#[derive(Clone, Debug, Default)]
pub(crate) struct Bits {
    words: Vec<u64>,
    /// Every number is below it.
    bound: usize,
    /// How many numbers are in the set.
    len: usize,
}

impl Bits {
    /// The empty set of numbers below `bound`.
    pub(crate) fn empty(bound: usize) -> Self {
        Bits {
            words: vec![0; bound.div_ceil(64)],
            bound,
            len: 0,
        }
    }

    /// Every number below `bound`.
    pub(crate) fn full(bound: usize) -> Self {
        let mut words = vec![u64::MAX; bound.div_ceil(64)];
        if let (Some(last), tail @ 1..) = (words.last_mut(), bound % 64) {
            *last = (1 << tail) - 1;
        }
        Bits {
            words,
            bound,
            len: bound,
        }
    }

    /// How many numbers are in the set.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether `n` is in the set.
    pub(crate) fn contains(&self, n: usize) -> bool {
        self.words
            .get(n / 64)
            .is_some_and(|w| w & (1 << (n % 64)) != 0)
    }

    /// Add `n`; a number not below the bound is ignored.
    pub(crate) fn insert(&mut self, n: usize) {
        if n >= self.bound {
            return;
        }
        if let Some(w) = self.words.get_mut(n / 64) {
            let bit = 1 << (n % 64);
            if *w & bit == 0 {
                *w |= bit;
                self.len += 1;
            }
        }
    }

    /// The numbers in the set, ascending.
    pub(crate) fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.words.iter().enumerate().flat_map(|(i, &word)| {
            let mut rest = word;
            std::iter::from_fn(move || {
                let bit = rest.trailing_zeros() as usize;
                (rest != 0).then(|| {
                    rest &= rest - 1;
                    i * 64 + bit
                })
            })
        })
    }

    /// Keep only the numbers `keep` says to, asking in ascending order.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(usize) -> bool) {
        for (i, word) in self.words.iter_mut().enumerate() {
            let mut rest = *word;
            while rest != 0 {
                let bit = rest.trailing_zeros() as usize;
                rest &= rest - 1;
                if !keep(i * 64 + bit) {
                    *word &= !(1 << bit);
                    self.len -= 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_set_holds_exactly_the_numbers_below_its_bound() {
        for bound in [0, 1, 63, 64, 65, 130] {
            let full = Bits::full(bound);
            assert_eq!(full.len(), bound);
            assert_eq!(
                full.iter().collect::<Vec<_>>(),
                (0..bound).collect::<Vec<_>>()
            );
            assert!(!full.contains(bound));
        }
    }

    #[test]
    fn retain_and_insert_keep_the_count_and_the_order() {
        let mut set = Bits::full(200);
        set.retain(|n| n % 3 == 0);
        assert_eq!(set.len(), 67);
        assert!(set.contains(198) && !set.contains(199));
        let mut other = Bits::empty(200);
        for n in [150, 3, 64, 3, 199, 250] {
            other.insert(n);
        }
        assert_eq!(other.len(), 4);
        assert_eq!(other.iter().collect::<Vec<_>>(), [3, 64, 150, 199]);
    }
}
