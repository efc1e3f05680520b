//! Azure Key Vault: a vault's secrets, disabled ones reported.
//!
//! (Being written.)
