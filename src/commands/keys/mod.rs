//! `mfa-exec keys add|list|remove|rotate`: moving an IAM user's long-term keys out of
//! `~/.aws/credentials` into the OS keyring, and managing them there; `rotate` (with its
//! `journal`) replaces a profile's key by a new one, in the keyring or the credentials file.
//! The keyring itself, and the local record of which profiles use it, are `settings::keyring`'s.

mod journal;
mod rotate;

use std::io::Write;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};

use super::print_stdout;
use crate::cli::KeysCmd;
use crate::profile::{edit, FileKind};
use crate::settings::choice::Choice;
use crate::settings::env::Env;
use crate::settings::key_dates::{age_days, KeyDates};
use crate::settings::keyring::{store, Keyring, Record, Stored};
use crate::settings::request::CodeRequest;
use crate::terminal::say;
use crate::terminal::tty::Tty;

/// The lines `--from-credentials-file` moves.
const KEY_LINES: [&str; 2] = ["aws_access_key_id", "aws_secret_access_key"];

pub(super) fn run(cmd: KeysCmd, env: &Env) -> Result<ExitCode> {
    // The profile by the one rule every command follows, its name checked.
    let request = cmd.request();
    let profile_name =
        || -> Result<String> { Ok(Choice::resolve(request.profile.as_deref(), env)?.name) };
    match cmd {
        KeysCmd::Add {
            from_credentials_file,
            ..
        } => add(&profile_name()?, from_credentials_file, env)?,
        KeysCmd::List => {
            let mut out = Vec::new();
            if list(env, &mut out)? == 0 {
                say("no keys in the OS keyring; add a profile's with `mfa-exec keys add -p PROFILE`");
            }
            print_stdout(&String::from_utf8_lossy(&out))?;
        }
        KeysCmd::Remove { .. } => remove(&profile_name()?, env)?,
        KeysCmd::Rotate {
            keep_old,
            token_code,
            token_command,
            no_prompt,
            ..
        } => rotate::rotate(
            rotate::RotateArgs {
                request,
                keep_old,
                code: CodeRequest {
                    given: token_code,
                    command: token_command,
                    prompt: None,
                    no_prompt,
                },
            },
            env,
        )?,
    }
    Ok(ExitCode::SUCCESS)
}

