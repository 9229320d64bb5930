//! What the build learns from where it runs.
//!
//! The version `mfa-exec --version` shows (MFA_EXEC_VERSION): the package's, with the git
//! commit when built from a git checkout of this repository, and the package's alone from a
//! source tarball (even one unpacked inside another repository) or without git. Only git's
//! HEAD and refs make it run again, so an ordinary rebuild does no more work than before.
//!
//! Packed relative relocations (DT_RELR, `-z pack-relative-relocs`): the release binary has
//! about 31,000 relative relocations; as RELA entries they take 0.7 MB, and the loader applies
//! them one by one at every start, which every run of mfa-exec pays. Packed, they take a few
//! KB. A DT_RELR binary needs glibc 2.36 or later to start (older loaders refuse it, by its
//! `GLIBC_ABI_DT_RELR` version need), so the flag is added only when building natively on a
//! glibc that has it: a build on an older system links as before and runs there.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let full = match commit(&dir) {
        Some(commit) => format!("{version} ({commit})"),
        None => version,
    };
    println!("cargo:rustc-env=MFA_EXEC_VERSION={full}");

    let target = std::env::var("TARGET").unwrap_or_default();
    let host = std::env::var("HOST").unwrap_or_default();
    if target == host && target.ends_with("-linux-gnu") && glibc_has_dt_relr() {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

/// Whether this system's C library is glibc 2.36 or later (`getconf` says `glibc 2.36`).
fn glibc_has_dt_relr() -> bool {
    let Ok(out) = Command::new("getconf").arg("GNU_LIBC_VERSION").output() else {
        return false;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let Some(version) = text.trim().strip_prefix("glibc ") else {
        return false;
    };
    let mut numbers = version.split('.').map(|n| n.parse::<u32>().unwrap_or(0));
    let major = numbers.next().unwrap_or(0);
    let minor = numbers.next().unwrap_or(0);
    (major, minor) >= (2, 36)
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    out.status.success().then(|| text.trim().to_string())
}

fn commit(dir: &Path) -> Option<String> {
    let top = git(dir, &["rev-parse", "--show-toplevel"])?;
    if Path::new(&top).canonicalize().ok()? != dir.canonicalize().ok()? {
        return None;
    }
    // Run again when HEAD moves: HEAD itself (a checkout), the branch it names (a commit),
    // packed refs. A path that does not exist would make cargo run this every build: skipped.
    let mut watched = vec!["HEAD".to_string(), "packed-refs".to_string()];
    if let Some(branch) = git(dir, &["symbolic-ref", "-q", "HEAD"]) {
        watched.push(branch);
    }
    for name in watched {
        if let Some(path) = git(dir, &["rev-parse", "--git-path", &name]) {
            let path = dir.join(path);
            if path.exists() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }
    git(dir, &["rev-parse", "--short=12", "HEAD"])
}
