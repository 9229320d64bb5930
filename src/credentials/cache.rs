//! The private cache of temporary credentials: `$XDG_CACHE_HOME/mfa-exec` (else
//! `~/.cache/mfa-exec`), one JSON file per entry.
//!
//! A code per command is what makes people switch MFA off, so credentials are kept until
//! shortly before they expire. The rules, and why:
//! - the directory is 0700 and every file in it 0600, written to a temporary file and renamed
//!   (a reader never sees half an entry), opened with O_NOFOLLOW (a planted symlink cannot
//!   redirect a write or feed a read);
//! - a directory or file owned by someone else, or open to others, is not used: one warning,
//!   and the run carries on without the cache;
//! - entries are keyed by what decides the credentials (source access key id — never a
//!   secret —, device, role, external id, configured session name, duration), which the
//!   caller names; the cache only hashes it;
//! - a per-entry `flock` serialises the miss path, so parallel runs make one STS call; the
//!   kernel drops the lock when its holder dies, so a killed run never wedges the others;
//! - the cache never stops work: a corrupt entry is a miss, a failed write a warning;
//! - nothing in it is trusted to be a regular file of sane size (a FIFO would hang every run);
//! - a temporary file left by a killed write may hold credentials: the next write to the
//!   directory and every `cache clear` remove such leftovers, and `cache list` mentions them.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::clock::{now, rfc3339};
use crate::files::{self, Links};
use crate::secrets::Credentials;
use crate::settings::duration::human_duration;
use crate::settings::env::Env;
use crate::terminal::{safe, warn};

const ENTRY_VERSION: u32 = 1;
/// A TOTP code is valid for its 30-second step ±1; remember spent codes a little longer.
const CODE_MEMORY_SECS: u64 = 120;
const USED_CODES: &str = "used-codes";
/// Entries are a few hundred bytes and the used-codes file is kept to a few KB; anything
/// bigger was not written by mfa-exec.
const MAX_FILE: u64 = 64 * 1024;
/// A temporary file whose writer is gone, or this old, is a leftover of an interrupted write.
const LEFTOVER_AGE: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Kind {
    /// GetSessionToken with MFA.
    Session,
    /// AssumeRole (from an MFA session, or directly with a code).
    Role,
}

/// Which entry, and what `cache list` shows of it.
pub(crate) struct EntryKey {
    file_stem: String,
    kind: Kind,
    profile: String,
    source_profile: Option<String>,
    role_arn: Option<String>,
}

/// How `cache list` names an entry: the profile it is for (for an MFA session, the source
/// profile whose user it belongs to), that profile's source, and the role.
pub(crate) struct Label {
    pub(crate) profile: String,
    pub(crate) source_profile: Option<String>,
    pub(crate) role_arn: Option<String>,
}

