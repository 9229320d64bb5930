//! Reading a file mfa-exec did not write this run, without trusting what sits at the path.
//!
//! A FIFO at a cache entry's path would block the open (and every later run) forever, a
//! device like `/dev/zero` never ends, and a 2 GB sparse file is read whole by
//! `read_to_string`. So: open non-blocking (a FIFO with no writer opens at once), optionally
//! without following a symlink, `fstat` what was opened (not the path, which may change in
//! between), refuse anything but a regular file of a sane size, and read at most that size.
// The AWS profile files still have their own bounded reader in `profile.rs`, whose messages
// point at AWS_CONFIG_FILE; `Links::Follow` is for such files, which may be links.

use std::fs::{File, Metadata, OpenOptions};
use std::io::{ErrorKind, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::fcntl::OFlag;

/// Whether a symlink at the path itself may be followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Links {
    #[allow(dead_code)] // no caller outside the tests yet: profile.rs reads on its own
    Follow,
    /// O_NOFOLLOW: a symlink fails the open (for files in the private cache directory).
    Refuse,
}

/// Why a file was not read; the Display text names the path and says what is wrong.
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
        Err(e) => return Err(Refused(format!("cannot open {}: {e}", path.display()))),
    };
    let meta = file
        .metadata()
        .map_err(|e| Refused(format!("cannot read {}: {e}", path.display())))?;
    if !meta.is_file() {
        return Err(Refused(format!(
            "{} is not a regular file (a FIFO, device or directory); remove it",
            path.display()
        )));
    }
    if meta.len() > max {
        return Err(Refused(format!(
            "{} is {} bytes, more than the {max} mfa-exec reads; remove it",
            path.display(),
            meta.len()
        )));
    }
    Ok(Some((file, meta)))
}

/// Reads at most `max` bytes of an opened file (it may grow after the check).
pub(crate) fn read_bounded(file: File, path: &Path, max: u64) -> Result<Vec<u8>, Refused> {
    let mut bytes = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Refused(format!("cannot read {}: {e}", path.display())))?;
    if bytes.len() as u64 > max {
        return Err(Refused(format!(
            "{} grew past {max} bytes while being read; remove it",
            path.display()
        )));
    }
    Ok(bytes)
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
        assert!(err.0.contains("more than"), "{err}");
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
