//! The private cache of temporary credentials: `$XDG_CACHE_HOME/mfa-exec` (else
//! `~/.cache/mfa-exec`), one JSON file per entry.
//!
//! A code per command is what makes people switch MFA off, so credentials are kept until
//! shortly before they expire. The rules, and why (each in the file named):
//! - the directory is 0700 and every file in it 0600, written to a temporary file and renamed
//!   (a reader never sees half an entry), opened with O_NOFOLLOW (a planted symlink cannot
//!   redirect a write or feed a read) — `store`;
//! - a directory or file owned by someone else, or open to others, is not used: one warning,
//!   and the run carries on without the cache — `store`, and [`Cache::open`] here;
//! - entries are keyed by what decides the credentials (source access key id — never a
//!   secret —, device, role, external id, configured session name, duration), which the
//!   caller names; the cache only hashes it — `key`;
//! - a per-entry `flock` serialises the miss path, so parallel runs make one STS call; the
//!   kernel drops the lock when its holder dies, so a killed run never wedges the others —
//!   `lock`;
//! - the cache never stops work: a corrupt entry is a miss, a failed write a warning —
//!   `entry`;
//! - STS accepts a TOTP code once, so a code this machine already spent is remembered (as a
//!   hash) for as long as it could still be typed — `spent`;
//! - nothing in it is trusted to be a regular file of sane size (a FIFO would hang every run);
//! - a temporary file left by a killed write may hold credentials: the next write to the
//!   directory and every `cache clear` remove such leftovers, and `cache list` mentions them —
//!   `store` and `table`.
//!
//! This file holds the [`Cache`] itself: where it is, whether it lives only in memory, and the
//! rule that it speaks once per problem in a run.

mod entry;
mod key;
mod lock;
mod spent;
mod store;
mod table;

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result};

use crate::secrets::Credentials;
use crate::settings::env::Env;
use crate::terminal::warn;

pub(crate) use key::{EntryKey, FirstBlock, Kind, Label};

pub(crate) struct Cache {
    dir: PathBuf,
    /// Problems already reported this run: the cache speaks once, not per file.
    warned: Mutex<HashSet<String>>,
    /// Set for a cache that lives only in this process (see [`Cache::in_memory`]).
    memory: Option<Mutex<Memory>>,
    /// Entries already read, by file stem, for a reader that asks for the same ones again
    /// and again (see [`Cache::reading_each_entry_once`]).
    read_once: Option<Mutex<HashMap<String, Option<Credentials>>>>,
    /// The entry files the directory held when such a reader began (see
    /// [`Cache::reading_each_entry_once`]), as their stems (`role-HASH` of `role-HASH.json`);
    /// None when it could not be listed.
    listed: Option<fnv::FnvHashSet<String>>,
}

/// The in-process form: entries by file stem, and spent codes.
#[derive(Default)]
struct Memory {
    entries: HashMap<String, Credentials>,
    codes: Vec<(String, u64)>,
}

impl Cache {
    /// The cache, if it can be used safely; otherwise one warning and None.
    pub(crate) fn open(env: &Env) -> Option<Cache> {
        let dir = env.cache_dir()?;
        match store::prepare(&dir) {
            Ok(()) => Some(Cache::at(dir)),
            Err(problem) => {
                warn(&format!("not using the credential cache: {problem}"));
                None
            }
        }
    }

    /// The state directory ([`Env::state_dir`]), prepared and checked as the cache's is, for
    /// the private files that must outlive a wiped cache (`keys rotate`'s journal), which use
    /// [`Cache::read_file`], [`Cache::write_file`] and [`Cache::remove_file`].
    pub(crate) fn state(env: &Env) -> Result<Cache> {
        let dir = env.state_dir().ok_or_else(|| {
            anyhow::anyhow!(
                "no home directory for mfa-exec's state directory: set HOME or XDG_STATE_HOME"
            )
        })?;
        store::prepare(&dir).map_err(|problem| anyhow::anyhow!("{problem}"))?;
        Ok(Cache::at(dir))
    }

    /// The cache for reading only (`cache list`): no directory is created.
    pub(crate) fn existing(env: &Env) -> Result<Option<Cache>> {
        let Some(dir) = env.cache_dir() else {
            return Ok(None);
        };
        match fs::symlink_metadata(&dir) {
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", dir.display())),
            Ok(_) => match store::prepare(&dir) {
                Ok(()) => Ok(Some(Cache::at(dir))),
                Err(problem) => anyhow::bail!("{problem}"),
            },
        }
    }

