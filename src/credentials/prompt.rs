//! Asking a person (or their YubiKey) for an MFA code: on the terminal, in a desktop dialog
//! (zenity, kdialog, osascript) or from `ykman`. IDEs, desktop apps and kubectl run
//! `credential_process` with no terminal, so a terminal-only prompt is one nobody sees.
//!
//! `auto` is settled here, when a code is needed, never while settings are resolved: a cache
//! hit neither opens `/dev/tty` nor searches PATH. A dialog program's own stderr (GTK warnings)
//! is kept from the user unless the dialog fails; then its last line says why.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use anyhow::{anyhow, bail, Context, Result};

use crate::settings::request::PromptKind;
use crate::settings::validate::validate_code;
use crate::settings::Prompt;
use crate::terminal::safe;
use crate::terminal::tty::Tty;

/// How many times a person is asked before giving up (and how many codes STS may refuse).
pub(crate) const PROMPT_TRIES: u32 = 3;

const TITLE: &str = "mfa-exec: MFA code";
const NOT_A_CODE: &str = "That is not a 6-digit code; try again.";

/// A dialog program and how it is told to ask.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dialog {
    Zenity,
    Kdialog,
    Osascript,
}

impl Dialog {
    fn program(self) -> &'static str {
        match self {
            Dialog::Zenity => "zenity",
            Dialog::Kdialog => "kdialog",
            Dialog::Osascript => "osascript",
        }
    }

    /// The arguments that show a hidden entry: zenity's `--entry --hide-text` (zenity(1)),
    /// kdialog's `--password`, and AppleScript's `display dialog … with hidden answer`
    /// (Standard Additions), each with mfa-exec's title.
    fn args(self, text: &str) -> Vec<String> {
        match self {
            Dialog::Zenity => vec![
                "--entry".into(),
                "--hide-text".into(),
                "--title".into(),
                TITLE.into(),
                "--text".into(),
                text.into(),
            ],
            Dialog::Kdialog => vec![
                "--title".into(),
                TITLE.into(),
                "--password".into(),
                text.into(),
            ],
            Dialog::Osascript => vec![
                "-e".into(),
                format!(
                    "text returned of (display dialog {} default answer \"\" with hidden answer with title {})",
                    applescript_string(text),
                    applescript_string(TITLE)
                ),
            ],
        }
    }

    /// Whether a failed run was the person saying no (Cancel, the window closed, a timeout).
    fn cancelled(self, out: &Output) -> bool {
        let code = out.status.code();
        match self {
            // zenity: 1 on Cancel or close, 5 on timeout; kdialog: 1 on Cancel or close. zenity
            // also exits 1 when GTK cannot open the display: that dialog never showed.
            Dialog::Zenity => {
                matches!(code, Some(1) | Some(5))
                    && !String::from_utf8_lossy(&out.stderr).contains("cannot open display")
            }
            Dialog::Kdialog => code == Some(1),
            // osascript exits 1 for any script error; Cancel is error -128, "User canceled."
            Dialog::Osascript => {
                code == Some(1) && String::from_utf8_lossy(&out.stderr).contains("-128")
            }
        }
    }
}

/// An AppleScript string literal: backslashes and quotes escaped, nothing else can end it.
fn applescript_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '\\' | '"' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Where a code is asked for, once `auto` is settled.
#[derive(Debug, PartialEq, Eq)]
enum Settled {
    Terminal,
    Dialog(Dialog),
    Ykman,
}

/// Whether codes from this prompt can be asked for again after STS refused one: a YubiKey
/// would give the same code again within its 30 seconds.
pub(crate) fn is_interactive(prompt: &Prompt) -> bool {
    prompt.kind != PromptKind::Ykman
}

/// The next code for `serial`. `retry_note` (why the last code was refused) is shown first.
pub(crate) fn ask(prompt: &Prompt, serial: &str, retry_note: Option<&str>) -> Result<String> {
    match settle(prompt)? {
        Settled::Terminal => on_terminal(serial, retry_note),
        Settled::Dialog(dialog) => in_dialog(dialog, prompt, serial, retry_note),
        Settled::Ykman => from_ykman(prompt, serial),
    }
}

fn settle(prompt: &Prompt) -> Result<Settled> {
    Ok(match prompt.kind {
        PromptKind::Terminal => Settled::Terminal,
        PromptKind::Zenity => Settled::Dialog(Dialog::Zenity),
        PromptKind::Kdialog => Settled::Dialog(Dialog::Kdialog),
        PromptKind::Osascript => Settled::Dialog(Dialog::Osascript),
        PromptKind::Ykman => Settled::Ykman,
        PromptKind::Auto => {
            if Tty::open().is_some() {
                return Ok(Settled::Terminal);
            }
            if prompt.display {
                let order = if prompt.kde {
                    [Dialog::Kdialog, Dialog::Zenity]
                } else {
                    [Dialog::Zenity, Dialog::Kdialog]
                };
                if let Some(d) = order
                    .into_iter()
                    .find(|d| on_path(prompt, d.program()).is_some())
                {
                    return Ok(Settled::Dialog(d));
                }
            }
            if cfg!(target_os = "macos") {
                return Ok(Settled::Dialog(Dialog::Osascript));
            }
            bail!(
                "no terminal to ask for the MFA code on, and no desktop for a dialog (profile '{}'): pass -t/--token-code CODE, set mfa_process (--token-command) to a command that prints it, choose --prompt ykman (mfa_prompt = ykman) for a YubiKey, or install zenity and run in a desktop session",
                safe(&prompt.profile)
            )
        }
    })
}

