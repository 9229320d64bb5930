//! Replacing mfa-exec with the command (execvp), so its exit status, signals and terminal are
//! its own. Only returns on failure, saying which program could not run.

use std::ffi::{OsStr, OsString};
use std::io::ErrorKind;
use std::os::unix::process::CommandExt;
use std::process::Command;

use crate::exit::{Exit, CANNOT_INVOKE, NOT_FOUND};
use crate::output::environment::EnvChanges;

/// The command `argv` with the environment changes applied: what exec mode replaces mfa-exec
/// with and what [`crate::output::child`] starts, built one way for both.
pub(crate) fn command(argv: &[OsString], changes: &EnvChanges) -> Command {
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]);
    for (name, value) in &changes.0 {
        match value {
            Some(v) => cmd.env(name, v),
            None => cmd.env_remove(name),
        };
    }
    cmd
}

pub(crate) fn exec(argv: &[OsString], changes: &EnvChanges) -> anyhow::Error {
    let mut cmd = command(argv, changes);
    // Rust's runtime resets SIGPIPE to the default before exec, so `cmd | head` behaves; the
    // core limit is the user's again (mfa-exec's own is 0, see core_dumps).
    cannot_run(
        &argv[0],
        &crate::core_dumps::with_users_limit(|| cmd.exec()),
    )
}

/// Why a command could not start, with env(1)'s status: 127 not found, 126 not runnable.
pub(crate) fn cannot_run(program: &OsStr, err: &std::io::Error) -> anyhow::Error {
    let name = program.to_string_lossy();
    let (status, message) = match err.kind() {
        ErrorKind::NotFound => (
            NOT_FOUND,
            format!("{name}: command not found; check the name, or give its full path"),
        ),
        ErrorKind::PermissionDenied => (
            CANNOT_INVOKE,
            format!("{name}: permission denied; is it an executable file (chmod +x)?"),
        ),
        _ => (CANNOT_INVOKE, format!("cannot run {name}: {err}")),
    };
    Exit { status, message }.into()
}
