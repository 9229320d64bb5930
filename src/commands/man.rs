//! The manual pages (`mfa-exec man DIR`, hidden; scripts/package runs it): `mfa-exec(1)` and
//! one page per subcommand, generated from the clap definitions by clap_mangen so that a page
//! never lists an option the binary lacks. clap has no place for what a manual also needs, so
//! the profile keys, environment, files and exit statuses (docs/reference.md has them too) are written
//! here once and added to every page.

use std::fs;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::CommandFactory;
use clap_mangen::roff::{bold, italic, roman, Roff};
use clap_mangen::Man;

use crate::cli::Cli;
use crate::exit::{BROKEN_PIPE, CANNOT_INVOKE, FAILURE, NOT_FOUND};

pub(super) fn generate(dir: &Path) -> Result<ExitCode> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut cli = Cli::command().disable_help_subcommand(true);
    // Gives every subcommand its display name (`mfa-exec-device-add`), the page's name.
    cli.build();
    let mut written = Vec::new();
    write_pages(&cli, dir, &mut written)?;
    eprintln!(
        "mfa-exec: wrote {} manual pages to {}",
        written.len(),
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn write_pages(cmd: &clap::Command, dir: &Path, written: &mut Vec<String>) -> Result<()> {
    let man = Man::new(cmd.clone());
    let name = man.get_filename();
    let path = dir.join(&name);
    let mut page = Vec::new();
    render(&man, cmd, &mut page).context("cannot render a manual page")?;
    fs::write(&path, page).with_context(|| format!("cannot write {}", path.display()))?;
    written.push(name);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(sub, dir, written)?;
    }
    Ok(())
}

/// clap_mangen's sections, then this manual's own, in the order man-pages(7) gives them.
fn render(man: &Man, cmd: &clap::Command, w: &mut Vec<u8>) -> std::io::Result<()> {
    man.render_title(w)?;
    man.render_name_section(w)?;
    man.render_synopsis_section(w)?;
    man.render_description_section(w)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(w)?;
    }
    if cmd.get_subcommands().any(|s| !s.is_hide_set()) {
        man.render_subcommands_section(w)?;
    }
    if cmd.get_after_help().is_some() || cmd.get_after_long_help().is_some() {
        man.render_extra_section(w)?;
    }
    let top = cmd.get_name() == "mfa-exec";
    let mut roff = Roff::new();
    if top {
        definitions(&mut roff, "PROFILE KEYS", PROFILE_KEYS);
    }
    definitions(&mut roff, "ENVIRONMENT", ENVIRONMENT);
    roff.control("PP", []);
    roff.text([roman(
        "The command run gets AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, \
AWS_CREDENTIAL_EXPIRATION, AWS_REGION and AWS_DEFAULT_REGION when a region is known, \
MFA_EXEC_PROFILE and, for a role, MFA_EXEC_ROLE_ARN; AWS_PROFILE, AWS_DEFAULT_PROFILE and \
AWS_SECURITY_TOKEN are removed from its environment.",
    )]);
    definitions(&mut roff, "FILES", FILES);
    let exit_statuses = exit_statuses();
    let exit_statuses: Vec<(&str, &str)> = exit_statuses
        .iter()
        .map(|(s, m)| (s.as_str(), *m))
        .collect();
    definitions(&mut roff, "EXIT STATUS", &exit_statuses);
    roff.control("SH", ["SEE ALSO"]);
    let mut see_also = Vec::new();
    if !top {
        see_also.extend([bold("mfa-exec"), roman("(1), ")]);
    }
    see_also.extend([
        bold("aws"),
        roman("(1), "),
        italic("/usr/share/doc/mfa-exec/README.md"),
    ]);
    roff.text(see_also);
    roff.to_writer(w)?;
    if cmd.get_version().is_some() {
        man.render_version_section(w)?;
    }
    Ok(())
}

/// A section of `.TP` paragraphs: a term in bold, its meaning below.
fn definitions(roff: &mut Roff, section: &str, items: &[(&str, &str)]) {
    roff.control("SH", [section]);
    for (term, meaning) in items {
        roff.control("TP", []);
        roff.text([bold(*term)]);
        roff.text([roman(*meaning)]);
    }
}

const PROFILE_KEYS: &[(&str, &str)] = &[
    ("mfa_serial", "The MFA device's ARN or hardware serial, on the profile or its source_profile (--serial-number)."),
    ("mfa_process", "A command whose output is the MFA code, run with sh -c (--token-command)."),
    ("mfa_prompt", "Where a person is asked for the code: auto, terminal, zenity, kdialog, osascript or ykman (--prompt)."),
    ("mfa_ykman_account", "The YubiKey OATH account of --prompt ykman; default the MFA serial."),
    ("role_arn", "A role to assume (--role-arn); source_profile names the profile whose keys sign the call."),
    ("role_session_name", "The role session name; default mfa-exec-<unix seconds> (--role-session-name)."),
    ("external_id", "The external id a role requires (--external-id)."),
    ("duration_seconds", "The credentials' lifetime: 3600, 90m, 12h (--duration)."),
    ("mfa_exec_session_duration", "The lifetime of the MFA session roles are assumed from; default 12h (--session-duration)."),
    ("region", "The region, after --region, AWS_REGION and AWS_DEFAULT_REGION; STS is called in us-east-1 when none is set."),
    ("mfa_exec_policy", "A session policy that narrows the profile's role session: the JSON itself or a file (--policy)."),
    ("mfa_exec_policy_arns", "Managed policies that narrow the profile's role session, comma-separated, at most 10 (--policy-arn)."),
    ("mfa_exec_read_only", "true: narrow the profile's role session to AWS's ReadOnlyAccess (--read-only)."),
    ("session_tags, transitive_session_tags", "Session tags sent with the profile's AssumeRole, as aws-vault reads them: key1=value1,key2=value2 and key1,key2 (--tag)."),
    ("source_identity", "The source identity sent with the profile's AssumeRole (--source-identity)."),
];

