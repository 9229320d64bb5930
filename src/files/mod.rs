//! Reading a file mfa-exec did not write this run, without trusting what sits at the path.
//!
//! A FIFO at a cache entry's path would block the open (and every later run) forever, a
//! device like `/dev/zero` never ends, and a 2 GB sparse file is read whole by
//! `read_to_string`. So: open non-blocking (a FIFO with no writer opens at once), optionally
//! without following a symlink, `fstat` what was opened (not the path, which may change in
//! between), refuse anything but a regular file of a sane size, and read at most that size.
//!
//! A refusal states what is wrong with the file; what to do about it is the caller's to add
//! (remove a cache entry; point AWS_CONFIG_FILE elsewhere).
//!
//! Writes replace a file through a temporary file beside it and a rename, so a reader never
//! sees half of one. [`locked`] edits the files a user owns (locked, through links, keeping
//! owner and group).

use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Result;

use nix::fcntl::OFlag;

pub(crate) mod locked;

/// Whether a symlink at the path itself may be followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Links {
    Follow,
    /// O_NOFOLLOW: a symlink fails the open (for files in the private cache directory).
    Refuse,
}

/// Why a file was not read; the Display text names the path and says what is wrong with it.
#[derive(Debug)]
pub(crate) struct Refused(pub(crate) String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// Opens `path` for reading if it is a regular file of at most `max` bytes. Ok(None) when
/// nothing is there. The returned metadata is the opened file's own (for ownership checks).
pub(crate) fn open_regular(
    path: &Path,
    links: Links,
    max: u64,
) -> Result<Option<(File, Metadata)>, Refused> {
    let mut flags = OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
    if links == Links::Refuse {
        flags |= OFlag::O_NOFOLLOW;
    }
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(flags.bits())
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        // ELOOP: O_NOFOLLOW met a symlink.
        Err(e) if e.raw_os_error() == Some(nix::libc::ELOOP) => {
            return Err(Refused(format!(
                "{} is a symbolic link, which mfa-exec does not follow here",
                path.display()
            )))
        }
        Err(e) => return Err(cannot_read(path, &e)),
    };
    let meta = file.metadata().map_err(|e| cannot_read(path, &e))?;
    if meta.is_dir() {
        return Err(Refused(format!("{} is a directory", path.display())));
    }
    if !meta.is_file() {
        return Err(Refused(format!(
            "{} is not a regular file (a FIFO, socket or device)",
            path.display()
        )));
    }
    if meta.len() > max {
        return Err(too_big(path, max));
    }
    Ok(Some((file, meta)))
}

/// Reads at most `max` bytes of an opened file (it may grow after the check).
pub(crate) fn read_bounded(file: File, path: &Path, max: u64) -> Result<Vec<u8>, Refused> {
    let mut bytes = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| cannot_read(path, &e))?;
    if bytes.len() as u64 > max {
        return Err(too_big(path, max));
    }
    Ok(bytes)
}

fn cannot_read(path: &Path, e: &std::io::Error) -> Refused {
    Refused(format!("cannot read {}: {}", path.display(), io_reason(e)))
}

/// `max` in the largest unit that divides it: "16 MB", "64 KB".
fn too_big(path: &Path, max: u64) -> Refused {
    let size = match max {
        m if m >= 1 << 20 && m % (1 << 20) == 0 => format!("{} MB", m >> 20),
        m if m >= 1 << 10 && m % (1 << 10) == 0 => format!("{} KB", m >> 10),
        m => format!("{m} bytes"),
    };
    Refused(format!("{} is larger than {size}", path.display()))
}

/// The OS reason without Rust's `(os error N)` suffix ("Permission denied").
pub(crate) fn io_reason(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// Is this file or directory private to us? Returns what is wrong, if anything. What the
/// cache and the remembered profile resolutions (`profile::remembered`) trust: anyone who
/// can write either could swap credentials or the profiles a run uses.
pub(crate) fn privacy_problem(meta: &Metadata, what: &str) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    problem_with(
        meta.uid(),
        meta.mode(),
        nix::unistd::geteuid().as_raw(),
        what,
    )
}

/// [`privacy_problem`] for an owner and mode, as seen by user `me`.
pub(crate) fn problem_with(owner: u32, mode: u32, me: u32, what: &str) -> Option<String> {
    if owner != me {
        return Some(format!("{what} is owned by another user (uid {owner})"));
    }
    let mode = mode & 0o777;
    if mode & 0o077 != 0 {
        return Some(format!("{what} is open to other users (mode {mode:o})"));
    }
    None
}

/// Reads a file mfa-exec keeps privately: not through a symlink, never blocking on a FIFO,
/// only a regular file of ours, closed to others, of at most `max` bytes. Ok(None) when there
/// is none; the refusal ends with what to do ("remove it").
pub(crate) fn read_private(path: &Path, max: u64) -> Result<Option<Vec<u8>>, String> {
    // Nothing kept privately is worth keeping that mfa-exec cannot read.
    let refused = |e: Refused| format!("{e}; remove it");
    let Some((file, meta)) = open_regular(path, Links::Refuse, max).map_err(refused)? else {
        return Ok(None);
    };
    if let Some(problem) = privacy_problem(&meta, &path.display().to_string()) {
        return Err(problem);
    }
    read_bounded(file, path, max).map(Some).map_err(refused)
}

