//! AWS Secrets Manager: `ListSecrets` + `BatchGetSecretValue` (20 a call), the standard credential chain.
//!
//! (Being written.)
