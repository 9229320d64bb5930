//! Long-term keys in the OS keyring instead of `~/.aws/credentials` (`mfa-exec keys`), and
//! reading them back to sign an MFA call.
//!
//! An IAM user's access key is valid until revoked; in the credentials file it is readable by
//! every process of the user and copied into every backup. Here it is one keyring item per
//! profile (service `mfa-exec`, account = the profile name, secret = a small JSON document
//! with both keys), through the `keyring` crate: the Secret Service on Linux (gnome-keyring,
//! KWallet), the Keychain on macOS. There is never a plaintext fallback: no keyring, no keys.
//!
//! The cache-hit path must not touch the keyring (no D-Bus connection, no unlock prompt), yet
//! cache entries are keyed by the source's access key id. The id is not a secret, so a small
//! local record, `$XDG_CONFIG_HOME/mfa-exec/keyring.json`, says which profiles keep keys in the
//! keyring and under which access key id. The settings read it (a file read); the keyring
//! itself is opened only on a miss, just before the STS call, by [`KeyringKeys::load`]. Keys
//! moved out of the credentials file keep their id, so their cache entries stay valid.
//!
//! Every keyring call runs on its own thread and is waited for at most
//! `MFA_EXEC_KEYRING_TIMEOUT` (default 30 s: long enough to type a password into a desktop's
//! unlock dialog): a session bus that never answers costs bounded time and one line, not a hang.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::files::{self, Links};
use crate::profile_edit::{self, FileKind};
use crate::settings::{parse_duration, Env, StaticKeys};

/// The keyring items' service name; the account is the profile name.
const SERVICE: &str = "mfa-exec";
const RECORD_VERSION: u32 = 1;
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const KEY_LINES: [&str; 2] = ["aws_access_key_id", "aws_secret_access_key"];

/// What one keyring item holds (aws-vault's field names).
#[derive(Serialize, Deserialize)]
struct Stored {
    #[serde(rename = "AccessKeyId")]
    access_key_id: String,
    #[serde(rename = "SecretAccessKey")]
    secret_access_key: String,
}

/// A profile whose keys are in the keyring: known without opening it.
#[derive(Clone, Debug)]
pub(crate) struct KeyringKeys {
    pub(crate) profile: String,
    /// From the local record: identifies the source in cache keys.
    pub(crate) access_key_id: String,
    timeout: Duration,
    record: PathBuf,
}

impl KeyringKeys {
    /// The keyring source of `profile`, when the record lists one. Reads a file, never the
    /// keyring.
    pub(crate) fn recorded(env: &Env, profile: &str) -> Result<Option<KeyringKeys>> {
        let record = Record::load(env)?;
        let Some(entry) = record.profiles.get(profile) else {
            return Ok(None);
        };
        Ok(Some(KeyringKeys {
            profile: profile.to_string(),
            access_key_id: entry.access_key_id.clone(),
            timeout: timeout(env)?,
            record: record.path,
        }))
    }

    /// The keys, read from the keyring (on a cache miss, before the STS call).
    pub(crate) fn load(&self) -> Result<StaticKeys> {
        let keyring = Keyring {
            timeout: self.timeout,
        };
        let stored = keyring.get(&self.profile)?.ok_or_else(|| {
            anyhow!(
                "profile '{0}' keeps its keys in the OS keyring, but the keyring has no item for it (deleted, or another keyring): add them again with `mfa-exec keys add -p {0}`",
                self.profile
            )
        })?;
        if stored.access_key_id != self.access_key_id {
            // Changed behind mfa-exec's back: sign with what the keyring holds, and record it
            // so that the next run's cache key names these keys.
            if let Ok(mut record) = Record::at(self.record.clone()) {
                record.set(&self.profile, &stored.access_key_id);
                let _ = record.save();
            }
        }
        Ok(StaticKeys {
            access_key_id: stored.access_key_id,
            secret_access_key: stored.secret_access_key,
            session_token: None,
        })
    }
}

fn timeout(env: &Env) -> Result<Duration> {
    match env.get("MFA_EXEC_KEYRING_TIMEOUT") {
        None => Ok(DEFAULT_TIMEOUT),
        Some(text) => match parse_duration(text, "MFA_EXEC_KEYRING_TIMEOUT")? {
            0 => bail!("MFA_EXEC_KEYRING_TIMEOUT must be at least 1s"),
            secs => Ok(Duration::from_secs(secs)),
        },
    }
}

// ---------------------------------------------------------------------------------------
// The local record (no secrets).

