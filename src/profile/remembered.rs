//! What the SDK's parse gave for the profiles a run used, remembered so that the next run with
//! the very same files answers without reading or parsing them.
//!
//! Organisations generate configs of tens of thousands of profiles, and a cache hit needs the
//! sections of one chain: parsing 10 MB on every run made a hit 900 times dearer than with a
//! small config. So a run that parsed the files writes down the sections it looked at (each
//! profile whole, or its absence; each `[services]` property it asked for), keyed by the exact
//! identity of both files as `stat` gives it: device, inode, size, and the modification and
//! change times in nanoseconds (a missing file counts as "absent"). The next run `stat`s the
//! two files and, if both identities are the same, answers from this record; anything the
//! record does not hold sends it to the full parse, so the answer is always the parse's.
//!
//! - **No secret is written.** `aws_secret_access_key` and `aws_session_token` are recorded as
//!   "held in the file"; a cache hit needs only the access key id, and a run that calls STS
//!   reads the files again for the secret ([`super::Secret`]).
//! - **Every change is seen.** Any write to a file changes its ctime (and an editor's rename
//!   its inode), so a same-size edit within the same second no longer matches. What `stat`
//!   cannot tell apart is a write within the same clock tick as the one it saw: files changed
//!   less than [`SETTLE`] before they were read (two seconds on filesystems that keep whole
//!   seconds) are never remembered, as git treats a "racily clean" index entry.
//! - **Kept like the cache.** The record is a 0600 file in mfa-exec's 0700 cache directory,
//!   read only when it is the user's own and private (it names the role ARNs, endpoints and
//!   `credential_process` commands a run uses), and written only into a private directory that
//!   exists: a record that cannot be kept costs nothing but the next run's parse.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::files;

/// The keys whose values never leave the profile files.
pub(super) const SECRET_KEYS: [&str; 2] = ["aws_secret_access_key", "aws_session_token"];

/// How long after its last change a file's identity is trusted to change with its content:
/// Linux stamps files with a clock that advances in ticks of at most 10 ms.
pub(super) const SETTLE: Duration = Duration::from_millis(50);
/// The same, for a file whose times have no nanoseconds (a filesystem keeping whole seconds,
/// FAT's two).
const SETTLE_COARSE: Duration = Duration::from_secs(2);

/// Records of more profiles than this start again from the run's own (a run uses a chain's).
const MAX_PROFILES: usize = 512;
/// Larger than any record mfa-exec writes.
const MAX_RECORD: u64 = 1 << 20;
const VERSION: u32 = 1;

/// A file exactly as `stat` sees it; `present: false` for a missing file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Identity {
    present: bool,
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Identity {
    pub(super) const ABSENT: Identity = Identity {
        present: false,
        dev: 0,
        ino: 0,
        size: 0,
        mtime: (0, 0),
        ctime: (0, 0),
    };

    pub(super) fn of(meta: &std::fs::Metadata) -> Identity {
        Identity {
            present: true,
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }

    /// The file at `path` (symlinks followed, as the files are read); None when it cannot be
    /// told (the full read then reports why).
    pub(super) fn stat(path: &Path) -> Option<Identity> {
        match std::fs::metadata(path) {
            Ok(meta) => Some(Identity::of(&meta)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(Identity::ABSENT),
            Err(_) => None,
        }
    }

    pub(super) fn present(&self) -> bool {
        self.present
    }

    /// Whether the file last changed long enough before `now` that a later write cannot leave
    /// the same identity behind.
    pub(super) fn settled(&self, now: SystemTime) -> bool {
        if !self.present {
            return true;
        }
        let coarse = self.mtime.1 == 0 && self.ctime.1 == 0;
        let settle = if coarse { SETTLE_COARSE } else { SETTLE };
        let Ok(now) = now.duration_since(UNIX_EPOCH) else {
            return false;
        };
        let at = |(s, ns): (i64, i64)| {
            u64::try_from(s)
                .ok()
                .map(|s| Duration::new(s, u32::try_from(ns).unwrap_or(0)))
        };
        [self.mtime, self.ctime]
            .into_iter()
            .all(|t| at(t).is_some_and(|t| t + settle <= now))
    }
}

/// What the parse said of one profile: whether either file has it, and the properties asked
/// of it (the SDK's parser offers no list of a section's properties, and a run asks the same
/// ones each time).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Seen {
    pub(super) exists: bool,
    /// Properties with their values (empty ones included).
    pub(super) values: BTreeMap<String, String>,
    /// Properties the profile does not have.
    pub(super) absent: BTreeSet<String>,
    /// Secrets the profile has, whose values are not written down.
    pub(super) withheld: BTreeSet<String>,
}

/// What a remembered profile says of a property.
pub(super) enum Answer<'a> {
    Value(&'a str),
    Absent,
    /// A secret: only the files hold it.
    Withheld,
    /// Never asked: only the parse knows.
    Unknown,
}

impl Seen {
    pub(super) fn answer(&self, key: &str) -> Answer<'_> {
        if let Some(v) = self.values.get(key) {
            Answer::Value(v)
        } else if self.absent.contains(key) {
            Answer::Absent
        } else if self.withheld.contains(key) {
            Answer::Withheld
        } else {
            Answer::Unknown
        }
    }

    /// Notes what the parse gave for `key`; a secret's value is not kept.
    pub(super) fn note(&mut self, key: &str, value: Option<&str>) {
        match value {
            None => {
                self.absent.insert(key.to_string());
            }
            Some(v) if !v.is_empty() && SECRET_KEYS.contains(&key) => {
                self.withheld.insert(key.to_string());
            }
            Some(v) => {
                self.values.insert(key.to_string(), v.to_string());
            }
        }
    }

    /// Everything `other` knows that this does not.
    pub(super) fn merge(&mut self, other: &Seen) {
        self.values
            .extend(other.values.iter().map(|(k, v)| (k.clone(), v.clone())));
        self.absent.extend(other.absent.iter().cloned());
        self.withheld.extend(other.withheld.iter().cloned());
    }
}

