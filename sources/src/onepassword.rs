//! 1Password: items of a vault through the Connect server or the `op` CLI; fields become keys.
//!
//! (Being written.)
