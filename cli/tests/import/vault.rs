//! vault: (being written).
