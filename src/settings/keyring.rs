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
use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::duration::{human_duration, parse_duration};
use super::env::Env;
use crate::files::{self, Links};
use crate::secrets::StaticKeys;

/// The keyring items' service name; the account is the profile name.
const SERVICE: &str = "mfa-exec";
const RECORD_VERSION: u32 = 1;
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// What one keyring item holds (aws-vault's field names).
#[derive(Serialize, Deserialize)]
pub(crate) struct Stored {
    #[serde(rename = "AccessKeyId")]
    pub(crate) access_key_id: String,
    #[serde(rename = "SecretAccessKey")]
    pub(crate) secret_access_key: String,
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
            let _ = Record::update(&self.record, |profiles| {
                set(profiles, &self.profile, &stored.access_key_id);
                true
            });
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
pub(crate) struct RecordEntry {
    access_key_id: String,
}

#[derive(Serialize, Deserialize, Default)]
struct RecordFile {
    version: u32,
    profiles: BTreeMap<String, RecordEntry>,
}

/// Which profiles keep keys in the keyring, and their access key ids.
pub(crate) struct Record {
    pub(crate) path: PathBuf,
    pub(crate) profiles: BTreeMap<String, RecordEntry>,
}

fn record_path(env: &Env) -> Result<PathBuf> {
    let dir = env
        .config_dir()
        .ok_or_else(|| anyhow!("cannot find the home directory: set HOME"))?;
    Ok(dir.join("keyring.json"))
}

/// The record holds a profile name and a key id per profile: 1 MiB is thousands of them.
const RECORD_MAX_SIZE: u64 = 1 << 20;

impl Record {
    pub(crate) fn load(env: &Env) -> Result<Record> {
        Record::at(record_path(env)?)
    }

    fn at(path: PathBuf) -> Result<Record> {
        // Read on the run path, a cache hit included: through the reader that refuses a FIFO
        // or a device at the path instead of hanging on it.
        let bytes = match files::open_regular(&path, Links::Follow, RECORD_MAX_SIZE)? {
            None => None,
            Some((file, _)) => Some(files::read_bounded(file, &path, RECORD_MAX_SIZE)?),
        };
        let profiles = parse(&path, bytes.as_deref())?;
        Ok(Record { path, profiles })
    }

    /// Changes the record at `path` under its lock, from what it holds then (another run may
    /// have changed it since it was read): `change` returns whether it changed anything.
    /// Written 0600 in a 0700 directory; a link to it (dotfiles) stays a link.
    pub(crate) fn update(
        path: &Path,
        mut change: impl FnMut(&mut BTreeMap<String, RecordEntry>) -> bool,
    ) -> Result<()> {
        let dir = path.parent().expect("the record is in a directory");
        if let Some(parent) = dir.parent() {
            fs::create_dir_all(parent).map_err(|e| {
                anyhow!(
                    "cannot create {}: {}",
                    parent.display(),
                    files::io_reason(&e)
                )
            })?;
        }
        match fs::DirBuilder::new().mode(0o700).create(dir) {
            Err(e) if e.kind() != ErrorKind::AlreadyExists => {
                bail!("cannot create {}: {}", dir.display(), files::io_reason(&e))
            }
            _ => {}
        }
        files::locked::edit(path, RECORD_MAX_SIZE, Some(0o600), |bytes| {
            let mut profiles = parse(path, bytes.as_deref())?;
            if !change(&mut profiles) {
                return Ok(None);
            }
            let file = RecordFile {
                version: RECORD_VERSION,
                profiles,
            };
            let mut text = serde_json::to_vec_pretty(&file)?;
            text.push(b'\n');
            Ok(Some(text))
        })
    }
}

fn parse(path: &Path, bytes: Option<&[u8]>) -> Result<BTreeMap<String, RecordEntry>> {
    match bytes {
        None => Ok(BTreeMap::new()),
        Some(bytes) => match serde_json::from_slice::<RecordFile>(bytes) {
            Ok(file) if file.version == RECORD_VERSION => Ok(file.profiles),
            _ => bail!(
                "{} is damaged (it lists which profiles keep keys in the OS keyring); remove it and run `mfa-exec keys add -p PROFILE` again for each",
                path.display()
            ),
        },
    }
}

fn set(profiles: &mut BTreeMap<String, RecordEntry>, profile: &str, access_key_id: &str) {
    profiles.insert(
        profile.to_string(),
        RecordEntry {
            access_key_id: access_key_id.to_string(),
        },
    );
}

// ---------------------------------------------------------------------------------------
// The keyring, with bounded waits.

pub(crate) struct Keyring {
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
    pub(crate) fn new(env: &Env) -> Result<Keyring> {
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
                human_duration(self.timeout.as_secs())
            ),
        }
    }

    /// The item of `profile`, if there is one.
    pub(crate) fn get(&self, profile: &str) -> Result<Option<Stored>> {
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
    pub(crate) fn delete(&self, profile: &str) -> Result<bool> {
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

/// Stores the keys, reads them back, then records the profile.
pub(crate) fn store(keyring: &Keyring, env: &Env, profile: &str, stored: &Stored) -> Result<()> {
    keyring.set(profile, stored)?;
    match keyring.get(profile)? {
        Some(back)
            if back.access_key_id == stored.access_key_id
                && back.secret_access_key == stored.secret_access_key => {}
        _ => bail!("the OS keyring did not keep the keys of profile '{profile}' (reading them back gave something else); nothing was changed on disk"),
    }
    Record::update(&record_path(env)?, |profiles| {
        set(profiles, profile, &stored.access_key_id);
        true
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
