//! The run history: one JSON line per run (and, with `--proxy`, one per request the proxy
//! handled), appended to `$XDG_STATE_HOME/mfa-exec/history.jsonl`, so that afterwards a user
//! can tell which command got which role when, and what it did with it.
//!
//! What a line may hold is fixed by the types here: times, the profile, the ARN acted as, the
//! mode, whether a code was spent, the command's file name (never its arguments, which can
//! hold secrets), exit status and duration; for a request its service, operation, status and
//! byte counts. Never a key, token, code, signature or body.
//!
//! Writing must cost a cache hit almost nothing and never fail a run:
//!
//! - **One append.** A record is one `write` on an `O_APPEND` descriptor: the kernel puts each
//!   such write at the end whole, so parallel runs never interleave their lines. No line of
//!   the file is read on a run.
//! - **Private.** The directory is made 0700 and the file 0600; found open to others they are
//!   closed again (they are ours); owned by someone else, or a symlink or FIFO at the path, the
//!   record is not written.
//! - **Bounded.** When an append leaves the file past [`DEFAULT_MAX`] bytes
//!   (`MFA_EXEC_HISTORY_MAX`), the newest half is kept: read from the end, written to a
//!   temporary file and renamed over the history, under an exclusive `flock` of the file.
//!   Appenders hold a shared `flock` while they write, and one that finds its file renamed
//!   away (no links left) opens the new one, so no line is lost to a trim.
//! - **Never in the way.** A history that cannot be written (a read-only directory, a full
//!   disk, a lock held too long) is one warning line on stderr, once, and the run goes on.
//!
//! `MFA_EXEC_HISTORY=off` turns it off, and exec mode then replaces itself with the command as
//! it did before history existed. Reading for `mfa-exec history` is [`read`]'s.

pub(crate) mod read;

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

/// The history file's name in the state directory.
pub(crate) const FILE: &str = "history.jsonl";
/// Past this size the oldest half is dropped: about 20,000 runs of a few hundred bytes.
pub(crate) const DEFAULT_MAX: u64 = 4 * 1024 * 1024;
/// The smallest bound `MFA_EXEC_HISTORY_MAX` may set: a few records.
pub(crate) const MIN_MAX: u64 = 4 * 1024;
/// How long an append waits for a trim by another run before giving up on its record.
const LOCK_WAIT: Duration = Duration::from_secs(2);

/// Where the history is kept and how large it may grow; None from the environment when the
/// user turned it off.
#[derive(Clone, Debug)]
pub(crate) struct History {
    pub(crate) dir: PathBuf,
    pub(crate) max: u64,
}

/// How a run handed the credentials on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Mode {
    Exec,
    PrintEnv,
    CredentialProcess,
    Server,
    Proxy,
    Console,
}

impl Mode {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Mode::Exec => "exec",
            Mode::PrintEnv => "print-env",
            Mode::CredentialProcess => "credential-process",
            Mode::Server => "server",
            Mode::Proxy => "proxy",
            Mode::Console => "console",
        }
    }
}

/// Where the run's credentials came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Got {
    /// The cache served them: no STS call, no code.
    Cache,
    /// STS accepted an MFA code this run.
    Code,
    /// STS was called without a code (a role from the cached MFA session, web identity).
    Sts,
}

impl Got {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Got::Cache => "cache",
            Got::Code => "code",
            Got::Sts => "sts",
        }
    }
}

/// One line of the history. The field names are what `history --json` shows: keep them.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub(crate) enum Line {
    Run(RunRecord),
    Request(RequestRecord),
    /// A line of a later version's kind: skipped, not a damaged line.
    #[serde(other)]
    Unknown,
}

/// A run, written when it ends.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct RunRecord {
    /// What its requests name: the pid and the start in milliseconds.
    pub(crate) id: String,
    /// Unix milliseconds at the start.
    pub(crate) start_ms: u64,
    pub(crate) profile: Option<String>,
    /// The role it acted as, or for an MFA session of a user the user's MFA device.
    pub(crate) arn: Option<String>,
    pub(crate) mode: Mode,
    /// None when the run ended before it had credentials.
    pub(crate) credentials: Option<Got>,
    /// The command's file name (argv[0] without its directory), never its arguments.
    pub(crate) command: Option<String>,
    /// mfa-exec's exit status: the command's, 128 + n for death by signal n, 125 for
    /// mfa-exec's own failure.
    pub(crate) status: u8,
    /// The signal the command died of, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) signal: Option<i32>,
    pub(crate) duration_ms: u64,
}

