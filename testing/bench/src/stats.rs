// SPDX-License-Identifier: MIT OR Apache-2.0
//! Samples, medians and p95 where "never within T" is a real outcome, not a missing value.

use serde::{Deserialize, Serialize};

/// One measured outcome.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Value {
    /// A number in the metric's unit.
    Num(f64),
    /// The thing did not happen within the time limit.
    Never,
    /// The question does not apply (e.g. "endpoint back" when it was never withdrawn).
    NotApplicable,
}

impl Value {
    pub fn from_opt(v: Option<f64>) -> Value {
        v.map_or(Value::Never, Value::Num)
    }
}

/// A distribution summary. `Never` sorts after every number, so a median is "never" when
/// more than half of the runs never got there.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Runs that apply (numbers + nevers).
    pub n: usize,
    pub never: usize,
    pub median: Value,
    pub p95: Value,
    pub min: Value,
    pub max: Value,
}

/// Nearest-rank quantile over numbers followed by `never` infinities.
fn quantile(nums: &[f64], never: usize, q: f64) -> Value {
    let n = nums.len() + never;
    if n == 0 {
        return Value::NotApplicable;
    }
    // Nearest rank: the smallest value with at least q of the runs at or below it.
    let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
    if rank <= nums.len() {
        Value::Num(nums[rank - 1])
    } else {
        Value::Never
    }
}

/// The median is the usual one (mean of the middle two) when both are numbers.
fn median(nums: &[f64], never: usize) -> Value {
    let n = nums.len() + never;
    if n == 0 {
        return Value::NotApplicable;
    }
    let at = |i: usize| nums.get(i).copied();
    if n % 2 == 1 {
        at(n / 2).map_or(Value::Never, Value::Num)
    } else {
        match (at(n / 2 - 1), at(n / 2)) {
            (Some(a), Some(b)) => Value::Num((a + b) / 2.0),
            _ => Value::Never,
        }
    }
}

pub fn summarize(values: &[Value]) -> Summary {
    let mut nums: Vec<f64> = values
        .iter()
        .filter_map(|v| match v {
            Value::Num(x) => Some(*x),
            _ => None,
        })
        .collect();
    nums.sort_by(|a, b| a.total_cmp(b));
    let never = values.iter().filter(|v| matches!(v, Value::Never)).count();
    Summary {
        n: nums.len() + never,
        never,
        median: median(&nums, never),
        p95: quantile(&nums, never, 0.95),
        min: quantile(&nums, never, 0.0),
        max: quantile(&nums, never, 1.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_p95_of_numbers() {
        let v: Vec<Value> = (1..=20).map(|i| Value::Num(i as f64)).collect();
        let s = summarize(&v);
        assert_eq!(s.n, 20);
        assert_eq!(s.median, Value::Num(10.5));
        assert_eq!(s.p95, Value::Num(19.0));
        assert_eq!(s.min, Value::Num(1.0));
        assert_eq!(s.max, Value::Num(20.0));
    }

    #[test]
    fn never_counts_as_slowest() {
        let v = [Value::Num(3.0), Value::Never, Value::Num(1.0)];
        let s = summarize(&v);
        assert_eq!((s.n, s.never), (3, 1));
        assert_eq!(s.median, Value::Num(3.0));
        assert_eq!(s.p95, Value::Never);
        let all_never = summarize(&[Value::Never, Value::Never]);
        assert_eq!(all_never.median, Value::Never);
    }

    #[test]
    fn not_applicable_is_left_out() {
        let v = [Value::NotApplicable, Value::Num(2.0)];
        let s = summarize(&v);
        assert_eq!(s.n, 1);
        assert_eq!(s.median, Value::Num(2.0));
        assert_eq!(
            summarize(&[Value::NotApplicable]).median,
            Value::NotApplicable
        );
    }

    #[test]
    fn even_count_with_never_in_the_middle() {
        let v = [Value::Num(1.0), Value::Never];
        assert_eq!(summarize(&v).median, Value::Never);
    }
}
