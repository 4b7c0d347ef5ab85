//! The `register` workload: reads, writes and compare-and-sets over a few
//! keys, each key a register checked on its own.
//!
//! Values are small (0 to [`MAX_VALUE`] exclusive) so that a cas guesses the
//! current value often enough to both succeed and fail. Every choice comes
//! from the generator's random source, so one seed gives one sequence.

use crate::client::Invocation;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

/// Values written and compared are in `0..MAX_VALUE`.
pub const MAX_VALUE: i64 = 5;

/// The name of key `i` (0-based): `k1`, `k2`, ...
pub fn key_name(i: usize) -> String {
    format!("k{}", i + 1)
}

/// How often each function is drawn, in parts of the total.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mix {
    pub read: u32,
    pub write: u32,
    pub cas: u32,
}

impl Default for Mix {
    /// Jepsen's usual register mix: as many reads as writes and cas.
    fn default() -> Mix {
        Mix {
            read: 2,
            write: 1,
            cas: 1,
        }
    }
}

/// Draws register operations for one client worker.
#[derive(Debug, Clone)]
pub struct RegisterGen {
    rng: StdRng,
    keys: usize,
    mix: Mix,
}

impl RegisterGen {
    /// A generator over `keys` keys (at least one) drawing from `seed`.
    pub fn new(seed: u64, keys: usize, mix: Mix) -> RegisterGen {
        RegisterGen {
            rng: StdRng::seed_from_u64(seed),
            keys: keys.max(1),
            mix,
        }
    }

    /// The next operation.
    pub fn next_op(&mut self) -> Invocation {
        let key = key_name(self.rng.gen_range(0..self.keys));
        let total = (self.mix.read + self.mix.write + self.mix.cas).max(1);
        let pick = self.rng.gen_range(0..total);
        if pick < self.mix.read {
            return Invocation {
                f: "read".into(),
                key,
                value: Value::Null,
            };
        }
        if pick < self.mix.read + self.mix.write {
            let v = self.rng.gen_range(0..MAX_VALUE);
            return Invocation {
                f: "write".into(),
                key,
                value: json!(v),
            };
        }
        let from = self.rng.gen_range(0..MAX_VALUE);
        let to = self.rng.gen_range(0..MAX_VALUE);
        Invocation {
            f: "cas".into(),
            key,
            value: json!([from, to]),
        }
    }

    /// A read of key `i`, for the final reads after the faults are healed.
    pub fn final_read(i: usize) -> Invocation {
        Invocation {
            f: "read".into(),
            key: key_name(i),
            value: Value::Null,
        }
    }

    /// A random delay in `0..2 * mean` seconds, so that workers that share
    /// an aggregate rate do not march in step.
    pub fn stagger(&mut self, mean_secs: f64) -> f64 {
        if mean_secs <= 0.0 {
            return 0.0;
        }
        self.rng.gen_range(0.0..2.0 * mean_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_draws_the_same_operations() {
        let mut a = RegisterGen::new(7, 5, Mix::default());
        let mut b = RegisterGen::new(7, 5, Mix::default());
        for _ in 0..100 {
            assert_eq!(a.next_op(), b.next_op());
        }
    }

    #[test]
    fn draws_every_function_over_every_key_with_small_values() {
        let mut g = RegisterGen::new(1, 3, Mix::default());
        let ops: Vec<Invocation> = (0..1000).map(|_| g.next_op()).collect();
        for f in ["read", "write", "cas"] {
            assert!(ops.iter().any(|o| o.f == f), "no {f} drawn");
        }
        for k in ["k1", "k2", "k3"] {
            assert!(ops.iter().any(|o| o.key == k), "no op on {k}");
        }
        let small = |v: &Value| v.as_i64().is_some_and(|v| (0..MAX_VALUE).contains(&v));
        for op in &ops {
            match op.f.as_str() {
                "read" => assert!(op.value.is_null()),
                "write" => assert!(small(&op.value)),
                _ => {
                    let pair = op.value.as_array().expect("cas takes [from, to]");
                    assert!(pair.len() == 2 && pair.iter().all(small));
                }
            }
        }
    }

    #[test]
    fn stagger_stays_within_twice_the_mean() {
        let mut g = RegisterGen::new(3, 1, Mix::default());
        for _ in 0..1000 {
            let d = g.stagger(0.01);
            assert!((0.0..0.02).contains(&d));
        }
        assert_eq!(g.stagger(0.0), 0.0);
    }
}
