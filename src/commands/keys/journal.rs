//! The journal of a key rotation: what `keys rotate` is about to do, written before each step,
//! so that a rotation killed at any point (SIGKILL, power loss) is finished or undone by the
//! next `keys rotate` instead of leaving a key nobody holds, or a secret nowhere.
//!
//! IAM returns a new key's secret once, in CreateAccessKey's answer. Between that answer and
//! the moment the keyring or the credentials file holds the key, the journal is the only
//! durable copy: it is a private file of the state directory (`$XDG_STATE_HOME/mfa-exec`,
//! else `~/.local/state/mfa-exec`: 0600 in the 0700 directory, fsynced before it is renamed
//! into place), not of the cache, which users and cleaners wipe; the secret leaves it as soon
//! as the store holds the key. A journal the version before left in the cache directory is
//! moved there when found. Named by a hash of the profile, so its name says nothing of the
//! account.
//!
//! The steps, each recorded before it is taken:
//! - `intent`: the user's keys before (ListAccessKeys). A rotation killed here may have made a
//!   key whose secret never reached the disk: a key not in that list, created within minutes
//!   of the journal's start, and not the stored one, is deleted (never a key made later).
//! - `created`: the new key and its secret. The next run stores it (unless the store already
//!   holds it) and goes on.
//! - `stored`: the store holds the new key; the secret is no longer here. Next: wait until IAM
//!   accepts it.
//! - `verified`: a call signed by the new key succeeded. Next: delete (or deactivate) the old.
//!
//! The journal is removed once the old key is gone.
//!
//! One rotation of a profile at a time: an exclusive `flock` on `rotation-HASH.lock` beside
//! the journal is held from before the journal is read until the rotation ends. Without it a
//! second run could read the first one's `intent` while the first is inside CreateAccessKey,
//! "undo" it by deleting the new key, and the first would then store a deleted key over the
//! only working secret. The kernel drops the lock when its holder dies (SIGKILL included), so
//! a killed rotation never blocks the next one; the lock file keeps the holder's pid for the
//! message of a run refused.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg, OFlag};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use anyhow::{anyhow, bail, Result};

use crate::credentials::cache::Cache;

const VERSION: u32 = 1;

/// Where a rotation's keys are kept.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub(super) enum Store {
    Keyring,
    CredentialsFile,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(super) enum Step {
    Intent,
    Created,
    Stored,
    Verified,
}

impl Step {
    /// What the next run does from here, for messages.
    pub(super) fn next(self) -> &'static str {
        match self {
            Step::Intent => "deletes any key this rotation may have created",
            Step::Created => "stores the new key and finishes the rotation",
            Step::Stored | Step::Verified => "deletes the old key once the new one works",
        }
    }
}

/// One rotation in progress.
#[derive(Serialize, Deserialize, Clone)]
pub(super) struct Journal {
    version: u32,
    /// The profile whose keys are rotated (the one that holds them).
    pub(super) profile: String,
    pub(super) store: Store,
    /// The IAM user, by name and ARN.
    pub(super) user: String,
    pub(super) user_arn: String,
    pub(super) old_key: String,
    /// The user's key ids before CreateAccessKey.
    pub(super) keys_before: Vec<String>,
    pub(super) keep_old: bool,
    /// Unix seconds.
    pub(super) started: u64,
    pub(super) step: Step,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) new_key: Option<String>,
    /// Only at `created`: the one durable copy of the new secret until the store holds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) new_secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) new_created: Option<u64>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("profile", &self.profile)
            .field("step", &self.step)
            .field("new_key", &self.new_key)
            .finish_non_exhaustive()
    }
}

/// The journal's file name for `profile`.
fn file_name(profile: &str) -> String {
    format!("rotation-{}.journal", hash(profile))
}