/// A request the proxy handled for a run, written as it is answered.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct RequestRecord {
    /// The id of its run.
    pub(crate) run: String,
    /// Unix milliseconds when it arrived.
    pub(crate) time_ms: u64,
    pub(crate) service: String,
    pub(crate) operation: String,
    pub(crate) status: u16,
    pub(crate) bytes_in: u64,
    pub(crate) bytes_out: u64,
    /// Why the proxy refused it itself; None when it was forwarded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) refused: Option<String>,
}

/// One request `--proxy` answered (forwarded or refused), recorded under its run; never a
/// key, token, signature or body.
#[derive(Clone, Debug)]
pub(crate) struct ProxiedRequest {
    pub(crate) at: SystemTime,
    /// From the credential scope, e.g. "s3", "sts" (empty when the request was not signed).
    pub(crate) service: String,
    /// From `Action=`, `X-Amz-Target`, or S3's method and path for its common operations, else
    /// "METHOD service".
    pub(crate) operation: String,
    /// What the command got back.
    pub(crate) status: u16,
    /// Request body bytes from the command.
    pub(crate) bytes_in: u64,
    /// Response body bytes to the command.
    pub(crate) bytes_out: u64,
    /// Why the proxy refused it itself (bad signature, unsigned, event stream...), None when
    /// forwarded.
    pub(crate) refused: Option<String>,
}

/// A run being recorded: what is known at its start, filled in as the run learns more, and
/// written once by [`Run::finish`].
#[derive(Debug)]
pub(crate) struct Run {
    id: String,
    start: SystemTime,
    started: Instant,
    pub(crate) mode: Mode,
    pub(crate) command: Option<String>,
    pub(crate) profile: Option<String>,
    pub(crate) arn: Option<String>,
    pub(crate) credentials: Option<Got>,
}

impl Run {
    /// A run starting now; `argv0`: the command it runs, of which only the file name is kept.
    pub(crate) fn start(mode: Mode, argv0: Option<&std::ffi::OsStr>) -> Run {
        let start = SystemTime::now();
        Run {
            id: format!("{}-{}", std::process::id(), unix_ms(start)),
            start,
            started: Instant::now(),
            mode,
            command: argv0.map(command_name),
            profile: None,
            arn: None,
            credentials: None,
        }
    }

    /// What its requests name.
    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    /// The record of the run, ended now with `status` (and the signal that ended it).
    pub(crate) fn record(&self, status: u8, signal: Option<i32>) -> RunRecord {
        RunRecord {
            id: self.id.clone(),
            start_ms: unix_ms(self.start),
            profile: self.profile.clone(),
            arn: self.arn.clone(),
            mode: self.mode,
            credentials: self.credentials,
            command: self.command.clone(),
            status,
            signal,
            duration_ms: u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
        }
    }
}

/// argv[0]'s file name: `/usr/bin/aws` is `aws`. The directory can name a user or a project,
/// and the arguments (never kept) can hold secrets.
fn command_name(argv0: &std::ffi::OsStr) -> String {
    let path = Path::new(argv0);
    path.file_name()
        .unwrap_or(argv0)
        .to_string_lossy()
        .chars()
        .take(256)
        .collect()
}

