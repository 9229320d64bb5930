//! Getting the MFA code: `--token-code`, else the token command (`mfa_process`), else a
//! prompt on the controlling terminal.
//!
//! The prompt reads and writes `/dev/tty`, never stdin/stdout, so it works inside
//! `eval "$(mfa-exec --print-env)"`, under an SDK's `credential_process` (which captures both
//! stdout and stderr) and when stdout is piped.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::process::{Command, Stdio};

use anyhow::{anyhow, bail, Context, Result};

use crate::settings::{validate_code, TokenSource};

/// The most of a token command's output that is read: a code and some whitespace.
const MAX_TOKEN_OUTPUT: u64 = 1024;

/// How many times the prompt asks before giving up.
pub(crate) const PROMPT_TRIES: u32 = 3;

pub(crate) struct CodeSource {
    source: TokenSource,
    serial: String,
    /// Whether a fresh code can be asked for after STS refused one.
    pub(crate) interactive: bool,
}

impl CodeSource {
    pub(crate) fn new(source: &TokenSource, serial: &str) -> CodeSource {
        CodeSource {
            interactive: matches!(source, TokenSource::Prompt),
            source: source.clone(),
            serial: serial.to_string(),
        }
    }

    /// The next code to send. `retry_note` is shown on the terminal before a re-prompt.
    pub(crate) fn next(&self, retry_note: Option<&str>) -> Result<String> {
        match &self.source {
            TokenSource::Given(code) => Ok(code.clone()),
            TokenSource::Command(cmd) => run_token_command(cmd),
            TokenSource::Prompt => prompt(&self.serial, retry_note),
            TokenSource::Unavailable => bail!(
                "a new MFA code is needed for {} and --no-prompt was given: run again without it, or pass --token-code",
                self.serial
            ),
        }
    }
}

