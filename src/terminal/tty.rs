//! The one controlling terminal: every prompt (a run's MFA code, `device add`'s two codes and
//! QR code, `keys add`'s keys) reads and writes `/dev/tty` through here, never stdin or stdout,
//! so prompts work inside `eval "$(mfa-exec --print-env)"`, under an SDK's `credential_process`
//! (which captures both stdout and stderr) and when stdout is piped.
//!
//! Secrets are typed with echo off. Echo goes off *before* the prompt is printed, so nothing
//! typed at once is shown, and comes back when the read ends. A signal's default action never
//! runs destructors, so from the first hidden read on, one watcher thread takes SIGINT, SIGTERM
//! and SIGHUP: it puts the terminal back, runs the cleanup a command registered (`device add`
//! deletes a device it created and has not enabled), then performs the signal's default action.
//! The process thus always ends by the signal it got, as a shell expects: Ctrl-C is status 130.
//! (signal-hook cannot hand a signal back to the default disposition, hence one watcher for the
//! rest of the run; `--server` asks it to stand aside and forwards signals to its command.)

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use anyhow::{bail, Result};
use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg, Termios};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

/// The terminal and its settings from before a hidden read, while one is on screen.
static SAVED: Mutex<Option<(File, Termios)>> = Mutex::new(None);
/// What a command must undo before the process dies of a signal.
static CLEANUP: Mutex<Option<Cleanup>> = Mutex::new(None);
static WATCHER: OnceLock<()> = OnceLock::new();
/// Set by `--server`, which forwards signals to its child and must outlive them.
static STAND_ASIDE: AtomicBool = AtomicBool::new(false);

/// A command's cleanup, given why the run is ending ("interrupted", "terminated", "the
/// terminal went away"). It runs on the watcher thread before the signal's default action,
/// and returns whether the run may end now: false when the command is past the point where
/// ending it would lose something and finishes on its own.
type Cleanup = Box<dyn Fn(&str) -> bool + Send>;

/// The controlling terminal.
pub(crate) struct Tty {
    file: File,
}

impl Tty {
    /// Opens `/dev/tty`; None when the process has no terminal (the caller says what to do
    /// instead, which differs by command).
    pub(crate) fn open() -> Option<Tty> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/tty")
            .ok()
            .map(|file| Tty { file })
    }

    /// Writes text as it is (the caller has made outside text safe).
    pub(crate) fn say(&self, text: &str) -> Result<()> {
        match (&self.file)
            .write_all(text.as_bytes())
            .and_then(|_| (&self.file).flush())
        {
            Ok(()) => Ok(()),
            Err(_) => bail!("the terminal is gone"),
        }
    }

    /// A line typed with echo on (an access key id), without its line ending.
    pub(crate) fn read_line(&self, prompt: &str) -> Result<String> {
        self.say(prompt)?;
        let mut line = String::new();
        let mut reader = BufReader::new(&self.file);
        loop {
            match reader.read_line(&mut line) {
                Ok(0) => bail!("the terminal closed"),
                Ok(_) => return Ok(line.trim().to_string()),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => wait_for_the_watcher(),
                Err(_) => bail!("the terminal is gone"),
            }
        }
    }

    /// A line typed with echo off (a code, a secret), trimmed. Echo is off before the prompt
    /// is shown and back on when this returns, or when a signal ends the run.
    pub(crate) fn read_hidden(&self, prompt: &str) -> Result<String> {
        let _quiet = EchoOff::new(&self.file);
        self.say(prompt)?;
        loop {
            let Ok(input) = self.file.try_clone() else {
                bail!("the terminal is gone");
            };
            // rpassword only reads the line: the guard alone changes the terminal's settings,
            // so nothing can turn echo off again after it was restored.
            let config = rpassword::ConfigBuilder::new()
                .input_reader(input)
                .output_discard()
                .build();
            match rpassword::read_password_with_config(config) {
                Ok(text) => return Ok(text.trim().to_string()),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => wait_for_the_watcher(),
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    bail!("the terminal closed")
                }
                Err(_) => bail!("the terminal is gone"),
            }
        }
    }
}

/// A read was interrupted by a signal: the watcher is restoring the terminal and will end the
/// run as the signal says; an error of our own must not race it.
fn wait_for_the_watcher() {
    std::thread::sleep(Duration::from_millis(200));
}

/// Echo off while alive; the previous settings back on drop or on a signal.
struct EchoOff;

impl EchoOff {
    fn new(tty: &File) -> EchoOff {
        if let (Ok(termios), Ok(copy)) = (tcgetattr(tty), tty.try_clone()) {
            watch();
            let mut quiet = termios.clone();
            quiet.local_flags.remove(LocalFlags::ECHO);
            quiet.local_flags.insert(LocalFlags::ECHONL);
            if let Ok(mut saved) = SAVED.lock() {
                *saved = Some((copy, termios));
            }
            let _ = tcsetattr(tty, SetArg::TCSANOW, &quiet);
        }
        EchoOff
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        if let Some((tty, termios)) = SAVED.lock().ok().and_then(|mut s| s.take()) {
            let _ = tcsetattr(&tty, SetArg::TCSANOW, &termios);
        }
    }
}

/// Registers what must be undone if a signal ends the run from now on, until the returned
/// guard drops. The cleanup may block (an IAM call in flight decides what to undo): the
/// process dies only after it returns.
pub(crate) fn on_signal(cleanup: impl Fn(&str) -> bool + Send + 'static) -> CleanupGuard {
    watch();
    if let Ok(mut slot) = CLEANUP.lock() {
        *slot = Some(Box::new(cleanup));
    }
    CleanupGuard
}

/// Unregisters the cleanup when dropped.
pub(crate) struct CleanupGuard;

impl Drop for CleanupGuard {
    fn drop(&mut self) {
        if let Ok(mut slot) = CLEANUP.lock() {
            *slot = None;
        }
    }
}

/// From here on signals are the caller's to handle (`--server` forwards them to its command).
pub(crate) fn leave_signals_to_the_caller() {
    STAND_ASIDE.store(true, Ordering::SeqCst);
}

fn watch() {
    WATCHER.get_or_init(|| {
        let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
            return;
        };
        std::thread::spawn(move || {
            for signal in signals.forever() {
                if STAND_ASIDE.load(Ordering::SeqCst) {
                    continue;
                }
                if let Some((tty, termios)) = SAVED.lock().ok().and_then(|mut s| s.take()) {
                    let _ = tcsetattr(&tty, SetArg::TCSANOW, &termios);
                    let _ = (&tty).write_all(b"\n");
                }
                let why = match signal {
                    SIGINT => "interrupted",
                    SIGHUP => "the terminal went away",
                    _ => "terminated",
                };
                // Taken out while it runs, not borrowed: the command's own code may drop its
                // guard meanwhile without waiting for it.
                let cleanup = CLEANUP.lock().ok().and_then(|mut c| c.take());
                if let Some(cleanup) = cleanup {
                    if !cleanup(why) {
                        if let Ok(mut slot) = CLEANUP.lock() {
                            slot.get_or_insert(cleanup);
                        }
                        continue;
                    }
                }
                let _ = signal_hook::low_level::emulate_default_handler(signal);
            }
        });
    });
}
