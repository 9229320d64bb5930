//! mfa-exec: run a command with MFA-backed temporary AWS credentials.
//!
//! One direction of flow, one folder per step:
//!
//! - `cli`: what the user typed (clap), no I/O;
//! - `commands`: one file per subcommand and one for runs, each owning its output;
//! - `settings`: flags, environment and profile files resolved once into what a run does;
//! - `profile`: the AWS config and credentials files, read as the SDK's parser reads them and edited
//!   byte for byte;
//! - `credentials`: the cache, or an MFA code and a call to STS;
//! - `aws`: the STS and IAM clients and what their failures mean to a user;
//! - `output`: the environment a command gets, exec, shell text, the credential server.
//!
//! Leaves every step may use: `terminal` (the one `/dev/tty`, text made safe to show),
//! `files` (bounded reads, atomic writes, locked edits of a user's files), `history` (one
//! appended line per run, and per proxied request), `exit` (statuses),
//! `core_dumps` (none of mfa-exec, the user's limit for what it runs), `names` (hashing the
//! short names asked thousands of times).

mod aws;
mod cli;
mod clock;
mod commands;
mod core_dumps;
mod credentials;
mod exit;
mod files;
mod history;
mod names;
mod output;
mod profile;
mod secrets;
mod settings;
mod terminal;

use std::process::ExitCode;

fn main() -> ExitCode {
    // Before any secret is read, whatever the mode.
    core_dumps::forbid();
    match commands::run() {
        Ok(code) => code,
        Err(err) => exit::report(&err),
    }
}
