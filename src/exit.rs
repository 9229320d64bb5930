//! Exit statuses, as env(1) has them, and the one error type that carries a status other
//! than mfa-exec's own-failure 125.

use std::process::ExitCode;

/// mfa-exec itself failed (bad input, STS refused, …).
pub(crate) const FAILURE: u8 = 125;
/// The command was found but could not be run.
pub(crate) const CANNOT_INVOKE: u8 = 126;
/// The command was not found.
pub(crate) const NOT_FOUND: u8 = 127;
/// stdout was a pipe nobody reads any more: 128 + SIGPIPE, the status a shell shows for `cat`
/// killed by one, which `set -o pipefail` scripts know to expect.
pub(crate) const BROKEN_PIPE: u8 = 141;

/// An error that ends the run with a particular status; an empty message prints nothing.
#[derive(Debug)]
pub(crate) struct Exit {
    pub(crate) status: u8,
    pub(crate) message: String,
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Exit {}

/// Prints `mfa-exec: …` on one line, safe for the terminal, and picks the status.
pub(crate) fn report(err: &anyhow::Error) -> ExitCode {
    let status = err.downcast_ref::<Exit>().map_or(FAILURE, |e| e.status);
    let text = format!("{err:#}").replace(['\n', '\r'], " ");
    if !text.is_empty() {
        crate::terminal::say(&text);
    }
    ExitCode::from(status)
}