/// The record of one pair of files.
#[derive(Clone, Default, Serialize, Deserialize)]
pub(super) struct Record {
    version: u32,
    config_path: PathBuf,
    credentials_path: PathBuf,
    config: Option<Identity>,
    credentials: Option<Identity>,
    /// Each profile looked at, and what was asked of it.
    pub(super) profiles: BTreeMap<String, Seen>,
    /// `[services NAME]` sub-properties looked at, keyed `NAME SERVICE KEY`.
    pub(super) services: BTreeMap<String, Option<String>>,
}

impl Record {
    pub(super) fn new(paths: (&Path, &Path), identities: (Identity, Identity)) -> Record {
        Record {
            version: VERSION,
            config_path: paths.0.to_path_buf(),
            credentials_path: paths.1.to_path_buf(),
            config: Some(identities.0),
            credentials: Some(identities.1),
            ..Record::default()
        }
    }

    /// The record for these files, if one was kept and both files are still exactly what it
    /// was made from.
    pub(super) fn read(
        at: &Path,
        paths: (&Path, &Path),
        identities: (Identity, Identity),
    ) -> Option<Record> {
        let bytes = files::read_private(at, MAX_RECORD).ok()??;
        let record: Record = serde_json::from_slice(&bytes).ok()?;
        (record.matches(paths, identities)).then_some(record)
    }

    pub(super) fn matches(&self, paths: (&Path, &Path), identities: (Identity, Identity)) -> bool {
        self.version == VERSION
            && self.config_path == paths.0
            && self.credentials_path == paths.1
            && self.config == Some(identities.0)
            && self.credentials == Some(identities.1)
    }

    pub(super) fn is_full(&self) -> bool {
        self.profiles.len() > MAX_PROFILES
    }

    /// Writes the record (0600) when `dir` is a private directory of ours; quietly does
    /// nothing otherwise: the next run parses the files again.
    pub(super) fn write(&self, at: &Path) {
        let Some(dir) = at.parent() else { return };
        let private = std::fs::symlink_metadata(dir)
            .is_ok_and(|m| m.is_dir() && files::privacy_problem(&m, "").is_none());
        if !private {
            return;
        }
        if let Ok(bytes) = serde_json::to_vec(self) {
            let _ = files::write_atomic(at, &bytes, Some(0o600));
        }
    }
}

/// Where the record of this pair of files is kept in `dir`: one file per pair of paths (the
/// paths hashed, so the name tells nothing about them), beside the cache's entries but not a
/// `.json` one, so `cache list` does not take it for an entry.
pub(super) fn record_path(dir: &Path, paths: (&Path, &Path)) -> PathBuf {
    let mut hash = Sha256::new();
    hash.update(paths.0.as_os_str().as_bytes());
    hash.update([0]);
    hash.update(paths.1.as_os_str().as_bytes());
    let hex: String = hash.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    dir.join(format!("profiles-{hex}.parsed"))
}