const ENVIRONMENT: &[(&str, &str)] = &[
    ("AWS_PROFILE, AWS_DEFAULT_PROFILE", "The profile when -p is not given; else default."),
    ("AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE", "Where the profiles are read; else ~/.aws/config and ~/.aws/credentials."),
    ("AWS_REGION, AWS_DEFAULT_REGION", "The region when --region is not given; they come before the profile's region key."),
    ("AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL, AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "Endpoint overrides, as in every AWS SDK."),
    ("MFA_EXEC_PROMPT", "Where a person is asked for the code when --prompt is not given (auto, terminal, zenity, kdialog, osascript, ykman)."),
    ("YKMAN_OATH_DEVICE_SERIAL", "Which YubiKey ykman asks, when several are plugged in."),
    ("MFA_EXEC_KEYRING_TIMEOUT", "How long a keyring call may take (default 30s) before it fails in one line."),
    ("MFA_EXEC_KEY_WAIT", "How long keys rotate waits for IAM to accept a new access key (default 60s)."),
    ("BROWSER", "The browser mfa-exec console opens the sign-in URL in."),
    ("MFA_EXEC_MIN_REMAINING", "Reuse cached credentials only while more than this is left (--min-remaining); default 5m."),
    ("XDG_CACHE_HOME", "The cache is $XDG_CACHE_HOME/mfa-exec; else ~/.cache/mfa-exec."),
    ("XDG_STATE_HOME", "The run history is $XDG_STATE_HOME/mfa-exec/history.jsonl; else ~/.local/state/mfa-exec/history.jsonl."),
    ("MFA_EXEC_HISTORY", "off (or 0, false, no): record no history, and exec mode replaces itself with the command (no parent left to record it)."),
    ("MFA_EXEC_HISTORY_MAX", "The history's bound in bytes (default 4194304, at least 4096): past it the oldest half is dropped."),
    ("XDG_CONFIG_HOME", "The keyring record is $XDG_CONFIG_HOME/mfa-exec/keyring.json; else ~/.config/mfa-exec/keyring.json."),
    ("MFA_EXEC_BIN, MFA_EXEC_AUTO_REFRESH", "For the shell integration (mfa-exec init SHELL): the mfa-exec it runs, and whether it reloads credentials from the cache before a prompt."),
];

const FILES: &[(&str, &str)] = &[
    ("~/.aws/config, ~/.aws/credentials", "The AWS profiles, read as the AWS SDK's parser reads them. mfa-exec changes them only when asked: device add and device remove write and remove one mfa_serial line, keys add --from-credentials-file removes a profile's two key lines, keys rotate replaces their two values."),
    ("~/.cache/mfa-exec/", "The cache of temporary credentials: a private (0700) directory of private (0600) files, never a long-term key. See mfa-exec cache. It also holds the journal of a key rotation in progress (rotation-HASH.journal), which holds the new secret only between CreateAccessKey and its store."),
    ("~/.local/state/mfa-exec/history.jsonl", "The run history: one JSON line per run (when, profile, role, mode, whether a code was spent, the command's name, exit status, duration), never a secret or an argument; 0600 in a 0700 directory, bounded. See mfa-exec history."),
    ("~/.config/mfa-exec/keyring.json", "The keyring record: which profiles keep their keys in the OS keyring, and their access key ids (never a secret). The keys themselves are in the keyring (Secret Service), under service mfa-exec."),
    ("~/.config/mfa-exec/key-dates.json", "When the access keys keys rotate made were created, by key id (never a secret), for the ages keys list and list show."),
    ("/usr/share/mfa-exec/shell/", "The shell integration scripts, mfa-exec.bash, mfa-exec.zsh, mfa-exec.fish and mfa-exec.ps1, the same ones mfa-exec init SHELL prints."),
];

/// The statuses of the README's table, with the numbers taken from `exit`.
fn exit_statuses() -> Vec<(String, &'static str)> {
    vec![
        ("the command's".to_string(), "The command ran; killed by signal n, exec mode ends by that signal too and --server reports 128 + n."),
        (FAILURE.to_string(), "mfa-exec itself failed (bad input, STS refused, no code), with one line on stderr that says what to do."),
        (CANNOT_INVOKE.to_string(), "The command was found but could not be run."),
        (NOT_FOUND.to_string(), "The command was not found."),
        (BROKEN_PIPE.to_string(), "Standard output was a pipe whose reader had gone."),
        ("130, 129, 143".to_string(), "Interrupted at a prompt (Ctrl-C, the terminal closed, SIGTERM): the terminal is put back, what was started is undone, and mfa-exec ends by that signal."),
    ]
}