pub(crate) fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl History {
    /// The history file.
    pub(crate) fn path(&self) -> PathBuf {
        self.dir.join(FILE)
    }

    /// Appends the run's record. Never fails the run: a record that cannot be written is one
    /// warning on stderr (once a process).
    pub(crate) fn record_run(&self, record: &RunRecord) {
        self.append(&Line::Run(record.clone()));
    }

    /// Appends one request the proxy handled for the run `run_id` (see [`Run::id`]), as it is
    /// answered: a long run's requests are in the history while it still runs.
    pub(crate) fn record_request(&self, run_id: &str, request: &ProxiedRequest) {
        self.append(&Line::Request(RequestRecord {
            run: run_id.to_string(),
            time_ms: unix_ms(request.at),
            service: request.service.clone(),
            operation: request.operation.clone(),
            status: request.status,
            bytes_in: request.bytes_in,
            bytes_out: request.bytes_out,
            refused: request.refused.clone(),
        }));
    }

    fn append(&self, line: &Line) {
        let Ok(mut bytes) = serde_json::to_vec(line) else {
            return;
        };
        bytes.push(b'\n');
        if let Err(why) = self.try_append(&bytes) {
            warn_once(&format!(
                "this run is not in the history: {why} (the run goes on; MFA_EXEC_HISTORY=off stops recording)"
            ));
        }
    }

    fn try_append(&self, bytes: &[u8]) -> Result<(), String> {
        let path = self.path();
        // A trim renames a new file over the one an appender opened: it then opens the path
        // again. Twice is plenty; a third time means something else keeps replacing it.
        for _ in 0..3 {
            let file = self.open_for_append(&path)?;
            let file = lock_waiting(file, FlockArg::LockSharedNonblock)
                .ok_or_else(|| format!("{} is locked by another process", path.display()))?;
            let meta = file
                .metadata()
                .map_err(|e| format!("cannot read {}: {}", path.display(), reason(&e)))?;
            if meta.nlink() == 0 {
                continue;
            }
            let written = (&*file)
                .write(bytes)
                .map_err(|e| format!("cannot write {}: {}", path.display(), reason(&e)))?;
            if written != bytes.len() {
                return Err(format!(
                    "{} is full (a record was cut short)",
                    path.display()
                ));
            }
            let size = meta.len() + bytes.len() as u64;
            drop(file);
            if size > self.max {
                self.trim(&path);
            }
            return Ok(());
        }
        Err(format!("{} keeps being replaced", path.display()))
    }

    /// Opens the history for appending, making the directory (0700) and the file (0600) when
    /// they are missing, and closing either to others when they are not.
    fn open_for_append(&self, path: &Path) -> Result<File, String> {
        let open = || {
            OpenOptions::new()
                .append(true)
                .create(true)
                .mode(0o600)
                // A symlink planted at the path is not followed, a FIFO does not block.
                .custom_flags(
                    (nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_NONBLOCK).bits(),
                )
                .open(path)
        };
        let file = match open() {
            Err(e) if e.kind() == ErrorKind::NotFound => {
                make_private_dir(&self.dir)?;
                open()
            }
            other => {
                keep_dir_private(&self.dir)?;
                other
            }
        }
        .map_err(|e| format!("cannot open {}: {}", path.display(), reason(&e)))?;
        let meta = file
            .metadata()
            .map_err(|e| format!("cannot read {}: {}", path.display(), reason(&e)))?;
        if !meta.is_file() {
            return Err(format!("{} is not a regular file", path.display()));
        }
        if meta.uid() != nix::unistd::geteuid().as_raw() {
            return Err(format!(
                "{} is owned by another user (uid {})",
                path.display(),
                meta.uid()
            ));
        }
        if meta.mode() & 0o077 != 0 {
            file.set_permissions(fs::Permissions::from_mode(0o600))
                .map_err(|e| format!("cannot make {} private: {}", path.display(), reason(&e)))?;
        }
        Ok(file)
    }

    /// Keeps the newest half of the history: its last `max / 2` bytes from the first whole
    /// line on, written beside it and renamed over it under an exclusive lock. Another run
    /// that trimmed first leaves nothing to do.
    fn trim(&self, path: &Path) {
        let result = (|| -> Result<(), String> {
            let file = OpenOptions::new()
                .read(true)
                .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
                .open(path)
                .map_err(|e| format!("cannot open {}: {}", path.display(), reason(&e)))?;
            let Some(mut file) = lock_waiting(file, FlockArg::LockExclusiveNonblock) else {
                return Err(format!("{} is locked by another process", path.display()));
            };
            let meta = file.metadata().map_err(|e| reason(&e))?;
            if meta.nlink() == 0 || meta.len() <= self.max {
                return Ok(());
            }
            let keep = self.max / 2;
            file.seek(SeekFrom::Start(meta.len() - keep))
                .map_err(|e| reason(&e))?;
            let mut tail = Vec::with_capacity(keep as usize);
            (&mut *file)
                .take(keep)
                .read_to_end(&mut tail)
                .map_err(|e| reason(&e))?;
            // From the first whole line: the cut fell inside one.
            let from = tail
                .iter()
                .position(|&b| b == b'\n')
                .map_or(tail.len(), |i| i + 1);
            crate::files::write_atomic(path, &tail[from..], Some(0o600))
                .map_err(|e| format!("{e:#}"))?;
            Ok(())
        })();
        if let Err(why) = result {
            warn_once(&format!(
                "the history could not be cut down to its bound: {why}"
            ));
        }
    }
}

/// Takes the lock, waiting a little for another run's trim (or, for a trim, for the appends
/// under way); None when it cannot be had in time.
fn lock_waiting(mut file: File, arg: FlockArg) -> Option<Flock<File>> {
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        match Flock::lock(file, arg) {
            Ok(locked) => return Some(locked),
            Err((back, nix::errno::Errno::EWOULDBLOCK)) if Instant::now() < deadline => {
                file = back;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(_) => return None,
        }
    }
}

/// Makes the state directory 0700 (and its missing parents).
fn make_private_dir(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::DirBuilderExt;
    match fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
    {
        Ok(()) => keep_dir_private(dir),
        Err(e) => Err(format!("cannot create {}: {}", dir.display(), reason(&e))),
    }
}

