//! mfa-exec: run a command with MFA-backed temporary AWS credentials.
//!
//! One direction of flow: arguments (`cli`) → resolved settings (`settings`, `profile`) →
//! credentials (`credentials`: `cache`, or an MFA code from `token` and a call to `sts`) →
//! the environment (`environment`) → exec (`exec`), printed shell text (`shell`), a
//! credential_process document, or a local credential server (`server`).
//!
//! Leaf modules every step may use: `temporary` (the credentials value), `files` (reading a
//! file that may be a FIFO, a device or huge), `terminal` (outside text made safe to show),
//! `exit` (statuses).

mod cache;
mod cli;
mod commands;
mod credentials;
mod device;
mod environment;
mod exec;
mod exit;
mod files;
mod iam;
mod keys;
mod profile;
mod profile_edit;
mod qr;
mod server;
mod settings;
mod shell;
mod sts;
mod temporary;
mod terminal;
mod token;

use std::process::ExitCode;

fn main() -> ExitCode {
    match commands::run() {
        Ok(code) => code,
        Err(err) => exit::report(&err),
    }
}
