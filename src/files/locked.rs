//! Edits of a file its owner keeps and may share with other tools: `~/.aws/config`,
//! `~/.aws/credentials` and the keyring record. Each edit reads the file, changes it and
//! replaces it (a temporary file beside it, then a rename), and nothing may be lost on the way:
//!
//! - **Locked.** An exclusive `flock` on the directory that holds the real file is held from
//!   before the read until after the rename, so two mfa-exec edits (two `device add`s finishing
//!   at once, a `keys add` beside them) run one after the other and each reads what the other
//!   wrote. The directory and not the file: every edit replaces the file, so a lock on it would
//!   guard an inode that is no longer there, and a lock file beside it would be one more file in
//!   a dotfiles repository. The kernel drops the lock when its holder dies. An editor that does
//!   not take it (vim, a script) is not kept out: the rename still makes its write or ours
//!   whole, but one of the two is lost.
//! - **Links kept.** A symbolic link (dotfiles) is followed hop by hop, relative links against
//!   their own directory, to the real file, which is the one replaced: the link stays a link. A
//!   dangling link is refused rather than guessed at.
//! - **Mode, owner and group kept.** The temporary file gets them before it holds a byte, so it
//!   never shows anyone more than the file will (an edit through `sudo -E` leaves the user's
//!   file the user's).
//! - **Nothing left behind.** The temporary file is removed on every error. A killed run can
//!   still leave one (`.NAME.PID.RANDOM.tmp`, possibly holding other profiles' keys): the next
//!   edit of that file removes every such leftover, safely, since under the lock no other
//!   mfa-exec edit is writing one.
//!
//! [`check_writable`] answers beforehand whether an edit can succeed, for commands that must not
//! start what they cannot finish (`device add` creates a device in IAM before the edit).

use std::fs::{self, File};
use std::io::ErrorKind;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use nix::fcntl::{Flock, FlockArg, OFlag};

use super::{
    create_private_dir, io_reason, open_regular, parent_dir, read_bounded, replace, Links,
};
use crate::terminal::warn;

/// Links followed before a chain counts as a loop (Linux's own limit).
const MAX_LINKS: usize = 40;
/// An edit takes milliseconds; a run holding the lock this long is stuck (stopped with
/// Ctrl-Z, say).
const LOCK_WAIT: Duration = Duration::from_secs(10);

/// Replaces the file at `path` (or at the end of its links) with what `change` makes of its
/// bytes (None: no file yet). `change` returns None to leave the file as it is; it may be called
/// twice (once more after a missing directory was made). The new file has `mode`, or keeps the
/// mode it had (0600 when new); it keeps its owner and group. A missing file is created, in
/// a missing directory created 0700.
pub(crate) fn edit(
    path: &Path,
    max: u64,
    mode: Option<u32>,
    mut change: impl FnMut(Option<Vec<u8>>) -> Result<Option<Vec<u8>>>,
) -> Result<()> {
    let real = resolve(path)?;
    let dir = parent_dir(&real);
    if !dir.exists() {
        // Nothing to lock yet, and nothing to read: make the directory only for a new file.
        if change(None)?.is_none() {
            return Ok(());
        }
        create_private_dir(&dir)?;
    }
    let _lock = lock(&dir)?;
    remove_leftovers(&dir, &real);
    let (old, meta) = match open_regular(&real, Links::Follow, max).map_err(|e| anyhow!("{e}"))? {
        None => (None, None),
        Some((file, meta)) => (
            Some(read_bounded(file, &real, max).map_err(|e| anyhow!("{e}"))?),
            Some(meta),
        ),
    };
    let Some(new) = change(old)? else {
        return Ok(());
    };
    let mode = mode.unwrap_or_else(|| meta.as_ref().map_or(0o600, |m| m.mode() & 0o7777));
    replace(&real, &new, mode, meta.map(|m| (m.uid(), m.gid())))
}

/// Removes what killed edits of `path` left beside it (`.NAME.PID.RANDOM.tmp`), under the
/// lock, as the next [`edit`] would: for a command that finishes another's work without
/// editing the file again (`keys rotate` after a kill). A missing file or directory: nothing.
pub(crate) fn tidy(path: &Path) -> Result<()> {
    let real = resolve(path)?;
    let dir = parent_dir(&real);
    if !dir.exists() {
        return Ok(());
    }
    let _lock = lock(&dir)?;
    remove_leftovers(&dir, &real);
    Ok(())
}