    /// The cache in `dir`, already checked by [`store::prepare`].
    fn at(dir: PathBuf) -> Cache {
        Cache {
            dir,
            warned: Default::default(),
            memory: None,
            read_once: None,
            listed: None,
        }
    }

    /// A cache that never touches the disk, for `--server` without a usable cache directory
    /// (or with `--no-cache`): the MFA session must still outlive each role renewal, or every
    /// renewal would need a new code.
    pub(crate) fn in_memory() -> Cache {
        Cache {
            dir: PathBuf::new(),
            warned: Default::default(),
            memory: Some(Default::default()),
            read_once: None,
            listed: None,
        }
    }

    /// The same cache, reading each entry from the disk at most once: `list` asks for the MFA
    /// session every role of a source shares once per role, thousands of times in a big config.
    pub(crate) fn reading_each_entry_once(self) -> Cache {
        // The directory is listed once, so an entry it does not hold (most roles of a big
        // config have none) costs a set lookup instead of an open() that fails: a snapshot,
        // as the list it serves is.
        // A listing that fails part way is no listing: every entry is then read from the disk.
        let listed = std::fs::read_dir(&self.dir)
            .and_then(|entries| {
                entries
                    .map(|e| e.map(|e| e.file_name()))
                    .collect::<std::io::Result<Vec<_>>>()
            })
            .ok()
            .map(|names| {
                names
                    .into_iter()
                    .filter_map(|name| name.into_string().ok())
                    .filter_map(|name| name.strip_suffix(".json").map(String::from))
                    .collect()
            });
        Cache {
            read_once: Some(Default::default()),
            listed,
            ..self
        }
    }

    /// Warns once per `topic` in a run.
    fn warn_once_about(&self, topic: &str, message: &str) {
        let first = self
            .warned
            .lock()
            .map(|mut w| w.insert(topic.to_string()))
            .unwrap_or(true);
        if first {
            warn(message);
        }
    }

    /// Any failure to write (entry, lock, spent-code record) is one warning in a run.
    fn warn_once(&self, problem: &str) {
        self.warn_once_about(
            "write",
            &format!("cannot write to the credential cache ({problem}); the command runs anyway"),
        );
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }
}

/// What the tests of every part share: a cache in a fresh private directory, and
/// credentials to put in it.
#[cfg(test)]
mod testing {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::clock::now;

    /// A checked cache in a 0700 directory inside a temporary one (dropped with the guard).
    pub(super) fn private_cache() -> (tempfile::TempDir, Cache) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("mfa-exec");
        store::prepare(&dir).unwrap();
        (tmp, Cache::at(dir))
    }

    /// Credentials with recognisable secrets, expiring `secs_left` from now.
    pub(super) fn creds(secs_left: i64) -> Credentials {
        Credentials {
            access_key_id: "ASIATESTKEYID".into(),
            secret_access_key: "wJalrXUtnFEMI/SECRET".into(),
            session_token: "FwoGZXIvYXdzSESSIONTOKEN".into(),
            expiration: now().saturating_add_signed(secs_left),
            issued: now(),
        }
    }

    pub(super) fn mode(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().permissions().mode() & 0o777
    }

    /// Whether the cache has already given its one warning about `topic` this run.
    pub(super) fn warned_about(cache: &Cache, topic: &str) -> bool {
        cache.warned.lock().unwrap().contains(topic)
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    #[test]
    fn a_problem_is_reported_once_per_run_not_once_per_file() {
        let (_tmp, cache) = private_cache();
        cache.warn_once("disk full");
        cache.warn_once("disk still full");
        assert!(warned_about(&cache, "write"));
        assert_eq!(cache.warned.lock().unwrap().len(), 1);
    }

    #[test]
    fn an_in_memory_cache_has_no_directory_and_writes_nothing_to_disk() {
        let cache = Cache::in_memory();
        assert_eq!(cache.dir(), Path::new(""));
        let key = EntryKey::new(
            Kind::Session,
            Label {
                profile: "alice".into(),
                source_profile: None,
                role_arn: None,
                scope: None,
            },
            &["session", "AKIAALICE", "arn:aws:iam::1:mfa/alice"],
        );
        cache.write(&key, &creds(3600));
        cache.record_code("arn:aws:iam::1:mfa/alice", "123456");
        // Nothing was created relative to the current directory either.
        assert!(!Path::new(&key.entry_file()).exists());
        assert!(!Path::new(spent::USED_CODES).exists());
        assert!(cache.read(&key).is_some());
    }
}