impl EntryKey {
    /// The entry for what `parts` says decides the credentials (hashed: the file name shows
    /// nothing of them), shown in `cache list` as `label`.
    pub(crate) fn new(kind: Kind, label: Label, parts: &[&str]) -> EntryKey {
        let mut hasher = Sha256::new();
        for p in parts {
            hasher.update(p.as_bytes());
            hasher.update([0]);
        }
        let digest: String = hasher
            .finalize()
            .iter()
            .take(16)
            .map(|b| format!("{b:02x}"))
            .collect();
        let kind_name = match kind {
            Kind::Session => "session",
            Kind::Role => "role",
        };
        EntryKey {
            file_stem: format!("{kind_name}-{digest}"),
            kind,
            profile: label.profile,
            source_profile: label.source_profile,
            role_arn: label.role_arn,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Entry {
    version: u32,
    kind: Kind,
    profile: String,
    source_profile: Option<String>,
    role_arn: Option<String>,
    /// For people reading the file; `credentials.expiration` is what counts.
    expires: String,
    credentials: Credentials,
}

pub(crate) struct Cache {
    dir: PathBuf,
    /// Problems already reported this run: the cache speaks once, not per file.
    warned: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Set for a cache that lives only in this process (see [`Cache::in_memory`]).
    memory: Option<std::sync::Mutex<Memory>>,
}

/// The in-process form: entries by file stem, and spent codes.
#[derive(Default)]
struct Memory {
    entries: std::collections::HashMap<String, Credentials>,
    codes: Vec<(String, u64)>,
}

/// Is this file or directory private to us? Returns what is wrong, if anything.
fn privacy_problem(meta: &fs::Metadata, what: &str) -> Option<String> {
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != me {
        return Some(format!(
            "{what} is owned by another user (uid {})",
            meta.uid()
        ));
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Some(format!("{what} is open to other users (mode {mode:o})"));
    }
    None
}

impl Cache {
    /// The cache, if it can be used safely; otherwise one warning and None.
    pub(crate) fn open(env: &Env) -> Option<Cache> {
        let dir = env.cache_dir()?;
        match Self::prepare(&dir) {
            Ok(()) => Some(Cache::at(dir)),
            Err(problem) => {
                warn(&format!("not using the credential cache: {problem}"));
                None
            }
        }
    }

    /// The cache for reading only (`cache list`): no directory is created.
    pub(crate) fn existing(env: &Env) -> Result<Option<Cache>> {
        let Some(dir) = env.cache_dir() else {
            return Ok(None);
        };
        match fs::symlink_metadata(&dir) {
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", dir.display())),
            Ok(_) => match Self::prepare(&dir) {
                Ok(()) => Ok(Some(Cache::at(dir))),
                Err(problem) => anyhow::bail!("{problem}"),
            },
        }
    }

    fn prepare(dir: &Path) -> Result<(), String> {
        // Look first: on the cache-hit path the directory exists, and a hit should cost a
        // stat, not failed mkdirs.
        let meta = match fs::symlink_metadata(dir) {
            Err(e) if e.kind() == ErrorKind::NotFound => {
                if let Some(parent) = dir.parent() {
                    fs::create_dir_all(parent)
                        .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
                }
                match fs::DirBuilder::new().mode(0o700).create(dir) {
                    Ok(()) => {}
                    // Another run made it in between: checked below like any other.
                    Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(format!("cannot create {}: {e}", dir.display())),
                }
                fs::symlink_metadata(dir)
            }
            other => other,
        }
        .map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        if meta.file_type().is_symlink() {
            return Err(format!(
                "{} is a symbolic link; remove it and mfa-exec will create a private directory",
                dir.display()
            ));
        }
        if !meta.is_dir() {
            return Err(format!("{} is not a directory", dir.display()));
        }
        if let Some(problem) = privacy_problem(&meta, &dir.display().to_string()) {
            // chmod cannot fix ownership: the directory was made by another user (or by
            // a run as root), and only its owner or root can remove it.
            let advice = if meta.uid() != nix::unistd::geteuid().as_raw() {
                "remove it (as its owner or root) and mfa-exec will create a private one, or set XDG_CACHE_HOME to a directory of yours".to_string()
            } else {
                format!("run `chmod 700 {}`, or set XDG_CACHE_HOME", dir.display())
            };
            return Err(format!("{problem}; {advice}"));
        }
        Ok(())
    }

    fn at(dir: PathBuf) -> Cache {
        Cache {
            dir,
            warned: Default::default(),
            memory: None,
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

    fn entry_path(&self, key: &EntryKey) -> PathBuf {
        self.dir.join(format!("{}.json", key.file_stem))
    }

    /// Reads a file in the cache: not through a symlink, never blocking on a FIFO, only a
    /// private regular file of sane size. Ok(None) when there is none.
    fn read_private(&self, path: &Path) -> Result<Option<Vec<u8>>, String> {
        // Nothing in the cache is worth keeping that mfa-exec cannot read.
        let refused = |e: files::Refused| format!("{e}; remove it");
        let Some((file, meta)) =
            files::open_regular(path, Links::Refuse, MAX_FILE).map_err(refused)?
        else {
            return Ok(None);
        };
        if let Some(problem) = privacy_problem(&meta, &path.display().to_string()) {
            return Err(problem);
        }
        files::read_bounded(file, path, MAX_FILE)
            .map(Some)
            .map_err(refused)
    }

    /// The entry's credentials; None on a miss. A damaged entry is a miss with a warning.
    pub(crate) fn read(&self, key: &EntryKey) -> Option<Credentials> {
        if let Some(memory) = &self.memory {
            return memory.lock().ok()?.entries.get(&key.file_stem).cloned();
        }
        let path = self.entry_path(key);
        let bytes = match self.read_private(&path) {
            Ok(Some(b)) => b,
            Ok(None) => return None,
            Err(problem) => {
                self.warn_once_about(
                    &path.display().to_string(),
                    &format!("ignoring cache entry: {problem}"),
                );
                return None;
            }
        };
        let parsed = serde_json::from_slice::<Entry>(&bytes)
            .ok()
            .filter(|e| e.version == ENTRY_VERSION && e.kind == key.kind);
        match parsed {
            Some(entry) => Some(entry.credentials),
            None => {
                self.warn_once_about(
                    &path.display().to_string(),
                    &format!(
                        "cache entry {} is damaged; it will be replaced",
                        path.display()
                    ),
                );
                None
            }
        }
    }

    /// Writes the entry atomically; a failure (read-only or full disk) is only a warning.
    pub(crate) fn write(&self, key: &EntryKey, creds: &Credentials) {
        if let Some(memory) = &self.memory {
            if let Ok(mut m) = memory.lock() {
                m.entries.insert(key.file_stem.clone(), creds.clone());
            }
            return;
        }
        let entry = Entry {
            version: ENTRY_VERSION,
            kind: key.kind,
            profile: key.profile.clone(),
            source_profile: key.source_profile.clone(),
            role_arn: key.role_arn.clone(),
            expires: rfc3339(creds.expiration),
            credentials: creds.clone(),
        };
        let path = self.entry_path(key);
        let text = match serde_json::to_vec_pretty(&entry) {
            Ok(t) => t,
            Err(_) => return,
        };
        if let Err(e) = self.write_atomic(&path, &text) {
            self.warn_once(&format!("{e:#}"));
        }
    }

    fn write_atomic(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        self.remove_leftovers(&[]);
        files::write_atomic(path, bytes, Some(0o600))
    }

    /// Takes the entry's lock, waiting while another run holds it (at most `max_wait`, when
    /// given: a run that may not prompt must not hang behind one that is prompting). Ok(None),
    /// with a warning, when the lock cannot be made (a read-only disk): the run goes on
    /// unlocked. Err when `max_wait` passed.
    pub(crate) fn lock(
        &self,
        key: &EntryKey,
        max_wait: Option<Duration>,
    ) -> Result<Option<Flock<File>>> {
        if self.memory.is_some() {
            return Ok(None); // one process: its callers serialise themselves
        }
        let path = self.dir.join(format!("{}.lock", key.file_stem));
        let file = match OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc_o_nofollow())
            .open(&path)
        {
            Ok(f) => f,
            Err(e) => {
                self.warn_once(&format!("cannot lock {}: {e}", path.display()));
                return Ok(None);
            }
        };
        let mut file = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Ok(Some(lock)),
            Err((file, _)) => file,
        };
        let Some(max_wait) = max_wait else {
            crate::terminal::say(&format!(
                "waiting for another mfa-exec run to get credentials for profile {}…",
                key.profile
            ));
            return Ok(Flock::lock(file, FlockArg::LockExclusive).ok());
        };
        let deadline = Instant::now() + max_wait;
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(lock) => return Ok(Some(lock)),
                Err((f, _)) => file = f,
            }
        }
        anyhow::bail!(
            "another mfa-exec run is getting credentials for profile {} (perhaps waiting for an MFA code); with --no-prompt this run does not wait: try again once it is done",
            key.profile
        )
    }

    /// Whether this machine already spent this code (STS refuses a code used once).
    pub(crate) fn code_was_used(&self, serial: &str, code: &str) -> bool {
        let needle = code_fingerprint(serial, code);
        self.recent_codes().iter().any(|(fp, _)| *fp == needle)
    }

    /// The spent codes still worth remembering: `(fingerprint, unix time)`.
    fn recent_codes(&self) -> Vec<(String, u64)> {
        let horizon = now().saturating_sub(CODE_MEMORY_SECS);
        if let Some(memory) = &self.memory {
            return memory.lock().map_or_else(
                |_| Vec::new(),
                |m| m.codes.iter().filter(|c| c.1 >= horizon).cloned().collect(),
            );
        }
        let Ok(Some(bytes)) = self.read_private(&self.dir.join(USED_CODES)) else {
            return Vec::new();
        };
        String::from_utf8_lossy(&bytes)
            .lines()
            .filter_map(|line| {
                let (fp, time) = line.split_once(' ')?;
                let time = time.parse::<u64>().ok()?;
                (time >= horizon).then(|| (fp.to_string(), time))
            })
            .collect()
    }

    /// Remembers a code STS accepted, as a hash (never the code itself; it is spent anyway).
    pub(crate) fn record_code(&self, serial: &str, code: &str) {
        if let Some(memory) = &self.memory {
            if let Ok(mut m) = memory.lock() {
                m.codes.push((code_fingerprint(serial, code), now()));
            }
            return;
        }
        let path = self.dir.join(USED_CODES);
        let line = format!("{} {}\n", code_fingerprint(serial, code), now());
        // Keep the file small: past a few KB, rewrite it with the recent lines only.
        if fs::symlink_metadata(&path).is_ok_and(|m| m.len() > 4096) {
            let kept: String = self
                .recent_codes()
                .iter()
                .map(|(fp, time)| format!("{fp} {time}\n"))
                .collect();
            let _ = self.write_atomic(&path, format!("{kept}{line}").as_bytes());
            return;
        }
        let appended = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc_o_nofollow())
            .open(&path)
            .and_then(|mut f| f.write_all(line.as_bytes()));
        if let Err(e) = appended {
            self.warn_once(&format!("{}: {e}", path.display()));
        }
    }