fn on_path(prompt: &Prompt, program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::env::split_paths(prompt.path.as_deref()?)
        .map(|dir| dir.join(program))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// The one terminal prompt for an MFA code, for runs and for `device add`'s two codes:
/// hidden entry, something that is not 6 digits asked for again, at most [`PROMPT_TRIES`]
/// times. `previous`: a code this one must differ from (two consecutive codes of a device
/// are never equal, so the same one twice is a code typed before the next one showed).
pub(crate) fn code_on_terminal(tty: &Tty, prompt: &str, previous: Option<&str>) -> Result<String> {
    for attempt in 1..=PROMPT_TRIES {
        let code = tty
            .read_hidden(prompt)
            .context("cannot read the MFA code from the terminal")?;
        let problem = if validate_code(&code).is_err() {
            NOT_A_CODE
        } else if previous == Some(code.as_str()) {
            "That is the same code again: wait for your MFA device to show the next one."
        } else {
            return Ok(code);
        };
        if attempt < PROMPT_TRIES {
            let _ = tty.say(&format!("{problem}\n"));
        }
    }
    bail!("{}", no_valid_code())
}

fn no_valid_code() -> String {
    format!(
        "no valid MFA code after {PROMPT_TRIES} tries: enter the 6 digits your MFA device shows"
    )
}

/// The terminal prompt of a run: the code for `serial`, after the note on why the last one
/// was refused.
fn on_terminal(serial: &str, retry_note: Option<&str>) -> Result<String> {
    // Open the terminal first so that "no terminal" is one clear error.
    let tty = Tty::open().ok_or_else(|| {
        anyhow!("no terminal to ask for the MFA code on: pass --token-code CODE, set --token-command (mfa_process in the profile) to a command that prints it, or choose a dialog with --prompt (mfa_prompt)")
    })?;
    if let Some(note) = retry_note {
        let _ = tty.say(&format!("{note}\n"));
    }
    code_on_terminal(&tty, &format!("Enter MFA code for {serial}: "), None)
}

fn dialog_text(profile: &str, serial: &str, note: Option<&str>) -> String {
    let ask = format!(
        "Enter the MFA code for AWS profile '{}' (device {}):",
        safe(profile),
        safe(serial)
    );
    match note {
        Some(note) => format!("{note}\n\n{ask}"),
        None => ask,
    }
}

fn in_dialog(
    dialog: Dialog,
    prompt: &Prompt,
    serial: &str,
    retry_note: Option<&str>,
) -> Result<String> {
    let program = dialog.program();
    let mut note = retry_note.map(String::from);
    for _ in 1..=PROMPT_TRIES {
        let text = dialog_text(&prompt.profile, serial, note.as_deref());
        let out = Command::new(program)
            .args(dialog.args(&text))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| {
                let why = if e.kind() == std::io::ErrorKind::NotFound {
                    "not found on PATH".to_string()
                } else {
                    e.to_string()
                };
                anyhow!("cannot show the MFA code dialog: {program} could not run ({why}); install it, or choose another --prompt (mfa_prompt)")
            })?;
        if !out.status.success() {
            if dialog.cancelled(&out) {
                bail!("the MFA code dialog was cancelled: no credentials were fetched");
            }
            bail!(
                "cannot show the MFA code dialog: {program} failed ({}){}; check DISPLAY, or choose another --prompt (mfa_prompt)",
                out.status,
                last_line(&out.stderr)
                    .map(|l| format!(": {l}"))
                    .unwrap_or_default()
            );
        }
        let code = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if validate_code(&code).is_ok() {
            return Ok(code);
        }
        note = Some(NOT_A_CODE.to_string());
    }
    bail!("{}", no_valid_code())
}

/// The last non-empty line a program wrote, made safe for the terminal.
fn last_line(bytes: &[u8]) -> Option<String> {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .map(|l| safe(l).into_owned())
}

fn ykman_args(prompt: &Prompt, serial: &str) -> Vec<String> {
    let account = prompt.ykman_account.as_deref().unwrap_or(serial);
    let mut args = Vec::new();
    if let Some(device) = &prompt.ykman_device {
        args.extend(["--device".to_string(), device.clone()]);
    }
    args.extend(
        ["oath", "accounts", "code", "--single", account]
            .iter()
            .map(|s| s.to_string()),
    );
    args
}

