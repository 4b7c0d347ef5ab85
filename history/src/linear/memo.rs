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
//! Every configuration lives in one flat arena of `u64` words: its hash,
//! its state, and its bitset trimmed: the leading words in which every
//! operation is placed and the trailing words in which none is are left
//! out, and the first kept word's position is stored. A search over a long
//! history with little concurrency only ever has a narrow window of
//! operations between "all placed" and "none placed", so an entry stays a
//! few words long however long the history is, and memory and time grow
//! linearly with it. The table is open-addressed with linear probing; a
//! slot holds 32 bits of the hash and the entry's number, so most probes
//! that miss never touch the arena. Memory is counted exactly (the capacity
//! of the vectors) and the set refuses to grow past its budget.

/// A set of (bitset, state) configurations with a byte budget.
pub(crate) struct Memo {
    /// Bits of the operations that completed (not unknown).
    certain: Vec<u64>,
    /// One bit per configuration: its subtree failed.
    failed: Vec<u64>,
    /// Entries: hash, state, first kept word, number of kept words, words.
    arena: Vec<u64>,
    /// Arena position of each entry.
    offsets: Vec<u32>,
    /// `0` is empty; otherwise the high 32 bits are the hash's high bits and
    /// the low 32 bits are the entry's number plus one.
    slots: Vec<u64>,
    len: usize,
    budget: usize,
}

/// Words of an entry before its bitset.
const HEADER: usize = 4;

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

/// The kept words of a bitset: the position of the first word not full,
/// and the words from there to the last word not empty.
fn trim(bits: &[u64]) -> (usize, &[u64]) {
    let start = bits.iter().take_while(|&&w| w == u64::MAX).count();
    let end = bits.iter().rposition(|&w| w != 0).map_or(0, |p| p + 1);
    (start, &bits[start..end.max(start)])
}

/// Word `i` of a trimmed bitset.
fn word(start: usize, words: &[u64], i: usize) -> u64 {
    if i < start {
        u64::MAX
    } else {
        words.get(i - start).copied().unwrap_or(0)
    }
}

impl Memo {
    /// A memo for bitsets like `certain`, the set of completed operations,
    /// that may use `budget` bytes.
    pub(crate) fn new(certain: Vec<u64>, budget: usize) -> Memo {
        Memo {
            certain,
            failed: Vec::new(),
            arena: Vec::new(),
            offsets: Vec::new(),
            slots: vec![0; 1024],
            len: 0,
            budget,
        }
    }

    /// Bytes held by the memo.
    pub(crate) fn bytes(&self) -> usize {
        (self.arena.capacity() + self.slots.capacity() + self.failed.capacity()) * 8
            + self.offsets.capacity() * 4
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

    /// The state, first kept word and kept words of entry `e`.
    fn entry(&self, e: usize) -> (u64, usize, &[u64]) {
        let at = self.offsets[e] as usize;
        let (start, len) = (self.arena[at + 2] as usize, self.arena[at + 3] as usize);
        let words = &self.arena[at + HEADER..at + HEADER + len];
        (self.arena[at + 1], start, words)
    }

    /// Adds a configuration unless it is there already or dominated.
    /// `hash` must ignore the unknown operations.
    pub(crate) fn insert(
        &mut self,
        bits: &[u64],
        state: u32,
        hash: u64,
    ) -> Result<Seen, MemoFull> {
        debug_assert_eq!(bits.len(), self.certain.len());
        let (start, words) = trim(bits);
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
                let (old_state, old_start, old) = self.entry(e);
                if old_state == u64::from(state) {
                    if old_start == start && old == words {
                        return Ok(Seen::Before);
                    }
                    let failed = self.failed[e / 64] >> (e % 64) & 1 == 1;
                    if failed && self.dominates((old_start, old), (start, words)) {
                        return Ok(Seen::Before);
                    }
                }
            }
            i = (i + 1) & mask;
        }

        // Grow before the arena would reallocate past the budget, and keep
        // the table at most half full.
        let need = HEADER + words.len();
        if self.arena.len() + need > self.arena.capacity() {
            let wanted = (self.arena.capacity() * 2).max(self.arena.len() + need * 256);
            if (wanted + self.slots.len() + self.offsets.capacity()) * 8 > self.budget {
                return Err(MemoFull);
            }
            self.arena.reserve_exact(wanted - self.arena.len());
        }
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow()?;
            return self.insert(bits, state, hash);
        }
        let index = self.len as u64 + 1;
        if index > u64::from(u32::MAX) || self.arena.len() > u32::MAX as usize {
            return Err(MemoFull);
        }
        self.offsets.push(self.arena.len() as u32);
        self.arena
            .extend_from_slice(&[hash, u64::from(state), start as u64]);
        self.arena.push(words.len() as u64);
        self.arena.extend_from_slice(words);
        self.slots[i] = (tag << 32) | index;
        if self.len.is_multiple_of(64) {
            self.failed.push(0);
        }
        self.len += 1;
        Ok(Seen::New(index as u32 - 1))
    }

    /// Whether `old` has the same completed operations as `new` and a
    /// subset of its unknown ones. Both are trimmed bitsets.
    fn dominates(&self, old: (usize, &[u64]), new: (usize, &[u64])) -> bool {
        let from = old.0.min(new.0);
        let to = (old.0 + old.1.len()).max(new.0 + new.1.len());
        (from..to).all(|i| {
            let (o, n, c) = (
                word(old.0, old.1, i),
                word(new.0, new.1, i),
                self.certain[i],
            );
            o & !n == 0 && (n & !o) & c == 0
        })
    }

    /// Doubles the table and reinserts every slot by its stored hash.
    fn grow(&mut self) -> Result<(), MemoFull> {
        let size = self.slots.len() * 2;
        if (self.arena.capacity() + self.slots.len() + size) * 8 > self.budget {
            return Err(MemoFull);
        }
        let old = std::mem::replace(&mut self.slots, vec![0; size]);
        let mask = size - 1;
        for slot in old.into_iter().filter(|&s| s != 0) {
            let e = (slot & 0xffff_ffff) as usize - 1;
            let hash = self.arena[self.offsets[e] as usize];
            let mut i = (hash as usize) & mask;
            while self.slots[i] != 0 {
                i = (i + 1) & mask;
            }
            self.slots[i] = slot;
        }
        Ok(())
    }
}

/// The Zobrist hash of a bitset: the xor of the keys of its members.
#[cfg(test)]
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
        let certain: Vec<u64> =
            bits.iter().zip(&memo.certain).map(|(b, c)| b & c).collect();
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

    #[test]
    fn entries_keep_only_the_window_between_all_placed_and_none_placed() {
        // 100 000 operations, all completed; the first `base` placed and a
        // few more after them.
        let words = 100_000 / 64;
        let mut memo = Memo::new(vec![u64::MAX; words], 64 << 20);
        let config = |base: usize, extra: u64| {
            let mut bits = vec![0u64; words];
            bits[..base].fill(u64::MAX);
            bits[base] = extra;
            bits
        };
        for base in 0..words - 1 {
            assert_eq!(insert(&mut memo, &config(base, 0b101), 1), Ok(true));
            assert_eq!(insert(&mut memo, &config(base, 0b101), 1), Ok(false));
        }
        assert_eq!(insert(&mut memo, &config(7, 0b111), 1), Ok(true));
        // A few words per entry, not 1 562.
        assert!(memo.bytes() < 1 << 20, "{} bytes", memo.bytes());
    }
}
