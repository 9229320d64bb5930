//! Shared test support: the strict STS stand-in and the test environment that runs the real
//! binary. Each integration test file uses a different subset, hence the allow.
#![allow(dead_code)]

pub mod env;
pub mod phone;
pub mod pty;
pub mod sts;