fn from_ykman(prompt: &Prompt, serial: &str) -> Result<String> {
    let account = prompt.ykman_account.as_deref().unwrap_or(serial);
    let touch = "Touch your YubiKey if it blinks: getting the MFA code from it";
    // ykman waits for a touch without saying so on a pipe: tell the person where they are.
    match Tty::open() {
        Some(tty) => {
            let _ = tty.say(&format!("{touch}\n"));
        }
        None => {
            if let Some(notify) = on_path(prompt, "notify-send") {
                let child = Command::new(notify)
                    .args(["--app-name=mfa-exec", "mfa-exec", touch])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn();
                // Reaped on the side: a notification must never hold up the code.
                if let Ok(mut child) = child {
                    std::thread::spawn(move || child.wait());
                }
            }
        }
    }
    let out = Command::new("ykman")
        .args(ykman_args(prompt, serial))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                anyhow!("cannot run ykman (not found on PATH): install the YubiKey Manager CLI (pip install yubikey-manager, or your system's yubikey-manager package)")
            } else {
                anyhow!("cannot run ykman: {e}")
            }
        })?;
    if !out.status.success() {
        bail!("{}", ykman_failure(&out, account));
    }
    let code = String::from_utf8_lossy(&out.stdout).trim().to_string();
    // Never echo what it printed, and never send it on.
    validate_code(&code).map_err(|_| {
        anyhow!(
            "ykman did not print a 6-digit code for OATH account '{}'; check with `ykman oath accounts list` that it is a 6-digit TOTP account",
            safe(account)
        )
    })?;
    Ok(code)
}

/// ykman's failures, said as what to do.
fn ykman_failure(out: &Output, account: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).to_lowercase();
    let account = safe(account);
    // ykman 4's texts (ykman/cli/oath.py, ykman/cli/__main__.py).
    if stderr.contains("no yubikey detected") {
        "ykman found no YubiKey: insert it and run again".to_string()
    } else if stderr.contains("failed connecting to a yubikey with serial") {
        "ykman found no YubiKey with the serial in YKMAN_OATH_DEVICE_SERIAL: insert that key, or correct or unset the variable".to_string()
    } else if stderr.contains("no matching account") {
        format!("the YubiKey has no OATH account named '{account}': set mfa_ykman_account in the profile to the name `ykman oath accounts list` shows")
    } else if stderr.contains("multiple matches") {
        format!("several OATH accounts on the YubiKey match '{account}': set mfa_ykman_account in the profile to the full name `ykman oath accounts list` shows")
    } else if stderr.contains("timed out") {
        "the YubiKey was not touched in time: run again and touch it when it blinks".to_string()
    } else if stderr.contains("password") || stderr.contains("aborted") {
        "the YubiKey's OATH accounts are password-protected and nobody can type the password here: run `ykman oath access remember` once at a terminal".to_string()
    } else {
        format!(
            "ykman failed ({}){}; check `ykman oath accounts code --single '{account}'` by hand",
            out.status,
            last_line(&out.stderr)
                .map(|l| format!(": {l}"))
                .unwrap_or_default()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prompt(kind: PromptKind) -> Prompt {
        Prompt {
            kind,
            profile: "prod".into(),
            ykman_account: None,
            ykman_device: None,
            display: false,
            kde: false,
            path: None,
        }
    }

    #[test]
    fn osascript_asks_with_a_hidden_answer_and_returns_only_the_text() {
        let args = Dialog::Osascript.args("Enter the code for \"prod\" \\ now");
        assert_eq!(args[0], "-e");
        assert_eq!(
            args[1],
            "text returned of (display dialog \"Enter the code for \\\"prod\\\" \\\\ now\" default answer \"\" with hidden answer with title \"mfa-exec: MFA code\")"
        );
    }

    #[test]
    fn a_newline_cannot_end_an_applescript_string() {
        assert_eq!(applescript_string("a\n\"b"), "\"a \\\"b\"");
    }

    #[test]
    fn zenity_and_kdialog_hide_the_entry_and_carry_the_title() {
        assert_eq!(
            Dialog::Zenity.args("T"),
            ["--entry", "--hide-text", "--title", TITLE, "--text", "T"]
        );
        assert_eq!(
            Dialog::Kdialog.args("T"),
            ["--title", TITLE, "--password", "T"]
        );
    }

    #[test]
    fn the_dialog_text_names_the_profile_and_the_device() {
        let text = dialog_text("prod", "arn:aws:iam::1:mfa/a", Some(NOT_A_CODE));
        assert!(text.starts_with(NOT_A_CODE));
        assert!(text.contains("'prod'") && text.contains("arn:aws:iam::1:mfa/a"));
    }

    #[test]
    fn ykman_names_the_account_and_the_device() {
        let mut p = prompt(PromptKind::Ykman);
        assert_eq!(
            ykman_args(&p, "arn:aws:iam::1:mfa/a"),
            [
                "oath",
                "accounts",
                "code",
                "--single",
                "arn:aws:iam::1:mfa/a"
            ]
        );
        p.ykman_account = Some("AWS prod".into());
        p.ykman_device = Some("12345".into());
        assert_eq!(
            ykman_args(&p, "arn:aws:iam::1:mfa/a"),
            ["--device", "12345", "oath", "accounts", "code", "--single", "AWS prod"]
        );
        assert!(!is_interactive(&p));
    }
}
