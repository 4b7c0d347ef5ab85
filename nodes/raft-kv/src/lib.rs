//! The reference Raft key-value node.