fn hash(profile: &str) -> String {
    let digest = Sha256::digest(profile.as_bytes());
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// How long a rotation waits for another one of the same profile before it is refused: long
/// enough for two runs started together, short of the minute a rotation may wait for IAM.
const LOCK_WAIT: Duration = Duration::from_secs(3);

/// Takes the rotation lock of `profile` in `dir` (see the module header), waiting at most
/// [`LOCK_WAIT`]. Held until the returned value is dropped.
pub(super) fn lock(dir: &Path, profile: &str) -> Result<Flock<File>> {
    let path = dir.join(format!("rotation-{}.lock", hash(profile)));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC).bits())
        .open(&path)
        .map_err(|e| {
            anyhow!(
                "cannot lock the rotation of profile '{profile}' ({}: {}); fix that file and try again",
                path.display(),
                crate::files::io_reason(&e)
            )
        })?;
    let deadline = Instant::now() + LOCK_WAIT;
    let mut file = file;
    let mut lock = loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => break lock,
            Err((f, nix::errno::Errno::EWOULDBLOCK)) if Instant::now() < deadline => {
                file = f;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err((mut f, nix::errno::Errno::EWOULDBLOCK)) => {
                let mut pid = String::new();
                let _ = f.read_to_string(&mut pid);
                let pid = pid.trim();
                bail!(
                    "another mfa-exec keys rotate for profile {profile} is running{}: let it finish, then run `mfa-exec keys rotate -p {profile}` again if needed",
                    if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
                        String::new()
                    } else {
                        format!(" (pid {pid})")
                    }
                )
            }
            Err((_, e)) => bail!(
                "cannot lock the rotation of profile '{profile}' ({}: {}); a rotation needs a file system with locks",
                path.display(),
                e.desc()
            ),
        }
    };
    // Our pid, for the message of a run refused; best effort.
    let _ = lock.set_len(0);
    let _ = lock.rewind();
    let _ = write!(lock, "{}", std::process::id());
    Ok(lock)
}

impl Journal {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn begin(
        profile: &str,
        store: Store,
        user: &str,
        user_arn: &str,
        old_key: &str,
        keys_before: Vec<String>,
        keep_old: bool,
    ) -> Journal {
        Journal {
            version: VERSION,
            profile: profile.to_string(),
            store,
            user: user.to_string(),
            user_arn: user_arn.to_string(),
            old_key: old_key.to_string(),
            keys_before,
            keep_old,
            started: crate::clock::now(),
            step: Step::Intent,
            new_key: None,
            new_secret: None,
            new_created: None,
        }
    }

    /// The journal of `profile`'s rotation, if one was interrupted: in the state directory, or
    /// in the cache directory (`old`), where the version before kept it; one found there is
    /// moved to the state directory first.
    pub(super) fn read(
        state: &Cache,
        old: Option<&Cache>,
        profile: &str,
    ) -> Result<Option<Journal>> {
        if let Some(journal) = Self::read_in(state, profile)? {
            return Ok(Some(journal));
        }
        let Some(old) = old else {
            return Ok(None);
        };
        let Some(journal) = Self::read_in(old, profile)? else {
            return Ok(None);
        };
        journal.write(state)?;
        journal.remove(old)?;
        Ok(Some(journal))
    }

    fn read_in(cache: &Cache, profile: &str) -> Result<Option<Journal>> {
        let name = file_name(profile);
        let Some(bytes) = cache
            .read_file(&name)
            .map_err(|problem| anyhow::anyhow!("cannot read the rotation journal: {problem}"))?
        else {
            return Ok(None);
        };
        match serde_json::from_slice::<Journal>(&bytes) {
            Ok(j) if j.version == VERSION && j.profile == profile => Ok(Some(j)),
            _ => bail!(
                "the journal of an interrupted key rotation of profile '{profile}' ({}) is damaged: check the profile's access keys with `aws iam list-access-keys` and remove it",
                cache.dir().join(name).display()
            ),
        }
    }

    /// Records this state durably (fsync, rename, directory fsync) before the step it names.
    pub(super) fn write(&self, cache: &Cache) -> Result<()> {
        let mut text = serde_json::to_vec_pretty(self)?;
        text.push(b'\n');
        cache.write_file(&file_name(&self.profile), &text)
    }

    /// The rotation is over.
    pub(super) fn remove(&self, cache: &Cache) -> Result<()> {
        cache.remove_file(&file_name(&self.profile))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_name_says_nothing_of_the_profile_and_is_no_cache_entry() {
        let name = file_name("alice-prod");
        assert!(name.starts_with("rotation-") && name.ends_with(".journal"));
        assert!(!name.contains("alice"));
        assert_ne!(file_name("alice"), file_name("bob"));
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let mut j = Journal::begin(
            "alice",
            Store::Keyring,
            "alice",
            "arn",
            "AKIAOLD",
            vec![],
            false,
        );
        j.new_secret = Some("very-secret".into());
        assert!(!format!("{j:?}").contains("very-secret"));
    }
}
