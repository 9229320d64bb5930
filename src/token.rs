//! Getting the MFA code: `--token-code`, else the token command (`mfa_process`), else a
//! prompt on the controlling terminal.
//!
//! The prompt reads and writes `/dev/tty`, never stdin/stdout, so it works inside
//! `eval "$(mfa-exec --print-env)"`, under an SDK's `credential_process` (which captures both
//! stdout and stderr) and when stdout is piped.

use std::fs::OpenOptions;
use std::io::Write;
use std::process::{Command, Stdio};

use anyhow::{anyhow, bail, Context, Result};

use crate::settings::{validate_code, TokenSource};

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

fn run_token_command(cmd: &str) -> Result<String> {
    // stdin and stderr stay the user's: an OATH reader may ask for a touch or a password.
    let output = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdin(Stdio::inherit())
        .stderr(Stdio::inherit())
        .stdout(Stdio::piped())
        .output()
        .with_context(|| format!("cannot run the token command `{cmd}`"))?;
    if !output.status.success() {
        bail!(
            "the token command `{cmd}` failed ({}); fix it, or pass the code with --token-code",
            output.status
        );
    }
    let code = String::from_utf8_lossy(&output.stdout).trim().to_string();
    // Never echo what it printed: a misconfigured command may print a secret.
    validate_code(&code).map_err(|_| {
        anyhow!("the token command `{cmd}` did not print a 6-digit code; it must print only the current code")
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
    for attempt in 1..=PROMPT_TRIES {
        let code = rpassword::prompt_password(format!("Enter MFA code for {serial}: "))
            .context("cannot read the MFA code from the terminal")?;
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