/// Temp file in the same directory, fsync, rename over the target, fsync the directory. The
/// file gets `mode`, or with None keeps the mode it had (0600 when new). A symlink at `path`
/// itself is replaced, never written through: the cache entries and `--qr-png`. The files a
/// user owns and edits (the profile files, the keyring record) go through [`locked::edit`],
/// which follows links and keeps the owner.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], mode: Option<u32>) -> Result<()> {
    let dir = parent_dir(path);
    if !dir.exists() {
        create_private_dir(&dir)?;
    }
    let mode = mode.unwrap_or_else(|| match fs::metadata(path) {
        Ok(meta) => meta.permissions().mode() & 0o7777,
        Err(_) => 0o600,
    });
    replace(path, bytes, mode, None)
}

/// The directory a file is in (`.` for a bare name).
fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// A missing directory for a new file, and its missing parents: 0700.
fn create_private_dir(dir: &Path) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {}", dir.display(), io_reason(&e)))
}

/// `.NAME.PID.RANDOM.tmp` beside `path`: the cache tells a dead writer's leftover by the pid,
/// and [`locked::edit`] removes those of the file it edits.
fn temporary_path(path: &Path) -> Result<PathBuf> {
    let name = path
        .file_name()
        .map_or_else(|| "profile".into(), |n| n.to_string_lossy().into_owned());
    let mut suffix = [0u8; 6];
    getrandom::fill(&mut suffix)
        .map_err(|e| anyhow::anyhow!("no randomness for a temporary file name: {e}"))?;
    let suffix: String = suffix.iter().map(|b| format!("{b:02x}")).collect();
    Ok(parent_dir(path).join(format!(".{name}.{}.{suffix}.tmp", std::process::id())))
}

/// Replaces `path` with a file holding `bytes`, with `mode` and, when given, this owner and
/// group. The temporary file beside it is created with the final mode and given its owner and
/// group while still empty, so at no moment does it let anyone read more than the final file
/// will; it is removed on every error.
fn replace(path: &Path, bytes: &[u8], mode: u32, owner: Option<(u32, u32)>) -> Result<()> {
    let tmp = temporary_path(path)?;
    let dir = parent_dir(path);
    let result = (|| -> Result<()> {
        let cannot_write = |e: std::io::Error| {
            anyhow::anyhow!("cannot write {}: {}", path.display(), io_reason(&e))
        };
        let f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode & 0o777)
            .open(&tmp)
            .map_err(cannot_write)?;
        if let Some((uid, gid)) = owner {
            keep_owner(&f, uid, gid).map_err(|e| {
                anyhow::anyhow!(
                    "cannot give the new {} its owner and group back (uid {uid}, gid {gid}): {}; edit it as its owner, or as root",
                    path.display(),
                    e.desc()
                )
            })?;
        }
        // Exactly the mode it is to have: the umask narrowed the one asked for above, and a
        // change of owner clears set-id bits.
        f.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(cannot_write)?;
        (&f).write_all(bytes).map_err(cannot_write)?;
        f.sync_all().map_err(cannot_write)?;
        fs::rename(&tmp, path).map_err(cannot_write)?;
        if let Ok(d) = File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Gives an open file this owner and group, when it does not have them already (root editing
/// a user's file, through sudo; a user's file in one of their other groups).
fn keep_owner(file: &File, uid: u32, gid: u32) -> Result<(), nix::errno::Errno> {
    use std::os::unix::fs::MetadataExt;
    let meta = file.metadata().map_err(|_| nix::errno::Errno::EIO)?;
    let uid = (meta.uid() != uid).then(|| nix::unistd::Uid::from_raw(uid));
    let gid = (meta.gid() != gid).then(|| nix::unistd::Gid::from_raw(gid));
    if uid.is_none() && gid.is_none() {
        return Ok(());
    }
    nix::unistd::fchown(file, uid, gid)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX_SIZE: u64 = 1 << 20;

    /// The whole text of a regular file of at most `max` bytes; Ok(None) when it does not exist.
    fn read_text(path: &Path, links: Links, max: u64) -> Result<Option<String>, Refused> {
        let Some((file, _)) = open_regular(path, links, max)? else {
            return Ok(None);
        };
        let bytes = read_bounded(file, path, max)?;
        Ok(Some(String::from_utf8(bytes).expect("UTF-8 test file")))
    }

    #[test]
    fn fifos_devices_and_big_files_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let err = read_text(&fifo, Links::Refuse, MAX_SIZE).unwrap_err();
        assert!(err.0.contains("not a regular file"), "{err}");
        let err = read_text(Path::new("/dev/zero"), Links::Follow, MAX_SIZE).unwrap_err();
        assert!(err.0.contains("not a regular file"), "{err}");
        let big = dir.path().join("big");
        File::create(&big).unwrap().set_len(2 << 30).unwrap();
        let err = read_text(&big, Links::Follow, MAX_SIZE).unwrap_err();
        assert!(err.0.ends_with("big is larger than 1 MB"), "{err}");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&big, &link).unwrap();
        assert!(read_text(&link, Links::Refuse, MAX_SIZE).is_err());
        let ok = dir.path().join("ok");
        std::fs::write(&ok, "hello").unwrap();
        assert_eq!(
            read_text(&ok, Links::Refuse, MAX_SIZE).unwrap().as_deref(),
            Some("hello")
        );
        assert!(read_text(&dir.path().join("none"), Links::Refuse, 10)
            .unwrap()
            .is_none());
    }
}