#[derive(Serialize, Deserialize, Clone)]
struct RecordEntry {
    access_key_id: String,
}

#[derive(Serialize, Deserialize, Default)]
struct RecordFile {
    version: u32,
    profiles: BTreeMap<String, RecordEntry>,
}

/// Which profiles keep keys in the keyring, and their access key ids.
struct Record {
    path: PathBuf,
    profiles: BTreeMap<String, RecordEntry>,
}

fn record_path(env: &Env) -> Result<PathBuf> {
    // XDG says a relative XDG_CONFIG_HOME is to be ignored.
    let base = env
        .get("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| env.home().map(|h| h.join(".config")))
        .ok_or_else(|| anyhow!("cannot find the home directory: set HOME"))?;
    Ok(base.join("mfa-exec").join("keyring.json"))
}

/// The record holds a profile name and a key id per profile: 1 MiB is thousands of them.
const RECORD_MAX_SIZE: u64 = 1 << 20;

impl Record {
    fn load(env: &Env) -> Result<Record> {
        Record::at(record_path(env)?)
    }

    fn at(path: PathBuf) -> Result<Record> {
        // Read on the run path, a cache hit included: through the reader that refuses a FIFO
        // or a device at the path instead of hanging on it.
        let bytes = match files::open_regular(&path, Links::Follow, RECORD_MAX_SIZE)? {
            None => None,
            Some((file, _)) => Some(files::read_bounded(file, &path, RECORD_MAX_SIZE)?),
        };
        let profiles = match bytes {
            None => BTreeMap::new(),
            Some(bytes) => match serde_json::from_slice::<RecordFile>(&bytes) {
                Ok(file) if file.version == RECORD_VERSION => file.profiles,
                _ => bail!(
                    "{} is damaged (it lists which profiles keep keys in the OS keyring); remove it and run `mfa-exec keys add -p PROFILE` again for each",
                    path.display()
                ),
            },
        };
        Ok(Record { path, profiles })
    }

    fn set(&mut self, profile: &str, access_key_id: &str) {
        self.profiles.insert(
            profile.to_string(),
            RecordEntry {
                access_key_id: access_key_id.to_string(),
            },
        );
    }

    /// Written 0600 in a 0700 directory, through a temporary file and a rename.
    fn save(&self) -> Result<()> {
        let dir = self.path.parent().expect("the record is in a directory");
        if let Some(parent) = dir.parent() {
            fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        match fs::DirBuilder::new().mode(0o700).create(dir) {
            Err(e) if e.kind() != ErrorKind::AlreadyExists => {
                return Err(e).with_context(|| format!("cannot create {}", dir.display()))
            }
            _ => {}
        }
        let file = RecordFile {
            version: RECORD_VERSION,
            profiles: self.profiles.clone(),
        };
        let mut text = serde_json::to_vec_pretty(&file)?;
        text.push(b'\n');
        crate::files::write_atomic(&self.path, &text, Some(0o600))
    }
}

// ---------------------------------------------------------------------------------------
// The keyring, with bounded waits.

struct Keyring {
    timeout: Duration,
}

/// Where to point a user whose keyring cannot be used.
#[cfg(target_os = "macos")]
const UNREACHABLE_HINT: &str =
    "run this in your logged-in macOS session (the login Keychain must be available and unlocked)";
#[cfg(not(target_os = "macos"))]
const UNREACHABLE_HINT: &str = "start a Secret Service (gnome-keyring or KWallet) in this session and make sure DBUS_SESSION_BUS_ADDRESS reaches it";
#[cfg(target_os = "macos")]
const LOCKED_HINT: &str = "unlock the login Keychain (security unlock-keychain) and try again";
#[cfg(not(target_os = "macos"))]
const LOCKED_HINT: &str = "unlock it (log in to the desktop session, or run `gnome-keyring-daemon --unlock` and type the keyring password) and try again";

impl Keyring {
    fn new(env: &Env) -> Result<Keyring> {
        Ok(Keyring {
            timeout: timeout(env)?,
        })
    }

    /// Runs `op` on the profile's entry on its own thread, waiting at most the timeout: a
    /// session bus that never answers must not hang the run (a thread left waiting ends with
    /// the process).
    fn call<T: Send + 'static>(
        &self,
        profile: &str,
        op: impl FnOnce(&keyring::Entry) -> keyring::Result<T> + Send + 'static,
    ) -> Result<keyring::Result<T>> {
        let (tx, rx) = mpsc::channel();
        let account = profile.to_string();
        std::thread::Builder::new()
            .name("keyring".into())
            .spawn(move || {
                let result = keyring::Entry::new(SERVICE, &account).and_then(|e| op(&e));
                let _ = tx.send(result);
            })
            .context("cannot start a thread for the OS keyring")?;
        match rx.recv_timeout(self.timeout) {
            Ok(result) => Ok(result),
            Err(_) => bail!(
                "the OS keyring did not answer within {} (not responding, or an unlock prompt nobody answered): {UNREACHABLE_HINT}, and unlocked (MFA_EXEC_KEYRING_TIMEOUT sets the wait)",
                crate::settings::human_duration(self.timeout.as_secs())
            ),
        }
    }

    /// The item of `profile`, if there is one.
    fn get(&self, profile: &str) -> Result<Option<Stored>> {
        match self.call(profile, |e| e.get_password())? {
            Ok(text) => serde_json::from_str::<Stored>(&text).map(Some).map_err(|_| {
                anyhow!("the OS keyring's item for profile '{profile}' (service {SERVICE}) is not one mfa-exec wrote; remove it with `mfa-exec keys remove -p {profile}` and add the keys again")
            }),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(explain(e, profile)),
        }
    }

    fn set(&self, profile: &str, stored: &Stored) -> Result<()> {
        let text = serde_json::to_string(stored)?;
        self.call(profile, move |e| e.set_password(&text))?
            .map_err(|e| explain(e, profile))
    }

    /// Deletes the profile's item (every one, when there are several); false when none.
    fn delete(&self, profile: &str) -> Result<bool> {
        let result = self.call(profile, |e| match e.delete_credential() {
            Err(keyring::Error::Ambiguous(items)) => {
                for item in items {
                    item.delete_credential()?;
                }
                Ok(())
            }
            other => other,
        })?;
        match result {
            Ok(()) => Ok(true),
            Err(keyring::Error::NoEntry) => Ok(false),
            Err(e) => Err(explain(e, profile)),
        }
    }
}

/// A keyring failure as one line that says what to do. The platform's text never holds a
/// secret (it describes the call, not its data).
fn explain(err: keyring::Error, profile: &str) -> anyhow::Error {
    let one_line = |e: &dyn std::fmt::Display| e.to_string().replace(['\n', '\r'], " ");
    match err {
        keyring::Error::NoStorageAccess(e) => anyhow!(
            "the OS keyring is locked or refused access ({}): {LOCKED_HINT}",
            one_line(&e)
        ),
        keyring::Error::PlatformFailure(e) => anyhow!(
            "cannot use the OS keyring ({}): {UNREACHABLE_HINT}",
            one_line(&e)
        ),
        keyring::Error::Ambiguous(_) => anyhow!(
            "the OS keyring holds several items for profile '{profile}' (service {SERVICE}): remove them with `mfa-exec keys remove -p {profile}` and add the keys again"
        ),
        other => anyhow!(
            "the OS keyring refused the item for profile '{profile}': {}",
            one_line(&other)
        ),
    }
}

// ---------------------------------------------------------------------------------------
// The `keys` subcommands.

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

/// Stores the keys, reads them back, then records the profile.
fn store(keyring: &Keyring, env: &Env, profile: &str, stored: &Stored) -> Result<()> {
    keyring.set(profile, stored)?;
    match keyring.get(profile)? {
        Some(back)
            if back.access_key_id == stored.access_key_id
                && back.secret_access_key == stored.secret_access_key => {}
        _ => bail!("the OS keyring did not keep the keys of profile '{profile}' (reading them back gave something else); nothing was changed on disk"),
    }
    let mut record = Record::load(env)?;
    record.set(profile, &stored.access_key_id);
    record.save()
}

/// A name that can head a section of the AWS files (`keys add` may name a new profile).
fn check_profile_name(profile: &str) -> Result<()> {
    if profile.is_empty()
        || profile.trim() != profile
        || profile.contains(['[', ']'])
        || profile.chars().any(char::is_control)
    {
        bail!("{profile:?} is not a profile name: use the name of a [profile NAME] section");
    }
    Ok(())
}

/// `keys add`: asks on the terminal, or moves the keys out of the credentials file.
pub(crate) fn add(profile: &str, from_credentials_file: bool, env: &Env) -> Result<()> {
    check_profile_name(profile)?;
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
        crate::terminal::say(&format!(
            "stored access key {} for profile {profile} in the OS keyring{was}",
            stored.access_key_id
        ));
        if files
            .profile(profile)
            .get_in_credentials_file("aws_access_key_id")
            .is_some()
        {
            crate::terminal::say(&format!(
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
    // The file changes only once the keyring holds the keys.
    store(&keyring, env, profile, &stored)?;
    // An emptied [profile] section goes only when the config file still defines the profile,
    // so the name stays known to every AWS tool.
    let config_defines_it = p.in_config_file();
    let removed = profile_edit::remove_keys(
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
    crate::terminal::say(&format!(
        "moved access key {id} of profile {profile} from {} ({removed} lines removed) to the OS keyring",
        credentials_path.display()
    ));
    Ok(())
}

/// Asks for the two keys on /dev/tty, the secret with echo off (aws-vault's words).
fn ask_on_terminal() -> Result<Stored> {
    let mut tty = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(|_| {
            anyhow!("no terminal to ask for the keys on: run `mfa-exec keys add` in a terminal, or move them from the credentials file with --from-credentials-file")
        })?;
    let _ = write!(tty, "Enter Access Key ID: ");
    let _ = tty.flush();
    let mut id = String::new();
    BufReader::new(tty.try_clone().context("cannot read from the terminal")?)
        .read_line(&mut id)
        .context("cannot read the access key id from the terminal")?;
    let id = id.trim().to_string();
    check_access_key_id(&id)?;

    let secret = {
        // Echo off before the prompt is shown, back on when the guard drops or on a signal.
        let _quiet = crate::token::EchoOff::new(&tty);
        let _ = write!(tty, "Enter Secret Access Key: ");
        let _ = tty.flush();
        let config = rpassword::ConfigBuilder::new()
            .input_reader(tty.try_clone().context("cannot read from the terminal")?)
            .output_discard()
            .build();
        rpassword::read_password_with_config(config)
            .context("cannot read the secret access key from the terminal")?
    };
    let secret = secret.trim().to_string();
    check_secret(&secret)?;
    Ok(Stored {
        access_key_id: id,
        secret_access_key: secret,
    })
}

/// `keys list`: the recorded profiles as the keyring has them, never a secret.
pub(crate) fn list(env: &Env, out: &mut impl Write) -> Result<usize> {
    let record = Record::load(env)?;
    if record.profiles.is_empty() {
        return Ok(0);
    }
    let keyring = Keyring::new(env)?;
    let mut rows = Vec::new();
    for profile in record.profiles.keys() {
        match keyring.get(profile)? {
            Some(stored) => rows.push((profile.clone(), stored.access_key_id)),
            None => crate::terminal::say(&format!(
                "warning: profile {profile} is recorded in {} but its keyring item is gone; `mfa-exec keys add -p {profile}` stores the keys again, `mfa-exec keys remove -p {profile}` forgets it",
                record.path.display()
            )),
        }
    }
    if !rows.is_empty() {
        writeln!(out, "{:<20} ACCESS KEY ID", "PROFILE")?;
        for (profile, id) in &rows {
            writeln!(out, "{profile:<20} {id}")?;
        }
    }
    Ok(rows.len())
}

/// `keys remove`: deletes the profile's item and its record.
pub(crate) fn remove(profile: &str, env: &Env) -> Result<()> {
    check_profile_name(profile)?;
    let mut record = Record::load(env)?;
    let keyring = Keyring::new(env)?;
    let deleted = keyring.delete(profile)?;
    let recorded = record.profiles.remove(profile).is_some();
    if recorded {
        record.save()?;
    }
    match (deleted, recorded) {
        (false, false) => {
            bail!("profile '{profile}' has no keys in the OS keyring (see `mfa-exec keys list`)")
        }
        (true, _) => crate::terminal::say(&format!(
            "removed the keys of profile {profile} from the OS keyring"
        )),
        (false, true) => crate::terminal::say(&format!(
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

    #[test]
    fn profile_names_must_fit_a_section_header() {
        assert!(check_profile_name("alice").is_ok());
        assert!(check_profile_name("team/dev.admin").is_ok());
        for bad in ["", " alice", "a]b", "a\nb"] {
            assert!(check_profile_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_stored_document_uses_aws_vaults_field_names() {
        let text = serde_json::to_string(&Stored {
            access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_access_key: "s".into(),
        })
        .unwrap();
        assert_eq!(
            text,
            r#"{"AccessKeyId":"AKIAIOSFODNN7EXAMPLE","SecretAccessKey":"s"}"#
        );
    }
}
