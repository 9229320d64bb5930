//! What each invocation does, from parsed arguments to output: the run modes (exec,
//! `--print-env`, `--credential-process`, `--server`) and the small subcommands (`cache`,
//! `init`, `completions`; `device` lives in its own module).

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{CommandFactory, Parser};

use crate::cache::Cache;
use crate::cli::{CacheCmd, Cli, InitShell, KeysCmd, RunArgs, Sub};
use crate::credentials;
use crate::environment;
use crate::exec;
use crate::exit::{Exit, FAILURE};
use crate::settings::{Env, Output, Settings};
use crate::shell;
use crate::temporary::Credentials;
use crate::terminal::say;

pub(crate) fn run() -> Result<ExitCode> {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return usage_error(err),
    };
    let env = Env::from_process();
    match cli.subcommand {
        Some(Sub::Cache(cmd)) => cache(cmd, &env),
        Some(Sub::Keys(cmd)) => keys(cmd, &env),
        Some(Sub::Init { shell: Some(shell) }) => {
            print_stdout(init_script(shell))?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Sub::Init { shell: None }) => bail!(
            "init needs a shell: one of {}; e.g. add `eval \"$(mfa-exec init bash)\"` to ~/.bashrc",
            known_shells()
        ),
        Some(Sub::Completions { shell }) => {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "mfa-exec", &mut out);
            print_stdout(&String::from_utf8_lossy(&out))?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Sub::Device(cmd)) => crate::device::run(cmd, &env),
        Some(Sub::Profiles) => {
            let names = env.profile_files()?.profile_names();
            print_stdout(&names.iter().map(|n| format!("{n}\n")).collect::<String>())?;
            Ok(ExitCode::SUCCESS)
        }
        None => with_credentials(&cli.run, &env),
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
    let subcommand_late = ["'cache'", "'init'", "'completions'", "'keys'", "'device'"]
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

fn with_credentials(args: &RunArgs, env: &Env) -> Result<ExitCode> {
    let settings = Settings::resolve(args, env)?;
    let cache = if settings.cache.enabled {
        Cache::open(env)
    } else {
        None
    };
    if let Output::Server(argv) = &settings.output {
        return crate::server::run(&settings, cache, argv);
    }
    let (creds, obtained) = credentials::obtain(&settings, cache.as_ref())?;
    let changes = environment::for_credentials(&creds, obtained, &settings);
    match &settings.output {
        Output::Exec(argv) => Err(exec::exec(argv, &changes)),
        Output::PrintEnv(kind) => {
            if std::io::stdout().is_terminal() {
                say("this prints shell code; to load it run: eval \"$(mfa-exec --print-env …)\" (fish: mfa-exec --print-env --shell fish | source)");
            }
            print_stdout(&shell::render(&changes, *kind))?;
            Ok(ExitCode::SUCCESS)
        }
        Output::CredentialProcess => {
            print_stdout(&credential_process_json(&creds))?;
            Ok(ExitCode::SUCCESS)
        }
        Output::Server(_) => unreachable!("handled above"),
    }
}

/// The document an SDK's `credential_process` reads. With `Expiration` the SDK calls us
/// again before it is reached (and the cache answers); without it, it never refreshes.
pub(crate) fn credential_process_json(creds: &Credentials) -> String {
    let doc = serde_json::json!({
        "Version": 1,
        "AccessKeyId": creds.access_key_id,
        "SecretAccessKey": creds.secret_access_key,
        "SessionToken": creds.session_token,
        "Expiration": creds.expiration_rfc3339(),
    });
    format!("{doc}\n")
}

fn cache(cmd: CacheCmd, env: &Env) -> Result<ExitCode> {
    let Some(cache) = Cache::existing(env)? else {
        if matches!(cmd, CacheCmd::List) {
            say("the credential cache is empty");
        }
        return Ok(ExitCode::SUCCESS);
    };
    match cmd {
        CacheCmd::List => {
            let mut out = Vec::new();
            let n = cache.list(&mut out)?;
            if n == 0 {
                say(&format!(
                    "the credential cache ({}) is empty",
                    cache.dir().display()
                ));
            }
            print_stdout(&String::from_utf8_lossy(&out))?;
        }
        CacheCmd::Clear { profile } => {
            let n = cache.clear(profile.as_deref())?;
            let whose = profile
                .map(|p| format!(" of profile {p}"))
                .unwrap_or_default();
            say(&format!(
                "removed {n} cached entr{}{whose}",
                if n == 1 { "y" } else { "ies" }
            ));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn keys(cmd: KeysCmd, env: &Env) -> Result<ExitCode> {
    // `-p`, else AWS_PROFILE (refused when not text), else `default`, as for runs.
    let profile_name = |flag: Option<String>| -> Result<String> {
        Ok(crate::settings::named_profile(flag.as_deref(), env)?
            .unwrap_or_else(|| "default".into()))
    };
    match cmd {
        KeysCmd::Add {
            profile,
            from_credentials_file,
        } => crate::keys::add(&profile_name(profile)?, from_credentials_file, env)?,
        KeysCmd::List => {
            let mut out = Vec::new();
            if crate::keys::list(env, &mut out)? == 0 {
                say("no keys in the OS keyring; add a profile's with `mfa-exec keys add -p PROFILE`");
            }
            print_stdout(&String::from_utf8_lossy(&out))?;
        }
        KeysCmd::Remove { profile } => crate::keys::remove(&profile_name(profile)?, env)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// "bash, zsh, fish, powershell": the shells `init` has a script for.
fn known_shells() -> String {
    use clap::ValueEnum;
    InitShell::value_variants()
        .iter()
        .filter_map(|s| s.to_possible_value())
        .map(|v| v.get_name().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn init_script(shell: InitShell) -> &'static str {
    match shell {
        InitShell::Bash => include_str!("../shell/mfa-exec.bash"),
        InitShell::Zsh => include_str!("../shell/mfa-exec.zsh"),
        InitShell::Fish => include_str!("../shell/mfa-exec.fish"),
        InitShell::Powershell => include_str!("../shell/mfa-exec.ps1"),
    }
}

/// Writes to stdout; a closed pipe is not worth a panic.
pub(crate) fn print_stdout(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("cannot write to stdout"),
    }
}