    /// What the directory holds, for `cache list` and `cache clear`.
    fn scan(&self) -> Result<Scan> {
        let mut scan = Scan::default();
        for dirent in fs::read_dir(&self.dir)
            .with_context(|| format!("cannot list {}", self.dir.display()))?
        {
            let path = dirent?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if is_temporary(name) {
                scan.temporary.push(path);
                continue;
            }
            if name.starts_with('.') || !name.ends_with(".json") {
                continue;
            }
            let entry = self
                .read_private(&path)
                .ok()
                .flatten()
                .and_then(|bytes| serde_json::from_slice::<Entry>(&bytes).ok());
            match entry {
                Some(entry) => scan.entries.push((path, entry)),
                None => scan.damaged += 1,
            }
        }
        scan.entries.sort_by(|a, b| {
            (&a.1.profile, a.1.credentials.expiration)
                .cmp(&(&b.1.profile, b.1.credentials.expiration))
        });
        Ok(scan)
    }

    /// Removes temporary files of interrupted writes: those whose writer is gone or that
    /// are old, and those of the entries named by `stems`, whoever wrote them. Returns how
    /// many were removed.
    fn remove_leftovers(&self, stems: &[&str]) -> usize {
        let Ok(dir) = fs::read_dir(&self.dir) else {
            return 0;
        };
        let mut removed = 0;
        for dirent in dir.flatten() {
            let name = dirent.file_name();
            let Some(name) = name.to_str() else { continue };
            if !is_temporary(name) {
                continue;
            }
            let of_entry = stems.iter().any(|s| name.starts_with(&format!(".{s}.")));
            if (of_entry || is_leftover(&dirent.path(), name))
                && fs::remove_file(dirent.path()).is_ok()
            {
                removed += 1;
            }
        }
        removed
    }