/// Whether an [`edit`] of `path` could replace it now: links resolve, the file (when there is
/// one) opens for writing, and its directory (or the nearest one that exists, for a file in a
/// directory still to be made) lets a new file be created. Tried for real, so a read-only file
/// system, ACLs and root's privileges all count. The error says what to fix.
pub(crate) fn check_writable(path: &Path) -> Result<()> {
    let real = resolve(path)?;
    if real.exists() {
        fs::OpenOptions::new()
            .write(true)
            .custom_flags((OFlag::O_NONBLOCK | OFlag::O_CLOEXEC).bits())
            .open(&real)
            .map_err(|e| {
                anyhow!(
                    "{} cannot be written ({}): make it writable (chmod u+w {})",
                    real.display(),
                    io_reason(&e),
                    real.display()
                )
            })?;
    }
    let mut dir = parent_dir(&real);
    while !dir.exists() {
        dir = parent_dir(&dir);
    }
    let probe = super::temporary_path(&dir.join(real.file_name().unwrap_or_default()))?;
    match fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&probe)
    {
        Ok(_) => {
            let _ = fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => bail!(
            "the directory {} does not let mfa-exec create files ({}), and an edit of {} replaces it with a new file written there: make the directory writable (chmod u+w {})",
            dir.display(),
            io_reason(&e),
            real.display(),
            dir.display()
        ),
    }
}

/// The file an edit replaces: `path`, or the file at the end of its links. A path with nothing
/// at it is the file to create; a link to nothing is refused.
pub(crate) fn resolve(path: &Path) -> Result<PathBuf> {
    let mut current = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        match fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let to = fs::read_link(&current).map_err(|e| {
                    anyhow!("cannot read the link {}: {}", current.display(), io_reason(&e))
                })?;
                current = parent_dir(&current).join(to);
            }
            Ok(meta) if meta.is_file() => return Ok(current),
            Ok(_) => bail!("{} is not a regular file", current.display()),
            Err(e) if e.kind() == ErrorKind::NotFound && current == path => return Ok(current),
            Err(e) if e.kind() == ErrorKind::NotFound => bail!(
                "{} is a symbolic link to {}, which does not exist: create that file, or remove the link (mfa-exec then writes {} itself)",
                path.display(),
                current.display(),
                path.display()
            ),
            Err(e) => bail!("cannot read {}: {}", current.display(), io_reason(&e)),
        }
    }
    bail!(
        "{} is a loop of symbolic links: point it at a file",
        path.display()
    )
}

/// Takes the directory's lock, waiting at most [`LOCK_WAIT`]. None, with a warning, where
/// the file system has no locks (some network mounts): the edit goes on unlocked.
fn lock(dir: &Path) -> Result<Option<Flock<File>>> {
    let file = match File::open(dir) {
        Ok(f) => f,
        Err(e) => {
            warn(&format!(
                "cannot lock {} ({}); editing without a lock",
                dir.display(),
                io_reason(&e)
            ));
            return Ok(None);
        }
    };
    let deadline = Instant::now() + LOCK_WAIT;
    let mut file = file;
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Ok(Some(lock)),
            Err((f, nix::errno::Errno::EWOULDBLOCK)) if Instant::now() < deadline => {
                file = f;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => bail!(
                "another mfa-exec run has been editing a file in {} for {} s: try again once it is done (a run stopped with Ctrl-Z holds it until it ends)",
                dir.display(),
                LOCK_WAIT.as_secs()
            ),
            Err((_, e)) => {
                warn(&format!(
                    "cannot lock {} ({}); editing without a lock",
                    dir.display(),
                    e.desc()
                ));
                return Ok(None);
            }
        }
    }
}

