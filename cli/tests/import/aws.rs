//! aws: (being written).
