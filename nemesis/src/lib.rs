//! Faults and their undo.