/// An access key id as IAM issues them; temporary (ASIA…) keys need a session token and
/// expire, so they are no long-term keys to keep.
fn check_access_key_id(id: &str) -> Result<()> {
    if id.starts_with("ASIA") {
        bail!("{id} is a temporary access key (ASIA…); the keyring is for an IAM user's long-term keys (AKIA…)");
    }
    let ok = (16..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    if !ok {
        bail!("'{id}' is not an access key id (16–128 capital letters and digits, like AKIAIOSFODNN7EXAMPLE)");
    }
    Ok(())
}

/// Never quotes the secret back.
fn check_secret(secret: &str) -> Result<()> {
    let ok = (16..=128).contains(&secret.len()) && secret.bytes().all(|b| b.is_ascii_graphic());
    if !ok {
        bail!("that is not a secret access key (40 characters of letters, digits, / and +, as IAM showed it when the key was made)");
    }
    Ok(())
}

/// `keys add`: asks on the terminal, or moves the keys out of the credentials file.
fn add(profile: &str, from_credentials_file: bool, env: &Env) -> Result<()> {
    let files = env.profile_files()?;
    let credentials_path = files.credentials_path.clone();
    let keyring = Keyring::new(env)?;
    if !from_credentials_file {
        // Reach the keyring before anyone types a secret for it.
        let replaced = keyring.get(profile)?.map(|old| old.access_key_id);
        let stored = ask_on_terminal()?;
        store(&keyring, env, profile, &stored)?;
        let was = replaced
            .map(|old| format!(" (replacing {old})"))
            .unwrap_or_default();
        say(&format!(
            "stored access key {} for profile {profile} in the OS keyring{was}",
            stored.access_key_id
        ));
        if files
            .profile(profile)
            .get_in_credentials_file("aws_access_key_id")
            .is_some()
        {
            say(&format!(
                "note: [{profile}] in {} still holds keys, which are used first; remove them, or run `mfa-exec keys add -p {profile} --from-credentials-file` to move them",
                credentials_path.display()
            ));
        }
        return Ok(());
    }

    let p = files.profile(profile);
    let (Some(id), Some(secret)) = (
        p.get_in_credentials_file("aws_access_key_id"),
        p.get_in_credentials_file("aws_secret_access_key"),
    ) else {
        if p.get("aws_access_key_id").is_some() {
            bail!(
                "the keys of profile '{profile}' are in {}, not in {}; move them by hand with `mfa-exec keys add -p {profile}` (it asks for them) and delete them from that file",
                files.config_path.display(),
                credentials_path.display()
            );
        }
        bail!(
            "no aws_access_key_id and aws_secret_access_key in [{profile}] of {}; add keys without that file with `mfa-exec keys add -p {profile}`",
            credentials_path.display()
        );
    };
    if p.get_in_credentials_file("aws_session_token").is_some() {
        bail!(
            "[{profile}] in {} holds temporary keys (aws_session_token); the keyring is for an IAM user's long-term keys",
            credentials_path.display()
        );
    }
    check_access_key_id(id)?;
    check_secret(secret).map_err(|_| {
        anyhow!(
            "aws_secret_access_key in [{profile}] of {} does not look like a secret access key; fix it first",
            credentials_path.display()
        )
    })?;
    let stored = Stored {
        access_key_id: id.to_string(),
        secret_access_key: secret.to_string(),
    };
    // The file changes only once the keyring holds the keys, and the keys go there only when
    // the file can then be changed.
    edit::check_writable(&credentials_path)
        .map_err(|e| anyhow!("{e:#}; nothing was stored in the OS keyring"))?;
    store(&keyring, env, profile, &stored)?;
    // An emptied [profile] section goes only when the config file still defines the profile,
    // so the name stays known to every AWS tool.
    let config_defines_it = p.in_config_file();
    let removed = edit::remove_keys(
        &credentials_path,
        FileKind::Credentials,
        profile,
        &KEY_LINES,
        config_defines_it,
    )
    .with_context(|| {
        format!(
            "the keys are in the OS keyring now, but removing them from {} failed; delete the two lines of [{profile}] by hand",
            credentials_path.display()
        )
    })?;
    say(&format!(
        "moved access key {id} of profile {profile} from {} ({removed} lines removed) to the OS keyring",
        credentials_path.display()
    ));
    Ok(())
}

/// Asks for the two keys on the terminal, the secret with echo off (aws-vault's words).
fn ask_on_terminal() -> Result<Stored> {
    let tty = Tty::open().ok_or_else(|| {
        anyhow!("no terminal to ask for the keys on: run `mfa-exec keys add` in a terminal, or move them from the credentials file with --from-credentials-file")
    })?;
    let id = tty
        .read_line("Enter Access Key ID: ")
        .context("cannot read the access key id from the terminal")?;
    check_access_key_id(&id)?;
    let secret = tty
        .read_hidden("Enter Secret Access Key: ")
        .context("cannot read the secret access key from the terminal")?;
    check_secret(&secret)?;
    Ok(Stored {
        access_key_id: id,
        secret_access_key: secret,
    })
}

/// `keys list`: the recorded profiles as the keyring has them, never a secret.
fn list(env: &Env, out: &mut impl Write) -> Result<usize> {
    let record = Record::load(env)?;
    if record.profiles.is_empty() {
        return Ok(0);
    }
    let keyring = Keyring::new(env)?;
    let dates = KeyDates::load(env);
    let now = crate::clock::now();
    let mut rows = Vec::new();
    for profile in record.profiles.keys() {
        match keyring.get(profile)? {
            Some(stored) => {
                // Known only for keys `keys rotate` made (see settings::key_dates).
                let age = match dates.created(&stored.access_key_id) {
                    Some(created) => format!("{} days", age_days(created, now)),
                    None => "unknown".to_string(),
                };
                rows.push((profile.clone(), stored.access_key_id, age));
            }
            None => say(&format!(
                "warning: profile {profile} is recorded in {} but its keyring item is gone; `mfa-exec keys add -p {profile}` stores the keys again, `mfa-exec keys remove -p {profile}` forgets it",
                record.path.display()
            )),
        }
    }
    if !rows.is_empty() {
        writeln!(out, "{:<20} {:<24} AGE", "PROFILE", "ACCESS KEY ID")?;
        for (profile, id, age) in &rows {
            writeln!(out, "{profile:<20} {id:<24} {age}")?;
        }
    }
    Ok(rows.len())
}

/// `keys remove`: deletes the profile's item and its record.
fn remove(profile: &str, env: &Env) -> Result<()> {
    let record = Record::load(env)?;
    let keyring = Keyring::new(env)?;
    let deleted = keyring.delete(profile)?;
    let mut recorded = false;
    Record::update(&record.path, |profiles| {
        recorded = profiles.remove(profile).is_some();
        recorded
    })?;
    match (deleted, recorded) {
        (false, false) => {
            bail!("profile '{profile}' has no keys in the OS keyring (see `mfa-exec keys list`)")
        }
        (true, _) => say(&format!(
            "removed the keys of profile {profile} from the OS keyring"
        )),
        (false, true) => say(&format!(
            "profile {profile}'s keyring item was already gone; forgot it"
        )),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_key_ids_are_checked_and_temporary_ones_refused() {
        assert!(check_access_key_id("AKIAIOSFODNN7EXAMPLE").is_ok());
        let temp = check_access_key_id("ASIAIOSFODNN7EXAMPLE").unwrap_err();
        assert!(temp.to_string().contains("temporary"));
        for bad in ["", "akiaiosfodnn7example", "AKIA 1234567890123", "AKIA12"] {
            assert!(check_access_key_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_bad_secret_is_refused_without_quoting_it() {
        assert!(check_secret("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY").is_ok());
        let err = check_secret("short secret").unwrap_err();
        assert!(!err.to_string().contains("short secret"));
    }
}