    /// `mfa-exec cache list`: profile, kind, expiry, time left; never a key or secret.
    pub(crate) fn list(&self, out: &mut impl Write) -> Result<usize> {
        let scan = self.scan()?;
        if scan.damaged > 0 {
            warn(&format!(
                "{} cache entr{} in {} cannot be read; `mfa-exec cache clear` removes them",
                scan.damaged,
                if scan.damaged == 1 { "y" } else { "ies" },
                self.dir.display()
            ));
        }
        if !scan.temporary.is_empty() {
            let n = scan.temporary.len();
            warn(&format!(
                "{n} temporary file{} in {} (left by an interrupted or ongoing write; they may hold credentials); `mfa-exec cache clear` removes leftovers",
                if n == 1 { "" } else { "s" },
                self.dir.display()
            ));
        }
        if scan.entries.is_empty() {
            return Ok(0);
        }
        writeln!(
            out,
            "{:<20} {:<8} {:<21} {:<9} ROLE",
            "PROFILE", "KIND", "EXPIRES (UTC)", "LEFT"
        )?;
        for (_, e) in &scan.entries {
            let left = e.credentials.seconds_left();
            let left = if left == 0 {
                "expired".to_string()
            } else {
                human_duration(left / 60 * 60)
            };
            let kind = match e.kind {
                Kind::Session => "session",
                Kind::Role => "role",
            };
            // Profile names and ARNs come from files: shown, never replayed.
            writeln!(
                out,
                "{:<20} {:<8} {:<21} {:<9} {}",
                safe(&e.profile),
                kind,
                rfc3339(e.credentials.expiration),
                left,
                safe(e.role_arn.as_deref().unwrap_or("-"))
            )?;
        }
        Ok(scan.entries.len())
    }

