//! Shared test support: the test environment that runs the real binary against the strict STS
//! stand-in (the `sts-standin` crate). Each integration test file uses a different subset, hence
//! the allow.
#![allow(dead_code)]

pub mod desktop;
pub mod env;
pub mod pty;
pub mod secret_service;
