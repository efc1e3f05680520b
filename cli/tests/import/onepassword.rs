//! onepassword: (being written).