    /// `mfa-exec cache clear [--profile P]`: removes entries (and their locks and temporary
    /// files); returns how many entries. Leftovers of interrupted writes go either way.
    /// Without a profile, everything in the directory goes, damaged entries included.
    pub(crate) fn clear(&self, profile: Option<&str>) -> Result<usize> {
        let mut removed = 0;
        if let Some(p) = profile {
            let mut cleared = Vec::new();
            for (path, e) in self.scan()?.entries {
                if e.profile == p || e.source_profile.as_deref() == Some(p) {
                    fs::remove_file(&path)
                        .with_context(|| format!("cannot remove {}", path.display()))?;
                    let _ = fs::remove_file(path.with_extension("lock"));
                    cleared.push(path);
                    removed += 1;
                }
            }
            let stems: Vec<&str> = cleared
                .iter()
                .filter_map(|path| path.file_stem()?.to_str())
                .collect();
            self.remove_leftovers(&stems);
            return Ok(removed);
        }
        for dirent in fs::read_dir(&self.dir)
            .with_context(|| format!("cannot list {}", self.dir.display()))?
        {
            let path = dirent?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let ours = name.ends_with(".json")
                || name.ends_with(".lock")
                || is_temporary(name)
                || name == USED_CODES;
            if ours && !path.is_dir() {
                fs::remove_file(&path)
                    .with_context(|| format!("cannot remove {}", path.display()))?;
                if name.ends_with(".json") {
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }
}

/// What `scan` found.
#[derive(Default)]
struct Scan {
    entries: Vec<(PathBuf, Entry)>,
    /// `.json` files that cannot be read.
    damaged: usize,
    /// Temporary files of writes (`.NAME.PID.RANDOM.tmp`).
    temporary: Vec<PathBuf>,
}

fn is_temporary(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(".tmp")
}

/// A temporary file is a leftover when the process that wrote it is gone (its pid is in the
/// name) or it is older than any write takes.
fn is_leftover(path: &Path, name: &str) -> bool {
    let writer = name
        .trim_end_matches(".tmp")
        .rsplit('.')
        .nth(1)
        .and_then(|pid| pid.parse::<i32>().ok())
        .filter(|pid| *pid > 0);
    let writer_alive = writer.is_some_and(|pid| {
        pid == std::process::id() as i32
            || !matches!(
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
                Err(nix::errno::Errno::ESRCH)
            )
    });
    let old = fs::symlink_metadata(path)
        .and_then(|m| m.modified())
        .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > LEFTOVER_AGE));
    !writer_alive || old
}

fn code_fingerprint(serial: &str, code: &str) -> String {
    let digest = Sha256::digest(format!("mfa-exec-used-code\0{serial}\0{code}").as_bytes());
    digest.iter().take(12).map(|b| format!("{b:02x}")).collect()
}

/// O_NOFOLLOW (a planted symlink is not followed) and O_NONBLOCK (a planted FIFO does not
/// block the open).
fn libc_o_nofollow() -> i32 {
    (nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_NONBLOCK).bits()
}