/// Removes the temporary files earlier edits of `file` left (`.NAME.PID.RANDOM.tmp`, as
/// [`super::temporary_path`] names them). Called under the lock: none is being written.
fn remove_leftovers(dir: &Path, file: &Path) {
    let Some(name) = file.file_name().and_then(|n| n.to_str()) else {
        return;
    };
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let found = entry.file_name();
        if found.to_str().is_some_and(|f| is_temporary_of(f, name)) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// `.NAME.PID.RANDOM.tmp` with digits for PID and 12 hex digits for RANDOM.
fn is_temporary_of(found: &str, name: &str) -> bool {
    let Some(rest) = found
        .strip_prefix('.')
        .and_then(|f| f.strip_prefix(name))
        .and_then(|f| f.strip_prefix('.'))
        .and_then(|f| f.strip_suffix(".tmp"))
    else {
        return false;
    };
    let Some((pid, random)) = rest.split_once('.') else {
        return false;
    };
    !pid.is_empty()
        && pid.bytes().all(|b| b.is_ascii_digit())
        && random.len() == 12
        && random.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode_of(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    fn append(line: &'static str) -> impl FnMut(Option<Vec<u8>>) -> Result<Option<Vec<u8>>> {
        move |old| {
            let mut bytes = old.unwrap_or_default();
            bytes.extend_from_slice(line.as_bytes());
            Ok(Some(bytes))
        }
    }

    #[test]
    fn only_our_temporary_names_are_leftovers() {
        assert!(is_temporary_of(".config.123.0123456789ab.tmp", "config"));
        for other in [
            ".config.123.0123456789ab.tmp.bak",
            ".config.x.0123456789ab.tmp",
            ".config.123.short.tmp",
            ".credentials.123.0123456789ab.tmp",
            "config.123.0123456789ab.tmp",
            ".config.swp",
        ] {
            assert!(!is_temporary_of(other, "config"), "{other}");
        }
    }

    #[test]
    fn chains_of_relative_links_are_followed_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let dotfiles = dir.path().join("dotfiles");
        fs::create_dir(&dotfiles).unwrap();
        fs::write(dotfiles.join("real"), "a\n").unwrap();
        fs::set_permissions(dotfiles.join("real"), fs::Permissions::from_mode(0o640)).unwrap();
        std::os::unix::fs::symlink("real", dotfiles.join("middle")).unwrap();
        std::os::unix::fs::symlink("dotfiles/middle", dir.path().join("config")).unwrap();
        // A leftover of a killed edit of the real file, and someone else's file.
        fs::write(dotfiles.join(".real.99.0123456789ab.tmp"), "old keys").unwrap();
        fs::write(dotfiles.join(".real.swp"), "vim").unwrap();
        edit(&dir.path().join("config"), 1024, None, append("b\n")).unwrap();
        assert_eq!(fs::read_to_string(dotfiles.join("real")).unwrap(), "a\nb\n");
        assert!(fs::symlink_metadata(dir.path().join("config"))
            .unwrap()
            .is_symlink());
        assert!(fs::symlink_metadata(dotfiles.join("middle"))
            .unwrap()
            .is_symlink());
        assert_eq!(mode_of(&dotfiles.join("real")), 0o640);
        let mut names: Vec<String> = fs::read_dir(&dotfiles)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, [".real.swp", "middle", "real"]);
    }

    #[test]
    fn dangling_links_and_loops_are_refused_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("config");
        std::os::unix::fs::symlink("gone/config", &link).unwrap();
        let err = edit(&link, 1024, None, append("x")).unwrap_err();
        assert!(
            err.to_string()
                .contains("which does not exist: create that file"),
            "{err}"
        );
        assert!(check_writable(&link).is_err());
        assert!(!dir.path().join("gone").exists());
        let a = dir.path().join("a");
        std::os::unix::fs::symlink("b", &a).unwrap();
        std::os::unix::fs::symlink("a", dir.path().join("b")).unwrap();
        assert!(format!("{:#}", check_writable(&a).unwrap_err()).contains("loop"));
    }

    #[test]
    fn nothing_to_change_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new/dir/config");
        edit(&path, 1024, None, |_| Ok(None)).unwrap();
        assert!(!dir.path().join("new").exists());
        check_writable(&path).unwrap();
        edit(&path, 1024, None, append("x")).unwrap();
        assert_eq!(mode_of(&path), 0o600);
        assert_eq!(mode_of(&dir.path().join("new/dir")), 0o700);
    }
}
