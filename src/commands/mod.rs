//! What each invocation does, from parsed arguments to output: one file per subcommand
//! (`cache`, `keys`, `device`, `list`, `history`, `console` for a console sign-in, `shell` for `init`,
//! `completions` and the profile names completion asks for, `man` for the manual pages) and one
//! for runs (exec, `--print-env`, `--credential-process`, `--server`). Each owns its output;
//! stdout carries only what a caller evaluates or parses.

mod cache;
mod console;
mod device;
mod history;
mod keys;
mod list;
mod man;
mod run;
mod shell;

use std::io::Write;
use std::process::ExitCode;

use anyhow::{bail, Result};

use crate::cli::{Cli, Sub};
use crate::exit::{Exit, BROKEN_PIPE, FAILURE};
use crate::settings::env::Env;

pub(crate) fn run() -> Result<ExitCode> {
    let cli = match Cli::parse_runs_first() {
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
        Some(Sub::Man { dir }) => man::generate(&dir),
        Some(Sub::Console(args)) => console::run(&args, &env),
        Some(Sub::History {
            since,
            profile,
            json,
        }) => history::run(since.as_deref(), profile.as_deref(), json, &env),
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
        "'console'",
        "'history'",
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

/// Writes the product to stdout. When it does not get there the run fails, so that a caller
/// (`eval "$(mfa-exec --print-env)"`, an SDK's credential_process) can tell: a closed stdout
/// or a write error is one line and status 125; a pipe whose reader is gone ends silently with
/// 141, as `cat` does.
pub(crate) fn print_stdout(text: &str) -> Result<()> {
    if text.is_empty() {
        return Ok(());
    }
    check_stdout()?;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(Exit {
            status: BROKEN_PIPE,
            message: String::new(),
        }
        .into()),
        Err(e) => bail!(
            "cannot write to stdout ({}): the output is missing or cut short",
            crate::files::io_reason(&e)
        ),
    }
}

/// Fails when stdout was closed (`>&-`): checked before the work too, so no MFA code is spent
/// on output that cannot be delivered. Rust's runtime puts `/dev/null` on a standard descriptor
/// that was closed at start, opened read-write, where writes vanish without an error; a
/// shell's `>/dev/null` opens it write-only (and stays allowed: it asks for the output to go).
pub(crate) fn check_stdout() -> Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    use nix::sys::stat::{fstat, stat, SFlag};
    let out = std::io::stdout();
    let (Ok(mine), Ok(null)) = (fstat(&out), stat("/dev/null")) else {
        return Ok(());
    };
    let is_null = SFlag::from_bits_truncate(mine.st_mode) & SFlag::S_IFMT == SFlag::S_IFCHR
        && mine.st_rdev == null.st_rdev;
    let read_write = fcntl(&out, FcntlArg::F_GETFL)
        .is_ok_and(|flags| OFlag::from_bits_truncate(flags) & OFlag::O_ACCMODE == OFlag::O_RDWR);
    if is_null && read_write {
        bail!("stdout is closed, so the output would go nowhere: give it a pipe or a file (eval \"$(mfa-exec --print-env)\", > FILE)");
    }
    Ok(())
}
