//! Where MFA codes come from: `--token-code`, else the token command (`mfa_process`), else a
//! person asked (`prompt`: the terminal, a desktop dialog, or a YubiKey through ykman).

use std::io::Read;
use std::process::{Command, Stdio};

use anyhow::{anyhow, bail, Context, Result};

use crate::settings::validate::validate_code;
use crate::settings::TokenSource;

/// The most of a token command's output that is read: a code and some whitespace.
const MAX_TOKEN_OUTPUT: u64 = 1024;

pub(crate) struct CodeSource {
    source: TokenSource,
    /// Whether a fresh code can be asked for after STS refused one.
    pub(crate) interactive: bool,
}

impl CodeSource {
    pub(crate) fn new(source: &TokenSource) -> CodeSource {
        CodeSource {
            interactive: matches!(source, TokenSource::Prompt(p) if super::prompt::is_interactive(p)),
            source: source.clone(),
        }
    }

    /// The next code for `serial`. `retry_note` is shown on the terminal before a re-prompt.
    pub(crate) fn next(&self, serial: &str, retry_note: Option<&str>) -> Result<String> {
        match &self.source {
            TokenSource::Given(code) => Ok(code.clone()),
            TokenSource::Command(cmd) => run_token_command(cmd),
            TokenSource::Prompt(p) => super::prompt::ask(p, serial, retry_note),
            TokenSource::Unavailable => bail!(
                "a new MFA code is needed for {} and --no-prompt was given: run again without it, or pass --token-code",
                serial
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
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(cmd)
        .stdin(Stdio::inherit())
        .stderr(Stdio::inherit())
        .stdout(Stdio::piped());
    let mut child = crate::core_dumps::with_users_limit(|| command.spawn())
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
