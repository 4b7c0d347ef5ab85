//! The memo of the linearization search: a compact hash set of
//! configurations, each a set of linearized operations (a bitset) and a
//! model state.
//!
//! Besides exact matches, the memo answers "dominated": a configuration is
//! hopeless if a failed one had the same state and the same completed
//! operations placed, and a subset of the unknown ones. Placing an unknown
//! operation only takes an option away (it need never be placed), so
//! whatever fails with fewer of them placed fails with more. Only
//! configurations whose whole subtree failed count; the hash ignores the
//! unknown operations so that such configurations meet.
//!
//! Every configuration lives in one flat arena of `u64` words: the bitset's
//! words followed by the state id. The table is open-addressed with linear
//! probing; a slot holds 32 bits of the hash and the arena index, so most
//! probes that miss never touch the arena. Memory is counted exactly (the
//! capacity of both vectors) and the set refuses to grow past its budget.

/// A set of (bitset, state) configurations with a byte budget.
pub(crate) struct Memo {
    /// Bits of the operations that completed (not unknown).
    certain: Vec<u64>,
    /// One bit per configuration: its subtree failed.
    failed: Vec<u64>,
    /// Words per configuration: the bitset's words plus one for the state.
    stride: usize,
    arena: Vec<u64>,
    /// `0` is empty; otherwise the high 32 bits are the hash's high bits and
    /// the low 32 bits are the arena index of the configuration plus one.
    slots: Vec<u64>,
    len: usize,
    budget: usize,
}

/// What [`Memo::insert`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Seen {
    /// New; its index, for [`Memo::fail`].
    New(u32),
    /// Seen before, or dominated by a failed configuration.
    Before,
}

/// The memo would need more memory than its budget allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MemoFull;

impl Memo {
    /// A memo for bitsets like `certain`, the set of completed operations,
    /// that may use `budget` bytes.
    pub(crate) fn new(certain: Vec<u64>, budget: usize) -> Memo {
        Memo {
            stride: certain.len() + 1,
            certain,
            failed: Vec::new(),
            arena: Vec::new(),
            slots: vec![0; 1024],
            len: 0,
            budget,
        }
    }

    /// Bytes held by the memo.
    pub(crate) fn bytes(&self) -> usize {
        (self.arena.capacity() + self.slots.capacity() + self.failed.capacity()) * 8
    }

    /// Number of configurations stored.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Marks a configuration as failed: its whole subtree was searched.
    pub(crate) fn fail(&mut self, entry: u32) {
        let e = entry as usize;
        self.failed[e / 64] |= 1 << (e % 64);
    }

    /// Adds a configuration unless it is there already or dominated.
    /// `hash` must ignore the unknown operations.
    pub(crate) fn insert(&mut self, bits: &[u64], state: u32, hash: u64) -> Result<Seen, MemoFull> {
        debug_assert_eq!(bits.len() + 1, self.stride);
        let mask = self.slots.len() - 1;
        let tag = hash >> 32;
        let mut i = (hash as usize) & mask;
        loop {
            let slot = self.slots[i];
            if slot == 0 {
                break;
            }
            if slot >> 32 == tag {
                let e = (slot & 0xffff_ffff) as usize - 1;
                let at = e * self.stride;
                let entry = &self.arena[at..at + self.stride];
                if entry[self.stride - 1] == u64::from(state) {
                    let old = &entry[..bits.len()];
                    if old == bits {
                        return Ok(Seen::Before);
                    }
                    let failed = self.failed[e / 64] >> (e % 64) & 1 == 1;
                    if failed && self.dominates(old, bits) {
                        return Ok(Seen::Before);
                    }
                }
            }
            i = (i + 1) & mask;
        }

        // Grow before the arena would reallocate past the budget, and keep
        // the table at most half full.
        if self.arena.len() + self.stride > self.arena.capacity() {
            let wanted = (self.arena.capacity() * 2).max(self.stride * 256);
            if (wanted + self.slots.len()) * 8 > self.budget {
                return Err(MemoFull);
            }
            self.arena.reserve_exact(wanted - self.arena.len());
        }
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow()?;
            return self.insert(bits, state, hash);
        }
        let index = self.len as u64 + 1;
        if index > u64::from(u32::MAX) {
            return Err(MemoFull);
        }
        self.arena.extend_from_slice(bits);
        self.arena.push(u64::from(state));
        self.slots[i] = (tag << 32) | index;
        if self.len.is_multiple_of(64) {
            self.failed.push(0);
        }
        self.len += 1;
        Ok(Seen::New(index as u32 - 1))
    }

    /// Whether `old` has the same completed operations as `new` and a
    /// subset of its unknown ones.
    fn dominates(&self, old: &[u64], new: &[u64]) -> bool {
        old.iter()
            .zip(new)
            .zip(&self.certain)
            .all(|((&o, &n), &c)| o & !n == 0 && (n & !o) & c == 0)
    }

    /// Doubles the table and reinserts every slot by its stored hash bits.
    /// The low bits of the hash are not stored, so slots are rehashed from
    /// the configuration itself.
    fn grow(&mut self) -> Result<(), MemoFull> {
        let size = self.slots.len() * 2;
        if (self.arena.capacity() + self.slots.len() + size) * 8 > self.budget {
            return Err(MemoFull);
        }
        let old = std::mem::replace(&mut self.slots, vec![0; size]);
        let mask = size - 1;
        for slot in old.into_iter().filter(|&s| s != 0) {
            let at = ((slot & 0xffff_ffff) as usize - 1) * self.stride;
            let entry = &self.arena[at..at + self.stride];
            let hash = rehash(entry, &self.certain);
            let mut i = (hash as usize) & mask;
            while self.slots[i] != 0 {
                i = (i + 1) & mask;
            }
            self.slots[i] = slot;
        }
        Ok(())
    }
}

