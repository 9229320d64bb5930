//! A strict local stand-in for AWS STS, the IAM calls of a user's own virtual MFA device and S3
//! ListBuckets: mfa-exec's integration tests run it in-process, the `sts-standin` binary runs it
//! for scripts/demo and the benchmarks.

mod sts;

pub mod phone;
pub use sts::*;
