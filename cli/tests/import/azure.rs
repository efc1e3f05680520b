//! azure: (being written).
