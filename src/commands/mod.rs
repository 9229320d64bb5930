//! What each invocation does, from parsed arguments to output: one file per subcommand
//! (`cache`, `keys`, `device`, `list`, and `shell` for `init`, `completions` and the profile names
//! completion asks for) and one for runs (exec, `--print-env`, `--credential-process`,
//! `--server`). Each owns its output; stdout carries only what a caller evaluates or parses.

mod cache;
mod device;
mod keys;
mod list;
mod run;
mod shell;

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;

use crate::cli::{Cli, Sub};
use crate::exit::{Exit, FAILURE};
use crate::settings::env::Env;

pub(crate) fn run() -> Result<ExitCode> {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return usage_error(err),
    };
    let env = Env::from_process();
    match cli.subcommand {
        Some(Sub::Cache(cmd)) => cache::run(cmd, &env),
        Some(Sub::Keys(cmd)) => keys::run(cmd, &env),
        Some(Sub::Device(cmd)) => device::run(cmd, &env),
        Some(Sub::Init { shell }) => shell::init(shell),
        Some(Sub::Completions { shell }) => shell::completions(shell),
        Some(Sub::List { json }) => list::run(json, &env),
        Some(Sub::Profiles) => shell::profile_names(&env),
        None => run::run(&cli.run, &env),
    }
}

/// clap's errors are several lines; mfa-exec's are one, saying what to do.
fn usage_error(err: clap::Error) -> Result<ExitCode> {
    use clap::error::ErrorKind;
    match err.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = err.print();
            return Ok(ExitCode::SUCCESS);
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = err.print();
            return Ok(ExitCode::from(FAILURE));
        }
        _ => {}
    }
    // clap's text on one line: the error and its tips (it may list arguments below), without
    // the usage and "for more information" paragraphs.
    let rendered = err.render().to_string();
    let first = rendered
        .split("\n\n")
        .filter(|p| !p.starts_with("Usage:") && !p.starts_with("For more information"))
        .flat_map(str::lines)
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
        .trim_start_matches("error: ")
        .replace(" tip: ", "; ");
    let subcommand_late = [
        "'cache'",
        "'init'",
        "'completions'",
        "'keys'",
        "'device'",
        "'list'",
    ]
    .iter()
    .any(|w| first.contains(w));
    let hint = match err.kind() {
        ErrorKind::UnknownArgument if subcommand_late => {
            "; a subcommand comes first, with its own options after it: `mfa-exec cache list`, `mfa-exec cache clear --profile P`"
        }
        ErrorKind::InvalidSubcommand | ErrorKind::UnknownArgument
            if !first.contains("argument '-") =>
        {
            "; to run a command put it after --, e.g. `mfa-exec -- aws s3 ls` (see mfa-exec --help)"
        }
        _ => " (see mfa-exec --help)",
    };
    Err(Exit {
        status: FAILURE,
        message: format!("{first}{hint}"),
    }
    .into())
}

/// Writes to stdout; a closed pipe is not worth a panic.
pub(crate) fn print_stdout(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("cannot write to stdout"),
    }
}
