//! When each long-term access key mfa-exec made was created, so that `keys list` can show its
//! age and `list` can mark a key older than 90 days (CIS AWS Foundations asks for keys younger
//! than that) without a network call: ListAccessKeys knows the date, but IAM's self-management
//! policy lets it be called only with an MFA session, and neither command may ask for a code.
//!
//! `keys rotate` records CreateAccessKey's `CreateDate` here, and the `CreateDate` of every key
//! its ListAccessKeys returned, by access key id (an id is not a secret), in
//! `$XDG_CONFIG_HOME/mfa-exec/key-dates.json` beside the keyring record. A key no rotation has
//! seen (typed, pasted, moved with `keys add`) has no date: its age is shown as unknown, never
//! guessed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};
use serde::{Deserialize, Serialize};

use super::env::Env;
use crate::files::{self, Links};

const VERSION: u32 = 1;
/// A key id and a number a key: 1 MiB is tens of thousands of them.
const MAX_SIZE: u64 = 1 << 20;
/// CIS AWS Foundations: access keys are rotated every 90 days or less.
pub(crate) const MAX_AGE_DAYS: u64 = 90;

#[derive(Serialize, Deserialize, Default)]
struct DatesFile {
    version: u32,
    /// Access key id → unix seconds of its creation.
    keys: BTreeMap<String, u64>,
}

/// The dates known, read once per command.
pub(crate) struct KeyDates {
    keys: BTreeMap<String, u64>,
}

/// `$XDG_CONFIG_HOME/mfa-exec/key-dates.json` (else under `~/.config`).
pub(crate) fn path(env: &Env) -> Result<PathBuf> {
    let dir = env
        .config_dir()
        .ok_or_else(|| anyhow!("cannot find the home directory: set HOME"))?;
    Ok(dir.join("key-dates.json"))
}

fn parse(path: &Path, bytes: Option<&[u8]>) -> Result<BTreeMap<String, u64>> {
    match bytes {
        None => Ok(BTreeMap::new()),
        Some(bytes) => match serde_json::from_slice::<DatesFile>(bytes) {
            Ok(file) if file.version == VERSION => Ok(file.keys),
            _ => bail!(
                "{} is damaged (it holds the creation dates of access keys mfa-exec made); remove it: only the ages shown are lost",
                path.display()
            ),
        },
    }
}

impl KeyDates {
    /// The record; a missing or damaged one knows no date (an age is a hint, never a reason
    /// for a command to fail).
    pub(crate) fn load(env: &Env) -> KeyDates {
        let keys = path(env)
            .ok()
            .and_then(|p| {
                let (file, _) = files::open_regular(&p, Links::Follow, MAX_SIZE).ok()??;
                let bytes = files::read_bounded(file, &p, MAX_SIZE).ok()?;
                parse(&p, Some(&bytes)).ok()
            })
            .unwrap_or_default();
        KeyDates { keys }
    }

    /// When the key was created (unix seconds), if mfa-exec knows.
    pub(crate) fn created(&self, access_key_id: &str) -> Option<u64> {
        self.keys.get(access_key_id).copied()
    }

    /// Records `id`'s creation, under the file's lock.
    pub(crate) fn record(env: &Env, id: &str, created: u64) -> Result<()> {
        change(env, |keys| {
            keys.insert(id.to_string(), created) != Some(created)
        })
    }

    /// Records the creation of each of these keys (id, unix seconds; 0: unknown, skipped), in
    /// one edit: the keys ListAccessKeys returned during a rotation.
    pub(crate) fn record_all(env: &Env, keys: &[(String, u64)]) -> Result<()> {
        change(env, |known| {
            let mut changed = false;
            for (id, created) in keys.iter().filter(|(_, c)| *c > 0) {
                changed |= known.insert(id.clone(), *created) != Some(*created);
            }
            changed
        })
    }

    /// Forgets the date of `id` (a key deleted); no file is made for that.
    pub(crate) fn forget(env: &Env, id: &str) -> Result<()> {
        change(env, |keys| keys.remove(id).is_some())
    }
}

/// Changes the record under its lock; `change` says whether it changed anything.
fn change(env: &Env, mut change: impl FnMut(&mut BTreeMap<String, u64>) -> bool) -> Result<()> {
    let path = path(env)?;
    files::locked::edit(&path, MAX_SIZE, Some(0o600), |bytes| {
        let mut keys = parse(&path, bytes.as_deref())?;
        if !change(&mut keys) {
            return Ok(None);
        }
        let mut text = serde_json::to_vec_pretty(&DatesFile {
            version: VERSION,
            keys,
        })?;
        text.push(b'\n');
        Ok(Some(text))
    })
}

/// Whole days from `created` to `now`.
pub(crate) fn age_days(created: u64, now: u64) -> u64 {
    now.saturating_sub(created) / 86_400
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_are_whole_days_and_a_date_in_the_future_is_no_age() {
        assert_eq!(age_days(0, 86_399), 0);
        assert_eq!(age_days(0, 91 * 86_400 + 5), 91);
        assert_eq!(age_days(100, 50), 0);
    }
}
