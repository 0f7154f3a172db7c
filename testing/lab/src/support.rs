// SPDX-License-Identifier: MIT OR Apache-2.0
//! Small helpers shared by the test and measurement code of every crate: a reproducible
//! random sequence, the median and quantiles, and `ensure` and `ctx` for tests that report
//! instead of panicking.

use std::fmt::Display;

/// xorshift64*: a small generator for reproducible test data and schedules (same seed,
/// same sequence). Not for anything that must be unpredictable.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A sequence from `seed` (0, which xorshift never leaves, is taken as 1).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-enough in `0..n` (`0` when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// In `a..b` (`a` when the range is empty).
    pub fn range(&mut self, (a, b): (usize, usize)) -> usize {
        a + self.below(b.saturating_sub(a))
    }

    /// True `percent` times in 100.
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    /// One of `items` (which must not be empty).
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

/// The median (mean of the middle two for an even count); `None` for no values. Sorts `v`.
pub fn median(v: &mut [f64]) -> Option<f64> {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}

/// Nearest-rank quantile: the smallest value with at least `q` of them at or below it;
/// `None` for no values.
pub fn quantile(v: &[f64], q: f64) -> Option<f64> {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len().max(1));
    v.get(rank - 1).copied()
}

/// `Err(msg())` unless `cond`: a check that reports and lets the test clean up.
pub fn ensure(cond: bool, msg: impl FnOnce() -> String) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(msg())
    }
}

/// An error as the test's String error, prefixed with what was being done.
pub fn ctx<T, E: Display>(r: Result<T, E>, what: &str) -> Result<T, String> {
    r.map_err(|e| format!("{what}: {e}"))
}

/// [`ctx`] as a method: `.ctx("what")?`.
pub trait Ctx<T> {
    fn ctx(self, what: &str) -> Result<T, String>;
}

impl<T, E: Display> Ctx<T> for Result<T, E> {
    fn ctx(self, what: &str) -> Result<T, String> {
        ctx(self, what)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence_and_bounds_hold() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        let xs: Vec<u64> = (0..100).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..100).map(|_| b.next_u64()).collect();
        assert_eq!(xs, ys);
        assert!(xs.windows(2).any(|w| w[0] != w[1]));
        let mut z = Rng::new(0);
        assert_ne!(z.next_u64(), 0);
        for _ in 0..1000 {
            assert!(a.below(10) < 10);
            let r = a.range((5, 9));
            assert!((5..9).contains(&r));
        }
        assert_eq!(a.below(0), 0);
        assert_eq!(a.range((3, 3)), 3);
        assert_eq!(a.pick(&[4]), 4);
        assert!((0..100).all(|_| [1, 2, 3].contains(&a.pick(&[1, 2, 3]))));
    }

    #[test]
    fn median_of_odd_even_and_none() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }

    #[test]
    fn nearest_rank_quantiles() {
        let v = [5.0, 1.0, 4.0, 2.0, 3.0];
        assert_eq!(quantile(&v, 0.5), Some(3.0));
        assert_eq!(quantile(&v, 0.95), Some(5.0));
        assert_eq!(quantile(&v, 0.0), Some(1.0));
        assert_eq!(quantile(&v, 1.0), Some(5.0));
        assert_eq!(quantile(&[1.0, 2.0], 0.5), Some(1.0));
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn ctx_names_what_failed() {
        let r: Result<(), std::io::Error> = Err(std::io::Error::other("gone"));
        assert_eq!(r.ctx("reading x"), Err("reading x: gone".to_string()));
        assert_eq!(ctx(Ok::<u8, String>(1), "y"), Ok(1));
    }

    #[test]
    fn ensure_reports_the_message() {
        assert_eq!(ensure(true, || "no".into()), Ok(()));
        assert_eq!(ensure(false, || "no".into()), Err("no".to_string()));
    }
}