/// The program a token command runs, for messages: the first word that is not a variable
/// assignment (`OATH_PASSWORD=hunter2 ykman oath accounts code …` names `ykman`). Nothing
/// else of the line is ever shown: it may hold a password.
fn program_name(cmd: &str) -> String {
    let is_assignment = |word: &str| {
        word.split_once('=').is_some_and(|(name, _)| {
            let mut chars = name.chars();
            chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
    };
    match cmd.split_whitespace().find(|w| !is_assignment(w)) {
        // A word with `=` or a quote in it is not plainly a program name; say less.
        Some(word) if !word.contains(['=', '\'', '"']) => crate::terminal::safe(word).into_owned(),
        _ => "sh".to_string(),
    }
}

fn run_token_command(cmd: &str) -> Result<String> {
    let program = program_name(cmd);
    // stdin and stderr stay the user's: an OATH reader may ask for a touch or a password.
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdin(Stdio::inherit())
        .stderr(Stdio::inherit())
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run the token command ({program} …)"))?;
    // A code is a line; a command that prints without end (`yes`) must not fill memory. What
    // is not read is dropped: the command gets SIGPIPE if it writes on.
    let mut stdout = Vec::new();
    if let Some(out) = child.stdout.take() {
        let _ = out.take(MAX_TOKEN_OUTPUT).read_to_end(&mut stdout);
    }
    let status = child
        .wait()
        .with_context(|| format!("cannot run the token command ({program} …)"))?;
    // Killed by SIGPIPE after printing too much: said below, as "not a code".
    if !status.success() && (stdout.len() as u64) < MAX_TOKEN_OUTPUT {
        bail!(
            "the token command ({program} …) failed ({status}); fix it, or pass the code with --token-code"
        );
    }
    let code = String::from_utf8_lossy(&stdout).trim().to_string();
    // Never echo what it printed: a misconfigured command may print a secret.
    validate_code(&code).map_err(|_| {
        anyhow!("the token command ({program} …) did not print a 6-digit code; it must print only the current code")
    })?;
    Ok(code)
}

fn prompt(serial: &str, retry_note: Option<&str>) -> Result<String> {
    // Open the terminal first so that "no terminal" is one clear error.
    let mut tty = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(|_| {
            anyhow!("no terminal to ask for the MFA code on: pass --token-code CODE, or set --token-command (mfa_process in the profile) to a command that prints it")
        })?;
    if let Some(note) = retry_note {
        let _ = writeln!(tty, "{note}");
    }
    // Only the guard changes the terminal's settings (echo off now, back when it drops or on
    // a signal); rpassword just reads the line, so nothing can re-apply "echo off" later.
    let _restore = interrupt::Guard::new(&tty);
    for attempt in 1..=PROMPT_TRIES {
        // Echo is already off, so nothing typed right after the prompt appears is shown.
        let _ = write!(tty, "Enter MFA code for {serial}: ");
        let _ = tty.flush();
        let code = loop {
            let input = tty
                .try_clone()
                .context("cannot read the MFA code from the terminal")?;
            let config = rpassword::ConfigBuilder::new()
                .input_reader(input)
                .output_discard()
                .build();
            match rpassword::read_password_with_config(config) {
                // A signal arrived: the watcher is about to restore the terminal and end the
                // run as the signal says; do not race it with an error of our own.
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {
                    std::thread::sleep(std::time::Duration::from_millis(200));
                }
                other => break other.context("cannot read the MFA code from the terminal")?,
            }
        };
        let code = code.trim().to_string();
        if validate_code(&code).is_ok() {
            return Ok(code);
        }
        if attempt < PROMPT_TRIES {
            let _ = writeln!(tty, "That is not a 6-digit code; try again.");
        }
    }
    bail!("no valid MFA code after {PROMPT_TRIES} tries: enter the 6 digits your MFA device shows")
}

/// While the prompt has echo off, an interrupt must not leave the terminal that way:
/// rpassword restores the terminal in a destructor, which a signal's default action never
/// runs. From the first prompt on, one thread takes SIGINT, SIGTERM and SIGHUP: it puts the
/// terminal back when a prompt had changed it, then performs the signal's default action, so
/// the shell still sees the command killed by that signal. (signal-hook cannot hand a signal
/// back to the default disposition, hence one watcher for the rest of the run.)
mod interrupt {
    use std::fs::File;
    use std::io::Write;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Mutex, OnceLock};

    use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg, Termios};
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

    /// The terminal and its settings from before the prompt, while a prompt is on screen.
    static SAVED: Mutex<Option<(File, Termios)>> = Mutex::new(None);
    static WATCHER: OnceLock<()> = OnceLock::new();
    /// Set by `--server`, which forwards signals to its child and must outlive them.
    static STAND_ASIDE: AtomicBool = AtomicBool::new(false);

    pub(crate) fn stand_aside() {
        STAND_ASIDE.store(true, Ordering::SeqCst);
    }

    fn watch() {
        WATCHER.get_or_init(|| {
            let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
            else {
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
                    let _ = signal_hook::low_level::emulate_default_handler(signal);
                }
            });
        });
    }

    /// Echo off for the prompt's duration (before the prompt is printed, so that nothing
    /// typed at once is shown), and the terminal's settings put back afterwards.
    pub(crate) struct Guard;

    impl Guard {
        pub(crate) fn new(tty: &File) -> Guard {
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
            Guard
        }
    }

    impl Drop for Guard {
        fn drop(&mut self) {
            if let Some((tty, termios)) = SAVED.lock().ok().and_then(|mut s| s.take()) {
                let _ = tcsetattr(&tty, SetArg::TCSANOW, &termios);
            }
        }
    }
}

pub(crate) use interrupt::stand_aside as leave_signals_to_the_caller;
/// Echo off on /dev/tty while alive, restored on drop or on a signal (`keys add`'s secret).
pub(crate) use interrupt::Guard as EchoOff;

#[cfg(test)]
mod tests {
    use super::program_name;

    #[test]
    fn the_token_command_is_named_by_its_program_only() {
        assert_eq!(program_name("ykman oath accounts code -s aws"), "ykman");
        assert_eq!(
            program_name("OATH_PASSWORD=hunter2 ykman oath accounts code"),
            "ykman"
        );
        assert_eq!(program_name("A=1 B=secret oathtool --totp KEY"), "oathtool");
        assert_eq!(program_name("PASS=x"), "sh");
        assert_eq!(program_name("'pass word'=x prog"), "sh");
        assert_eq!(program_name("x\x1b[2J"), "x\\x1b[2J");
    }
}
