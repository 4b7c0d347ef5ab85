//! The in-memory Raft log: entries indexed from 1, with the term lookups and
//! the conflict truncation the protocol needs.

use super::Entry;

/// Entries 1..=last, held in memory (the driver keeps the durable copy).
#[derive(Clone, Debug, Default)]
pub struct RaftLog {
    entries: Vec<Entry>,
}

impl RaftLog {
    /// A log holding `entries`, which must be numbered 1, 2, 3...
    pub fn new(entries: Vec<Entry>) -> RaftLog {
        RaftLog { entries }
    }

    /// The index of the last entry, 0 when empty.
    pub fn last_index(&self) -> u64 {
        self.entries.len() as u64
    }

    /// The term of the last entry, 0 when empty.
    pub fn last_term(&self) -> u64 {
        self.entries.last().map_or(0, |e| e.term)
    }

    /// The term of the entry at `index`; 0 for index 0, `None` past the end.
    pub fn term_at(&self, index: u64) -> Option<u64> {
        if index == 0 {
            return Some(0);
        }
        self.entries.get(index as usize - 1).map(|e| e.term)
    }

    /// The entry at `index`, if present.
    pub fn get(&self, index: u64) -> Option<&Entry> {
        if index == 0 {
            return None;
        }
        self.entries.get(index as usize - 1)
    }

    /// Entries from `from` on, at most `max` of them.
    pub fn slice(&self, from: u64, max: usize) -> Vec<Entry> {
        let start = (from.max(1) - 1) as usize;
        let end = (start + max).min(self.entries.len());
        if start >= end {
            return Vec::new();
        }
        self.entries[start..end].to_vec()
    }

    /// All entries.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Whether a log ending at (`last_term`, `last_index`) is at least as
    /// up to date as this one (section 5.4.1 of the Raft paper).
    pub fn is_up_to_date(&self, last_index: u64, last_term: u64) -> bool {
        (last_term, last_index) >= (self.last_term(), self.last_index())
    }

    /// Appends one entry.
    pub fn push(&mut self, entry: Entry) {
        debug_assert_eq!(entry.index, self.last_index() + 1);
        self.entries.push(entry);
    }

    /// Removes entries from `from` on.
    pub fn truncate(&mut self, from: u64) {
        self.entries.truncate((from.max(1) - 1) as usize);
    }

    /// The first index of the run of entries sharing the term at `index`.
    pub fn first_index_of_term_at(&self, index: u64) -> u64 {
        let Some(term) = self.term_at(index) else {
            return index;
        };
        let mut first = index;
        while first > 1 && self.term_at(first - 1) == Some(term) {
            first -= 1;
        }
        first
    }
}
