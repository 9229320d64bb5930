//! Shared test support: the test environment that runs the real binary against the strict STS
//! stand-in (the `sts-standin` crate). Each integration test file uses a different subset, hence
//! the allow.
#![allow(dead_code)]

pub mod background;
pub mod bus;
pub mod desktop;
pub mod env;
pub mod pty;
pub mod secret_service;

use std::path::{Path, PathBuf};

/// Every regular file under `dir`, recursively (symbolic links not followed; a directory that
/// cannot be read, or is gone, is skipped): where tests look for a secret or a leftover.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(t) = e.file_type() else { continue };
            if t.is_dir() {
                todo.push(e.path());
            } else if t.is_file() {
                out.push(e.path());
            }
        }
    }
    out
}