/// The state directory must be ours and closed to others: opened up, it is closed again.
fn keep_dir_private(dir: &Path) -> Result<(), String> {
    let meta = fs::symlink_metadata(dir)
        .map_err(|e| format!("cannot read {}: {}", dir.display(), reason(&e)))?;
    if !meta.is_dir() {
        return Err(format!("{} is not a directory", dir.display()));
    }
    if meta.uid() != nix::unistd::geteuid().as_raw() {
        return Err(format!(
            "{} is owned by another user (uid {})",
            dir.display(),
            meta.uid()
        ));
    }
    if meta.mode() & 0o077 != 0 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| format!("cannot make {} private: {}", dir.display(), reason(&e)))?;
    }
    Ok(())
}

fn reason(e: &std::io::Error) -> String {
    crate::files::io_reason(e)
}

/// One warning a process, whatever goes wrong how often (a proxy's thousand requests).
fn warn_once(message: &str) {
    static WARNED: AtomicBool = AtomicBool::new(false);
    if !WARNED.swap(true, Ordering::SeqCst) {
        crate::terminal::warn(message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(max: u64) -> (tempfile::TempDir, History) {
        let tmp = tempfile::tempdir().unwrap();
        let history = History {
            dir: tmp.path().join("state").join("mfa-exec"),
            max,
        };
        (tmp, history)
    }

    fn lines(history: &History) -> Vec<Line> {
        fs::read_to_string(history.path())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn request(operation: &str, refused: Option<&str>) -> ProxiedRequest {
        ProxiedRequest {
            at: SystemTime::now(),
            service: "s3".into(),
            operation: operation.into(),
            status: if refused.is_some() { 403 } else { 200 },
            bytes_in: 1024,
            bytes_out: 7,
            refused: refused.map(String::from),
        }
    }

    #[test]
    fn a_proxied_runs_requests_are_appended_as_they_come_naming_their_run() {
        let (_tmp, history) = history(DEFAULT_MAX);
        let mut run = Run::start(Mode::Proxy, Some("/usr/bin/aws".as_ref()));
        run.profile = Some("prod".into());
        history.record_request(run.id(), &request("PutObject", None));
        history.record_request(
            run.id(),
            &request("GET s3", Some("the signature does not verify")),
        );
        // Both are there before the run ends.
        assert_eq!(lines(&history).len(), 2);
        history.record_run(&run.record(0, None));
        let lines = lines(&history);
        let [Line::Request(put), Line::Request(refused), Line::Run(recorded)] = &lines[..] else {
            panic!("{lines:?}");
        };
        assert_eq!(put.run, recorded.id);
        assert_eq!(put.operation, "PutObject");
        assert_eq!((put.status, put.bytes_in, put.bytes_out), (200, 1024, 7));
        assert_eq!(put.refused, None);
        assert_eq!(refused.status, 403);
        assert_eq!(
            refused.refused.as_deref(),
            Some("the signature does not verify")
        );
        assert_eq!(recorded.command.as_deref(), Some("aws"));
        assert_eq!(recorded.mode, Mode::Proxy);
    }

    #[test]
    fn thousands_of_requests_append_and_the_file_stays_bounded_with_whole_lines() {
        let (_tmp, history) = history(64 * 1024);
        let run = Run::start(Mode::Proxy, Some("terraform".as_ref()));
        for _ in 0..3000 {
            history.record_request(run.id(), &request("PutObject", None));
        }
        let size = fs::metadata(history.path()).unwrap().len();
        assert!(size <= 64 * 1024, "{size}");
        assert!(size >= 16 * 1024, "{size}");
        // Every line whole and parseable; the newest kept.
        let lines = lines(&history);
        assert!(lines.len() > 100, "{}", lines.len());
    }

    #[test]
    fn the_directory_and_file_are_private_and_closed_again_when_opened_up() {
        let (_tmp, history) = history(DEFAULT_MAX);
        let run = Run::start(Mode::Exec, Some("true".as_ref()));
        history.record_run(&run.record(0, None));
        let mode = |p: &Path| fs::metadata(p).unwrap().mode() & 0o777;
        assert_eq!(mode(&history.dir), 0o700);
        assert_eq!(mode(&history.path()), 0o600);
        fs::set_permissions(&history.dir, fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(history.path(), fs::Permissions::from_mode(0o644)).unwrap();
        history.record_run(&run.record(0, None));
        assert_eq!(mode(&history.dir), 0o700);
        assert_eq!(mode(&history.path()), 0o600);
    }

    #[test]
    fn only_the_commands_file_name_is_kept() {
        let run = Run::start(Mode::Exec, Some("/home/alice/bin/deploy".as_ref()));
        assert_eq!(run.command.as_deref(), Some("deploy"));
    }
}