/// Recomputes the hash of a stored configuration; must agree with the hash
/// the caller passes to [`Memo::insert`].
fn rehash(entry: &[u64], certain: &[u64]) -> u64 {
    let (bits, state) = entry.split_at(entry.len() - 1);
    let bits: Vec<u64> = bits.iter().zip(certain).map(|(b, c)| b & c).collect();
    super::search::config_hash(zobrist_of(&bits), state[0] as u32)
}

/// The Zobrist hash of a bitset: the xor of the keys of its members.
pub(crate) fn zobrist_of(bits: &[u64]) -> u64 {
    let mut h = 0;
    for (w, &word) in bits.iter().enumerate() {
        let mut word = word;
        while word != 0 {
            let b = word.trailing_zeros() as usize;
            h ^= zobrist_key(w * 64 + b);
            word &= word - 1;
        }
    }
    h
}

/// The Zobrist key of operation `i`: a fixed pseudo-random word.
pub(crate) fn zobrist_key(i: usize) -> u64 {
    let mut z = (i as u64)
        .wrapping_add(1)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linear::search::config_hash;

    fn insert(memo: &mut Memo, bits: &[u64], state: u32) -> Result<bool, MemoFull> {
        let certain: Vec<u64> = bits.iter().zip(&memo.certain).map(|(b, c)| b & c).collect();
        let seen = memo.insert(bits, state, config_hash(zobrist_of(&certain), state))?;
        Ok(matches!(seen, Seen::New(_)))
    }

    #[test]
    fn a_failed_configuration_dominates_those_with_more_unknowns_placed() {
        // Operations 0 and 1 completed; 2, 3 and 4 are unknown.
        let mut memo = Memo::new(vec![0b00011], 1 << 20);
        let hash = config_hash(zobrist_of(&[0b00001]), 7);
        let Ok(Seen::New(entry)) = memo.insert(&[0b00101], 7, hash) else {
            panic!("first insertion is new");
        };
        assert_eq!(insert(&mut memo, &[0b01101], 7), Ok(true), "not failed yet");
        memo.fail(entry);
        assert_eq!(insert(&mut memo, &[0b10101], 7), Ok(false), "more unknowns");
        assert_eq!(insert(&mut memo, &[0b11001], 7), Ok(true), "other unknowns");
        assert_eq!(
            insert(&mut memo, &[0b00111], 7),
            Ok(true),
            "other completed"
        );
        assert_eq!(insert(&mut memo, &[0b10101], 8), Ok(true), "other state");
    }

    #[test]
    fn remembers_configurations_across_growth() {
        let mut memo = Memo::new(vec![u64::MAX; 2], 1 << 30);
        for i in 0..5000u64 {
            assert_eq!(insert(&mut memo, &[i, i * 7], (i % 3) as u32), Ok(true));
        }
        for i in 0..5000u64 {
            assert_eq!(insert(&mut memo, &[i, i * 7], (i % 3) as u32), Ok(false));
            assert_eq!(insert(&mut memo, &[i, i * 7], 3), Ok(true));
        }
        assert_eq!(memo.len(), 10000);
    }

    #[test]
    fn refuses_to_grow_past_its_budget() {
        let mut memo = Memo::new(vec![u64::MAX], 64 * 1024);
        let full = (0..100_000u64).find_map(|i| insert(&mut memo, &[i], 0).err());
        assert_eq!(full, Some(MemoFull));
        assert!(memo.bytes() <= 64 * 1024);
    }
}
