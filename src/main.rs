//! mfa-exec: run a command with MFA-backed temporary AWS credentials.
//!
//! One direction of flow: arguments (`cli`) → resolved settings (`settings`, `profile`) →
//! credentials (`credentials`: `cache`, or an MFA code from `token` and a call to `sts`) →
//! the environment (`environment`) → exec (`exec`), printed shell text (`shell`), a
//! credential_process document, or a local credential server (`server`).

mod cache;
mod cli;
mod commands;
mod credentials;
mod device;
mod environment;
mod exec;
mod exit;
mod iam;
mod profile;
// FileKind::Credentials is for `keys add` (issue 11); the allow goes when that is merged.
#[allow(dead_code)]
mod profile_edit;
mod qr;
mod server;
mod settings;
mod shell;
mod sts;
mod token;

use std::process::ExitCode;

fn main() -> ExitCode {
    match commands::run() {
        Ok(code) => code,
        Err(err) => exit::report(&err),
    }
}
