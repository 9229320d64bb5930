//! What shells need from the binary: the integration script (`init SHELL`), completions
//! (`completions SHELL`), and the profile names the completions offer after `-p` (the hidden
//! `profiles` subcommand).

use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::CommandFactory;

use super::print_stdout;
use crate::cli::{Cli, InitShell};
use crate::settings::env::Env;

pub(super) fn init(shell: Option<InitShell>) -> Result<ExitCode> {
    let Some(shell) = shell else {
        bail!(
            "init needs a shell: one of {}; e.g. add `eval \"$(mfa-exec init bash)\"` to ~/.bashrc",
            known_shells()
        )
    };
    print_stdout(init_script(shell))?;
    Ok(ExitCode::SUCCESS)
}

pub(super) fn completions(shell: clap_complete::Shell) -> Result<ExitCode> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "mfa-exec", &mut out);
    print_stdout(&String::from_utf8_lossy(&out))?;
    Ok(ExitCode::SUCCESS)
}

pub(super) fn profile_names(env: &Env) -> Result<ExitCode> {
    let names = env.profile_files()?.profile_names();
    print_stdout(&names.iter().map(|n| format!("{n}\n")).collect::<String>())?;
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
        InitShell::Bash => include_str!("../../shell/mfa-exec.bash"),
        InitShell::Zsh => include_str!("../../shell/mfa-exec.zsh"),
        InitShell::Fish => include_str!("../../shell/mfa-exec.fish"),
        InitShell::Powershell => include_str!("../../shell/mfa-exec.ps1"),
    }
}
