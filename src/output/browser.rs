//! Opening a URL in the user's browser: `$BROWSER` as xdg-open reads it (a `:`-separated list
//! of commands, each split into words, `%s` replaced by the URL or the URL added as the last
//! argument), else `xdg-open` on Linux and `open` on macOS.
//!
//! The URL here is a console sign-in URL, a bearer credential for 15 minutes: it goes only into
//! the browser's argv (a browser takes a URL no other way), never into a message. The browser's
//! own output goes to stderr, so that stdout stays the product's.

use std::os::fd::AsFd;
use std::process::{Command, Stdio};

use anyhow::{bail, Result};

/// Opens `url` with the first browser command that starts and exits 0, waiting for it (xdg-open
/// and open return at once; a `$BROWSER` that stays open is waited for).
pub(crate) fn open(url: &str, browser_var: Option<&str>) -> Result<()> {
    let mut tried = Vec::new();
    for argv in candidates(url, browser_var) {
        let Some((program, args)) = argv.split_first() else {
            continue;
        };
        tried.push(format!("'{}'", crate::terminal::safe(program)));
        let stdout = match std::io::stderr().as_fd().try_clone_to_owned() {
            Ok(fd) => Stdio::from(fd),
            Err(_) => Stdio::null(),
        };
        let status = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(stdout)
            .status();
        if status.is_ok_and(|s| s.success()) {
            return Ok(());
        }
    }
    if tried.is_empty() {
        bail!("no browser to open the console with (set BROWSER, or install xdg-open): use --print-url and open the URL yourself");
    }
    bail!(
        "could not open a browser (tried {}): set BROWSER to one that works, or use --print-url and open the URL yourself",
        tried.join(", ")
    )
}

/// The commands to try, in order, each with the URL in place.
fn candidates(url: &str, browser_var: Option<&str>) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = browser_var
        .unwrap_or_default()
        .split(':')
        .map(|entry| {
            entry
                .split_whitespace()
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .filter(|words| !words.is_empty())
        .map(|mut words| {
            if words.iter().any(|w| w.contains("%s")) {
                for w in &mut words {
                    *w = w.replace("%s", url);
                }
            } else {
                words.push(url.to_string());
            }
            words
        })
        .collect();
    if out.is_empty() {
        let opener = if cfg!(target_os = "macos") {
            "open"
        } else {
            "xdg-open"
        };
        out.push(vec![opener.to_string(), url.to_string()]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browser_commands_are_read_as_xdg_open_reads_them() {
        let url = "https://signin.example/federation?x=1";
        assert_eq!(
            candidates(url, Some("firefox --new-window:chromium %s")),
            vec![
                vec!["firefox".to_string(), "--new-window".into(), url.into()],
                vec!["chromium".to_string(), url.into()],
            ]
        );
        let fallback = if cfg!(target_os = "macos") {
            "open"
        } else {
            "xdg-open"
        };
        assert_eq!(
            candidates(url, Some("")),
            vec![vec![fallback.to_string(), url.into()]]
        );
        assert_eq!(candidates(url, None)[0][0], fallback);
    }
}
