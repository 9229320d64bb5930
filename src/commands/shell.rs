//! What shells need from the binary: the integration script (`init SHELL`), completions
//! (`completions SHELL`), and the profile names the completions offer after `-p` (the hidden
//! `profiles` subcommand). The package installs the same completions and scripts
//! (scripts/package), so there is one copy of each whichever way mfa-exec was installed.

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
    print_stdout(&completion_script(shell))?;
    Ok(ExitCode::SUCCESS)
}

/// clap_complete's script, which knows every subcommand and option, with profile names after
/// `-p`/`--profile` asked of `mfa-exec profiles` at completion time: the names are the user's
/// config as it is when they press Tab, not as it was when the script was generated. Every
/// `-p` of every subcommand is a profile, so each shell's rule applies wherever it appears.
fn completion_script(shell: clap_complete::Shell) -> String {
    use clap_complete::Shell;
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "mfa-exec", &mut out);
    let script = String::from_utf8_lossy(&out).into_owned();
    match shell {
        // clap_complete 4.6 names the subcommands' cases `mfa__subcmd__exec__subcmd__device`
        // but sets `cmd=mfa__exec__subcmd__device` (the `-` of the name is mangled two ways),
        // so without this no subcommand's words would be offered.
        Shell::Bash => script.replace("mfa__subcmd__exec", "mfa__exec") + BASH_PROFILES,
        Shell::Zsh => zsh_with_profiles(&script),
        Shell::Fish => fish_with_profiles(&script),
        _ => script,
    }
}

/// A completion function in front of clap's: after `-p`/`--profile` (and not past `--`, where
/// the words are the command's) it offers profile names; everywhere else clap's function
/// answers. The second `complete -F` replaces clap's registration.
const BASH_PROFILES: &str = r#"
_mfa_exec_with_profiles() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} i
    for ((i = 1; i < COMP_CWORD; i++)); do
        [[ ${COMP_WORDS[i]} == -- ]] && { _mfa__exec "$@"; return; }
    done
    # bash splits `--profile=NAME` at the `=`
    if [[ $prev == = && COMP_CWORD -ge 2 ]]; then prev=${COMP_WORDS[COMP_CWORD-2]}; fi
    [[ $cur == = ]] && cur=
    case $prev in
        -p | --profile)
            local IFS=$'
'
            COMPREPLY=($(compgen -W "$(mfa-exec profiles 2>/dev/null)" -- "$cur"))
            return 0
            ;;
    esac
    _mfa__exec "$@"
}
if [[ "${BASH_VERSINFO[0]}" -eq 4 && "${BASH_VERSINFO[1]}" -ge 4 || "${BASH_VERSINFO[0]}" -gt 4 ]]; then
    complete -F _mfa_exec_with_profiles -o nosort -o bashdefault -o default mfa-exec
else
    complete -F _mfa_exec_with_profiles -o bashdefault -o default mfa-exec
fi
"#;

/// The zsh function that offers profile names: defined at the top of the file, so that it
/// exists before the file's last lines first call `_mfa-exec` (autoloaded from fpath) or
/// register it (sourced).
const ZSH_PROFILES: &str = r#"
_mfa_exec_profiles() {
    local -a names
    names=(${(f)"$(mfa-exec profiles 2>/dev/null)"})
    _wanted profiles expl 'profile' compadd -a names
}
"#;

/// clap writes `-p` and `--profile` as `'-p+[help]:NAME:_default'` and
/// `'--profile=[help]:NAME:_default'`; their action becomes `_mfa_exec_profiles`. clap also
/// writes the command after `--` as the first positional (`'::command -- …:_default'`), ahead
/// of the subcommands, so zsh would take `device` for that command and offer commands on PATH
/// for `mfa-exec de`: that line goes, and the subcommand, which clap looks for in the second
/// positional (`$line[2]`), is then the first.
fn zsh_with_profiles(script: &str) -> String {
    let body: String = script
        .split_inclusive('\n')
        .filter(|line| !line.starts_with("'::command -- "))
        .map(|line| {
            let option = line.starts_with("'-p+[") || line.starts_with("'--profile=[");
            if option {
                line.replacen(":NAME:_default'", ":NAME:_mfa_exec_profiles'", 1)
            } else {
                line.replace("$line[2]", "$line[1]")
            }
        })
        .collect();
    match body.split_once('\n') {
        Some((compdef, rest)) => format!("{compdef}\n{ZSH_PROFILES}{rest}"),
        None => body,
    }
}

/// clap writes `complete -c mfa-exec … -s p -l profile -d '…' -r`: the option takes a value
/// and offers files. `-f -a (…)` offers profile names and no files. At the top level clap's
/// condition parses the words typed so far with argparse, which fails on a `-p` still without
/// its value, so a rule of its own covers the word after `-p`/`--profile`.
fn fish_with_profiles(script: &str) -> String {
    let patched: String = script
        .split_inclusive('\n')
        .map(|line| {
            if line.contains(" -s p -l profile ") && line.trim_end().ends_with(" -r") {
                format!(
                    "{} -f -a '(mfa-exec profiles 2>/dev/null)'\n",
                    line.trim_end()
                )
            } else {
                line.to_string()
            }
        })
        .collect();
    patched + FISH_AFTER_PROFILE
}

const FISH_AFTER_PROFILE: &str = r#"
function __fish_mfa_exec_after_profile_option
    set -l words (commandline -opc)
    contains -- -- $words; and return 1
    contains -- $words[-1] -p --profile
end
complete -c mfa-exec -n __fish_mfa_exec_after_profile_option -f -a '(mfa-exec profiles 2>/dev/null)'
"#;

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
