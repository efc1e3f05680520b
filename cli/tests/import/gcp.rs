//! gcp: (being written).
